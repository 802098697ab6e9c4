//! Where entries go: the sink trait, and the in-memory sink for small vfat
//! partitions.
//!
//! Owns: the `EntrySink` contract and `MemorySink`.
//! Must not: touch the host; a sink only sees entries with paths relative
//! to its own partition root.
//! In: [`Entry`] + its data as `Read`. Out: whatever the sink builds.

use std::collections::HashMap;
use std::io::{self, Read};

use crate::rootfs::entry::{Entry, EntryKind, NodeType};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{fs} cannot hold {kind:?} entries: {path:?}")]
    Unsupported {
        path: String,
        kind: NodeType,
        fs: &'static str,
    },
}

/// Receives the entries of one partition, in archive order, parents first.
pub trait EntrySink {
    /// `data` yields exactly `size` bytes for [`EntryKind::File`] and nothing
    /// otherwise. A sink may leave data unread; the pass drains it.
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError>;
    /// Called once after the last entry.
    fn finish(&mut self) -> Result<(), SinkError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemEntry {
    pub path: String,
    pub kind: MemKind,
    pub mode: u32,
    pub mtime: u64,
}

/// What a [`MemorySink`] accepts besides directories and regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemPolicy {
    /// FAT: symlinks, devices and FIFOs are errors; a hard link becomes a
    /// copy of its target's bytes.
    Vfat,
    /// Symlinks kept; devices and FIFOs are still errors.
    KeepSymlinks,
}

/// Collects a small partition (e.g. the ESP) in memory.
#[derive(Debug)]
pub struct MemorySink {
    policy: MemPolicy,
    entries: Vec<MemEntry>,
    index: HashMap<String, usize>,
}

impl MemorySink {
    pub fn new(policy: MemPolicy) -> Self {
        Self {
            policy,
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn entries(&self) -> &[MemEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<MemEntry> {
        self.entries
    }

    fn unsupported(&self, entry: &Entry) -> SinkError {
        let fs = match self.policy {
            MemPolicy::Vfat => "vfat",
            MemPolicy::KeepSymlinks => "the in-memory partition",
        };
        SinkError::Unsupported {
            path: entry.path.clone(),
            kind: entry.kind.node_type(),
            fs,
        }
    }
}

impl EntrySink for MemorySink {
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        let kind = match &entry.kind {
            // The partition root has no metadata of its own on FAT.
            EntryKind::Dir if entry.path.is_empty() => return Ok(()),
            EntryKind::Dir => MemKind::Dir,
            EntryKind::File { size } => {
                let mut bytes =
                    Vec::with_capacity(usize::try_from(*size).unwrap_or(0).min(1 << 24));
                data.read_to_end(&mut bytes)?;
                MemKind::File(bytes)
            }
            EntryKind::Symlink { target } if self.policy == MemPolicy::KeepSymlinks => {
                MemKind::Symlink(target.clone())
            }
            EntryKind::HardLink { target } => {
                let source = self.index.get(target).map(|&at| &self.entries[at]);
                match source.map(|e| &e.kind) {
                    Some(MemKind::File(bytes)) => MemKind::File(bytes.clone()),
                    _ => return Err(self.unsupported(entry)),
                }
            }
            _ => return Err(self.unsupported(entry)),
        };
        let new = MemEntry {
            path: entry.path.clone(),
            kind,
            mode: entry.mode,
            mtime: entry.mtime,
        };
        // A repeated path replaces the earlier entry in place (tar semantics),
        // so parents stay ahead of their children.
        match self.index.get(&entry.path) {
            Some(&at) => self.entries[at] = new,
            None => {
                self.index.insert(entry.path.clone(), self.entries.len());
                self.entries.push(new);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
