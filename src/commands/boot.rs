//! `mkimg boot DIR`: boot a build output in QEMU, print each boot marker as
//! it is reached (`  12.3s kernel`, on stderr), optionally log in and run a
//! command (its output on stdout), then power off. Exit 0 only if every
//! required marker was reached in time and the command exited 0; otherwise
//! the error lists the markers reached and missed and the console's tail.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::BootArgs;
use crate::host::console::{select_markers, Console, Dialogue, Script};
use crate::host::interrupt::InterruptGuard;
use crate::host::vm::{drive, Ending, Event, Limits, Vm, POWEROFF_WAIT};

pub fn run(args: &BootArgs) -> Result<()> {
    let required: Vec<String> = args
        .markers
        .iter()
        .filter(|m| !m.is_empty())
        .cloned()
        .collect();
    let mut console = Console::new(select_markers(&required, &args.expect)?);
    let mut dialogue = Dialogue::new(Script {
        login: args.login.clone(),
        run: args.run.clone(),
        nonce: std::process::id(),
    });
    let interrupt = InterruptGuard::arm().context("catching SIGINT and SIGTERM")?;
    let mut log = match &args.log {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let timeout = Duration::from_secs(args.timeout);
    let mut vm = Vm::start(&args.dir, args.vars.as_deref())?;
    eprintln!("{} (timeout {} s)", vm.command(), args.timeout);
    let limits = Limits {
        timeout,
        poweroff_wait: POWEROFF_WAIT,
        interrupted: interrupt.flag(),
    };
    let mut stdout = io::stdout();
    let ending = drive(
        &mut vm,
        &mut console,
        &mut dialogue,
        &limits,
        &mut |event| match event {
            Event::Raw(bytes) => match &mut log {
                Some(log) => log.write_all(bytes),
                None => Ok(()),
            },
            Event::Marker { name, at } => {
                eprintln!("{:>7.1}s {name}", at.as_secs_f64());
                Ok(())
            }
            Event::Output(bytes) => stdout.write_all(bytes).and_then(|()| stdout.flush()),
        },
    )?;
    if let (Some(log), Some(path)) = (&mut log, &args.log) {
        log.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let elapsed = vm.elapsed();
    match ending {
        Ending::Finished { run_status } => match (run_status, &args.run) {
            (Some(status), Some(command)) if status != 0 => {
                bail!("`{command}` exited with {status} in the guest")
            }
            _ => {
                let unseen: Vec<String> = console
                    .report()
                    .into_iter()
                    .filter(|m| m.passed_unseen)
                    .map(|m| m.name)
                    .collect();
                let quiet = match unseen.is_empty() {
                    true => String::new(),
                    false => format!(" ({} not printed: quiet boot)", unseen.join(", ")),
                };
                eprintln!(
                    "boot OK: every required marker reached{quiet}, stopped after {:.1} s",
                    elapsed.as_secs_f64()
                );
                Ok(())
            }
        },
        Ending::Exited(Some(status)) => {
            let tail = console.tail().join("\n");
            Err(
                anyhow::Error::new(vm.exit_error(status, &tail)).context(report(
                    "the machine stopped before the end of the boot",
                    &console,
                    false,
                )),
            )
        }
        Ending::Exited(None) => bail!(report(
            "the console closed before the end of the boot",
            &console,
            true
        )),
        Ending::TimedOut => bail!(report(
            &format!("boot timed out after {} s", args.timeout),
            &console,
            true
        )),
        Ending::Interrupted => bail!(report("interrupted", &console, true)),
        Ending::LoginFailed(err) => bail!(report(&err.to_string(), &console, true)),
    }
}

/// `headline`, every required (and reached) marker with its time, then the
/// last lines of the console.
fn report(headline: &str, console: &Console, with_tail: bool) -> String {
    let mut text = format!("{headline}\nmarkers:");
    for marker in console.report() {
        let line = match (marker.reached, marker.required) {
            (Some(at), _) => format!("{:>7.1}s {}", at.as_secs_f64(), marker.name),
            (None, true) if marker.passed_unseen => {
                format!("{:>8} {} (not printed: quiet boot)", "-", marker.name)
            }
            (None, true) => format!("{:>8} {} (missed)", "-", marker.name),
            (None, false) => continue,
        };
        text.push('\n');
        text.push_str(&line);
    }
    if with_tail {
        let tail = console.tail();
        text.push_str(&format!("\nlast {} lines of the console:", tail.len()));
        for line in tail {
            text.push_str("\n  | ");
            text.push_str(&line);
        }
    }
    text
}
