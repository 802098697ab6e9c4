//! Layout checks over the placed partitions and blobs: each inside the
//! disk and the usable range, table limits (entry count, four MBR
//! primaries, 2^32 sectors, GPT name length, type encodable in the table),
//! overlaps (`layout::check_overlaps`), and names and identities used
//! twice. Pure: the problems go to the caller's list.

use std::collections::HashMap;

use crate::board::schema::TableKind;
use crate::board::size::format_bytes;
use crate::plan::bounds::{add, div, sub};
use crate::plan::layout::{align_down, align_up, check_overlaps, Layout, Problem, GPT_NAME_UNITS};

pub fn check_layout(
    layout: &Layout,
    first_usable: u64,
    usable_end: u64,
    problems: &mut Vec<Problem>,
) {
    let ss = layout.sector_size;
    let has_gpt = layout.gpt.is_some();
    let count = layout.partitions.len();
    if let Some(gpt) = &layout.gpt {
        if count > gpt.entry_count as usize {
            problems.push(
                Problem::error(format!(
                    "{count} partitions but the GPT has only {} entries",
                    gpt.entry_count
                ))
                .with_fix(format!(
                    "disk.gpt_entries = {}",
                    count.max(4).next_power_of_two()
                )),
            );
        }
    }
    if layout.table == TableKind::Mbr && count > 4 {
        problems.push(
            Problem::error(format!(
                "{count} partitions but an MBR holds at most 4 primary partitions"
            ))
            .with_fix("use table = \"gpt\", or merge partitions"),
        );
    }
    let regions = layout.regions();
    for part in &layout.partitions {
        let who = format!("partition {} '{}'", part.number, part.name);
        let here = regions
            .iter()
            .find(|r| r.name == who)
            .cloned()
            .into_iter()
            .collect::<Vec<_>>();
        if part.end() > layout.disk_size {
            problems.push(
                Problem::error(format!(
                    "{who} ends at {:#x}, past the end of the {} disk ({:#x})",
                    part.end(),
                    format_bytes(layout.disk_size),
                    layout.disk_size
                ))
                .with_parties(here.clone())
                .with_fix(format!(
                    "shrink it to size = \"{}\" or grow disk.size to \"{}\"",
                    format_bytes(align_down(
                        usable_end.saturating_sub(part.start),
                        layout.alignment
                    )),
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
                .with_parties(here.clone())
                .with_fix(format!(
                    "shrink it to size = \"{}\"",
                    format_bytes(align_down(
                        usable_end.saturating_sub(part.start),
                        layout.alignment
                    ))
                )),
            );
        }
        if has_gpt && part.start < first_usable && part.size > 0 {
            problems.push(
                Problem::error(format!(
                    "{who} starts at {:#x}, before the first usable byte {first_usable:#x} \
                     (primary GPT array or a blob before the first partition)",
                    part.start
                ))
                .with_parties(here.clone())
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
                .with_fix("use a shorter name"),
            );
        }
        if layout.table == TableKind::Mbr && part.part_type.mbr.is_none() {
            problems.push(
                Problem::error(format!("{who}: type has no MBR type byte")).with_fix(
                    "use a shortcut (esp, linux, swap, fat32) or a byte such as \"0x83\"",
                ),
            );
        }
        if has_gpt && part.part_type.gpt.is_none() {
            problems.push(
                Problem::error(format!("{who}: an MBR type byte cannot be used in a GPT"))
                    .with_fix(
                        "use a shortcut (esp, linux, linux-root, swap, xbootldr, fat32) or a GUID",
                    ),
            );
        }
        if layout.table == TableKind::Mbr
            && (div(part.start, ss) > u64::from(u32::MAX)
                || div(part.size, ss) > u64::from(u32::MAX))
        {
            problems.push(Problem::error(format!(
                "{who}: beyond the 2^32-sector limit of an MBR"
            )));
        }
    }
    for blob in &layout.blobs {
        if add(blob.offset, blob.size) > layout.disk_size {
            problems.push(Problem::error(format!(
                "blob '{}' ({} bytes at {:#x}) runs past the end of the disk",
                blob.name, blob.size, blob.offset
            )));
        }
    }
    problems.extend(check_overlaps(&regions));
    check_duplicates(layout, problems);
}

fn check_duplicates(layout: &Layout, problems: &mut Vec<Problem>) {
    let mut names: HashMap<&str, u32> = HashMap::new();
    let mut uuids: HashMap<String, String> = HashMap::new();
    for part in &layout.partitions {
        if let Some(first) = names.insert(&part.name, part.number) {
            problems.push(
                Problem::error(format!(
                    "partitions {first} and {} are both named '{}'",
                    part.number, part.name
                ))
                .with_fix("give each partition a unique name"),
            );
        }
        let who = format!("partition {} '{}'", part.number, part.name);
        let mut claim = |kind: &str, id: String| {
            if let Some(other) = uuids.insert(format!("{kind}:{id}"), who.clone()) {
                problems.push(
                    Problem::error(format!("{other} and {who} have the same {kind} {id}"))
                        .with_fix(format!(
                            "change the {kind} of one of them (or drop it to derive one)"
                        )),
                );
            }
        };
        if let Some(uuid) = part.uuid {
            claim("partition GUID", uuid.to_string());
        }
        if let Some(id) = part.filesystem.fs_uuid_text() {
            claim("filesystem UUID", id);
        }
    }
    if let Some(gpt) = &layout.gpt {
        if layout
            .partitions
            .iter()
            .any(|p| p.uuid == Some(gpt.disk_guid))
        {
            problems.push(Problem::error(format!(
                "disk GUID {} is reused as a partition GUID",
                gpt.disk_guid
            )));
        }
    }
}
