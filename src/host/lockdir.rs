//! Work and staging directories that can prove whether their owner lives.
//!
//! A [`LockedDir`] is a directory mkimg made, named with the owner's pid,
//! whose owner holds an exclusive `flock` on the directory itself for as
//! long as the guard lives. The kernel drops the lock when the owner dies in
//! any way (exit, signal, SIGKILL); after power loss nothing holds it. So a
//! directory whose name matches mkimg's pattern and whose lock can be taken
//! is provably stale, whatever process now has that pid; [`sweep`] removes
//! exactly those. A directory kept on purpose (`--keep-workdir`) carries a
//! [`KEEP_MARKER`] file and is never swept.
//!
//! Creation is `mkdir`, then `flock`, then a check that the locked inode is
//! still the one at the path: a sweep that won the race in between removed
//! it, and the creator makes a new one. The lock fd is close-on-exec, so
//! children never hold it.
//!
//! Must not: remove anything it did not prove stale (name pattern, a real
//! directory owned by this user, lock free, no keep marker), or cross into
//! another filesystem while removing (a mount left inside stops the removal).

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, fstat, open, FlockOperation, Mode, OFlags};

/// The file `--keep-workdir` leaves in a kept directory.
pub const KEEP_MARKER: &str = ".mkimg-keep";

/// A directory made by this process and locked while the guard lives.
/// Dropping it removes the directory (unless [`LockedDir::keep`] was called).
#[derive(Debug)]
pub struct LockedDir {
    path: PathBuf,
    lock: Option<OwnedFd>,
}

impl LockedDir {
    /// Make and lock `path`, which must not exist.
    pub fn create(path: &Path) -> io::Result<LockedDir> {
        fs::create_dir(path)?;
        match lock_if_free(path) {
            Ok(Some(lock)) => Ok(LockedDir {
                path: path.to_path_buf(),
                lock: Some(lock),
            }),
            // A sweep took it between mkdir and flock (it is removing it).
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} was taken by another mkimg", path.display()),
            )),
            Err(err) => {
                let _ = fs::remove_dir(path);
                Err(err)
            }
        }
    }

    /// Make and lock a new directory `parent/PREFIX<pid>-<random>`.
    pub fn create_unique(parent: &Path, prefix: &str) -> io::Result<LockedDir> {
        let prefix = format!("{prefix}{}-", std::process::id());
        let mut last = None;
        for _ in 0..4 {
            let path = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(parent)?
                .keep();
            match lock_if_free(&path) {
                Ok(Some(lock)) => {
                    return Ok(LockedDir {
                        path,
                        lock: Some(lock),
                    })
                }
                Ok(None) => last = None,
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("every new directory was swept at once")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leave the directory in place, marked so that no sweep removes it.
    pub fn keep(mut self) -> io::Result<PathBuf> {
        fs::write(
            self.path.join(KEEP_MARKER),
            b"kept by mkimg --keep-workdir\n",
        )?;
        self.lock = None;
        Ok(self.path.clone())
    }

    /// The directory is no longer at its path (it was renamed into place):
    /// keep the lock until drop, remove nothing.
    pub fn disown(&mut self) {
        self.path = PathBuf::new();
    }
}

impl Drop for LockedDir {
    fn drop(&mut self) {
        if self.lock.is_some() && !self.path.as_os_str().is_empty() {
            // Still locked while it goes.
            let _ = remove_tree(&self.path);
        }
    }
}

/// Lock the directory at `path` if nobody holds it: `Ok(None)` when it is
/// held, or when the locked inode is no longer the one at `path`.
pub fn lock_if_free(path: &Path) -> io::Result<Option<OwnedFd>> {
    let fd = open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let held = fstat(&fd)?;
    let now = fs::symlink_metadata(path)?;
    if held.st_nlink == 0 || held.st_ino != now.ino() || held.st_dev != now.dev() {
        return Ok(None);
    }
    Ok(Some(fd))
}

/// What one sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub removed: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Remove the stale directories in `parent` whose names `is_ours` accepts:
/// real directories owned by this user, not kept, whose lock is free.
/// Problems become warnings; a live owner's or a kept directory is skipped.
pub fn sweep(parent: &Path, is_ours: &dyn Fn(&str) -> bool) -> SweepReport {
    let mut report = SweepReport::default();
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return report,
        Err(err) => {
            report.warnings.push(format!(
                "cannot look for stale directories in {}: {err}",
                parent.display()
            ));
            return report;
        }
    };
    let uid = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_ours) {
            continue;
        }
        let path = entry.path();
        match sweep_one(&path, uid) {
            Ok(true) => report.removed.push(path),
            Ok(false) => {}
            Err(err) => report
                .warnings
                .push(format!("not removing stale {}: {err}", path.display())),
        }
    }
    report
}

fn sweep_one(path: &Path, uid: u32) -> io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_dir() || meta.uid() != uid {
        return Ok(false);
    }
    let Some(_lock) = lock_if_free(path)? else {
        return Ok(false);
    };
    if fs::symlink_metadata(path.join(KEEP_MARKER)).is_ok() {
        return Ok(false);
    }
    remove_tree(path)?;
    Ok(true)
}

/// `remove_dir_all` that never follows a symlink and stops at a mount
/// point (an entry on another device) instead of emptying that filesystem.
fn remove_tree(path: &Path) -> io::Result<()> {
    let dev = fs::symlink_metadata(path)?.dev();
    remove_within(path, dev)
}

fn remove_within(dir: &Path, dev: u64) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.file_type().is_dir() {
            if meta.dev() != dev {
                return Err(io::Error::other(format!(
                    "{} is a mount point; unmount it first",
                    path.display()
                )));
            }
            remove_within(&path, dev)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::{lock_if_free, sweep, LockedDir};

    fn is_test_dir(name: &str) -> bool {
        name.starts_with("t-")
    }

    #[test]
    fn live_dirs_are_locked_and_dropped_dirs_go() {
        let root = tempfile::tempdir().unwrap();
        let dir = LockedDir::create_unique(root.path(), "t-").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/f"), b"x").unwrap();
        assert!(lock_if_free(dir.path()).unwrap().is_none(), "held");
        let report = sweep(root.path(), &is_test_dir);
        assert!(report.removed.is_empty(), "{report:?}");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn sweep_removes_unlocked_keeps_marked_and_foreign() {
        let root = tempfile::tempdir().unwrap();
        // Stale: made, never locked by a live owner.
        fs::create_dir_all(root.path().join("t-1-stale/deep")).unwrap();
        // Kept on purpose.
        let kept = LockedDir::create_unique(root.path(), "t-").unwrap();
        let kept = kept.keep().unwrap();
        // Not ours by name; a symlink with our name; a file with our name.
        fs::create_dir(root.path().join("other")).unwrap();
        std::os::unix::fs::symlink(root.path().join("other"), root.path().join("t-link")).unwrap();
        fs::write(root.path().join("t-file"), b"").unwrap();
        let report = sweep(root.path(), &is_test_dir);
        assert_eq!(report.removed, [root.path().join("t-1-stale")]);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(kept.exists());
        assert!(root.path().join("other").exists());
        assert!(root.path().join("t-link").exists());
        assert!(root.path().join("t-file").exists());
    }
}
