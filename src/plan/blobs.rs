//! Raw blobs outside the partition table (boot-ROM loaders such as
//! Rockchip's idbloader.img or Allwinner's boot0): where their bytes come
//! from (a host file next to the board, a `--blob` file, or `rootfs:/path`
//! read during the rootfs pass), the room each takes, and the magic bytes
//! the file must hold.
//!
//! The one I/O of the planner is here: the size of a host blob file.

use crate::board::paths::{resolve_board_path, Allowed};
use crate::board::Board;
use crate::plan::layout::Problem;
use crate::plan::{BlobSource, PlannedBlob};

/// The prefix of a blob source inside the rootfs.
pub const ROOTFS_PREFIX: &str = "rootfs:";

pub fn plan_blobs(board: &Board, problems: &mut Vec<Problem>) -> Vec<PlannedBlob> {
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
