//! Runs a built machine and talks to its serial console: the streaming
//! sibling of [`crate::host::cmd`]. It owns the QEMU process group
//! (`DIR/start_vm.sh -snapshot`, its own group, stdin piped, stdout and
//! stderr merged into one pipe read on a thread), the throw-away copy of the
//! UEFI variable store, and the loop that feeds [`Console`] and [`Dialogue`]
//! against a deadline.
//!
//! The group is killed (SIGTERM, then SIGKILL) on every way out: [`Vm`]'s
//! `Drop` does it, and the caller's `host::interrupt::InterruptGuard`
//! turns SIGINT/SIGTERM to mkimg into a flag the loop checks. It prints nothing: what happens flows out as
//! [`Event`]s; the command decides what to show.
//!
//! `start_vm.sh` contract (outputs/): works from any directory, ends in
//! `exec qemu-system-… -nographic … "$@"`, serial console on stdio, and
//! `MKIMG_VARS=/path` replaces the variable store in DIR.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};
use tempfile::TempDir;

use crate::host::cmd::{Cmd, CmdError};
use crate::host::console::{Action, Console, Dialogue, DialogueError};

/// The script `mkimg build` writes next to the image.
pub const SCRIPT: &str = "start_vm.sh";
/// How long the loop waits for console output before checking the clock.
const TICK: Duration = Duration::from_millis(100);
/// Between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// After `poweroff` was typed, how long QEMU has to exit by itself.
pub const POWEROFF_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{dir}: no {SCRIPT}; is it a `mkimg build` output directory?")]
    NoScript { dir: PathBuf },
    #[error("{dir}: several UEFI variable stores ({names}); pick one with --vars NAME")]
    SeveralVars { dir: PathBuf, names: String },
    #[error("{dir}: no UEFI variable store {name:?} (found: {names})")]
    NoSuchVars {
        dir: PathBuf,
        name: String,
        names: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("console: {0}")]
    Console(#[source] io::Error),
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VmError {
    let path = path.to_path_buf();
    move |source| VmError::Io { what, path, source }
}

/// The UEFI variable store in `dir` (a `*VARS*.fd` file), or the one named
/// by `pick`; `None` if there is none (U-Boot boards).
pub fn find_vars(dir: &Path, pick: Option<&str>) -> Result<Option<PathBuf>, VmError> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(io_error("reading directory", dir))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.contains("VARS") && name.ends_with(".fd"))
        .collect();
    names.sort();
    match (pick, names.as_slice()) {
        (Some(name), _) if dir.join(name).is_file() => Ok(Some(dir.join(name))),
        (Some(name), _) => Err(VmError::NoSuchVars {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            names: names.join(", "),
        }),
        (None, []) => Ok(None),
        (None, [one]) => Ok(Some(dir.join(one))),
        (None, _) => Err(VmError::SeveralVars {
            dir: dir.to_path_buf(),
            names: names.join(", "),
        }),
    }
}

/// What one wait for console output gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Data(Vec<u8>),
    /// Nothing within the timeout.
    Idle,
    /// Every writer closed the console: the machine is gone.
    Closed,
}

/// A running machine: its process group, console and variable store copy.
#[derive(Debug)]
pub struct Vm {
    cmd: Cmd,
    child: Child,
    pgid: Pid,
    stdin: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    started: Instant,
    status: Option<ExitStatus>,
    killed: bool,
    _vars: Option<TempDir>,
}

impl Vm {
    /// Start `dir/start_vm.sh -snapshot`, with a copy of the variable store.
    pub fn start(dir: &Path, vars: Option<&str>) -> Result<Vm, VmError> {
        let dir = fs::canonicalize(dir).map_err(io_error("opening", dir))?;
        let script = dir.join(SCRIPT);
        if !script.is_file() {
            return Err(VmError::NoScript { dir });
        }
        let mut cmd = Cmd::new(format!("booting {}", dir.display()), &script).arg("-snapshot");
        let vars_dir = match find_vars(&dir, vars)? {
            Some(store) => {
                let temp = tempfile::Builder::new()
                    .prefix("mkimg-boot-")
                    .tempdir()
                    .map_err(io_error(
                        "creating a temporary directory in",
                        &std::env::temp_dir(),
                    ))?;
                let copy = temp.path().join(store.file_name().expect("a file in dir"));
                fs::copy(&store, &copy).map_err(io_error("copying", &store))?;
                fs::set_permissions(&copy, fs::Permissions::from_mode(0o644))
                    .map_err(io_error("making writable", &copy))?;
                cmd = cmd.env("MKIMG_VARS", &copy);
                Some(temp)
            }
            None => None,
        };
        // The board's fixed ssh forward port may be taken (another VM, a
        // parallel test): use a free one unless the caller chose.
        if std::env::var_os("MKIMG_SSH_PORT").is_none() {
            if let Some(port) = free_tcp_port() {
                cmd = cmd.env("MKIMG_SSH_PORT", port.to_string());
            }
        }
        let mut vm = Vm::spawn(cmd)?;
        vm._vars = vars_dir;
        Ok(vm)
    }

    /// Start `cmd` (a start_vm.sh, or QEMU itself) as a machine: its own
    /// process group, stdin piped, stdout and stderr merged into the
    /// console. `cmd.cwd` and `cmd.clear_env` are honoured; a sandbox is not.
    pub fn spawn(cmd: Cmd) -> Result<Vm, VmError> {
        let program = PathBuf::from(&cmd.program);
        let (mut reader, writer) = io::pipe().map_err(io_error("creating a pipe for", &program))?;
        // Times count from before the spawn: the machine may print (and
        // wait) before this thread runs again.
        let started = Instant::now();
        let spawned = {
            let mut command = Command::new(&cmd.program);
            if cmd.clear_env {
                command.env_clear();
            }
            if let Some(cwd) = &cmd.cwd {
                command.current_dir(cwd);
            }
            command
                .args(&cmd.args)
                .envs(cmd.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(
                    writer
                        .try_clone()
                        .map_err(io_error("duplicating a pipe for", &program))?,
                )
                .stderr(writer)
                .process_group(0);
            command.spawn()
            // `command` drops here, closing our ends of the writer, so the
            // reader sees EOF once the machine's processes are gone.
        };
        let mut child = spawned.map_err(|source| CmdError::Spawn {
            purpose: cmd.purpose.clone(),
            argv: cmd.argv_text(),
            source,
            hint: String::new(),
        })?;
        let (sender, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if sender.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
        Ok(Vm {
            cmd,
            pgid: Pid::from_child(&child),
            stdin: child.stdin.take(),
            child,
            output,
            started,
            status: None,
            killed: false,
            _vars: None,
        })
    }

    /// The command that was started, for messages.
    pub fn command(&self) -> &Cmd {
        &self.cmd
    }

    /// The process group of the machine (the pid of start_vm.sh).
    pub fn pgid(&self) -> i32 {
        self.pgid.as_raw_nonzero().get()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Wait up to `timeout` for console output.
    pub fn read(&mut self, timeout: Duration) -> Read {
        match self.output.recv_timeout(timeout) {
            Ok(data) => Read::Data(data),
            Err(RecvTimeoutError::Timeout) => Read::Idle,
            Err(RecvTimeoutError::Disconnected) => Read::Closed,
        }
    }

    /// Type on the console. A machine that is gone is not an error here:
    /// its console closes and the loop sees that.
    pub fn send(&mut self, bytes: &[u8]) {
        if let Some(stdin) = &mut self.stdin {
            if stdin.write_all(bytes).and_then(|()| stdin.flush()).is_err() {
                self.stdin = None;
            }
        }
    }

    fn reap(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Wait up to `timeout` for start_vm.sh to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while self.reap().is_none() && Instant::now() < end {
            thread::sleep(Duration::from_millis(20));
        }
        self.status
    }

    /// Whether the leader exited and no live process is left in the group.
    fn group_gone(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.reap().is_some() && live_members(self.pgid()).is_empty() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// End the whole process group: SIGTERM, then SIGKILL after a grace
    /// period. Idempotent; also done on drop.
    pub fn kill(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        self.stdin = None;
        if self.group_gone(Duration::ZERO) {
            return;
        }
        let _ = kill_process_group(self.pgid, Signal::TERM);
        if !self.group_gone(KILL_GRACE) {
            let _ = kill_process_group(self.pgid, Signal::KILL);
            self.group_gone(Duration::from_secs(5));
        }
    }

    /// The error for a machine that stopped on its own before the end: the
    /// full argv and exit status, as [`Cmd`] reports them, and the console.
    pub fn exit_error(&self, status: ExitStatus, console_tail: &str) -> CmdError {
        CmdError::Failed {
            purpose: self.cmd.purpose.clone(),
            argv: self.cmd.argv_text(),
            status: describe_status(status),
            stderr: console_tail.to_string(),
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Pids of the live (not zombie) processes in process group `pgid`.
pub fn live_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp …`; comm may hold spaces and ')'.
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = fields.next()?;
            let pgrp: i32 = fields.nth(1)?.parse().ok()?;
            (pgrp == pgid && state != "Z" && state != "X").then_some(pid)
        })
        .collect()
}

/// What happens during a session, in order.
#[derive(Debug)]
pub enum Event<'a> {
    /// Console bytes as read, escapes and all (for `--log`).
    Raw(&'a [u8]),
    Marker {
        name: &'a str,
        at: Duration,
    },
    /// What the `--run` command printed.
    Output(&'a [u8]),
}

/// How a session ended. The machine is stopped in every case.
#[derive(Debug)]
pub enum Ending {
    /// The dialogue finished (every required marker reached).
    Finished {
        run_status: Option<i32>,
    },
    TimedOut,
    Interrupted,
    /// start_vm.sh exited before the end (`None`: the console closed but
    /// the process did not exit).
    Exited(Option<ExitStatus>),
    LoginFailed(DialogueError),
}

/// Limits of a session.
#[derive(Debug)]
pub struct Limits<'a> {
    /// From the start of the machine to the end of the dialogue.
    pub timeout: Duration,
    /// After `poweroff`: how long QEMU has to exit before it is killed.
    pub poweroff_wait: Duration,
    pub interrupted: &'a AtomicBool,
}

/// Feed the console to `console` and `dialogue` until the dialogue finishes,
/// the time is up, mkimg is interrupted or the machine stops; then stop it.
/// `observe` sees every [`Event`]; its error ends the session.
pub fn drive(
    vm: &mut Vm,
    console: &mut Console,
    dialogue: &mut Dialogue,
    limits: &Limits<'_>,
    observe: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> Result<Ending, VmError> {
    let ending = loop {
        if limits.interrupted.load(Ordering::SeqCst) {
            break Ending::Interrupted;
        }
        let now = vm.elapsed();
        if now >= limits.timeout {
            break Ending::TimedOut;
        }
        let text = match vm.read(TICK.min(limits.timeout - now)) {
            Read::Data(raw) => {
                observe(Event::Raw(&raw)).map_err(VmError::Console)?;
                let fed = console.feed(&raw, vm.elapsed());
                for index in fed.reached {
                    let name = &console.markers()[index].name;
                    let at = console.reached_at(index).unwrap_or(now);
                    observe(Event::Marker { name, at }).map_err(VmError::Console)?;
                }
                fed.text
            }
            // QEMU gone while something it started still holds the console.
            Read::Idle if vm.reap().is_some() => break Ending::Exited(vm.status),
            Read::Idle => Vec::new(),
            Read::Closed => break Ending::Exited(vm.wait_exit(KILL_GRACE)),
        };
        let actions = match dialogue.feed(&text, vm.elapsed(), console.all_required_reached()) {
            Ok(actions) => actions,
            Err(err) => break Ending::LoginFailed(err),
        };
        let mut finished = None;
        for action in actions {
            match action {
                Action::Send(bytes) => vm.send(&bytes),
                Action::Output(bytes) => {
                    observe(Event::Output(&bytes)).map_err(VmError::Console)?
                }
                Action::Finished {
                    run_status,
                    powering_off,
                } => finished = Some((run_status, powering_off)),
            }
        }
        if let Some((run_status, powering_off)) = finished {
            if powering_off {
                drain_until_exit(vm, limits, observe)?;
            }
            break Ending::Finished { run_status };
        }
    };
    vm.kill();
    Ok(ending)
}

/// Keep logging the console until the machine powers off, or the wait ends.
fn drain_until_exit(
    vm: &mut Vm,
    limits: &Limits<'_>,
    observe: &mut dyn FnMut(Event<'_>) -> io::Result<()>,
) -> Result<(), VmError> {
    let end = Instant::now() + limits.poweroff_wait;
    while Instant::now() < end && !limits.interrupted.load(Ordering::SeqCst) {
        match vm.read(TICK) {
            Read::Data(raw) => observe(Event::Raw(&raw)).map_err(VmError::Console)?,
            Read::Idle => {}
            Read::Closed => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod watch;

/// A TCP port that was free on every interface a moment ago (QEMU's
/// hostfwd binds all of them); the kernel picks it.
pub(crate) fn free_tcp_port() -> Option<u16> {
    std::net::TcpListener::bind(("0.0.0.0", 0))
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}
