//! The domain view of one filesystem entry: what the pass hands to sinks.
//!
//! Owns: `Entry`/`EntryKind`/`NodeType`/`Xattr` and path normalisation
//! (the `..` escape checks). A leaf: imports nothing else from the rootfs
//! stage, so the errors, the reader and the sinks can all name these types.
//! Making an [`Entry`] out of a tar member is `member.rs`'s job; deciding
//! where it goes or editing it is `pass.rs`'s.

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

impl Entry {
    /// An entry mkimg makes itself (an added file, a parent directory, an
    /// edit): owned by root:root, no xattrs.
    pub fn root_owned(path: &str, kind: EntryKind, mode: u32, mtime: u64) -> Entry {
        Entry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            mtime,
            xattrs: Vec::new(),
        }
    }
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
