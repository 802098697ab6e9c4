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
use crate::disk::mbr::{read_mbr, write_mbr, MbrEntry, MbrError, MbrTable, TYPE_GPT_PROTECTIVE};
use crate::plan::{Layout, PlannedPartition};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("writing the GPT")]
    Gpt(#[from] GptError),
    #[error("writing the MBR")]
    Mbr(#[from] MbrError),
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
        TableKind::Mbr => MbrTable {
            disk_signature: layout.mbr_signature.unwrap_or(0),
            entries: layout
                .partitions
                .iter()
                .filter_map(|p| p.part_type.mbr.map(|t| entry(p, t)))
                .collect::<Result<_, TableError>>()?,
        },
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

/// Write every table structure of the layout, and nothing else.
pub fn write_tables<W: Write + Seek>(layout: &Layout, w: &mut W) -> Result<(), TableError> {
    if let Some(mbr) = mbr_table(layout)? {
        write_mbr(&mbr, layout.disk_sectors(), w)?;
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
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading the MBR")]
    Mbr(#[from] MbrError),
    #[error("the MBR has a GPT protective entry, but the GPT cannot be read")]
    Gpt(#[from] GptError),
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
            })
        }
        Err(err) => return Err(err.into()),
    };
    let protective = mbr
        .entries
        .iter()
        .any(|e| e.type_byte == TYPE_GPT_PROTECTIVE);
    if !protective {
        return Ok(FoundTables {
            table: TableKind::Mbr,
            mbr: Some(mbr),
            gpt: None,
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
    })
}
