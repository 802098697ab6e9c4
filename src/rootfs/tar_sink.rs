//! A normalised PAX tar writer, the input format of `mke2fs -d file.tar`.
//!
//! Owns: one ustar header per entry, preceded by a PAX `x` header only when
//! needed (path/link > 100 bytes, owner names > 32 bytes, ids or size too
//! large for octal, xattrs). Output is a pure function of the entries: no
//! host user names, no atime/ctime, no pid in PAX header names.
//!
//! Also keeps every xattr in a side list ([`XattrRecord`]), because mke2fs
//! 1.47's libarchive reader applies only `security.capability` and drops
//! the rest (ACLs included); the ext4 stage restores them with
//! `debugfs -w -R 'ea_set -f VALUEFILE /PATH NAME' IMG`.
//!
//! Must not: seek, or hold file data (it is copied straight through).
//! In: entries. Out: the tar stream on `W`, plus the xattr list.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use crate::rootfs::entry::{Entry, EntryKind};
use crate::rootfs::sink::{EntrySink, SinkError};

/// An extended attribute the filesystem builder must restore itself.
/// Every xattr of the partition is listed, `security.capability` too
/// (which mke2fs already applied; setting it again is harmless).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrRecord {
    /// Relative to the partition root, without a leading "/" ("" is the
    /// root directory); debugfs wants `format!("/{path}")`.
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

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    push_pax_record(&mut v, key, value);
    v
}
