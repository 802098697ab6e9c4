//! Plan → partition tables: converts a [`Layout`] into the writer's domain
//! structs ([`GptDisk`], [`MbrTable`]) and writes them; reads them back for
//! `mkimg inspect`.
//!
//! The protective/hybrid/plain MBR choice follows `disk.table`. A hybrid MBR
//! mirrors the first three partitions that have an MBR type byte, in table
//! order; the legacy-BIOS-bootable flag becomes the MBR active flag.
//! Pure over `Read + Write + Seek`.

use std::io::{Read, Seek, Write};

use crate::board::schema::{PartitionFlag, TableKind};
use crate::disk::gpt::{read_gpt, write_gpt, GptDisk, GptError, GptPartition};
use crate::disk::mbr::{read_mbr, write_mbr, MbrEntry, MbrError, MbrTable, TYPE_GPT_PROTECTIVE};
use crate::plan::Layout;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("writing the GPT")]
    Gpt(#[from] GptError),
    #[error("writing the MBR")]
    Mbr(#[from] MbrError),
}

/// The GPT the layout describes, if it has one.
pub fn gpt_disk(layout: &Layout) -> Option<GptDisk> {
    let gpt = layout.gpt.as_ref()?;
    let ss = layout.sector_size;
    Some(GptDisk {
        sector_size: ss,
        disk_sectors: layout.disk_sectors(),
        disk_guid: gpt.disk_guid,
        entries_lba: gpt.entries_lba,
        entry_count: gpt.entry_count,
        first_usable_lba: gpt.first_usable_lba,
        last_usable_lba: gpt.last_usable_lba,
        partitions: layout
            .partitions
            .iter()
            .map(|p| GptPartition {
                type_guid: p.part_type.gpt.unwrap_or_default(),
                part_guid: p.uuid.unwrap_or_default(),
                first_lba: p.start / ss,
                last_lba: p.end() / ss - 1,
                attributes: p.attributes,
                name: p.name.clone(),
            })
            .collect(),
    })
}

/// The MBR the layout describes: protective, hybrid or plain.
pub fn mbr_table(layout: &Layout) -> Result<Option<MbrTable>, MbrError> {
    let ss = layout.sector_size;
    let entry = |p: &crate::plan::PlannedPartition, type_byte: u8| MbrEntry {
        bootable: p.flags.contains(&PartitionFlag::LegacyBiosBootable),
        type_byte,
        start_lba: (p.start / ss) as u32,
        sectors: (p.size / ss) as u32,
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
                .collect(),
        },
        TableKind::Hybrid => {
            let mirrored: Vec<MbrEntry> = layout
                .partitions
                .iter()
                .filter_map(|p| p.part_type.mbr.map(|t| entry(p, t)))
                .take(3)
                .collect();
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
    if let Some(gpt) = gpt_disk(layout) {
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
