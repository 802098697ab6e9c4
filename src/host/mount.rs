//! Mounts, and the private mount namespace they are made in.
//!
//! Owns: [`Mount`], the guard for one mount (a filesystem on a device, a
//! tmpfs, a pseudo filesystem, a bind mount), which unmounts exactly what it
//! mounted — on [`Mount::close`], or best effort in `Drop` (error paths,
//! unwinding), lazily when a plain unmount fails; and
//! [`in_private_namespace`], which runs a closure on a thread of its own in a
//! new mount namespace.
//!
//! Why a thread that calls `unshare(CLONE_NEWNS)`, and not `unshare --mount`
//! around a helper process: the mount namespace belongs to that one thread
//! (and to the processes it starts, e.g. the chroot's `grub-mkconfig`), while
//! the rest of mkimg stays in the host's. Every mount is made there after
//! the whole tree is marked private (`MS_REC | MS_PRIVATE`), so nothing
//! propagates to the host even where `/` is a shared mount (systemd). The
//! host's mount table is never touched: if mkimg is killed outright
//! (SIGKILL) the kernel frees the namespace, and every mount in it, when
//! its last process exits. The guards then only matter for tidiness inside
//! the namespace and for the devices underneath (loop devices are global;
//! see `host::loopdev`). Keeping it in-process also keeps the guards plain
//! Rust values with typed errors instead of a shell script around
//! `unshare --mount`.
//!
//! Must not: mount anything outside [`in_private_namespace`] in production
//! code, or remove a directory whose unmount failed.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use std::os::fd::OwnedFd;

use anyhow::{anyhow, Context, Result};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, mount, mount_bind,
    mount_change, mount_move, mount_remount, move_mount, unmount, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MountFlags, MountPropagationFlags, MoveMountFlags, UnmountFlags,
};

/// One mount; unmounted on `close` or drop.
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
    what: String,
    mounted: bool,
}

impl Mount {
    /// `mount -t FSTYPE [-o DATA] SOURCE TARGET` with `flags`.
    pub fn filesystem(
        source: &Path,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: &str,
    ) -> Result<Mount> {
        let what = format!("{fstype} {}", source.display());
        let data = CString::new(data).map_err(|_| anyhow!("mount options hold a NUL"))?;
        mount(source, target, fstype, flags, Some(data.as_c_str())).with_context(|| {
            format!(
                "mounting {what} at {} ({flags:?}, {data:?})",
                target.display()
            )
        })?;
        Ok(Mount::mounted(target, what))
    }

    /// A tmpfs at `target`, e.g. `data = "mode=0755,size=16m"`.
    pub fn tmpfs(target: &Path, flags: MountFlags, data: &str) -> Result<Mount> {
        Mount::filesystem(Path::new("tmpfs"), target, "tmpfs", flags, data)
    }

    /// Bind `source` (a file or directory) onto `target`, read-only when asked.
    pub fn bind(source: &Path, target: &Path, read_only: bool) -> Result<Mount> {
        mount_bind(source, target).with_context(|| {
            format!("bind-mounting {} at {}", source.display(), target.display())
        })?;
        let guard = Mount::mounted(target, format!("bind {}", source.display()));
        if read_only {
            // A bind mount takes MS_RDONLY only on a remount.
            mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
                .with_context(|| format!("making {} read-only", target.display()))?;
        }
        Ok(guard)
    }

    fn mounted(target: &Path, what: String) -> Mount {
        Mount {
            target: target.to_owned(),
            what,
            mounted: true,
        }
    }

    /// Move this mount to `target` (`MS_MOVE`); the guard follows it.
    pub fn move_to(&mut self, target: &Path) -> Result<()> {
        mount_move(&self.target, target).with_context(|| {
            format!(
                "moving {} from {} to {}",
                self.what,
                self.target.display(),
                target.display()
            )
        })?;
        self.target = target.to_owned();
        Ok(())
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmount, reporting failure (busy: something still uses it); a busy
    /// mount is still detached from the tree lazily.
    pub fn close(mut self) -> Result<()> {
        self.mounted = false;
        unmount(&self.target, UnmountFlags::empty()).map_err(|err| {
            let lazily = unmount(&self.target, UnmountFlags::DETACH).is_ok();
            anyhow!(err).context(format!(
                "unmounting {} from {} (still in use?{})",
                self.what,
                self.target.display(),
                if lazily { " detached lazily" } else { "" }
            ))
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        if unmount(&self.target, UnmountFlags::empty()).is_err() {
            // Busy: detach it from the tree now; the kernel frees it when
            // its last user goes away.
            if let Err(err) = unmount(&self.target, UnmountFlags::DETACH) {
                eprintln!(
                    "mkimg: warning: cannot unmount {} from {}: {err}",
                    self.what,
                    self.target.display()
                );
            }
        }
    }
}

/// A filesystem made but not attached anywhere yet (`fsopen`, `fsconfig`,
/// `fsmount`): its source is looked up when it is made, and only then, so
/// a caller can make the source's path exist for that moment alone (see
/// `host::chroot`). Dropped unattached, the kernel frees it.
#[derive(Debug)]
pub struct DetachedMount {
    fd: OwnedFd,
    what: String,
}

impl DetachedMount {
    /// `fstype` on `source`, read-only, with the boolean `options` (e.g.
    /// `noload`), `nosuid` and `nodev`.
    pub fn read_only(source: &Path, fstype: &str, options: &[&str]) -> Result<DetachedMount> {
        let what = format!("{fstype} {}", source.display());
        let made = (|| {
            let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
            fsconfig_set_string(&fs, "source", source)?;
            fsconfig_set_flag(&fs, "ro")?;
            for option in options {
                fsconfig_set_flag(&fs, *option)?;
            }
            fsconfig_create(&fs)?;
            fsmount(
                &fs,
                FsMountFlags::FSMOUNT_CLOEXEC,
                MountAttrFlags::MOUNT_ATTR_RDONLY
                    | MountAttrFlags::MOUNT_ATTR_NOSUID
                    | MountAttrFlags::MOUNT_ATTR_NODEV,
            )
        })();
        let fd = made.with_context(|| format!("mounting {what} read-only ({options:?})"))?;
        Ok(DetachedMount { fd, what })
    }

    /// Attach it at `target` (`move_mount`); the guard unmounts it there.
    pub fn attach(self, target: &Path) -> Result<Mount> {
        move_mount(
            &self.fd,
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .with_context(|| format!("attaching {} at {}", self.what, target.display()))?;
        Ok(Mount::mounted(target, self.what))
    }
}

/// Run `f` on a new thread in a new, private mount namespace and return its
/// result. Mounts made by `f` (and by processes it starts) are invisible to
/// the host and die with the namespace. A panic in `f` is carried over.
pub fn in_private_namespace<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("mkimg-mountns".into())
            .spawn_scoped(scope, move || {
                enter_private_namespace()?;
                f()
            })
            .context("starting the mount-namespace thread")?;
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `unshare(CLONE_NEWNS)` for this thread, then make every mount private.
fn enter_private_namespace() -> Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: the hazard `unshare_unsafe` documents is `CLONE_FILES` (a file
    // descriptor table no longer shared with other threads). Only
    // `CLONE_NEWNS` is passed; the kernel adds `CLONE_FS` (cwd and root
    // become this thread's own copy), which no other thread observes.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.context(
        "creating a private mount namespace (unshare(CLONE_NEWNS)): mkimg must run as root",
    )?;
    mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .context("making the mount namespace private (mount --make-rprivate /)")?;
    Ok(())
}

/// This thread's mount table (`/proc/thread-self/mountinfo`): mount points,
/// unescaped, in mount order. `/proc/self` would show the main thread's.
pub fn thread_mount_points() -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/thread-self/mountinfo")
        .context("reading /proc/thread-self/mountinfo")?;
    Ok(parse_mount_points(&text))
}

/// The fifth field of each mountinfo line, with `\040`-style escapes undone.
pub fn parse_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
