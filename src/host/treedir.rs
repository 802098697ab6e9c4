//! A directory of mkimg's work directory that holds files of an untrusted
//! rootfs (the `--grub mkconfig` tree: see `rootfs::tree` and
//! `bootloader::mkconfig::tree`), written so that nothing the rootfs says
//! can make mkimg write anywhere else.
//!
//! Owns: [`TreeDir`], every write into such a directory. Each operation
//! resolves the parent of its path from the directory's own descriptor with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)` and acts on the last component with an `*at` call that
//! does not follow it (`O_NOFOLLOW | O_EXCL`, `AT_SYMLINK_NOFOLLOW`, an
//! existing entry unlinked first). So a symlink the rootfs put in the tree
//! (`/usr/lib -> /`, `../../../etc`) is written as a symlink and never
//! followed, `..` and absolute paths are refused before any system call,
//! and the kernel refuses any path that would leave the directory.
//!
//! What it makes: directories, regular files, symlinks and hard links —
//! never a device node, a FIFO or a socket — with the permission bits the
//! caller gives minus set-uid, set-gid and sticky (directories always keep
//! `u+rwx`, so mkimg can fill and remove them), owned by the uid and gid
//! given at creation (the sandbox's root: see `host::sandbox::tree`).
//!
//! Must not: follow a symlink inside the directory, write outside it, or
//! spawn anything. Needs Linux ≥ 5.6 (`openat2`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    fchmod, fchown, futimens, linkat, mkdirat, open, openat, openat2, statat, symlinkat, unlinkat,
    utimensat, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
};
use rustix::io::Errno;

/// How every path inside the directory is resolved.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// What is at a path of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Dir,
    File,
    Symlink,
    Other,
}

/// A directory mkimg made and fills with rootfs entries.
#[derive(Debug)]
pub struct TreeDir {
    path: PathBuf,
    root: OwnedFd,
    owner: (Uid, Gid),
}

impl TreeDir {
    /// Make the directory `path` (its parent must exist; `path` must not)
    /// with mode 0700, owned by `owner` (uid, gid).
    pub fn create(path: &Path, owner: (u32, u32)) -> io::Result<TreeDir> {
        std::fs::create_dir(path)?;
        let root = open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let owner = (Uid::from_raw(owner.0), Gid::from_raw(owner.1));
        fchown(&root, Some(owner.0), Some(owner.1))?;
        fchmod(&root, Mode::from_raw_mode(0o700))?;
        Ok(TreeDir {
            path: path.to_owned(),
            root,
            owner,
        })
    }

    /// The existing tree directory `path` (not through a symlink), whose
    /// entries belong to `owner`.
    pub fn open(path: &Path, owner: (u32, u32)) -> io::Result<TreeDir> {
        let root = open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(TreeDir {
            path: path.to_owned(),
            root,
            owner: (Uid::from_raw(owner.0), Gid::from_raw(owner.1)),
        })
    }

    /// Where the directory is on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The uid and gid everything in it belongs to.
    pub fn owner(&self) -> (u32, u32) {
        (self.owner.0.as_raw(), self.owner.1.as_raw())
    }

    /// A directory `rel` with `mode` (an existing one only gets the mode).
    pub fn make_dir(&self, rel: &str, mode: u32) -> io::Result<()> {
        let (parent, name) = self.parent(rel)?;
        match mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(err) => return Err(err.into()),
        }
        let dir = openat(
            &parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        fchown(&dir, Some(self.owner.0), Some(self.owner.1))?;
        fchmod(&dir, Mode::from_raw_mode(dir_mode(mode)))?;
        Ok(())
    }

    /// A new regular file `rel`, open for writing, replacing whatever but a
    /// directory was there. The caller writes its data and may call
    /// [`TreeDir::finish_file`].
    pub fn create_file(&self, rel: &str, mode: u32) -> io::Result<File> {
        let (parent, name) = self.parent(rel)?;
        remove_non_dir(&parent, name)?;
        let fd = openat(
            &parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        fchown(&fd, Some(self.owner.0), Some(self.owner.1))?;
        fchmod(&fd, Mode::from_raw_mode(file_mode(mode)))?;
        Ok(File::from(fd))
    }

    /// Set a written file's modification time (`mtime`, seconds).
    pub fn finish_file(&self, file: &File, mtime: u64) -> io::Result<()> {
        futimens(file, &timestamps(mtime))?;
        Ok(())
    }

    /// The regular file `rel` holding `data`.
    pub fn write_file(&self, rel: &str, data: &[u8], mode: u32) -> io::Result<()> {
        let mut file = self.create_file(rel, mode)?;
        file.write_all(data)
    }

    /// A symlink `rel` → `target` (kept as written, never followed),
    /// replacing whatever but a directory was there.
    pub fn symlink(&self, rel: &str, target: &str) -> io::Result<()> {
        let (parent, name) = self.parent(rel)?;
        remove_non_dir(&parent, name)?;
        symlinkat(target, &parent, name)?;
        rustix::fs::chownat(
            &parent,
            name,
            Some(self.owner.0),
            Some(self.owner.1),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    /// A hard link `rel` to the tree's earlier entry `target` (a path of
    /// the tree, not followed). `Ok(false)` when the tree has no such
    /// entry (it was left out).
    pub fn hard_link(&self, rel: &str, target: &str) -> io::Result<bool> {
        let (from_dir, from_name) = match self.parent(target) {
            Ok(found) => found,
            Err(err) if is_absent(&err) => return Ok(false),
            Err(err) => return Err(err),
        };
        if statat(&from_dir, from_name, AtFlags::SYMLINK_NOFOLLOW).is_err() {
            return Ok(false);
        }
        let (parent, name) = self.parent(rel)?;
        remove_non_dir(&parent, name)?;
        linkat(&from_dir, from_name, &parent, name, AtFlags::empty())?;
        Ok(true)
    }

    /// Set the modification time of `rel` itself (not of a symlink's target).
    pub fn set_mtime(&self, rel: &str, mtime: u64) -> io::Result<()> {
        let (parent, name) = self.parent(rel)?;
        utimensat(&parent, name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// What `rel` is, `None` when nothing is there or a component on the
    /// way is not a plain directory (a symlink is not followed).
    pub fn node(&self, rel: &str) -> io::Result<Option<Node>> {
        let (parent, name) = match self.parent(rel) {
            Ok(found) => found,
            Err(err) if is_absent(&err) => return Ok(None),
            Err(err) => return Err(err),
        };
        match statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => Node::Dir,
                FileType::RegularFile => Node::File,
                FileType::Symlink => Node::Symlink,
                _ => Node::Other,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The content of the regular file `rel`, at most `limit` bytes (more
    /// is an error); a symlink anywhere on the way is an error.
    pub fn read_file(&self, rel: &str, limit: u64) -> io::Result<Vec<u8>> {
        check_rel(rel)?;
        let fd = openat2(
            &self.root,
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?;
        let mut data = Vec::new();
        File::from(fd).take(limit + 1).read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            return Err(io::Error::other(format!(
                "{rel} is larger than {limit} bytes"
            )));
        }
        Ok(data)
    }

    /// The directory holding `rel`, opened without following a symlink
    /// and without leaving the tree, and `rel`'s last component.
    fn parent<'r>(&self, rel: &'r str) -> io::Result<(OwnedFd, &'r str)> {
        check_rel(rel)?;
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let dir = openat2(
            &self.root,
            if dir.is_empty() { "." } else { dir },
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?;
        Ok((dir, name))
    }
}

/// A tree path: relative, no empty, `.` or `..` component. Checked before
/// any system call, so a refusal names the path, not an errno.
fn check_rel(rel: &str) -> io::Result<()> {
    let bad = rel.is_empty()
        || rel.starts_with('/')
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel:?} is not a plain relative path inside the tree"),
        ));
    }
    Ok(())
}

/// A component on the way is missing, or not a plain directory of the
/// tree (a symlink: ELOOP under `RESOLVE_NO_SYMLINKS`).
fn is_absent(err: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(err),
        Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV)
    )
}

/// Unlink `name` in `dir` unless it is a directory or absent.
fn remove_non_dir(dir: &impl AsFd, name: &str) -> io::Result<()> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} is a directory in the tree"),
            ))
        }
        Ok(_) => Ok(unlinkat(dir, name, AtFlags::empty())?),
        Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// A directory's mode in the tree: the rootfs's permission bits, plus
/// `u+rwx`, without set-id and sticky bits.
pub fn dir_mode(mode: u32) -> u32 {
    (mode & 0o777) | 0o700
}

/// A file's mode in the tree: the rootfs's permission bits without set-id
/// and sticky bits.
pub fn file_mode(mode: u32) -> u32 {
    mode & 0o777
}

fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

#[cfg(test)]
mod tests;
