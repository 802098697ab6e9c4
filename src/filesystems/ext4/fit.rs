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
//! Must not: spawn anything. Reads the tarball through `Read + Seek`.

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
}

/// Reads the tar headers (seeking over file data).
pub fn measure_tar<R: Read + Seek>(tar: R) -> io::Result<TarUsage> {
    let mut usage = TarUsage {
        data_bytes: BLOCK_SIZE,
        inodes: 1,
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let header = entry.header();
        let is_root = matches!(entry.path_bytes().as_ref(), b"./" | b"." | b"/" | b"");
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
