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

use super::raw::{HeaderDefect, RawEntry, RawHeader, ENTRY_SIZE, REVISION};
use super::{GptDisk, GptError, GptPartition};

/// Reads and cross-checks the primary and backup GPT. The disk size is the
/// length of `r`; the backup header must be its last sector.
pub fn read_gpt<R: Read + Seek>(r: &mut R, sector_size: u64) -> Result<GptDisk, GptError> {
    if sector_size != 512 && sector_size != 4096 {
        return Err(GptError::UnsupportedSectorSize(sector_size));
    }
    let disk_bytes = r.seek(SeekFrom::End(0)).map_err(|source| GptError::Io {
        action: "measuring the disk",
        lba: 0,
        source,
    })?;
    let disk_sectors = disk_bytes / sector_size;

    let primary = read_header(r, sector_size, "primary", 1)?;
    if disk_sectors == 0 || primary.alternate_lba != disk_sectors - 1 {
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

    let raws: Vec<RawEntry> = primary_entries
        .chunks_exact(ENTRY_SIZE as usize)
        .map(RawEntry::decode)
        .collect();
    let used = raws
        .iter()
        .rposition(|e| !e.type_guid.is_nil())
        .map_or(0, |i| i + 1);
    let mut partitions = Vec::with_capacity(used);
    for (i, raw) in raws[..used].iter().enumerate() {
        if raw.type_guid.is_nil() {
            return Err(GptError::EntryGap { number: i + 1 });
        }
        partitions.push(GptPartition::from_raw(i + 1, raw)?);
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
    let len = u64::from(header.entry_count) * u64::from(ENTRY_SIZE);
    if lba < 1 || lba.saturating_add(len.div_ceil(sector_size)) > disk_sectors {
        return Err(GptError::UnsupportedHeader {
            which,
            lba: header.my_lba,
            field: "entry array LBA",
            value: lba,
        });
    }
    let mut entries = vec![0u8; len as usize];
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
    r.seek(SeekFrom::Start(lba * sector_size))
        .and_then(|_| r.read_exact(buf))
        .map_err(|source| GptError::Io {
            action,
            lba,
            source,
        })
}
