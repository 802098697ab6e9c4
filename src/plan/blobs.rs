//! Raw blobs outside the partition table (boot-ROM loaders such as
//! Rockchip's idbloader.img or Allwinner's boot0): where their bytes come
//! from (a host file next to the board, a `--blob` file, or `rootfs:/path`
//! read during the rootfs pass), the room each takes, and the magic bytes
//! the file must hold.
//!
//! `[[partition]]`s with `in_partition_table = false` become blobs here
//! too (`plan_unlisted`), so the overlap checks and the assembler treat
//! them alike; `holes` (genimage's) are the ranges of a blob that hold
//! nothing, where a table structure may lie.
//!
//! The one I/O of the planner is here: the size of a host blob file.

use toml::Spanned;

use crate::board::paths::{resolve_board_path, Allowed};
use crate::board::schema::{FilesystemKind, Hole};
use crate::board::size::PartSize;
use crate::board::{Board, Location};
use crate::plan::layout::Problem;
use crate::plan::{BlobSource, PlannedBlob};

/// The prefix of a blob source inside the rootfs.
pub const ROOTFS_PREFIX: &str = "rootfs:";

/// Every `[[blob]]`: its source, region and magic. A blob whose host file
/// cannot be named is left out (its problem is reported).
pub fn plan_blobs(board: &Board, problems: &mut Vec<Problem>) -> Vec<PlannedBlob> {
    let mut blobs = Vec::new();
    for spanned in &board.file.blobs {
        let section = spanned.get_ref();
        let who = format!("blob '{}'", section.name);
        let hint = section.hint.clone();
        let usually = hint
            .as_deref()
            .map(|h| format!("; it usually comes from {h}"))
            .unwrap_or_default();
        let room = section.size.as_ref().map(|s| s.get_ref().0);
        // Where the file's problems are written: its room, else its source.
        let source_at = source_location(board, &section.name, &section.source);
        let magic = section.magic.as_ref().and_then(|text| {
            let magic_offset = section.magic_offset.as_ref().map_or(0, |o| *o.get_ref());
            match parse_magic(text.get_ref()) {
                Some(bytes) => Some((magic_offset, bytes)),
                None => {
                    problems.push(
                        Problem::error(format!(
                            "{who}: magic = {:?} is empty or bad hex",
                            text.get_ref()
                        ))
                        .at(board.locate(text.span()))
                        .with_fix("magic = \"eGON.BT0\" (ASCII) or \"0xd00dfeed\" (hex bytes)"),
                    );
                    None
                }
            }
        });
        let source_text = section.source.get_ref();
        let (source, size) = if let Some(path) = source_text.strip_prefix(ROOTFS_PREFIX) {
            if !path.starts_with('/') {
                problems.push(
                    Problem::error(format!(
                        "{who}: source {source_text:?} must name an absolute rootfs path"
                    ))
                    .at(source_at.clone())
                    .with_fix(
                        "source = \"rootfs:/usr/lib/u-boot/BOARD/u-boot-sunxi-with-spl.bin\"",
                    ),
                );
            }
            if room.is_none() {
                problems.push(
                    Problem::error(format!(
                        "{who}: source {source_text:?} has no size until the rootfs is read"
                    ))
                    .at(source_at)
                    .with_fix("set size = \"…\" on the blob: the room it may fill"),
                );
            }
            (BlobSource::Rootfs(path.to_string()), room.unwrap_or(0))
        } else {
            let allowed = source_allowed(board, &section.name);
            let path = match resolve_board_path(&board.dir, source_text, allowed) {
                Ok(path) => path,
                Err(err) => {
                    problems.push(
                        Problem::error(format!("{who}: source {err}"))
                            .at(source_at)
                            .with_fix(format!(
                                "copy the file into the board directory, or pass --blob {}=PATH",
                                section.name
                            )),
                    );
                    continue;
                }
            };
            let size = match (std::fs::metadata(&path), &section.size) {
                (Ok(meta), Some(written)) if meta.len() > written.get_ref().0 => {
                    problems.push(
                        Problem::error(format!(
                            "{who}: {} is {} bytes, more than its room size = {}",
                            path.display(),
                            meta.len(),
                            written.get_ref().0
                        ))
                        .at(board.locate(written.span()))
                        .with_fix(
                            "check the file, or grow the blob's size if the next region allows",
                        ),
                    );
                    written.get_ref().0
                }
                (Ok(_), Some(written)) => written.get_ref().0,
                (Ok(meta), None) => meta.len(),
                // The build fails on a missing file; the plan can still be shown.
                (Err(_), Some(written)) => {
                    problems.push(
                        Problem::warning(format!(
                            "{who}: {} not found{usually}; `mkimg build` needs it (or --blob {}=PATH)",
                            path.display(),
                            section.name
                        ))
                        .at(source_at),
                    );
                    written.get_ref().0
                }
                (Err(err), None) => {
                    problems.push(
                        Problem::error(format!(
                            "{who}: cannot read {}: {err}{usually}",
                            path.display()
                        ))
                        .at(source_at)
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
        let holes = plan_holes(board, &who, &section.holes, size, problems);
        blobs.push(PlannedBlob {
            name: section.name.clone(),
            source,
            offset: section.offset.get_ref().0,
            size,
            hint,
            magic,
            holes,
        });
    }
    blobs
}

/// The `[[partition]]`s with `in_partition_table = false`, as blobs: their
/// bytes at their offset (a raw `source`, or nothing), no table entry, no
/// number. They need an explicit `offset` and a fixed `size`, and take
/// none of the keys that only a table entry or a filesystem gives meaning.
pub fn plan_unlisted(board: &Board, problems: &mut Vec<Problem>) -> Vec<PlannedBlob> {
    let mut blobs = Vec::new();
    for spanned in &board.file.partitions {
        let section = spanned.get_ref();
        if section.in_table() {
            continue;
        }
        let who = format!("partition '{}' (in_partition_table = false)", section.name);
        let header = board.locate(spanned.span());
        let Some(offset) = &section.offset else {
            problems.push(
                Problem::error(format!(
                    "{who} needs an explicit offset: it is placed like a blob"
                ))
                .at(header)
                .with_fix("offset = \"0\" (or where its bytes go)"),
            );
            continue;
        };
        let PartSize::Fixed(size) = *section.size.get_ref() else {
            problems.push(
                Problem::error(format!("{who}: size = \"rest\" needs a table entry"))
                    .at(board.locate(section.size.span()))
                    .with_fix("give it a fixed size"),
            );
            continue;
        };
        let meaningless = [
            ("uuid", section.uuid.is_some()),
            ("flags", !section.flags.is_empty()),
            ("mount", section.mount.is_some()),
            ("mount_options", section.mount_options.is_some()),
            ("label", section.label.is_some()),
            ("fs_uuid", section.fs_uuid.is_some()),
            ("forced_primary", section.forced_primary.is_some()),
        ];
        for (key, _) in meaningless.iter().filter(|(_, present)| *present) {
            problems.push(
                Problem::error(format!("{who}: {key} needs a table entry or a filesystem"))
                    .at(header.clone())
                    .with_fix(format!("remove {key}, or drop in_partition_table = false")),
            );
        }
        let source = match (section.filesystem, &section.source) {
            (Some(FilesystemKind::Raw), Some(source)) => {
                let allowed = source_allowed(board, &section.name);
                match resolve_board_path(&board.dir, source.get_ref(), allowed) {
                    Ok(path) => BlobSource::File(path),
                    Err(err) => {
                        problems.push(
                            Problem::error(format!("{who}: source {err}"))
                                .at(source_location(board, &section.name, source))
                                .with_fix(format!(
                                    "copy the file into the board directory, or pass --blob {}=PATH",
                                    section.name
                                )),
                        );
                        continue;
                    }
                }
            }
            (None | Some(FilesystemKind::None), None) => BlobSource::Reserved,
            _ => {
                problems.push(
                    Problem::error(format!(
                        "{who}: its contents are a raw file (filesystem = \"raw\" with source) \
                         or nothing; a filesystem needs a table entry"
                    ))
                    .at(header)
                    .with_fix("filesystem = \"raw\" with source = \"FILE\", or drop in_partition_table = false"),
                );
                continue;
            }
        };
        if let BlobSource::File(path) = &source {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.len() > size.0 {
                    problems.push(
                        Problem::error(format!(
                            "{who}: {} is {} bytes, more than its size = {}",
                            path.display(),
                            meta.len(),
                            size.0
                        ))
                        .at(board.locate(section.size.span()))
                        .with_fix("check the file, or grow the partition's size"),
                    );
                }
            }
        }
        let holes = plan_holes(board, &who, &section.holes, size.0, problems);
        blobs.push(PlannedBlob {
            name: section.name.clone(),
            source,
            offset: offset.get_ref().0,
            size: size.0,
            hint: None,
            magic: None,
            holes,
        });
    }
    blobs
}

/// A blob's `holes` as sorted `[start, end)` ranges inside `[0, size)`;
/// an empty, reversed, outside or overlapping hole is a problem.
fn plan_holes(
    board: &Board,
    who: &str,
    holes: &[Spanned<Hole>],
    size: u64,
    problems: &mut Vec<Problem>,
) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64, Location)> = Vec::new();
    for hole in holes {
        let Hole { start, end } = *hole.get_ref();
        let at = board.locate(hole.span());
        if start.0 >= end.0 || end.0 > size {
            problems.push(
                Problem::error(format!(
                    "{who}: hole {{ start = {}, end = {} }} must be a non-empty range inside \
                     its {size} bytes",
                    start.0, end.0
                ))
                .at(at)
                .with_fix(
                    "holes = [{ start = \"440\", end = \"512\" }] (bytes from the blob's start)",
                ),
            );
            continue;
        }
        ranges.push((start.0, end.0, at));
    }
    ranges.sort_by_key(|r| (r.0, r.1));
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, end, at) in ranges {
        if let Some(last) = out.last().filter(|last| start < last.1) {
            problems.push(
                Problem::error(format!(
                    "{who}: holes {:#x}..{:#x} and {start:#x}..{end:#x} overlap",
                    last.0, last.1
                ))
                .at(at)
                .with_fix("merge them into one hole"),
            );
            continue;
        }
        out.push((start, end));
    }
    out
}

/// Where a problem with the `source` of blob or raw partition `name` is
/// cited: its line in the board file, or nowhere when `--blob` gave it
/// (the message names `--blob`'s path).
pub fn source_location(board: &Board, name: &str, source: &Spanned<String>) -> Option<Location> {
    (!board.cli_sources.contains(name)).then(|| board.locate(source.span()))
}

/// Where the `source` of blob or raw partition `name` may lead: anywhere
/// when `--blob` gave it, else only inside the board directory.
pub fn source_allowed(board: &Board, name: &str) -> Allowed {
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
