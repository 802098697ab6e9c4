//! Reading a GPT back into a [`GptDisk`], strictly.
//!
//! Owns: checking both headers (signature, revision, header CRC, own LBA,
//! entry size) and both entry arrays (CRC), and that the two copies agree
//! and the backup header is the last sector — or the primary alone when it
//! names itself as the alternate (a GPT written without its backup). Any disagreement is an error
//! naming the field, not a silent pick of one copy: mkimg reads its own
//! images back, and a mismatch there is a bug to report.
//!
//! The input may be crafted: every LBA and size from a header is checked
//! before it becomes a byte offset, the entry arrays are streamed in 64 KiB
//! chunks (a header may claim 4 GiB of entries on a sparse file), and each
//! used entry must lie inside the disk, so callers can turn any partition
//! of the result into bytes without overflow.
//!
//! Does not: repair, validate partition placement (overlaps, the usable
//! range: call [`GptDisk::validate`] for that), or look at LBA 0.

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
    if primary.alternate_lba == 1 {
        return read_without_backup(r, sector_size, disk_sectors, &primary);
    }
    if disk_sectors.checked_sub(1) != Some(primary.alternate_lba) {
        return Err(GptError::BackupNotLast {
            backup_lba: primary.alternate_lba,
            disk_sectors,
        });
    }
    let primary_array = EntryArray::locate(sector_size, disk_sectors, "primary", &primary)?;
    primary_array.check_crc(r)?;
    let backup = read_header(r, sector_size, "backup", primary.alternate_lba)?;
    let backup_array = EntryArray::locate(sector_size, disk_sectors, "backup", &backup)?;
    backup_array.check_crc(r)?;
    compare_copies(&primary, &backup)?;
    let partitions = compare_and_decode(r, &primary_array, &backup_array, disk_sectors)?;
    Ok(GptDisk {
        sector_size,
        disk_sectors,
        disk_guid: primary.disk_guid,
        entries_lba: primary.entries_lba,
        entry_count: primary.entry_count,
        first_usable_lba: primary.first_usable_lba,
        last_usable_lba: primary.last_usable_lba,
        partitions,
        backup: true,
    })
}

/// A GPT whose primary header names itself as the alternate (genimage's
/// `gpt-no-backup`, mkimg's `disk.gpt_backup = false`): only the primary
/// copy is read. The disk is as long as the header implies (the reserved
/// backup area after the last usable LBA), or the file if longer: such
/// images are often cut after the last partition's data.
fn read_without_backup<R: Read + Seek>(
    r: &mut R,
    sector_size: u64,
    file_sectors: u64,
    primary: &RawHeader,
) -> Result<GptDisk, GptError> {
    let array_sectors = widening_mul(primary.entry_count, ENTRY_SIZE).div_ceil(sector_size);
    let claimed = primary
        .last_usable_lba
        .checked_add(array_sectors)
        .and_then(|n| n.checked_add(2))
        .filter(|n| n.checked_mul(sector_size).is_some())
        .ok_or(GptError::UnsupportedHeader {
            which: "primary",
            lba: 1,
            field: "last usable LBA",
            value: primary.last_usable_lba,
        })?;
    let disk_sectors = claimed.max(file_sectors);
    let array = EntryArray::locate(sector_size, file_sectors, "primary", primary)?;
    array.check_crc(r)?;
    let partitions = compare_and_decode(r, &array, &array, disk_sectors)?;
    Ok(GptDisk {
        sector_size,
        disk_sectors,
        disk_guid: primary.disk_guid,
        entries_lba: primary.entries_lba,
        entry_count: primary.entry_count,
        first_usable_lba: primary.first_usable_lba,
        last_usable_lba: primary.last_usable_lba,
        partitions,
        backup: false,
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

/// Bytes of the entry arrays read at a time: 512 entries, whole sectors of
/// either size. The arrays are streamed, never held whole: a crafted header
/// may claim 2^25 entries (4 GiB) on a sparse file.
const CHUNK: usize = 64 * 1024;

/// Where one entry array lies, checked to be inside the disk.
struct EntryArray {
    which: &'static str,
    lba: u64,
    sector_size: u64,
    /// Byte offset of the array; below the disk size.
    start: u64,
    /// `entry_count * 128` (the CRC covers these, not the sector padding).
    len: u64,
    crc32: u32,
}

impl EntryArray {
    fn locate(
        sector_size: u64,
        disk_sectors: u64,
        which: &'static str,
        header: &RawHeader,
    ) -> Result<EntryArray, GptError> {
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
        let start = lba
            .checked_mul(sector_size)
            .ok_or(GptError::AddressOverflow {
                what: "GPT entries",
                lba,
                sector_size,
            })?;
        Ok(EntryArray {
            which,
            lba,
            sector_size,
            start,
            len,
            crc32: header.entries_crc32,
        })
    }

    /// (offset in the array, length) of each chunk.
    fn chunks(&self) -> impl Iterator<Item = (u64, usize)> {
        let len = self.len;
        (0..len).step_by(CHUNK).map(move |at| {
            #[allow(clippy::arithmetic_side_effects)] // at < len: step_by stays below it
            let left = len - at;
            (
                at,
                usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK)),
            )
        })
    }

    fn read<'b, R: Read + Seek>(
        &self,
        r: &mut R,
        at: u64,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], GptError> {
        let io = |source| GptError::Io {
            action: "reading GPT entries",
            lba: self.lba,
            source,
        };
        // The array ends inside the disk (checked in `locate`).
        let offset = self
            .start
            .checked_add(at)
            .ok_or(GptError::AddressOverflow {
                what: "GPT entries",
                lba: self.lba,
                sector_size: self.sector_size,
            })?;
        r.seek(SeekFrom::Start(offset)).map_err(io)?;
        r.read_exact(buf).map_err(io)?;
        Ok(buf)
    }

    /// Streams the array through CRC32 and compares with the header's.
    fn check_crc<R: Read + Seek>(&self, r: &mut R) -> Result<(), GptError> {
        let mut buf = vec![0u8; CHUNK];
        let mut hasher = crc32fast::Hasher::new();
        for (at, len) in self.chunks() {
            hasher.update(self.read(r, at, &mut buf[..len])?);
        }
        let computed = hasher.finalize();
        if computed != self.crc32 {
            return Err(GptError::EntriesCrc {
                which: self.which,
                lba: self.lba,
                stored: self.crc32,
                computed,
            });
        }
        Ok(())
    }
}

/// Compares the two arrays (same length: the headers agree) chunk by chunk
/// and decodes the used entries of the primary one. A difference wins over
/// a bad entry, as when the arrays were compared whole.
fn compare_and_decode<R: Read + Seek>(
    r: &mut R,
    primary: &EntryArray,
    backup: &EntryArray,
    disk_sectors: u64,
) -> Result<Vec<GptPartition>, GptError> {
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut numbers = 1usize..;
    let mut partitions = Vec::new();
    let mut first_unused = None;
    let mut first_error = None;
    for (at, len) in primary.chunks() {
        let chunk = primary.read(r, at, &mut a[..len])?;
        if chunk != backup.read(r, at, &mut b[..len])? {
            return Err(GptError::BackupMismatch {
                field: "entry array contents",
                primary: format!("CRC32 {:#010x}", primary.crc32),
                backup: format!("CRC32 {:#010x}", backup.crc32),
            });
        }
        if first_error.is_some() {
            continue;
        }
        // Chunks first: zip must not draw a number when the chunk is done.
        for (bytes, number) in chunk.chunks_exact(ENTRY_SIZE as usize).zip(&mut numbers) {
            let raw = RawEntry::decode(bytes);
            if raw.type_guid.is_nil() {
                first_unused.get_or_insert(number);
                continue;
            }
            let decoded = match first_unused {
                Some(gap) => Err(GptError::EntryGap { number: gap }),
                None => decode_entry(number, &raw, disk_sectors),
            };
            match decoded {
                Ok(partition) => partitions.push(partition),
                Err(err) => {
                    first_error = Some(err);
                    break;
                }
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(partitions),
    }
}

/// A used entry, whose LBAs must lie inside the disk: byte offsets of LBAs
/// below disk_sectors fit 64 bits, so callers can turn a partition into
/// bytes without overflow.
fn decode_entry(
    number: usize,
    raw: &RawEntry,
    disk_sectors: u64,
) -> Result<GptPartition, GptError> {
    let partition = GptPartition::from_raw(number, raw)?;
    if partition.first_lba > partition.last_lba || partition.last_lba >= disk_sectors {
        return Err(GptError::EntryOutOfRange {
            number,
            name: partition.name,
            first_lba: partition.first_lba,
            last_lba: partition.last_lba,
            disk_sectors,
        });
    }
    Ok(partition)
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
