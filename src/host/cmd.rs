//! The one command runner. Every external program mkimg runs goes through
//! [`Cmd`]: it records what the command is for, the full argv, runs it with
//! stdin from /dev/null, and on failure reports the exit status and the last
//! ~1 KiB of stderr, e.g.
//! `creating root filesystem: "mke2fs" "-t" "ext4" … exited with 1` + tail.
//!
//! Typed builders for each tool (mke2fs, debugfs, qemu-img, …) produce a
//! `Cmd`, so their argv can be unit-tested without running anything.
//!
//! Every child runs in a process group of its own (a terminal's Ctrl-C
//! reaches mkimg only; mkimg decides when its children stop) with
//! `PR_SET_PDEATHSIG = SIGKILL`, so it dies with mkimg even when mkimg is
//! SIGKILLed. While mkimg waits for it, a signal that arrives (see
//! `host::interrupt`) kills the whole group with SIGKILL, reaps it and
//! returns [`CmdError::Interrupted`]. A command started after the signal
//! (cleanup, such as detaching a loop device) runs to its end.
//! Must not: wait for a child without watching for signals.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};

use crate::host::interrupt;

/// How often a wait looks at the signal flags.
const POLL: Duration = Duration::from_millis(10);

/// How much of stderr is kept in an error.
const STDERR_TAIL: usize = 1024;

/// A command to run, with what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub purpose: String,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("{purpose}: cannot run {argv}: {source}{hint}")]
    Spawn {
        purpose: String,
        argv: String,
        source: std::io::Error,
        hint: String,
    },
    #[error("{purpose}: {argv} {status}{}", tail_text(.stderr))]
    Failed {
        purpose: String,
        argv: String,
        status: String,
        stderr: String,
    },
    #[error("{purpose}: {argv} was stopped: mkimg was interrupted")]
    Interrupted { purpose: String, argv: String },
}

fn tail_text(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; stderr:\n{}", stderr.trim_end())
    }
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Cmd {
    pub fn new(purpose: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        Cmd {
            purpose: purpose.into(),
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The argv quoted for messages: `"mke2fs" "-t" "ext4"`.
    pub fn argv_text(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| format!("{:?}", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .process_group(0);
        let parent = rustix::process::getpid();
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the forked child before exec; it makes
        // two async-signal-safe system calls (prctl, getppid), allocates
        // nothing and takes no lock. The death signal follows the thread
        // that spawns the child, and every runner below waits for its child
        // on that same thread.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // mkimg died between fork and prctl: the signal would never come.
                if rustix::process::getppid() != Some(parent) {
                    return Err(rustix::io::Errno::SRCH.into());
                }
                Ok(())
            });
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
    }

    fn spawn_error(&self, source: std::io::Error) -> CmdError {
        let hint = if source.kind() == std::io::ErrorKind::NotFound {
            format!(
                " (is {} installed? scripts/setup-debian.sh installs every tool mkimg uses)",
                self.program.to_string_lossy()
            )
        } else {
            String::new()
        };
        CmdError::Spawn {
            purpose: self.purpose.clone(),
            argv: self.argv_text(),
            source,
            hint,
        }
    }

    fn check(&self, status: ExitStatus, stderr: &[u8]) -> Result<(), CmdError> {
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(stderr);
        let start = text.len().saturating_sub(STDERR_TAIL);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        Err(CmdError::Failed {
            purpose: self.purpose.clone(),
            argv: self.argv_text(),
            status: describe_status(status),
            stderr: text[start..].to_string(),
        })
    }

    /// Run, capturing stdout and stderr.
    pub fn output(&self) -> Result<Output, CmdError> {
        self.output_interruptible(&AtomicBool::new(false))
    }

    /// Run, discarding stdout, keeping stderr for the error.
    pub fn run(&self) -> Result<(), CmdError> {
        self.output().map(|_| ())
    }

    /// Run, calling `on_line` with each line of stderr as it arrives (without
    /// its line ending), for progress display of long commands such as
    /// mmdebstrap. Stdout is drained on a thread and returned; only the tail
    /// of stderr is kept, and it goes into the error as with [`Cmd::run`].
    pub fn run_with_stderr_lines(
        &self,
        mut on_line: impl FnMut(&str),
    ) -> Result<Vec<u8>, CmdError> {
        tracing_debug(&self.argv_text());
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        interrupt::pause_at_child(&self.program, child.id());
        let watcher = Watcher::start(&child);
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stdout_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).map(|_| buf)
        });
        let mut tail = LineTail::default();
        let mut reader = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let mut line = Vec::new();
        // A read error on the pipe ends the loop; wait() still reports the status.
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            on_line(text);
            tail.push(text);
            line.clear();
        }
        let status = child.wait().map_err(|e| self.spawn_error(e));
        let killed = watcher.stop();
        let stdout = stdout_reader
            .join()
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if killed {
            return Err(self.interrupted());
        }
        self.check(status?, tail.text().as_bytes())?;
        Ok(stdout)
    }
}

impl Cmd {
    /// Run, capturing stdout and stderr, while watching `interrupted` and
    /// the process-wide signal flag: once either is set, the whole group
    /// (the program and everything it started) is killed with SIGKILL and
    /// reaped, and the result is [`CmdError::Interrupted`].
    pub fn output_interruptible(&self, interrupted: &AtomicBool) -> Result<Output, CmdError> {
        tracing_debug(&self.argv_text());
        let signalled_before = interrupt::received().is_some();
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        interrupt::pause_at_child(&self.program, child.id());
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                pipe.read_to_end(&mut buf).map(|_| buf)
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
        let group = group_of(&child);
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let stop = || {
            interrupted.load(Ordering::SeqCst)
                || (!signalled_before && interrupt::received().is_some())
        };
        let status = loop {
            match rx.recv_timeout(POLL) {
                Ok(status) => break status,
                Err(mpsc::RecvTimeoutError::Timeout) if stop() => {
                    kill_group(group);
                    let _ = (waiter.join(), stdout.join(), stderr.join());
                    return Err(self.interrupted());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(std::io::Error::other("the waiting thread died"))
                }
            }
        };
        let _ = waiter.join();
        let status = status.map_err(|e| self.spawn_error(e))?;
        let joined = |h: std::thread::JoinHandle<std::io::Result<Vec<u8>>>| {
            h.join().ok().and_then(Result::ok).unwrap_or_default()
        };
        let (stdout, stderr) = (joined(stdout), joined(stderr));
        self.check(status, &stderr)?;
        Ok(Output { stdout, stderr })
    }

    fn interrupted(&self) -> CmdError {
        CmdError::Interrupted {
            purpose: self.purpose.clone(),
            argv: self.argv_text(),
        }
    }
}

/// The child's process group: its own pid (see [`Cmd::command`]).
fn group_of(child: &Child) -> Option<Pid> {
    i32::try_from(child.id()).ok().and_then(Pid::from_raw)
}

fn kill_group(group: Option<Pid>) {
    if let Some(group) = group {
        // ESRCH: the group is already gone.
        let _ = kill_process_group(group, Signal::KILL);
    }
}

/// For a child whose owner blocks on its output: a thread that kills the
/// child's group once a signal arrives after the start.
struct Watcher {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watcher {
    fn start(child: &Child) -> Watcher {
        let signalled_before = interrupt::received().is_some();
        let group = group_of(child);
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
    fn stop(self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or(false)
    }
}

/// The last lines of a stream, at most about [`STDERR_TAIL`] bytes of them.
#[derive(Default)]
struct LineTail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl LineTail {
    fn push(&mut self, line: &str) {
        self.lines.push_back(line.to_string());
        self.bytes += line.len() + 1;
        while self.bytes > STDERR_TAIL && self.lines.len() > 1 {
            let dropped = self.lines.pop_front().map_or(0, |l| l.len() + 1);
            self.bytes -= dropped;
        }
    }

    fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.purpose, self.argv_text())
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// `-v` prints each command before it runs.
fn tracing_debug(argv: &str) {
    if std::env::var_os("MKIMG_VERBOSE").is_some() {
        eprintln!("+ {argv}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{Cmd, CmdError};

    #[test]
    fn argv_is_quoted_in_full() {
        let cmd = Cmd::new("making fs", "mke2fs").args(["-t", "ext4", "a b"]);
        assert_eq!(cmd.argv_text(), r#""mke2fs" "-t" "ext4" "a b""#);
    }

    #[test]
    fn failure_reports_status_and_stderr_tail() {
        let long = "x".repeat(3000);
        let cmd = Cmd::new("testing failure", "sh").args([
            "-c",
            &format!("echo {long} >&2; echo last-line >&2; exit 3"),
        ]);
        let err = cmd.run().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(r#"testing failure: "sh" "-c""#), "{text}");
        assert!(text.contains("exited with 3"), "{text}");
        assert!(text.contains("last-line"), "{text}");
        assert!(
            text.len() < 1500 + cmd.argv_text().len(),
            "stderr not trimmed: {}",
            text.len()
        );
    }

    #[test]
    fn missing_program_names_setup_script() {
        let err = Cmd::new("probing", "mkimg-no-such-tool").run().unwrap_err();
        assert!(matches!(err, CmdError::Spawn { .. }));
        assert!(err.to_string().contains("setup-debian.sh"), "{err}");
    }

    #[test]
    fn stderr_lines_stream_to_the_callback() {
        let cmd = Cmd::new("streaming", "sh").args([
            "-c",
            "echo out; echo 'I: one' >&2; printf 'I: two\\r\\n' >&2; printf 'no newline' >&2",
        ]);
        let mut lines = Vec::new();
        let stdout = cmd
            .run_with_stderr_lines(|l| lines.push(l.to_string()))
            .unwrap();
        assert_eq!(stdout, b"out\n");
        assert_eq!(lines, ["I: one", "I: two", "no newline"]);
    }

    #[test]
    fn streamed_failure_keeps_the_stderr_tail() {
        let cmd = Cmd::new("streaming failure", "sh").args([
            "-c",
            "for i in $(seq 1 500); do echo \"line $i\" >&2; done; exit 4",
        ]);
        let mut count = 0;
        let err = cmd.run_with_stderr_lines(|_| count += 1).unwrap_err();
        assert_eq!(count, 500);
        let text = err.to_string();
        assert!(text.contains("exited with 4"), "{text}");
        assert!(text.contains("line 500"), "{text}");
        assert!(!text.contains("line 1\n"), "tail not trimmed: {text}");
    }

    #[test]
    fn streamed_missing_program_names_setup_script() {
        let err = Cmd::new("probing", "mkimg-no-such-tool")
            .run_with_stderr_lines(|_| {})
            .unwrap_err();
        assert!(err.to_string().contains("setup-debian.sh"), "{err}");
    }

    #[test]
    fn interruptible_runs_to_completion() {
        let flag = AtomicBool::new(false);
        let out = Cmd::new("echoing", "sh")
            .args(["-c", "echo out; echo err >&2"])
            .output_interruptible(&flag)
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        let err = Cmd::new("failing", "sh")
            .args(["-c", "echo why >&2; exit 5"])
            .output_interruptible(&flag)
            .unwrap_err();
        assert!(err.to_string().contains("exited with 5"), "{err}");
        assert!(err.to_string().contains("why"), "{err}");
    }

    #[test]
    fn interruption_kills_the_whole_group() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = Arc::clone(&flag);
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            setter.store(true, Ordering::SeqCst);
        });
        let started = Instant::now();
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let err = Cmd::new("sleeping", "sh")
            .args(["-c", &script])
            .output_interruptible(&flag)
            .unwrap_err();
        assert!(matches!(err, CmdError::Interrupted { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // The grandchild (same group) is gone too, or at most a zombie. It
        // closes its end of the pipes before it is marked dead, so on a busy
        // machine it can still show as running for a moment: bounded wait.
        let deadline = Instant::now() + Duration::from_secs(10);
        let stat = loop {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
            let dead = stat.as_deref().map_or(true, |s| s.contains(") Z "));
            if dead || Instant::now() > deadline {
                break stat;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            stat.as_deref().map_or(true, |s| s.contains(") Z ")),
            "grandchild {pid} survived: {stat:?}"
        );
    }

    #[test]
    fn children_lead_their_own_process_group() {
        // /proc/PID/stat: pid (comm) state ppid pgrp …
        let out = Cmd::new("reading its group", "sh")
            .args(["-c", "echo $$; cut -d' ' -f5 /proc/$$/stat"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], lines[1], "pid is the pgid: {text}");
        assert_ne!(
            lines[1],
            rustix::process::getpgrp().as_raw_nonzero().to_string()
        );
    }

    #[test]
    fn stdin_is_null() {
        let out = Cmd::new("reading stdin", "cat").output().unwrap();
        assert!(out.stdout.is_empty());
    }
}
