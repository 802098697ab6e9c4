//! Will the rootfs fit? An estimate of what an ext4 filesystem of a given
//! size needs for a given tarball, checked before mke2fs writes anything.
//!
//! The model (4 KiB blocks, 256-byte inodes, one inode per 16 KiB, as in
//! templates/mke2fs.conf), calibrated against `mke2fs -d empty.tar` from
//! 32 MiB to 64 GiB, where it over-estimates the fixed overhead by 0.2-0.6%:
//! - data: each file rounded up to whole blocks, one block per directory
//!   and per symlink longer than the 59 bytes that fit in the inode, plus 5%
//!   for extent trees, xattr blocks and big directories;
//! - fixed: the journal (e2fsprogs' default size for the block count),
//!   the inode tables, and 0.5% + 256 KiB for bitmaps, group descriptors,
//!   reserved GDT blocks and superblock backups.
//!
//! The 5% root reserve is not counted: mke2fs -d may fill it.
//!
//! The same pass sizes every directory as `mke2fs -d` writes it (linear:
//! entries appended block after block), so the build knows whether any
//! directory outgrows one block and needs the `e2fsck -D` index pass.
//! Must not: spawn anything. Reads the tarball through `Read + Seek`.

use std::collections::HashMap;
use std::io::{self, Read, Seek};

use tar::EntryType;

use super::{Ext4Error, BLOCK_SIZE, MIB};

const INODE_SIZE: u64 = 256;
const INODE_RATIO: u64 = 16384;
/// Inodes 1-10 are reserved, 11 is lost+found.
const RESERVED_INODES: u64 = 11;
/// A symlink target up to this length lives in the inode itself.
const FAST_SYMLINK_MAX: usize = 59;
/// Suggested sizes are rounded up to this.
const SUGGEST_STEP: u64 = 16 * MIB;

/// What a tarball will take in the filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarUsage {
    /// Bytes of data blocks (files, directories, long symlinks).
    pub data_bytes: u64,
    /// Inodes: every entry but hard links, plus the root directory.
    pub inodes: u64,
    /// Bytes of directory entries in the largest directory (see
    /// [`dir_entry_bytes`]), an upper bound of what mke2fs writes into it.
    pub largest_dir: u64,
}

impl TarUsage {
    /// Whether some directory spans more than one block, which only
    /// `e2fsck -D` turns into an indexed (htree) directory.
    pub fn needs_dir_index(&self) -> bool {
        self.largest_dir > DIR_BLOCK_ROOM
    }
}

/// Room for entries in one directory block: the block less the 12-byte
/// checksum tail (metadata_csum).
const DIR_BLOCK_ROOM: u64 = BLOCK_SIZE - 12;

/// Bytes every directory holds before its own entries: `.` and `..` (12
/// each), plus room for lost+found (20) in the root and slack, so the
/// estimate never falls short.
const DIR_BASE_BYTES: u64 = 12 + 12 + 20 + 64;

/// An ext4 directory entry's length for a name of `name_len` bytes: an
/// 8-byte header and the name, rounded up to 4.
fn dir_entry_bytes(name_len: usize) -> u64 {
    (8 + name_len as u64).div_ceil(4) * 4
}

/// Bytes of entries per directory, from the tar's paths. A path counts in
/// its parent every time it appears (a repeated path may leave a hole where
/// mke2fs removed the first one); parents the tar does not list are counted
/// once, as mke2fs creates them.
#[derive(Default)]
struct DirSizes {
    bytes: HashMap<Vec<u8>, u64>,
    seen: std::collections::HashSet<Vec<u8>>,
}

impl DirSizes {
    fn add(&mut self, path: &[u8]) {
        let mut path = normalise(path);
        let mut explicit = true;
        while let Some(split) = split_parent(path) {
            let (parent, name) = split;
            if !explicit && !self.seen.insert(path.to_vec()) {
                break;
            }
            if explicit {
                self.seen.insert(path.to_vec());
            }
            *self.bytes.entry(parent.to_vec()).or_insert(DIR_BASE_BYTES) +=
                dir_entry_bytes(name.len());
            path = parent;
            explicit = false;
        }
    }

    fn largest(&self) -> u64 {
        self.bytes.values().copied().max().unwrap_or(DIR_BASE_BYTES)
    }
}

/// `./usr/bin/` → `usr/bin`; the root is empty.
fn normalise(path: &[u8]) -> &[u8] {
    let mut path = path;
    loop {
        if let Some(rest) = path.strip_prefix(b"./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix(b"/") {
            path = rest;
        } else {
            break;
        }
    }
    while let Some(rest) = path.strip_suffix(b"/") {
        path = rest;
    }
    if path == b"." {
        return b"";
    }
    path
}

/// `usr/bin` → (`usr`, `bin`); `None` for the root.
fn split_parent(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.is_empty() {
        return None;
    }
    Some(match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (normalise(&path[..i]), &path[i + 1..]),
        None => (&b""[..], path),
    })
}

/// Reads the tar headers (seeking over file data).
pub fn measure_tar<R: Read + Seek>(tar: R) -> io::Result<TarUsage> {
    let mut usage = TarUsage {
        data_bytes: BLOCK_SIZE,
        inodes: 1,
        largest_dir: 0,
    };
    let mut dirs = DirSizes::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let header = entry.header();
        let is_root = matches!(entry.path_bytes().as_ref(), b"./" | b"." | b"/" | b"");
        if !is_root && !matches!(header.entry_type(), EntryType::XGlobalHeader) {
            dirs.add(&entry.path_bytes());
        }
        match header.entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                usage.data_bytes += entry.size().div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
                usage.inodes += 1;
            }
            EntryType::Directory if is_root => {}
            EntryType::Directory => {
                usage.data_bytes += BLOCK_SIZE;
                usage.inodes += 1;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().map_or(0, |t| t.len());
                if target > FAST_SYMLINK_MAX {
                    usage.data_bytes += BLOCK_SIZE;
                }
                usage.inodes += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => usage.inodes += 1,
            // Hard links share an inode; PAX/GNU headers are metadata.
            _ => {}
        }
    }
    usage.largest_dir = dirs.largest();
    Ok(usage)
}

/// The journal e2fsprogs creates for a filesystem of `blocks` 4 KiB blocks
/// (ext2fs_default_journal_size), in bytes.
pub fn journal_bytes(blocks: u64) -> u64 {
    let journal_blocks = match blocks {
        0..2048 => 0,
        2048..32768 => 1024,
        32768..262_144 => 4096,
        262_144..524_288 => 8192,
        524_288..4_194_304 => 16384,
        4_194_304..8_388_608 => 32768,
        8_388_608..16_777_216 => 65536,
        16_777_216..33_554_432 => 131_072,
        _ => 262_144,
    };
    journal_blocks * BLOCK_SIZE
}

/// How many inodes a filesystem of `size` bytes gets.
pub fn inode_capacity(size: u64) -> u64 {
    size / INODE_RATIO
}

/// Estimated bytes a filesystem of `size` bytes needs to hold `usage`.
pub fn estimate_needed(usage: &TarUsage, size: u64) -> u64 {
    let data = usage.data_bytes + usage.data_bytes / 20;
    let fixed = journal_bytes(size / BLOCK_SIZE)
        + inode_capacity(size) * INODE_SIZE
        + size / 200
        + 256 * 1024;
    data + fixed
}

/// `needed + 12.5%` headroom, rounded up to 16 MiB: what to tell the user
/// to write as the partition size. The headroom also covers the fixed
/// overhead growing with the partition.
pub fn suggest_size(needed: u64) -> u64 {
    (needed + needed / 8).div_ceil(SUGGEST_STEP) * SUGGEST_STEP
}

/// Fails when `needed` bytes do not fit in `size`.
pub fn check_fits(needed: u64, size: u64, partition: &str) -> Result<(), Ext4Error> {
    if needed <= size {
        return Ok(());
    }
    Err(Ext4Error::TooSmall {
        partition: partition.to_string(),
        needed,
        size,
        suggested: suggest_size(needed),
    })
}

/// Fails when the tarball has more entries than the filesystem has inodes.
pub fn check_inodes(usage: &TarUsage, size: u64, partition: &str) -> Result<(), Ext4Error> {
    let inodes = inode_capacity(size);
    let wanted = usage.inodes + RESERVED_INODES;
    if wanted <= inodes {
        return Ok(());
    }
    Err(Ext4Error::TooManyFiles {
        partition: partition.to_string(),
        files: usage.inodes,
        inodes,
        size,
        suggested: suggest_size(wanted * INODE_RATIO),
    })
}
