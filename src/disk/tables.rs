//! Plan → partition tables: converts a [`Layout`] into the writer's domain
//! structs ([`GptDisk`], [`MbrTable`]) and writes them; reads them back for
//! `mkimg inspect`.
//!
//! The protective/hybrid/plain MBR choice follows `disk.table`. A hybrid MBR
//! mirrors the first three partitions that have an MBR type byte, in table
//! order; the legacy-BIOS-bootable flag becomes the MBR active flag.
//! Pure over `Read + Write + Seek`.

use std::io::{Read, Seek, Write};
use std::num::NonZeroU64;

use crate::board::schema::{PartitionFlag, TableKind};
use crate::disk::gpt::{read_gpt, write_gpt, GptDisk, GptError, GptPartition};
use crate::disk::mbr::ebr::{
    is_extended, read_ebr_chain, write_ebr_chain, EbrError, ExtendedChain, LogicalPartition,
};
use crate::disk::mbr::{read_mbr, write_mbr, MbrEntry, MbrError, MbrTable, TYPE_GPT_PROTECTIVE};
use crate::plan::{Layout, PlannedPartition};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("writing the GPT")]
    Gpt(#[from] GptError),
    #[error("writing the MBR")]
    Mbr(#[from] MbrError),
    #[error("writing the EBR chain of the extended partition")]
    Ebr(#[from] EbrError),
    #[error("sector size 0")]
    ZeroSectorSize,
    #[error("partition {number} '{name}' (offset {start:#x}, size {size:#x}) {reason}")]
    Partition {
        number: u32,
        name: String,
        start: u64,
        size: u64,
        reason: &'static str,
    },
}

impl TableError {
    fn partition(p: &PlannedPartition, reason: &'static str) -> TableError {
        TableError::Partition {
            number: p.number,
            name: p.name.clone(),
            start: p.start,
            size: p.size,
            reason,
        }
    }
}

fn sector_size(layout: &Layout) -> Result<NonZeroU64, TableError> {
    NonZeroU64::new(layout.sector_size).ok_or(TableError::ZeroSectorSize)
}

/// The GPT the layout describes, if it has one.
pub fn gpt_disk(layout: &Layout) -> Result<Option<GptDisk>, TableError> {
    let Some(gpt) = layout.gpt.as_ref() else {
        return Ok(None);
    };
    let ss = sector_size(layout)?;
    let partition = |p: &PlannedPartition| {
        let end = p
            .start
            .checked_add(p.size)
            .ok_or_else(|| TableError::partition(p, "ends past 2^64 bytes"))?;
        let last_lba = (end / ss)
            .checked_sub(1)
            .ok_or_else(|| TableError::partition(p, "ends inside the first sector"))?;
        Ok(GptPartition {
            type_guid: p.part_type.gpt.unwrap_or_default(),
            part_guid: p.uuid.unwrap_or_default(),
            first_lba: p.start / ss,
            last_lba,
            attributes: p.attributes,
            name: p.name.clone(),
        })
    };
    Ok(Some(GptDisk {
        sector_size: layout.sector_size,
        disk_sectors: layout.disk_sectors(),
        disk_guid: gpt.disk_guid,
        entries_lba: gpt.entries_lba,
        entry_count: gpt.entry_count,
        first_usable_lba: gpt.first_usable_lba,
        last_usable_lba: gpt.last_usable_lba,
        partitions: layout
            .partitions
            .iter()
            .map(partition)
            .collect::<Result<_, TableError>>()?,
        backup: gpt.backup,
    }))
}

/// The MBR the layout describes: protective, hybrid or plain. An MBR entry
/// holds 32-bit LBAs: a partition that starts or ends beyond them is an
/// error, never a truncated entry.
pub fn mbr_table(layout: &Layout) -> Result<Option<MbrTable>, TableError> {
    let ss = sector_size(layout)?;
    let entry = |p: &PlannedPartition, type_byte: u8| {
        let start_lba = u32::try_from(p.start / ss).map_err(|_| {
            TableError::partition(p, "starts past the 32-bit LBA range of an MBR entry")
        })?;
        let sectors = u32::try_from(p.size / ss).map_err(|_| {
            TableError::partition(p, "has more sectors than an MBR entry can count")
        })?;
        Ok(MbrEntry {
            bootable: p.flags.contains(&PartitionFlag::LegacyBiosBootable),
            type_byte,
            start_lba,
            sectors,
        })
    };
    let table = match layout.table {
        TableKind::None => return Ok(None),
        TableKind::Gpt => MbrTable::protective(layout.disk_sectors()),
        TableKind::Mbr => {
            let mut entries: Vec<MbrEntry> = layout
                .partitions
                .iter()
                .filter(|p| p.ebr.is_none())
                .filter_map(|p| p.part_type.mbr.map(|t| entry(p, t)))
                .collect::<Result<_, TableError>>()?;
            // The extended entry takes its slot; forced primaries follow it.
            if let (Some(chain), Some(ext)) = (extended_chain(layout)?, &layout.extended) {
                let at = (ext.slot as usize).saturating_sub(1).min(entries.len());
                entries.insert(at, chain.mbr_entry());
            }
            MbrTable {
                disk_signature: layout.mbr_signature.unwrap_or(0),
                entries,
            }
        }
        TableKind::Hybrid => {
            let mirrored: Vec<MbrEntry> = layout
                .partitions
                .iter()
                .filter_map(|p| p.part_type.mbr.map(|t| entry(p, t)))
                .take(3)
                .collect::<Result<_, TableError>>()?;
            let mut table = MbrTable::hybrid(layout.disk_sectors(), &mirrored)?;
            table.disk_signature = layout.mbr_signature.unwrap_or(0);
            table
        }
    };
    Ok(Some(table))
}

/// The extended partition and its logical partitions, if the layout has
/// them (MBR only).
pub fn extended_chain(layout: &Layout) -> Result<Option<ExtendedChain>, TableError> {
    let Some(ext) = layout
        .extended
        .as_ref()
        .filter(|_| layout.table == TableKind::Mbr)
    else {
        return Ok(None);
    };
    let ss = sector_size(layout)?;
    let lba32 = |bytes: u64, what: &'static str| {
        u32::try_from(bytes / ss).map_err(|_| TableError::Partition {
            number: ext.slot,
            name: "extended".to_string(),
            start: ext.start,
            size: ext.end.saturating_sub(ext.start),
            reason: what,
        })
    };
    let start_lba = lba32(
        ext.start,
        "starts past the 32-bit LBA range of an MBR entry",
    )?;
    let sectors = lba32(
        ext.end.saturating_sub(ext.start),
        "has more sectors than an MBR entry can count",
    )?;
    let mut logicals = Vec::new();
    for p in &layout.partitions {
        let Some(ebr) = p.ebr else { continue };
        let sectors = u32::try_from(p.size / ss).map_err(|_| {
            TableError::partition(p, "has more sectors than an MBR entry can count")
        })?;
        logicals.push(LogicalPartition {
            ebr_lba: ebr / ss,
            bootable: p.flags.contains(&PartitionFlag::LegacyBiosBootable),
            type_byte: p.part_type.mbr.unwrap_or(0),
            start_lba: p.start / ss,
            sectors,
        });
    }
    Ok(Some(ExtendedChain {
        start_lba,
        sectors,
        bootable: ext.bootable,
        logicals,
    }))
}

/// Write every table structure of the layout, and nothing else.
pub fn write_tables<W: Write + Seek>(layout: &Layout, w: &mut W) -> Result<(), TableError> {
    if let Some(mbr) = mbr_table(layout)? {
        write_mbr(&mbr, layout.disk_sectors(), w)?;
    }
    if let Some(chain) = extended_chain(layout)? {
        write_ebr_chain(&chain, layout.disk_sectors(), layout.sector_size, w)?;
    }
    if let Some(gpt) = gpt_disk(layout)? {
        write_gpt(&gpt, w)?;
    }
    Ok(())
}

/// What `mkimg inspect` found on a disk.
#[derive(Debug, Clone)]
pub struct FoundTables {
    pub table: TableKind,
    pub mbr: Option<MbrTable>,
    pub gpt: Option<GptDisk>,
    /// Logical partitions (5, 6, …) of a plain MBR's extended partition.
    pub logical: Vec<LogicalPartition>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading the MBR")]
    Mbr(#[from] MbrError),
    #[error("the MBR has a GPT protective entry, but the GPT cannot be read")]
    Gpt(#[from] GptError),
    #[error("reading the logical partitions of the extended partition in MBR slot {slot}")]
    Ebr {
        slot: usize,
        #[source]
        source: EbrError,
    },
    #[error("the MBR has more than one extended partition (slots {first} and {second})")]
    TwoExtended { first: usize, second: usize },
    #[error("reading the disk size")]
    Size(#[source] std::io::Error),
}

/// Read the MBR and, when it protects one, the GPT.
pub fn read_tables<R: Read + Seek>(
    r: &mut R,
    sector_size: u64,
) -> Result<FoundTables, InspectError> {
    let mbr = match read_mbr(r) {
        Ok(mbr) => mbr,
        Err(MbrError::NoBootSignature { .. }) => {
            return Ok(FoundTables {
                table: TableKind::None,
                mbr: None,
                gpt: None,
                logical: Vec::new(),
            })
        }
        Err(err) => return Err(err.into()),
    };
    let protective = mbr
        .entries
        .iter()
        .any(|e| e.type_byte == TYPE_GPT_PROTECTIVE);
    if !protective {
        let logical = read_logical(r, sector_size, &mbr)?;
        return Ok(FoundTables {
            table: TableKind::Mbr,
            mbr: Some(mbr),
            gpt: None,
            logical,
        });
    }
    let gpt = read_gpt(r, sector_size)?;
    let table = if mbr.entries.len() > 1 {
        TableKind::Hybrid
    } else {
        TableKind::Gpt
    };
    Ok(FoundTables {
        table,
        mbr: Some(mbr),
        gpt: Some(gpt),
        logical: Vec::new(),
    })
}

/// The logical partitions behind the MBR's extended entry, if it has one;
/// the chain reader bounds every pointer by the disk's size.
fn read_logical<R: Read + Seek>(
    r: &mut R,
    sector_size: u64,
    mbr: &MbrTable,
) -> Result<Vec<LogicalPartition>, InspectError> {
    let mut extended = (1..)
        .zip(&mbr.entries)
        .filter(|(_, e)| is_extended(e.type_byte));
    let Some((slot, ext)) = extended.next() else {
        return Ok(Vec::new());
    };
    if let Some((second, _)) = extended.next() {
        return Err(InspectError::TwoExtended {
            first: slot,
            second,
        });
    }
    let size = r
        .seek(std::io::SeekFrom::End(0))
        .map_err(InspectError::Size)?;
    let disk_sectors = size.checked_div(sector_size).unwrap_or(0);
    read_ebr_chain(r, sector_size, ext.start_lba, ext.sectors, disk_sectors)
        .map_err(|source| InspectError::Ebr { slot, source })
}
