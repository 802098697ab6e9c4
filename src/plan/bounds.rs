//! The first check of the planner: every size and offset the board gives
//! lies within the disk, and the disk within [`MAX_DISK_SIZE`]. A value
//! beyond the disk is reported with the `file:line:column` of its key, and
//! planning stops there.
//!
//! This is what keeps the rest of the planner's arithmetic in range: with
//! every input at most 2^60, a sum of a few of them, or a product with a
//! sector size or GPT entry count, stays far below 2^64. The planner still
//! does that arithmetic through `arith::add` and `arith::mul`, which check instead of
//! wrapping (`#![deny(clippy::arithmetic_side_effects)]` holds `plan/` to
//! that); their panic names the broken invariant, and the planner fuzz
//! target hunts for it. Pure: no I/O.

use toml::Spanned;

use crate::board::size::{format_bytes, PartSize, Size};
use crate::board::Board;
use crate::plan::layout::Problem;

/// The largest disk mkimg plans: 1 EiB.
pub const MAX_DISK_SIZE: u64 = 1 << 60;

/// Every board size and offset within the disk (and the disk within
/// [`MAX_DISK_SIZE`]); one problem per value that is not, citing its key.
pub fn check_bounds(board: &Board) -> Vec<Problem> {
    let file = &board.file;
    let mut problems = Vec::new();
    let disk = *file.disk.size.get_ref();
    if disk.0 > MAX_DISK_SIZE {
        problems.push(
            Problem::error(format!(
                "disk.size = {} bytes is larger than mkimg's limit of {} (1 EiB)",
                disk.0,
                format_bytes(MAX_DISK_SIZE)
            ))
            .at(board.locate(file.disk.size.span()))
            .with_fix("disk.size = \"10G\""),
        );
        return problems;
    }
    // (key, value, where it is written)
    let mut values: Vec<(String, u64, std::ops::Range<usize>)> = Vec::new();
    let size = |key: String, value: &Spanned<Size>| (key, value.get_ref().0, value.span());
    if let Some(a) = &file.disk.alignment {
        values.push(size("disk.alignment".to_string(), a));
    }
    if let Some(o) = &file.disk.gpt_entries_offset {
        values.push(size("disk.gpt_entries_offset".to_string(), o));
    }
    for (i, part) in file.partitions.iter().enumerate() {
        let part = part.get_ref();
        let who = format!("partition {} '{}'", i.saturating_add(1), part.name);
        if let Some(o) = &part.offset {
            values.push(size(format!("{who}: offset"), o));
        }
        if let PartSize::Fixed(fixed) = part.size.get_ref() {
            values.push((format!("{who}: size"), fixed.0, part.size.span()));
        }
        if let Some(a) = &part.alignment {
            values.push(size(format!("{who}: alignment"), a));
        }
        for hole in &part.holes {
            values.push((
                format!("{who}: hole end"),
                hole.get_ref().end.0,
                hole.span(),
            ));
        }
    }
    for blob in &file.blobs {
        let blob = blob.get_ref();
        let who = format!("blob '{}'", blob.name);
        values.push(size(format!("{who}: offset"), &blob.offset));
        if let Some(room) = &blob.size {
            values.push(size(format!("{who}: size"), room));
        }
        for hole in &blob.holes {
            values.push((
                format!("{who}: hole end"),
                hole.get_ref().end.0,
                hole.span(),
            ));
        }
        if let Some(magic) = &blob.magic_offset {
            values.push((
                format!("{who}: magic_offset"),
                *magic.get_ref(),
                magic.span(),
            ));
        }
    }
    for (key, value, span) in values {
        if value > disk.0 {
            problems.push(
                Problem::error(format!(
                    "{key} = {value:#x} is beyond the end of the {} disk ({} bytes)",
                    format_bytes(disk.0),
                    disk.0
                ))
                .at(board.locate(span))
                .with_fix(format!(
                    "keep {key} within disk.size, or grow disk.size (now \"{}\")",
                    format_bytes(disk.0)
                )),
            );
        }
    }
    problems
}
