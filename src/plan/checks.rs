//! Layout checks over the placed partitions and blobs: each inside the
//! disk and the usable range, table limits (entry count, four MBR
//! primaries, 2^32 sectors, GPT name length, type encodable in the table),
//! overlaps (`layout::check_overlaps`), and names and identities used
//! twice. Each problem cites the board line of the value to change (the
//! partition's `[[partition]]` header when no single key is at fault).
//! Pure: the problems go to the caller's list.

use std::collections::HashMap;
use std::ops::Range;

use crate::board::schema::{BlobSection, PartitionSection, TableKind};
use crate::board::size::format_bytes;
use crate::board::{Board, Location};
use crate::plan::arith::{add, div, sub};
use crate::plan::geometry::Usable;
use crate::plan::layout::{
    align_down, align_up, check_overlaps, Layout, Problem, Region, RegionKind, GPT_NAME_UNITS,
};
use crate::plan::PlannedPartition;

/// Where the board writes each partition and blob, to cite them.
struct Sources<'a> {
    board: &'a Board,
    /// The placed partitions, in board order (numbers skip from 4 to 5
    /// when some are logical, so the index is found by position).
    partitions: &'a [PlannedPartition],
}

impl Sources<'_> {
    fn partition(&self, part: &PlannedPartition) -> Option<(&PartitionSection, Range<usize>)> {
        let index = self
            .partitions
            .iter()
            .position(|p| std::ptr::eq(p, part))
            .or_else(|| self.partitions.iter().position(|p| p.name == part.name))?;
        // The index-th partition with a table entry (the others are blobs).
        let spanned = self
            .board
            .file
            .partitions
            .iter()
            .filter(|p| p.get_ref().in_table())
            .nth(index)?;
        Some((spanned.get_ref(), spanned.span()))
    }

    /// The partition's `[[partition]]` header.
    fn header(&self, part: &PlannedPartition) -> Option<Location> {
        self.partition(part)
            .map(|(_, span)| self.board.locate(span))
    }

    /// The partition's `size`.
    fn size(&self, part: &PlannedPartition) -> Option<Location> {
        self.partition(part)
            .map(|(section, _)| self.board.locate(section.size.span()))
    }

    /// The partition's `offset`, else its header (the offset to add).
    fn offset(&self, part: &PlannedPartition) -> Option<Location> {
        let (section, span) = self.partition(part)?;
        let span = section.offset.as_ref().map_or(span, |o| o.span());
        Some(self.board.locate(span))
    }

    /// The partition's `type`.
    fn part_type(&self, part: &PlannedPartition) -> Option<Location> {
        self.partition(part)
            .map(|(section, _)| self.board.locate(section.type_.span()))
    }

    /// The first `[[blob]]` named `name`.
    fn blob(&self, name: &str) -> Option<(&BlobSection, Range<usize>)> {
        self.board
            .file
            .blobs
            .iter()
            .find(|b| b.get_ref().name == name)
            .map(|b| (b.get_ref(), b.span()))
    }

    /// The `offset` of blob `name`: a `[[blob]]`, else a `[[partition]]`
    /// without a table entry (planned as a blob).
    fn blob_offset(&self, name: &str) -> Option<Location> {
        let blob = self
            .blob(name)
            .map(|(section, _)| self.board.locate(section.offset.span()));
        blob.or_else(|| {
            self.board
                .file
                .partitions
                .iter()
                .map(|p| p.get_ref())
                .find(|p| !p.in_table() && p.name == name)
                .and_then(|p| p.offset.as_ref())
                .map(|o| self.board.locate(o.span()))
        })
    }

    /// The region to move to clear an overlap: the later party if the
    /// board places it, else the earlier.
    fn region(&self, layout: &Layout, region: &Region) -> Option<Location> {
        match region.kind {
            RegionKind::Partition => layout
                .partitions
                .iter()
                .find(|p| region_name(p) == region.name)
                .and_then(|p| self.offset(p)),
            RegionKind::Blob => layout
                .blobs
                .iter()
                .find(|b| format!("blob '{}'", b.name) == region.name)
                .and_then(|b| self.blob_offset(&b.name)),
            RegionKind::GptEntries => self
                .board
                .file
                .disk
                .gpt_entries_offset
                .as_ref()
                .map(|o| self.board.locate(o.span())),
            _ => None,
        }
    }
}

fn region_name(part: &PlannedPartition) -> String {
    format!("partition {} '{}'", part.number, part.name)
}

/// Every layout problem of the placed disk.
pub fn check_layout(board: &Board, layout: &Layout, usable: Usable, problems: &mut Vec<Problem>) {
    let at = Sources {
        board,
        partitions: &layout.partitions,
    };
    check_tables(&at, layout, problems);
    let regions = layout.regions();
    for part in &layout.partitions {
        check_partition(&at, layout, usable, &regions, part, problems);
    }
    for blob in &layout.blobs {
        if add(blob.offset, blob.size) > layout.disk_size {
            let offset = at.blob_offset(&blob.name);
            problems.push(
                Problem::error(format!(
                    "blob '{}' ({} bytes at {:#x}) runs past the end of the disk",
                    blob.name, blob.size, blob.offset
                ))
                .at(offset),
            );
        }
    }
    for mut overlap in check_overlaps(&regions) {
        let location = overlap
            .parties
            .iter()
            .rev()
            .find_map(|region| at.region(layout, region));
        overlap = overlap.at(location);
        problems.push(overlap);
    }
    check_duplicates(&at, layout, problems);
    check_extended(&at, layout, problems);
}

/// Logical partitions follow each other (the EBR chain ascends, as
/// genimage requires) and primary partitions stay out of the extended one.
fn check_extended(at: &Sources, layout: &Layout, problems: &mut Vec<Problem>) {
    let Some(ext) = &layout.extended else {
        return;
    };
    let container = Region::new(
        &format!("extended partition {}", ext.slot),
        RegionKind::Extended,
        ext.start,
        ext.end,
    );
    let mut previous: Option<&PlannedPartition> = None;
    for part in &layout.partitions {
        let region = Region::new(
            &region_name(part),
            RegionKind::Partition,
            part.start,
            part.end(),
        );
        match part.ebr {
            None if region.overlaps(&container) => problems.push(
                Problem::error(format!(
                    "{}: a primary partition inside the extended partition {} \
                     (the extended partition runs from the first EBR to the end of the disk)",
                    region.name, ext.slot
                ))
                .at(at.offset(part))
                .with_parties(vec![region, container.clone()])
                .with_fix(format!(
                    "place it before {:#x}, or make it logical: disk.extended_partition",
                    ext.start
                )),
            ),
            None => {}
            Some(ebr) => {
                if let Some(prev) = previous.filter(|prev| ebr < prev.end()) {
                    let prev_region = Region::new(
                        &region_name(prev),
                        RegionKind::Partition,
                        prev.start,
                        prev.end(),
                    );
                    problems.push(
                        Problem::error(format!(
                            "{}: its EBR at {ebr:#x} is before the end of {} ({:#x}): \
                             logical partitions follow each other in table order, each \
                             with its EBR one alignment before it",
                            region.name,
                            prev_region.name,
                            prev.end()
                        ))
                        .at(at.offset(part))
                        .with_parties(vec![prev_region, region])
                        .with_fix(format!(
                            "offset = \"{}\" or later, or remove the offset",
                            format_bytes(add(
                                align_up(prev.end(), layout.alignment),
                                sub(part.start, ebr)
                            ))
                        )),
                    );
                }
                previous = Some(part);
            }
        }
    }
}

/// How many partitions the table can hold.
fn check_tables(at: &Sources, layout: &Layout, problems: &mut Vec<Problem>) {
    let count = layout.partitions.len();
    if let Some(gpt) = &layout.gpt {
        if count > gpt.entry_count as usize {
            // `disk.gpt_entries` when written, else the first partition
            // that does not fit.
            let location = at
                .board
                .file
                .disk
                .gpt_entries
                .as_ref()
                .map(|n| at.board.locate(n.span()))
                .or_else(|| {
                    layout
                        .partitions
                        .get(gpt.entry_count as usize)
                        .and_then(|p| at.header(p))
                });
            problems.push(
                Problem::error(format!(
                    "{count} partitions but the GPT has only {} entries",
                    gpt.entry_count
                ))
                .at(location)
                .with_fix(format!(
                    "disk.gpt_entries = {}",
                    count.max(4).next_power_of_two()
                )),
            );
        }
    }
    if layout.table == TableKind::Mbr && count > 4 && layout.extended.is_none() {
        problems.push(
            Problem::error(format!(
                "{count} partitions but an MBR holds at most 4 primary partitions"
            ))
            .at(layout.partitions.get(4).and_then(|p| at.header(p)))
            .with_fix("use table = \"gpt\", or merge partitions"),
        );
    }
}

/// One partition against the disk, the usable range and its table.
fn check_partition(
    at: &Sources,
    layout: &Layout,
    usable: Usable,
    regions: &[Region],
    part: &PlannedPartition,
    problems: &mut Vec<Problem>,
) {
    let ss = layout.sector_size;
    let has_gpt = layout.gpt.is_some();
    let (first_usable, usable_end) = (usable.first, usable.end);
    let who = region_name(part);
    let here: Vec<Region> = regions.iter().filter(|r| r.name == who).cloned().collect();
    // The size that ends the partition at the last usable byte.
    let shrink_to = format_bytes(align_down(
        usable_end.saturating_sub(part.start),
        layout.alignment,
    ));
    if part.end() > layout.disk_size {
        problems.push(
            Problem::error(format!(
                "{who} ends at {:#x}, past the end of the {} disk ({:#x})",
                part.end(),
                format_bytes(layout.disk_size),
                layout.disk_size
            ))
            .at(at.size(part))
            .with_parties(here.clone())
            .with_fix(format!(
                "shrink it to size = \"{shrink_to}\" or grow disk.size to \"{}\"",
                format_bytes(align_up(
                    add(part.end(), sub(layout.disk_size, usable_end)),
                    1 << 20
                ))
            )),
        );
    } else if part.end() > usable_end {
        problems.push(
            Problem::error(format!(
                "{who} ends at {:#x}, past the last usable byte {:#x} (the backup GPT follows)",
                part.end(),
                usable_end
            ))
            .at(at.size(part))
            .with_parties(here.clone())
            .with_fix(format!("shrink it to size = \"{shrink_to}\"")),
        );
    }
    if has_gpt && part.start < first_usable && part.size > 0 {
        problems.push(
            Problem::error(format!(
                "{who} starts at {:#x}, before the first usable byte {first_usable:#x} \
                 (primary GPT array or a blob before the first partition)",
                part.start
            ))
            .at(at.offset(part))
            .with_parties(here)
            .with_fix(format!(
                "offset = \"{}\"",
                format_bytes(align_up(first_usable, layout.alignment))
            )),
        );
    }
    if has_gpt && part.name.encode_utf16().count() > GPT_NAME_UNITS {
        problems.push(
            Problem::error(format!(
                "{who}: name is {} UTF-16 code units; GPT names hold at most {GPT_NAME_UNITS}",
                part.name.encode_utf16().count()
            ))
            .at(at.header(part))
            .with_fix("use a shorter name"),
        );
    }
    if layout.table == TableKind::Mbr && part.part_type.mbr.is_none() {
        problems.push(
            Problem::error(format!("{who}: type has no MBR type byte"))
                .at(at.part_type(part))
                .with_fix("use a shortcut (esp, linux, swap, fat32) or a byte such as \"0x83\""),
        );
    }
    if has_gpt && part.part_type.gpt.is_none() {
        problems.push(
            Problem::error(format!("{who}: an MBR type byte cannot be used in a GPT"))
                .at(at.part_type(part))
                .with_fix(
                    "use a shortcut (esp, linux, linux-root, swap, xbootldr, fat32) or a GUID",
                ),
        );
    }
    if layout.table == TableKind::Mbr
        && (div(part.start, ss) > u64::from(u32::MAX) || div(part.size, ss) > u64::from(u32::MAX))
    {
        problems.push(
            Problem::error(format!("{who}: beyond the 2^32-sector limit of an MBR"))
                .at(at.offset(part))
                .with_fix("use table = \"gpt\""),
        );
    }
}

/// Names and identities used twice, cited at the second use.
fn check_duplicates(at: &Sources, layout: &Layout, problems: &mut Vec<Problem>) {
    let mut names: HashMap<&str, u32> = HashMap::new();
    let mut uuids: HashMap<String, String> = HashMap::new();
    for part in &layout.partitions {
        let section = at.partition(part).map(|(section, _)| section);
        if let Some(first) = names.insert(&part.name, part.number) {
            problems.push(
                Problem::error(format!(
                    "partitions {first} and {} are both named '{}'",
                    part.number, part.name
                ))
                .at(at.header(part))
                .with_fix("give each partition a unique name"),
            );
        }
        let who = region_name(part);
        let mut claim = |kind: &str, id: String, written: Option<Location>| {
            if let Some(other) = uuids.insert(format!("{kind}:{id}"), who.clone()) {
                problems.push(
                    Problem::error(format!("{other} and {who} have the same {kind} {id}"))
                        .at(written.or_else(|| at.header(part)))
                        .with_fix(format!(
                            "change the {kind} of one of them (or drop it to derive one)"
                        )),
                );
            }
        };
        let written =
            |field: Option<&toml::Spanned<String>>| field.map(|f| at.board.locate(f.span()));
        if let Some(uuid) = part.uuid {
            claim(
                "partition GUID",
                uuid.to_string(),
                written(section.and_then(|s| s.uuid.as_ref())),
            );
        }
        if let Some(id) = part.filesystem.fs_uuid_text() {
            claim(
                "filesystem UUID",
                id,
                written(section.and_then(|s| s.fs_uuid.as_ref())),
            );
        }
    }
    if let Some(gpt) = &layout.gpt {
        if let Some(part) = layout
            .partitions
            .iter()
            .find(|p| p.uuid == Some(gpt.disk_guid))
        {
            let guid = at.board.file.disk.guid.as_ref();
            problems.push(
                Problem::error(format!(
                    "disk GUID {} is reused as a partition GUID",
                    gpt.disk_guid
                ))
                .at(guid
                    .map(|g| at.board.locate(g.span()))
                    .or_else(|| at.header(part)))
                .with_fix("change disk.guid or the partition's uuid (or drop one to derive it)"),
            );
        }
    }
    // A partition without a table entry is planned as a blob of its name.
    for spanned in at
        .board
        .file
        .partitions
        .iter()
        .filter(|p| !p.get_ref().in_table())
    {
        let name = &spanned.get_ref().name;
        let twice = at
            .board
            .file
            .blobs
            .iter()
            .any(|b| &b.get_ref().name == name)
            || names.contains_key(name.as_str())
            || at
                .board
                .file
                .partitions
                .iter()
                .filter(|p| !p.get_ref().in_table() && &p.get_ref().name == name)
                .count()
                > 1;
        if twice {
            problems.push(
                Problem::error(format!(
                    "partition '{name}' (in_partition_table = false) shares its name with \
                     another partition or blob"
                ))
                .at(at.board.locate(spanned.span()))
                .with_fix("give each partition and blob a unique name"),
            );
        }
    }
    let mut blob_names: HashMap<&str, usize> = HashMap::new();
    for (index, blob) in at.board.file.blobs.iter().enumerate() {
        let number = index.saturating_add(1);
        if let Some(first) = blob_names.insert(&blob.get_ref().name, number) {
            problems.push(
                Problem::error(format!(
                    "blobs {first} and {number} are both named '{}'",
                    blob.get_ref().name
                ))
                .at(at.board.locate(blob.span()))
                .with_fix("give each blob a unique name (--blob NAME=PATH picks a blob by name)"),
            );
        }
    }
}
