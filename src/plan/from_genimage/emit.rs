//! One hdimage → the text of a board.toml, each line remembering the
//! genimage.cfg `file:line` it came from. What genimage derives (offsets,
//! sizes, the disk size, default types and signature) is written out
//! explicitly, so the board states the layout genimage would build and the
//! planner checks exactly that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::place::{derived_disk_size, place, Frame, PartIn, GPT_ARRAY};
use super::unsupported::refusals;
use super::{describe_image, image_output_path, loc, Dirs, Mapped};
use crate::arch::Arch;
use crate::board::names::PlainName;
use crate::board::size::format_bytes;
use crate::genimage::model::{DiskSignature, Hdimage, ImageKind, TableType};
use crate::genimage::paths::resolve_within;
use crate::genimage::values::ImageSize;
use crate::genimage::{Config, Image, Origin, Partition};
use crate::plan::layout::Problem;
use crate::plan::parttype::{resolve_part_type, LINUX_DATA};

/// The architecture written into every generated board. It changes
/// nothing of the image: there is no boot loader (`[boot] loader =
/// "none"`), every partition's type is written explicitly (never the
/// arch-dependent `linux-root` unless the GUID is riscv64's own), and
/// nothing runs in a chroot.
pub const ARCH: Arch = Arch::Riscv64;

/// The smallest disk the planner takes (`plan::geometry`): 64 sectors.
const MIN_DISK: u64 = 64 * 512;

/// A board.toml under construction: its lines and their origins.
struct Toml {
    text: String,
    origins: Vec<Origin>,
    fallback: Origin,
}

impl Toml {
    fn line(&mut self, text: &str, at: Option<&Origin>) {
        self.text.push_str(text);
        self.text.push('\n');
        self.origins
            .push(at.cloned().unwrap_or_else(|| self.fallback.clone()));
    }
    fn key(&mut self, key: &str, value: &str, at: Option<&Origin>) {
        self.line(&format!("{key} = {}", quote(value)), at);
    }
    fn comment(&mut self, text: &str) {
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.line(&format!("# {clean}"), None);
    }
}

/// A TOML basic string holding `text`.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Where a partition's bytes come from, and how many there are.
struct Content {
    /// The file as the board names it (absolute).
    path: PathBuf,
    /// Its length, when known (an image not built yet may not be).
    len: Option<u64>,
    /// The image section it is, if it is one.
    section: Option<usize>,
}

/// The genimage config's images that `image`'s partitions use.
fn find_content(
    config: &Config,
    self_index: usize,
    name: &str,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
) -> Result<Content, String> {
    let input = |file: &str| -> Result<Content, String> {
        let found = resolve_within(
            file,
            std::slice::from_ref(&dirs.inputpath),
            "the input path",
        )
        .map_err(|why| format!("input file '{file}': {why}"))?;
        let len = std::fs::metadata(&found.canonical)
            .map_err(|e| format!("input file '{file}': {e}"))?
            .len();
        Ok(Content {
            path: found.canonical,
            len: Some(len),
            section: None,
        })
    };
    let Some(index) = config.images.iter().position(|i| i.file.value == name) else {
        return input(name);
    };
    if index == self_index {
        return Err(format!("image '{name}' cannot hold itself"));
    }
    let section = &config.images[index];
    if let ImageKind::File(file) = &section.kind {
        let file_name = file.name.as_ref().map_or(name, |n| n.value.as_str());
        let mut content = input(file_name)?;
        content.section = Some(index);
        return Ok(content);
    }
    let path = image_output_path(section, dirs)?;
    let len = match built.get(name) {
        Some(done) => Some(
            std::fs::metadata(done)
                .map_err(|e| format!("image '{name}' (built as {}): {e}", done.display()))?
                .len(),
        ),
        None => match section.size.as_ref().map(|s| s.value) {
            Some(ImageSize::Bytes(n)) => Some(n),
            Some(ImageSize::Percent(_)) | None => None,
        },
    };
    Ok(Content {
        path,
        len,
        section: Some(index),
    })
}

/// The board type and where it was written, for one partition; problems
/// for what genimage itself refuses.
fn partition_type(
    part: &Partition,
    table: TableType,
    problems: &mut Vec<Problem>,
) -> (String, Option<Origin>) {
    let mbr = part.partition_type.as_ref();
    let gpt = part.partition_type_uuid.as_ref();
    let only = |at: &Origin, what: &str, valid: &str| {
        Problem::error(format!(
            "partition '{}': '{what}' is only valid for {valid} partition-table-type \
             (genimage refuses it too)",
            part.name.value
        ))
        .at(loc(at))
    };
    let guid = gpt.map_or(LINUX_DATA, |g| g.value);
    match table {
        TableType::Mbr => {
            if let Some(g) = gpt {
                problems.push(only(&g.at, "partition-type-uuid", "gpt and hybrid"));
            }
            if mbr.is_none_or(|t| t.value == 0) {
                problems.push(
                    Problem::error(format!(
                        "partition '{}' has no partition-type: genimage 16 then writes type \
                         0x00, which marks an unused MBR slot (fdisk shows it \"Empty\"); \
                         mkimg does not write it",
                        part.name.value
                    ))
                    .at(loc(mbr.map_or(&part.at, |t| &t.at)))
                    .with_fix("partition-type = 0x83 (Linux), 0x0c (FAT32), … as it holds"),
                );
            }
            (
                format!("0x{:02x}", mbr.map_or(0, |t| t.value)),
                mbr.map(|t| t.at.clone()),
            )
        }
        TableType::Gpt => {
            if let Some(t) = mbr {
                problems.push(only(&t.at, "partition-type", "mbr and hybrid"));
            }
            (guid.to_string(), gpt.map(|g| g.at.clone()))
        }
        TableType::Hybrid => match mbr {
            None => (guid.to_string(), gpt.map(|g| g.at.clone())),
            Some(byte) => match shortcut_for(guid, byte.value) {
                Some(name) => (name.to_string(), Some(byte.at.clone())),
                None => {
                    problems.push(
                        Problem::error(format!(
                            "partition '{}': GPT type {guid} with MBR type {:#04x} in a hybrid \
                             table is not supported yet: a board.toml type names both only \
                             through a shortcut (esp 0xef, linux 0x83, swap 0x82, xbootldr \
                             0xea, fat32 0x0c)",
                            part.name.value, byte.value
                        ))
                        .at(loc(&byte.at)),
                    );
                    (guid.to_string(), Some(byte.at.clone()))
                }
            },
        },
        TableType::None => {
            if let Some(t) = mbr {
                problems.push(only(&t.at, "partition-type", "mbr and hybrid"));
            }
            if let Some(g) = gpt {
                problems.push(only(&g.at, "partition-type-uuid", "gpt and hybrid"));
            }
            // Not written anywhere: there is no table.
            ("linux".to_string(), None)
        }
    }
}

/// The board.toml type shortcut holding both `guid` and `byte`.
fn shortcut_for(guid: Uuid, byte: u8) -> Option<&'static str> {
    ["esp", "linux", "swap", "xbootldr", "fat32", "linux-root"]
        .into_iter()
        .find(|name| {
            resolve_part_type(name, ARCH).is_ok_and(|t| t.gpt == Some(guid) && t.mbr == Some(byte))
        })
}

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
    let used: Vec<&Image> = contents
        .iter()
        .flatten()
        .filter_map(|c| c.section.map(|i| &config.images[i]))
        .collect();
    for refusal in refusals(image, hd, &used) {
        problems.push(
            Problem::error(format!(
                "{} is not supported yet by mkimg (it changes the image, so it is not ignored)",
                refusal.option
            ))
            .at(loc(&refusal.at)),
        );
    }
    let mapped = emit(config, index, hd, &contents, dirs, cfg_name, &mut problems);
    if problems.is_empty() {
        Ok(mapped)
    } else {
        Err(problems)
    }
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
    // genimage's default alignment: a sector, 1 byte without a table
    // (measured: partitions of a `none` image follow each other unaligned).
    let align = hd
        .align
        .as_ref()
        .map_or(if table == TableType::None { 1 } else { 512 }, |a| a.value);
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
    let align = align.max(1);
    let gpt_location = hd.gpt_location.as_ref().map_or(1024, |l| l.value);
    let count = image.partitions.len();
    let extended = match table {
        TableType::Mbr if hd.extended_partition > 0 => usize::from(hd.extended_partition),
        TableType::Mbr if count > 4 => 4,
        _ => 0,
    };
    let frame = Frame {
        first: match table {
            TableType::None => 0,
            TableType::Mbr => 512,
            TableType::Gpt | TableType::Hybrid => gpt_location.saturating_add(GPT_ARRAY),
        },
        align,
        extended,
    };
    let mut ins = Vec::new();
    for (i, (part, content)) in image.partitions.iter().zip(contents).enumerate() {
        let palign = part.align.as_ref().map_or(align, |a| a.value.max(1));
        if extended > 0 && i.saturating_add(1) >= extended && palign != align {
            problems.push(
                Problem::error(format!(
                    "partition '{}': an align of its own on a logical partition is not \
                     supported yet (genimage puts its EBR one hdimage align before it, \
                     mkimg one partition align)",
                    part.name.value
                ))
                .at(loc(part.align.as_ref().map_or(&part.at, |a| &a.at))),
            );
        }
        let len = content.as_ref().and_then(|c| c.len);
        let size = match (&part.size, len) {
            (Some(s), _) => s.value,
            (None, Some(len)) => super::place::round_up(len, palign),
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
                }
                0
            }
        };
        if let (Some(len), Some(name)) = (len, &part.image) {
            if len > size {
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
        });
    }
    let placed = place(frame, &ins);

    // The disk: `size`, else what genimage derives.
    let exact_end = match image.size.as_ref().map(|s| s.value) {
        Some(ImageSize::Bytes(n)) => n,
        Some(ImageSize::Percent(_)) => {
            problems.push(
                Problem::error("an hdimage's size cannot be a percentage")
                    .at(loc(image.size.as_ref().map_or(at_image, |s| &s.at))),
            );
            0
        }
        None => derived_disk_size(&placed, has_gpt),
    };
    let mut disk_size = super::place::round_up(exact_end, 512);
    // mkimg's smallest disk is 64 sectors; a derived MBR or table-less
    // disk may be smaller. Without an extended partition (which runs to
    // the disk's end) the extra room changes nothing, and the file is
    // still cut at genimage's length.
    let small = image.size.is_none() && disk_size < MIN_DISK && extended == 0 && !has_gpt;
    if small {
        disk_size = MIN_DISK;
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

    // Hybrid: which partitions the MBR mirrors, and its 0xEE entry.
    let mirrored: Vec<(&Partition, u64)> = image
        .partitions
        .iter()
        .zip(&placed)
        .filter(|(part, _)| part.partition_type.is_some())
        .map(|(part, p)| (part, p.offset))
        .collect();
    if table == TableType::Hybrid {
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

    // GPT: genimage's first usable LBA is the first partition's start.
    let first_usable = placed.first().filter(|_| has_gpt).map(|p| p.offset);
    if let (Some(first), Some((part, _))) = (
        first_usable,
        image
            .partitions
            .iter()
            .zip(&placed)
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

    // The output file's length: genimage writes up to the last byte of
    // data (tables, EBRs, partition images), the whole disk with `fill`
    // or a GPT (the backup GPT is at the end).
    let mut file_len = Some(if table == TableType::None { 0 } else { 512 });
    for ((part, p), content) in image.partitions.iter().zip(&placed).zip(contents) {
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
    if hd.fill || has_gpt {
        file_len = Some(exact_end);
    }

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
    t.key("table", table_text, hd.table_at.as_ref());
    if image.size.is_none() {
        t.comment("genimage's size: the partitions' end (with a GPT: plus the backup GPT, rounded up to 4K)");
    }
    if small {
        t.comment(&format!(
            "genimage's disk is {exact_end} bytes; mkimg's smallest is {MIN_DISK} (the file is still cut at genimage's length)"
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
    }
    if hd.extended_partition > 0 {
        t.line(
            &format!("extended_partition = {}", hd.extended_partition),
            None,
        );
    }
    if hd.fill {
        t.comment("fill = true: the raw file is the whole disk (as mkimg writes it anyway)");
    }
    for (i, ((part, p), content)) in image
        .partitions
        .iter()
        .zip(&placed)
        .zip(contents)
        .enumerate()
    {
        t.line("", None);
        if let Some(c) = content {
            if let Some(section) = c.section {
                t.comment(&describe_image(&config.images[section]));
            }
        }
        t.line("[[partition]]", Some(&part.at));
        t.key("name", &part.name.value, Some(&part.name.at));
        let (type_text, type_at) = partition_type(part, table, problems);
        t.key("type", &type_text, type_at.as_ref().or(Some(&part.at)));
        t.key(
            "offset",
            &format_bytes(p.offset),
            part.offset.as_ref().map(|o| &o.at).or(Some(&part.at)),
        );
        t.key(
            "size",
            &format_bytes(p.size),
            part.size
                .as_ref()
                .map(|s| &s.at)
                .or(part.image.as_ref().map(|i| &i.at))
                .or(Some(&part.at)),
        );
        if let Some(a) = part.align.as_ref().filter(|a| a.value.is_multiple_of(512)) {
            t.key("alignment", &format_bytes(a.value), Some(&a.at));
        }
        if let (Some(c), Some(img)) = (content, &part.image) {
            t.key("filesystem", "raw", Some(&img.at));
            match c.path.to_str() {
                Some(text) => t.key("source", text, Some(&img.at)),
                None => problems.push(
                    Problem::error(format!("{}: the path is not UTF-8", c.path.display()))
                        .at(loc(&img.at)),
                ),
            }
        }
        if has_gpt {
            match &part.partition_uuid {
                Some(u) => t.key("uuid", &u.value.to_string(), Some(&u.at)),
                None => t.comment("partition-uuid: derived from the build seed"),
            }
        }
        let mut flags = Vec::new();
        if part.bootable {
            let first_logical = p.logical && i.saturating_add(1) == extended;
            if first_logical {
                problems.push(
                    Problem::error(format!(
                        "partition '{}': bootable on the first logical partition is not \
                         supported yet (genimage 16 marks the extended partition's MBR entry \
                         active instead)",
                        part.name.value
                    ))
                    .at(loc(&part.at)),
                );
            } else if p.logical {
                t.comment(
                    "bootable dropped: genimage 16 sets no active flag on a logical partition",
                );
            } else if table == TableType::None {
                t.comment("bootable ignored: no partition table");
            } else {
                flags.push("legacy-bios-bootable");
            }
        }
        for (set, flag) in [
            (part.read_only, "read-only"),
            (part.no_automount, "no-automount"),
        ] {
            if set && has_gpt {
                flags.push(flag);
            } else if set {
                t.comment(&format!("{flag} ignored: only a GPT has attribute bits"));
            }
        }
        if !flags.is_empty() {
            let list: Vec<String> = flags.iter().map(|f| quote(f)).collect();
            t.line(&format!("flags = [{}]", list.join(", ")), Some(&part.at));
        }
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
