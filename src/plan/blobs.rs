//! Raw blobs outside the partition table (boot-ROM loaders such as
//! Rockchip's idbloader.img or Allwinner's boot0): where their bytes come
//! from (a host file next to the board, a `--blob` file, or `rootfs:/path`
//! read during the rootfs pass), the room each takes, and the magic bytes
//! the file must hold.
//!
//! The one I/O of the planner is here: the size of a host blob file.

use toml::Spanned;

use crate::board::paths::{resolve_board_path, Allowed};
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
