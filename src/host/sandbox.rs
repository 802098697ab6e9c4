//! The sandbox every program of a root filesystem runs in (grub-mkconfig
//! and the `/etc/grub.d` scripts it runs): what makes the rootfs's code
//! unable to touch the host, whether mkimg runs as root or not.
//!
//! Owns: [`Sandbox`], the description of one sandboxed command that
//! [`crate::host::cmd::Cmd::sandboxed`] attaches to a command, in one of
//! two modes, and the steps the child takes between fork and exec:
//!
//! - [`Sandbox::Tree`] (`tree.rs`, the rootless sandbox): the root is a
//!   directory tree the sandbox mounts itself, in namespaces owned by a
//!   user namespace it makes first — any user, and root mapped to
//!   [`SANDBOX_ID`]. The `--grub mkconfig` default; see [`tree`].
//! - [`Sandbox::Prepared`] (this file): the root is a directory the
//!   caller prepared as host root in its private mount namespace (the
//!   `--grub mkconfig` mount fallback: an ext4 image on a loop device, see
//!   `host::chroot`). The rest of this doc is that mode's.
//!
//! What a prepared root's program gets, in the order the child sets it up:
//!
//! 1. PID 1 of a new **PID namespace** (the spawning thread called
//!    `unshare(CLONE_NEWPID)`, [`enter_new_pid_namespace`]; the child
//!    checks it is PID 1 and refuses to run otherwise), with
//!    `PR_SET_PDEATHSIG = SIGKILL`: when mkimg dies,
//!    even by SIGKILL, its PID 1 dies and the kernel kills every process of
//!    the namespace with it. It can see and signal no host process.
//! 2. New **mount, IPC, UTS and network** namespaces (every mount private,
//!    so nothing propagates out): no network device but
//!    a loopback that is down, hostname `mkimg-sandbox`.
//! 3. A fresh `/proc` of its own PID namespace, then **`pivot_root`** into
//!    the prepared root and the host's tree detached: there is no path
//!    back to the host root (`chroot ..` tricks end at this root; `/proc/N/root`
//!    only names processes of the sandbox). No `/sys` (grub-probe does
//!    not need it; see `bootloader::mkconfig`). `/dev` is whatever the
//!    caller mounted there (the chroot session's private tmpfs). Every
//!    descriptor but stdin, stdout and stderr is closed at exec, even one
//!    mkimg inherited without close-on-exec.
//! 4. Host root is dropped: supplementary groups cleared, then uid and gid
//!    [`SANDBOX_ID`] (all capabilities go with uid 0), then a new **user
//!    namespace** in which that uid is 0 — so `id -u` says 0, as
//!    grub-mkconfig insists, but that root owns nothing of the host: files
//!    of the host's root are "nobody" to it, and the mount, PID and network
//!    namespaces above belong to the host's user namespace, so it can
//!    mount, unmount, mknod, or configure nothing of them.
//! 5. `PR_SET_NO_NEW_PRIVS`: no set-uid program or file capability raises
//!    it again.
//!
//! Must not: allocate between fork and exec (everything the child uses is
//! prepared by `Sandbox::prepare`), or start a command over a prepared
//! root from a thread that is not in a fresh PID namespace (the PID-1
//! check makes that an error, not a weaker sandbox).
//!
//! Why in-process (`pre_exec`) and not `unshare(1)`: util-linux `unshare`
//! can chroot but not `pivot_root`, and maps the caller's uid (root) to
//! root; the steps here are a dozen system calls, each named in the error
//! when it fails.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Gid, Mode, OFlags, RawDir, Uid};
use rustix::io::{fcntl_getfd, fcntl_setfd, FdFlags};
use rustix::mount::{
    mount, mount_change, unmount, MountFlags, MountPropagationFlags, UnmountFlags,
};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{chdir, getpid, pivot_root, set_parent_process_death_signal, Signal};
use rustix::thread::{
    set_no_new_privs, set_thread_groups, set_thread_res_gid, set_thread_res_uid, unshare_unsafe,
    UnshareFlags,
};

/// The host uid and gid the sandbox runs as (root inside its user
/// namespace): "mkim" in ASCII, owned by nothing on a normal host and far
/// above the ranges distributions and subuid allocate.
pub const SANDBOX_ID: u32 = 0x6d6b_696d;

/// The sandbox's hostname (its own UTS namespace).
pub const HOSTNAME: &str = "mkimg-sandbox";

pub mod tree;

pub(crate) use tree::ExecRequest;
use tree::TreeEntry;
pub use tree::{parse_handed_back, HostFile, Tmpfs, TreeSandbox};

/// One sandboxed command: where its root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    /// A directory the caller made the root of: it has mounted everything
    /// the program needs below it (read-only root, private /dev, tmpfs
    /// /tmp) in its private mount namespace, and it must hold an empty
    /// `proc` directory. Needs root (the `--grub mkconfig` mount path).
    Prepared(PathBuf),
    /// A directory tree the sandbox makes its root itself, for any user:
    /// see [`tree`].
    Tree(TreeSandbox),
}

impl Sandbox {
    /// A sandbox over a root the caller prepared ([`Sandbox::Prepared`]).
    pub fn new(root: &Path) -> Sandbox {
        Sandbox::Prepared(root.to_owned())
    }

    /// One line for logs and errors: which sandbox ran.
    pub fn describe(&self) -> String {
        match self {
            Sandbox::Prepared(root) => format!(
                "sandbox: pivot_root to {}, new user namespace (uid/gid 0 = host {SANDBOX_ID}), \
                 new pid/mount/ipc/uts/net namespaces, own /proc, no /sys, no_new_privs",
                root.display()
            ),
            Sandbox::Tree(tree) => tree.describe(),
        }
    }

    /// Whether the command must be started from a thread that entered a
    /// new PID namespace (a prepared root: its child is PID 1 itself); a
    /// tree sandbox makes its own PID namespace.
    pub(crate) fn needs_pid_namespace_thread(&self) -> bool {
        matches!(self, Sandbox::Prepared(_))
    }

    /// Everything the child needs to run `exec`, allocated now (not after
    /// fork), and the pipe through which a failing step names itself. (A
    /// prepared root's child returns to std, which execs the command.)
    pub(crate) fn prepare(&self, exec: &ExecRequest<'_>) -> io::Result<(Entry, StepReport)> {
        match self {
            Sandbox::Prepared(root) => {
                let (entry, report) = prepare_prepared(root)?;
                Ok((Entry::Prepared(entry), report))
            }
            Sandbox::Tree(tree) => {
                let (entry, report) = tree.prepare(exec)?;
                Ok((Entry::Tree(entry), report))
            }
        }
    }
}

/// What a child holds between fork and exec.
pub(crate) enum Entry {
    Prepared(PreparedEntry),
    Tree(TreeEntry),
}

impl Entry {
    /// Run in the forked child, before exec.
    pub(crate) fn enter(&self) -> io::Result<()> {
        match self {
            Entry::Prepared(entry) => entry.enter(),
            Entry::Tree(entry) => entry.enter(),
        }
    }
}

/// [`Sandbox::prepare`] for a prepared root.
fn prepare_prepared(root: &Path) -> io::Result<(PreparedEntry, StepReport)> {
    let cstring = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL"))
    };
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let map = format!("0 {SANDBOX_ID} 1\n").into_bytes();
    Ok((
        PreparedEntry {
            root: cstring(root)?,
            proc_dir: cstring(&root.join("proc"))?,
            uid_map: map.clone(),
            gid_map: map,
            report: write,
        },
        StepReport(read),
    ))
}

/// The steps of [`Entry::enter`], named in the error when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    Pid1 = 1,
    DeathSignal,
    Unshare,
    MakePrivate,
    MountProc,
    PivotRoot,
    DetachHost,
    CloseOnExec,
    Hostname,
    DropIds,
    Dumpable,
    UserNamespace,
    IdMaps,
    NoNewPrivs,
    Chdir,
    UnshareTree,
    BindTree,
    DevNodes,
    BuildRoot,
    ReadOnlyRoot,
    HostFiles,
    Fork,
    NestedUserNamespace,
    NestedIdMaps,
    Exec,
}

impl Step {
    const ALL: [Step; 25] = [
        Step::Pid1,
        Step::DeathSignal,
        Step::Unshare,
        Step::MakePrivate,
        Step::MountProc,
        Step::PivotRoot,
        Step::DetachHost,
        Step::CloseOnExec,
        Step::Hostname,
        Step::DropIds,
        Step::Dumpable,
        Step::UserNamespace,
        Step::IdMaps,
        Step::NoNewPrivs,
        Step::Chdir,
        Step::UnshareTree,
        Step::BindTree,
        Step::DevNodes,
        Step::BuildRoot,
        Step::ReadOnlyRoot,
        Step::HostFiles,
        Step::Fork,
        Step::NestedUserNamespace,
        Step::NestedIdMaps,
        Step::Exec,
    ];

    pub(crate) fn text(self) -> &'static str {
        match self {
            Step::Pid1 => "checking it is PID 1 of a new PID namespace",
            Step::DeathSignal => "setting PR_SET_PDEATHSIG",
            Step::Unshare => "unshare(CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWNET)",
            Step::MakePrivate => "making the new mount namespace private",
            Step::MountProc => {
                "mounting a /proc of the new PID namespace (in a user namespace the kernel \
                 allows it only when the host's /proc is fully visible: not in a container \
                 that masks parts of it)"
            }
            Step::PivotRoot => "pivot_root into the sandbox root",
            Step::DetachHost => "detaching the host's mount tree",
            Step::CloseOnExec => "marking inherited descriptors close-on-exec",
            Step::Hostname => "setting the hostname",
            Step::DropIds => "dropping root (setgroups, setresgid, setresuid)",
            Step::Dumpable => "PR_SET_DUMPABLE",
            Step::UserNamespace => {
                "unshare(CLONE_NEWUSER) as an unprivileged uid (are user namespaces \
                 disabled? sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)"
            }
            Step::IdMaps => "writing the user namespace's uid_map/gid_map",
            Step::NoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Step::Chdir => "entering the directory that holds the sandbox's tree",
            Step::UnshareTree => {
                "unshare(CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWNET) in the \
                 new user namespace"
            }
            Step::BindTree => {
                "bind-mounting the tree as the sandbox's root (is the work directory's \
                 filesystem reachable by the sandbox's uid?)"
            }
            Step::DevNodes => "binding the host's /dev/null, zero, full, random, urandom, tty",
            Step::BuildRoot => "mounting the sandbox's tmpfs /dev, /tmp and other mount points",
            Step::ReadOnlyRoot => "making the sandbox's root and /dev read-only",
            Step::HostFiles => {
                "binding host programs and libraries read-only over the tree (native tools: \
                 MKIMG_NATIVE_TOOLS=0 runs the rootfs's own, emulated)"
            }
            Step::Fork => "starting PID 1 of the new PID namespace (clone3)",
            Step::NestedUserNamespace => {
                "entering the nested user namespace (unshare(CLONE_NEWUSER))"
            }
            Step::NestedIdMaps => "writing the nested user namespace's uid_map/gid_map",
            Step::Exec => {
                "running the program (not in the root filesystem, or its #! interpreter or \
                 ELF loader is not)"
            }
        }
    }
}

/// What the child of a prepared root holds between fork and exec.
pub(crate) struct PreparedEntry {
    root: CString,
    proc_dir: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    report: OwnedFd,
}

impl PreparedEntry {
    /// Run in the forked child, before exec: the steps of the module doc.
    /// Only system calls on memory prepared before the fork.
    pub(crate) fn enter(&self) -> io::Result<()> {
        let id = (Uid::from_raw(SANDBOX_ID), Gid::from_raw(SANDBOX_ID));
        let is_init = if getpid().is_init() {
            Ok(())
        } else {
            Err(rustix::io::Errno::INVAL)
        };
        self.step(Step::Pid1, is_init)?;
        self.step(
            Step::DeathSignal,
            set_parent_process_death_signal(Some(Signal::KILL)),
        )?;
        let flags = UnshareFlags::NEWNS
            | UnshareFlags::NEWIPC
            | UnshareFlags::NEWUTS
            | UnshareFlags::NEWNET;
        #[allow(unsafe_code)]
        // SAFETY: the hazard `unshare_unsafe` documents is CLONE_FILES; it is
        // not passed. The child of fork is single-threaded.
        let unshared = unsafe { unshare_unsafe(flags) };
        self.step(Step::Unshare, unshared)?;
        // Nothing mounted from here on may propagate to a peer outside.
        self.step(
            Step::MakePrivate,
            mount_change(
                c"/",
                MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
            ),
        )?;
        let pseudo = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        self.step(
            Step::MountProc,
            mount(c"proc", self.proc_dir.as_c_str(), c"proc", pseudo, None),
        )?;
        // pivot_root(2)'s own recipe: the old root ends up stacked on the
        // new one at "/", and is detached from there.
        self.step(
            Step::PivotRoot,
            chdir(self.root.as_c_str()).and_then(|()| pivot_root(c".", c".")),
        )?;
        self.step(
            Step::DetachHost,
            unmount(c".", UnmountFlags::DETACH).and_then(|()| chdir(c"/")),
        )?;
        self.step(Step::CloseOnExec, mark_inherited_fds_cloexec())?;
        self.step(
            Step::Hostname,
            rustix::system::sethostname(HOSTNAME.as_bytes()),
        )?;
        self.step(
            Step::DropIds,
            set_thread_groups(&[])
                .and_then(|()| set_thread_res_gid(id.1, id.1, id.1))
                .and_then(|()| set_thread_res_uid(id.0, id.0, id.0)),
        )?;
        // A uid change makes the process non-dumpable, which makes its
        // /proc/self files root's: it could not write its own uid_map.
        self.step(
            Step::Dumpable,
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable),
        )?;
        #[allow(unsafe_code)]
        // SAFETY: as above; CLONE_NEWUSER needs a single-threaded caller,
        // which the child of fork is.
        let user = unsafe { unshare_unsafe(UnshareFlags::NEWUSER) };
        self.step(Step::UserNamespace, user)?;
        self.step(
            Step::IdMaps,
            write_file(c"/proc/self/setgroups", b"deny")
                .and_then(|()| write_file(c"/proc/self/uid_map", &self.uid_map))
                .and_then(|()| write_file(c"/proc/self/gid_map", &self.gid_map)),
        )?;
        // The uid change cleared the death signal.
        self.step(
            Step::DeathSignal,
            set_parent_process_death_signal(Some(Signal::KILL)),
        )?;
        self.step(Step::NoNewPrivs, set_no_new_privs(true))?;
        Ok(())
    }

    /// `result`, or its errno after writing `step` into the report pipe.
    fn step(&self, step: Step, result: rustix::io::Result<()>) -> io::Result<()> {
        result.map_err(|errno| {
            // Best effort: the errno alone still reaches the parent.
            let _ = rustix::io::write(&self.report, &[step as u8]);
            io::Error::from_raw_os_error(errno.raw_os_error())
        })
    }
}

/// Every descriptor above stderr close-on-exec: one that mkimg inherited
/// without the flag (from a shell or CI runner: a directory, a socket)
/// would otherwise reach the rootfs's programs, and a directory descriptor
/// leads out of any root. Lists /proc/self/fd (the sandbox's own /proc by
/// now) into a stack buffer: no allocation.
fn mark_inherited_fds_cloexec() -> rustix::io::Result<()> {
    let dir = rustix::fs::open(
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let Some(fd) = parse_fd(entry.file_name().to_bytes()) else {
            continue; // "." and ".."
        };
        if fd <= 2 || fd == dir.as_raw_fd() {
            continue;
        }
        #[allow(unsafe_code)]
        // SAFETY: `fd` is open in this process (just listed by the kernel;
        // the child of fork is single-threaded, so nothing closes it
        // meanwhile) and is borrowed only for the two fcntl calls.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = fcntl_getfd(fd)?;
        fcntl_setfd(fd, flags | FdFlags::CLOEXEC)?;
    }
    Ok(())
}

/// A descriptor number from its /proc/self/fd name.
fn parse_fd(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 9 {
        return None;
    }
    name.iter().try_fold(0i32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i32::from(b - b'0'))
    })
}

fn write_file(path: &std::ffi::CStr, data: &[u8]) -> rustix::io::Result<()> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let written = rustix::io::write(&fd, data)?;
    if written == data.len() {
        Ok(())
    } else {
        Err(rustix::io::Errno::IO)
    }
}

/// The parent's end of the pipe a failing step writes its number into.
pub(crate) struct StepReport(OwnedFd);

impl StepReport {
    /// The step that failed, once the spawn has failed (the child wrote
    /// before it reported its errno, so no wait is needed).
    pub(crate) fn failed_step(&self) -> Option<Step> {
        self.failure().map(|(step, _)| step)
    }

    /// The step that failed and, from a tree sandbox, its errno: read once
    /// the command has ended (its writers are gone, so nothing is waited
    /// for).
    pub(crate) fn failure(&self) -> Option<(Step, Option<i32>)> {
        let mut bytes = [0u8; 5];
        match rustix::io::read(&self.0, &mut bytes) {
            Ok(n) if n >= 1 => {
                let step = Step::ALL.into_iter().find(|s| *s as u8 == bytes[0])?;
                let errno =
                    (n == 5).then(|| i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
                Some((step, errno))
            }
            _ => None,
        }
    }
}

/// `unshare(CLONE_NEWPID)` for the calling thread: the processes it
/// starts from now on are in a new PID namespace, the first one its PID 1.
/// Call it on a thread of its own, made for one sandboxed command: the
/// kernel allows it once per thread, and the thread can start no thread
/// afterwards (its children must share its PID namespace, and a thread
/// cannot). The thread shares its creator's mount namespace (a chroot
/// session's).
pub fn enter_new_pid_namespace() -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: only CLONE_NEWPID is passed, which the kernel applies to this
    // thread's future children and nothing else; no file table or fs state
    // is unshared.
    let unshared = unsafe { unshare_unsafe(UnshareFlags::NEWPID) };
    unshared.map_err(|errno| {
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("unshare(CLONE_NEWPID): {errno} (mkimg must run as root)"),
        )
    })
}

#[cfg(test)]
mod tests;
