//! A genimage.cfg `hdimage` → a generated board.toml → mkimg's own plan.
//!
//! The hdimage is written out as board.toml text ([`emit`], one partition
//! at a time in [`partition`], each line remembering its genimage line in
//! [`board_text`]): the text `mkimg import-genimage` prints, with a
//! `# comment` for every option that has no board.toml key because it
//! changes nothing, and a problem for what mkimg cannot honour. That text
//! is parsed and planned by [`plan_board`] like any board, so every layout
//! check (overlaps, past the end, misaligned offsets, a table under a
//! partition, more than four primaries, …) is the planner's own; each
//! problem's `board.toml` line is then mapped back to the genimage
//! `file:line` it came from, and the conflict map is kept.
//!
//! What genimage 16 does, measured against genimage 16 (Debian 12) and
//! reproduced here ([`place`] holds the arithmetic):
//! - `align` defaults to 512 bytes with a table, 1 byte without one
//!   (`partition-table-type = none`: partitions follow each other
//!   unaligned); it must be a multiple of 512 with a table.
//! - The first partition starts at the first aligned byte after the MBR
//!   (byte 512), after the GPT entry array (`gpt-location`, default byte
//!   1024, plus 16 KiB), or at byte 0 without a table; each next one at the
//!   first aligned byte after the furthest end so far (not the previous
//!   partition's). `offset = 0` means "not given". A logical partition
//!   first leaves one hdimage `align` for its EBR, which stays one hdimage
//!   `align` before it even when the partition has an `align` of its own.
//!   A partition's own `align` aligns its start and its size.
//! - `in-partition-table = false` (board: `in_partition_table = false`):
//!   no entry, no number; `align` defaults to 1, the size is its image's,
//!   unrounded, and without `offset` it sits at byte 0 (a boot loader). It
//!   needs an image ("no input file given"). Its end counts for the next
//!   automatic offset. Without a table every partition is placed like a
//!   table one. `holes` (the partition's, or its `file` section's) become
//!   the board's `holes`, cut at the end of its bytes (genimage allows them
//!   past it; they only free its overlap checks there).
//! - A partition without `size` is its image's size rounded up to its
//!   alignment (an image section's `size`, or the input file's length).
//!   An image larger than its partition is an error. `autoresize` is
//!   `size = "rest"`: the image's `size` less the backup GPT's 33 sectors
//!   (reserved even with `gpt-no-backup`), from the partition's start,
//!   rounded down to its align, at least its `size` and image.
//! - The disk: `size`, else the partitions' end; with a GPT, plus the
//!   backup GPT (16.5 KiB), rounded up to 4 KiB.
//! - The file genimage writes ends at the last byte it wrote (the MBR,
//!   GPT, EBRs, each partition's image — its own length, not the
//!   partition's), unless `fill = true` or a backup GPT (at the very end):
//!   then it is the whole disk. The board says it with `disk.fill`
//!   (always written), and the disk writer ends the raw file there: one
//!   mechanism for boards and genimage configs. `gpt-no-backup` is
//!   `disk.gpt_backup = false`.
//! - Defaults: MBR partition type 0x00 (not 0x83), GPT type Linux
//!   filesystem (`L`), disk signature 0; `disk-uuid` and partition UUIDs
//!   are random in genimage and derived from the seed here (pin them for
//!   identical bytes). Type 0x00 marks an unused MBR slot: fdisk calls it
//!   "Empty", U-Boot's `part_dos` skips it, and mkimg's MBR reader (and
//!   `inspect`) takes a trailing one for a free slot and refuses one
//!   before a used slot, so a board could state it but not read it back.
//!   An MBR partition without `partition-type` is refused with the fix,
//!   not written as a partition most readers do not see.
//! - `bootable`: the MBR active flag, GPT attribute bit 2 (legacy BIOS
//!   bootable), both in a hybrid; on the first logical partition it makes
//!   the MBR's extended entry active (`disk.extended_bootable`), on the
//!   other logical ones it is dropped. `read-only`, `hidden` and
//!   `no-automount` are GPT attribute bits 60, 62 and 63 (ignored, as by
//!   genimage, on an MBR). `forced-primary` (genimage 17) is
//!   `forced_primary = true`.
//! - The GPT's first usable LBA is the first table partition's start
//!   (mkimg's board plan keeps it right after the entry array or the boot
//!   loaders before the first partition; the plan of a genimage hdimage
//!   takes genimage's, see [`plan_hdimage`]).
//! - Hybrid: the MBR mirrors the partitions that have a `partition-type`
//!   (1 to 3, else an error), then a 0xEE entry over LBA 1 to the end of
//!   the GPT entry array (mkimg's runs to the first mirrored partition:
//!   refused unless that is the same).
//! - More than four table partitions in an MBR: partitions 4, 5, … are
//!   logical (`extended-partition` picks another first one); the extended
//!   partition runs to the end of the disk.
//! - `partition-type` is refused with a GPT or no table,
//!   `partition-type-uuid` with an MBR or no table.
//!
//! The generated board: name and image are the image's file name (a
//! [`PlainName`](crate::board::names::PlainName)), the arch is fixed
//! ([`emit::ARCH`], why it does not matter is said there), `[boot] loader =
//! "none"`. A partition's `image` is a raw source ([`content`]): an input
//! file resolved inside `--inputpath` (`genimage::paths`, no symlink out of
//! it), or another image section's output file (`<outputpath>/<file>`,
//! `<tmppath>/<file>` when `temporary`, a `file` image's input). The board
//! may take raw sources only inside those three directories
//! (`Board::source_roots`). Reads file sizes only.

mod board_text;
mod content;
mod emit;
mod partition;
mod place;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::board::{parse_board, Board, BootOverride, Location};
use crate::genimage::model::{ExtKind, ImageKind};
use crate::genimage::{Config, Image, Origin};
use crate::plan::layout::Problem;
use crate::plan::{plan_board, Plan, PlanError};

pub use emit::ARCH;

/// genimage's `--inputpath`, `--outputpath` and `--tmppath`, absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub inputpath: PathBuf,
    pub outputpath: PathBuf,
    pub tmppath: PathBuf,
}

/// An hdimage as a board.toml, and what genimage derives beside it.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The image's file name.
    pub name: String,
    /// The board.toml text.
    pub text: String,
    /// The genimage.cfg `file:line` of each line of `text`.
    origins: Vec<Origin>,
    source_roots: Vec<PathBuf>,
    /// GPT: genimage's first usable byte (the first partition's start).
    pub first_usable: Option<u64>,
    /// How long genimage's file is; None while an image it holds is not
    /// built and has no size in the config.
    pub file_len: Option<u64>,
    pub disk_size: u64,
}

/// A planned hdimage.
#[derive(Debug, Clone)]
pub struct GenimagePlan {
    pub plan: Plan,
    pub mapped: Mapped,
}

/// `file:line` of a genimage value, as a plan location.
pub(crate) fn loc(at: &Origin) -> Location {
    Location {
        path: PathBuf::from(&*at.file),
        line: at.line as usize,
        column: 0,
    }
}

/// Where an image section's file is written: `<tmppath>/<file>` when
/// `temporary`, else `<outputpath>/<file>`. The name must be one plain
/// path component: it is a file mkimg creates.
pub fn image_output_path(image: &Image, dirs: &Dirs) -> Result<PathBuf, String> {
    let name = image.file.value.as_str();
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(format!(
            "image '{name}': an image's name is the file written, one plain name \
             without '/' (mkimg writes only directly inside the output and tmp paths)"
        ));
    }
    let dir = if image.temporary {
        &dirs.tmppath
    } else {
        &dirs.outputpath
    };
    Ok(dir.join(name))
}

/// One line on what an image section is, for the board's comments and
/// `mkimg plan --genimage`.
pub fn describe_image(image: &Image) -> String {
    let size = match image.size.as_ref().map(|s| s.value) {
        Some(crate::genimage::values::ImageSize::Bytes(n)) => {
            format!(", {}", crate::board::size::format_bytes(n))
        }
        Some(crate::genimage::values::ImageSize::Percent(p)) => format!(", {p}% of its contents"),
        None => String::new(),
    };
    let what = match &image.kind {
        ImageKind::Hdimage(_) => format!("hdimage of {} partitions", image.partitions.len()),
        ImageKind::Vfat(v) => {
            let mut files: Vec<&str> = v.files.iter().map(|f| f.value.as_str()).collect();
            files.extend(v.file_entries.iter().map(|f| f.name.value.as_str()));
            format!(
                "vfat{} with {}",
                v.label
                    .as_ref()
                    .map(|l| format!(" '{}'", l.value))
                    .unwrap_or_default(),
                if files.is_empty() {
                    "the root path's files".to_string()
                } else {
                    format!("files {}", files.join(", "))
                }
            )
        }
        ImageKind::Ext(e) => format!(
            "{} from {}",
            match e.kind {
                ExtKind::Ext2 => "ext2",
                ExtKind::Ext3 => "ext3",
                ExtKind::Ext4 => "ext4",
            },
            image.mountpoint.as_ref().map_or_else(
                || "the root path".to_string(),
                |m| format!("the root path's {}", m.value)
            )
        ),
        ImageKind::File(_) => "an input file".to_string(),
        ImageKind::Squashfs(_) => format!(
            "squashfs from {}",
            image.mountpoint.as_ref().map_or_else(
                || "the root path".to_string(),
                |m| format!("the root path's {}", m.value)
            )
        ),
    };
    format!(
        "image '{}' ({}): {what}{size}{}; a native board builds it from the rootfs instead \
         (filesystem and mount on the partition)",
        image.file.value,
        image.file.at,
        if image.temporary { ", temporary" } else { "" }
    )
}

/// `config.images[index]` (an hdimage) as a board.toml: what
/// `mkimg import-genimage` prints. `built` maps the images built so far to
/// their files (their real sizes); `cfg_name` is shown in the header.
pub fn import_hdimage(
    config: &Config,
    index: usize,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
    cfg_name: &Path,
) -> Result<Mapped, PlanError> {
    let image = &config.images[index];
    emit::map_hdimage(config, index, dirs, built, cfg_name).map_err(|problems| {
        PlanError::new(
            format!("genimage image {}", image.file.value),
            problems,
            String::new(),
        )
    })
}

/// Plan `config.images[index]` (an hdimage) with mkimg's planner, every
/// problem cited at its genimage `file:line`.
pub fn plan_hdimage(
    config: &Config,
    index: usize,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
    cfg_name: &Path,
    seed: &str,
) -> Result<GenimagePlan, PlanError> {
    let mapped = import_hdimage(config, index, dirs, built, cfg_name)?;
    let who = format!("genimage image {}", mapped.name);
    let path = PathBuf::from(format!("{}.board.toml", mapped.name));
    let file = parse_board(&mapped.text, &path).map_err(|err| {
        // The mapper writes only what the schema takes: a bug if not.
        PlanError::new(
            who.clone(),
            vec![
                Problem::error(format!("the generated board.toml does not parse: {err}"))
                    .at(loc(&config.images[index].file.at)),
            ],
            String::new(),
        )
    })?;
    let board = Board {
        file,
        path: path.clone(),
        dir: dirs.inputpath.clone(),
        cli_sources: Default::default(),
        text: mapped.text.clone(),
        cli_boot: BootOverride::default(),
        source_roots: mapped.source_roots.clone(),
    };
    let mut plan = plan_board(&board, seed).map_err(|err| {
        let problems = err
            .problems
            .into_iter()
            .map(|mut p| {
                p.location = Some(match p.location.take() {
                    Some(l) if l.path == path => {
                        mapped.origins.get(l.line.saturating_sub(1)).map_or(l, loc)
                    }
                    Some(l) => l,
                    None => loc(&config.images[index].file.at),
                });
                p
            })
            .collect();
        PlanError::new(who.clone(), problems, err.map)
    })?;
    if let (Some(gpt), Some(first)) = (plan.layout.gpt.as_mut(), mapped.first_usable) {
        gpt.first_usable_lba = first.checked_div(plan.layout.sector_size).unwrap_or(0);
    }
    Ok(GenimagePlan { plan, mapped })
}

#[cfg(test)]
mod tests;
