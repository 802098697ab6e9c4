//! The MBR partition table in LBA 0: plain (dos label), protective (one
//! 0xEE entry in front of a GPT) and hybrid (GPT partitions mirrored for
//! firmware that only reads the MBR).
//!
//! Owns: bytes 440..512 of LBA 0 ([`MBR_REGION`]): the disk signature at
//! 440, two zero bytes, four 16-byte entries at 446 and the 0x55AA boot
//! signature. Must not touch the boot code area 0..440 (a boot loader may
//! already be there), open paths, spawn processes or invent a signature.
//!
//! Flow: the planner builds an [`MbrTable`] (by hand, or with
//! [`MbrTable::protective`] / [`MbrTable::hybrid`]); [`write_mbr`] validates
//! it against the disk size and writes it; [`read_mbr`] reads it back.
//!
//! CHS fields: computed from the LBA with the 255-head, 63-sector geometry
//! everyone has used since the 1990s; an address at or past cylinder 1024
//! is written as the conventional "beyond CHS" 0xFE,0xFF,0xFF, except the
//! end of a 0xEE entry, which UEFI (2.10 §5.2.3) wants as 0xFF,0xFF,0xFF.
//! This is byte for byte what `sgdisk` 1.0.9 writes. Entries are in LBA
//! units of the logical sector size, whatever it is; readers ignore CHS.
//!
//! Hybrid MBRs follow GPT fdisk (`gdisk` r→h, `sgdisk --hybrid`): up to
//! three mirrored partitions plus one 0xEE entry from LBA 1 to the sector
//! before the lowest mirrored partition, so the 0xEE covers the GPT header
//! and array and nothing a legacy OS might use. gdisk's interactive default
//! (and ours, [`EePlacement::Last`]) puts the 0xEE after the mirrored
//! entries, because Windows rejects a disk whose first entry is 0xEE with
//! others after it, and so mirrored partition i stays MBR slot i.
//! `sgdisk --hybrid` without `:EE` puts it first ([`EePlacement::First`]),
//! which some GRUB setups prefer. `sgdisk -v` accepts both.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

use crate::disk::widening_add;

pub mod ebr;

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;

/// The bytes of LBA 0 that [`write_mbr`] writes.
pub const MBR_REGION: Range<u64> = 440..512;
/// Type byte of the GPT protective partition.
pub const TYPE_GPT_PROTECTIVE: u8 = 0xEE;

const HEADS: u64 = 255;
const SECTORS_PER_TRACK: u64 = 63;
const CHS_LIMIT: u64 = 1024 * HEADS * SECTORS_PER_TRACK;

/// The four-entry table in LBA 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrTable {
    /// Stored little-endian at byte 440; Linux shows it as the dos
    /// `label-id` and builds PARTUUIDs `SSSSSSSS-NN` from it.
    pub disk_signature: u32,
    /// At most 4; entry i goes to slot i (Linux partition i + 1), the rest
    /// of the slots are zero.
    pub entries: Vec<MbrEntry>,
}

/// One primary partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrEntry {
    /// Status 0x80 ("active"), else 0x00.
    pub bootable: bool,
    /// Partition type: 0x0C FAT32 LBA, 0x83 Linux, 0xEF EFI system, 0xEE GPT.
    pub type_byte: u8,
    pub start_lba: u32,
    pub sectors: u32,
}

/// Where [`MbrTable::hybrid_with`] puts the 0xEE entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EePlacement {
    /// Slot 1, before the mirrored partitions (`sgdisk --hybrid 1:2`).
    First,
    /// After the mirrored partitions (gdisk's interactive default,
    /// `sgdisk --hybrid 1:2:EE`).
    Last,
}

#[derive(Debug, thiserror::Error)]
pub enum MbrError {
    #[error("an MBR holds 4 entries, got {0}")]
    TooManyEntries(usize),
    #[error("MBR entry {slot} has type 0x00, which marks an unused slot")]
    UnusedType { slot: usize },
    #[error("MBR entry {slot} (type {type_byte:#04x}) has zero sectors")]
    ZeroSize { slot: usize, type_byte: u8 },
    #[error("MBR entry {slot} (type {type_byte:#04x}) starts at LBA 0, over the MBR itself")]
    StartsAtZero { slot: usize, type_byte: u8 },
    #[error("MBR entry {slot} (type {type_byte:#04x}, LBA {start_lba}..={last_lba}) ends past the last LBA {} of a {disk_sectors}-sector disk", disk_sectors.saturating_sub(1))]
    PastEnd {
        slot: usize,
        type_byte: u8,
        start_lba: u64,
        last_lba: u64,
        disk_sectors: u64,
    },
    #[error("MBR entry {a} (LBA {a_start}..={a_last}) overlaps MBR entry {b} (LBA {b_start}..={b_last})")]
    Overlap {
        a: usize,
        a_start: u64,
        a_last: u64,
        b: usize,
        b_start: u64,
        b_last: u64,
    },
    #[error("a hybrid MBR mirrors 1 to 3 partitions, got {0}")]
    HybridCount(usize),
    #[error("mirrored partition at LBA {start_lba} leaves no room for the 0xEE entry from LBA 1")]
    HybridStartsTooEarly { start_lba: u32 },
    #[error("{action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no MBR: boot signature at byte 510 is {found:#06x}, expected 0xaa55")]
    NoBootSignature { found: u16 },
    #[error("MBR entry {slot} has status {status:#04x} (expected 0x00 or 0x80)")]
    BadStatus { slot: usize, status: u8 },
    #[error("MBR slot {slot} is empty but a later slot is used; gaps are not supported")]
    SlotGap { slot: usize },
}

impl MbrEntry {
    /// The last sector, `None` for an entry of zero sectors.
    fn last_lba(&self) -> Option<u64> {
        let more = self.sectors.checked_sub(1)?;
        Some(widening_add(self.start_lba, more))
    }
}

impl MbrTable {
    /// The UEFI protective MBR: one 0xEE entry from LBA 1 over the rest of
    /// the disk, clipped to 2^32 - 1 sectors; signature 0.
    pub fn protective(disk_sectors: u64) -> MbrTable {
        let sectors = disk_sectors.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
        MbrTable {
            disk_signature: 0,
            entries: vec![MbrEntry {
                bootable: false,
                type_byte: TYPE_GPT_PROTECTIVE,
                start_lba: 1,
                sectors,
            }],
        }
    }

    /// A hybrid MBR the way gdisk makes one by default: `mirrored` (1 to 3
    /// entries, copied as given, usually GPT partitions with an MBR type
    /// and maybe the bootable flag) followed by a 0xEE entry covering LBA 1
    /// up to the lowest mirrored start. Signature 0.
    pub fn hybrid(disk_sectors: u64, mirrored: &[MbrEntry]) -> Result<MbrTable, MbrError> {
        MbrTable::hybrid_with(disk_sectors, mirrored, EePlacement::Last)
    }

    /// [`MbrTable::hybrid`] with the 0xEE entry first or last.
    pub fn hybrid_with(
        disk_sectors: u64,
        mirrored: &[MbrEntry],
        placement: EePlacement,
    ) -> Result<MbrTable, MbrError> {
        if mirrored.is_empty() || mirrored.len() > 3 {
            return Err(MbrError::HybridCount(mirrored.len()));
        }
        let lowest = mirrored.iter().map(|e| e.start_lba).min().unwrap_or(0);
        // The 0xEE entry covers LBA 1 up to the lowest start: at least one sector.
        let sectors = match lowest.checked_sub(1) {
            Some(sectors) if sectors > 0 => sectors,
            _ => return Err(MbrError::HybridStartsTooEarly { start_lba: lowest }),
        };
        let ee = MbrEntry {
            bootable: false,
            type_byte: TYPE_GPT_PROTECTIVE,
            start_lba: 1,
            sectors,
        };
        let mut entries = mirrored.to_vec();
        match placement {
            EePlacement::First => entries.insert(0, ee),
            EePlacement::Last => entries.push(ee),
        }
        let table = MbrTable {
            disk_signature: 0,
            entries,
        };
        table.validate(disk_sectors)?;
        Ok(table)
    }

    /// Checks: at most 4 entries, no unused type, none empty, none over
    /// LBA 0 or past the disk end, no overlaps. Slots in errors are 1-based.
    pub fn validate(&self, disk_sectors: u64) -> Result<(), MbrError> {
        if self.entries.len() > 4 {
            return Err(MbrError::TooManyEntries(self.entries.len()));
        }
        // (slot, first LBA, last LBA) of every entry, 1-based slots.
        let mut spans = Vec::with_capacity(self.entries.len());
        for (slot, e) in (1..).zip(&self.entries) {
            let type_byte = e.type_byte;
            if type_byte == 0 {
                return Err(MbrError::UnusedType { slot });
            }
            let Some(last_lba) = e.last_lba() else {
                return Err(MbrError::ZeroSize { slot, type_byte });
            };
            if e.start_lba == 0 {
                return Err(MbrError::StartsAtZero { slot, type_byte });
            }
            if last_lba >= disk_sectors {
                return Err(MbrError::PastEnd {
                    slot,
                    type_byte,
                    start_lba: e.start_lba.into(),
                    last_lba,
                    disk_sectors,
                });
            }
            spans.push((slot, u64::from(e.start_lba), last_lba));
        }
        for (i, &(a, a_start, a_last)) in spans.iter().enumerate() {
            for &(b, b_start, b_last) in &spans[i..][1..] {
                if a_start <= b_last && b_start <= a_last {
                    return Err(MbrError::Overlap {
                        a,
                        a_start,
                        a_last,
                        b,
                        b_start,
                        b_last,
                    });
                }
            }
        }
        Ok(())
    }

    /// Bytes 440..512 of LBA 0.
    fn encode(&self) -> [u8; 72] {
        let mut b = [0u8; 72];
        b[0..4].copy_from_slice(&self.disk_signature.to_le_bytes());
        // 4..6: "copy protected" marker, zero.
        for (slot, e) in b[6..70].chunks_exact_mut(16).zip(&self.entries) {
            slot.copy_from_slice(&RawEntry::from_entry(e).encode());
        }
        b[70] = 0x55;
        b[71] = 0xAA;
        b
    }
}

/// An entry slot as stored (16 bytes at 446 + 16 * slot).
struct RawEntry {
    status: u8,         // 0
    first_chs: [u8; 3], // 1
    type_byte: u8,      // 4
    last_chs: [u8; 3],  // 5
    start_lba: u32,     // 8, little-endian
    sectors: u32,       // 12, little-endian
}

impl RawEntry {
    /// `e` has been validated: it has at least one sector.
    fn from_entry(e: &MbrEntry) -> RawEntry {
        let last_lba = e.last_lba().unwrap_or(e.start_lba.into());
        let mut last_chs = lba_to_chs(last_lba);
        if e.type_byte == TYPE_GPT_PROTECTIVE && last_lba >= CHS_LIMIT {
            last_chs = [0xFF; 3];
        }
        RawEntry {
            status: if e.bootable { 0x80 } else { 0x00 },
            first_chs: lba_to_chs(e.start_lba.into()),
            type_byte: e.type_byte,
            last_chs,
            start_lba: e.start_lba,
            sectors: e.sectors,
        }
    }

    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.status;
        b[1..4].copy_from_slice(&self.first_chs);
        b[4] = self.type_byte;
        b[5..8].copy_from_slice(&self.last_chs);
        b[8..12].copy_from_slice(&self.start_lba.to_le_bytes());
        b[12..16].copy_from_slice(&self.sectors.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> RawEntry {
        RawEntry {
            status: b[0],
            first_chs: [b[1], b[2], b[3]],
            type_byte: b[4],
            last_chs: [b[5], b[6], b[7]],
            start_lba: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            sectors: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        }
    }
}

/// Head, sector | cylinder high bits, cylinder low byte.
fn lba_to_chs(lba: u64) -> [u8; 3] {
    if lba >= CHS_LIMIT {
        return [0xFE, 0xFF, 0xFF];
    }
    let cylinder = lba / (HEADS * SECTORS_PER_TRACK);
    let head = lba / SECTORS_PER_TRACK % HEADS;
    #[allow(clippy::arithmetic_side_effects)] // lba % 63 <= 62, so the sum is at most 63
    let sector = lba % SECTORS_PER_TRACK + 1;
    [
        head as u8,
        sector as u8 | ((cylinder >> 8) as u8) << 6,
        cylinder as u8,
    ]
}

/// Validates `table` against a disk of `disk_sectors` logical sectors and
/// writes bytes 440..512 of LBA 0. The boot code area is left alone.
pub fn write_mbr<W: Write + Seek>(
    table: &MbrTable,
    disk_sectors: u64,
    w: &mut W,
) -> Result<(), MbrError> {
    table.validate(disk_sectors)?;
    w.seek(SeekFrom::Start(MBR_REGION.start))
        .and_then(|_| w.write_all(&table.encode()))
        .map_err(|source| MbrError::Io {
            action: "writing the MBR partition table at byte 440",
            source,
        })
}

/// Reads the table from bytes 440..512 of LBA 0 (CHS fields are ignored).
pub fn read_mbr<R: Read + Seek>(r: &mut R) -> Result<MbrTable, MbrError> {
    let mut b = [0u8; 72];
    r.seek(SeekFrom::Start(MBR_REGION.start))
        .and_then(|_| r.read_exact(&mut b))
        .map_err(|source| MbrError::Io {
            action: "reading the MBR partition table at byte 440",
            source,
        })?;
    let found = u16::from_le_bytes([b[70], b[71]]);
    if found != 0xAA55 {
        return Err(MbrError::NoBootSignature { found });
    }
    let mut raws: Vec<RawEntry> = b[6..70].chunks_exact(16).map(RawEntry::decode).collect();
    while raws.last().is_some_and(|e| e.type_byte == 0) {
        raws.pop();
    }
    let mut entries = Vec::with_capacity(raws.len());
    for (slot, raw) in (1..).zip(&raws) {
        if raw.type_byte == 0 {
            return Err(MbrError::SlotGap { slot });
        }
        if raw.status != 0x00 && raw.status != 0x80 {
            return Err(MbrError::BadStatus {
                slot,
                status: raw.status,
            });
        }
        entries.push(MbrEntry {
            bootable: raw.status == 0x80,
            type_byte: raw.type_byte,
            start_lba: raw.start_lba,
            sectors: raw.sectors,
        });
    }
    Ok(MbrTable {
        disk_signature: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        entries,
    })
}
