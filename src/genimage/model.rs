//! The typed genimage config: the parse tree checked against the options
//! genimage 16 knows (plus `forced-primary`, newer), each value in its
//! type, with every refusal said once here.
//!
//! Validation here is what needs no layout: types, ranges, required and
//! conflicting keys. Offsets, overlaps and sizes against the disk are the
//! plan's job (mapping onto mkimg's plan), not this module's.
//!
//! Refused, with the reason in the message: `exec-pre`/`exec-post` and
//! `config { mke2fs = … }`-style tool paths (mkimg never runs a command or
//! a tool an input file names), `configdump` (a write to a path the config
//! chooses), image types and sections mkimg does not build (`flash`,
//! `flashtype`, `ubi`, `iso`, …), `partition` outside an `hdimage`
//! (genimage ignores it there), two images or two partitions of one image
//! with the same name (genimage merges them silently), `gpt`/
//! `partition-table` together with `partition-table-type` (genimage
//! silently prefers one).
//!
//! An option given twice keeps the last value, `+=` appends to a list, as
//! in libconfuse. `disk-signature = random` is kept as
//! [`DiskSignature::Random`]; mkimg is reproducible, so the plan derives it
//! from the build seed like every identity not pinned (genimage would draw
//! a random number). Pure: no I/O.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::parse::{Assign, Node, Origin, ParseError, Scalar, Value};
use super::values::{
    check_ext_label, check_fs_timestamp, check_vfat_label, parse_bool, parse_gpt_type, parse_hole,
    parse_image_size, parse_int, parse_mkdosfs_args, parse_mke2fs_args, parse_size, parse_uuid,
    Hole, ImageSize, MkdosfsArg, Mke2fsArg,
};

/// A value and the `file:line` it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: Origin,
}

/// A whole genimage.cfg.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub global: Global,
    /// In the order written.
    pub images: Vec<Image>,
}

/// The `config { … }` section (paths only; tool paths are refused).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Global {
    pub outputpath: Option<Located<String>>,
    pub inputpath: Option<Located<String>>,
    pub rootpath: Option<Located<String>>,
    pub tmppath: Option<Located<String>>,
    /// Accepted and kept, but as in genimage it has no effect in the file:
    /// includes are already resolved when it is read.
    pub includepath: Option<Located<String>>,
    pub loglevel: Option<i64>,
}

/// One `image NAME { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The file name (the section title).
    pub file: Located<String>,
    pub size: Option<Located<ImageSize>>,
    pub temporary: bool,
    pub empty: bool,
    /// `name`: the volume name some types use.
    pub name: Option<Located<String>>,
    pub mountpoint: Option<Located<String>>,
    pub srcpath: Option<Located<String>>,
    pub kind: ImageKind,
    /// Only for `hdimage`, in table order.
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageKind {
    Hdimage(Hdimage),
    Vfat(Vfat),
    Ext(Ext),
    File(FileImage),
    Squashfs(Squashfs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableType {
    None,
    Mbr,
    Gpt,
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSignature {
    Fixed(u32),
    /// `random`: derived from the build seed by the plan.
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hdimage {
    pub table: TableType,
    /// Where the table type was decided (`partition-table-type`, or a
    /// deprecated boolean), None for the default (MBR).
    pub table_at: Option<Origin>,
    pub align: Option<Located<u64>>,
    pub gpt_location: Option<Located<u64>>,
    pub gpt_no_backup: bool,
    pub disk_signature: Option<Located<DiskSignature>>,
    pub disk_uuid: Option<Located<Uuid>>,
    /// 0 = automatic, 1..=4.
    pub extended_partition: u8,
    pub fill: bool,
}

/// One `partition NAME { … }` of an hdimage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: Located<String>,
    pub offset: Option<Located<u64>>,
    pub size: Option<Located<u64>>,
    pub align: Option<Located<u64>>,
    /// The image (another `image` section's name, or an input file).
    pub image: Option<Located<String>>,
    /// MBR type byte.
    pub partition_type: Option<Located<u8>>,
    /// GPT type (shortcuts resolved).
    pub partition_type_uuid: Option<Located<Uuid>>,
    pub partition_uuid: Option<Located<Uuid>>,
    pub bootable: bool,
    pub read_only: bool,
    pub hidden: bool,
    pub no_automount: bool,
    pub in_partition_table: bool,
    pub autoresize: bool,
    /// genimage ≥ 17 (not in 16): keep this partition out of the extended one.
    pub forced_primary: bool,
    pub holes: Vec<Located<Hole>>,
    pub at: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vfat {
    pub label: Option<Located<String>>,
    /// `files = { … }`: input files copied under their own names.
    pub files: Vec<Located<String>>,
    /// `file NAME { image = … }`, in order.
    pub file_entries: Vec<VfatFile>,
    pub extraargs: Vec<MkdosfsArg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfatFile {
    /// The name inside the filesystem.
    pub name: Located<String>,
    /// The input file (or image) copied there.
    pub image: Located<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtKind {
    Ext2,
    Ext3,
    Ext4,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext {
    pub kind: ExtKind,
    pub label: Option<Located<String>>,
    pub features: Option<Located<String>>,
    pub use_mke2fs: bool,
    pub fs_timestamp: Option<Located<String>>,
    /// As written; resolve with `paths::resolve_within` against the input
    /// directories before reading it.
    pub mke2fs_conf: Option<Located<String>>,
    pub extraargs: Vec<Mke2fsArg>,
    pub root_owner: Option<Located<(u32, u32)>>,
    pub usage_type: Option<Located<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileImage {
    /// `name`: the input file, when it is not the section's title.
    pub name: Option<Located<String>>,
    pub holes: Vec<Located<Hole>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Squashfs {
    pub compression: Option<Located<String>>,
    pub block_size: Option<Located<u64>>,
}

const WHY_EXEC: &str = "mkimg never runs a command an input file names: exec-pre/exec-post \
     would run it through a shell, and mkimg often runs as root";
const WHY_TOOL: &str = "mkimg never runs a tool named by an input file; it finds its own tools";

/// genimage's tool path options (its README and binary, v16).
const TOOL_OPTIONS: [&str; 24] = [
    "cpio",
    "dd",
    "debugfs",
    "e2fsck",
    "fiptool",
    "genext2fs",
    "genisoimage",
    "mcopy",
    "mke2fs",
    "mkimage",
    "mmd",
    "mkcramfs",
    "mkdosfs",
    "mkfsf2fs",
    "mkfsjffs2",
    "mkfsubifs",
    "mksquashfs",
    "qemu-img",
    "rauc",
    "sloadf2fs",
    "tar",
    "tune2fs",
    "ubinize",
    "mkfs.vfat",
];

/// Image types genimage has that mkimg does not build.
const OTHER_TYPES: [&str; 12] = [
    "android-sparse",
    "cpio",
    "cramfs",
    "f2fs",
    "fip",
    "fit",
    "flash",
    "iso",
    "jffs2",
    "qemu",
    "rauc",
    "tar",
];

/// Checks a parse tree and types it.
pub fn build_config(nodes: &[Node]) -> Result<Config, ParseError> {
    let mut config = Config::default();
    let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
    for node in nodes {
        match node {
            Node::Section { name, at, title, body } if name == "image" => {
                let title = title
                    .as_ref()
                    .ok_or_else(|| ParseError::at(at, "missing title for section 'image'"))?;
                if let Some(first) = seen.get(&title.text) {
                    return Err(ParseError::at(
                        at,
                        format!(
                            "image '{}' is defined again (first at {first}); genimage would merge the two silently",
                            title.text
                        ),
                    ));
                }
                seen.insert(title.text.clone(), at.clone());
                config.images.push(build_image(title, at, body)?);
            }
            Node::Section { name, at, title: None, body } if name == "config" => {
                config.global = build_global(at, body)?;
            }
            Node::Section { name, at, .. } if name == "flash" => {
                return Err(ParseError::at(
                    at,
                    "flash sections (NAND/NOR geometry) are not supported by mkimg",
                ))
            }
            Node::Section { name, at, .. } | Node::Option { key: name, at, .. } => {
                return Err(ParseError::at(at, format!("no such option or section '{name}' at the top level (image, config, include)")))
            }
        }
    }
    Ok(config)
}

/// The options of one section, merged as libconfuse does.
struct Opts<'a> {
    values: BTreeMap<&'a str, (Vec<Scalar>, Origin)>,
    sections: Vec<&'a Node>,
}

/// `scalars`: options taking one value; `lists`: options taking a list;
/// `sections`: allowed subsections. `what` names the section in messages.
fn collect<'a>(
    body: &'a [Node],
    what: &str,
    scalars: &[&str],
    lists: &[&str],
    sections: &[&str],
) -> Result<Opts<'a>, ParseError> {
    let mut opts = Opts {
        values: BTreeMap::new(),
        sections: Vec::new(),
    };
    for node in body {
        match node {
            Node::Option {
                key,
                at,
                assign,
                value,
            } => {
                refuse_always(key, at)?;
                let is_list = lists.contains(&key.as_str());
                if !is_list && !scalars.contains(&key.as_str()) {
                    return Err(ParseError::at(
                        at,
                        format!("no such option '{key}' in {what}"),
                    ));
                }
                let items = match value {
                    Value::One(s) => vec![s.clone()],
                    Value::List(l) if is_list => l.clone(),
                    Value::List(_) => {
                        return Err(ParseError::at(
                            at,
                            format!("option '{key}' takes one value, not a list"),
                        ))
                    }
                };
                match assign {
                    Assign::Set => {
                        opts.values.insert(key, (items, at.clone()));
                    }
                    Assign::Append if is_list => {
                        let entry = opts
                            .values
                            .entry(key)
                            .or_insert_with(|| (Vec::new(), at.clone()));
                        entry.0.extend(items);
                        entry.1 = at.clone();
                    }
                    Assign::Append => {
                        return Err(ParseError::at(
                            at,
                            format!("attempt to append to non-list option '{key}'"),
                        ))
                    }
                }
            }
            Node::Section { name, at, .. } => {
                refuse_always(name, at)?;
                if !sections.contains(&name.as_str()) {
                    return Err(ParseError::at(
                        at,
                        format!("no such section '{name}' in {what}"),
                    ));
                }
                opts.sections.push(node);
            }
        }
    }
    Ok(opts)
}

fn refuse_always(key: &str, at: &Origin) -> Result<(), ParseError> {
    match key {
        "exec-pre" | "exec-post" => {
            Err(ParseError::at(at, format!("{key} is refused: {WHY_EXEC}")))
        }
        "flashtype" => Err(ParseError::at(
            at,
            "flashtype: flash images are not supported by mkimg",
        )),
        _ => Ok(()),
    }
}

impl<'a> Opts<'a> {
    fn scalar(&self, key: &str) -> Option<(&str, Origin)> {
        self.values
            .get(key)
            .and_then(|(v, at)| v.last().map(|s| (s.text.as_str(), at.clone())))
    }
    fn get<T>(
        &self,
        key: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<Located<T>>, ParseError> {
        match self.scalar(key) {
            None => Ok(None),
            Some((text, at)) => match f(text) {
                Ok(value) => Ok(Some(Located { value, at })),
                Err(why) => Err(ParseError::at(&at, format!("{key}: {why}"))),
            },
        }
    }
    fn string(&self, key: &str) -> Result<Option<Located<String>>, ParseError> {
        self.get(key, |t| Ok(t.to_string()))
    }
    fn flag(&self, key: &str, default: bool) -> Result<bool, ParseError> {
        Ok(self.get(key, parse_bool)?.map_or(default, |l| l.value))
    }
    fn size(&self, key: &str) -> Result<Option<Located<u64>>, ParseError> {
        self.get(key, parse_size)
    }
    fn list(&self, key: &str) -> Vec<Located<String>> {
        self.values.get(key).map_or_else(Vec::new, |(v, _)| {
            v.iter()
                .map(|s| Located {
                    value: s.text.clone(),
                    at: s.at.clone(),
                })
                .collect()
        })
    }
    fn holes(&self) -> Result<Vec<Located<Hole>>, ParseError> {
        self.list("holes")
            .into_iter()
            .map(|s| {
                parse_hole(&s.value)
                    .map(|value| Located {
                        value,
                        at: s.at.clone(),
                    })
                    .map_err(|why| ParseError::at(&s.at, why))
            })
            .collect()
    }
}

fn build_global(at: &Origin, body: &[Node]) -> Result<Global, ParseError> {
    for node in body {
        if let Node::Option { key, at, .. } = node {
            if TOOL_OPTIONS.contains(&key.as_str()) {
                return Err(ParseError::at(
                    at,
                    format!("config {{ {key} = … }} is refused: {WHY_TOOL}"),
                ));
            }
            if key == "configdump" || key == "config" {
                return Err(ParseError::at(
                    at,
                    format!("config {{ {key} = … }} is refused: mkimg reads and writes no file a config names outside its images"),
                ));
            }
        }
    }
    let _ = at;
    let o = collect(
        body,
        "the config section",
        &[
            "outputpath",
            "inputpath",
            "rootpath",
            "tmppath",
            "includepath",
            "loglevel",
        ],
        &[],
        &[],
    )?;
    Ok(Global {
        outputpath: o.string("outputpath")?,
        inputpath: o.string("inputpath")?,
        rootpath: o.string("rootpath")?,
        tmppath: o.string("tmppath")?,
        includepath: o.string("includepath")?,
        loglevel: o.get("loglevel", parse_int)?.map(|l| l.value),
    })
}

const IMAGE_TYPES: [&str; 7] = [
    "hdimage", "vfat", "ext2", "ext3", "ext4", "file", "squashfs",
];

fn build_image(title: &Scalar, at: &Origin, body: &[Node]) -> Result<Image, ParseError> {
    if title.text.is_empty() {
        return Err(ParseError::at(&title.at, "an image needs a non-empty name"));
    }
    let what = format!("image '{}'", title.text);
    // Unsupported types first, so the message names the type.
    for node in body {
        if let Node::Section { name, at, .. } = node {
            if OTHER_TYPES.contains(&name.as_str()) || name == "ubi" || name == "ubifs" {
                return Err(ParseError::at(
                    at,
                    format!("{what}: image type '{name}' is not supported by mkimg (hdimage, vfat, ext2, ext3, ext4, file, squashfs)"),
                ));
            }
        }
    }
    let mut allowed: Vec<&str> = IMAGE_TYPES.to_vec();
    allowed.push("partition");
    let o = collect(
        body,
        &what,
        &[
            "size",
            "temporary",
            "empty",
            "name",
            "mountpoint",
            "srcpath",
        ],
        &[],
        &allowed,
    )?;
    let mut kind = None;
    let mut partitions = Vec::new();
    let mut part_names: BTreeMap<String, Origin> = BTreeMap::new();
    for node in &o.sections {
        let Node::Section {
            name,
            at: sat,
            title: st,
            body: sbody,
        } = node
        else {
            continue;
        };
        if name == "partition" {
            let t = st
                .as_ref()
                .ok_or_else(|| ParseError::at(sat, "missing title for section 'partition'"))?;
            if let Some(first) = part_names.get(&t.text) {
                return Err(ParseError::at(
                    sat,
                    format!("{what}: partition '{}' is defined again (first at {first}); genimage would merge the two silently", t.text),
                ));
            }
            part_names.insert(t.text.clone(), sat.clone());
            partitions.push(build_partition(t, sat, sbody)?);
            continue;
        }
        if st.is_some() {
            return Err(ParseError::at(
                sat,
                format!("the '{name}' section takes no title"),
            ));
        }
        if kind.is_some() {
            return Err(ParseError::at(
                sat,
                format!("{what}: multiple image types given"),
            ));
        }
        kind = Some(build_kind(name, sat, sbody, &what)?);
    }
    let kind = kind.ok_or_else(|| {
        ParseError::at(
            at,
            format!("{what}: no image type given (hdimage, vfat, ext4, …)"),
        )
    })?;
    if !partitions.is_empty() && !matches!(kind, ImageKind::Hdimage(_)) {
        return Err(ParseError::at(
            &partitions[0].at,
            format!("{what}: partitions belong in an hdimage (genimage ignores them here)"),
        ));
    }
    let size = o.get("size", parse_image_size)?;
    Ok(Image {
        file: Located {
            value: title.text.clone(),
            at: title.at.clone(),
        },
        size,
        temporary: o.flag("temporary", false)?,
        empty: o.flag("empty", false)?,
        name: o.string("name")?,
        mountpoint: o.string("mountpoint")?,
        srcpath: o.string("srcpath")?,
        kind,
        partitions,
    })
}

fn build_kind(name: &str, at: &Origin, body: &[Node], what: &str) -> Result<ImageKind, ParseError> {
    let ctx = format!("{what}'s {name} section");
    Ok(match name {
        "hdimage" => ImageKind::Hdimage(build_hdimage(at, body, &ctx)?),
        "vfat" => {
            let o = collect(body, &ctx, &["label", "extraargs"], &["files"], &["file"])?;
            let mut file_entries = Vec::new();
            for node in &o.sections {
                if let Node::Section {
                    at: fat,
                    title,
                    body: fbody,
                    ..
                } = node
                {
                    let t = title
                        .as_ref()
                        .ok_or_else(|| ParseError::at(fat, "missing title for section 'file'"))?;
                    let fo = collect(fbody, &format!("file '{}'", t.text), &["image"], &[], &[])?;
                    let image = fo.string("image")?.ok_or_else(|| {
                        ParseError::at(fat, format!("file '{}' needs image = \"…\"", t.text))
                    })?;
                    file_entries.push(VfatFile {
                        name: Located {
                            value: t.text.clone(),
                            at: t.at.clone(),
                        },
                        image,
                    });
                }
            }
            ImageKind::Vfat(Vfat {
                label: o.get("label", |t| check_vfat_label(t).map(|()| t.to_string()))?,
                files: o.list("files"),
                file_entries,
                extraargs: o
                    .get("extraargs", parse_mkdosfs_args)?
                    .map_or_else(Vec::new, |l| l.value),
            })
        }
        "ext2" | "ext3" | "ext4" => {
            let o = collect(
                body,
                &ctx,
                &[
                    "label",
                    "features",
                    "use-mke2fs",
                    "fs-timestamp",
                    "mke2fs-conf",
                    "extraargs",
                    "root-owner",
                    "usage-type",
                ],
                &[],
                &[],
            )?;
            let use_mke2fs = o.flag("use-mke2fs", false)?;
            let extraargs = o.get("extraargs", parse_mke2fs_args)?;
            if let Some(args) = &extraargs {
                if !use_mke2fs && !args.value.is_empty() {
                    return Err(ParseError::at(
                        &args.at,
                        "extraargs are genext2fs options when use-mke2fs is false; mkimg builds with mke2fs and cannot translate them: set use-mke2fs = true",
                    ));
                }
            }
            if let Some(owner) = o.scalar("root-owner") {
                if !use_mke2fs {
                    return Err(ParseError::at(
                        &owner.1,
                        "root-owner is only valid with use-mke2fs = true",
                    ));
                }
            }
            ImageKind::Ext(Ext {
                kind: match name {
                    "ext2" => ExtKind::Ext2,
                    "ext3" => ExtKind::Ext3,
                    _ => ExtKind::Ext4,
                },
                label: o.get("label", |t| check_ext_label(t).map(|()| t.to_string()))?,
                features: o.get("features", check_features)?,
                use_mke2fs,
                fs_timestamp: o.get("fs-timestamp", |t| {
                    check_fs_timestamp(t).map(|()| t.to_string())
                })?,
                mke2fs_conf: o.get("mke2fs-conf", check_relative_input)?,
                extraargs: extraargs.map_or_else(Vec::new, |l| l.value),
                root_owner: o.get("root-owner", parse_owner)?,
                usage_type: o.get("usage-type", check_word)?,
            })
        }
        "file" => {
            let o = collect(body, &ctx, &["name"], &["holes"], &[])?;
            ImageKind::File(FileImage {
                name: o.get("name", check_relative_input)?,
                holes: o.holes()?,
            })
        }
        _ => {
            let o = collect(
                body,
                &ctx,
                &["compression", "block-size", "extraargs"],
                &[],
                &[],
            )?;
            if let Some((args, at)) = o.scalar("extraargs") {
                if !args.trim().is_empty() {
                    return Err(ParseError::at(&at, "extraargs for mksquashfs are refused: mkimg passes no input-file options to a tool"));
                }
            }
            ImageKind::Squashfs(Squashfs {
                compression: o.get("compression", |t| match t {
                    "gzip" | "lzo" | "lz4" | "xz" | "zstd" | "none" => Ok(t.to_string()),
                    _ => Err(format!("'{t}' (gzip, lzo, lz4, xz, zstd or none)")),
                })?,
                block_size: o.size("block-size")?,
            })
        }
    })
}

fn check_features(t: &str) -> Result<String, String> {
    if t.split(',').all(|f| {
        let f = f.trim().strip_prefix('^').unwrap_or(f.trim());
        !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) {
        Ok(t.to_string())
    } else {
        Err(format!(
            "'{t}': a comma-separated list of feature names (a leading ^ disables one)"
        ))
    }
}

fn check_word(t: &str) -> Result<String, String> {
    if !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-,".contains(c))
    {
        Ok(t.to_string())
    } else {
        Err(format!("'{t}': letters, digits, '_', '-' and ',' only"))
    }
}

fn parse_owner(t: &str) -> Result<(u32, u32), String> {
    let (u, g) = t
        .split_once(':')
        .ok_or_else(|| format!("'{t}': write UID:GID"))?;
    let id = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("'{t}': numeric UID:GID"))
    };
    Ok((id(u)?, id(g)?))
}

/// A path the config names for mkimg to read: relative, no `..` (resolved
/// later inside the input directories).
fn check_relative_input(t: &str) -> Result<String, String> {
    let p = std::path::Path::new(t);
    if t.is_empty()
        || p.is_absolute()
        || p.components().any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!(
            "'{t}': mkimg reads it only from inside the input path: write a relative path without '..'"
        ));
    }
    Ok(t.to_string())
}

fn build_hdimage(at: &Origin, body: &[Node], ctx: &str) -> Result<Hdimage, ParseError> {
    let o = collect(
        body,
        ctx,
        &[
            "align",
            "partition-table",
            "partition-table-type",
            "extended-partition",
            "disk-signature",
            "gpt",
            "gpt-location",
            "gpt-no-backup",
            "disk-uuid",
            "fill",
        ],
        &[],
        &[],
    )?;
    let typed = o.get("partition-table-type", |t| match t {
        "none" => Ok(TableType::None),
        "mbr" => Ok(TableType::Mbr),
        "gpt" => Ok(TableType::Gpt),
        "hybrid" => Ok(TableType::Hybrid),
        _ => Err(format!(
            "'{t}' is not a valid partition-table-type (mbr, gpt, hybrid, none)"
        )),
    })?;
    let gpt = o.get("gpt", parse_bool)?;
    let table_flag = o.get("partition-table", parse_bool)?;
    let (table, table_at) = match (typed, gpt, table_flag) {
        (Some(t), None, None) => (t.value, Some(t.at)),
        (Some(t), Some(old), _) | (Some(t), None, Some(old)) => {
            return Err(ParseError::at(
                &old.at,
                format!(
                    "the deprecated gpt/partition-table options and partition-table-type (at {}) are both given; keep only partition-table-type",
                    t.at
                ),
            ))
        }
        (None, g, p) => {
            let no_table = p.as_ref().is_some_and(|p| !p.value);
            let is_gpt = g.as_ref().is_some_and(|g| g.value);
            let at = p.map(|l| l.at).or(g.map(|l| l.at));
            match (no_table, is_gpt) {
                (true, _) => (TableType::None, at),
                (false, true) => (TableType::Gpt, at),
                (false, false) => (TableType::Mbr, at),
            }
        }
    };
    let extended = o.get("extended-partition", |t| {
        parse_int(t).and_then(|n| {
            u8::try_from(n)
                .ok()
                .filter(|n| *n <= 4)
                .ok_or_else(|| format!("{n}: 1 to 4, or 0 for automatic"))
        })
    })?;
    let _ = at;
    Ok(Hdimage {
        table,
        table_at,
        align: o.size("align")?,
        gpt_location: o.size("gpt-location")?,
        gpt_no_backup: o.flag("gpt-no-backup", false)?,
        disk_signature: o.get("disk-signature", |t| {
            if t == "random" {
                return Ok(DiskSignature::Random);
            }
            parse_int(t)
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .map(DiskSignature::Fixed)
                .ok_or_else(|| format!("'{t}': a 32-bit number (e.g. 0x12345678) or random"))
        })?,
        disk_uuid: o.get("disk-uuid", parse_uuid)?,
        extended_partition: extended.map_or(0, |l| l.value),
        fill: o.flag("fill", false)?,
    })
}

fn build_partition(title: &Scalar, at: &Origin, body: &[Node]) -> Result<Partition, ParseError> {
    let what = format!("partition '{}'", title.text);
    let o = collect(
        body,
        &what,
        &[
            "offset",
            "size",
            "align",
            "image",
            "partition-type",
            "partition-type-uuid",
            "partition-uuid",
            "bootable",
            "read-only",
            "hidden",
            "no-automount",
            "in-partition-table",
            "autoresize",
            "forced-primary",
        ],
        &["holes"],
        &[],
    )?;
    Ok(Partition {
        name: Located {
            value: title.text.clone(),
            at: title.at.clone(),
        },
        offset: o.size("offset")?,
        size: o.size("size")?,
        align: o.size("align")?,
        image: o.string("image")?,
        partition_type: o.get("partition-type", |t| {
            parse_int(t)
                .ok()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| format!("'{t}': an MBR type byte, 0 to 0xff (e.g. 0x83)"))
        })?,
        partition_type_uuid: o.get("partition-type-uuid", parse_gpt_type)?,
        partition_uuid: o.get("partition-uuid", parse_uuid)?,
        bootable: o.flag("bootable", false)?,
        read_only: o.flag("read-only", false)?,
        hidden: o.flag("hidden", false)?,
        no_automount: o.flag("no-automount", false)?,
        in_partition_table: o.flag("in-partition-table", true)?,
        autoresize: o.flag("autoresize", false)?,
        forced_primary: o.flag("forced-primary", false)?,
        holes: o.holes()?,
        at: at.clone(),
    })
}
