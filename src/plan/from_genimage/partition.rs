//! One genimage `partition` section → its `[[partition]]` lines: the type
//! (an MBR byte, a GPT GUID, or the shortcut naming both in a hybrid),
//! the place genimage gives it ([`super::place`]), its contents, and the
//! options that have board keys (`hidden`, `forced-primary`, `autoresize`
//! as `size = "rest"`, `in-partition-table = false`, `holes`). What a
//! partition's position makes meaningless (a bootable logical partition,
//! GPT bits on an MBR, anything of a table entry on a partition without
//! one) becomes a comment saying so, as genimage 16 ignores it too.

use uuid::Uuid;

use super::board_text::{quote, Toml};
use super::content::Content;
use super::place::Placed;
use super::{describe_image, loc, ARCH};
use crate::board::size::format_bytes;
use crate::genimage::model::{Located, TableType};
use crate::genimage::values::Hole;
use crate::genimage::{Config, Origin, Partition};
use crate::plan::layout::Problem;
use crate::plan::parttype::{resolve_part_type, LINUX_DATA};

/// What the partition lines need besides the partition section.
pub struct PartCtx<'a> {
    pub table: TableType,
    pub part: &'a Partition,
    pub placed: Placed,
    pub content: Option<&'a Content>,
    /// The holes of the `file` section its image is, if any.
    pub section_holes: &'a [Located<Hole>],
    /// It has a table entry (always false without a table: no entry, but
    /// placed like the table partitions, see `place`).
    pub in_table: bool,
    /// It is the first logical partition (its `bootable` is the extended
    /// entry's active flag, `disk.extended_bootable`).
    pub first_logical: bool,
}

/// Write the `[[partition]]` of `cx.part`.
pub fn emit_partition(t: &mut Toml, cx: &PartCtx, config: &Config, problems: &mut Vec<Problem>) {
    let part = cx.part;
    let unlisted = !cx.in_table && cx.table != TableType::None;
    let has_gpt = matches!(cx.table, TableType::Gpt | TableType::Hybrid);
    t.line("", None);
    if let Some(section) = cx.content.and_then(|c| c.section) {
        t.comment(&describe_image(&config.images[section]));
    }
    t.line("[[partition]]", Some(&part.at));
    t.key("name", &part.name.value, Some(&part.name.at));
    if unlisted {
        t.comment(
            "in-partition-table = false: no table entry; its bytes are placed like a blob, \
             the type is not written anywhere",
        );
        t.key("type", "linux", Some(&part.at));
        t.line("in_partition_table = false", Some(&part.at));
    } else {
        let (type_text, type_at) = partition_type(part, cx.table, problems);
        t.key("type", &type_text, type_at.as_ref().or(Some(&part.at)));
    }
    t.key(
        "offset",
        &format_bytes(cx.placed.offset),
        part.offset.as_ref().map(|o| &o.at).or(Some(&part.at)),
    );
    if part.autoresize {
        t.comment(&format!(
            "autoresize: the rest of the disk ({} bytes here)",
            cx.placed.size
        ));
        t.key("size", "rest", Some(&part.at));
    } else {
        t.key(
            "size",
            &format_bytes(cx.placed.size),
            part.size
                .as_ref()
                .map(|s| &s.at)
                .or(part.image.as_ref().map(|i| &i.at))
                .or(Some(&part.at)),
        );
    }
    if let Some(a) = part.align.as_ref().filter(|a| a.value.is_multiple_of(512)) {
        if cx.placed.logical {
            // genimage 16 keeps a logical partition's EBR one hdimage
            // `align` before it whatever its own align: the board places
            // the EBR one *partition* alignment before it, so the
            // partition keeps the disk's (its offset and size are
            // written out, the align changed only those).
            t.comment(&format!(
                "align = {}: already in the offset and size above (a logical partition's EBR \
                 stays one hdimage align before it)",
                a.value
            ));
        } else if !unlisted {
            t.key("alignment", &format_bytes(a.value), Some(&a.at));
        }
    }
    if let (Some(c), Some(img)) = (cx.content, &part.image) {
        t.key("filesystem", "raw", Some(&img.at));
        match c.path.to_str() {
            Some(text) => t.key("source", text, Some(&img.at)),
            None => problems.push(
                Problem::error(format!("{}: the path is not UTF-8", c.path.display()))
                    .at(loc(&img.at)),
            ),
        }
    }
    emit_holes(t, cx, unlisted, problems);
    if unlisted {
        let ignored = [
            (part.partition_uuid.is_some(), "partition-uuid"),
            (part.bootable, "bootable"),
            (part.read_only, "read-only"),
            (part.hidden, "hidden"),
            (part.no_automount, "no-automount"),
        ];
        for (_, option) in ignored.iter().filter(|(set, _)| *set) {
            t.comment(&format!("{option} ignored: no table entry"));
        }
        if part.forced_primary {
            // The planner refuses it on a partition without a table entry.
            t.line("forced_primary = true", Some(&part.at));
        }
        return;
    }
    if has_gpt {
        match &part.partition_uuid {
            Some(u) => t.key("uuid", &u.value.to_string(), Some(&u.at)),
            None => t.comment("partition-uuid: derived from the build seed"),
        }
    }
    if part.forced_primary {
        t.comment("forced-primary (genimage 17; genimage 16 does not know it)");
        t.line("forced_primary = true", Some(&part.at));
    }
    emit_flags(t, cx);
}

/// `holes`: the partition's own, else those of the `file` section it
/// uses (genimage's two places for them). Only a partition without a
/// table entry can share bytes with a table; the planner refuses them on
/// one with an entry.
fn emit_holes(t: &mut Toml, cx: &PartCtx, unlisted: bool, problems: &mut Vec<Problem>) {
    let own = &cx.part.holes;
    let holes = match (own.is_empty(), cx.section_holes.is_empty()) {
        (false, false) => {
            problems.push(
                Problem::error(format!(
                    "partition '{}': holes on the partition and on the image section it uses; \
                     give them in one place",
                    cx.part.name.value
                ))
                .at(loc(&own[0].at)),
            );
            own.as_slice()
        }
        (false, true) => own.as_slice(),
        (true, false) if !unlisted => {
            t.comment(
                "the image's holes change nothing here: a partition with a table entry \
                 shares no bytes with a table",
            );
            return;
        }
        (true, false) => cx.section_holes,
        (true, true) => return,
    };
    // genimage takes a hole past the end of the contents (it only frees
    // the overlap checks there); the board's holes lie inside them: the
    // part past the end is no partition byte anyway.
    let size = cx.placed.size;
    let inside: Vec<(u64, u64, &Origin)> = holes
        .iter()
        .filter(|h| h.value.start < size || h.value.start >= h.value.end)
        .map(|h| (h.value.start, h.value.end.min(size), &h.at))
        .collect();
    if inside.len() < holes.len() || inside.iter().zip(holes).any(|(i, h)| i.1 != h.value.end) {
        t.comment(&format!(
            "holes cut at the end of its {size} bytes (genimage allows them past it)"
        ));
    }
    let Some(first) = inside.first() else { return };
    t.line("holes = [", Some(first.2));
    for (start, end, at) in &inside {
        t.line(
            &format!(
                "  {{ start = {}, end = {} }},",
                quote(&format_bytes(*start)),
                quote(&format_bytes(*end))
            ),
            Some(at),
        );
    }
    t.line("]", Some(first.2));
}

/// `bootable`, `read-only`, `hidden`, `no-automount` as board flags, where
/// they mean something.
fn emit_flags(t: &mut Toml, cx: &PartCtx) {
    let part = cx.part;
    let has_gpt = matches!(cx.table, TableType::Gpt | TableType::Hybrid);
    let mut flags = Vec::new();
    if part.bootable {
        if cx.first_logical {
            t.comment(
                "bootable on the first logical partition: genimage 16 marks the extended \
                 partition's MBR entry active instead (disk.extended_bootable)",
            );
        } else if cx.placed.logical {
            t.comment("bootable dropped: genimage 16 sets no active flag on a logical partition");
        } else if cx.table == TableType::None {
            t.comment("bootable ignored: no partition table");
        } else {
            flags.push("legacy-bios-bootable");
        }
    }
    for (set, flag) in [
        (part.read_only, "read-only"),
        (part.hidden, "hidden"),
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

/// The board type and where it was written, for one partition; problems
/// for what genimage itself refuses.
pub fn partition_type(
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
