//! The domain view of one filesystem entry, and how a tar member becomes one.
//!
//! Owns: `Entry`/`EntryKind`/`Xattr` (what sinks receive), path
//! normalisation and the escape checks, reading owner/mode/mtime/device
//! numbers/xattrs out of a [`RawMember`].
//! Must not: decide where an entry goes or edit it (that is `pass.rs`).
//! In: [`RawMember`]. Out: [`Entry`] with a root-relative normalised path.

use crate::rootfs::error::RootfsError;
use crate::rootfs::reader::RawMember;
use tar::EntryType;

/// The type of a node, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    Dir,
    File,
    Symlink,
    HardLink,
    CharDev,
    BlockDev,
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file; `size` is the logical size (sparse holes expanded).
    File {
        size: u64,
    },
    /// Target kept byte-for-byte as in the tarball (absolute targets are
    /// fine inside an image; they are never followed here).
    Symlink {
        target: String,
    },
    /// Normalised path of an earlier entry in the same output.
    HardLink {
        target: String,
    },
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One extended attribute, e.g. `security.capability` or
/// `system.posix_acl_access` (value in the Linux xattr binary format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    pub name: String,
    pub value: Vec<u8>,
}

/// One filesystem entry as handed to a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the sink's root, no leading `/` or `./`, no `//`, no
    /// `..`; the empty string is the root directory itself.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Owner names as written in the input (empty when absent).
    pub uname: String,
    pub gname: String,
    /// Seconds since the epoch, already clamped to SOURCE_DATE_EPOCH.
    pub mtime: u64,
    /// Sorted by name.
    pub xattrs: Vec<Xattr>,
}

impl EntryKind {
    pub fn node_type(&self) -> NodeType {
        match self {
            EntryKind::Dir => NodeType::Dir,
            EntryKind::File { .. } => NodeType::File,
            EntryKind::Symlink { .. } => NodeType::Symlink,
            EntryKind::HardLink { .. } => NodeType::HardLink,
            EntryKind::CharDev { .. } => NodeType::CharDev,
            EntryKind::BlockDev { .. } => NodeType::BlockDev,
            EntryKind::Fifo => NodeType::Fifo,
        }
    }
}

/// Normalises a member path: strips leading `/` and `./`, collapses `//`
/// and `.` components. Returns `None` when a `..` component appears.
pub fn normalise_path(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Normalises a hard link target, resolving `..` lexically; `None` when it
/// climbs above the root.
pub fn normalise_link_target(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Joins a parent path and a child name ("" is the root).
pub fn join_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// Returns the parent of a normalised, non-root path.
pub fn parent_path(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

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
