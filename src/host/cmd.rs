//! The one command runner. Every external program mkimg runs goes through
//! [`Cmd`]: it records what the command is for, the full argv, runs it with
//! stdin from /dev/null, and on failure reports the exit status and the last
//! ~1 KiB of stderr, e.g.
//! `creating root filesystem: "mke2fs" "-t" "ext4" … exited with 1` + tail.
//! A program whose stderr is the only account of what went wrong (a
//! distro's grub-mkconfig: a shell script that says what failed anywhere
//! in its output, or nothing after "Generating grub configuration
//! file ...") keeps all of it ([`Cmd::whole_stderr`], up to 1 MiB).
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
//!
//! A program of a root filesystem runs [`Cmd::sandboxed`]: it is started
//! from a thread in a new PID namespace and enters the
//! [`crate::host::sandbox`] between fork and exec; a failure there names
//! the step, and every error of a sandboxed command names the sandbox.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::Signal;

mod running;

use crate::host::interrupt;
use crate::host::sandbox::{enter_new_pid_namespace, ExecRequest, Sandbox, StepReport};
use running::{drain, joined, kill_group, Running, Waiter, Watcher};

/// How often a wait looks at the signal flags.
const POLL: Duration = Duration::from_millis(10);

/// How much of stderr is kept in an error.
const STDERR_TAIL: usize = 1024;

/// The most of stderr kept by [`Cmd::whole_stderr`]: a bound on the error
/// text, not on the program (its stderr is drained either way).
const STDERR_WHOLE: usize = 1 << 20;

/// How much of a failed command's stderr its error carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrKept {
    /// The last ~1 KiB: enough for a tool that ends on its reason.
    Tail,
    /// All of it (up to 1 MiB, then the last 1 MiB).
    Whole,
}

impl StderrKept {
    fn limit(self) -> usize {
        match self {
            StderrKept::Tail => STDERR_TAIL,
            StderrKept::Whole => STDERR_WHOLE,
        }
    }
}

/// A command to run, with what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub purpose: String,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// Start from an empty environment (only `env` is passed).
    pub clear_env: bool,
    /// Run in this sandbox (see [`crate::host::sandbox`]).
    pub sandbox: Option<Sandbox>,
    /// How much of stderr a failure reports.
    pub stderr_kept: StderrKept,
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
    #[error("{purpose}: cannot run {argv}: entering the sandbox failed at {step}: {source}")]
    Sandbox {
        purpose: String,
        argv: String,
        step: &'static str,
        source: std::io::Error,
    },
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
            clear_env: false,
            sandbox: None,
            stderr_kept: StderrKept::Tail,
        }
    }

    /// On failure, report all of stderr, not only its end.
    pub fn whole_stderr(mut self) -> Self {
        self.stderr_kept = StderrKept::Whole;
        self
    }

    /// Pass nothing of mkimg's environment; only what [`Cmd::env`] adds.
    pub fn env_clear(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Run inside `sandbox`; the program is looked up there.
    pub fn sandboxed(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
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

    /// The argv quoted for messages: `"mke2fs" "-t" "ext4"`; a sandboxed
    /// command's is followed by `[sandbox: …]`.
    pub fn argv_text(&self) -> String {
        let argv = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| format!("{:?}", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        match &self.sandbox {
            Some(sandbox) => format!("{argv} [{}]", sandbox.describe()),
            None => argv,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .process_group(0);
        // A sandboxed child is PID 1 of its own namespace (its parent is
        // outside it, getppid() says 0): the sandbox's entry sets the
        // death signal itself.
        if self.sandbox.is_none() {
            let parent = rustix::process::getpid();
            #[allow(unsafe_code)]
            // SAFETY: the closure runs in the forked child before exec; it
            // makes two async-signal-safe system calls (prctl, getppid),
            // allocates nothing and takes no lock. The death signal follows
            // the thread that spawns the child, and every runner below waits
            // for its child on that same thread.
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
        }
        if self.clear_env {
            command.env_clear();
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
    }

    /// Start `command` (made by [`Cmd::command`]) with stdout and stderr
    /// piped. A command sandboxed over a prepared root is started from a
    /// thread of its own in a new PID namespace, which waits for it (it is
    /// the parent whose death kills the sandbox) and can start no thread
    /// itself; the pipes come back here. A tree sandbox makes its PID
    /// namespace in the child: it starts from here.
    fn start(&self, mut command: Command) -> Result<Running, CmdError> {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let thread = self
            .sandbox
            .as_ref()
            .is_some_and(Sandbox::needs_pid_namespace_thread);
        if !thread {
            let (mut child, report) = self.spawn(command)?;
            let mut running = Running::new(&mut child, Waiter::Gone);
            running.waiter = Waiter::Child(child);
            running.report = report;
            running.pause_for_tests(&self.program);
            return Ok(running);
        }
        let (sender, receiver) = mpsc::channel();
        let cmd = self.clone();
        let waiter = std::thread::Builder::new()
            .name("mkimg-sandbox".into())
            .spawn(move || {
                let started = enter_new_pid_namespace()
                    .map_err(|e| cmd.spawn_error(e))
                    .and_then(|()| cmd.spawn(command));
                match started {
                    Ok((mut child, _)) => {
                        let running = Running::new(&mut child, Waiter::Gone);
                        let _ = sender.send(Ok(running));
                        child.wait()
                    }
                    Err(err) => {
                        let _ = sender.send(Err(err));
                        Err(std::io::Error::other("not started"))
                    }
                }
            })
            .map_err(|e| self.spawn_error(e))?;
        let mut running = receiver.recv().map_err(|_| {
            self.spawn_error(std::io::Error::other("the sandbox's thread ended early"))
        })??;
        running.waiter = Waiter::Thread(waiter);
        running.pause_for_tests(&self.program);
        Ok(running)
    }

    /// Spawn `command`, entering the sandbox in the child when there is
    /// one; a tree sandbox's report pipe comes back (its steps fail after
    /// the spawn: [`Cmd::sandbox_failure`]).
    fn spawn(&self, mut command: Command) -> Result<(Child, Option<StepReport>), CmdError> {
        let Some(sandbox) = &self.sandbox else {
            let child = command.spawn().map_err(|e| self.spawn_error(e))?;
            return Ok((child, None));
        };
        let exec = ExecRequest {
            program: &self.program,
            args: &self.args,
            env: &self.env,
            clear_env: self.clear_env,
        };
        let (entry, report) = sandbox.prepare(&exec).map_err(|e| self.spawn_error(e))?;
        #[allow(unsafe_code)]
        // SAFETY: `Entry::enter` runs between fork and exec in a child of a
        // multi-threaded process, so it must be async-signal-safe: it only
        // makes system calls (rustix, no libc state) on strings and buffers
        // allocated before the fork by `prepare`, allocates nothing, takes
        // no lock, and reports failure as an errno.
        unsafe {
            command.pre_exec(move || entry.enter());
        }
        let spawned = command.spawn();
        let child = spawned.map_err(|e| self.sandbox_error(e, &report))?;
        let after = (!sandbox.needs_pid_namespace_thread()).then_some(report);
        Ok((child, after))
    }

    /// The error of a tree sandbox whose step failed, once the command has
    /// ended unsuccessfully (`None`: the program itself failed).
    fn sandbox_failure(&self, report: Option<&StepReport>) -> Option<CmdError> {
        let (step, errno) = report?.failure()?;
        Some(CmdError::Sandbox {
            purpose: self.purpose.clone(),
            argv: self.argv_text(),
            step: step.text(),
            source: std::io::Error::from_raw_os_error(errno.unwrap_or(0)),
        })
    }

    fn sandbox_error(&self, source: std::io::Error, report: &StepReport) -> CmdError {
        match report.failed_step() {
            Some(step) => CmdError::Sandbox {
                purpose: self.purpose.clone(),
                argv: self.argv_text(),
                step: step.text(),
                source,
            },
            None => self.spawn_error(source),
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> CmdError {
        let hint = if source.kind() == std::io::ErrorKind::NotFound && self.sandbox.is_some() {
            " (not in the root filesystem, or its #! interpreter or ELF loader is not)".to_string()
        } else if source.kind() == std::io::ErrorKind::NotFound {
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
        let start = text.len().saturating_sub(self.stderr_kept.limit());
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        let kept = match self.stderr_kept {
            StderrKept::Whole if start > 0 => {
                format!("[… {start} bytes before]\n{}", &text[start..])
            }
            _ => text[start..].to_string(),
        };
        Err(CmdError::Failed {
            purpose: self.purpose.clone(),
            argv: self.argv_text(),
            status: describe_status(status),
            stderr: kept,
        })
    }

    /// Run, capturing stdout and stderr; a signal (see `host::interrupt`)
    /// that arrives meanwhile stops it.
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
        // Before the start: the test hook may hold `start` until a signal.
        let signalled_before = interrupt::received().is_some();
        let mut running = self.start(self.command())?;
        let watcher = Watcher::start(running.pid, signalled_before);
        let stdout_reader = drain(running.stdout.take());
        let mut tail = LineTail::new(self.stderr_kept.limit());
        if let Some(stderr) = running.stderr.take() {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            // A read error on the pipe ends the loop; wait() still reports the status.
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                on_line(text);
                tail.push(text);
                line.clear();
            }
        }
        let report = running.report.take();
        let status = running.wait().map_err(|e| self.spawn_error(e));
        let killed = watcher.stop();
        let stdout = joined(stdout_reader);
        if killed {
            return Err(self.interrupted());
        }
        let status = status?;
        if !status.success() {
            if let Some(err) = self.sandbox_failure(report.as_ref()) {
                return Err(err);
            }
        }
        self.check(status, tail.text().as_bytes())?;
        Ok(stdout)
    }
}

impl Cmd {
    /// Run in a process group of its own, capturing stdout and stderr, while
    /// watching `interrupted`: once it is set, the whole group (the program
    /// and everything it started) is killed with SIGKILL and reaped, and the
    /// result is [`CmdError::Interrupted`]. Its own group also keeps a
    /// terminal's Ctrl-C away from it: mkimg decides when it stops, after
    /// which its guards clean up.
    pub fn output_interruptible(&self, interrupted: &AtomicBool) -> Result<Output, CmdError> {
        tracing_debug(&self.argv_text());
        // Before the start: the test hook may hold `start` until a signal.
        let signalled_before = interrupt::received().is_some();
        let running = self.start(self.command())?;
        self.collect(running, interrupted, signalled_before)
    }

    /// [`Cmd::output_interruptible`] that returns the exit status and the
    /// output whatever the status (a failure the caller explains from the
    /// output, e.g. a sandbox's handed-back files); [`Cmd::check_status`]
    /// makes the usual error of it.
    pub fn output_unchecked_interruptible(
        &self,
        interrupted: &AtomicBool,
    ) -> Result<(ExitStatus, Output), CmdError> {
        tracing_debug(&self.argv_text());
        let signalled_before = interrupt::received().is_some();
        let running = self.start(self.command())?;
        self.wait_collecting(running, interrupted, signalled_before)
    }

    /// The error [`Cmd::output`] gives for `status` and `stderr`.
    pub fn check_status(&self, status: ExitStatus, stderr: &[u8]) -> Result<(), CmdError> {
        self.check(status, stderr)
    }

    /// Drain `running`'s output and wait for it; kill its process group
    /// once `interrupted` is set or a signal arrives after the start.
    fn collect(
        &self,
        running: Running,
        interrupted: &AtomicBool,
        signalled_before: bool,
    ) -> Result<Output, CmdError> {
        let (status, output) = self.wait_collecting(running, interrupted, signalled_before)?;
        self.check(status, &output.stderr)?;
        Ok(output)
    }

    fn wait_collecting(
        &self,
        mut running: Running,
        interrupted: &AtomicBool,
        signalled_before: bool,
    ) -> Result<(ExitStatus, Output), CmdError> {
        let report = running.report.take();
        let stdout = drain(running.stdout.take());
        let stderr = drain(running.stderr.take());
        let stop = || {
            interrupted.load(Ordering::SeqCst)
                || (!signalled_before && interrupt::received().is_some())
        };
        let status = loop {
            if stop() {
                kill_group(running.pid);
                let _ = running.wait();
                let _ = (joined(stdout), joined(stderr));
                return Err(self.interrupted());
            }
            match running.try_wait().map_err(|e| self.spawn_error(e))? {
                Some(status) => break status,
                None => std::thread::sleep(POLL),
            }
        };
        let (stdout, stderr) = (joined(stdout), joined(stderr));
        if !status.success() {
            if let Some(err) = self.sandbox_failure(report.as_ref()) {
                return Err(err);
            }
        }
        Ok((status, Output { stdout, stderr }))
    }

    fn interrupted(&self) -> CmdError {
        CmdError::Interrupted {
            purpose: self.purpose.clone(),
            argv: self.argv_text(),
        }
    }
}

/// The last lines of a stream, at most about `limit` bytes of them.
struct LineTail {
    lines: VecDeque<String>,
    bytes: usize,
    limit: usize,
}

impl LineTail {
    fn new(limit: usize) -> Self {
        LineTail {
            lines: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    fn push(&mut self, line: &str) {
        self.lines.push_back(line.to_string());
        self.bytes += line.len() + 1;
        while self.bytes > self.limit && self.lines.len() > 1 {
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

/// Whether each command is printed before it runs (`-v`).
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// `-v`: print each command (`+ "argv"…` on stderr) before it runs, from
/// now on, in every thread. Set once by `main` from the command line; an
/// explicit setting rather than an environment variable, so nothing is
/// mutated under running threads and no child inherits it.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Whether `-v` is on (a child mkimg gets it too).
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

fn tracing_debug(argv: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        eprintln!("+ {argv}");
    }
}

#[cfg(test)]
mod tests;
