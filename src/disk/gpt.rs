//! GUID Partition Table: the domain description, its layout rules, a writer
//! and a reader.
//!
//! Owns: where the four GPT structures go (primary header at LBA 1, primary
//! entry array at `entries_lba`, backup array right before the last LBA,
//! backup header at the last LBA), their CRC32s, the UTF-16LE names, and the
//! checks that partitions fit the usable range without overlapping each
//! other or those structures.
//!
//! Must not: touch any byte outside [`GptDisk::regions`] (the protective MBR
//! belongs to `mbr.rs`; blobs such as a boot loader at 8 KiB live between
//! LBA 2 and a moved entry array and must survive), open paths, spawn
//! processes, read a clock or draw random GUIDs: every identity comes in.
//!
//! Flow: the planner fills a [`GptDisk`]; [`write_gpt`] validates it and
//! writes it through any `Write + Seek`; [`read_gpt`] turns a `Read + Seek`
//! back into a `GptDisk`, checking both copies. The raw little-endian
//! structures live in `gpt/raw.rs`; the conversion is `GptPartition::to_raw`
//! / `from_raw` and `GptDisk::header`.
//!
//! Unlike the `gpt` crate (array always at LBA 2) and `gptman` (backup array
//! follows the primary's LBA), the backup array here always ends right
//! before the backup header, wherever the primary array is.

mod error;
mod raw;
mod read;

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod crafted_tests;
#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
pub(crate) mod test_tools;
#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
pub(crate) mod tests;

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;

use uuid::Uuid;

use crate::disk::widening_mul;
pub use error::GptError;
use raw::{RawEntry, RawHeader, ENTRY_SIZE, NAME_UNITS, REVISION};
pub use read::read_gpt;

/// A whole GPT as it will be (or was) on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptDisk {
    /// Logical sector size in bytes: 512 or 4096.
    pub sector_size: u64,
    /// Disk size in sectors; the backup header is the last one.
    pub disk_sectors: u64,
    pub disk_guid: Uuid,
    /// LBA of the primary entry array: normally 2; Allwinner boards move it
    /// to 1 MiB (LBA 2048 with 512-byte sectors) to free room for SPL.
    pub entries_lba: u64,
    /// Number of 128-byte entries in each array, normally 128.
    pub entry_count: u32,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// In table order: entry i is `partitions[i]`, the remaining entries are
    /// zero. Partition numbers in errors are `i + 1`, as Linux counts them.
    pub partitions: Vec<GptPartition>,
    /// Whether the backup array and header are (to be) written. Without
    /// them (genimage's `gpt-no-backup`) their sectors stay reserved —
    /// `last_usable_lba` is unchanged, so `sgdisk -e` can add them later —
    /// and the primary header's alternate LBA is its own, 1, as genimage
    /// 16 writes it (the kernel then reads the primary as both copies).
    pub backup: bool,
}

/// One used partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    pub type_guid: Uuid,
    pub part_guid: Uuid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    /// Bit 0 platform required, bit 1 EFI ignore, bit 2 legacy BIOS
    /// bootable, bits 48..64 type specific.
    pub attributes: u64,
    /// At most 36 UTF-16 code units, no NUL.
    pub name: String,
}

impl GptDisk {
    /// The usual layout: `entry_count` 128-byte entries at `entries_lba`,
    /// usable space from right after the primary array to right before the
    /// backup array, no partitions yet. Call [`GptDisk::validate`] (or just
    /// [`write_gpt`]) to find out whether it fits.
    pub fn with_layout(
        sector_size: u64,
        disk_sectors: u64,
        disk_guid: Uuid,
        entries_lba: u64,
        entry_count: u32,
    ) -> GptDisk {
        let mut disk = GptDisk {
            sector_size,
            disk_sectors,
            disk_guid,
            entries_lba,
            entry_count,
            first_usable_lba: 0,
            last_usable_lba: 0,
            partitions: Vec::new(),
            backup: true,
        };
        disk.first_usable_lba = entries_lba.saturating_add(disk.entry_array_sectors());
        disk.last_usable_lba = disk.backup_entries_lba().saturating_sub(1);
        disk
    }

    /// Sectors taken by one entry array (the array is padded to whole
    /// sectors with zeros).
    pub fn entry_array_sectors(&self) -> u64 {
        self.entry_array_bytes().div_ceil(self.sector_size.max(1))
    }

    /// Bytes of one entry array without the sector padding (the CRC covers
    /// these).
    fn entry_array_bytes(&self) -> u64 {
        widening_mul(self.entry_count, ENTRY_SIZE)
    }

    /// The byte offset of `lba`, or an error naming `what` when it does
    /// not fit 64 bits (a crafted or absurd layout).
    pub fn byte_offset(&self, what: &'static str, lba: u64) -> Result<u64, GptError> {
        lba.checked_mul(self.sector_size)
            .ok_or(GptError::AddressOverflow {
                what,
                lba,
                sector_size: self.sector_size,
            })
    }

    /// The last LBA of the disk.
    pub fn backup_header_lba(&self) -> u64 {
        self.disk_sectors.saturating_sub(1)
    }

    /// The backup array ends right before the backup header.
    pub fn backup_entries_lba(&self) -> u64 {
        self.backup_header_lba()
            .saturating_sub(self.entry_array_sectors())
    }

    /// The byte ranges [`write_gpt`] writes, in writing order. Nothing else
    /// on the disk is touched. Fails when a range is past 2^64 bytes.
    pub fn regions(&self) -> Result<Vec<(&'static str, Range<u64>)>, GptError> {
        let written = if self.backup { 4 } else { 2 };
        self.lba_regions()
            .into_iter()
            .take(written)
            .map(|(what, lbas)| {
                let bytes =
                    self.byte_offset(what, lbas.start)?..self.byte_offset(what, lbas.end)?;
                Ok((what, bytes))
            })
            .collect()
    }

    fn lba_regions(&self) -> [(&'static str, Range<u64>); 4] {
        let n = self.entry_array_sectors();
        let backup_entries = self.backup_entries_lba();
        [
            ("primary GPT header", 1..2),
            (
                "primary GPT entries",
                self.entries_lba..self.entries_lba.saturating_add(n),
            ),
            // `backup_entries + n` without the add: backup_entries is
            // `header - n`, or 0 when the disk is too small for that.
            (
                "backup GPT entries",
                backup_entries..self.backup_header_lba().max(n),
            ),
            (
                "backup GPT header",
                self.backup_header_lba()..self.disk_sectors,
            ),
        ]
    }

    /// Checks every layout rule; [`write_gpt`] calls this first.
    pub fn validate(&self) -> Result<(), GptError> {
        if self.sector_size != 512 && self.sector_size != 4096 {
            return Err(GptError::UnsupportedSectorSize(self.sector_size));
        }
        // The header stores the array size in bytes as a u32 in places
        // (firmware computes it as count * size), so keep it below 4 GiB.
        if self.entry_count == 0 || self.entry_count > u32::MAX / ENTRY_SIZE {
            return Err(GptError::BadEntryCount(self.entry_count));
        }
        let array_sectors = self.entry_array_sectors();
        // LBA 0, the primary header, two arrays and the backup header.
        let needed = array_sectors
            .checked_mul(2)
            .and_then(|arrays| arrays.checked_add(3));
        if needed.is_none_or(|needed| self.disk_sectors < needed) {
            return Err(GptError::DiskTooSmall {
                disk_sectors: self.disk_sectors,
                array_sectors,
            });
        }
        let array_end = self.entries_lba.saturating_add(array_sectors);
        if self.entries_lba < 2 || array_end > self.first_usable_lba {
            return Err(GptError::PrimaryArrayMisplaced {
                first: self.entries_lba,
                last: array_end.saturating_sub(1),
                first_usable: self.first_usable_lba,
            });
        }
        if self.first_usable_lba > self.last_usable_lba
            || self.last_usable_lba >= self.backup_entries_lba()
        {
            return Err(GptError::BadUsableRange {
                first_usable: self.first_usable_lba,
                last_usable: self.last_usable_lba,
                backup_entries_lba: self.backup_entries_lba(),
            });
        }
        if self.partitions.len() > self.entry_count as usize {
            return Err(GptError::TooManyPartitions {
                count: self.partitions.len(),
                entry_count: self.entry_count,
            });
        }
        for (number, part) in (1..).zip(&self.partitions) {
            part.to_raw(number)?;
            self.check_partition_bounds(number, part)?;
        }
        self.check_partition_overlaps()
    }

    fn check_partition_bounds(&self, number: usize, p: &GptPartition) -> Result<(), GptError> {
        let name = || p.name.clone();
        if p.type_guid.is_nil() {
            return Err(GptError::NilTypeGuid {
                number,
                name: name(),
            });
        }
        if p.last_lba < p.first_lba {
            return Err(GptError::EmptyPartition {
                number,
                name: name(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
            });
        }
        let mut table = vec![("protective MBR", 0..1)];
        table.extend(self.lba_regions());
        for (region, lbas) in table {
            // An empty region (end 0) overlaps nothing.
            let Some(region_last) = lbas.end.checked_sub(1) else {
                continue;
            };
            if p.first_lba <= region_last && lbas.start <= p.last_lba {
                return Err(GptError::OverlapsTable {
                    number,
                    name: name(),
                    first_lba: p.first_lba,
                    last_lba: p.last_lba,
                    region,
                    region_first: lbas.start,
                    region_last,
                });
            }
        }
        if p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
            return Err(GptError::OutsideUsable {
                number,
                name: name(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                first_usable: self.first_usable_lba,
                last_usable: self.last_usable_lba,
            });
        }
        Ok(())
    }

    fn check_partition_overlaps(&self) -> Result<(), GptError> {
        let mut order: Vec<(usize, &GptPartition)> = (1..).zip(&self.partitions).collect();
        order.sort_by_key(|&(number, p)| (p.first_lba, number));
        for pair in order.windows(2) {
            let [(_, a), (_, b)] = [pair[0], pair[1]];
            if b.first_lba <= a.last_lba {
                let ((i, a), (j, b)) = if pair[0].0 < pair[1].0 {
                    (pair[0], pair[1])
                } else {
                    (pair[1], pair[0])
                };
                return Err(GptError::PartitionsOverlap {
                    a: i,
                    a_name: a.name.clone(),
                    a_first: a.first_lba,
                    a_last: a.last_lba,
                    b: j,
                    b_name: b.name.clone(),
                    b_first: b.first_lba,
                    b_last: b.last_lba,
                });
            }
        }
        Ok(())
    }

    /// The entry array exactly as stored: `entry_count * 128` bytes (the
    /// CRC covers these, not the sector padding).
    fn encode_entries(&self) -> Result<Vec<u8>, GptError> {
        let mut array = vec![0u8; memory_len("a GPT entry array", self.entry_array_bytes())?];
        for (number, (part, slot)) in (1..).zip(
            self.partitions
                .iter()
                .zip(array.chunks_exact_mut(ENTRY_SIZE as usize)),
        ) {
            slot.copy_from_slice(&part.to_raw(number)?.encode());
        }
        Ok(array)
    }

    /// The primary (`backup == false`) or backup header for an array whose
    /// CRC32 is `entries_crc32`.
    fn header(&self, backup: bool, entries_crc32: u32) -> RawHeader {
        let (my_lba, alternate_lba, entries_lba) = if backup {
            (self.backup_header_lba(), 1, self.backup_entries_lba())
        } else if self.backup {
            (1, self.backup_header_lba(), self.entries_lba)
        } else {
            (1, 1, self.entries_lba)
        };
        RawHeader {
            revision: REVISION,
            header_size: raw::HEADER_SIZE,
            my_lba,
            alternate_lba,
            first_usable_lba: self.first_usable_lba,
            last_usable_lba: self.last_usable_lba,
            disk_guid: self.disk_guid,
            entries_lba,
            entry_count: self.entry_count,
            entry_size: ENTRY_SIZE,
            entries_crc32,
        }
    }
}

impl GptPartition {
    /// `number` is the 1-based entry number, for error messages.
    fn to_raw(&self, number: usize) -> Result<RawEntry, GptError> {
        let units: Vec<u16> = self.name.encode_utf16().collect();
        if units.len() > NAME_UNITS {
            return Err(GptError::NameTooLong {
                number,
                name: self.name.clone(),
                units: units.len(),
            });
        }
        if units.contains(&0) {
            return Err(GptError::NameContainsNul {
                number,
                name: self.name.clone(),
            });
        }
        let mut name = [0u16; NAME_UNITS];
        name[..units.len()].copy_from_slice(&units);
        Ok(RawEntry {
            type_guid: self.type_guid,
            part_guid: self.part_guid,
            first_lba: self.first_lba,
            last_lba: self.last_lba,
            attributes: self.attributes,
            name,
        })
    }

    fn from_raw(number: usize, raw: &RawEntry) -> Result<GptPartition, GptError> {
        let len = raw.name.iter().position(|&u| u == 0).unwrap_or(NAME_UNITS);
        let name =
            String::from_utf16(&raw.name[..len]).map_err(|_| GptError::InvalidName { number })?;
        Ok(GptPartition {
            type_guid: raw.type_guid,
            part_guid: raw.part_guid,
            first_lba: raw.first_lba,
            last_lba: raw.last_lba,
            attributes: raw.attributes,
            name,
        })
    }
}

/// `bytes` as a buffer length, or an error naming `what`.
fn memory_len(what: &'static str, bytes: u64) -> Result<usize, GptError> {
    usize::try_from(bytes).map_err(|_| GptError::TooLarge { what, bytes })
}

/// Validates `disk` and writes its four structures, and nothing else:
/// the primary header (LBA 1, rest of the sector zero), the primary array
/// (padded to whole sectors), the backup array and the backup header —
/// the last two only when `disk.backup`.
pub fn write_gpt<W: Write + Seek>(disk: &GptDisk, w: &mut W) -> Result<(), GptError> {
    disk.validate()?;
    let ss = disk.sector_size as usize;
    let entries = disk.encode_entries()?;
    let crc = crc32fast::hash(&entries);
    let mut padded = entries;
    let padded_len = disk.byte_offset("end of the GPT entry array", disk.entry_array_sectors())?;
    padded.resize(memory_len("a padded GPT entry array", padded_len)?, 0);

    let header_sector = |backup: bool| {
        let mut sector = vec![0u8; ss];
        let bytes = disk.header(backup, crc).encode();
        sector[..bytes.len()].copy_from_slice(&bytes);
        sector
    };
    let mut writes: Vec<(&'static str, u64, Vec<u8>)> = vec![
        ("writing primary GPT header", 1, header_sector(false)),
        (
            "writing primary GPT entries",
            disk.entries_lba,
            padded.clone(),
        ),
        (
            "writing backup GPT entries",
            disk.backup_entries_lba(),
            padded,
        ),
        (
            "writing backup GPT header",
            disk.backup_header_lba(),
            header_sector(true),
        ),
    ];
    if !disk.backup {
        writes.truncate(2);
    }
    for (action, lba, bytes) in writes {
        w.seek(SeekFrom::Start(disk.byte_offset(action, lba)?))
            .and_then(|_| w.write_all(&bytes))
            .map_err(|source| GptError::Io {
                action,
                lba,
                source,
            })?;
    }
    Ok(())
}
