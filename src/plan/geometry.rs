//! The disk's frame, before any partition is placed: sector size, disk
//! size, default alignment, the GPT header and entry arrays, the MBR disk
//! signature, and the byte range partitions may use.
//!
//! Placement rules (documented in README's board reference):
//! - GPT: primary header at LBA 1, entry array at `disk.gpt_entries_offset`
//!   (default LBA 2), backup array and header at the very end. With
//!   `disk.gpt_backup = false` the backup's sectors stay reserved (the
//!   last usable LBA does not move), as genimage 16's `gpt-no-backup`
//!   keeps them: a later `sgdisk -e` can write the backup without
//!   moving any partition.
//! - First usable LBA: right after the primary array, and after every blob
//!   that lies before the first partition (when the first partition has no
//!   explicit offset, every blob counts as "before" it).
//!
//! Pure arithmetic over the board's `[disk]` and the planned blobs.

use crate::board::schema::TableKind;
use crate::board::size::format_bytes;
use crate::board::Board;
use crate::plan::arith::{add, div, mul, rem};
use crate::plan::fields::{parse_u32_field, parse_uuid_field};
use crate::plan::identity::IdentitySource;
use crate::plan::layout::{align_down, align_up, Layout, Problem, GPT_ENTRY_SIZE};
use crate::plan::{GptPlacement, PlannedBlob};

/// The bytes partitions may use, `[first, end)`: after the primary GPT
/// and the blobs before the first partition, before the backup GPT.
#[derive(Debug, Clone, Copy)]
pub struct Usable {
    pub first: u64,
    pub end: u64,
}

/// Resolve `[disk]` around `blobs` into a layout without partitions, and
/// the bytes the partitions may use. Every problem goes to `problems`; a
/// bad value falls back to its default so the rest of the board is
/// checked too.
pub fn plan_geometry(
    board: &Board,
    ids: &IdentitySource,
    blobs: Vec<PlannedBlob>,
    problems: &mut Vec<Problem>,
) -> (Layout, Usable) {
    let disk = &board.file.disk;
    let ss = disk.sector_size.as_ref().map_or(512, |s| *s.get_ref());
    if let Some(sector_size) = disk
        .sector_size
        .as_ref()
        .filter(|_| ss != 512 && ss != 4096)
    {
        problems.push(
            Problem::error(format!(
                "disk.sector_size = {ss}: only 512 and 4096 are supported"
            ))
            .at(board.locate(sector_size.span()))
            .with_fix("disk.sector_size = 512"),
        );
    }
    let ss = if ss == 4096 { 4096 } else { 512 };
    let disk_size = disk.size.get_ref().0;
    if !disk_size.is_multiple_of(ss) || disk_size < mul(64, ss) {
        problems.push(
            Problem::error(format!(
                "disk.size = {disk_size} bytes is not a multiple of the {ss}-byte sector size \
                 or is too small"
            ))
            .at(board.locate(disk.size.span()))
            .with_fix(format!(
                "disk.size = \"{}\"",
                format_bytes(align_up(disk_size.max(1 << 20), 1 << 20))
            )),
        );
    }
    let disk_size = align_down(disk_size, ss);
    let alignment = disk.alignment.as_ref().map_or(1 << 20, |a| a.get_ref().0);
    if let Some(written) = &disk.alignment {
        if alignment == 0 || !alignment.is_multiple_of(ss) {
            problems.push(
                Problem::error(format!(
                    "disk.alignment = {alignment} is not a multiple of the sector size {ss}"
                ))
                .at(board.locate(written.span()))
                .with_fix(format!(
                    "disk.alignment = \"{}\"",
                    format_bytes(align_up(alignment.max(1), ss))
                )),
            );
        }
    }
    let alignment = alignment.max(ss);
    let table = disk.table;

    let (mut gpt, mut first_usable, usable_end) = match table {
        TableKind::None | TableKind::Mbr => {
            if let Some(written) = disk.gpt_backup.as_ref().filter(|b| !*b.get_ref()) {
                problems.push(
                    Problem::error(format!(
                        "disk.gpt_backup = false on a {:?} table: only a GPT has a backup",
                        table
                    ))
                    .at(board.locate(written.span()))
                    .with_fix("remove disk.gpt_backup, or use table = \"gpt\""),
                );
            }
            (
                None,
                if table == TableKind::Mbr { ss } else { 0 },
                disk_size,
            )
        }
        TableKind::Gpt | TableKind::Hybrid => {
            let gpt = place_gpt(board, ids, ss, disk_size, problems);
            let first = mul(add(gpt.entries_lba, gpt.entry_array_sectors), ss);
            let end = mul(gpt.backup_entries_lba, ss);
            (Some(gpt), first, end)
        }
    };
    // Blobs before the first partition push the first usable LBA out
    // (`blobs` holds the partitions without a table entry too).
    let first_explicit = board
        .file
        .partitions
        .iter()
        .find(|p| p.get_ref().in_table())
        .and_then(|p| p.get_ref().offset.as_ref())
        .map(|o| o.get_ref().0);
    // A partition without a table entry listed after the first one with an
    // entry is placed in list order (genimage's), not before it.
    let first_in_table = board
        .file
        .partitions
        .iter()
        .position(|p| p.get_ref().in_table());
    let listed_later = |name: &str| {
        board.file.partitions.iter().enumerate().any(|(i, p)| {
            !p.get_ref().in_table()
                && p.get_ref().name == name
                && first_in_table.is_some_and(|first| i > first)
        })
    };
    for blob in blobs.iter().filter(|b| !listed_later(&b.name)) {
        if first_explicit.is_none_or(|first| blob.offset < first) {
            first_usable = first_usable.max(align_up(add(blob.offset, blob.size), ss));
        }
    }
    if let Some(gpt) = gpt.as_mut() {
        gpt.first_usable_lba = div(first_usable, ss);
    }

    let mbr_signature = matches!(table, TableKind::Mbr | TableKind::Hybrid).then(|| {
        parse_u32_field(
            board,
            disk.mbr_signature.as_ref(),
            "disk.mbr_signature",
            problems,
        )
        .unwrap_or_else(|| ids.u32("mbr-signature"))
    });
    let layout = Layout {
        table,
        sector_size: ss,
        disk_size,
        alignment,
        mbr_signature,
        gpt,
        partitions: Vec::new(),
        blobs,
        extended: None,
        fill: disk.fill.as_ref().is_none_or(|f| *f.get_ref()),
    };
    let usable = Usable {
        first: first_usable,
        end: usable_end,
    };
    (layout, usable)
}

/// The GPT headers and entry arrays of a disk of `disk_size` bytes;
/// `first_usable_lba` is filled in once the blobs are known.
fn place_gpt(
    board: &Board,
    ids: &IdentitySource,
    ss: u64,
    disk_size: u64,
    problems: &mut Vec<Problem>,
) -> GptPlacement {
    let disk = &board.file.disk;
    let entry_count = disk.gpt_entries.as_ref().map_or(128, |n| *n.get_ref());
    if let Some(written) = disk.gpt_entries.as_ref().filter(|_| entry_count == 0) {
        problems.push(
            Problem::error("disk.gpt_entries = 0: a GPT needs at least one entry")
                .at(board.locate(written.span()))
                .with_fix("disk.gpt_entries = 128"),
        );
    }
    let array_sectors = mul(u64::from(entry_count.max(1)), GPT_ENTRY_SIZE).div_ceil(ss);
    let entries_lba = match disk
        .gpt_entries_offset
        .as_ref()
        .map(|o| (o.get_ref(), o.span()))
    {
        None => 2,
        Some((offset, span)) if rem(offset.0, ss) != 0 || offset.0 < mul(2, ss) => {
            problems.push(
                Problem::error(format!(
                    "disk.gpt_entries_offset = {} must be a multiple of the sector size and \
                     at or after LBA 2 (byte {})",
                    offset.0,
                    mul(2, ss)
                ))
                .at(board.locate(span))
                .with_fix(format!(
                    "disk.gpt_entries_offset = \"{}\"",
                    format_bytes(align_up(offset.0.max(mul(2, ss)), ss))
                )),
            );
            2
        }
        Some((offset, _)) => div(offset.0, ss),
    };
    let disk_sectors = div(disk_size, ss);
    let backup_header_lba = disk_sectors.saturating_sub(1);
    let backup_entries_lba = backup_header_lba.saturating_sub(array_sectors);
    GptPlacement {
        disk_guid: parse_uuid_field(board, disk.guid.as_ref(), "disk.guid", problems)
            .unwrap_or_else(|| ids.uuid("disk")),
        entries_lba,
        entry_count: entry_count.max(1),
        entry_array_sectors: array_sectors,
        first_usable_lba: 0,
        last_usable_lba: backup_entries_lba.saturating_sub(1),
        backup_entries_lba,
        backup_header_lba,
        backup: disk.gpt_backup.as_ref().is_none_or(|b| *b.get_ref()),
    }
}
