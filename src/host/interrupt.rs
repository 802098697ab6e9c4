//! SIGINT/SIGTERM while mkimg holds kernel objects (loop devices, mounts):
//! an [`InterruptGuard`] turns the signal into a flag for as long as it is
//! armed, so the code that holds the objects can stop its child processes,
//! drop its guards in reverse order and return an error; mkimg then exits
//! non-zero with nothing left behind.
//!
//! Outside an armed scope the signals keep their default action (mkimg
//! terminates at once): a build that only writes files under its work
//! directory needs no cleanup beyond what the kernel does. signal-hook
//! cannot give the default disposition back once it has installed its
//! handler, so the first arming also registers an emulation of the default
//! action that runs whenever no guard is armed.
//!
//! Must not: do anything in the handler but store to atomics.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::signal_name;
use signal_hook::SigId;

/// The signals an armed guard catches.
const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

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

/// While alive, SIGINT and SIGTERM set [`InterruptGuard::flag`] instead of
/// terminating mkimg. Dropping it restores the default action.
pub struct InterruptGuard {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    ids: Vec<SigId>,
}

impl InterruptGuard {
    /// Start catching SIGINT and SIGTERM.
    pub fn arm() -> io::Result<InterruptGuard> {
        let state = defaults()?;
        let flag = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
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

    /// Set once SIGINT or SIGTERM arrived.
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// `SIGINT` or `SIGTERM`, once one arrived.
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
