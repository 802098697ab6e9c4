//! Board → Plan: defaults, identities, partition types, placement, checks.
//!
//! Placement rules (documented in README's board reference):
//! - GPT: primary header at LBA 1, entry array at `disk.gpt_entries_offset`
//!   (default LBA 2), backup array and header at the very end.
//! - First usable LBA: right after the primary array, and after every blob
//!   that lies before the first partition (when the first partition has no
//!   explicit offset, every blob counts as "before" it).
//! - A partition without `offset` starts at the first aligned byte after the
//!   previous one (or the first usable byte); `size = "rest"` (last partition
//!   only) runs to the last usable byte, its end aligned down.

use std::collections::HashMap;

use uuid::Uuid;

use crate::board::paths::{resolve_board_path, Allowed};
use crate::board::schema::{BootLoader, GrubMode};
use crate::board::schema::{FilesystemKind, PartitionFlag, PartitionSection, TableKind};
use crate::board::size::{format_bytes, PartSize};
use crate::board::Board;
use crate::plan::bounds::{add, check_bounds, div, mul, rem, sub};
use crate::plan::identity::IdentitySource;
use crate::plan::layout::{
    align_down, align_up, check_overlaps, render_map, Layout, Problem, Severity, GPT_ENTRY_SIZE,
    GPT_NAME_UNITS,
};
use crate::plan::parttype::{resolve_part_type, PartType, ESP};
use crate::plan::{
    boot_loader_problem, BlobSource, BoardInfo, BootPlan, EditsPlan, FirmwareLoad, FirmwarePlan,
    GptPlacement, MountSpec, Plan, PlannedBlob, PlannedFs, PlannedPartition, QemuPlan,
};

/// The board could not be planned; `Display` lists every problem and the map.
#[derive(Debug, thiserror::Error)]
#[error("board {board}: {count} problem(s):\n{details}")]
pub struct PlanError {
    pub board: String,
    pub count: usize,
    pub details: String,
    pub problems: Vec<Problem>,
}

/// Resolve and validate a board.
pub fn plan_board(board: &Board, seed: &str) -> Result<Plan, PlanError> {
    let file = &board.file;
    let ids = IdentitySource::new(seed, &file.board.name);
    let out_of_range = check_bounds(board);
    if !out_of_range.is_empty() {
        return Err(plan_error(board, out_of_range, String::new()));
    }
    let mut problems = Vec::new();

    let ss = file.disk.sector_size.unwrap_or(512);
    if ss != 512 && ss != 4096 {
        problems.push(
            Problem::error(format!(
                "disk.sector_size = {ss}: only 512 and 4096 are supported"
            ))
            .with_fix("disk.sector_size = 512"),
        );
    }
    let ss = if ss == 4096 { 4096 } else { 512 };
    let disk_size = file.disk.size.get_ref().0;
    if !disk_size.is_multiple_of(ss) || disk_size < mul(64, ss) {
        problems.push(
            Problem::error(format!(
                "disk.size = {disk_size} bytes is not a multiple of the {ss}-byte sector size \
                 or is too small"
            ))
            .with_fix(format!(
                "disk.size = \"{}\"",
                format_bytes(align_up(disk_size.max(1 << 20), 1 << 20))
            )),
        );
    }
    let disk_size = align_down(disk_size, ss);
    let alignment = file
        .disk
        .alignment
        .as_ref()
        .map(|a| a.get_ref().0)
        .unwrap_or(1 << 20);
    if alignment == 0 || !alignment.is_multiple_of(ss) {
        problems.push(Problem::error(format!(
            "disk.alignment = {alignment} is not a multiple of the sector size {ss}"
        )));
    }
    let alignment = alignment.max(ss);
    let table = file.disk.table;
    let has_gpt = matches!(table, TableKind::Gpt | TableKind::Hybrid);
    let has_mbr = matches!(table, TableKind::Mbr | TableKind::Hybrid);

    let blobs = plan_blobs(board, &mut problems);

    // GPT geometry.
    let mut gpt = None;
    let (mut first_usable, mut last_usable_end) = match table {
        TableKind::None => (0, disk_size),
        TableKind::Mbr => (ss, disk_size),
        TableKind::Gpt | TableKind::Hybrid => (0, 0),
    };
    if has_gpt {
        let entry_count = file.disk.gpt_entries.unwrap_or(128);
        if entry_count == 0 {
            problems.push(Problem::error(
                "disk.gpt_entries = 0: a GPT needs at least one entry",
            ));
        }
        let array_sectors = mul(u64::from(entry_count.max(1)), GPT_ENTRY_SIZE).div_ceil(ss);
        let entries_lba = match file.disk.gpt_entries_offset.as_ref().map(|o| *o.get_ref()) {
            None => 2,
            Some(offset) if rem(offset.0, ss) != 0 || offset.0 < mul(2, ss) => {
                problems.push(
                    Problem::error(format!(
                        "disk.gpt_entries_offset = {} must be a multiple of the sector size and \
                         at or after LBA 2 (byte {})",
                        offset.0,
                        mul(2, ss)
                    ))
                    .with_fix(format!(
                        "disk.gpt_entries_offset = \"{}\"",
                        format_bytes(align_up(offset.0.max(mul(2, ss)), ss))
                    )),
                );
                2
            }
            Some(offset) => div(offset.0, ss),
        };
        let disk_sectors = div(disk_size, ss);
        let backup_header_lba = disk_sectors.saturating_sub(1);
        let backup_entries_lba = backup_header_lba.saturating_sub(array_sectors);
        gpt = Some(GptPlacement {
            disk_guid: parse_uuid_field(file.disk.guid.as_deref(), "disk.guid", &mut problems)
                .unwrap_or_else(|| ids.uuid("disk")),
            entries_lba,
            entry_count: entry_count.max(1),
            entry_array_sectors: array_sectors,
            first_usable_lba: 0,
            last_usable_lba: backup_entries_lba.saturating_sub(1),
            backup_entries_lba,
            backup_header_lba,
        });
        first_usable = mul(add(entries_lba, array_sectors), ss);
        last_usable_end = mul(backup_entries_lba, ss);
    }
    // Blobs before the first partition push the first usable LBA out.
    let first_explicit = file
        .partitions
        .first()
        .and_then(|p| p.offset.as_ref())
        .map(|o| o.get_ref().0);
    for blob in &blobs {
        if first_explicit.is_none_or(|first| blob.offset < first) {
            first_usable = first_usable.max(align_up(add(blob.offset, blob.size), ss));
        }
    }
    if let Some(gpt) = gpt.as_mut() {
        gpt.first_usable_lba = div(first_usable, ss);
    }

    let mbr_signature = if has_mbr {
        parse_u32_field(
            file.disk.mbr_signature.as_deref(),
            "disk.mbr_signature",
            &mut problems,
        )
        .or(Some(ids.u32("mbr-signature")))
    } else {
        None
    };

    // Partitions.
    let mut partitions = Vec::new();
    let mut cursor = first_usable;
    let count = file.partitions.len();
    for (index, section) in file.partitions.iter().enumerate() {
        let number = u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1));
        let who = format!("partition {number} '{}'", section.name);
        let part_align = section
            .alignment
            .as_ref()
            .map(|a| a.get_ref().0)
            .unwrap_or(alignment)
            .max(1);
        let start = match section.offset.as_ref().map(|o| *o.get_ref()) {
            Some(offset) => {
                if rem(offset.0, part_align) != 0 {
                    problems.push(
                        Problem::error(format!(
                            "{who}: offset {:#x} is not aligned to {}",
                            offset.0,
                            format_bytes(part_align)
                        ))
                        .with_fix(format!(
                            "offset = \"{}\" (or set alignment = \"{}\" on the partition)",
                            format_bytes(align_up(offset.0, part_align)),
                            format_bytes(ss)
                        )),
                    );
                }
                offset.0
            }
            None => align_up(cursor, part_align),
        };
        let size = match *section.size.get_ref() {
            PartSize::Fixed(size) => size.0,
            PartSize::Rest => {
                if add(index as u64, 1) != count as u64 {
                    problems.push(
                        Problem::error(format!(
                            "{who}: size = \"rest\" is only allowed on the last partition"
                        ))
                        .with_fix("give this partition a fixed size, or move it last"),
                    );
                }
                align_down(last_usable_end, part_align).saturating_sub(start)
            }
        };
        if size == 0 {
            problems.push(Problem::error(format!(
                "{who}: size is zero (no room left at {start:#x})"
            )));
        }
        if rem(size, ss) != 0 || rem(start, ss) != 0 {
            problems.push(
                Problem::error(format!(
                    "{who}: start {start:#x} / size {size} are not multiples of the {ss}-byte sector"
                ))
                .with_fix(format!("size = \"{}\"", format_bytes(align_up(size, ss)))),
            );
        }
        cursor = add(start, size);
        partitions.push(resolve_partition(
            board,
            section,
            number,
            start,
            size,
            &ids,
            &mut problems,
        ));
    }

    let layout = Layout {
        table,
        sector_size: ss,
        disk_size,
        alignment,
        mbr_signature,
        gpt,
        partitions,
        blobs,
    };
    check_layout(&layout, first_usable, last_usable_end, &mut problems);
    let (boot, firmware, qemu, edits) = resolve_build_settings(board, &mut problems);
    if let Some(message) = boot_loader_problem(boot.loader, &layout.partitions) {
        problems.push(Problem::error(message));
    }

    let warnings: Vec<String> = problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .map(|p| p.to_string())
        .collect();
    let errors: Vec<Problem> = problems
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        let map = render_map(&layout.regions(), &errors, ss);
        return Err(plan_error(board, errors, map));
    }

    let info = &file.board;
    Ok(Plan {
        board: BoardInfo {
            name: info.name.clone(),
            description: info.description.clone(),
            arch: info.arch,
            hostname: info.hostname.clone(),
            image: info.image.clone(),
            console: info.console.clone(),
            dir: board.dir.clone(),
        },
        seed: seed.to_string(),
        layout,
        boot,
        firmware,
        qemu,
        edits,
        warnings,
    })
}

/// The error for `errors`, numbered, followed by `map` (the disk map, or
/// nothing when planning stopped before a layout).
fn plan_error(board: &Board, errors: Vec<Problem>, map: String) -> PlanError {
    let mut details = String::new();
    for (i, problem) in errors.iter().enumerate() {
        details.push_str(&format!(
            "  {}. {}\n",
            i.saturating_add(1),
            problem.to_string().replace('\n', "\n  ")
        ));
    }
    details.push_str(&map);
    PlanError {
        board: board.path.display().to_string(),
        count: errors.len(),
        details,
        problems: errors,
    }
}

/// Defaults for the boot, firmware, QEMU and edit settings.
fn resolve_build_settings(
    board: &Board,
    problems: &mut Vec<Problem>,
) -> (BootPlan, Option<FirmwarePlan>, Option<QemuPlan>, EditsPlan) {
    let file = &board.file;
    let section = file.boot.clone();
    let boot = BootPlan {
        loader: section
            .as_ref()
            .and_then(|b| b.loader)
            .unwrap_or(BootLoader::Grub),
        grub: section
            .as_ref()
            .and_then(|b| b.grub)
            .unwrap_or(GrubMode::Template),
        grub_cfg: section
            .as_ref()
            .and_then(|b| b.grub_cfg.clone())
            .unwrap_or_else(|| "EFI/debian/grub.cfg".to_string()),
        mkconfig: section.as_ref().and_then(|b| b.mkconfig.clone()),
        cmdline: section
            .as_ref()
            .and_then(|b| b.cmdline.clone())
            .unwrap_or_default(),
        efi_files: file
            .efi_files
            .iter()
            .map(|f| (f.from.clone(), f.to.clone()))
            .collect(),
        fdtdir: section.as_ref().and_then(|b| b.fdtdir.clone()),
    };
    check_boot_strings(&boot, file.board.console.as_deref(), problems);
    let firmware = file.firmware.as_ref().and_then(|f| {
        let (code, load) = match (&f.code, &f.bios) {
            (Some(code), None) => (code, FirmwareLoad::Pflash),
            (None, Some(bios)) if f.vars.is_none() => (bios, FirmwareLoad::Bios),
            _ => {
                problems.push(
                    Problem::error(
                        "[firmware] needs exactly one of code (UEFI on pflash, with optional \
                         vars) and bios (an image for -bios, without vars)",
                    )
                    .with_fix("code = \"/usr/share/AAVMF/AAVMF_CODE.fd\" or bios = \"/usr/lib/u-boot/qemu_arm64/u-boot.bin\""),
                );
                return None;
            }
        };
        let mut firmware_path = |key: &str, text: &str| {
            resolve_board_path(&board.dir, text, Allowed::BoardDirOrFirmware)
                .map_err(|err| {
                    problems.push(Problem::error(format!("[firmware] {key}: {err}")).with_fix(
                        "name the distribution's firmware file (e.g. \
                         /usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd) or one in the board \
                         directory",
                    ));
                })
                .ok()
        };
        let key = match load {
            FirmwareLoad::Pflash => "code",
            FirmwareLoad::Bios => "bios",
        };
        let code = firmware_path(key, code);
        let vars = match &f.vars {
            Some(v) => Some(firmware_path("vars", v)?),
            None => None,
        };
        Some(FirmwarePlan {
            code: code?,
            vars,
            package: f.package.clone(),
            load,
        })
    });
    let qemu = file.qemu.as_ref().map(|q| QemuPlan {
        machine: q.machine.clone(),
        cpu: q.cpu.clone(),
        memory: q.memory.clone().unwrap_or_else(|| "2G".to_string()),
        smp: q.smp.unwrap_or(2),
        ssh_port: q.ssh_port.unwrap_or(2222),
        extra: q.extra.clone(),
    });
    let edits_section = file.edits.as_ref();
    let edits = EditsPlan {
        remove: edits_section
            .and_then(|e| e.remove.clone())
            .unwrap_or_else(|| vec!["/.dockerenv".to_string(), "/etc/resolv.conf".to_string()]),
        overlay: edits_section
            .and_then(|e| e.overlay.as_ref())
            .and_then(|o| {
                resolve_board_path(&board.dir, o, Allowed::BoardDir)
                    .map_err(|err| {
                        problems.push(
                            Problem::error(format!("[edits] overlay: {err}"))
                                .with_fix("keep the overlay tree inside the board directory"),
                        );
                    })
                    .ok()
            }),
    };
    (boot, firmware, qemu, edits)
}

/// The prefix of a blob source inside the rootfs.
pub const ROOTFS_PREFIX: &str = "rootfs:";

fn plan_blobs(board: &Board, problems: &mut Vec<Problem>) -> Vec<PlannedBlob> {
    let mut blobs = Vec::new();
    for section in &board.file.blobs {
        let who = format!("blob '{}'", section.name);
        let hint = section.hint.clone();
        let usually = hint
            .as_deref()
            .map(|h| format!("; it usually comes from {h}"))
            .unwrap_or_default();
        let room = section.size.as_ref().map(|s| s.get_ref().0);
        let magic = section
            .magic
            .as_deref()
            .and_then(|text| match parse_magic(text) {
                Some(bytes) => Some((section.magic_offset.unwrap_or(0), bytes)),
                None => {
                    problems.push(
                        Problem::error(format!("{who}: magic = {text:?} is empty or bad hex"))
                            .with_fix("magic = \"eGON.BT0\" (ASCII) or \"0xd00dfeed\" (hex bytes)"),
                    );
                    None
                }
            });
        let (source, size) = if let Some(path) = section.source.strip_prefix(ROOTFS_PREFIX) {
            if !path.starts_with('/') {
                problems.push(Problem::error(format!(
                    "{who}: source {:?} must name an absolute rootfs path",
                    section.source
                )));
            }
            if room.is_none() {
                problems.push(
                    Problem::error(format!(
                        "{who}: source {:?} has no size until the rootfs is read",
                        section.source
                    ))
                    .with_fix("set size = \"…\" on the blob: the room it may fill"),
                );
            }
            (BlobSource::Rootfs(path.to_string()), room.unwrap_or(0))
        } else {
            let allowed = source_allowed(board, &section.name);
            let path = match resolve_board_path(&board.dir, &section.source, allowed) {
                Ok(path) => path,
                Err(err) => {
                    problems.push(Problem::error(format!("{who}: source {err}")).with_fix(
                        format!(
                            "copy the file into the board directory, or pass --blob {}=PATH",
                            section.name
                        ),
                    ));
                    continue;
                }
            };
            let size = match (std::fs::metadata(&path), room) {
                (Ok(meta), Some(room)) if meta.len() > room => {
                    problems.push(
                        Problem::error(format!(
                            "{who}: {} is {} bytes, more than its room size = {room}",
                            path.display(),
                            meta.len()
                        ))
                        .with_fix(
                            "check the file, or grow the blob's size if the next region allows",
                        ),
                    );
                    room
                }
                (Ok(_), Some(room)) => room,
                (Ok(meta), None) => meta.len(),
                // The build fails on a missing file; the plan can still be shown.
                (Err(_), Some(room)) => {
                    problems.push(Problem::warning(format!(
                        "{who}: {} not found{usually}; `mkimg build` needs it (or --blob {}=PATH)",
                        path.display(),
                        section.name
                    )));
                    room
                }
                (Err(err), None) => {
                    problems.push(
                        Problem::error(format!(
                            "{who}: cannot read {}: {err}{usually}",
                            path.display()
                        ))
                        .with_fix(format!(
                            "put the file next to board.toml, pass --blob {}=PATH, or fix blob.source",
                            section.name
                        )),
                    );
                    0
                }
            };
            (BlobSource::File(path), size)
        };
        blobs.push(PlannedBlob {
            name: section.name.clone(),
            source,
            offset: section.offset.get_ref().0,
            size,
            hint,
            magic,
        });
    }
    blobs
}

/// Where the `source` of blob or raw partition `name` may lead: anywhere
/// when `--blob` gave it, else only inside the board directory.
fn source_allowed(board: &Board, name: &str) -> Allowed {
    if board.cli_sources.contains(name) {
        Allowed::Anywhere
    } else {
        Allowed::BoardDir
    }
}

/// `"eGON.BT0"` → its ASCII bytes; `"0xd00dfeed"` → d0 0d fe ed.
fn parse_magic(text: &str) -> Option<Vec<u8>> {
    let bytes = match text.strip_prefix("0x") {
        Some(hex) if hex.len() % 2 == 0 => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i.checked_add(2)?)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?,
        Some(_) => return None,
        None => text.as_bytes().to_vec(),
    };
    (!bytes.is_empty()).then_some(bytes)
}

fn resolve_partition(
    board: &Board,
    section: &PartitionSection,
    number: u32,
    start: u64,
    size: u64,
    ids: &IdentitySource,
    problems: &mut Vec<Problem>,
) -> PlannedPartition {
    let file = &board.file;
    let who = format!("partition {number} '{}'", section.name);
    let part_type = resolve_part_type(&section.type_, file.board.arch).unwrap_or_else(|msg| {
        problems.push(Problem::error(format!("{who}: {msg}")));
        PartType {
            gpt: None,
            mbr: None,
        }
    });
    let has_gpt = matches!(file.disk.table, TableKind::Gpt | TableKind::Hybrid);
    let uuid = if has_gpt {
        parse_uuid_field(section.uuid.as_deref(), &format!("{who}: uuid"), problems)
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
        };
    }
    let fs_kind = section.filesystem.unwrap_or(FilesystemKind::None);
    let label = section.label.clone();
    let filesystem = match fs_kind {
        FilesystemKind::Vfat => {
            if !part_type.is_fat() {
                problems.push(Problem::warning(format!(
                    "{who}: vfat on partition type {:?}, which firmware does not expect to be FAT",
                    section.type_
                )));
            }
            if let Some(label) = &label {
                if label.len() > 11 || !label.is_ascii() {
                    problems.push(
                        Problem::error(format!(
                            "{who}: vfat label {label:?} is longer than 11 ASCII characters"
                        ))
                        .with_fix(format!(
                            "label = {:?}",
                            label.chars().take(11).collect::<String>()
                        )),
                    );
                }
            }
            let volume_id = parse_u32_field(
                section.fs_uuid.as_deref(),
                &format!("{who}: fs_uuid"),
                problems,
            )
            .unwrap_or_else(|| ids.u32(&format!("vfat:{}", section.name)));
            PlannedFs::Vfat { label, volume_id }
        }
        FilesystemKind::Ext4 => {
            if part_type.gpt == Some(ESP) {
                problems.push(Problem::warning(format!(
                    "{who}: ext4 on an EFI System Partition"
                )));
            }
            if let Some(label) = &label {
                if label.len() > 16 {
                    problems.push(Problem::error(format!(
                        "{who}: ext4 label {label:?} is longer than 16 bytes"
                    )));
                }
            }
            let uuid = parse_uuid_field(
                section.fs_uuid.as_deref(),
                &format!("{who}: fs_uuid"),
                problems,
            )
            .unwrap_or_else(|| ids.uuid(&format!("ext4:{}", section.name)));
            PlannedFs::Ext4 {
                label,
                uuid,
                hash_seed: ids.uuid(&format!("ext4-hash-seed:{}", section.name)),
            }
        }
        FilesystemKind::Raw => match &section.source {
            Some(source) => {
                match resolve_board_path(&board.dir, source, source_allowed(board, &section.name)) {
                    Ok(source) => PlannedFs::Raw { source },
                    Err(err) => {
                        problems.push(Problem::error(format!("{who}: source {err}")).with_fix(
                            format!(
                                "copy the file into the board directory, or pass --blob {}=PATH",
                                section.name
                            ),
                        ));
                        PlannedFs::None
                    }
                }
            }
            None => {
                problems.push(
                    Problem::error(format!(
                        "{who}: filesystem = \"raw\" needs source = \"FILE\""
                    ))
                    .with_fix("source = \"env.bin\" (relative to board.toml)"),
                );
                PlannedFs::None
            }
        },
        FilesystemKind::None => PlannedFs::None,
    };
    if section.source.is_some() && fs_kind != FilesystemKind::Raw {
        problems.push(Problem::error(format!(
            "{who}: source is only used with filesystem = \"raw\""
        )));
    }
    let mount = section.mount.as_ref().map(|path| MountSpec {
        path: path.clone(),
        options: section
            .mount_options
            .clone()
            .unwrap_or_else(|| "defaults".to_string()),
        pass: if path == "/" { 1 } else { 2 },
    });
    if let Some(mount) = &mount {
        if let Err(why) = check_mount_path(&mount.path) {
            problems.push(
                Problem::error(format!("{who}: mount = {:?} {why}", mount.path))
                    .with_fix("mount = \"/boot/efi\" (an absolute path of plain names)"),
            );
        }
        if let Err(why) = check_fstab_field(&mount.options) {
            problems.push(
                Problem::error(format!("{who}: mount_options = {:?} {why}", mount.options))
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
    }
}

fn check_layout(layout: &Layout, first_usable: u64, usable_end: u64, problems: &mut Vec<Problem>) {
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

fn parse_uuid_field(text: Option<&str>, what: &str, problems: &mut Vec<Problem>) -> Option<Uuid> {
    let text = text?;
    match Uuid::parse_str(text) {
        Ok(uuid) if text.len() == 36 => Some(uuid),
        _ => {
            problems.push(
                Problem::error(format!("{what} = {text:?} is not a UUID"))
                    .with_fix("write 8-4-4-4-12 hex digits, e.g. \"78662d6f-706f-6570-6f72-742d726f6f74\", or drop it to derive one from the seed"),
            );
            None
        }
    }
}

fn parse_u32_field(text: Option<&str>, what: &str, problems: &mut Vec<Problem>) -> Option<u32> {
    let text = text?;
    let parsed = text
        .strip_prefix("0x")
        .and_then(|hex| {
            if hex.len() == 8 {
                u32::from_str_radix(hex, 16).ok()
            } else {
                None
            }
        })
        .or_else(|| {
            // vfat volume ids are often written 0045-5350.
            let (hi, lo) = text.split_once('-')?;
            if hi.len() == 4 && lo.len() == 4 {
                Some(u32::from_str_radix(hi, 16).ok()? << 16 | u32::from_str_radix(lo, 16).ok()?)
            } else {
                None
            }
        });
    if parsed.is_none() {
        problems.push(
            Problem::error(format!("{what} = {text:?} is not a 32-bit id"))
                .with_fix("write eight hex digits such as \"0x00455350\" or \"0045-5350\""),
        );
    }
    parsed
}

/// A mount point lands in fstab (whitespace-separated fields) and names a
/// directory of the rootfs: absolute, plain components, nothing that fstab
/// would split or escape.
fn check_mount_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".to_string());
    }
    check_fstab_field(path)?;
    if path
        .split('/')
        .skip(1)
        .any(|c| c == "." || c == ".." || (c.is_empty() && path != "/"))
    {
        return Err("must not contain '.', '..' or empty components".to_string());
    }
    Ok(())
}

/// One fstab field: no whitespace (fstab's separator), no control
/// characters, no `#` (a comment) and no `\\` (fstab's octal escapes).
fn check_fstab_field(text: &str) -> Result<(), String> {
    match text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '#' || *c == '\\')
    {
        _ if text.is_empty() => Err("is empty".to_string()),
        Some(c) => Err(format!(
            "contains {c:?}, which would break its line in /etc/fstab"
        )),
        None => Ok(()),
    }
}

/// Board strings that land in grub.cfg and extlinux.conf: kernel
/// arguments are whitespace-separated words (extlinux has no quoting, so
/// no control characters), and ESP paths are relative paths of plain
/// components (never `..`: they name files inside the ESP).
fn check_boot_strings(boot: &BootPlan, console: Option<&str>, problems: &mut Vec<Problem>) {
    let control = |text: &str| text.chars().find(|c| c.is_control() && *c != ' ');
    for (key, text) in [
        ("boot.cmdline", Some(boot.cmdline.as_str())),
        ("board.console", console),
    ] {
        let Some(text) = text else { continue };
        let bad = if key == "board.console" {
            text.chars().find(|c| c.is_whitespace() || c.is_control())
        } else {
            control(text)
        };
        if let Some(c) = bad {
            problems.push(
                Problem::error(format!(
                    "{key} = {text:?} contains {c:?}; kernel arguments are written into the boot \
                     loader's configuration"
                ))
                .with_fix("kernel arguments separated by single spaces, e.g. \"console=ttyS0,115200 quiet\""),
            );
        }
    }
    let esp_paths = std::iter::once(("boot.grub_cfg", boot.grub_cfg.as_str())).chain(
        boot.efi_files
            .iter()
            .map(|(_, to)| ("efi_file.to", to.as_str())),
    );
    for (key, path) in esp_paths {
        let plain = !path.is_empty()
            && path.trim_start_matches('/').split('/').all(|c| {
                !c.is_empty()
                    && c != "."
                    && c != ".."
                    && !c.chars().any(|ch| ch.is_control() || ch == '\\')
            });
        if !plain {
            problems.push(
                Problem::error(format!(
                    "{key} = {path:?} must be a path inside the ESP (plain names, no '..')"
                ))
                .with_fix("e.g. \"EFI/BOOT/BOOTRISCV64.EFI\""),
            );
        }
    }
    if let Some(fdtdir) = &boot.fdtdir {
        if let Some(c) = fdtdir.chars().find(|c| c.is_whitespace() || c.is_control()) {
            problems.push(
                Problem::error(format!(
                    "boot.fdtdir = {fdtdir:?} contains {c:?}; it is one word of extlinux.conf"
                ))
                .with_fix("boot.fdtdir = \"/usr/lib/linux-image-{version}\""),
            );
        }
    }
}
