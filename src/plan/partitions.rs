//! Partitions: where each one starts and ends, and what it holds — type,
//! GUID, attribute bits, filesystem identity and label, raw source, mount
//! point.
//!
//! Placement: a partition without `offset` starts at the first aligned
//! byte after the previous one (or the first usable byte); `size = "rest"`
//! (last partition only) runs to the last usable byte, its end aligned
//! down. Whether the partitions then fit together is `checks`' job.
//!
//! MBR extended partition (genimage's model, measured in
//! `disk::mbr::ebr`): with `disk.extended_partition = N` (or automatically
//! N = 4 when an MBR disk has more than four partitions) partitions N, N+1,
//! … are logical, numbered 5, 6, …; each one's EBR sits one partition
//! alignment before it (an automatic offset leaves that room), and the
//! extended partition runs from the first EBR to the end of the disk.

use toml::Spanned;

use crate::board::paths::{resolve_board_path, resolve_in_roots};
use crate::board::schema::{FilesystemKind, PartitionFlag, PartitionSection, TableKind};
use crate::board::size::{format_bytes, PartSize};
use crate::board::Board;
use crate::plan::arith::{add, rem};
use crate::plan::blobs::{source_allowed, source_location};
use crate::plan::fields::{check_fstab_field, check_mount_path, parse_u32_field, parse_uuid_field};
use crate::plan::geometry::Usable;
use crate::plan::identity::IdentitySource;
use crate::plan::layout::{align_down, align_up, Layout, Problem};
use crate::plan::parttype::{resolve_part_type, PartType, ESP};
use crate::plan::{ExtendedPlan, MountSpec, PlannedFs, PlannedPartition};

/// The MBR slot of the extended partition, if any: `disk.extended_partition`
/// (1-4), or 4 when an MBR disk has more than four partitions.
fn extended_slot(board: &Board, problems: &mut Vec<Problem>) -> Option<u32> {
    let disk = &board.file.disk;
    let count = board
        .file
        .partitions
        .iter()
        .filter(|p| p.get_ref().in_table())
        .count();
    let written = disk.extended_partition.as_ref();
    let value = written.map_or(0, |n| *n.get_ref());
    let at = written.map(|n| board.locate(n.span()));
    if disk.table != TableKind::Mbr {
        if value != 0 {
            problems.push(
                Problem::error(format!(
                    "disk.extended_partition = {value}: extended and logical partitions exist \
                     only in an MBR (table = \"mbr\"), not in a {:?} table",
                    disk.table
                ))
                .at(at)
                .with_fix("remove disk.extended_partition, or use table = \"mbr\""),
            );
        }
        return None;
    }
    match value {
        0 => (count > 4).then_some(4),
        1..=4 if (value as usize) <= count => Some(value),
        1..=4 => {
            problems.push(
                Problem::error(format!(
                    "disk.extended_partition = {value} but the board has {count} partition(s): \
                     no partition would be logical"
                ))
                .at(at)
                .with_fix("remove disk.extended_partition (automatic: slot 4 when more than 4)"),
            );
            None
        }
        _ => {
            problems.push(
                Problem::error(format!(
                    "disk.extended_partition = {value}: the extended partition takes an MBR \
                     slot, 1 to 4 (0 for automatic)"
                ))
                .at(at)
                .with_fix("disk.extended_partition = 4"),
            );
            None
        }
    }
}

/// A table partition's place in the table: logical or not, and its number.
#[derive(Debug, Clone, Copy)]
struct Role {
    logical: bool,
    forced_primary: bool,
    number: u32,
}

/// Each `[[partition]]`'s role, `None` for one without a table entry.
/// With an extended partition in MBR slot `slot`: table partitions 1 ..
/// slot-1 are primary, the rest logical (5, 6, …) except those marked
/// `forced_primary`, which take the MBR slots after the extended one
/// (genimage ≥ 17's rules: only after the extended partition starts,
/// never followed by a logical one, at most four MBR entries).
fn table_roles(board: &Board, slot: Option<u32>, problems: &mut Vec<Problem>) -> Vec<Option<Role>> {
    let first_logical = slot.map(|n| n.saturating_sub(1) as usize);
    let mut roles = Vec::new();
    let (mut table_index, mut logicals, mut forced) = (0usize, 0u32, 0u32);
    for spanned in &board.file.partitions {
        let section = spanned.get_ref();
        if !section.in_table() {
            roles.push(None);
            continue;
        }
        if let Some(hole) = section.holes.first() {
            problems.push(
                Problem::error(format!(
                    "partition '{}': holes are for contents that share bytes with a table, \
                     which a partition with a table entry never does",
                    section.name
                ))
                .at(board.locate(hole.span()))
                .with_fix("remove holes, or set in_partition_table = false (or use a [[blob]])"),
            );
        }
        let after_extended = first_logical.is_some_and(|first| table_index >= first);
        let forced_primary = section.forced_primary();
        let forced_at = section
            .forced_primary
            .as_ref()
            .map(|f| board.locate(f.span()));
        let role = if forced_primary && after_extended && logicals == 0 {
            problems.push(
                Problem::error(format!(
                    "partition '{}': forced_primary before any logical partition; the \
                     extended partition starts with the first logical one",
                    section.name
                ))
                .at(forced_at)
                .with_fix("list it after the logical partitions, or remove forced_primary"),
            );
            Role {
                logical: false,
                forced_primary: false,
                number: u32::try_from(table_index).map_or(u32::MAX, |i| i.saturating_add(1)),
            }
        } else if forced_primary && after_extended {
            forced = forced.saturating_add(1);
            let slot = slot.unwrap_or(4);
            if slot.saturating_add(forced) > 4 {
                problems.push(
                    Problem::error(format!(
                        "partition '{}': forced_primary needs MBR slot {}, but an MBR has 4 \
                         (the extended partition takes slot {slot})",
                        section.name,
                        slot.saturating_add(forced)
                    ))
                    .at(forced_at)
                    .with_fix(
                        "make it logical (remove forced_primary), or move \
                               disk.extended_partition to a lower slot",
                    ),
                );
            }
            Role {
                logical: false,
                forced_primary: true,
                number: slot.saturating_add(forced),
            }
        } else if after_extended {
            if forced > 0 {
                problems.push(
                    Problem::error(format!(
                        "partition '{}': a logical partition after a forced_primary one; the \
                         extended partition would hold that primary partition",
                        section.name
                    ))
                    .at(board.locate(spanned.span()))
                    .with_fix("list the forced_primary partitions after every logical one"),
                );
            }
            logicals = logicals.saturating_add(1);
            Role {
                logical: true,
                forced_primary: false,
                number: logicals.saturating_add(4),
            }
        } else {
            if forced_primary {
                let why = if slot.is_some() {
                    "it comes before the extended partition and is primary anyway"
                } else {
                    "the disk has no extended partition (MBR with disk.extended_partition, \
                     or more than four partitions)"
                };
                problems.push(
                    Problem::error(format!(
                        "partition '{}': forced_primary has no effect: {why}",
                        section.name
                    ))
                    .at(forced_at)
                    .with_fix("remove forced_primary"),
                );
            }
            Role {
                logical: false,
                forced_primary: false,
                number: u32::try_from(table_index).map_or(u32::MAX, |i| i.saturating_add(1)),
            }
        };
        roles.push(Some(role));
        table_index = table_index.saturating_add(1);
    }
    roles
}

/// Place and resolve every `[[partition]]` in order, on the disk `layout`
/// describes (its partitions not yet filled in); with the extended
/// partition when some are logical.
pub fn plan_partitions(
    board: &Board,
    layout: &Layout,
    usable: Usable,
    ids: &IdentitySource,
    problems: &mut Vec<Problem>,
) -> (Vec<PlannedPartition>, Option<ExtendedPlan>) {
    let ss = layout.sector_size;
    let mut partitions = Vec::new();
    let mut cursor = usable.first;
    let slot = extended_slot(board, problems);
    let roles = table_roles(board, slot, problems);
    // Index of the last partition with a table entry (`rest` goes there).
    let last_in_table = board
        .file
        .partitions
        .iter()
        .rposition(|p| p.get_ref().in_table());
    for (index, spanned) in board.file.partitions.iter().enumerate() {
        let section = spanned.get_ref();
        let Some(role) = roles.get(index).copied().flatten() else {
            // No table entry: placed as a blob (`blobs::plan_unlisted`);
            // like genimage, a later automatic offset follows it.
            if let Some(offset) = &section.offset {
                if let PartSize::Fixed(size) = section.size.get_ref() {
                    cursor = cursor.max(add(offset.get_ref().0, size.0));
                }
            }
            continue;
        };
        let (logical, number) = (role.logical, role.number);
        let count_rest_ok = last_in_table == Some(index);
        let who = format!("partition {number} '{}'", section.name);
        let size_at = board.locate(section.size.span());
        let part_align = section
            .alignment
            .as_ref()
            .map_or(layout.alignment, |a| a.get_ref().0)
            .max(1);
        let start = match &section.offset {
            Some(offset) => {
                let value = offset.get_ref().0;
                if rem(value, part_align) != 0 {
                    problems.push(
                        Problem::error(format!(
                            "{who}: offset {value:#x} is not aligned to {}",
                            format_bytes(part_align)
                        ))
                        .at(board.locate(offset.span()))
                        .with_fix(format!(
                            "offset = \"{}\" (or set alignment = \"{}\" on the partition)",
                            format_bytes(align_up(value, part_align)),
                            format_bytes(ss)
                        )),
                    );
                }
                value
            }
            None if logical => add(align_up(cursor, part_align), part_align),
            None => align_up(cursor, part_align),
        };
        // genimage's rule: the EBR is one partition alignment before it.
        let ebr = logical.then(|| {
            start.checked_sub(part_align).unwrap_or_else(|| {
                problems.push(
                    Problem::error(format!(
                        "{who}: a logical partition at {start:#x} leaves no room for its EBR \
                         ({} before it)",
                        format_bytes(part_align)
                    ))
                    .at(board.locate(spanned.span())),
                );
                0
            })
        });
        let size = match *section.size.get_ref() {
            PartSize::Fixed(size) => size.0,
            PartSize::Rest => {
                if !count_rest_ok {
                    problems.push(
                        Problem::error(format!(
                            "{who}: size = \"rest\" is only allowed on the last partition"
                        ))
                        .at(size_at.clone())
                        .with_fix("give this partition a fixed size, or move it last"),
                    );
                }
                align_down(usable.end, part_align).saturating_sub(start)
            }
        };
        if size == 0 {
            problems.push(
                Problem::error(format!("{who}: size is zero (no room left at {start:#x})"))
                    .at(size_at.clone()),
            );
        }
        if rem(size, ss) != 0 || rem(start, ss) != 0 {
            problems.push(
                Problem::error(format!(
                    "{who}: start {start:#x} / size {size} are not multiples of the {ss}-byte sector"
                ))
                .at(size_at)
                .with_fix(format!("size = \"{}\"", format_bytes(align_up(size, ss)))),
            );
        }
        cursor = add(start, size);
        let mut part = resolve_partition(board, spanned, number, start, size, ids, problems);
        part.ebr = ebr;
        partitions.push(part);
    }
    // The extended partition runs to the end of the disk, or, when forced
    // primaries follow it, to the end of the last logical partition.
    let extended = slot.and_then(|slot| {
        let start = partitions.iter().find_map(|p| p.ebr)?;
        let forced = roles.iter().flatten().any(|r| r.forced_primary);
        let end = if forced {
            partitions
                .iter()
                .filter(|p| p.ebr.is_some())
                .map(PlannedPartition::end)
                .max()
                .unwrap_or(usable.end)
        } else {
            usable.end
        };
        Some(ExtendedPlan {
            slot,
            start,
            end,
            bootable: false,
        })
    });
    let extended = extended_bootable(board, extended, problems);
    (partitions, extended)
}

/// `disk.extended_bootable`: the extended entry's active flag, which needs
/// an extended partition to be on.
fn extended_bootable(
    board: &Board,
    extended: Option<ExtendedPlan>,
    problems: &mut Vec<Problem>,
) -> Option<ExtendedPlan> {
    let Some(written) = board
        .file
        .disk
        .extended_bootable
        .as_ref()
        .filter(|b| *b.get_ref())
    else {
        return extended;
    };
    match extended {
        Some(ext) => Some(ExtendedPlan {
            bootable: true,
            ..ext
        }),
        None => {
            problems.push(
                Problem::error(
                    "disk.extended_bootable = true but the disk has no extended partition \
                     (an MBR with disk.extended_partition, or more than four partitions)",
                )
                .at(board.locate(written.span()))
                .with_fix("remove disk.extended_bootable"),
            );
            None
        }
    }
}

/// Type, GUID, attributes, filesystem and mount of one placed partition.
fn resolve_partition(
    board: &Board,
    spanned: &Spanned<PartitionSection>,
    number: u32,
    start: u64,
    size: u64,
    ids: &IdentitySource,
    problems: &mut Vec<Problem>,
) -> PlannedPartition {
    let file = &board.file;
    let section = spanned.get_ref();
    let who = format!("partition {number} '{}'", section.name);
    let type_text = section.type_.get_ref();
    let part_type = resolve_part_type(type_text, file.board.arch).unwrap_or_else(|msg| {
        problems
            .push(Problem::error(format!("{who}: {msg}")).at(board.locate(section.type_.span())));
        PartType {
            gpt: None,
            mbr: None,
        }
    });
    let has_gpt = matches!(file.disk.table, TableKind::Gpt | TableKind::Hybrid);
    let uuid = if has_gpt {
        parse_uuid_field(
            board,
            section.uuid.as_ref(),
            &format!("{who}: uuid"),
            problems,
        )
        .or_else(|| Some(ids.uuid(&format!("partition:{}", section.name))))
    } else {
        None
    };
    let mut attributes = 0u64;
    for flag in &section.flags {
        attributes |= match flag {
            PartitionFlag::RequiredPartition => 1 << 0,
            PartitionFlag::LegacyBiosBootable => 1 << 2,
            PartitionFlag::ReadOnly => 1 << 60,
            PartitionFlag::NoAutomount => 1 << 63,
            PartitionFlag::Hidden => 1 << 62,
        };
    }
    let fs_kind = section.filesystem.unwrap_or(FilesystemKind::None);
    let label = section.label.as_ref().map(|l| l.get_ref().clone());
    let label_at = section.label.as_ref().map(|l| board.locate(l.span()));
    let fs_uuid = section.fs_uuid.as_ref();
    let filesystem = match fs_kind {
        FilesystemKind::Vfat => {
            if !part_type.is_fat() {
                problems.push(
                    Problem::warning(format!(
                        "{who}: vfat on partition type {type_text:?}, which firmware does not \
                         expect to be FAT"
                    ))
                    .at(board.locate(section.type_.span())),
                );
            }
            if let Some(label) = &label {
                if label.len() > 11 || !label.is_ascii() {
                    problems.push(
                        Problem::error(format!(
                            "{who}: vfat label {label:?} is longer than 11 ASCII characters"
                        ))
                        .at(label_at)
                        .with_fix(format!(
                            "label = {:?}",
                            label.chars().take(11).collect::<String>()
                        )),
                    );
                }
            }
            let volume_id = parse_u32_field(board, fs_uuid, &format!("{who}: fs_uuid"), problems)
                .unwrap_or_else(|| ids.u32(&format!("vfat:{}", section.name)));
            PlannedFs::Vfat { label, volume_id }
        }
        FilesystemKind::Ext4 => {
            if part_type.gpt == Some(ESP) {
                problems.push(
                    Problem::warning(format!("{who}: ext4 on an EFI System Partition"))
                        .at(board.locate(section.type_.span())),
                );
            }
            if let Some(label) = &label {
                if label.len() > 16 {
                    problems.push(
                        Problem::error(format!(
                            "{who}: ext4 label {label:?} is longer than 16 bytes"
                        ))
                        .at(label_at),
                    );
                }
            }
            let uuid = parse_uuid_field(board, fs_uuid, &format!("{who}: fs_uuid"), problems)
                .unwrap_or_else(|| ids.uuid(&format!("ext4:{}", section.name)));
            PlannedFs::Ext4 {
                label,
                uuid,
                hash_seed: ids.uuid(&format!("ext4-hash-seed:{}", section.name)),
            }
        }
        FilesystemKind::Raw => match &section.source {
            Some(source) => {
                let allowed = source_allowed(board, &section.name);
                let resolved = if board.source_roots.is_empty() {
                    resolve_board_path(&board.dir, source.get_ref(), allowed)
                } else {
                    resolve_in_roots(&board.source_roots, source.get_ref())
                };
                match resolved {
                    Ok(source) => PlannedFs::Raw { source },
                    Err(err) => {
                        problems.push(
                            Problem::error(format!("{who}: source {err}"))
                                .at(source_location(board, &section.name, source))
                                .with_fix(format!(
                                    "copy the file into the board directory, or pass --blob {}=PATH",
                                    section.name
                                )),
                        );
                        PlannedFs::None
                    }
                }
            }
            None => {
                problems.push(
                    Problem::error(format!(
                        "{who}: filesystem = \"raw\" needs source = \"FILE\""
                    ))
                    .at(board.locate(spanned.span()))
                    .with_fix("source = \"env.bin\" (relative to board.toml)"),
                );
                PlannedFs::None
            }
        },
        FilesystemKind::None => PlannedFs::None,
    };
    if let Some(source) = section
        .source
        .as_ref()
        .filter(|_| fs_kind != FilesystemKind::Raw)
    {
        problems.push(
            Problem::error(format!(
                "{who}: source is only used with filesystem = \"raw\""
            ))
            .at(source_location(board, &section.name, source)),
        );
    }
    let mount = section.mount.as_ref().map(|path| {
        let path = path.get_ref();
        MountSpec {
            path: path.clone(),
            options: section
                .mount_options
                .as_ref()
                .map_or_else(|| "defaults".to_string(), |o| o.get_ref().clone()),
            pass: if path == "/" { 1 } else { 2 },
        }
    });
    if let (Some(mount), Some(written)) = (&mount, &section.mount) {
        if let Err(why) = check_mount_path(&mount.path) {
            problems.push(
                Problem::error(format!("{who}: mount = {:?} {why}", mount.path))
                    .at(board.locate(written.span()))
                    .with_fix("mount = \"/boot/efi\" (an absolute path of plain names)"),
            );
        }
        if let Err(why) = check_fstab_field(&mount.options) {
            let at = section
                .mount_options
                .as_ref()
                .map(|o| board.locate(o.span()));
            problems.push(
                Problem::error(format!("{who}: mount_options = {:?} {why}", mount.options))
                    .at(at)
                    .with_fix("mount_options = \"defaults,noatime\""),
            );
        }
    }
    PlannedPartition {
        number,
        name: section.name.clone(),
        part_type,
        start,
        size,
        uuid,
        attributes,
        flags: section.flags.clone(),
        filesystem,
        mount,
        ebr: None,
        sparse: section.sparse.unwrap_or(true),
    }
}
