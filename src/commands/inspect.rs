//! `mkimg inspect IMAGE`: read the partition tables back and print the same
//! region table as `mkimg plan`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};

use crate::board::schema::TableKind;
use crate::board::size::format_bytes;
use crate::cli::InspectArgs;
use crate::commands::table::{render_rows, Row};
use crate::disk::mbr::ebr::is_extended;
use crate::disk::qcow2::Qcow2Reader;
use crate::disk::tables::{read_tables, FoundTables};
use crate::plan::parttype::describe_gpt_type;

pub fn run(args: &InspectArgs) -> Result<()> {
    let (found, size) = inspect_image(&args.image, args.sector_size)?;
    let rows = found_rows(&found, args.sector_size);
    if args.json {
        let json = serde_json::json!({
            "image": args.image,
            "size": size,
            "sector_size": args.sector_size,
            "table": found.table,
            "disk_guid": found.gpt.as_ref().map(|g| g.disk_guid),
            "gpt_backup": found.gpt.as_ref().map(|g| g.backup),
            "mbr_signature": found.mbr.as_ref().map(|m| m.disk_signature),
            "regions": rows,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "image {}: {} ({size} bytes), {} table",
            args.image.display(),
            format_bytes(size),
            serde_json::to_value(found.table)?.as_str().unwrap_or("?")
        );
        if let Some(gpt) = &found.gpt {
            println!(
                "gpt: disk GUID {}, {} entries at LBA {}, usable LBA {}..{}{}",
                gpt.disk_guid,
                gpt.entry_count,
                gpt.entries_lba,
                gpt.first_usable_lba,
                gpt.last_usable_lba,
                if gpt.backup {
                    ""
                } else {
                    ", no backup GPT (the primary header names itself as the alternate)"
                }
            );
        }
        if let (Some(mbr), TableKind::Mbr | TableKind::Hybrid) = (&found.mbr, found.table) {
            println!("mbr: disk signature {:#010x}", mbr.disk_signature);
        }
        println!();
        print!("{}", render_rows(&rows, args.sector_size));
    }
    Ok(())
}

/// Open an image (raw, or qcow2 read through its cluster mapping) and read
/// its tables; returns them and the (virtual) disk size.
pub fn inspect_image(path: &Path, sector_size: u64) -> Result<(FoundTables, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 4];
    let is_qcow2 = file.read_exact(&mut magic).is_ok() && magic == *b"QFI\xfb";
    file.seek(SeekFrom::Start(0))?;
    let context = || format!("reading the partition tables of {}", path.display());
    if is_qcow2 {
        let mut reader =
            Qcow2Reader::new(file).with_context(|| format!("reading qcow2 {}", path.display()))?;
        let size = reader.virtual_size();
        let found = read_tables(&mut reader, sector_size).with_context(context)?;
        return Ok((found, size));
    }
    let size = file.metadata()?.len();
    let found = read_tables(&mut file, sector_size).with_context(context)?;
    Ok((found, size))
}

/// Rows in the same shape as `mkimg plan`'s (filesystem columns stay empty:
/// the table does not record them).
pub fn found_rows(found: &FoundTables, ss: u64) -> Vec<Row> {
    let row =
        |region: String, start: u64, end: u64, type_: String, uuid: String, label: String| Row {
            region,
            start,
            end,
            size: end - start,
            type_,
            uuid,
            label,
        };
    let table = || "table".to_string();
    let mut rows = Vec::new();
    if found.mbr.is_some() {
        rows.push(row(
            "MBR".into(),
            440,
            512,
            table(),
            String::new(),
            String::new(),
        ));
    }
    if let Some(gpt) = &found.gpt {
        let array = gpt.entry_array_sectors() * ss;
        rows.push(row(
            "primary GPT header".into(),
            ss,
            2 * ss,
            table(),
            String::new(),
            String::new(),
        ));
        let e = gpt.entries_lba * ss;
        rows.push(row(
            "primary GPT entries".into(),
            e,
            e + array,
            table(),
            String::new(),
            String::new(),
        ));
        let b = gpt.backup_entries_lba() * ss;
        let backup_rows = if gpt.backup { 2 } else { 0 };
        let first_backup_row = rows.len();
        rows.push(row(
            "backup GPT entries".into(),
            b,
            b + array,
            table(),
            String::new(),
            String::new(),
        ));
        let h = gpt.backup_header_lba() * ss;
        rows.push(row(
            "backup GPT header".into(),
            h,
            h + ss,
            table(),
            String::new(),
            String::new(),
        ));
        // Without a backup its sectors are only reserved: no rows.
        rows.truncate(first_backup_row + backup_rows);
        for (i, p) in gpt.partitions.iter().enumerate() {
            let mut type_ = describe_gpt_type(p.type_guid);
            if p.attributes != 0 {
                type_.push_str(&format!(" attrs {:#x}", p.attributes));
            }
            rows.push(row(
                format!("partition {} '{}'", i + 1, p.name),
                p.first_lba * ss,
                (p.last_lba + 1) * ss,
                type_,
                p.part_guid.to_string(),
                String::new(),
            ));
        }
    } else if let Some(mbr) = &found.mbr {
        for (i, e) in mbr.entries.iter().enumerate() {
            let start = u64::from(e.start_lba) * ss;
            let mut type_ = format!("mbr {:#04x}", e.type_byte);
            if e.bootable {
                type_.push_str(" active");
            }
            let name = if is_extended(e.type_byte) {
                format!("extended partition {}", i + 1)
            } else {
                format!("partition {} 'mbr{}'", i + 1, i + 1)
            };
            rows.push(row(
                name,
                start,
                start + u64::from(e.sectors) * ss,
                type_,
                String::new(),
                String::new(),
            ));
        }
        for (number, l) in (5..).zip(&found.logical) {
            let name = format!("partition {number} 'mbr{number}'");
            let ebr = l.ebr_lba * ss;
            rows.push(row(
                format!("EBR of {name}"),
                ebr,
                ebr + ss,
                table(),
                String::new(),
                String::new(),
            ));
            let mut type_ = format!("mbr {:#04x}", l.type_byte);
            if l.bootable {
                type_.push_str(" active");
            }
            let start = l.start_lba * ss;
            rows.push(row(
                name,
                start,
                start + u64::from(l.sectors) * ss,
                type_,
                String::new(),
                String::new(),
            ));
        }
    }
    rows.sort_by_key(|r| (r.start, r.end));
    rows
}
