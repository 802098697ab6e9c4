//! One hdimage → the text of a board.toml, each line remembering the
//! genimage.cfg `file:line` it came from. What genimage derives (offsets,
//! sizes, the disk size, default types and signature) is written out
//! explicitly, so the board states the layout genimage would build and the
//! planner checks exactly that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::board_text::{quote, Toml};
use super::content::{find_content, Content};
use super::partition::{emit_partition, PartCtx};
use super::place::{
    derived_disk_size, place, round_up, Frame, PartIn, Placed, GPT_ARRAY, GPT_BACKUP,
};
use super::{loc, Dirs, Mapped};
use crate::arch::Arch;
use crate::board::names::PlainName;
use crate::board::size::format_bytes;
use crate::genimage::model::{DiskSignature, Hdimage, ImageKind, TableType};
use crate::genimage::values::ImageSize;
use crate::genimage::{Config, Image, Partition};
use crate::plan::layout::Problem;

/// The architecture written into every generated board. It changes
/// nothing of the image: there is no boot loader (`[boot] loader =
/// "none"`), every partition's type is written explicitly (never the
/// arch-dependent `linux-root` unless the GUID is riscv64's own), and
/// nothing runs in a chroot.
pub const ARCH: Arch = Arch::Riscv64;

/// The smallest disk the planner takes (`plan::geometry`): 64 sectors.
const MIN_DISK: u64 = 64 * 512;

/// Map `config.images[index]` (an hdimage) onto a board.toml.
pub fn map_hdimage(
    config: &Config,
    index: usize,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
    cfg_name: &Path,
) -> Result<Mapped, Vec<Problem>> {
    let image = &config.images[index];
    let ImageKind::Hdimage(hd) = &image.kind else {
        return Err(vec![Problem::error(format!(
            "image '{}' is not an hdimage",
            image.file.value
        ))
        .at(loc(&image.file.at))]);
    };
    let mut problems = Vec::new();
    let mut contents = Vec::new();
    for part in &image.partitions {
        contents.push(part.image.as_ref().and_then(|name| {
            match find_content(config, index, &name.value, dirs, built) {
                Ok(c) => Some(c),
                Err(why) => {
                    problems.push(
                        Problem::error(format!("partition '{}': {why}", part.name.value))
                            .at(loc(&name.at)),
                    );
                    None
                }
            }
        }));
    }
    let mapped = emit(config, index, hd, &contents, dirs, cfg_name, &mut problems);
    if problems.is_empty() {
        Ok(mapped)
    } else {
        Err(problems)
    }
}

/// The hdimage `align` genimage uses: `align`, else a sector (1 byte
/// without a table: partitions of a `none` image follow each other
/// unaligned, measured); with a table a multiple of 512.
fn hdimage_align(hd: &Hdimage, problems: &mut Vec<Problem>) -> u64 {
    let table = hd.table;
    if let Some(a) = hd
        .align
        .as_ref()
        .filter(|a| table != TableType::None && (a.value == 0 || !a.value.is_multiple_of(512)))
    {
        problems.push(
            Problem::error(format!(
                "align = {}: the partition alignment must be a multiple of 512 bytes \
                 (genimage refuses it too)",
                a.value
            ))
            .at(loc(&a.at)),
        );
    }
    hd.align
        .as_ref()
        .map_or(if table == TableType::None { 1 } else { 512 }, |a| a.value)
        .max(1)
}

/// Whether `part` has a table entry, as the placement counts it: every
/// partition of a table-less image is placed like one.
fn in_table(table: TableType, part: &Partition) -> bool {
    table == TableType::None || part.in_partition_table
}

/// Each partition's placement input: its offset, size and alignment as
/// genimage derives them before placing it.
fn partition_inputs(
    image: &Image,
    contents: &[Option<Content>],
    align: u64,
    problems: &mut Vec<Problem>,
) -> Vec<PartIn> {
    let table = match &image.kind {
        ImageKind::Hdimage(hd) => hd.table,
        _ => TableType::None,
    };
    let mut ins = Vec::new();
    for (part, content) in image.partitions.iter().zip(contents) {
        let listed = in_table(table, part);
        // A partition without a table entry aligns to 1 byte by default
        // (genimage's README), and its size is its image's, unrounded
        // (measured: even with an align of its own).
        let palign = part
            .align
            .as_ref()
            .map_or(if listed { align } else { 1 }, |a| a.value.max(1));
        if part.image.is_none() && !listed {
            problems.push(
                Problem::error(format!(
                    "partition '{}': a partition without a table entry needs an image \
                     (genimage 16 refuses it too: \"no input file given\")",
                    part.name.value
                ))
                .at(loc(&part.at)),
            );
        }
        let len = content.as_ref().and_then(|c| c.len);
        let size = match (&part.size, len) {
            (Some(s), _) => s.value,
            (None, Some(len)) if listed => round_up(len, palign),
            (None, Some(len)) => len,
            (None, None) => {
                if let (Some(name), Some(_)) = (&part.image, content) {
                    problems.push(
                        Problem::error(format!(
                            "partition '{}': the size of image '{}' is unknown until it is \
                             built (give the image a size, or the partition one)",
                            part.name.value, name.value
                        ))
                        .at(loc(&name.at)),
                    );
                } else if part.image.is_none() && !part.autoresize && listed {
                    problems.push(
                        Problem::error(format!(
                            "partition '{}': size must not be zero: give it a size or an \
                             image (genimage refuses it too)",
                            part.name.value
                        ))
                        .at(loc(&part.at)),
                    );
                }
                0
            }
        };
        if let (Some(len), Some(name)) = (len, &part.image) {
            if len > size && !part.autoresize {
                problems.push(
                    Problem::error(format!(
                        "partition '{}': size {size} is too small for '{}' ({len} bytes)",
                        part.name.value, name.value
                    ))
                    .at(loc(part.size.as_ref().map_or(&name.at, |s| &s.at))),
                );
            }
        }
        ins.push(PartIn {
            offset: part.offset.as_ref().map(|o| o.value).filter(|o| *o != 0),
            size,
            align: palign,
            in_table: listed,
            forced_primary: part.forced_primary,
            rest: part.autoresize,
        });
    }
    ins
}

/// `autoresize`: genimage needs the image's size, and the rest must hold
/// the partition's `size` and its image.
fn check_autoresize(
    image: &Image,
    ins: &[PartIn],
    placed: &[Placed],
    contents: &[Option<Content>],
    problems: &mut Vec<Problem>,
) {
    for (((part, p), input), content) in image.partitions.iter().zip(placed).zip(ins).zip(contents)
    {
        if !part.autoresize {
            continue;
        }
        if image.size.is_none() {
            problems.push(
                Problem::error(format!(
                    "partition '{}': autoresize needs the image's size (genimage refuses it too)",
                    part.name.value
                ))
                .at(loc(&part.at)),
            );
            continue;
        }
        let least = input
            .size
            .max(content.as_ref().and_then(|c| c.len).unwrap_or(0));
        if p.size == 0 || p.size < least {
            problems.push(
                Problem::error(format!(
                    "partition '{}': autoresize leaves it {} bytes at {:#x}, less than the {} \
                     it needs (genimage refuses it too)",
                    part.name.value,
                    p.size,
                    p.offset,
                    least.max(1)
                ))
                .at(loc(&part.at)),
            );
        }
    }
}

/// How long genimage's file is: up to the last byte it writes (the MBR,
/// the GPT, each EBR, each partition's image — its own length, not the
/// partition's), the whole disk with `fill` or a backup GPT (at the very
/// end). `None` while an image's length is unknown. The board's
/// `disk.fill = false` gives the same length (`disk::write`); this is what
/// `plan --genimage` shows before building.
fn genimage_file_len(
    image: &Image,
    hd: &Hdimage,
    placed: &[Placed],
    contents: &[Option<Content>],
    align: u64,
    exact_end: u64,
) -> Option<u64> {
    let has_gpt = matches!(hd.table, TableType::Gpt | TableType::Hybrid);
    if hd.fill || (has_gpt && !hd.gpt_no_backup) {
        return Some(exact_end);
    }
    let gpt_location = hd.gpt_location.as_ref().map_or(1024, |l| l.value);
    let mut file_len = Some(match hd.table {
        TableType::None => 0,
        TableType::Mbr => 512,
        TableType::Gpt | TableType::Hybrid => gpt_location.saturating_add(GPT_ARRAY),
    });
    for ((part, p), content) in image.partitions.iter().zip(placed).zip(contents) {
        let mut end = if p.logical {
            p.offset.saturating_sub(align).saturating_add(512)
        } else {
            0
        };
        if part.image.is_some() {
            match content.as_ref().and_then(|c| c.len) {
                Some(len) => end = end.max(p.offset.saturating_add(len)),
                None => file_len = None,
            }
        }
        file_len = file_len.map(|l| l.max(end));
    }
    file_len
}

#[allow(clippy::too_many_lines)]
fn emit(
    config: &Config,
    index: usize,
    hd: &Hdimage,
    contents: &[Option<Content>],
    dirs: &Dirs,
    cfg_name: &Path,
    problems: &mut Vec<Problem>,
) -> Mapped {
    let image = &config.images[index];
    let at_image = &image.file.at;
    let table = hd.table;
    let has_gpt = matches!(table, TableType::Gpt | TableType::Hybrid);
    let has_mbr = matches!(table, TableType::Mbr | TableType::Hybrid);
    let align = hdimage_align(hd, problems);
    let gpt_location = hd.gpt_location.as_ref().map_or(1024, |l| l.value);
    let count = image
        .partitions
        .iter()
        .filter(|p| in_table(table, p))
        .count();
    let extended = match table {
        TableType::Mbr if hd.extended_partition > 0 => usize::from(hd.extended_partition),
        TableType::Mbr if count > 4 => 4,
        _ => 0,
    };
    let size_given = match image.size.as_ref().map(|s| s.value) {
        Some(ImageSize::Bytes(n)) => Some(n),
        Some(ImageSize::Percent(_)) => {
            problems.push(
                Problem::error("an hdimage's size cannot be a percentage")
                    .at(loc(image.size.as_ref().map_or(at_image, |s| &s.at))),
            );
            Some(0)
        }
        None => None,
    };
    let frame = Frame {
        first: match table {
            TableType::None => 0,
            TableType::Mbr => 512,
            TableType::Gpt | TableType::Hybrid => gpt_location.saturating_add(GPT_ARRAY),
        },
        align,
        extended,
        // The backup GPT's room stays reserved even with gpt-no-backup.
        rest_end: size_given
            .unwrap_or(0)
            .saturating_sub(if has_gpt { GPT_BACKUP } else { 0 }),
    };
    let ins = partition_inputs(image, contents, align, problems);
    let placed = place(frame, &ins);
    check_autoresize(image, &ins, &placed, contents, problems);

    // The disk: `size`, else what genimage derives.
    let exact_end = size_given.unwrap_or_else(|| derived_disk_size(&placed, has_gpt));
    let mut disk_size = round_up(exact_end, 512);
    // mkimg's smallest disk is 64 sectors; a derived MBR or table-less
    // disk may be smaller. Without an extended partition (which runs to
    // the disk's end) the extra room changes nothing, and the file still
    // ends where genimage's does (`fill = false`).
    let small = image.size.is_none() && disk_size < MIN_DISK && extended == 0 && !has_gpt;
    if small {
        disk_size = MIN_DISK;
    }
    if hd.fill && (small || !exact_end.is_multiple_of(512)) {
        problems.push(
            Problem::error(format!(
                "fill = true on a disk of {exact_end} bytes: mkimg's raw file is the disk, whole \
                 512-byte sectors and at least {MIN_DISK} bytes (not supported yet)"
            ))
            .at(loc(hd.table_at.as_ref().unwrap_or(at_image))),
        );
    }

    if table == TableType::None {
        for (part, p) in image.partitions.iter().zip(&placed) {
            if !p.offset.is_multiple_of(512) || !p.size.is_multiple_of(512) {
                problems.push(
                    Problem::error(format!(
                        "partition '{}' lands at byte {} with {} bytes: mkimg places \
                         partitions on 512-byte sectors, even without a partition table \
                         (not supported yet)",
                        part.name.value, p.offset, p.size
                    ))
                    .at(loc(&part.at)),
                );
            }
        }
    }
    check_hybrid(image, hd, &placed, problems);

    // GPT: genimage's first usable LBA is the first table partition's start.
    let first_usable = image
        .partitions
        .iter()
        .zip(&placed)
        .find(|(part, _)| part.in_partition_table)
        .map(|(_, p)| p.offset)
        .filter(|_| has_gpt);
    if let (Some(first), Some((part, _))) = (
        first_usable,
        image
            .partitions
            .iter()
            .zip(&placed)
            .filter(|(part, _)| part.in_partition_table)
            .skip(1)
            .find(|(_, p)| Some(p.offset) < first_usable),
    ) {
        problems.push(
            Problem::error(format!(
                "partition '{}' starts before the first partition ({first:#x}): genimage \
                 makes the first one's start the GPT's first usable LBA; list the \
                 partitions in disk order",
                part.name.value
            ))
            .at(loc(&part.at)),
        );
    }
    let file_len = genimage_file_len(image, hd, &placed, contents, align, exact_end);
    let first_logical = placed.iter().position(|p| p.logical);
    let extended_bootable = first_logical.is_some_and(|i| image.partitions[i].bootable);

    // The text.
    let name = image.file.value.clone();
    if let Err(why) = PlainName::try_from(name.clone()) {
        problems.push(
            Problem::error(format!(
                "image '{name}': its file name becomes the board's name: {why}"
            ))
            .at(loc(at_image)),
        );
    }
    let mut t = Toml {
        text: String::new(),
        origins: Vec::new(),
        fallback: at_image.clone(),
    };
    t.comment(&format!(
        "Generated by `mkimg import-genimage` from {} (image {}, {}).",
        cfg_name.display(),
        quote(&name),
        at_image
    ));
    t.comment("Offsets and sizes are the ones genimage 16 derives, written out.");
    t.line("[board]", None);
    t.key("name", &name, Some(at_image));
    t.key(
        "description",
        &format!("genimage image {name}"),
        Some(at_image),
    );
    t.comment("No boot loader and explicit partition types: the arch changes nothing.");
    t.key("arch", &ARCH.to_string(), None);
    t.key("hostname", "genimage", None);
    t.key("image", &name, Some(at_image));
    t.line("", None);
    t.line("[boot]", None);
    t.key("loader", "none", None);
    t.line("", None);
    t.line("[disk]", None);
    let table_text = match table {
        TableType::None => "none",
        TableType::Mbr => "mbr",
        TableType::Gpt => "gpt",
        TableType::Hybrid => "hybrid",
    };
    let table_at = hd.table_at.as_ref();
    t.key("table", table_text, table_at);
    if image.size.is_none() {
        t.comment("genimage's size: the partitions' end (with a GPT: plus the backup GPT, rounded up to 4K)");
    }
    if small {
        t.comment(&format!(
            "genimage's disk is {exact_end} bytes; mkimg's smallest is {MIN_DISK} (the file still ends where genimage's does)"
        ));
    }
    t.key(
        "size",
        &format_bytes(disk_size),
        image.size.as_ref().map(|s| &s.at),
    );
    let board_align = if align.is_multiple_of(512) {
        align
    } else {
        512
    };
    t.key(
        "alignment",
        &format_bytes(board_align),
        hd.align.as_ref().map(|a| &a.at),
    );
    if has_mbr {
        match hd.disk_signature.as_ref() {
            Some(sig) => match sig.value {
                DiskSignature::Fixed(v) => {
                    t.key("mbr_signature", &format!("0x{v:08x}"), Some(&sig.at))
                }
                DiskSignature::Random => {
                    t.comment("disk-signature = random: derived from the build seed instead")
                }
            },
            None => {
                t.comment("genimage's default disk signature is 0");
                t.key("mbr_signature", "0x00000000", None);
            }
        }
    }
    if has_gpt {
        match hd.disk_uuid.as_ref() {
            Some(u) => t.key("guid", &u.value.to_string(), Some(&u.at)),
            None => {
                t.comment("disk-uuid: derived from the build seed (genimage draws a random one)")
            }
        }
        if let Some(l) = hd.gpt_location.as_ref() {
            t.key("gpt_entries_offset", &format_bytes(l.value), Some(&l.at));
        }
        if let Some(first) = first_usable {
            t.comment(&format!(
                "genimage's GPT first usable LBA is the first partition's start (LBA {}); \
                 mkimg build --genimage writes it so, a board build keeps it after the entry array",
                first / 512
            ));
        }
        if hd.gpt_no_backup {
            t.comment("gpt-no-backup: the backup GPT's sectors stay reserved, unwritten");
            t.line("gpt_backup = false", table_at);
        }
    } else if hd.gpt_no_backup {
        t.comment("gpt-no-backup ignored: no GPT");
    }
    if hd.extended_partition > 0 {
        t.line(
            &format!("extended_partition = {}", hd.extended_partition),
            None,
        );
    }
    if extended_bootable {
        t.comment(
            "the first logical partition is bootable: genimage 16 marks the extended \
             partition's MBR entry active",
        );
        let at = first_logical.map(|i| &image.partitions[i].at);
        t.line("extended_bootable = true", at);
    }
    if hd.fill {
        t.comment("fill = true: the raw file is the whole disk");
    } else {
        t.comment(
            "genimage's default: the raw file ends at the last byte written (no fill = true)",
        );
    }
    t.line(&format!("fill = {}", hd.fill), table_at);
    for (i, ((part, p), content)) in image
        .partitions
        .iter()
        .zip(&placed)
        .zip(contents)
        .enumerate()
    {
        let section_holes = content
            .as_ref()
            .and_then(|c| c.section)
            .and_then(|s| match &config.images[s].kind {
                ImageKind::File(file) => Some(file.holes.as_slice()),
                _ => None,
            })
            .unwrap_or(&[]);
        let cx = PartCtx {
            table,
            part,
            placed: *p,
            content: content.as_ref(),
            section_holes,
            in_table: in_table(table, part),
            first_logical: first_logical == Some(i),
        };
        emit_partition(&mut t, &cx, config, problems);
    }
    Mapped {
        name,
        text: t.text,
        origins: t.origins,
        source_roots: vec![
            dirs.inputpath.clone(),
            dirs.outputpath.clone(),
            dirs.tmppath.clone(),
        ],
        first_usable,
        file_len,
        disk_size,
    }
}

/// Hybrid: the MBR mirrors the table partitions with a `partition-type`
/// (1 to 3), then a 0xEE entry over LBA 1 to the end of the GPT entry
/// array, which mkimg writes up to the first mirrored partition.
fn check_hybrid(image: &Image, hd: &Hdimage, placed: &[Placed], problems: &mut Vec<Problem>) {
    if hd.table != TableType::Hybrid {
        return;
    }
    let at_image = &image.file.at;
    let gpt_location = hd.gpt_location.as_ref().map_or(1024, |l| l.value);
    let mirrored: Vec<(&Partition, u64)> = image
        .partitions
        .iter()
        .zip(placed)
        .filter(|(part, _)| part.in_partition_table && part.partition_type.is_some())
        .map(|(part, p)| (part, p.offset))
        .collect();
    let table_at = hd.table_at.as_ref().unwrap_or(at_image);
    if mirrored.is_empty() {
        problems.push(
            Problem::error(
                "partition-table-type = hybrid but no partition has a partition-type \
                 (genimage refuses it too)",
            )
            .at(loc(table_at)),
        );
    } else if let Some((fourth, _)) = mirrored.get(3) {
        problems.push(
            Problem::error(format!(
                "{} partitions with a partition-type: a hybrid MBR holds at most 3 \
                 (genimage refuses it too)",
                mirrored.len()
            ))
            .at(loc(fourth
                .partition_type
                .as_ref()
                .map_or(&fourth.at, |t| &t.at))),
        );
    } else {
        let lowest = mirrored.iter().map(|(_, o)| *o).min().unwrap_or(0);
        let ee_end = gpt_location.saturating_add(GPT_ARRAY);
        if lowest != ee_end {
            problems.push(
                Problem::error(format!(
                    "hybrid: genimage's 0xEE entry covers the GPT (up to byte {ee_end:#x}), \
                     mkimg's runs up to the first mirrored partition ({lowest:#x}); a \
                     hybrid whose first partition with a partition-type does not start \
                     right after the GPT entry array is not supported yet"
                ))
                .at(loc(table_at)),
            );
        }
    }
}
