//! Boot-sector-level decisions: FAT type, size limits, volume label, and the
//! one raw fix-up lamfat does not do (stamping the volume label entry).
//!
//! Owns: the Auto FAT type thresholds, the byte range each FAT type accepts,
//! label validation, the lamfat `FormatVolumeOptions`, and a minimal raw BPB
//! read (explicit little-endian) to find the root directory. Must not create
//! files or directories. In: size, `VfatOptions`. Out: format options, and
//! bytes patched through `Read + Write + Seek`.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::clock::FatTimestamp;
use super::{FatType, VfatError};

pub(super) const SECTOR_BYTES: u64 = 512;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// Auto picks FAT12 below this size (lamfat's own estimate).
const AUTO_FAT16_FROM: u64 = 4200 * KIB;
/// Auto picks FAT32 from this size on, like mkfs.fat 4.2 (a 512 MiB+ ESP is FAT32).
const AUTO_FAT32_FROM: u64 = 512 * MIB;
/// Characters mkfs.fat refuses in a volume label.
const LABEL_FORBIDDEN: &str = "*?.,;:/\\|+=<>[]\"";
const LABEL_BYTES: usize = 11;
/// Fixed root directory size of FAT12/16 volumes (mkfs.fat's default too).
pub(super) const ROOT_DIR_ENTRIES: u16 = 512;
/// Byte offset of the time fields inside a 32-byte directory entry.
const ENTRY_CTIME_TENTHS: u64 = 13;

/// Inclusive byte range in which lamfat can lay out each FAT type with its
/// default cluster sizes, 2 FATs and 512 root entries (FAT12/16). Found by
/// probing lamfat 0.4.3 sector by sector; the test
/// `fat_ranges_match_lamfat` re-checks both ends and one sector beyond.
pub(super) fn size_range(fat_type: FatType) -> (u64, u64) {
    match fat_type {
        FatType::Fat12 => (42 * SECTOR_BYTES, 261_496 * SECTOR_BYTES),
        FatType::Fat16 => (8_235 * SECTOR_BYTES, 4_194_144 * SECTOR_BYTES),
        // Upper end: the BPB counts sectors in 32 bits.
        FatType::Fat32 | FatType::Auto => {
            (66_557 * SECTOR_BYTES, u64::from(u32::MAX) * SECTOR_BYTES)
        }
    }
}

/// Chooses the FAT type (FAT12 below 4200 KiB, FAT16 below 512 MiB, FAT32
/// from 512 MiB) or checks a forced one against `size_range`. Never returns
/// `Auto`.
pub(super) fn resolve_fat_type(requested: FatType, size: u64) -> Result<FatType, VfatError> {
    if !size.is_multiple_of(SECTOR_BYTES) {
        return Err(VfatError::UnalignedSize { size });
    }
    let fat_type = match requested {
        FatType::Auto if size < AUTO_FAT16_FROM => FatType::Fat12,
        FatType::Auto if size < AUTO_FAT32_FROM => FatType::Fat16,
        FatType::Auto => FatType::Fat32,
        forced => forced,
    };
    let (min, max) = size_range(fat_type);
    if size < min || size > max {
        return Err(VfatError::SizeOutOfRange {
            size,
            fat_type,
            min,
            max,
        });
    }
    Ok(fat_type)
}

/// Validates and upper-cases a label into the 11 space-padded bytes of the
/// boot sector. An empty label means none: the boot sector says "NO NAME"
/// and no label entry is written, as mkfs.fat does.
pub(super) fn encode_label(label: &str) -> Result<Option<[u8; LABEL_BYTES]>, VfatError> {
    let invalid = |reason: String| VfatError::InvalidLabel {
        label: label.to_owned(),
        reason,
    };
    if label.is_empty() {
        return Ok(None);
    }
    if label.len() > LABEL_BYTES {
        return Err(invalid(format!(
            "{} characters, at most {LABEL_BYTES} fit",
            label.chars().count()
        )));
    }
    if let Some(bad) = label
        .chars()
        .find(|&c| !c.is_ascii() || c.is_ascii_control() || LABEL_FORBIDDEN.contains(c))
    {
        return Err(invalid(format!("character {bad:?} is not allowed")));
    }
    if label.starts_with(' ') {
        return Err(invalid("starts with a space".to_owned()));
    }
    let mut bytes = [b' '; LABEL_BYTES];
    for (slot, byte) in bytes.iter_mut().zip(label.bytes()) {
        *slot = byte.to_ascii_uppercase();
    }
    Ok(Some(bytes))
}

/// The lamfat options for this volume; every field that matters is explicit.
pub(super) fn format_options(
    size: u64,
    fat: FatType,
    volume_id: u32,
    label: Option<[u8; LABEL_BYTES]>,
) -> lamfat::FormatVolumeOptions {
    let fat_type = match fat {
        FatType::Fat12 => lamfat::FatType::Fat12,
        FatType::Fat16 => lamfat::FatType::Fat16,
        FatType::Fat32 | FatType::Auto => lamfat::FatType::Fat32,
    };
    // resolve_fat_type bounded size to u32::MAX sectors.
    let total_sectors = u32::try_from(size / SECTOR_BYTES).unwrap_or(u32::MAX);
    let options = lamfat::FormatVolumeOptions::new()
        .total_sectors(total_sectors)
        .fat_type(fat_type)
        .max_root_dir_entries(ROOT_DIR_ENTRIES)
        .volume_id(volume_id);
    match label {
        Some(label) => options.volume_label(label),
        None => options,
    }
}

/// The BPB fields needed to find the root directory, as stored on disk.
struct RawBpb {
    bytes_per_sector: u16,
    sectors_per_cluster: u8,
    reserved_sectors: u16,
    fats: u8,
    root_entries: u16,
    sectors_per_fat_16: u16,
    sectors_per_fat_32: u32,
    root_dir_first_cluster: u32,
}

impl RawBpb {
    fn parse(sector: &[u8; 512]) -> Self {
        let u16_at = |at: usize| u16::from_le_bytes([sector[at], sector[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([sector[at], sector[at + 1], sector[at + 2], sector[at + 3]])
        };
        Self {
            bytes_per_sector: u16_at(11),
            sectors_per_cluster: sector[13],
            reserved_sectors: u16_at(14),
            fats: sector[16],
            root_entries: u16_at(17),
            sectors_per_fat_16: u16_at(22),
            sectors_per_fat_32: u32_at(36),
            root_dir_first_cluster: u32_at(44),
        }
    }

    /// Byte offset of the first root directory entry.
    fn root_dir_offset(&self) -> u64 {
        let sector = u64::from(self.bytes_per_sector);
        let per_fat = if self.sectors_per_fat_16 != 0 {
            u64::from(self.sectors_per_fat_16)
        } else {
            u64::from(self.sectors_per_fat_32)
        };
        let fixed_root_start = u64::from(self.reserved_sectors) + u64::from(self.fats) * per_fat;
        if self.root_entries != 0 {
            return fixed_root_start * sector;
        }
        // FAT32: the root is a cluster chain in the data area (no fixed root region).
        let cluster_index = u64::from(self.root_dir_first_cluster.saturating_sub(2));
        (fixed_root_start + cluster_index * u64::from(self.sectors_per_cluster)) * sector
    }
}

/// Stamps the volume label entry (the first root entry lamfat's format wrote)
/// with the build time, as mkfs.fat stamps it with the current time.
pub(super) fn stamp_label_entry<D: Read + Write + Seek>(
    dev: &mut D,
    stamp: FatTimestamp,
) -> io::Result<()> {
    let mut sector = [0_u8; 512];
    dev.seek(SeekFrom::Start(0))?;
    dev.read_exact(&mut sector)?;
    let entry = RawBpb::parse(&sector).root_dir_offset();
    let fields = stamp.to_dos_fields();
    let date = fields.date.to_le_bytes();
    let time = fields.time.to_le_bytes();
    // Offsets 13..26: ctime tenths, ctime, cdate, adate, high cluster (left 0), mtime, mdate.
    let mut times = [0_u8; 13];
    times[0] = fields.tenths;
    times[1..3].copy_from_slice(&time);
    times[3..5].copy_from_slice(&date);
    times[5..7].copy_from_slice(&date);
    times[9..11].copy_from_slice(&time);
    times[11..13].copy_from_slice(&date);
    dev.seek(SeekFrom::Start(entry + ENTRY_CTIME_TENTHS))?;
    dev.write_all(&times)?;
    dev.seek(SeekFrom::Start(0))?;
    Ok(())
}
