//! SIGINT, SIGTERM and SIGHUP: the one place mkimg decides what a signal
//! does.
//!
//! `mkimg build` and `mkimg rootfs` call [`install`] first thing (their
//! children run in process groups of their own, out of reach of a
//! terminal's Ctrl-C; see `host::cmd`): from then on the three
//! signals only store their number in a process-wide atomic. Long stages
//! (the rootfs pass, disk writing, waiting on a child in `host::cmd`) call
//! [`check`], which turns a pending signal into an [`Interrupted`] error;
//! the error unwinds the build, every guard (work dir, staging dir, child
//! process group, loop device, mount) drops on the way out, and `main` exits
//! with 128 + the signal number. A second signal while that cleanup runs
//! terminates mkimg at once (the start-up sweep removes what is left next
//! time).
//!
//! An [`InterruptGuard`] is the scoped form for commands that do not install
//! the process-wide handlers (`mkimg boot`) and for code that wants a flag of
//! its own: while armed, the signals set its flag instead of terminating
//! mkimg. Outside an armed scope (and without [`install`]) the signals keep
//! their default action. signal-hook cannot give the default disposition
//! back once it has installed its handler, so the first arming also
//! registers an emulation of the default action that runs whenever nothing
//! catches the signal.
//!
//! Also here: the test hook [`pause_at`] (see its doc), so tests can deliver
//! a signal at a named stage without sleeping.
//!
//! Must not: do anything in the handler but store to atomics.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::low_level::signal_name;
use signal_hook::SigId;

/// The signals mkimg catches.
const SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The signal number of the first signal [`install`]'s handlers caught.
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// A stage stopped because a signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.signal).unwrap_or("a signal"))]
pub struct Interrupted {
    pub signal: i32,
}

impl Interrupted {
    /// The shell convention: 128 + the signal number (130, 143, 129).
    pub fn exit_code(&self) -> u8 {
        u8::try_from(self.signal.saturating_add(128)).unwrap_or(u8::MAX)
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP for the rest of the process: each only
/// records its number (see [`received`]); a second one terminates mkimg
/// with 128 + its number. Idempotent.
pub fn install() -> io::Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    let state = defaults()?;
    // Counted as a guard that is never dropped: the emulated default action
    // never runs again.
    *state.armed.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    state.run_default.store(false, Ordering::SeqCst);
    let received = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    let seen = Arc::new(AtomicBool::new(false));
    for signal in SIGNALS {
        // Registered before the flag below: does nothing on the first signal.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            signal.saturating_add(128),
            Arc::clone(&seen),
        )?;
        signal_hook::flag::register(signal, Arc::clone(&seen))?;
        // The first signal wins: a second one exits above before this runs.
        signal_hook::flag::register_usize(signal, Arc::clone(received), signal as usize)?;
    }
    *done = true;
    Ok(())
}

/// The signal [`install`]'s handlers caught, if any.
pub fn received() -> Option<Interrupted> {
    let signal = RECEIVED.get()?.load(Ordering::SeqCst);
    i32::try_from(signal)
        .ok()
        .filter(|&s| s != 0)
        .map(|signal| Interrupted { signal })
}

/// `Err` once a signal arrived: the stages call this in their loops.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(interrupted) => Err(interrupted),
        None => Ok(()),
    }
}

/// Process-wide state: `true` when no guard is armed, so the emulated
/// default action runs; the number of armed guards.
struct Defaults {
    run_default: Arc<AtomicBool>,
    armed: Mutex<usize>,
}

fn defaults() -> io::Result<&'static Defaults> {
    static DEFAULTS: OnceLock<Defaults> = OnceLock::new();
    static INSTALL: Mutex<bool> = Mutex::new(false);
    let state = DEFAULTS.get_or_init(|| Defaults {
        run_default: Arc::new(AtomicBool::new(true)),
        armed: Mutex::new(0),
    });
    let mut installed = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed {
        // Registered first, so it runs before the flag actions; it does
        // nothing while a guard is armed.
        for signal in SIGNALS {
            signal_hook::flag::register_conditional_default(
                signal,
                Arc::clone(&state.run_default),
            )?;
        }
        *installed = true;
    }
    Ok(state)
}

/// While alive, SIGINT, SIGTERM and SIGHUP set [`InterruptGuard::flag`]
/// instead of terminating mkimg. Dropping it restores the default action
/// (unless [`install`] ran).
pub struct InterruptGuard {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    ids: Vec<SigId>,
}

impl InterruptGuard {
    /// Start catching the signals. A signal [`install`]'s handlers already
    /// caught counts as arrived.
    pub fn arm() -> io::Result<InterruptGuard> {
        let state = defaults()?;
        let earlier = received().map_or(0, |i| i.signal as usize);
        let flag = Arc::new(AtomicBool::new(earlier != 0));
        let signal = Arc::new(AtomicUsize::new(earlier));
        let mut ids = Vec::new();
        for sig in SIGNALS {
            ids.push(signal_hook::flag::register_usize(
                sig,
                Arc::clone(&signal),
                sig as usize,
            )?);
            ids.push(signal_hook::flag::register(sig, Arc::clone(&flag))?);
        }
        let mut armed = state.armed.lock().unwrap_or_else(|e| e.into_inner());
        *armed += 1;
        state.run_default.store(false, Ordering::SeqCst);
        Ok(InterruptGuard { flag, signal, ids })
    }

    /// Set once SIGINT, SIGTERM or SIGHUP arrived.
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// `SIGINT`, `SIGTERM` or `SIGHUP`, once one arrived.
    pub fn signal_name(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            sig => i32::try_from(sig).ok().and_then(signal_name),
        }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        if let Ok(state) = defaults() {
            let mut armed = state.armed.lock().unwrap_or_else(|e| e.into_inner());
            *armed = armed.saturating_sub(1);
            if *armed == 0 {
                state.run_default.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Test hook: with `MKIMG_TEST_HOOKS=1` and `MKIMG_TEST_PAUSE_AT=STAGE` in
/// the environment, the first time the build reaches `stage` it prints
/// `mkimg: test-pause: STAGE pid=PID` to stderr and blocks until a signal
/// arrives (then returns, and the caller's next [`check`] fails), so a test
/// can deliver a signal exactly there. Stages: `rootfs-pass` (after the
/// first member), `member-data` (the first read of a member's data),
/// `disk-write` (after the first chunk reached the qcow2/raw sinks),
/// `flash-write` (`mkimg flash`, after the first chunk reached the target),
/// `publish` (staging complete, before the swap), and the file name of any
/// program the runner spawns (`mke2fs`, `e2fsck`, `debugfs`, `chroot`…, see
/// [`pause_at_child`]); `STAGE#N` pauses at its Nth arrival instead
/// (`mke2fs#2`: the first mke2fs run is the version probe). Without both
/// variables: nothing.
pub fn pause_at(stage: &str) {
    pause(stage, None);
}

/// [`pause_at`] for a running child: the stage is the program's file name,
/// and the line also gives `child=PID`. The child keeps running meanwhile.
pub fn pause_at_child(program: &std::ffi::OsStr, child: u32) {
    let name = std::path::Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy();
    pause(&name, Some(child));
}

fn pause(stage: &str, child: Option<u32>) {
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    // Read once: some stages are reached per read() call.
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    let wanted = WANTED.get_or_init(|| {
        std::env::var_os("MKIMG_TEST_HOOKS")
            .is_some_and(|v| v == "1")
            .then(|| std::env::var("MKIMG_TEST_PAUSE_AT").ok())
            .flatten()
    });
    let Some(wanted) = wanted else {
        return;
    };
    let (name, nth) = match wanted.split_once('#') {
        Some((name, nth)) => (name, nth.parse().unwrap_or(1)),
        None => (wanted.as_str(), 1),
    };
    if name != stage || REACHED.fetch_add(1, Ordering::SeqCst) + 1 != nth {
        return;
    }
    let child = child.map(|c| format!(" child={c}")).unwrap_or_default();
    eprintln!(
        "mkimg: test-pause: {wanted} pid={}{child}",
        std::process::id()
    );
    while received().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::InterruptGuard;

    #[test]
    fn armed_guard_turns_sigint_into_a_flag() {
        let guard = InterruptGuard::arm().unwrap();
        assert!(!guard.is_set());
        assert_eq!(guard.signal_name(), None);
        // Delivered to this process; armed, it must not terminate it.
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT)
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !guard.is_set() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(guard.is_set());
        assert_eq!(guard.signal_name(), Some("SIGINT"));
        // A second guard armed meanwhile starts clear.
        let other = InterruptGuard::arm().unwrap();
        assert!(!other.is_set());
    }
}
