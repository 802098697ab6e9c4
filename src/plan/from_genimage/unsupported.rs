//! The genimage options mkimg cannot honour yet, refused in one place:
//! each one changes the layout or the bytes, so ignoring it would build a
//! different image than genimage does. Each line of [`refusals`] is one
//! option; when board.toml learns it, its line goes and the mapper
//! (`emit`) writes the board key instead.

use crate::genimage::model::{Hdimage, ImageKind};
use crate::genimage::{Image, Origin};

/// A refused option: where it is written and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at: Origin,
    pub option: String,
}

/// Every option of `image` (an hdimage) and of the images its partitions
/// use that mkimg refuses, in the order written.
pub fn refusals(image: &Image, hd: &Hdimage, used: &[&Image]) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut refuse = |at: &Origin, option: &str| {
        out.push(Refusal {
            at: at.clone(),
            option: option.to_string(),
        })
    };
    if hd.gpt_no_backup {
        refuse(
            hd.table_at.as_ref().unwrap_or(&image.file.at),
            "gpt-no-backup",
        );
    }
    for part in &image.partitions {
        if !part.in_partition_table {
            refuse(&part.at, "in-partition-table = false");
        }
        if part.autoresize {
            refuse(&part.at, "autoresize");
        }
        if part.forced_primary {
            refuse(&part.at, "forced-primary");
        }
        if part.hidden {
            refuse(&part.at, "hidden (GPT attribute bit 62)");
        }
        if let Some(hole) = part.holes.first() {
            refuse(&hole.at, "holes");
        }
    }
    for sub in used {
        if let ImageKind::File(file) = &sub.kind {
            if let Some(hole) = file.holes.first() {
                refuse(&hole.at, "holes");
            }
        }
    }
    out
}
