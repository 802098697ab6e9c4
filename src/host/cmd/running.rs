//! A started command ([`Running`]): its pipes, its pid (also its process
//! group's), and how to wait for it — here, or on the thread that started
//! it in a new PID namespace (a sandboxed command); plus the [`Watcher`]
//! that kills the group of a command whose owner blocks on its output once
//! a signal arrives. Used only by `host::cmd`.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::process::{kill_process_group, Pid, Signal};

use super::POLL;
use crate::host::interrupt;
use crate::host::sandbox::StepReport;

pub(super) fn kill_group(group: Option<Pid>) {
    if let Some(group) = group {
        // ESRCH: the group is already gone.
        let _ = kill_process_group(group, Signal::KILL);
    }
}

/// For a child whose owner blocks on its output: a thread that kills the
/// child's group once a signal arrives after the start.
pub(super) struct Watcher {
    done: Arc<AtomicBool>,
    thread: JoinHandle<bool>,
}

impl Watcher {
    /// `signalled_before`: a signal had arrived before the command was
    /// started (it then runs to its end, as cleanup does).
    pub(super) fn start(group: Option<Pid>, signalled_before: bool) -> Watcher {
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            while !finished.load(Ordering::SeqCst) {
                if !signalled_before && interrupt::received().is_some() {
                    kill_group(group);
                    return true;
                }
                std::thread::sleep(POLL);
            }
            false
        });
        Watcher { done, thread }
    }

    /// Stop watching; whether the watcher killed the child.
    pub(super) fn stop(self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or(false)
    }
}

/// A started command: its pipes, its pid (also its process group's, when
/// it has one of its own) and how to wait for it.
pub(super) struct Running {
    pub(super) stdout: Option<ChildStdout>,
    pub(super) stderr: Option<ChildStderr>,
    pub(super) pid: Option<Pid>,
    pub(super) waiter: Waiter,
    /// A tree sandbox's report pipe, read once the command has ended.
    pub(super) report: Option<StepReport>,
}

pub(super) enum Waiter {
    /// Waited for here.
    Child(Child),
    /// Waited for by the thread that started it (a sandboxed command).
    Thread(JoinHandle<std::io::Result<ExitStatus>>),
    /// Not yet handed over.
    Gone,
}

impl Running {
    pub(super) fn new(child: &mut Child, waiter: Waiter) -> Running {
        Running {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            pid: i32::try_from(child.id()).ok().and_then(Pid::from_raw),
            waiter,
            report: None,
        }
    }

    /// The test hook (`MKIMG_TEST_PAUSE_AT=<program>`): pause while the
    /// child runs.
    pub(super) fn pause_for_tests(&self, program: &OsStr) {
        if let Some(pid) = self.pid {
            interrupt::pause_at_child(program, pid.as_raw_nonzero().get().unsigned_abs());
        }
    }

    pub(super) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match &mut self.waiter {
            Waiter::Child(child) => child.try_wait(),
            Waiter::Thread(thread) if !thread.is_finished() => Ok(None),
            _ => self.wait_now().map(Some),
        }
    }

    pub(super) fn wait(mut self) -> std::io::Result<ExitStatus> {
        self.wait_now()
    }

    fn wait_now(&mut self) -> std::io::Result<ExitStatus> {
        match std::mem::replace(&mut self.waiter, Waiter::Gone) {
            Waiter::Child(mut child) => child.wait(),
            Waiter::Thread(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Waiter::Gone => Err(std::io::Error::other("already waited for")),
        }
    }
}

/// The most of one output stream a command's result keeps: a program of
/// an untrusted rootfs (a grub.d script) could print without end. What
/// comes after is read and dropped, so the program never blocks on it.
pub(super) const OUTPUT_LIMIT: usize = 256 << 20;

/// Read `pipe` to its end on a thread of its own, keeping the first
/// [`OUTPUT_LIMIT`] bytes.
pub(super) fn drain(
    pipe: Option<impl Read + Send + 'static>,
) -> JoinHandle<std::io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = pipe {
            read_bounded(pipe, &mut buf, OUTPUT_LIMIT)?;
        }
        Ok(buf)
    })
}

/// `reader` to its end: the first `limit` bytes into `buf`, the rest
/// read and dropped.
pub(super) fn read_bounded(
    mut reader: impl Read,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<()> {
    (&mut reader).take(limit as u64).read_to_end(buf)?;
    std::io::copy(&mut reader, &mut std::io::sink())?;
    Ok(())
}

pub(super) fn joined(reader: JoinHandle<std::io::Result<Vec<u8>>>) -> Vec<u8> {
    reader.join().ok().and_then(Result::ok).unwrap_or_default()
}
