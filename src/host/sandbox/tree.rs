//! The rootless sandbox: a program of a root filesystem run over a
//! directory tree (the `--grub mkconfig` tree, see `rootfs::tree`), by any
//! user — no root, no loop device, no filesystem mounted from a device.
//! When mkimg is root, the same steps run after it drops to
//! [`SANDBOX_ID`], so one path serves both.
//!
//! Owns: [`TreeSandbox`] (what the sandbox gets) and `TreeEntry` (the
//! steps between fork and exec). Two processes take them:
//!
//! 1. **The keeper** (the child mkimg forks): first closes every inherited
//!    descriptor but stdin, stdout, stderr and its report pipe (it never
//!    execs, so it would otherwise hold other threads' files — std's
//!    exec-status pipe included, which lets the spawn return at once);
//!    `PR_SET_PDEATHSIG = SIGKILL` (and a check that mkimg still lives);
//!    enters the stage directory that holds the tree as `root`; when it is
//!    root, drops to [`SANDBOX_ID`] (groups, gid, uid); a new **user
//!    namespace** U1 mapping 0 to that uid and gid (setgroups denied); new
//!    **mount, PID, IPC, UTS and network** namespaces, owned by U1. In the
//!    new mount namespace (every mount private) it builds the root: `root`
//!    bound onto itself; a tmpfs `/dev` holding bind mounts of the host's
//!    `null`, `zero`, `full`, `random`, `urandom` and `tty` (no mknod in a
//!    user namespace: bubblewrap's way), the symlinks `fd`, `std*` and those
//!    the caller asks for, empty files standing in for device nodes nothing
//!    opens, then made read-only; a tmpfs on `/tmp` and on each directory
//!    the caller names; the host files the caller names ([`HostFile`]:
//!    native tools) bound read-only over files of the tree; the whole
//!    root read-only, `nosuid`, `nodev`.
//!    Hostname `mkimg-sandbox`. Then it clones PID 1 and waits for it;
//!    afterwards it hands back the files of the sandbox's `/tmp` the
//!    caller asked for (on its stdout, framed: [`parse_handed_back`]) and
//!    exits with PID 1's status. It never execs: it holds the namespaces.
//! 2. **PID 1** of the new PID namespace: death signal again (and a check
//!    that the keeper lives, through a pipe whose other end only the keeper
//!    holds); a `/proc` of its own PID namespace; `pivot_root` into the
//!    root and the host's tree detached; inherited descriptors
//!    close-on-exec; then a second, **nested user namespace** U2 mapping 0
//!    to U1's 0: `id -u` still says 0, but U2 owns none of the namespaces
//!    above, so the rootfs's programs can mount, unmount, remount, mknod,
//!    set a hostname or configure a network device in none of them (as in
//!    `host::sandbox`'s mode for a prepared root); `PR_SET_NO_NEW_PRIVS`.
//!    It execs the program itself (`execve` of each `PATH` candidate, as
//!    execvp does), with exactly the command's environment.
//!
//! A failing step of either process writes its number and errno into the
//! report pipe and ends the process (status 125); the runner (`host::cmd`)
//! turns that into an error naming the step once the command has ended.
//!
//! So the program sees only the tree (read-only), its own tmpfs mounts,
//! its own /proc, a /dev of six harmless nodes, no /sys, no network, no
//! host process; everything it can write is a size-limited tmpfs that dies
//! with it. When mkimg dies (even by SIGKILL) the keeper dies (death
//! signal), PID 1 with it (death signal), and the kernel kills every
//! process of the PID namespace.
//!
//! The files of the tree must belong to the uid the sandbox maps to 0 (the
//! invoking user, or [`SANDBOX_ID`] for root: `host::treedir` makes them
//! so); the stage directory too. Every mount point (`dev`, `proc`, `tmp`,
//! the caller's) must be a plain directory of the tree: checked before the
//! fork, so no symlink of the rootfs leads a mount elsewhere.
//!
//! Must not: allocate between fork and exec (everything is prepared by
//! `TreeSandbox::prepare`); fork with glibc's `fork` there (its at-fork
//! handlers take locks another thread of mkimg may have held: the raw
//! `clone3` system call is used).
//!
//! Needs: user namespaces for unprivileged users
//! (`user.max_user_namespaces` > 0, no AppArmor or sysctl restriction),
//! a host `/proc` that is fully visible (the kernel allows a new `/proc`
//! in a user namespace only then: not in a container that masks parts of
//! it), a work directory on a filesystem mounted without `noexec`, Linux ≥
//! 5.6.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{fstat, mkdirat, open, openat, symlinkat, Gid, Mode, OFlags, RawDir, Uid, CWD};
use rustix::mount::{
    mount, mount_bind, mount_change, mount_remount, unmount, MountFlags, MountPropagationFlags,
    UnmountFlags,
};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{
    chdir, getpid, getppid, pivot_root, set_parent_process_death_signal, waitpid, Pid, Signal,
    WaitOptions,
};
use rustix::thread::{
    set_no_new_privs, set_thread_groups, set_thread_res_gid, set_thread_res_uid, unshare_unsafe,
    UnshareFlags,
};

use super::{mark_inherited_fds_cloexec, write_file, Step, StepReport, HOSTNAME, SANDBOX_ID};
use crate::host::treedir::{Node, TreeDir};

/// The tree's name inside the stage directory.
pub const ROOT: &str = "root";

/// The host's character devices bound into the sandbox's /dev.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The exit status of a keeper or PID 1 whose step failed (the report
/// pipe says which).
const FAILED: i32 = 125;

/// The most a handed-back file may hold (its tmpfs is no larger).
const HAND_BACK_MAX: u64 = 64 << 20;

/// A directory of the tree that gets a tmpfs of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// Absolute path inside the sandbox ("/boot/efi").
    pub path: String,
    /// `mode=…,size=…` for the mount.
    pub options: String,
}

/// A host file bound read-only over a regular file of the tree (the
/// programs, loader and libraries of `host::native_tools`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFile {
    /// The host's file: an absolute path to a regular file.
    pub host: PathBuf,
    /// Absolute path inside the sandbox, a regular file of the tree
    /// reached without a symlink.
    pub inside: String,
}

/// What a rootless sandbox gets: see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSandbox {
    /// The directory holding the tree as [`ROOT`].
    pub stage: PathBuf,
    /// Directories of the tree that get a tmpfs besides /tmp.
    pub tmpfs: Vec<Tmpfs>,
    /// Symlinks in its /dev: (path relative to /dev, target).
    pub dev_links: Vec<(String, String)>,
    /// Empty files in its /dev (relative to /dev) standing in for device
    /// nodes that are only looked at, never opened.
    pub dev_stand_ins: Vec<String>,
    /// Files of its /tmp handed back when the program has ended, instead
    /// of the program's stdout (which then goes to its stderr).
    pub hand_back: Vec<String>,
    /// Host files bound read-only over files of the tree.
    pub host_files: Vec<HostFile>,
}

impl TreeSandbox {
    /// A sandbox over `stage`/[`ROOT`] with a tmpfs /tmp, nothing more.
    pub fn new(stage: &Path) -> TreeSandbox {
        TreeSandbox {
            stage: stage.to_owned(),
            tmpfs: Vec::new(),
            dev_links: Vec::new(),
            dev_stand_ins: Vec::new(),
            hand_back: Vec::new(),
            host_files: Vec::new(),
        }
    }

    /// Make the stage directory `path` (mode 0700, owned by
    /// [`TreeSandbox::host_ids`]): the tree goes in it as [`ROOT`].
    pub fn create_stage(path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)?;
        let dir = open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let (uid, gid) = TreeSandbox::host_ids();
        rustix::fs::fchown(&dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o700))?;
        Ok(())
    }

    /// The uid and gid the sandbox's root is on the host: the invoking
    /// user's, or [`SANDBOX_ID`] for root. The tree must belong to them.
    pub fn host_ids() -> (u32, u32) {
        if rustix::process::geteuid().is_root() {
            (SANDBOX_ID, SANDBOX_ID)
        } else {
            (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            )
        }
    }

    /// One line for logs and errors: which sandbox ran.
    pub fn describe(&self) -> String {
        let (uid, _) = TreeSandbox::host_ids();
        format!(
            "rootless sandbox: new user namespace (uid/gid 0 = host {uid}), new pid/mount/ipc/\
             uts/net namespaces, pivot_root to a read-only bind of {}, own /proc, /dev of the \
             host's {}, tmpfs /tmp, no /sys, nested user namespace owning none of them, \
             no_new_privs",
            self.stage.join(ROOT).display(),
            DEV_NODES.join(", ")
        )
    }

    /// Checks in the parent: every mount point is a plain directory of the
    /// tree (no symlink on the way), and handed-back names are plain.
    fn check(&self, tree: &TreeDir) -> io::Result<()> {
        let points = ["dev", "proc", "tmp"]
            .into_iter()
            .map(str::to_string)
            .chain(self.tmpfs.iter().map(|t| rel(&t.path)));
        for point in points {
            if tree.node(&point)? != Some(Node::Dir) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("/{point} is not a plain directory of the sandbox's tree"),
                ));
            }
        }
        for file in &self.host_files {
            let regular = std::fs::symlink_metadata(&file.host).is_ok_and(|m| m.is_file());
            if !file.host.is_absolute() || !regular {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a regular host file", file.host.display()),
                ));
            }
            if tree.node(&rel(&file.inside))? != Some(Node::File) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file of the sandbox's tree (reached without a \
                         symlink)",
                        file.inside
                    ),
                ));
            }
        }
        let plain =
            |name: &str| !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if !self.hand_back.iter().all(|n| plain(n)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a handed-back file must be a plain name in /tmp",
            ));
        }
        Ok(())
    }

    /// Everything the child needs to run `exec`, allocated now (not after
    /// fork).
    pub(crate) fn prepare(&self, exec: &ExecRequest<'_>) -> io::Result<(TreeEntry, StepReport)> {
        let tree = TreeDir::open(&self.stage.join(ROOT), TreeSandbox::host_ids())?;
        self.check(&tree)?;
        let exec = Exec::new(exec)?;
        let c = |text: &str| {
            CString::new(text)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL"))
        };
        let root = |path: &str| c(&format!("{ROOT}/{}", rel(path)));
        let (uid, gid) = TreeSandbox::host_ids();
        let mut build = Vec::new();
        build.push(Op::Bind(c(ROOT)?, c(ROOT)?, Step::BindTree));
        build.push(Op::Tmpfs(
            root("/dev")?,
            MountFlags::NOSUID | MountFlags::NOEXEC,
            c("mode=0755,size=64k,nr_inodes=256")?,
        ));
        for node in DEV_NODES {
            let target = root(&format!("/dev/{node}"))?;
            build.push(Op::File(target.clone(), 0o666));
            build.push(Op::Bind(
                c(&format!("/dev/{node}"))?,
                target,
                Step::DevNodes,
            ));
        }
        let mut links: Vec<(String, String)> = [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        links.extend(self.dev_links.iter().cloned());
        let mut dirs: Vec<String> = Vec::new();
        for name in links.iter().map(|l| &l.0).chain(&self.dev_stand_ins) {
            if !plain_rel(name) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name:?}: not a plain path inside /dev"),
                ));
            }
            let mut parent = String::new();
            for part in name
                .split('/')
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .iter()
                .rev()
            {
                parent = if parent.is_empty() {
                    part.to_string()
                } else {
                    format!("{parent}/{part}")
                };
                if !dirs.contains(&parent) {
                    dirs.push(parent.clone());
                    build.push(Op::Dir(root(&format!("/dev/{parent}"))?));
                }
            }
        }
        for (name, target) in &links {
            build.push(Op::Symlink(c(target)?, root(&format!("/dev/{name}"))?));
        }
        for name in &self.dev_stand_ins {
            build.push(Op::File(root(&format!("/dev/{name}"))?, 0o600));
        }
        build.push(Op::ReadOnly(
            root("/dev")?,
            MountFlags::NOSUID | MountFlags::NOEXEC,
            Step::ReadOnlyRoot,
        ));
        build.push(Op::Tmpfs(
            root("/tmp")?,
            MountFlags::NOSUID | MountFlags::NODEV,
            c("mode=1777,size=64m")?,
        ));
        for tmpfs in &self.tmpfs {
            build.push(Op::Tmpfs(
                root(&tmpfs.path)?,
                MountFlags::NOSUID | MountFlags::NODEV,
                c(&tmpfs.options)?,
            ));
        }
        for file in &self.host_files {
            let target = root(&file.inside)?;
            build.push(Op::Bind(
                CString::new(file.host.as_os_str().as_bytes()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "a host path holds a NUL")
                })?,
                target.clone(),
                Step::HostFiles,
            ));
            build.push(Op::ReadOnly(
                target,
                MountFlags::NOSUID | MountFlags::NODEV,
                Step::HostFiles,
            ));
        }
        build.push(Op::ReadOnly(
            c(ROOT)?,
            MountFlags::NOSUID | MountFlags::NODEV,
            Step::ReadOnlyRoot,
        ));
        let hand_back = self
            .hand_back
            .iter()
            .map(|name| {
                Ok(HandBack {
                    name: c(name)?,
                    header: format!("{name} ").into_bytes(),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok((
            TreeEntry {
                parent: getpid(),
                stage: CString::new(self.stage.as_os_str().as_bytes()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "the stage path holds a NUL")
                })?,
                drop_to: rustix::process::geteuid()
                    .is_root()
                    .then(|| (Uid::from_raw(uid), Gid::from_raw(gid))),
                uid_map: format!("0 {uid} 1\n").into_bytes(),
                gid_map: format!("0 {gid} 1\n").into_bytes(),
                build,
                tmp: root("/tmp")?,
                proc_dir: root("/proc")?,
                root: c(ROOT)?,
                hand_back,
                exec,
                report: write,
            },
            StepReport(read),
        ))
    }
}

/// What the sandbox runs: the program (looked up in `PATH` inside the
/// sandbox when it holds no `/`), its arguments, and its whole
/// environment (a tree sandbox passes nothing of mkimg's).
pub(crate) struct ExecRequest<'a> {
    pub program: &'a OsStr,
    pub args: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    pub clear_env: bool,
}

/// [`ExecRequest`] as PID 1 execs it: NUL-terminated strings and the
/// pointer arrays `execve` takes, made before the fork.
struct Exec {
    candidates: Vec<CString>,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into `_strings`' heap buffers, which
// live as long as the `Exec` and never move or change; they are read only
// by `execve` in the forked child.
#[allow(unsafe_code)]
unsafe impl Send for Exec {}
#[allow(unsafe_code)]
unsafe impl Sync for Exec {}

impl Exec {
    fn new(request: &ExecRequest<'_>) -> io::Result<Exec> {
        let nul = || io::Error::new(io::ErrorKind::InvalidInput, "an argument holds a NUL");
        let c = |bytes: &[u8]| CString::new(bytes).map_err(|_| nul());
        if !request.clear_env {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a tree sandbox passes nothing of mkimg's environment: clear it",
            ));
        }
        let program = request.program.as_bytes();
        let candidates = if program.contains(&b'/') {
            vec![c(program)?]
        } else {
            let path = request
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map_or(b"/usr/sbin:/usr/bin:/sbin:/bin".as_slice(), |(_, v)| {
                    v.as_bytes()
                });
            path.split(|&b| b == b':')
                .filter(|dir| !dir.is_empty())
                .map(|dir| c(&[dir, b"/", program].concat()))
                .collect::<io::Result<Vec<_>>>()?
        };
        let mut strings = vec![c(program)?];
        strings.extend(
            request
                .args
                .iter()
                .map(|a| c(a.as_bytes()))
                .collect::<io::Result<Vec<_>>>()?,
        );
        let argc = strings.len();
        for (key, value) in request.env {
            strings.push(c(&[key.as_bytes(), b"=", value.as_bytes()].concat())?);
        }
        let pointers = |list: &[CString]| {
            list.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(Exec {
            argv: pointers(&strings[..argc]),
            envp: pointers(&strings[argc..]),
            candidates,
            _strings: strings,
        })
    }
}

/// Whether this host lets an unprivileged uid make the user namespace
/// both sandboxes start with (mkimg as root makes it as [`SANDBOX_ID`]):
/// the sysctls that forbid it, each named with its fix. Cheap, before the
/// build; a restriction they do not show still fails at the sandbox's
/// step, named there.
pub fn preflight() -> io::Result<()> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|v| v.trim().to_string())
    };
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return refuse(
            "user namespaces are disabled (user.max_user_namespaces = 0); \
             sysctl -w user.max_user_namespaces=15000"
                .into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return refuse(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); \
             sysctl -w kernel.unprivileged_userns_clone=1"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return refuse(
            "AppArmor restricts unprivileged user namespaces \
             (kernel.apparmor_restrict_unprivileged_userns = 1); \
             sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
                .into(),
        );
    }
    Ok(())
}

/// `path` without its leading `/`.
fn rel(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

/// A relative path of plain components.
fn plain_rel(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// One step of building the root, relative to the stage directory.
#[derive(Debug)]
enum Op {
    /// `mount --bind SOURCE TARGET`.
    Bind(CString, CString, Step),
    /// A tmpfs: target, flags, options.
    Tmpfs(CString, MountFlags, CString),
    /// An empty regular file with this mode.
    File(CString, u32),
    /// A directory (0755).
    Dir(CString),
    /// A symlink: target text, path.
    Symlink(CString, CString),
    /// Remount a mount read-only with these flags kept.
    ReadOnly(CString, MountFlags, Step),
}

/// A file of /tmp handed back: its name, and `"<name> "` for the header.
#[derive(Debug)]
struct HandBack {
    name: CString,
    header: Vec<u8>,
}

/// What the keeper and PID 1 hold between fork and exec.
pub(crate) struct TreeEntry {
    parent: Pid,
    stage: CString,
    drop_to: Option<(Uid, Gid)>,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    build: Vec<Op>,
    tmp: CString,
    proc_dir: CString,
    root: CString,
    hand_back: Vec<HandBack>,
    exec: Exec,
    report: OwnedFd,
}

impl TreeEntry {
    /// Run in the forked child (the keeper) instead of std's exec: it
    /// never returns. Only system calls on memory prepared before the fork.
    ///
    /// First of all every inherited descriptor but stdin, stdout, stderr
    /// and the report pipe is closed — std's exec-status pipe too, so the
    /// spawn returns at once: the keeper never execs and would otherwise
    /// hold descriptors of other threads' files (a writable executable
    /// makes their exec fail with ETXTBSY, a loop device stays busy) for
    /// as long as it lives. A failing step is reported through the report
    /// pipe (its number and errno) and ends the process; the runner turns
    /// it into an error naming the step once the command has ended.
    pub(crate) fn enter(&self) -> io::Result<()> {
        self.run()
    }

    fn run(&self) -> ! {
        if close_fds_except(&[self.report.as_raw_fd()]).is_err() {
            exit_now(FAILED);
        }
        self.step(Step::DeathSignal, self.death_signal_of(self.parent));
        self.step(Step::Chdir, chdir(self.stage.as_c_str()));
        if let Some((uid, gid)) = self.drop_to {
            self.step(
                Step::DropIds,
                set_thread_groups(&[])
                    .and_then(|()| set_thread_res_gid(gid, gid, gid))
                    .and_then(|()| set_thread_res_uid(uid, uid, uid)),
            );
            // The uid change made the process non-dumpable (its /proc/self
            // files root's: no uid_map write) and cleared the death signal.
            self.step(
                Step::Dumpable,
                rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable),
            );
            self.step(Step::DeathSignal, self.death_signal_of(self.parent));
        }
        #[allow(unsafe_code)]
        // SAFETY: CLONE_NEWUSER needs a single-threaded caller, which the
        // child of fork is; CLONE_FILES (the hazard `unshare_unsafe` names)
        // is not passed.
        let user = unsafe { unshare_unsafe(UnshareFlags::NEWUSER) };
        self.step(Step::UserNamespace, user);
        self.step(Step::IdMaps, self.write_maps(&self.uid_map, &self.gid_map));
        let flags = UnshareFlags::NEWNS
            | UnshareFlags::NEWPID
            | UnshareFlags::NEWIPC
            | UnshareFlags::NEWUTS
            | UnshareFlags::NEWNET;
        #[allow(unsafe_code)]
        // SAFETY: as above; no CLONE_FILES.
        let unshared = unsafe { unshare_unsafe(flags) };
        self.step(Step::UnshareTree, unshared);
        self.step(
            Step::MakePrivate,
            mount_change(
                c"/",
                MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
            ),
        );
        for op in &self.build {
            self.run_op(op);
        }
        let tmp = if self.hand_back.is_empty() {
            None
        } else {
            let opened = open(
                self.tmp.as_c_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            );
            Some(self.step(Step::BuildRoot, opened))
        };
        self.step(
            Step::Hostname,
            rustix::system::sethostname(HOSTNAME.as_bytes()),
        );
        // Only the keeper holds `alive`'s write end: PID 1 sees it hang up
        // when the keeper is gone.
        let (alive, alive_w) = self.step(Step::Fork, pipe_with(PipeFlags::CLOEXEC));
        match self.step(Step::Fork, clone_process()) {
            None => {
                drop(alive_w);
                drop(tmp);
                self.pid1(&alive)
            }
            Some(pid) => {
                drop(alive);
                self.keep(pid, &alive_w, tmp.as_ref())
            }
        }
    }

    /// PID 1's steps (see the module doc), then the program: it never
    /// returns.
    fn pid1(&self, alive: &OwnedFd) -> ! {
        self.step(Step::DeathSignal, self.death_signal_while(alive));
        let pseudo = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        self.step(
            Step::MountProc,
            mount(c"proc", self.proc_dir.as_c_str(), c"proc", pseudo, None),
        );
        self.step(
            Step::PivotRoot,
            chdir(self.root.as_c_str()).and_then(|()| pivot_root(c".", c".")),
        );
        self.step(
            Step::DetachHost,
            unmount(c".", UnmountFlags::DETACH).and_then(|()| chdir(c"/")),
        );
        self.step(Step::CloseOnExec, mark_inherited_fds_cloexec());
        if !self.hand_back.is_empty() {
            self.step(Step::CloseOnExec, stdout_to_stderr());
        }
        #[allow(unsafe_code)]
        // SAFETY: single-threaded (the child of clone); no CLONE_FILES.
        let nested = unsafe { unshare_unsafe(UnshareFlags::NEWUSER) };
        self.step(Step::NestedUserNamespace, nested);
        self.step(Step::NestedIdMaps, self.write_maps(b"0 0 1\n", b"0 0 1\n"));
        self.step(Step::NoNewPrivs, set_no_new_privs(true));
        self.step(Step::DeathSignal, self.death_signal_while(alive));
        let errno = self.exec();
        self.step::<()>(Step::Exec, Err(errno));
        exit_now(FAILED)
    }

    /// `execve` of each candidate path in turn, as execvp does: the errno
    /// of the last failure when none runs (ENOENT unless one was there
    /// but could not be run).
    fn exec(&self) -> rustix::io::Errno {
        let mut error = rustix::io::Errno::NOENT;
        for path in &self.exec.candidates {
            #[allow(unsafe_code)]
            // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings
            // and NULL-terminated pointer arrays made by `Exec::new` before
            // the fork; execve only returns on failure.
            unsafe {
                libc::execve(
                    path.as_ptr(),
                    self.exec.argv.as_ptr(),
                    self.exec.envp.as_ptr(),
                );
            }
            let errno = rustix::io::Errno::from_raw_os_error(
                io::Error::last_os_error().raw_os_error().unwrap_or(0),
            );
            match errno {
                rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => {}
                other => error = other,
            }
        }
        error
    }

    /// The keeper after the clone: close what PID 1 must be the only
    /// holder of (the spawn's status pipe above all, or mkimg would wait
    /// for the keeper's end), wait for PID 1, hand back, exit as it did.
    fn keep(&self, pid1: Pid, alive_w: &OwnedFd, tmp: Option<&OwnedFd>) -> ! {
        let keep = [alive_w.as_raw_fd(), tmp.map_or(-1, AsRawFd::as_raw_fd)];
        let _ = close_fds_except(&keep);
        let status = loop {
            match waitpid(Some(pid1), WaitOptions::empty()) {
                Ok(Some((_, status))) => break status,
                Err(rustix::io::Errno::INTR) => continue,
                _ => exit_now(126),
            }
        };
        if let Some(tmp) = tmp {
            for file in &self.hand_back {
                if hand_back(tmp, file).is_err() {
                    break;
                }
            }
        }
        let code = match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            _ => 125,
        };
        exit_now(code)
    }

    fn run_op(&self, op: &Op) {
        match op {
            Op::Bind(source, target, step) => {
                self.step(*step, mount_bind(source.as_c_str(), target.as_c_str()))
            }
            Op::Tmpfs(target, flags, data) => self.step(
                Step::BuildRoot,
                mount(
                    c"tmpfs",
                    target.as_c_str(),
                    c"tmpfs",
                    *flags,
                    Some(data.as_c_str()),
                ),
            ),
            Op::File(path, mode) => {
                let made = open(
                    path.as_c_str(),
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    Mode::from_raw_mode(*mode),
                );
                self.step(Step::DevNodes, made.map(drop))
            }
            Op::Dir(path) => self.step(
                Step::BuildRoot,
                mkdirat(CWD, path.as_c_str(), Mode::from_raw_mode(0o755)),
            ),
            Op::Symlink(target, path) => self.step(
                Step::BuildRoot,
                symlinkat(target.as_c_str(), CWD, path.as_c_str()),
            ),
            Op::ReadOnly(target, flags, step) => self.step(
                *step,
                mount_remount(
                    target.as_c_str(),
                    MountFlags::BIND | MountFlags::RDONLY | *flags,
                    c"",
                ),
            ),
        }
    }

    /// setgroups deny, then the uid and gid maps, of this process.
    fn write_maps(&self, uid_map: &[u8], gid_map: &[u8]) -> rustix::io::Result<()> {
        write_file(c"/proc/self/setgroups", b"deny")
            .and_then(|()| write_file(c"/proc/self/uid_map", uid_map))
            .and_then(|()| write_file(c"/proc/self/gid_map", gid_map))
    }

    /// SIGKILL when the parent dies; an error if it already has.
    fn death_signal_of(&self, parent: Pid) -> rustix::io::Result<()> {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        match getppid() == Some(parent) {
            true => Ok(()),
            false => Err(rustix::io::Errno::SRCH),
        }
    }

    /// SIGKILL when the keeper dies; an error if `alive` says it has.
    fn death_signal_while(&self, alive: &OwnedFd) -> rustix::io::Result<()> {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        let mut fds = [rustix::event::PollFd::new(
            alive,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&zero))?;
        match fds[0].revents().is_empty() {
            true => Ok(()),
            false => Err(rustix::io::Errno::SRCH),
        }
    }

    /// `result`'s value; on failure the step and its errno go into the
    /// report pipe and the process ends.
    fn step<T>(&self, step: Step, result: rustix::io::Result<T>) -> T {
        match result {
            Ok(value) => value,
            Err(errno) => {
                let code = errno.raw_os_error().to_be_bytes();
                let message = [step as u8, code[0], code[1], code[2], code[3]];
                // Best effort: the exit status alone still says it failed.
                let _ = rustix::io::write(&self.report, &message);
                exit_now(FAILED)
            }
        }
    }
}

/// `clone3` with only `SIGCHLD`: a copy of this process, like fork(2)
/// without glibc's at-fork handlers. `None` in the child.
fn clone_process() -> rustix::io::Result<Option<Pid>> {
    /// `struct clone_args`, the first version (64 bytes).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs {
        flags: 0,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: 17, // SIGCHLD
        stack: 0,
        stack_size: 0,
        tls: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: clone3 without CLONE_VM or a new stack duplicates the process
    // as fork(2) does; `args` lives across the call and its size is passed.
    // The caller is single-threaded (a child of fork), so nothing another
    // thread holds is copied half-done; the child only makes system calls
    // before exec.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => Ok(None),
        pid if pid > 0 => Ok(i32::try_from(pid).ok().and_then(Pid::from_raw)),
        _ => Err(rustix::io::Errno::from_raw_os_error(
            io::Error::last_os_error().raw_os_error().unwrap_or(0),
        )),
    }
}

/// The program's stdout becomes its stderr: stdout carries the
/// handed-back files only.
fn stdout_to_stderr() -> rustix::io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: dup2 on the standard descriptors, async-signal-safe.
    let ret = unsafe { libc::dup2(2, 1) };
    match ret {
        1 => Ok(()),
        _ => Err(rustix::io::Errno::BADF),
    }
}

/// `_exit(code)`: no destructors, no at-exit handlers (a forked child).
fn exit_now(code: i32) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: _exit is async-signal-safe and ends the process.
    unsafe {
        libc::_exit(code)
    }
}

/// Close every descriptor above stderr but `keep`: listed from /proc/self/fd
/// into a stack buffer, closed after the listing, until none is left.
fn close_fds_except(keep: &[RawFd]) -> rustix::io::Result<()> {
    loop {
        let dir = open(
            c"/proc/self/fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        let mut found = [0 as RawFd; 128];
        let mut count = 0;
        let mut entries = RawDir::new(&dir, &mut buf);
        while let Some(entry) = entries.next() {
            let Some(fd) = super::parse_fd(entry?.file_name().to_bytes()) else {
                continue;
            };
            if fd > 2 && fd != dir.as_raw_fd() && !keep.contains(&fd) && count < found.len() {
                found[count] = fd;
                count += 1;
            }
        }
        drop(dir);
        if count == 0 {
            return Ok(());
        }
        for &fd in &found[..count] {
            #[allow(unsafe_code)]
            // SAFETY: `fd` was listed as open in this single-threaded process
            // and is neither kept nor used again.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
    }
}

/// Write `"<name> <length>\n"` and the file's bytes to stdout, or
/// `"<name> -\n"` when /tmp has no such regular file (a symlink there is
/// not followed).
fn hand_back(tmp: &OwnedFd, file: &HandBack) -> rustix::io::Result<()> {
    let stdout = stdout_fd();
    write_all(stdout, &file.header)?;
    let opened = openat(
        tmp,
        file.name.as_c_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let fd = match opened {
        Ok(fd) if fstat(&fd).is_ok_and(|s| s.st_mode & 0o170_000 == 0o100_000) => fd,
        _ => return write_all(stdout, b"-\n"),
    };
    let size = fstat(&fd)?.st_size.max(0).unsigned_abs().min(HAND_BACK_MAX);
    let mut digits = [0u8; 24];
    write_all(stdout, decimal(size, &mut digits))?;
    write_all(stdout, b"\n")?;
    let mut buf = [0u8; 8192];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        let n = match rustix::io::read(&fd, &mut buf[..want])? {
            0 => {
                // Shorter than fstat said: pad, so the framing holds.
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        write_all(stdout, &buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn stdout_fd() -> BorrowedFd<'static> {
    #[allow(unsafe_code)]
    // SAFETY: descriptor 1 stays open for the keeper's whole life.
    unsafe {
        BorrowedFd::borrow_raw(1)
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> rustix::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(rustix::io::Errno::PIPE),
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 24]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// The files a [`TreeSandbox`] handed back, from the command's stdout, in
/// the order asked: `None` for one that was not there (or not a regular
/// file).
pub fn parse_handed_back(stdout: &[u8]) -> io::Result<Vec<(String, Option<Vec<u8>>)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut files = Vec::new();
    let mut rest = stdout;
    while !rest.is_empty() {
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("a handed-back file's header has no end"))?;
        let line = std::str::from_utf8(&rest[..line_end])
            .map_err(|_| bad("a handed-back file's header is not UTF-8"))?;
        rest = &rest[line_end + 1..];
        let (name, size) = line
            .rsplit_once(' ')
            .ok_or_else(|| bad("a handed-back file's header has no size"))?;
        if size == "-" {
            files.push((name.to_string(), None));
            continue;
        }
        let size: usize = size
            .parse()
            .map_err(|_| bad("a handed-back file's size is not a number"))?;
        if size > rest.len() {
            return Err(bad("a handed-back file is cut short"));
        }
        files.push((name.to_string(), Some(rest[..size].to_vec())));
        rest = &rest[size..];
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
