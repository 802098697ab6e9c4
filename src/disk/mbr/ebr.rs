//! Extended and logical partitions: the chain of Extended Boot Records
//! (EBRs) behind an extended entry of the MBR, Linux partitions 5, 6, ….
//!
//! Owns: the EBR sectors (each a whole logical sector: zero boot area, two
//! entries at byte 446, 0x55AA at 510). The extended entry itself is an
//! ordinary [`MbrEntry`](super::MbrEntry) the caller puts in the MBR. Must
//! not open paths, spawn processes or touch anything but the EBR sectors.
//!
//! Encoding (what the kernel's `parse_extended` and `sfdisk` read): EBR k
//! has entry 1 = logical partition k, start relative to *this EBR*; entry 2
//! = link to EBR k+1, start relative to the *extended partition's start*,
//! size from that EBR to the end of logical partition k+1; the last EBR's
//! entry 2 is zero. The extended partition starts at the first EBR.
//!
//! ## genimage 16, measured (the oracle of the genimage-compat tests)
//!
//! Configs: an `hdimage` with `partition-table-type = "mbr"`, 5–7
//! partitions, `size = 64M`, run as `genimage --config X.cfg --rootpath R
//! --inputpath I --outputpath O --tmppath T`, dumped with `sfdisk -d` and
//! the EBRs read by following entry 2 (Python over the image bytes).
//!
//! - **Which partitions are logical.** `extended-partition = N` (1..4; 0 =
//!   automatic, the default) makes table partitions N, N+1, … logical (so
//!   N-1 primaries, then the extended entry in MBR slot N). Automatic: with
//!   more than 4 table partitions N = 4, else no extended partition.
//!   `extended-partition = 4` with exactly 4 partitions makes the 4th
//!   logical. `extended-partition = 5` is refused ("invalid extended
//!   partition index (5). must be inferior or equal to 4"). Partitions with
//!   `in-partition-table = false` do not count. genimage 16 has no
//!   `forced-primary` (newer genimage does).
//! - **Where the EBR goes.** At the logical partition's start minus the
//!   hdimage's `align` (so with `align = 512` right before it, with
//!   `align = 1M` one MiB before it), also when the partition has an
//!   `align` of its own. An automatic offset is the previous end rounded
//!   up to `align`, plus `align` (room for the EBR), then rounded up to
//!   the partition's own align. (mkimg puts the EBR one partition
//!   alignment before it; the genimage mapping gives a logical partition
//!   the disk's alignment and writes its offset out.) An
//!   explicit `offset` whose EBR would fall inside the previous partition
//!   is refused ("part p5 overlaps with previous partition"), and so is a
//!   logical partition before an earlier one: the chain ascends.
//! - **The extended partition**: type 0x0F in the MBR, start = the first
//!   EBR, end = the end of the image when `size` is given (else the end of
//!   the last logical partition). Links have type 0x0F too.
//! - Only the EBR sector is a table area: a non-table partition may lie in
//!   the `align` gap between an EBR and its partition. genimage 16 does not
//!   check the EBR sector itself against non-table partitions (its data
//!   overwrote an EBR); mkimg refuses that overlap.
//! - `bootable` on a logical partition: genimage writes status 0 in every
//!   EBR entry and puts the *first* logical partition's flag on the MBR's
//!   extended entry (`sfdisk -d` shows `type=f, bootable`); other logical
//!   partitions' flags are dropped. mkimg writes the flag where the
//!   partition is (its EBR entry), as fdisk does and U-Boot's
//!   `part_dos` reads it: board.toml says what the disk holds. For
//!   genimage's way, `disk.extended_bootable = true` marks the extended
//!   entry itself active ([`ExtendedChain::bootable`]); the genimage.cfg
//!   mapping sets it for a bootable first logical partition and drops
//!   `bootable` on every logical partition.
//! - CHS fields: genimage computes them from the *relative* LBA it stores
//!   in an EBR entry; mkimg from the absolute LBA (readers, sfdisk and the
//!   kernel, ignore CHS).

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};

use super::{MbrEntry, RawEntry};

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;
use crate::disk::widening_add;

/// Type byte mkimg writes for the extended partition and the EBR links
/// (extended, LBA addressing), as genimage does.
pub const TYPE_EXTENDED: u8 = 0x0F;
/// Most logical partitions the reader follows (and the writer accepts).
pub const MAX_LOGICAL: usize = 128;

/// Extended partition types: 0x05 (CHS), 0x0F (LBA), 0x85 (Linux).
pub fn is_extended(type_byte: u8) -> bool {
    matches!(type_byte, 0x05 | 0x0F | 0x85)
}

/// One logical partition and the EBR that describes it; absolute LBAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogicalPartition {
    pub ebr_lba: u64,
    pub bootable: bool,
    pub type_byte: u8,
    pub start_lba: u64,
    pub sectors: u32,
}

impl LogicalPartition {
    /// One past the last sector.
    fn end_lba(&self) -> u64 {
        self.start_lba.saturating_add(self.sectors.into())
    }
}

/// The extended partition (its MBR entry) and the logical partitions in it,
/// in chain order (Linux numbers them 5, 6, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedChain {
    pub start_lba: u32,
    pub sectors: u32,
    /// The extended entry's active flag (genimage 16 sets it for a
    /// bootable first logical partition).
    pub bootable: bool,
    pub logicals: Vec<LogicalPartition>,
}

#[derive(Debug, thiserror::Error)]
pub enum EbrError {
    #[error("an extended partition holds 1 to {MAX_LOGICAL} logical partitions here, got {0}")]
    Count(usize),
    #[error("extended partition LBA {start}..+{sectors} ends past the {disk_sectors}-sector disk")]
    ContainerPastEnd {
        start: u64,
        sectors: u64,
        disk_sectors: u64,
    },
    #[error("logical partition {number}: {reason} (EBR at LBA {ebr_lba}, partition LBA {start_lba}..+{sectors}, extended partition LBA {container_start}..{container_end})")]
    Logical {
        number: usize,
        reason: &'static str,
        ebr_lba: u64,
        start_lba: u64,
        sectors: u64,
        container_start: u64,
        container_end: u64,
    },
    #[error("EBR chain: the link to LBA {lba} {reason} (extended partition LBA {container_start}..{container_end})")]
    Link {
        lba: u64,
        reason: &'static str,
        container_start: u64,
        container_end: u64,
    },
    #[error("EBR at LBA {lba}: no boot signature (found {found:#06x}, expected 0xaa55)")]
    NoSignature { lba: u64, found: u16 },
    #[error("EBR at LBA {lba}: status byte {status:#04x} (expected 0x00 or 0x80)")]
    BadStatus { lba: u64, status: u8 },
    #[error("{action} at LBA {lba}")]
    Io {
        action: &'static str,
        lba: u64,
        #[source]
        source: std::io::Error,
    },
}

impl ExtendedChain {
    /// The extended entry for the MBR.
    pub fn mbr_entry(&self) -> MbrEntry {
        MbrEntry {
            bootable: self.bootable,
            type_byte: TYPE_EXTENDED,
            start_lba: self.start_lba,
            sectors: self.sectors,
        }
    }

    fn container(&self) -> (u64, u64) {
        let start = u64::from(self.start_lba);
        (start, widening_add(self.start_lba, self.sectors))
    }

    /// 1 to [`MAX_LOGICAL`] logical partitions, ascending: each EBR inside
    /// the extended partition and before its partition, each partition
    /// non-empty, inside the extended partition and ending before the next
    /// EBR; the extended partition inside the disk.
    pub fn validate(&self, disk_sectors: u64) -> Result<(), EbrError> {
        let (container_start, container_end) = self.container();
        if self.logicals.is_empty() || self.logicals.len() > MAX_LOGICAL {
            return Err(EbrError::Count(self.logicals.len()));
        }
        if container_end > disk_sectors {
            return Err(EbrError::ContainerPastEnd {
                start: container_start,
                sectors: self.sectors.into(),
                disk_sectors,
            });
        }
        let mut previous_end = container_start;
        for (number, l) in (5..).zip(&self.logicals) {
            let fail = |reason| EbrError::Logical {
                number,
                reason,
                ebr_lba: l.ebr_lba,
                start_lba: l.start_lba,
                sectors: l.sectors.into(),
                container_start,
                container_end,
            };
            if l.type_byte == 0 {
                return Err(fail("type 0x00 marks an unused entry"));
            }
            if l.sectors == 0 {
                return Err(fail("has zero sectors"));
            }
            if l.ebr_lba < previous_end {
                return Err(fail("its EBR is before the end of the previous logical partition (or the extended partition's start)"));
            }
            if l.start_lba <= l.ebr_lba {
                return Err(fail("does not start after its EBR"));
            }
            if l.end_lba() > container_end {
                return Err(fail("ends past the extended partition"));
            }
            previous_end = l.end_lba();
        }
        Ok(())
    }

    /// The EBR sectors: (LBA, 512 bytes) in chain order. Validated first.
    fn encode(&self, disk_sectors: u64) -> Result<Vec<(u64, [u8; 512])>, EbrError> {
        self.validate(disk_sectors)?;
        let (container_start, _) = self.container();
        let nexts = self.logicals.iter().skip(1).map(Some).chain([None]);
        let mut out = Vec::with_capacity(self.logicals.len());
        for (l, next) in self.logicals.iter().zip(nexts) {
            // Validated: ebr < start < container end <= 2^33, so every
            // difference below is non-negative and fits 32 bits.
            let rel = |a: u64, b: u64| u32::try_from(a.saturating_sub(b)).unwrap_or(u32::MAX);
            let mut sector = [0u8; 512];
            let logical = MbrEntry {
                bootable: l.bootable,
                type_byte: l.type_byte,
                start_lba: rel(l.start_lba, l.ebr_lba),
                sectors: l.sectors,
            };
            let mut raw = RawEntry::from_entry(&logical);
            raw.first_chs = super::lba_to_chs(l.start_lba);
            raw.last_chs = super::lba_to_chs(l.end_lba().saturating_sub(1));
            sector[446..462].copy_from_slice(&raw.encode());
            if let Some(n) = next {
                let link = MbrEntry {
                    bootable: false,
                    type_byte: TYPE_EXTENDED,
                    start_lba: rel(n.ebr_lba, container_start),
                    sectors: rel(n.end_lba(), n.ebr_lba),
                };
                let mut raw = RawEntry::from_entry(&link);
                raw.first_chs = super::lba_to_chs(n.ebr_lba);
                raw.last_chs = super::lba_to_chs(n.end_lba().saturating_sub(1));
                sector[462..478].copy_from_slice(&raw.encode());
            }
            sector[510] = 0x55;
            sector[511] = 0xAA;
            out.push((l.ebr_lba, sector));
        }
        Ok(out)
    }
}

fn byte_offset(lba: u64, sector_size: u64) -> Option<u64> {
    lba.checked_mul(sector_size)
}

/// Validates `chain` and writes its EBRs (each at `ebr_lba * sector_size`;
/// the first 512 bytes of the sector). Nothing else is touched.
pub fn write_ebr_chain<W: Write + Seek>(
    chain: &ExtendedChain,
    disk_sectors: u64,
    sector_size: u64,
    w: &mut W,
) -> Result<(), EbrError> {
    for (lba, sector) in chain.encode(disk_sectors)? {
        let io = |source| EbrError::Io {
            action: "writing the EBR",
            lba,
            source,
        };
        let offset = byte_offset(lba, sector_size)
            .ok_or_else(|| io(std::io::Error::other("offset past 2^64")))?;
        w.seek(SeekFrom::Start(offset))
            .and_then(|_| w.write_all(&sector))
            .map_err(io)?;
    }
    Ok(())
}

/// Follows the EBR chain of the extended partition at `start_lba` (from
/// its MBR entry) on an untrusted disk of `disk_sectors` sectors. Every
/// pointer is bounds-checked against the extended partition and the disk,
/// an EBR seen twice is a loop, and at most [`MAX_LOGICAL`] EBRs are read:
/// a crafted chain ends in an error, never a hang or a large allocation.
/// An EBR whose first entry is empty (fdisk's first EBR before any logical
/// partition exists) yields no partition.
pub fn read_ebr_chain<R: Read + Seek>(
    r: &mut R,
    sector_size: u64,
    start_lba: u32,
    sectors: u32,
    disk_sectors: u64,
) -> Result<Vec<LogicalPartition>, EbrError> {
    let container_start = u64::from(start_lba);
    let container_end = widening_add(start_lba, sectors);
    if container_end > disk_sectors {
        return Err(EbrError::ContainerPastEnd {
            start: container_start,
            sectors: sectors.into(),
            disk_sectors,
        });
    }
    let link_error = |lba, reason| EbrError::Link {
        lba,
        reason,
        container_start,
        container_end,
    };
    let mut logicals = Vec::new();
    let mut seen = HashSet::new();
    let mut ebr_lba = container_start;
    loop {
        if seen.len() >= MAX_LOGICAL {
            return Err(EbrError::Count(seen.len().saturating_add(1)));
        }
        if !seen.insert(ebr_lba) {
            return Err(link_error(
                ebr_lba,
                "points back to an earlier EBR (a loop)",
            ));
        }
        if ebr_lba >= container_end {
            return Err(link_error(ebr_lba, "is outside the extended partition"));
        }
        let io = |source| EbrError::Io {
            action: "reading the EBR",
            lba: ebr_lba,
            source,
        };
        let offset = byte_offset(ebr_lba, sector_size)
            .ok_or_else(|| io(std::io::Error::other("offset past 2^64")))?;
        let mut sector = [0u8; 512];
        r.seek(SeekFrom::Start(offset))
            .and_then(|_| r.read_exact(&mut sector))
            .map_err(io)?;
        let found = u16::from_le_bytes([sector[510], sector[511]]);
        if found != 0xAA55 {
            return Err(EbrError::NoSignature {
                lba: ebr_lba,
                found,
            });
        }
        let logical = RawEntry::decode(&sector[446..462]);
        let link = RawEntry::decode(&sector[462..478]);
        for raw in [&logical, &link] {
            if raw.status != 0x00 && raw.status != 0x80 {
                return Err(EbrError::BadStatus {
                    lba: ebr_lba,
                    status: raw.status,
                });
            }
        }
        if logical.type_byte != 0 {
            let number = logicals.len().saturating_add(5);
            let start = ebr_lba.saturating_add(logical.start_lba.into());
            let l = LogicalPartition {
                ebr_lba,
                bootable: logical.status == 0x80,
                type_byte: logical.type_byte,
                start_lba: start,
                sectors: logical.sectors,
            };
            let fail = |reason| EbrError::Logical {
                number,
                reason,
                ebr_lba,
                start_lba: start,
                sectors: logical.sectors.into(),
                container_start,
                container_end,
            };
            if logical.start_lba == 0 {
                return Err(fail("starts at its own EBR"));
            }
            if logical.sectors == 0 {
                return Err(fail("has zero sectors"));
            }
            if l.end_lba() > container_end {
                return Err(fail("ends past the extended partition"));
            }
            logicals.push(l);
        }
        match link.type_byte {
            0 => return Ok(logicals),
            t if is_extended(t) => {
                ebr_lba = container_start.saturating_add(link.start_lba.into());
            }
            _ => {
                return Err(link_error(
                    container_start.saturating_add(link.start_lba.into()),
                    "has a type that is not an extended type (0x05, 0x0f, 0x85)",
                ))
            }
        }
    }
}
