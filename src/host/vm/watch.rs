//! Test-only: the one console watcher of the unit tests that boot QEMU
//! (the start_vm.sh smoke tests, U-Boot reading an extlinux.conf). It is
//! `mkimg boot`'s own machinery — [`Vm`] for the process group, [`Console`]
//! for the escape stripping and marker matching, [`drive`] for the loop —
//! with a dialogue that types nothing, so what the tests check is what
//! users run. The machine is stopped (its whole process group) before
//! [`watch`] returns, also when a test fails.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{drive, Ending, Event, Limits, Vm};
use crate::host::cmd::Cmd;
use crate::host::console::{AnsiStripper, Console, Dialogue, Marker, Pattern, Script};

/// What a watched boot showed.
#[derive(Debug)]
pub(crate) struct Watched {
    pub ending: Ending,
    /// Names of the markers reached, in order.
    pub reached: Vec<String>,
    /// The whole console, escapes and `\r` stripped.
    pub text: String,
}

impl Watched {
    /// Whether every marker was reached.
    pub fn finished(&self) -> bool {
        matches!(self.ending, Ending::Finished { .. })
    }
}

/// Start `cmd` as a machine and wait until every marker — a name and the
/// texts of which any one, found on a line, reaches it — is reached, the
/// machine stops, or `timeout` passes. `on_marker` runs as each marker is
/// reached, while the machine still runs.
pub(crate) fn watch(
    cmd: Cmd,
    markers: &[(&str, &[&str])],
    timeout: Duration,
    on_marker: &mut dyn FnMut(&str),
) -> Watched {
    let markers = markers
        .iter()
        .map(|(name, texts)| Marker {
            name: name.to_string(),
            patterns: texts.iter().map(|t| Pattern::literal(t)).collect(),
            required: true,
            stage: None,
        })
        .collect();
    let mut vm = Vm::spawn(cmd).unwrap_or_else(|e| panic!("starting the machine: {e}"));
    let mut console = Console::new(markers);
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: None,
        nonce: 0,
    });
    let never = AtomicBool::new(false);
    let limits = Limits {
        timeout,
        poweroff_wait: Duration::ZERO,
        interrupted: &never,
    };
    let mut raw = Vec::new();
    let mut reached = Vec::new();
    let ending = drive(
        &mut vm,
        &mut console,
        &mut dialogue,
        &limits,
        &mut |event| {
            match event {
                Event::Raw(bytes) => raw.extend_from_slice(bytes),
                Event::Marker { name, .. } => {
                    on_marker(name);
                    reached.push(name.to_string());
                }
                Event::Output(_) => {}
            }
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("watching the console: {e}"));
    let mut text = Vec::new();
    AnsiStripper::default().strip(&raw, &mut text);
    Watched {
        ending,
        reached,
        text: String::from_utf8_lossy(&text).into_owned(),
    }
}
