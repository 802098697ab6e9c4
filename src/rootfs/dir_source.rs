//! A directory as a rootfs: `mkimg build --rootfs DIR`.
//!
//! Owns: walking a directory tree and writing it as a plain tar stream into
//! a pipe, on a producer thread, so the one streaming pass (`pass.rs`) reads
//! it exactly as it reads a tarball, with every safety check and budget in
//! one place. The stream is what `tar --sort=name --xattrs -C DIR -cf - .`
//! would carry: `./` first, then names in byte order, depth first;
//! directories, regular files, symlinks (the link text, never followed),
//! hard links (a later name of an inode already written), character and
//! block devices, FIFOs. Sockets are skipped with a warning, as GNU tar
//! does. Owners (numeric), modes, mtimes and xattrs are taken as on disk;
//! xattrs go into PAX `SCHILY.xattr.*` records.
//!
//! Nothing is opened by full path and no symlink is followed: every node is
//! reached with `openat(parent_fd, name, O_NOFOLLOW)` from its parent's fd,
//! and the opened fd's `fstat` must be the inode the `lstat` saw. Xattrs of
//! nodes that cannot be opened for reading without side effects (symlinks,
//! devices, FIFOs) are read with `lgetxattr` through
//! `/proc/self/fd/<parent>/<name>`, which does not follow the last name.
//!
//! A tree that changes while it is read is an error naming the path: a
//! regular file's size, mtime and ctime before and after its bytes are
//! read, and the number of bytes read, must agree.
//!
//! Owners: a non-root user cannot create root-owned files, so a tree made
//! without root is owned by that user, and the image would carry those
//! owners. A non-root run on such a tree is refused unless `--owner root`
//! maps every owner to 0.
//!
//! Errors from the producer (an unreadable file, a changed tree) are
//! returned by [`DirProducer::join`]; `ingest.rs` prefers them over the
//! pass's "truncated tar" that follows when the producer stops early.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use tar::{EntryType, Header};

/// How owners are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OwnerMap {
    /// As on disk.
    #[default]
    Keep,
    /// Every uid and gid becomes 0 (`--owner root`).
    Root,
}

/// Deepest directory nesting accepted (the pass's own limits apply after).
const MAX_DEPTH: usize = 4096;

/// The producer thread writing the tar stream of a directory.
pub struct DirProducer {
    handle: JoinHandle<Result<()>>,
}

impl DirProducer {
    /// Wait for the producer. Call after the reading end is dropped or read
    /// to its end. A producer stopped by a closed pipe (the pass failed
    /// first) returns `Ok`: the pass's error is the one to report.
    pub fn join(self) -> Result<()> {
        match self.handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) if is_broken_pipe(&err) => Ok(()),
            Ok(Err(err)) => Err(err),
            Err(_) => bail!("the thread reading the rootfs directory panicked"),
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Start writing `root` as a tar stream; read it from the returned pipe.
pub fn spawn_dir_stream(root: &Path, owner: OwnerMap) -> Result<(PipeReader, DirProducer)> {
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening rootfs directory {}", root.display()))?;
    let (reader, writer) = io::pipe().context("creating a pipe for the rootfs directory")?;
    let walker = Walker {
        root: root.to_path_buf(),
        owner,
        is_root: rustix::process::geteuid().is_root(),
        links: HashMap::new(),
        out: tar::Builder::new(io::BufWriter::with_capacity(1 << 20, writer)),
    };
    let handle = std::thread::Builder::new()
        .name("rootfs-dir".into())
        .spawn(move || walker.run(fd))
        .context("starting the thread reading the rootfs directory")?;
    Ok((reader, DirProducer { handle }))
}

struct Walker {
    root: PathBuf,
    owner: OwnerMap,
    is_root: bool,
    /// (dev, ino) of non-directories with more than one link → tar name.
    links: HashMap<(u64, u64), Vec<u8>>,
    out: tar::Builder<io::BufWriter<PipeWriter>>,
}

impl Walker {
    fn run(mut self, root: OwnedFd) -> Result<()> {
        let st = rustix::fs::fstat(&root).context("reading the rootfs directory")?;
        let xattrs = fd_xattrs(&root).with_context(|| self.reading(b"."))?;
        self.header(b"./", &st, EntryType::Directory, &xattrs, 0)?;
        self.walk_dir(&root, b".", 0)?;
        self.out.finish()?;
        self.out.get_mut().flush()?;
        Ok(())
    }

    fn display(&self, name: &[u8]) -> String {
        match name.strip_prefix(b"./").unwrap_or(name) {
            b"" | b"." => self.root.display().to_string(),
            rel => self.root.join(OsStr::from_bytes(rel)).display().to_string(),
        }
    }

    fn reading(&self, name: &[u8]) -> String {
        format!("reading {}", self.display(name))
    }

    fn walk_dir(&mut self, dir: &OwnedFd, prefix: &[u8], depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            bail!(
                "{} is nested more than {MAX_DEPTH} directories deep",
                self.display(prefix)
            );
        }
        let mut names = Vec::new();
        let mut reader = rustix::fs::Dir::read_from(dir).with_context(|| self.reading(prefix))?;
        while let Some(entry) = reader.read() {
            let entry = entry.with_context(|| self.reading(prefix))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        for name in names {
            let mut path = prefix.to_vec();
            path.push(b'/');
            path.extend_from_slice(&name);
            self.member(dir, &name, &path, depth)?;
        }
        Ok(())
    }

    fn member(&mut self, dir: &OwnedFd, name: &[u8], path: &[u8], depth: usize) -> Result<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .with_context(|| self.reading(path))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind == FileType::Socket {
            eprintln!("mkimg: warning: {}: socket skipped", self.display(path));
            return Ok(());
        }
        if kind != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = self.base_header(path, &st, EntryType::Link)?;
                h.set_size(0);
                self.out
                    .append_link(&mut h, OsStr::from_bytes(path), OsStr::from_bytes(&first))?;
                return Ok(());
            }
            self.links.insert(key, path.to_vec());
        }
        match kind {
            FileType::Directory => {
                let fd = open_checked(dir, name, OFlags::DIRECTORY, &st)
                    .with_context(|| self.reading(path))?;
                let xattrs = fd_xattrs(&fd).with_context(|| self.reading(path))?;
                self.header(path, &st, EntryType::Directory, &xattrs, 0)?;
                self.walk_dir(&fd, path, depth + 1)
            }
            FileType::RegularFile => self.regular(dir, name, path, &st),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())
                    .with_context(|| self.reading(path))?;
                let xattrs = path_xattrs(dir, name).with_context(|| self.reading(path))?;
                self.pax(&xattrs)?;
                let mut h = self.base_header(path, &st, EntryType::Symlink)?;
                h.set_size(0);
                self.out.append_link(
                    &mut h,
                    OsStr::from_bytes(path),
                    OsStr::from_bytes(target.as_bytes()),
                )?;
                Ok(())
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let entry_type = match kind {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let xattrs = path_xattrs(dir, name).with_context(|| self.reading(path))?;
                let dev = if kind == FileType::Fifo {
                    0
                } else {
                    st.st_rdev
                };
                self.header(path, &st, entry_type, &xattrs, dev)
            }
            _ => bail!("{}: unknown file type", self.display(path)),
        }
    }

    fn regular(&mut self, dir: &OwnedFd, name: &[u8], path: &[u8], st: &Stat) -> Result<()> {
        let file =
            open_checked(dir, name, OFlags::NONBLOCK, st).with_context(|| self.reading(path))?;
        let xattrs = fd_xattrs(&file).with_context(|| self.reading(path))?;
        let before = rustix::fs::fstat(&file).with_context(|| self.reading(path))?;
        self.pax(&xattrs)?;
        let mut h = self.base_header(path, &before, EntryType::Regular)?;
        let size = u64::try_from(before.st_size).unwrap_or(0);
        h.set_size(size);
        let mut counted = Counted {
            inner: io::Read::take(std::fs::File::from(file.try_clone()?), size),
            n: 0,
        };
        self.out
            .append_data(&mut h, OsStr::from_bytes(path), &mut counted)
            .with_context(|| self.reading(path))?;
        let mut extra = [0u8; 1];
        let grew = std::fs::File::from(file.try_clone()?)
            .read(&mut extra)
            .with_context(|| self.reading(path))?;
        let after = rustix::fs::fstat(&file).with_context(|| self.reading(path))?;
        check_unchanged(&before, &after, counted.n + grew as u64)
            .with_context(|| format!("{} changed while it was read", self.display(path)))
    }

    fn owners(&self, path: &[u8], st: &Stat) -> Result<(u64, u64)> {
        owners(self.owner, self.is_root, st.st_uid, st.st_gid)
            .map_err(|why| anyhow::anyhow!("{} is {why}", self.display(path)))
    }

    fn base_header(&self, path: &[u8], st: &Stat, kind: EntryType) -> Result<Header> {
        let (uid, gid) = self.owners(path, st)?;
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        Ok(h)
    }

    fn header(
        &mut self,
        path: &[u8],
        st: &Stat,
        kind: EntryType,
        xattrs: &[(String, Vec<u8>)],
        rdev: u64,
    ) -> Result<()> {
        self.pax(xattrs)?;
        let mut h = self.base_header(path, st, kind)?;
        h.set_size(0);
        if kind == EntryType::Char || kind == EntryType::Block {
            h.set_device_major(rustix::fs::major(rdev))?;
            h.set_device_minor(rustix::fs::minor(rdev))?;
        }
        self.out
            .append_data(&mut h, OsStr::from_bytes(path), io::empty())?;
        Ok(())
    }

    /// A PAX `x` header with the next member's xattrs, if it has any.
    fn pax(&mut self, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut records = Vec::new();
        for (name, value) in xattrs {
            records.extend(pax_record(&format!("SCHILY.xattr.{name}"), value));
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(records.len() as u64);
        self.out
            .append_data(&mut h, "PaxHeaders/xattrs", records.as_slice())?;
        Ok(())
    }
}

/// One PAX record, `"<len> <key>=<value>\n"`, where len counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// The owners to write: `--owner root` maps all to 0; a non-root run on a
/// tree not owned by root is refused (the image would carry the invoking
/// user's owners on every system file).
pub fn owners(map: OwnerMap, is_root: bool, uid: u32, gid: u32) -> Result<(u64, u64), String> {
    match map {
        OwnerMap::Root => Ok((0, 0)),
        OwnerMap::Keep if is_root || (uid == 0 && gid == 0) => Ok((uid.into(), gid.into())),
        OwnerMap::Keep => Err(format!(
            "owned by uid {uid} gid {gid}, and mkimg is not running as root: the image would \
             carry those owners (a tree made without root is owned by the user who made it); \
             re-run as root, or pass --owner root to make every owner root"
        )),
    }
}

/// A file read is consistent if size, mtime and ctime did not move and the
/// bytes read are the size.
pub fn check_unchanged(before: &Stat, after: &Stat, read: u64) -> Result<()> {
    let size = u64::try_from(before.st_size).unwrap_or(0);
    if read != size {
        bail!("{read} bytes read where its size was {size}");
    }
    if after.st_size != before.st_size {
        bail!("its size went from {} to {}", before.st_size, after.st_size);
    }
    if (after.st_mtime, after.st_mtime_nsec) != (before.st_mtime, before.st_mtime_nsec)
        || (after.st_ctime, after.st_ctime_nsec) != (before.st_ctime, before.st_ctime_nsec)
    {
        bail!("it was modified (its mtime or ctime moved)");
    }
    Ok(())
}

/// `openat(dir, name, O_RDONLY|O_NOFOLLOW|O_CLOEXEC|extra)`, then the fd
/// must be the inode `st` describes, of the same type.
fn open_checked(dir: &OwnedFd, name: &[u8], extra: OFlags, st: &Stat) -> io::Result<OwnedFd> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra,
        Mode::empty(),
    )?;
    let now = rustix::fs::fstat(&fd)?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)
        || FileType::from_raw_mode(now.st_mode) != FileType::from_raw_mode(st.st_mode)
    {
        return Err(io::Error::other("it was replaced while the tree was read"));
    }
    Ok(fd)
}

/// Xattrs of an open file, sorted by name.
fn fd_xattrs(fd: &OwnedFd) -> io::Result<Vec<(String, Vec<u8>)>> {
    read_xattrs(
        || rustix::fs::flistxattr_query(fd),
        |buf| rustix::fs::flistxattr(fd, buf),
        |name, buf| rustix::fs::fgetxattr(fd, name, buf),
        |name| rustix::fs::fgetxattr_query(fd, name),
    )
}

/// Xattrs of `name` in `dir` without following it, through
/// `/proc/self/fd`. No /proc: none (such nodes rarely carry any).
fn path_xattrs(dir: &OwnedFd, name: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let proc = format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd());
    if !Path::new(&proc).exists() {
        return Ok(Vec::new());
    }
    let mut path = proc.into_bytes();
    path.push(b'/');
    path.extend_from_slice(name);
    let path = OsStr::from_bytes(&path);
    read_xattrs(
        || rustix::fs::llistxattr_query(path),
        |buf| rustix::fs::llistxattr(path, buf),
        |name, buf| rustix::fs::lgetxattr(path, name, buf),
        |name| rustix::fs::lgetxattr_query(path, name),
    )
}

fn read_xattrs(
    list_len: impl Fn() -> rustix::io::Result<usize>,
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&OsStr, &mut [u8]) -> rustix::io::Result<usize>,
    get_len: impl Fn(&OsStr) -> rustix::io::Result<usize>,
) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; list_len().or_else(no_xattrs)?];
    let n = if names.is_empty() {
        0
    } else {
        list(&mut names)?
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let key = OsStr::from_bytes(name);
        let mut value = vec![0u8; get_len(key)?];
        let len = get(key, &mut value)?;
        value.truncate(len);
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| io::Error::other("an xattr name that is not UTF-8"))?;
        out.push((name, value));
    }
    out.sort();
    Ok(out)
}

/// A filesystem without xattr support has none.
fn no_xattrs(err: rustix::io::Errno) -> rustix::io::Result<usize> {
    if err == rustix::io::Errno::NOTSUP {
        Ok(0)
    } else {
        Err(err)
    }
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("a", b"b"), b"6 a=b\n");
        // Where the length's own digits tip it over 99 (98 + 2 = 100 has 3).
        let edge = pax_record("k", &[b'v'; 94]);
        assert_eq!((&edge[..4], edge.len()), (&b"101 "[..], 101));
        let long = pax_record("k", &[b'v'; 95]);
        assert_eq!((&long[..4], long.len()), (&b"102 "[..], 102));
        // The pass's own parser reads it back.
        let parsed = crate::rootfs::reader::parse_pax_records(&edge).unwrap();
        assert_eq!(parsed, vec![("k".to_string(), vec![b'v'; 94])]);
    }

    #[test]
    fn non_root_refuses_user_owned_tree_unless_owner_root() {
        let err = owners(OwnerMap::Keep, false, 1000, 1000).unwrap_err();
        let msg = err;
        assert!(
            msg.contains("uid 1000") && msg.contains("--owner root"),
            "{msg}"
        );
        assert_eq!(owners(OwnerMap::Root, false, 1000, 1000).unwrap(), (0, 0));
        assert_eq!(owners(OwnerMap::Keep, true, 1000, 5).unwrap(), (1000, 5));
        assert_eq!(owners(OwnerMap::Keep, false, 0, 0).unwrap(), (0, 0));
    }

    /// A file appended to between the two stats is reported as changed.
    #[test]
    fn change_check_sees_a_file_that_grew() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"hello").unwrap();
        let before = rustix::fs::fstat(&file).unwrap();
        check_unchanged(&before, &rustix::fs::fstat(&file).unwrap(), 5).unwrap();
        file.write_all(b" world").unwrap();
        let after = rustix::fs::fstat(&file).unwrap();
        let err = check_unchanged(&before, &after, 5).unwrap_err();
        assert!(err.to_string().contains("size went from 5 to 11"), "{err}");
        assert!(check_unchanged(&before, &before, 4).is_err(), "short read");
    }
}
