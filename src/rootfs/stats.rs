//! Per-partition counters and the ext4 size estimate.
//!
//! Owns: [`OutputStats`]. Pure arithmetic over emitted entries.

use crate::rootfs::entry::{Entry, EntryKind};

const EXT4_BLOCK: u64 = 4096;
const EXT4_INODE: u64 = 256;
/// Symlink targets shorter than this live inside the inode ("fast" symlink).
const FAST_SYMLINK_MAX: usize = 59;
/// Roughly the in-inode xattr space of a 256-byte inode.
const INLINE_XATTR_SPACE: usize = 96;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputStats {
    /// "/" for the root partition, else the mount point ("/boot/efi").
    pub mount_point: String,
    /// Entries written, including implicit parents and added files.
    pub entries: u64,
    /// Entries that need an inode (everything but hard links).
    pub inodes: u64,
    /// Sum of regular file sizes (sparse holes counted as data).
    pub file_bytes: u64,
    /// Data rounded up to 4 KiB blocks: files, one block per directory,
    /// slow symlinks, and an xattr block when xattrs exceed the inode.
    pub block_bytes: u64,
}

impl OutputStats {
    pub fn new(mount_point: &str) -> Self {
        Self {
            mount_point: mount_point.to_owned(),
            ..Self::default()
        }
    }

    pub fn add(&mut self, entry: &Entry) {
        self.entries += 1;
        if !matches!(entry.kind, EntryKind::HardLink { .. }) {
            self.inodes += 1;
        }
        self.block_bytes += match &entry.kind {
            EntryKind::File { size } => {
                self.file_bytes += size;
                size.div_ceil(EXT4_BLOCK) * EXT4_BLOCK
            }
            EntryKind::Dir => EXT4_BLOCK,
            EntryKind::Symlink { target } if target.len() > FAST_SYMLINK_MAX => EXT4_BLOCK,
            _ => 0,
        };
        let xattr_bytes: usize = entry
            .xattrs
            .iter()
            .map(|x| x.name.len() + x.value.len() + 20)
            .sum();
        if xattr_bytes > INLINE_XATTR_SPACE {
            self.block_bytes += EXT4_BLOCK;
        }
    }

    /// An ESTIMATE of the ext4 space the entries need: data in 4 KiB blocks
    /// plus 256 bytes per inode. It leaves out the journal, group
    /// descriptors, bitmaps, extent tree blocks of fragmented files and
    /// reserved blocks, so give a filesystem some headroom above it.
    pub fn ext4_estimate_bytes(&self) -> u64 {
        self.block_bytes + self.inodes * EXT4_INODE
    }
}
