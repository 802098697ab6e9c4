//! A root filesystem on a loop device, prepared for running its own
//! programs (a distro tool such as grub-mkconfig) in the sandbox.
//!
//! Owns: [`ChrootSession`] — the root mounted read-only, a private `/dev`
//! (tmpfs) with the few nodes the tools open and the `/dev/disk/by-uuid`
//! and `by-partuuid` links udev would make, tmpfs on `/tmp` and on whatever
//! else must be writable or hidden — and the command that runs a program
//! inside ([`chroot_cmd`]): in a [`Sandbox`] rooted there (own user, PID,
//! mount, IPC, UTS and network namespaces, `pivot_root`, its own `/proc`;
//! see `host::sandbox`). Every mount is a [`Mount`] guard kept in order and
//! taken down in reverse, on `close`, on error and on unwind.
//!
//! Must not: be opened outside `host::mount::in_private_namespace` (the
//! mounts would land in the host's table), follow a symlink of the rootfs
//! out of the root (mount points are checked component by component),
//! write to the root filesystem (it is mounted `MS_RDONLY` from a loop
//! device attached read-only, so its image stays byte-identical), mount the
//! host's `/proc` or `/sys` into it, or run a program of the root any way
//! but sandboxed.
//!
//! Native tools ([`ChrootSession::open_with`] and [`Programs`]): for a
//! foreign root, the generic tools of `host::native_tools` may run as the
//! host's own programs, bound read-only over the root's; the mount points
//! the host's loader needs are made in a tmpfs that a read-only overlay
//! lays over the root (mounted from the same [`ROOT_NODE`], so grub-probe
//! still finds the root's device in mountinfo). A refusal or a failure
//! there leaves the root as it was, every program emulated, and says why
//! ([`ChrootSession::native_tools`]).
//!
//! Ownership inside: the sandbox's root is host uid [`SANDBOX_ID`], so
//! what it must write (`/tmp`, the tmpfs mounts) and the root device node
//! grub-probe reads are that uid's; everything else stays the host root's,
//! which the sandbox sees as "nobody" and can only read where the mode lets
//! everyone read.
//!
//! Why the links: there is no udev in the build, so without
//! `/dev/disk/by-uuid/<uuid>` grub's 10_linux falls back to naming the device
//! itself (`root=/dev/loop3`), which does not exist on the booted machine.
//! Why the root device is `/dev/mkimg-root` and not `/dev/loopN`: see
//! [`ROOT_NODE`] — grub-probe needs the name in mountinfo to exist inside
//! the chroot, and grub-mkconfig_lib mistakes `/dev/loop[0-9]` for a
//! filesystem in a file.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use rustix::fs::{chown, makedev, mknodat, FileType, Gid, Mode, Uid, CWD};
use rustix::mount::MountFlags;

use crate::arch::Arch;
use crate::host::cmd::{Cmd, Output};
use crate::host::loopdev::LoopDevice;
use crate::host::mount::{DetachedMount, Mount};
use crate::host::native_tools::{self, NativeTools, Outcome};
use crate::host::sandbox::{Sandbox, SANDBOX_ID};

/// Character devices in the private /dev: (name, major, minor).
const CHAR_NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The root device's node in the private /dev, and the name its mount
/// carries in /proc/self/mountinfo. Not `loopN`: grub-probe takes the root
/// device from mountinfo and must find that node inside the chroot, and
/// grub-mkconfig_lib treats `/dev/loop[0-9]` as a filesystem in a file — it
/// asks `losetup` for the backing file (a host path, absent in the chroot)
/// and fails.
pub const ROOT_NODE: &str = "mkimg-root";

/// PATH inside the chroot.
pub const CHROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Identities of the root filesystem, for the /dev/disk links.
#[derive(Debug, Clone, Default)]
pub struct DiskLinks {
    /// Filesystem UUID: `/dev/disk/by-uuid/<this>`.
    pub fs_uuid: Option<String>,
    /// GPT partition GUID: `/dev/disk/by-partuuid/<this>`.
    pub part_uuid: Option<String>,
}

/// Whose programs a session runs: the root's own, or, for the generic
/// tools of `host::native_tools`, the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Programs {
    /// Every one (emulated when the root is foreign).
    Rootfs,
    /// The generic tools of `host::native_tools` as the host's own, where
    /// its plan allows, for a root of this architecture.
    NativeTools(Arch),
}

/// The root and its mounts; taken down in reverse order.
pub struct ChrootSession {
    root: PathBuf,
    mounts: Vec<Mount>,
    native: Outcome,
}

impl ChrootSession {
    /// Mount `device` (filesystem `fstype`) read-only at the empty directory
    /// `root`, then /dev and /tmp inside it. The root must hold an empty
    /// `/proc`, where the sandbox mounts its own.
    ///
    /// The root is mounted from `/dev/mkimg-root` (see [`ROOT_NODE`]), a
    /// path that names the same node outside and inside the chroot: for the
    /// moment the filesystem is made (`fsconfig`, where the kernel looks
    /// its source up), a tmpfs over this thread's /dev holds that node;
    /// then it is unmounted and the filesystem attached at `root`
    /// (`move_mount`), so the host's /dev — and a work directory under
    /// /dev/shm — is never hidden while `root` is reached. The private /dev
    /// is a tmpfs of its own on `<root>/dev`.
    pub fn open(
        device: &LoopDevice,
        fstype: &str,
        root: &Path,
        links: &DiskLinks,
    ) -> Result<ChrootSession> {
        ChrootSession::open_with(device, fstype, root, links, Programs::Rootfs)
    }

    /// [`ChrootSession::open`], with `programs` saying whether generic
    /// tools run as the host's (laid in right after the root is mounted,
    /// before /dev and /tmp, so those land on the overlay).
    pub fn open_with(
        device: &LoopDevice,
        fstype: &str,
        root: &Path,
        links: &DiskLinks,
        programs: Programs,
    ) -> Result<ChrootSession> {
        let host_dev = Path::new("/dev");
        let options: &[&str] = if fstype.starts_with("ext") {
            // Never replay an ext4 journal (a fresh image has none to replay).
            &["noload"]
        } else {
            &[]
        };
        let detached = {
            // Not `nodev`: the node must open.
            let cover = Mount::tmpfs(
                host_dev,
                MountFlags::NOSUID | MountFlags::NOEXEC,
                "mode=0700,size=64k",
            )
            .context("covering /dev for the root's device node (mount namespace only)")?;
            make_node(
                &host_dev.join(ROOT_NODE),
                FileType::BlockDevice,
                device.rdev(),
                0o600,
            )?;
            let detached = DetachedMount::read_only(&host_dev.join(ROOT_NODE), fstype, options)
                .with_context(|| {
                    format!(
                        "mounting the root filesystem {} ({})",
                        device.file().display(),
                        device.path().display()
                    )
                })?;
            cover.close()?;
            detached
        };
        let mut session = ChrootSession {
            root: root.to_owned(),
            mounts: vec![detached.attach(root)?],
            native: Outcome::Off,
        };
        if let Programs::NativeTools(arch) = programs {
            session.native = session.lay_native_tools(arch);
        }
        let dev_dir = session.inside("/dev")?;
        // Not `nodev`: the nodes must open.
        session.mounts.push(
            Mount::tmpfs(
                &dev_dir,
                MountFlags::NOSUID | MountFlags::NOEXEC,
                "mode=0755,size=1m",
            )
            .context("mounting the chroot's private /dev")?,
        );
        populate_dev(&dev_dir, device, links)?;
        session
            .inside("/proc")
            .context("the sandbox mounts its own /proc there")?;
        session.mount_tmpfs("/tmp", "mode=1777,size=64m")?;
        Ok(session)
    }

    /// Plan native tools for this root and mount them: the overlay with
    /// their mount points (the scratch tmpfs at /proc, which the overlay
    /// covers), then the binds. Never an error: a refusal or a failed
    /// mount (its mounts undone) is the outcome.
    fn lay_native_tools(&mut self, arch: Arch) -> Outcome {
        let plan = match NativeTools::plan(&self.root, arch, CHROOT_PATH) {
            Ok(plan) => plan,
            Err(refusal) => return Outcome::Refused(refusal.to_string()),
        };
        let source = Path::new("/dev").join(ROOT_NODE);
        let laid = plan
            .overlay(&self.root, "/proc", &source)
            .and_then(|mut mounts| match plan.mount(&self.root) {
                Ok(binds) => {
                    mounts.extend(binds);
                    Ok(mounts)
                }
                Err(err) => {
                    native_tools::undo(mounts);
                    Err(err)
                }
            });
        match laid {
            Ok(mounts) => {
                self.mounts.extend(mounts);
                Outcome::Used(plan.summary())
            }
            Err(err) => Outcome::Refused(format!("mounting them failed (undone): {err:#}")),
        }
    }

    /// What became of native tools in this session.
    pub fn native_tools(&self) -> &Outcome {
        &self.native
    }

    /// A tmpfs at `path` inside the root (an existing directory there),
    /// owned by the sandbox's root.
    pub fn mount_tmpfs(&mut self, path: &str, data: &str) -> Result<()> {
        let dir = self.inside(path)?;
        let data = format!("{data},uid={SANDBOX_ID},gid={SANDBOX_ID}");
        self.mounts.push(Mount::tmpfs(
            &dir,
            MountFlags::NOSUID | MountFlags::NODEV,
            &data,
        )?);
        Ok(())
    }

    /// Make the directory `path` writable for this session only: a tmpfs
    /// over it holding a copy of its tree (files, directories, symlinks;
    /// small configuration directories such as /etc/default), then `files`
    /// (path relative to `path`, contents) written over the copy. The root
    /// filesystem is not changed.
    pub fn overlay_dir(&mut self, path: &str, files: &[(String, Vec<u8>)]) -> Result<()> {
        let dir = self.inside(path)?;
        let copy = read_tree(&dir).with_context(|| format!("copying {path} of the root"))?;
        self.mount_tmpfs(path, "mode=0755,size=8m")?;
        write_tree(&dir, &copy).with_context(|| format!("filling the tmpfs over {path}"))?;
        for (name, data) in files {
            let file = dir.join(name);
            if file.is_symlink() {
                fs::remove_file(&file)?;
            }
            fs::write(&file, data).with_context(|| format!("writing {}", file.display()))?;
        }
        Ok(())
    }

    /// The host path of `path` inside the root, refusing `..` and symlinks
    /// on the way (a symlink in the rootfs must not lead a mount or a read
    /// out of the root).
    pub fn inside(&self, path: &str) -> Result<PathBuf> {
        let mut out = self.root.clone();
        for component in Path::new(path).components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => {
                    out.push(name);
                    let meta = fs::symlink_metadata(&out).with_context(|| {
                        format!("{path}: {} is missing in the root", out.display())
                    })?;
                    if meta.file_type().is_symlink() {
                        bail!(
                            "{path}: {} is a symlink in the root; not following it",
                            out.display()
                        );
                    }
                }
                Component::ParentDir | Component::Prefix(_) => {
                    bail!("{path}: must be a plain absolute path inside the root")
                }
            }
        }
        Ok(out)
    }

    /// Run `argv` in the sandbox over the root with exactly `env` (plus
    /// PATH), stopping it when `interrupted` is set.
    pub fn run(
        &self,
        purpose: &str,
        argv: &[&str],
        env: &[(&str, &str)],
        interrupted: &AtomicBool,
    ) -> Result<Output> {
        Ok(chroot_cmd(purpose, &self.root, argv, env).output_interruptible(interrupted)?)
    }

    /// Read a file of the session (e.g. one written to its /tmp).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let file = self.inside(path)?;
        fs::read(&file).with_context(|| format!("reading {path} in the chroot"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Unmount everything in reverse order; the first failure is returned
    /// after the rest were tried (lazily, by their guards).
    pub fn close(mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(mount) = self.mounts.pop() {
            if let Err(err) = mount.close() {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ChrootSession {
    fn drop(&mut self) {
        // Reverse order: a Vec would drop front to back.
        while let Some(mount) = self.mounts.pop() {
            drop(mount);
        }
    }
}

/// A device node at `path` with exactly `mode`.
fn make_node(path: &Path, kind: FileType, rdev: u64, mode: u32) -> Result<()> {
    mknodat(CWD, path, kind, Mode::from_raw_mode(mode), rdev)
        .with_context(|| format!("creating device node {}", path.display()))?;
    // The umask took bits off; the sandbox's root is not the owner.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Fill the private /dev at `dev`: the character devices, the root device
/// as [`ROOT_NODE`], the by-uuid/by-partuuid links and the /proc/self/fd links.
fn populate_dev(dev: &Path, device: &LoopDevice, links: &DiskLinks) -> Result<()> {
    for (name, major, minor) in CHAR_NODES {
        make_node(
            &dev.join(name),
            FileType::CharacterDevice,
            makedev(major, minor),
            0o666,
        )?;
    }
    make_node(
        &dev.join(ROOT_NODE),
        FileType::BlockDevice,
        device.rdev(),
        0o600,
    )?;
    // grub-probe reads the filesystem through it, as the sandbox's root.
    let root_node = dev.join(ROOT_NODE);
    chown(
        &root_node,
        Some(Uid::from_raw(SANDBOX_ID)),
        Some(Gid::from_raw(SANDBOX_ID)),
    )
    .with_context(|| format!("handing {} to the sandbox", root_node.display()))?;
    for (dir, id) in [
        ("by-uuid", &links.fs_uuid),
        ("by-partuuid", &links.part_uuid),
    ] {
        if let Some(id) = id {
            let dir = dev.join("disk").join(dir);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let link = dir.join(id);
            symlink(format!("../../{ROOT_NODE}"), &link)
                .with_context(|| format!("creating {}", link.display()))?;
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(name))
            .with_context(|| format!("creating {}/{name}", dev.display()))?;
    }
    Ok(())
}

/// One entry of a copied directory tree, relative to its top.
enum TreeEntry {
    Dir(PathBuf, u32),
    File(PathBuf, u32, Vec<u8>),
    Symlink(PathBuf, PathBuf),
}

/// The tree under `top`, parents before children; devices, sockets and
/// fifos are left out.
fn read_tree(top: &Path) -> Result<Vec<TreeEntry>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let mut names: Vec<_> = fs::read_dir(top.join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(name);
            let path = top.join(&rel);
            let meta = fs::symlink_metadata(&path)?;
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push(TreeEntry::Symlink(rel, fs::read_link(&path)?));
            } else if meta.is_dir() {
                out.push(TreeEntry::Dir(rel.clone(), mode));
                pending.push(rel);
            } else if meta.is_file() {
                out.push(TreeEntry::File(rel, mode, fs::read(&path)?));
            }
        }
    }
    Ok(out)
}

fn write_tree(top: &Path, entries: &[TreeEntry]) -> Result<()> {
    for entry in entries {
        match entry {
            TreeEntry::Dir(rel, mode) => {
                fs::create_dir(top.join(rel))?;
                fs::set_permissions(top.join(rel), fs::Permissions::from_mode(*mode))?;
            }
            TreeEntry::File(rel, mode, data) => {
                fs::write(top.join(rel), data)?;
                fs::set_permissions(top.join(rel), fs::Permissions::from_mode(*mode))?;
            }
            TreeEntry::Symlink(rel, target) => symlink(target, top.join(rel))?,
        }
    }
    Ok(())
}

/// `ARGV…` in a [`Sandbox`] rooted at `root`, with exactly `PATH` and
/// `env`: nothing of the host's environment (locale, HOME, TMPDIR,
/// credentials in variables…) reaches the rootfs's programs. An empty
/// `argv` runs nothing (the spawn fails). A failure reports the whole
/// stderr: a distro script (grub-mkconfig) may say why anywhere in it.
pub fn chroot_cmd(purpose: &str, root: &Path, argv: &[&str], env: &[(&str, &str)]) -> Cmd {
    let (program, args) = argv.split_first().map_or(("", &[][..]), |(p, a)| (*p, a));
    let mut cmd = Cmd::new(purpose, program)
        .args(args)
        .env_clear()
        .env("PATH", CHROOT_PATH)
        .whole_stderr();
    for (key, value) in env {
        cmd = cmd.env(key, value);
    }
    cmd.sandboxed(Sandbox::new(root))
}

#[cfg(test)]
mod tests;
