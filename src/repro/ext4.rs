#![deny(clippy::arithmetic_side_effects)]
//! The blocks that differ in an ext4 partition of the two builds, named:
//! the file (inode and path) that owns them, or the metadata structure they
//! are (superblock, group descriptors, bitmaps, inode table), and for an
//! inode table block the inodes in it that differ and which of their
//! fields.
//!
//! debugfs reads each disk in place: `DISK?offset=START` is libext2fs's
//! unix I/O option for a filesystem inside a bigger file, so nothing is
//! extracted. The requests are `stats`, `icheck BLOCK…` and `ncheck
//! INODE…` with numbers this module computed, never input-derived text
//! (and the disk paths are mkimg's own scratch names, free of `?`). The
//! group layout comes from `stats`; where superblock copies and group
//! descriptors lie follows from it (sparse_super). Inode table blocks are
//! compared here, inode by inode, from the disk bytes. Paths that come
//! back from ncheck are the image's, so they are printed escaped.
//!
//! At most [`MAX_BLOCKS`] differing blocks are looked at; the count is of
//! all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::filesystems::ext4::{resolve_sbin, shown};
use crate::host::cmd::Cmd;
use crate::repro::disk::read_full_at;

/// Differing blocks looked at per partition.
pub const MAX_BLOCKS: u64 = 512;
/// Blocks per icheck request (one argv element).
const ICHECK_BATCH: usize = 128;
/// Files or structures named per partition.
const SHOWN: usize = 5;

/// What `debugfs -R stats` says about the layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Geometry {
    pub block_size: u64,
    pub first_block: u64,
    pub block_count: u64,
    pub blocks_per_group: u64,
    pub inodes_per_group: u64,
    pub inode_size: u64,
    pub inode_blocks_per_group: u64,
    pub desc_size: u64,
    pub reserved_gdt: u64,
    pub first_inode: u64,
    pub sparse_super: bool,
    pub journal_inode: Option<u64>,
    pub orphan_inode: Option<u64>,
    /// Per group: block bitmap, inode bitmap, inode table start.
    pub groups: Vec<(u64, u64, u64)>,
}

/// A block that is filesystem metadata, not a file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Structure {
    Superblock(u64),
    GroupDescriptors(u64),
    ReservedGdt(u64),
    BlockBitmap(u64),
    InodeBitmap(u64),
    InodeTable(u64),
}

impl std::fmt::Display for Structure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Structure::Superblock(g) => write!(f, "superblock of group {g}"),
            Structure::GroupDescriptors(g) => write!(f, "group descriptors (copy in group {g})"),
            Structure::ReservedGdt(g) => write!(f, "reserved GDT blocks of group {g}"),
            Structure::BlockBitmap(g) => write!(f, "block bitmap of group {g}"),
            Structure::InodeBitmap(g) => write!(f, "inode bitmap of group {g}"),
            Structure::InodeTable(g) => write!(f, "inode table of group {g}"),
        }
    }
}

/// `debugfs -R stats` output → [`Geometry`]; None when a field is missing.
pub fn parse_stats(text: &str) -> Option<Geometry> {
    let field = |name: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix(':'))
            .map(str::trim)
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
    let mut geometry = Geometry {
        block_size: number("Block size")?,
        first_block: number("First block")?,
        block_count: number("Block count")?,
        blocks_per_group: number("Blocks per group")?,
        inodes_per_group: number("Inodes per group")?,
        inode_size: number("Inode size")?,
        inode_blocks_per_group: number("Inode blocks per group")?,
        desc_size: number("Group descriptor size").unwrap_or(32),
        reserved_gdt: number("Reserved GDT blocks").unwrap_or(0),
        first_inode: number("First inode").unwrap_or(11),
        sparse_super: field("Filesystem features")
            .is_some_and(|f| f.split_whitespace().any(|x| x == "sparse_super")),
        journal_inode: number("Journal inode"),
        orphan_inode: number("Orphan file inode"),
        groups: Vec::new(),
    };
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("Group ") else {
            continue;
        };
        let at = |key: &str| -> Option<u64> {
            let after = rest.split(key).nth(1)?;
            after
                .trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        if let (Some(b), Some(i), Some(t)) = (
            at("block bitmap at"),
            at("inode bitmap at"),
            at("inode table at"),
        ) {
            geometry.groups.push((b, i, t));
        }
    }
    let sane = geometry.block_size >= 1024
        && geometry.blocks_per_group > 0
        && geometry.inode_size >= 128
        && geometry.inode_size <= geometry.block_size
        && !geometry.groups.is_empty();
    sane.then_some(geometry)
}

impl Geometry {
    /// Whether group `g` holds a superblock copy.
    fn has_superblock(&self, g: u64) -> bool {
        if !self.sparse_super || g <= 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&base| {
            let mut power = base;
            while power < g {
                match power.checked_mul(base) {
                    Some(next) => power = next,
                    None => return false,
                }
            }
            power == g
        })
    }

    fn gdt_blocks(&self) -> u64 {
        let bytes = (self.groups.len() as u64).saturating_mul(self.desc_size);
        bytes.div_ceil(self.block_size.max(1))
    }

    /// The metadata structure `block` is, if any.
    pub fn structure_of(&self, block: u64) -> Option<Structure> {
        let in_range = |start: u64, len: u64| block >= start && block < start.saturating_add(len);
        for (g, &(bitmap, inodes, table)) in (0u64..).zip(&self.groups) {
            if block == bitmap {
                return Some(Structure::BlockBitmap(g));
            }
            if block == inodes {
                return Some(Structure::InodeBitmap(g));
            }
            if in_range(table, self.inode_blocks_per_group) {
                return Some(Structure::InodeTable(g));
            }
        }
        let g = block
            .saturating_sub(self.first_block)
            .checked_div(self.blocks_per_group)?;
        if !self.has_superblock(g) {
            return None;
        }
        let start = g
            .saturating_mul(self.blocks_per_group)
            .saturating_add(self.first_block);
        // With 4 KiB blocks, group 0's superblock sits in block 0 at byte 1024.
        let sb = if g == 0 { 0 } else { start };
        if block == sb || block == start {
            return Some(Structure::Superblock(g));
        }
        let gdt = start.saturating_add(1);
        if in_range(gdt, self.gdt_blocks()) {
            return Some(Structure::GroupDescriptors(g));
        }
        if in_range(gdt.saturating_add(self.gdt_blocks()), self.reserved_gdt) {
            return Some(Structure::ReservedGdt(g));
        }
        None
    }

    /// The first inode number an inode table block holds.
    fn first_inode_in(&self, group: u64, block: u64) -> Option<u64> {
        let table = self.groups.get(usize::try_from(group).ok()?)?.2;
        let per_block = self.block_size.checked_div(self.inode_size)?;
        group
            .checked_mul(self.inodes_per_group)?
            .checked_add(block.checked_sub(table)?.checked_mul(per_block)?)?
            .checked_add(1)
    }
}

/// The fields of an ext4 inode, by byte range, for naming what differs.
const INODE_FIELDS: &[(usize, usize, &str)] = &[
    (0, 2, "mode"),
    (2, 2, "uid"),
    (4, 4, "size"),
    (8, 4, "atime"),
    (12, 4, "ctime"),
    (16, 4, "mtime"),
    (20, 4, "dtime"),
    (24, 2, "gid"),
    (26, 2, "links"),
    (28, 4, "blocks"),
    (32, 4, "flags"),
    (36, 4, "version"),
    (40, 60, "extents/block map"),
    (100, 4, "generation"),
    (104, 4, "xattr block"),
    (108, 4, "size"),
    (112, 4, "fragment"),
    (116, 2, "blocks"),
    (118, 2, "xattr block"),
    (120, 2, "uid"),
    (122, 2, "gid"),
    (124, 2, "checksum"),
    (126, 2, "reserved"),
    (128, 2, "extra size"),
    (130, 2, "checksum"),
    (132, 4, "ctime"),
    (136, 4, "mtime"),
    (140, 4, "atime"),
    (144, 8, "crtime"),
    (152, 4, "version"),
    (156, 4, "project"),
];

/// The names of the fields in which two copies of an inode differ.
pub fn inode_fields(a: &[u8], b: &[u8]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    let mut add = |name: &'static str| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    for &(offset, len, name) in INODE_FIELDS {
        let end = offset.saturating_add(len);
        if a.get(offset..end) != b.get(offset..end) {
            add(name);
        }
    }
    if a.get(160..) != b.get(160..) {
        add("in-inode xattrs");
    }
    names
}

/// `debugfs -R REQUEST DISK?offset=START`, read-only.
pub fn debugfs_cmd(request: &str, device: &OsString) -> Cmd {
    resolve_sbin(
        Cmd::new(
            "reading an ext4 partition back for --verify-repro",
            "debugfs",
        )
        .arg("-R")
        .arg(request)
        .arg(device),
    )
}

/// The debugfs device for the filesystem at `start` in `disk`.
fn device(disk: &Path, start: u64) -> Result<OsString> {
    if disk.as_os_str().as_encoded_bytes().contains(&b'?') {
        bail!(
            "{} has a '?' in its path, which libext2fs reads as options",
            disk.display()
        );
    }
    let mut device = disk.as_os_str().to_os_string();
    device.push(format!("?offset={start}"));
    Ok(device)
}

/// `icheck` output → block → owning inode (None: no inode owns it).
pub fn parse_icheck(text: &str) -> BTreeMap<u64, Option<u64>> {
    text.lines()
        .filter_map(|line| {
            let (block, inode) = line.split_once('\t')?;
            Some((block.trim().parse().ok()?, inode.trim().parse().ok()))
        })
        .collect()
}

/// `ncheck` output → inode → its paths. A path may hold any byte but NUL
/// and `/` components, line breaks included: a line that does not start
/// with `NUMBER<TAB>` continues the path before it.
pub fn parse_ncheck(text: &str) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut last: Option<u64> = None;
    for line in text
        .lines()
        .skip_while(|l| !l.starts_with("Inode\t"))
        .skip(1)
    {
        let parsed = line
            .split_once('\t')
            .and_then(|(n, p)| Some((n.parse::<u64>().ok()?, p)));
        match (parsed, last) {
            (Some((inode, path)), _) => {
                // ncheck writes a child of / as `//name`.
                let path = if path.starts_with("//") {
                    &path[1..]
                } else {
                    path
                };
                out.entry(inode).or_default().push(path.to_string());
                last = Some(inode);
            }
            (None, Some(inode)) => {
                if let Some(path) = out.get_mut(&inode).and_then(|p| p.last_mut()) {
                    path.push('\n');
                    path.push_str(line);
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// What one differing file or structure adds up to.
#[derive(Debug, Default)]
struct Finding {
    /// The lowest block that led here (orders the report).
    seen: Option<u64>,
    /// Differing blocks of its own (data, extent tree; or the structure's).
    blocks: u64,
    first_block: Option<u64>,
    /// For an inode: the fields of it that differ.
    fields: Vec<&'static str>,
}

impl Finding {
    fn saw(&mut self, block: u64) {
        self.seen = Some(self.seen.map_or(block, |s| s.min(block)));
    }

    /// `block` is one of its own and differs.
    fn add_block(&mut self, block: u64) {
        self.saw(block);
        self.first_block = Some(self.first_block.map_or(block, |s| s.min(block)));
        self.blocks = self.blocks.saturating_add(1);
    }

    /// Its inode, in inode table block `block`, differs in `fields`.
    fn add_fields(&mut self, block: u64, fields: Vec<&'static str>) {
        self.saw(block);
        for field in fields {
            if !self.fields.contains(&field) {
                self.fields.push(field);
            }
        }
    }
}

/// The differing blocks of the ext4 filesystem at byte `start` of the two
/// disks, named (see the module doc); paths are shown under `mount` (the
/// partition's mount point, "" for none or `/`). `runs` are differing
/// disk byte runs inside the partition.
pub fn explain_ext4(
    disks: [&Path; 2],
    start: u64,
    mount: &str,
    runs: &[(u64, u64)],
) -> Result<Vec<String>> {
    let devices = [device(disks[0], start)?, device(disks[1], start)?];
    let stats = debugfs_cmd("stats", &devices[0]).output()?;
    let geometry = parse_stats(&String::from_utf8_lossy(&stats.stdout))
        .context("debugfs stats printed no usable group layout")?;
    let bs = geometry.block_size;
    let mut blocks = BTreeSet::new();
    for &(run_start, run_end) in runs {
        let rel = |o: u64| o.saturating_sub(start).checked_div(bs).unwrap_or(0);
        let (first, last) = (rel(run_start), rel(run_end.saturating_sub(1)));
        let mut block = first;
        while block <= last && (blocks.len() as u64) < MAX_BLOCKS {
            blocks.insert(block);
            block = block.saturating_add(1);
        }
    }

    let mut inodes: BTreeMap<u64, Finding> = BTreeMap::new();
    let mut structures: BTreeMap<Structure, Finding> = BTreeMap::new();
    let mut unowned = Finding::default();
    let mut check = Vec::new();
    let files = [File::open(disks[0])?, File::open(disks[1])?];
    for &block in &blocks {
        let Some(structure) = geometry.structure_of(block) else {
            check.push(block);
            continue;
        };
        structures.entry(structure).or_default().add_block(block);
        if let Structure::InodeTable(group) = structure {
            let offset = block
                .checked_mul(bs)
                .and_then(|o| o.checked_add(start))
                .context("inode table block past 2^64")?;
            let size = usize::try_from(bs)?;
            let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
            read_full_at(&files[0], &mut a, offset)?;
            read_full_at(&files[1], &mut b, offset)?;
            let isz = usize::try_from(geometry.inode_size)?;
            let first = geometry
                .first_inode_in(group, block)
                .context("inode number")?;
            for (slot, (x, y)) in (0u64..).zip(a.chunks(isz).zip(b.chunks(isz))) {
                if x != y {
                    inodes
                        .entry(first.saturating_add(slot))
                        .or_default()
                        .add_fields(block, inode_fields(x, y));
                }
            }
        }
    }
    for batch in check.chunks(ICHECK_BATCH) {
        let request = std::iter::once("icheck".to_string())
            .chain(batch.iter().map(u64::to_string))
            .collect::<Vec<_>>()
            .join(" ");
        let mut owners = BTreeMap::new();
        for device in &devices {
            let out = debugfs_cmd(&request, device).output()?;
            for (block, inode) in parse_icheck(&String::from_utf8_lossy(&out.stdout)) {
                let slot: &mut BTreeSet<u64> = owners.entry(block).or_default();
                slot.extend(inode);
            }
        }
        for &block in batch {
            match owners.get(&block).filter(|o| !o.is_empty()) {
                Some(owners) => {
                    for &inode in owners {
                        inodes.entry(inode).or_default().add_block(block);
                    }
                }
                None => unowned.add_block(block),
            }
        }
    }

    let named: Vec<u64> = inodes
        .keys()
        .copied()
        .filter(|&i| i >= geometry.first_inode || i == 2)
        .collect();
    let mut paths: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    if !named.is_empty() {
        let request = std::iter::once("ncheck".to_string())
            .chain(named.iter().map(u64::to_string))
            .collect::<Vec<_>>()
            .join(" ");
        for device in &devices {
            let out = debugfs_cmd(&request, device).output()?;
            for (inode, names) in parse_ncheck(&String::from_utf8_lossy(&out.stdout)) {
                let known = paths.entry(inode).or_default();
                for name in names {
                    if !known.contains(&name) {
                        known.push(name);
                    }
                }
            }
        }
    }

    let mount = mount.trim_end_matches('/');
    let mut lines: Vec<(u64, String)> = Vec::new();
    for (&inode, finding) in &inodes {
        let who = inode_name(inode, &geometry, paths.get(&inode), mount);
        let at = finding.seen.unwrap_or(0);
        lines.push((at, format!("{who}: {}", finding_text(finding))));
    }
    for (structure, finding) in &structures {
        let at = finding.seen.unwrap_or(0);
        let count = plural(finding.blocks, "block");
        lines.push((at, format!("{structure} ({count}, first block {at})")));
    }
    if let Some(at) = unowned.seen {
        lines.push((
            at,
            format!(
                "{} no inode owns in either build, outside the group layout (first block {at})",
                plural(unowned.blocks, "block")
            ),
        ));
    }
    lines.sort();
    let more = lines.len().saturating_sub(SHOWN);
    let mut out: Vec<String> = lines.into_iter().take(SHOWN).map(|(_, l)| l).collect();
    if more > 0 {
        out.push(format!("… and {more} more files or structures"));
    }
    if blocks.len() as u64 == MAX_BLOCKS {
        out.push(format!(
            "(only the first {MAX_BLOCKS} differing blocks were looked at)"
        ));
    }
    Ok(out)
}

fn finding_text(finding: &Finding) -> String {
    let mut parts = Vec::new();
    if let Some(first) = finding.first_block {
        parts.push(format!(
            "its data or extent tree differs in {} (first block {first})",
            plural(finding.blocks, "block")
        ));
    }
    if !finding.fields.is_empty() {
        parts.push(format!(
            "its inode differs in {}",
            finding.fields.join(", ")
        ));
    }
    parts.join("; ")
}

/// `/etc/motd (inode 14)`; the reserved inodes by their role.
fn inode_name(inode: u64, geometry: &Geometry, paths: Option<&Vec<String>>, mount: &str) -> String {
    let role = match inode {
        1 => Some("the bad blocks inode"),
        2 => None,
        3 => Some("the user quota inode"),
        4 => Some("the group quota inode"),
        5 => Some("the boot loader inode"),
        6 => Some("the undelete directory inode"),
        7 => Some("the resize inode (reserved GDT blocks)"),
        i if Some(i) == geometry.journal_inode => Some("the journal"),
        i if Some(i) == geometry.orphan_inode => Some("the orphan file"),
        i if i < geometry.first_inode => Some("a reserved inode"),
        _ => None,
    };
    if let Some(role) = role {
        return format!("{role} (inode {inode})");
    }
    match paths.filter(|p| !p.is_empty()) {
        Some(paths) => {
            let shown_paths: Vec<String> = paths
                .iter()
                .map(|p| shown(&format!("{mount}{p}")))
                .collect();
            format!("{} (inode {inode})", shown_paths.join(", "))
        }
        None if inode == 2 => format!(
            "{} (root directory, inode 2)",
            if mount.is_empty() { "/" } else { mount }
        ),
        None => format!("inode {inode} (no path: not linked in either build)"),
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests;
