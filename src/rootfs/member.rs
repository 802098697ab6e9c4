//! How a tar member becomes an [`Entry`]: path normalisation and the escape
//! checks applied to its name and hard link target, and owner, mode, mtime,
//! device numbers and xattrs read out of its header and PAX records.
//!
//! In: a [`RawMember`] from the reader. Out: an [`Entry`] with a
//! root-relative normalised path, or a [`RootfsError`] naming the member.
//! Must not: decide where the entry goes or edit it (that is `pass.rs`).

use tar::EntryType;

use crate::rootfs::entry::{normalise_link_target, normalise_path, Entry, EntryKind, Xattr};
use crate::rootfs::error::RootfsError;
use crate::rootfs::reader::RawMember;

/// Converts a tar member into an [`Entry`] with its rootfs-relative path.
/// Returns the display name (as written in the tarball) alongside for errors.
pub fn entry_from_member(m: &RawMember) -> Result<(Entry, String), RootfsError> {
    let name = String::from_utf8_lossy(&m.name).into_owned();
    let (index, offset) = (m.index, m.offset);
    let utf8 = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| RootfsError::NonUtf8Name {
            name: name.clone(),
            index,
            offset,
        })
    };
    let io_err = |source| RootfsError::Member {
        index,
        offset,
        source,
    };
    let unsupported = |kind: String| RootfsError::UnsupportedMember {
        name: name.clone(),
        kind,
        index,
        offset,
    };
    let path = normalise_path(&utf8(&m.name)?).ok_or_else(|| RootfsError::PathEscapes {
        name: name.clone(),
        index,
        offset,
    })?;
    let h = &m.header;
    let device = || -> Result<(u32, u32), RootfsError> {
        let major = h.device_major().map_err(io_err)?.unwrap_or(0);
        let minor = h.device_minor().map_err(io_err)?.unwrap_or(0);
        Ok((major, minor))
    };
    let kind = match h.entry_type() {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            EntryKind::File { size: m.size }
        }
        EntryType::Directory => EntryKind::Dir,
        EntryType::Symlink => EntryKind::Symlink {
            target: utf8(&m.link)?,
        },
        EntryType::Link => {
            let raw = utf8(&m.link)?;
            let target =
                normalise_link_target(&raw).ok_or_else(|| RootfsError::HardLinkEscapes {
                    name: name.clone(),
                    target: raw.clone(),
                    index,
                    offset,
                })?;
            EntryKind::HardLink { target }
        }
        EntryType::Char => {
            let (major, minor) = device()?;
            EntryKind::CharDev { major, minor }
        }
        EntryType::Block => {
            let (major, minor) = device()?;
            EntryKind::BlockDev { major, minor }
        }
        EntryType::Fifo => EntryKind::Fifo,
        other => return Err(unsupported(format!("{other:?}"))),
    };
    if m.pax.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) {
        return Err(unsupported(
            "PAX-format sparse file (GNU.sparse.*); use GNU format sparse members".into(),
        ));
    }
    let pax = |key: &str| {
        m.pax
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    };
    let mtime = match pax("mtime") {
        Some(v) => parse_pax_seconds(v)
            .ok_or_else(|| unsupported("PAX mtime that is not a number".into()))?,
        None => h.mtime().map_err(io_err)?,
    };
    let owner_name = |key: &str, field: Option<&[u8]>| -> String {
        let raw = pax(key).or(field).unwrap_or_default();
        String::from_utf8_lossy(raw).into_owned()
    };
    let mut xattrs: Vec<Xattr> = Vec::new();
    for (key, value) in &m.pax {
        if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
            xattrs.retain(|x| x.name != attr);
            xattrs.push(Xattr {
                name: attr.to_owned(),
                value: value.clone(),
            });
        }
    }
    xattrs.sort_by(|a, b| a.name.cmp(&b.name));
    let entry = Entry {
        path,
        kind,
        mode: h.mode().map_err(io_err)? & 0o7777,
        uid: pax_number(pax("uid")).map_or_else(|| h.uid().map_err(io_err), Ok)?,
        gid: pax_number(pax("gid")).map_or_else(|| h.gid().map_err(io_err), Ok)?,
        uname: owner_name("uname", h.username_bytes()),
        gname: owner_name("gname", h.groupname_bytes()),
        mtime,
        xattrs,
    };
    Ok((entry, name))
}

/// PAX times are decimal seconds with an optional fraction; times before
/// the epoch become 0.
fn parse_pax_seconds(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let whole = s.split('.').next()?;
    if let Some(neg) = whole.strip_prefix('-') {
        neg.parse::<u64>().ok().map(|_| 0)
    } else {
        whole.parse().ok()
    }
}

fn pax_number(v: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(v?).ok()?.parse().ok()
}
