//! A normalised PAX tar writer, the input format of `mke2fs -d file.tar`.
//!
//! Owns: one ustar header per entry, preceded by a PAX `x` header only when
//! needed (path/link > 100 bytes, owner names > 32 bytes, ids or size too
//! large for octal, xattrs). Output is a pure function of the entries: no
//! host user names, no atime/ctime, no pid in PAX header names.
//!
//! Also keeps every xattr in a side list ([`XattrRecord`]), because mke2fs
//! 1.47's libarchive reader applies only `security.capability` and drops
//! the rest (ACLs included); the ext4 stage restores them through
//! libext2fs (never a debugfs script: the paths come from the input).
//!
//! Must not: seek, or hold file data (it is copied straight through).
//! In: entries. Out: the tar stream on `W`, plus the xattr list.
//!
//! [`append_files`] reopens a finished tar to add files whose content is
//! known only after the pass (extlinux.conf lists the kernels the pass
//! found): it cuts the two zero blocks that end the archive, writes the
//! entries the same way, and ends it again — no second pass.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use tar::{EntryType, Header};

use crate::rootfs::entry::{Entry, EntryKind};
use crate::rootfs::error::SinkError;
use crate::rootfs::sink::EntrySink;

/// An extended attribute the filesystem builder must restore itself.
/// Every xattr of the partition is listed, `security.capability` too
/// (which mke2fs already applied; setting it again is harmless).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrRecord {
    /// Relative to the partition root, without a leading "/" ("" is the
    /// root directory); the ext4 stage looks up `format!("/{path}")`.
    pub path: String,
    pub name: String,
    pub value: Vec<u8>,
}

pub struct TarSink<W: Write> {
    out: W,
    xattrs: Vec<XattrRecord>,
}

const NAME_LEN: usize = 100;
const OWNER_LEN: usize = 32;
const OCTAL7_MAX: u64 = 0o7_777_777;
const OCTAL11_MAX: u64 = 0o77_777_777_777;

impl<W: Write> TarSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            xattrs: Vec::new(),
        }
    }

    pub fn xattrs(&self) -> &[XattrRecord] {
        &self.xattrs
    }

    /// The writer (after [`EntrySink::finish`]) and the xattr side list.
    pub fn into_parts(self) -> (W, Vec<XattrRecord>) {
        (self.out, self.xattrs)
    }

    fn write_padded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.out.write_all(&[0u8; 512][..pad(bytes.len() as u64)])
    }
}

fn pad(len: u64) -> usize {
    ((512 - len % 512) % 512) as usize
}

/// Appends one `"<len> <key>=<value>\n"` record; `len` counts itself.
pub fn push_pax_record(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    buf.extend_from_slice(format!("{len} {key}=").as_bytes());
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

fn put_field(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

fn tar_name(entry: &Entry) -> String {
    if entry.path.is_empty() {
        "./".to_owned()
    } else {
        entry.path.clone()
    }
}

impl<W: Write> EntrySink for TarSink<W> {
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        let name = tar_name(entry);
        let mut pax = Vec::new();
        let mut header = Header::new_ustar();
        let (kind, size, link) = match &entry.kind {
            EntryKind::Dir => (EntryType::Directory, 0, None),
            EntryKind::File { size } => (EntryType::Regular, *size, None),
            EntryKind::Symlink { target } => (EntryType::Symlink, 0, Some(target.as_str())),
            EntryKind::HardLink { target } => (EntryType::Link, 0, Some(target.as_str())),
            EntryKind::CharDev { .. } => (EntryType::Char, 0, None),
            EntryKind::BlockDev { .. } => (EntryType::Block, 0, None),
            EntryKind::Fifo => (EntryType::Fifo, 0, None),
        };
        header.set_entry_type(kind);
        let non_ascii = |s: &str| !s.is_ascii();
        if name.len() > NAME_LEN || non_ascii(&name) {
            push_pax_record(&mut pax, "path", name.as_bytes());
        }
        if let Some(link) = link {
            if link.len() > NAME_LEN || non_ascii(link) {
                push_pax_record(&mut pax, "linkpath", link.as_bytes());
            }
        }
        if [&name, link.unwrap_or("")].iter().any(|s| non_ascii(s)) {
            // Keep libarchive from converting UTF-8 names to the locale.
            pax.splice(0..0, pax_record("hdrcharset", b"BINARY"));
        }
        if entry.uid > OCTAL7_MAX {
            push_pax_record(&mut pax, "uid", entry.uid.to_string().as_bytes());
        }
        if entry.gid > OCTAL7_MAX {
            push_pax_record(&mut pax, "gid", entry.gid.to_string().as_bytes());
        }
        if entry.uname.len() > OWNER_LEN {
            push_pax_record(&mut pax, "uname", entry.uname.as_bytes());
        }
        if entry.gname.len() > OWNER_LEN {
            push_pax_record(&mut pax, "gname", entry.gname.as_bytes());
        }
        if size > OCTAL11_MAX {
            push_pax_record(&mut pax, "size", size.to_string().as_bytes());
        }
        for x in &entry.xattrs {
            push_pax_record(&mut pax, &format!("SCHILY.xattr.{}", x.name), &x.value);
            self.xattrs.push(XattrRecord {
                path: entry.path.clone(),
                name: x.name.clone(),
                value: x.value.clone(),
            });
        }
        {
            let ustar = header.as_ustar_mut().expect("new_ustar header");
            put_field(&mut ustar.name, name.as_bytes());
            if let Some(link) = link {
                put_field(&mut ustar.linkname, link.as_bytes());
            }
            put_field(&mut ustar.uname, entry.uname.as_bytes());
            put_field(&mut ustar.gname, entry.gname.as_bytes());
        }
        header.set_mode(entry.mode & 0o7777);
        header.set_uid(entry.uid.min(OCTAL7_MAX));
        header.set_gid(entry.gid.min(OCTAL7_MAX));
        header.set_mtime(entry.mtime.min(OCTAL11_MAX));
        header.set_size(size);
        // Zeros rather than NULs for non-devices, as GNU tar writes them.
        let (major, minor) = match entry.kind {
            EntryKind::CharDev { major, minor } | EntryKind::BlockDev { major, minor } => {
                (major, minor)
            }
            _ => (0, 0),
        };
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
        header.set_cksum();
        if !pax.is_empty() {
            let mut x = Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let base: String = base.chars().filter(char::is_ascii).take(80).collect();
            put_field(
                &mut x.as_ustar_mut().expect("ustar").name,
                format!("PaxHeaders/{base}").as_bytes(),
            );
            x.set_mode(0o644);
            x.set_uid(0);
            x.set_gid(0);
            x.set_mtime(entry.mtime.min(OCTAL11_MAX));
            x.set_size(pax.len() as u64);
            x.set_cksum();
            self.out.write_all(x.as_bytes())?;
            self.write_padded(&pax)?;
        }
        self.out.write_all(header.as_bytes())?;
        if size > 0 {
            let copied = io::copy(&mut data.take(size), &mut self.out)?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{name}: data ends after {copied} of {size} bytes"),
                )
                .into());
            }
            self.out.write_all(&[0u8; 512][..pad(size)])?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(())
    }
}

/// A file (or, with `data = None`, a directory) to add to a finished tar;
/// `path` is relative to the partition root, owned root:root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedFile {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub mtime: u64,
}

/// Append `files` to the tar at `path`, which must end with the 1024 zero
/// bytes [`TarSink`] finishes with. Deterministic: same files, same bytes.
pub fn append_files(path: &Path, files: &[AddedFile]) -> Result<(), SinkError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut end = [0u8; 1024];
    if len >= 1024 && len.is_multiple_of(512) {
        file.seek(SeekFrom::Start(len - 1024))?;
        file.read_exact(&mut end)?;
    }
    if len < 1024 || !len.is_multiple_of(512) || end.iter().any(|&b| b != 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a finished tar (no end-of-archive blocks)",
                path.display()
            ),
        )
        .into());
    }
    file.set_len(len - 1024)?;
    file.seek(SeekFrom::Start(len - 1024))?;
    let mut sink = TarSink::new(BufWriter::new(&mut file));
    for added in files {
        let (kind, mode) = match &added.data {
            Some(data) => (
                EntryKind::File {
                    size: data.len() as u64,
                },
                0o644,
            ),
            None => (EntryKind::Dir, 0o755),
        };
        let entry = Entry::root_owned(&added.path, kind, mode, added.mtime);
        sink.write_entry(&entry, &mut added.data.as_deref().unwrap_or_default())?;
    }
    sink.finish()?;
    let (writer, _) = sink.into_parts();
    writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    push_pax_record(&mut v, key, value);
    v
}

#[cfg(test)]
mod tests {
    use super::{append_files, AddedFile, TarSink};
    use crate::rootfs::entry::{Entry, EntryKind};
    use crate::rootfs::sink::EntrySink;

    fn finished_tar(path: &std::path::Path) {
        let mut sink = TarSink::new(std::fs::File::create(path).unwrap());
        let entry = Entry::root_owned("boot", EntryKind::Dir, 0o755, 100);
        sink.write_entry(&entry, &mut std::io::empty()).unwrap();
        sink.finish().unwrap();
    }

    /// Appended entries follow the old ones, the archive ends properly
    /// (GNU tar, the oracle, lists it without complaint), and appending is
    /// deterministic.
    #[test]
    fn appends_after_the_end_marker() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            AddedFile {
                path: "boot/extlinux".into(),
                data: None,
                mtime: 1_700_000_000,
            },
            AddedFile {
                path: "boot/extlinux/extlinux.conf".into(),
                data: Some(b"default l0\n".to_vec()),
                mtime: 1_700_000_000,
            },
        ];
        let mut bytes = Vec::new();
        for name in ["a.tar", "b.tar"] {
            let path = dir.path().join(name);
            finished_tar(&path);
            append_files(&path, &files).unwrap();
            bytes.push(std::fs::read(&path).unwrap());
        }
        assert_eq!(bytes[0], bytes[1]);
        assert_eq!(bytes[0].len() % 512, 0);
        assert!(bytes[0][bytes[0].len() - 1024..].iter().all(|&b| b == 0));
        let path = dir.path().join("a.tar");
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        let names: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("boot".to_string(), 100),
                ("boot/extlinux".to_string(), 1_700_000_000),
                ("boot/extlinux/extlinux.conf".to_string(), 1_700_000_000)
            ]
        );
        if let Ok(out) = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let listing = String::from_utf8_lossy(&out.stdout);
            assert!(listing.contains("11 2023-11-14"), "{listing}");
        }
    }

    #[test]
    fn refuses_a_file_that_is_not_a_finished_tar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        std::fs::write(&path, vec![1u8; 2048]).unwrap();
        let err = append_files(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("not a finished tar"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![1u8; 2048]);
    }
}
