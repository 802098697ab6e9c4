//! Mounting a plan of `host::native_tools`: the mount points (in a
//! writable tree, or in a tmpfs laid over a read-only root as a read-only
//! overlay) and the read-only binds.
//!
//! Must not: mount anything but what the plan names, follow a symlink of
//! the root on the way to a mount point, or leave a mount behind when a
//! step fails (the guards made so far are undone, in reverse).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::mount::MountFlags;

use super::in_root::host_path;
use super::NativeTools;
use crate::host::mount::Mount;

impl NativeTools {
    /// Make the mount points the binds need under `tree`, a writable
    /// directory that is, or will be laid over, `root`: the missing
    /// directories (mode 0755) and an empty file for each bind. A directory
    /// that exists in `root` but not in `tree` (an overlay's upper layer)
    /// is made with the root's mode, owner and times, which the overlay
    /// then shows; so is `tree` itself.
    pub fn create_mount_points(&self, tree: &Path, root: &Path) -> Result<()> {
        // Attributes last: making a child changes its directory's times.
        let mut made = Vec::new();
        for bind in self.binds.iter().filter(|b| b.create) {
            let mut dir = PathBuf::from("/");
            let parent = bind.inside.parent().unwrap_or(Path::new("/"));
            for part in parent.components().skip(1) {
                dir.push(part);
                let path = host_path(tree, &dir);
                if !path.exists() {
                    fs::create_dir(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    made.push(dir.clone());
                }
            }
            let file = host_path(tree, &bind.inside);
            fs::write(&file, b"").with_context(|| format!("creating {}", file.display()))?;
        }
        for dir in made {
            let (path, like) = (host_path(tree, &dir), host_path(root, &dir));
            if like.is_dir() {
                copy_attributes(&like, &path)?;
            } else {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            }
        }
        if tree != root {
            copy_attributes(root, tree)?;
        }
        Ok(())
    }

    /// For a read-only `root` whose binds need mount points: a tmpfs at
    /// `scratch` (an empty directory of the root, e.g. `/proc`, which the
    /// overlay then covers) holding them, and over `root` a read-only
    /// overlay of that tmpfs on the root itself, named `source` in
    /// mountinfo (the root device's name: grub-probe reads the device of
    /// `/` from there). No guard when nothing must be made. The guards
    /// come in mount order.
    pub fn overlay(&self, root: &Path, scratch: &str, source: &Path) -> Result<Vec<Mount>> {
        if !self.binds.iter().any(|b| b.create) {
            return Ok(Vec::new());
        }
        let at = checked(root, Path::new(scratch))?;
        if fs::read_dir(&at)?.next().is_some() {
            bail!("{scratch} of the root is not empty; it cannot hold the overlay's mount points");
        }
        let mut mounts = vec![Mount::tmpfs(
            &at,
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            "mode=0755,size=1m",
        )?];
        let laid = self.create_mount_points(&at, root).and_then(|()| {
            let data = format!("lowerdir={}:{}", escape(&at)?, escape(root)?);
            let ro = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
            Mount::filesystem(source, root, "overlay", ro, &data)
        });
        match laid {
            Ok(overlay) => {
                mounts.push(overlay);
                Ok(mounts)
            }
            Err(err) => {
                undo(mounts);
                Err(err)
            }
        }
    }

    /// Bind every host file read-only over its path in `root` (which must
    /// exist there by now, reached without a symlink). The guards come in
    /// mount order; on an error the ones made are undone.
    pub fn mount(&self, root: &Path) -> Result<Vec<Mount>> {
        let mut mounts = Vec::with_capacity(self.binds.len());
        for bind in &self.binds {
            let made = checked(root, &bind.inside).and_then(|target| {
                if !target.is_file() {
                    bail!("{} is not a file in the root", bind.inside.display());
                }
                Mount::bind(&bind.host, &target, true)
            });
            match made {
                Ok(mount) => mounts.push(mount),
                Err(err) => {
                    undo(mounts);
                    return Err(err);
                }
            }
        }
        Ok(mounts)
    }
}

/// Unmount `mounts` in reverse order (each guard unmounts on drop).
pub fn undo(mut mounts: Vec<Mount>) {
    while let Some(mount) = mounts.pop() {
        drop(mount);
    }
}

/// The host path of `inside` in `root`, every component there and none a
/// symlink (the mount must land inside the root).
fn checked(root: &Path, inside: &Path) -> Result<PathBuf> {
    let mut out = root.to_owned();
    for part in inside.components().skip(1) {
        let Component::Normal(name) = part else {
            bail!("{}: not a plain absolute path", inside.display());
        };
        out.push(name);
        let meta = fs::symlink_metadata(&out)
            .with_context(|| format!("{}: {} is missing", inside.display(), out.display()))?;
        if meta.file_type().is_symlink() {
            bail!("{}: {} is a symlink", inside.display(), out.display());
        }
    }
    Ok(out)
}

/// Mode, owner and access/modification times of `from` onto `to`.
fn copy_attributes(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::metadata(from).with_context(|| format!("reading {}", from.display()))?;
    rustix::fs::chown(
        to,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    )
    .with_context(|| format!("setting the owner of {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let time = |secs: i64, nanos: i64| rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: time(meta.atime(), meta.atime_nsec()),
        last_modification: time(meta.mtime(), meta.mtime_nsec()),
    };
    rustix::fs::utimensat(rustix::fs::CWD, to, &times, rustix::fs::AtFlags::empty())
        .with_context(|| format!("setting the times of {}", to.display()))?;
    Ok(())
}

/// `path` as one overlayfs layer in a `lowerdir=` option: `\`, `:` and `,`
/// escaped with a backslash.
fn escape(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}
