//! Reading a GPT back into a [`GptDisk`], strictly.
//!
//! Owns: checking both headers (signature, revision, header CRC, own LBA,
//! entry size) and both entry arrays (CRC), and that the two copies agree
//! and the backup header is the last sector. Any disagreement is an error
//! naming the field, not a silent pick of one copy: mkimg reads its own
//! images back, and a mismatch there is a bug to report.
//!
//! Does not: repair, validate partition placement (call
//! [`GptDisk::validate`] for that), or look at LBA 0.

use std::io::{Read, Seek, SeekFrom};
use std::num::NonZeroU64;

use super::raw::{HeaderDefect, RawEntry, RawHeader, ENTRY_SIZE, REVISION};
use super::{GptDisk, GptError, GptPartition};
use crate::disk::widening_mul;

/// Reads and cross-checks the primary and backup GPT. The disk size is the
/// length of `r`; the backup header must be its last sector.
pub fn read_gpt<R: Read + Seek>(r: &mut R, sector_size: u64) -> Result<GptDisk, GptError> {
    let divisor = NonZeroU64::new(sector_size)
        .filter(|_| sector_size == 512 || sector_size == 4096)
        .ok_or(GptError::UnsupportedSectorSize(sector_size))?;
    let disk_bytes = r.seek(SeekFrom::End(0)).map_err(|source| GptError::Io {
        action: "measuring the disk",
        lba: 0,
        source,
    })?;
    // Every LBA below disk_sectors has a byte offset below disk_bytes.
    let disk_sectors = disk_bytes / divisor;

    let primary = read_header(r, sector_size, "primary", 1)?;
    if disk_sectors.checked_sub(1) != Some(primary.alternate_lba) {
        return Err(GptError::BackupNotLast {
            backup_lba: primary.alternate_lba,
            disk_sectors,
        });
    }
    let primary_entries = read_entries(r, sector_size, disk_sectors, "primary", &primary)?;
    let backup = read_header(r, sector_size, "backup", primary.alternate_lba)?;
    let backup_entries = read_entries(r, sector_size, disk_sectors, "backup", &backup)?;
    compare_copies(&primary, &backup)?;
    if primary_entries != backup_entries {
        return Err(GptError::BackupMismatch {
            field: "entry array contents",
            primary: format!("CRC32 {:#010x}", primary.entries_crc32),
            backup: format!("CRC32 {:#010x}", backup.entries_crc32),
        });
    }

    let mut raws: Vec<RawEntry> = primary_entries
        .chunks_exact(ENTRY_SIZE as usize)
        .map(RawEntry::decode)
        .collect();
    while raws.last().is_some_and(|e| e.type_guid.is_nil()) {
        raws.pop();
    }
    let mut partitions = Vec::with_capacity(raws.len());
    for (number, raw) in (1..).zip(&raws) {
        if raw.type_guid.is_nil() {
            return Err(GptError::EntryGap { number });
        }
        let partition = GptPartition::from_raw(number, raw)?;
        // Byte offsets of LBAs below disk_sectors fit 64 bits, so callers
        // can turn a partition into bytes without overflow.
        if partition.first_lba > partition.last_lba || partition.last_lba >= disk_sectors {
            return Err(GptError::EntryOutOfRange {
                number,
                name: partition.name,
                first_lba: partition.first_lba,
                last_lba: partition.last_lba,
                disk_sectors,
            });
        }
        partitions.push(partition);
    }
    Ok(GptDisk {
        sector_size,
        disk_sectors,
        disk_guid: primary.disk_guid,
        entries_lba: primary.entries_lba,
        entry_count: primary.entry_count,
        first_usable_lba: primary.first_usable_lba,
        last_usable_lba: primary.last_usable_lba,
        partitions,
    })
}

fn read_header<R: Read + Seek>(
    r: &mut R,
    sector_size: u64,
    which: &'static str,
    lba: u64,
) -> Result<RawHeader, GptError> {
    let mut sector = vec![0u8; sector_size as usize];
    read_at(r, lba, sector_size, &mut sector, "reading GPT header")?;
    let header = RawHeader::decode(&sector).map_err(|defect| match defect {
        HeaderDefect::Signature => GptError::BadSignature { which, lba },
        HeaderDefect::Crc { stored, computed } => GptError::HeaderCrc {
            which,
            lba,
            stored,
            computed,
        },
        HeaderDefect::Field { field, value } => GptError::UnsupportedHeader {
            which,
            lba,
            field,
            value,
        },
    })?;
    let unsupported = |field, value| GptError::UnsupportedHeader {
        which,
        lba,
        field,
        value,
    };
    if header.revision != REVISION {
        return Err(unsupported("revision", header.revision.into()));
    }
    if header.my_lba != lba {
        return Err(unsupported("own LBA", header.my_lba));
    }
    if header.entry_size != ENTRY_SIZE {
        return Err(unsupported("entry size", header.entry_size.into()));
    }
    if header.entry_count == 0 || header.entry_count > u32::MAX / ENTRY_SIZE {
        return Err(unsupported("entry count", header.entry_count.into()));
    }
    Ok(header)
}

/// Reads `entry_count * 128` bytes at the header's array LBA and checks
/// their CRC32.
fn read_entries<R: Read + Seek>(
    r: &mut R,
    sector_size: u64,
    disk_sectors: u64,
    which: &'static str,
    header: &RawHeader,
) -> Result<Vec<u8>, GptError> {
    let lba = header.entries_lba;
    let len = widening_mul(header.entry_count, ENTRY_SIZE);
    let end = lba.checked_add(len.div_ceil(sector_size));
    if lba < 1 || end.is_none_or(|end| end > disk_sectors) {
        return Err(GptError::UnsupportedHeader {
            which,
            lba: header.my_lba,
            field: "entry array LBA",
            value: lba,
        });
    }
    let mut entries = vec![
        0u8;
        usize::try_from(len).map_err(|_| GptError::TooLarge {
            what: "a GPT entry array",
            bytes: len,
        })?
    ];
    read_at(r, lba, sector_size, &mut entries, "reading GPT entries")?;
    let computed = crc32fast::hash(&entries);
    if computed != header.entries_crc32 {
        return Err(GptError::EntriesCrc {
            which,
            lba,
            stored: header.entries_crc32,
            computed,
        });
    }
    Ok(entries)
}

fn compare_copies(p: &RawHeader, b: &RawHeader) -> Result<(), GptError> {
    let fields: [(&'static str, String, String); 6] = [
        (
            "primary header LBA",
            p.my_lba.to_string(),
            b.alternate_lba.to_string(),
        ),
        (
            "disk GUID",
            p.disk_guid.to_string(),
            b.disk_guid.to_string(),
        ),
        (
            "first usable LBA",
            p.first_usable_lba.to_string(),
            b.first_usable_lba.to_string(),
        ),
        (
            "last usable LBA",
            p.last_usable_lba.to_string(),
            b.last_usable_lba.to_string(),
        ),
        (
            "entry count",
            p.entry_count.to_string(),
            b.entry_count.to_string(),
        ),
        (
            "entry array CRC32",
            format!("{:#010x}", p.entries_crc32),
            format!("{:#010x}", b.entries_crc32),
        ),
    ];
    for (field, primary, backup) in fields {
        if primary != backup {
            return Err(GptError::BackupMismatch {
                field,
                primary,
                backup,
            });
        }
    }
    Ok(())
}

fn read_at<R: Read + Seek>(
    r: &mut R,
    lba: u64,
    sector_size: u64,
    buf: &mut [u8],
    action: &'static str,
) -> Result<(), GptError> {
    let at = lba
        .checked_mul(sector_size)
        .ok_or(GptError::AddressOverflow {
            what: action,
            lba,
            sector_size,
        })?;
    r.seek(SeekFrom::Start(at))
        .and_then(|_| r.read_exact(buf))
        .map_err(|source| GptError::Io {
            action,
            lba,
            source,
        })
}
