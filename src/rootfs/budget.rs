//! What a partition can hold, checked while the rootfs streams.
//!
//! Owns: [`Budget`], the bytes and inodes a partition's filesystem offers
//! its files, and what one entry costs against it. The pass checks an
//! entry's cost (from its header: the size a file will have, sparse or
//! not) BEFORE the entry reaches a sink, so a 51 KiB tarball
//! that declares a 2 GiB file, or a zstd bomb, stops at the first member
//! that does not fit instead of filling the work directory first.
//!
//! The numbers are a LOWER bound of what the filesystem will need and an
//! UPPER bound of what it offers (the filesystem's own overhead is taken
//! off the partition size, data is rounded only to the smallest block the
//! filesystem can use), so the check never refuses a rootfs that mke2fs or
//! the vfat writer would accept; they keep their exact checks.
//!
//! Must not: touch anything; pure arithmetic over sizes and entries.

use crate::rootfs::entry::{Entry, EntryKind};

/// ext4 block and inode size and bytes per inode (templates/mke2fs.conf).
const EXT4_BLOCK: u64 = 4096;
const EXT4_INODE: u64 = 256;
const EXT4_INODE_RATIO: u64 = 16384;
/// Inodes ext4 reserves (1..=10) plus lost+found.
const EXT4_RESERVED_INODES: u64 = 11;
/// Symlink targets shorter than this live inside the inode ("fast" symlink).
const FAST_SYMLINK_MAX: usize = 59;
/// The smallest FAT cluster.
const FAT_SECTOR: u64 = 512;

/// The space one partition offers the rootfs entries routed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The partition's name in board.toml, for messages.
    pub partition: String,
    /// The partition size in bytes.
    pub size: u64,
    /// Bytes left for file data, directories and symlinks once the
    /// filesystem's own structures are taken off.
    pub data_bytes: u64,
    /// Inodes the filesystem will have for entries; `None` on FAT.
    pub inodes: Option<u64>,
    granule: u64,
}

/// What the entries routed to one partition have cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

/// Why an entry does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    /// The entry needs `needed` bytes; `left` of the usable bytes remain.
    Bytes { needed: u64, left: u64 },
    /// No inode is left: the partition has `inodes` of them.
    Inodes { inodes: u64 },
}

/// The journal `mke2fs` gives a filesystem of `blocks` 4 KiB blocks
/// (e2fsprogs' `ext2fs_default_journal_size`), in blocks.
fn ext4_journal_blocks(blocks: u64) -> u64 {
    match blocks {
        b if b < 2048 => 0,
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131_072,
        _ => 262_144,
    }
}

fn round_up(bytes: u64, granule: u64) -> u64 {
    bytes.div_ceil(granule).saturating_mul(granule)
}

impl Budget {
    /// An ext4 partition of `size` bytes made by mkimg's mke2fs.conf: one
    /// 256-byte inode per 16 KiB, the default journal, and 1/2048 for
    /// bitmaps and (reserved) group descriptors. Checked against mke2fs:
    /// from 8 MiB to 4 GiB this is at most 0.4% above the free blocks of a
    /// fresh filesystem, never below.
    pub fn ext4(partition: &str, size: u64) -> Self {
        let inodes = size / EXT4_INODE_RATIO;
        let journal = ext4_journal_blocks(size / EXT4_BLOCK) * EXT4_BLOCK;
        let overhead = inodes * EXT4_INODE + journal + size / 2048;
        Self {
            partition: partition.to_owned(),
            size,
            data_bytes: size.saturating_sub(overhead),
            inodes: Some(inodes.saturating_sub(EXT4_RESERVED_INODES)),
            granule: EXT4_BLOCK,
        }
    }

    /// A FAT partition of `size` bytes. Its overhead depends on the cluster
    /// size the writer picks (two FATs of 4 bytes per cluster may be 1/64
    /// of the volume or 1/4096), so the whole size is the bound here; the
    /// vfat writer checks clusters exactly before it writes anything.
    pub fn vfat(partition: &str, size: u64) -> Self {
        Self {
            partition: partition.to_owned(),
            size,
            data_bytes: size,
            inodes: None,
            granule: FAT_SECTOR,
        }
    }

    /// Bytes `entry` takes. A sparse file counts at its full size: FAT has
    /// no holes, and the ext4 stage's own check counts it so too (mke2fs
    /// leaves zero blocks unallocated, but nothing bounds the data between
    /// them).
    pub fn cost(&self, entry: &Entry) -> u64 {
        match &entry.kind {
            EntryKind::File { size } => round_up(*size, self.granule),
            EntryKind::Dir => self.granule,
            EntryKind::Symlink { target } if target.len() > FAST_SYMLINK_MAX => self.granule,
            _ => 0,
        }
    }

    /// Adds `entry` to `used`, or says why it does not fit (and leaves
    /// `used` as it was).
    pub fn charge(&self, used: &mut Usage, entry: &Entry) -> Result<(), Overrun> {
        let needed = self.cost(entry);
        let left = self.data_bytes.saturating_sub(used.bytes);
        if needed > left {
            return Err(Overrun::Bytes { needed, left });
        }
        let inode = u64::from(!matches!(entry.kind, EntryKind::HardLink { .. }));
        if let Some(inodes) = self.inodes {
            if used.inodes + inode > inodes {
                return Err(Overrun::Inodes { inodes });
            }
        }
        used.bytes += needed;
        used.inodes += inode;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Budget, Overrun, Usage};
    use crate::rootfs::entry::{Entry, EntryKind};

    fn file(size: u64) -> Entry {
        Entry::root_owned("big", EntryKind::File { size }, 0o644, 0)
    }

    /// mke2fs with mkimg's config on 64 MiB: 4096 inodes, a 4 MiB journal.
    #[test]
    fn ext4_takes_off_inode_tables_and_journal() {
        let b = Budget::ext4("rootfs", 64 << 20);
        assert_eq!(b.inodes, Some(4096 - 11));
        assert_eq!(
            b.data_bytes,
            (64 << 20) - (1 << 20) - (4 << 20) - (32 << 10)
        );
    }

    #[test]
    fn a_file_larger_than_what_is_left_is_refused_before_it_counts() {
        let b = Budget::ext4("rootfs", 64 << 20);
        let mut used = Usage::default();
        b.charge(&mut used, &file(1 << 20)).unwrap();
        let err = b.charge(&mut used, &file(2 << 30)).unwrap_err();
        assert_eq!(
            err,
            Overrun::Bytes {
                needed: 2 << 30,
                left: b.data_bytes - (1 << 20)
            }
        );
        assert_eq!(used.bytes, 1 << 20);
        assert_eq!(used.inodes, 1);
    }

    #[test]
    fn a_file_costs_its_full_size_rounded_to_the_block() {
        let ext4 = Budget::ext4("rootfs", 64 << 20);
        assert_eq!(ext4.cost(&file(1)), 4096);
        let fat = Budget::vfat("esp", 600 << 20);
        assert_eq!(fat.cost(&file(1)), 512);
        assert!(fat.charge(&mut Usage::default(), &file(2 << 30)).is_err());
    }

    /// The oracle: a fresh filesystem from mke2fs with mkimg's config has
    /// at most `data_bytes` free (so the pass never refuses what mke2fs
    /// would take), and not much less; the inode count matches.
    #[test]
    fn ext4_budget_is_just_above_what_mke2fs_leaves_free() {
        let have = crate::test_tools::have_tool;
        if !have("mke2fs") || !have("dumpe2fs") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mke2fs.conf");
        std::fs::write(&conf, crate::templates::MKE2FS_CONF).unwrap();
        for mib in [8u64, 64, 125, 512] {
            let image = dir.path().join(format!("{mib}.img"));
            let file = std::fs::File::create(&image).unwrap();
            file.set_len(mib << 20).unwrap();
            let status = std::process::Command::new("mke2fs")
                .env("MKE2FS_CONFIG", &conf)
                .args(["-q", "-F", "-t", "ext4", "-T", "default", "-b", "4096"])
                .arg(&image)
                .status()
                .unwrap();
            assert!(status.success());
            let out = std::process::Command::new("dumpe2fs")
                .arg("-h")
                .arg(&image)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let field = |name: &str| -> u64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim_start_matches(':').trim().parse().ok())
                    .unwrap_or_else(|| panic!("{name} in {text}"))
            };
            let free = field("Free blocks") * 4096;
            let b = Budget::ext4("rootfs", mib << 20);
            assert!(b.data_bytes >= free, "{mib} MiB: {} < {free}", b.data_bytes);
            let slack = b.data_bytes - free;
            assert!(slack < (mib << 20) / 200, "{mib} MiB: {slack} over");
            assert_eq!(b.inodes.unwrap() + 11, field("Inode count"), "{mib} MiB");
        }
    }

    #[test]
    fn inodes_run_out() {
        let b = Budget::ext4("rootfs", 1 << 20);
        let mut used = Usage::default();
        let limit = b.inodes.unwrap();
        assert_eq!(limit, 64 - 11);
        for _ in 0..limit {
            b.charge(&mut used, &file(0)).unwrap();
        }
        assert_eq!(
            b.charge(&mut used, &file(0)),
            Err(Overrun::Inodes { inodes: limit })
        );
    }
}
