//! `mkimg build --verify-repro`'s comparison: the outputs of two builds of
//! the same inputs, compared file by file, and each difference explained
//! down to where it is — which partition, and in it which file or which
//! filesystem structure — instead of "files differ".
//!
//! Flows in: the plan (where every region of the disk lies), the two output
//! directories, the two raw disks (a published `IMAGE.raw`, or the copy each
//! build wrote into mkimg's scratch directory when no raw format was asked
//! for), and the names of the disk image files. Flows out: a [`Comparison`]
//! whose report lines the command prints.
//!
//! - [`sums`]: the two `SHA256SUMS` (digests taken while each file was
//!   written) say which files differ, without reading them.
//! - [`disk`]: the two raw disks compared where either has data: runs of
//!   differing 4 KiB blocks.
//! - [`regions`]: each run mapped through the plan's regions: MBR, GPT
//!   header or entries, EBR, partition N 'name', blob, or nothing planned.
//! - [`ext4`]: in an ext4 partition, the blocks' owners (debugfs icheck and
//!   ncheck: inode and path) or metadata (superblock, group descriptors,
//!   bitmaps, inode table; for the inode table the inodes and fields).
//! - [`vfat`]: in a vfat partition, the files whose contents differ.
//! - [`files`]: any other file: JSON fields of manifest.json, the first
//!   differing line of a text, or the first differing byte.
//!
//! A disk image in another format (qcow2, compressed, simg) differs when
//! the disk it holds does; when the disks are the same, the container
//! itself is reported with its first differing byte.
//!
//! Explaining is best effort: when a partition cannot be looked into (a
//! tool fails), the report says so on that partition's line and goes on.
//! Must not: print a path from an image unescaped, put anything but
//! numbers it computed into a debugfs request, write anything.

pub mod disk;
pub mod ext4;
pub mod files;
pub mod regions;
pub mod sums;
pub mod vfat;

use std::path::Path;

use anyhow::{Context, Result};

use crate::outputs::manifest::SHA256SUMS_FILE;
use crate::plan::{Plan, PlannedFs, RegionKind};
use disk::{diff_disks, first_byte_differing, run_bytes, DiskDiff, BLOCK};
use sums::{changed_files, parse_sums, Change};

/// What two builds' outputs are to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Files in the output directories (SHA256SUMS included).
    pub files: usize,
    /// The files that differ, or that one build lacks.
    pub differing: Vec<String>,
    /// What differs, indented lines (empty when nothing does).
    pub report: Vec<String>,
}

/// The two builds to compare.
#[derive(Debug, Clone, Copy)]
pub struct Builds<'a> {
    /// The output directories.
    pub dirs: [&'a Path; 2],
    /// The raw disks (paths without `?`: see [`ext4`]).
    pub disks: [&'a Path; 2],
    /// Names of the disk image files in the output directories.
    pub disk_files: &'a [String],
}

/// Compare the two builds (see the module doc).
pub fn compare_builds(plan: &Plan, builds: &Builds<'_>) -> Result<Comparison> {
    let read_sums = |dir: &Path| -> Result<_> {
        let path = dir.join(SHA256SUMS_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        parse_sums(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    let (first, second) = (read_sums(builds.dirs[0])?, read_sums(builds.dirs[1])?);
    let mut names: Vec<&String> = first.keys().chain(second.keys()).collect();
    names.sort();
    names.dedup();
    let changed = changed_files(&first, &second);
    let mut comparison = Comparison {
        files: names.len().saturating_add(1),
        differing: changed.iter().map(|(n, _)| n.clone()).collect(),
        report: Vec::new(),
    };
    if changed.is_empty() {
        return Ok(comparison);
    }
    comparison.differing.push(SHA256SUMS_FILE.to_string());
    let mut disk: Option<DiskDiff> = None;
    let mut disk_explained = false;
    let report = &mut comparison.report;
    for (name, change) in &changed {
        match change {
            Change::FirstOnly => report.push(format!("{name}: only in the first build")),
            Change::SecondOnly => report.push(format!("{name}: only in the second build")),
            Change::Differs if builds.disk_files.contains(name) => {
                let diff = match &disk {
                    Some(diff) => diff,
                    None => disk.insert(diff_disks(builds.disks[0], builds.disks[1])?),
                };
                let paths = builds.dirs.map(|d| d.join(name));
                if diff.is_same() {
                    let at = files::first_differing_byte(&paths[0], &paths[1])?
                        .map_or_else(|| "nowhere".to_string(), |(o, _)| format!("{o:#x}"));
                    report.push(format!(
                        "{name}: the disk it holds is the same in both builds; the file \
                         itself differs, first at byte {at} (its format's own metadata or \
                         compression)"
                    ));
                } else if disk_explained {
                    report.push(format!("{name}: holds the differing disk (see above)"));
                } else {
                    report.push(format!("{name}: {}", summarise_disk(diff)));
                    let lines = explain_disk(plan, builds.disks, diff)?;
                    report.extend(lines.into_iter().map(|l| format!("  {l}")));
                    disk_explained = true;
                }
            }
            Change::Differs => {
                let paths = builds.dirs.map(|d| d.join(name));
                let what = files::explain_file(name, &paths[0], &paths[1])
                    .unwrap_or_else(|e| format!("cannot compare further: {e:#}"));
                report.push(format!("{name}: {what}"));
            }
        }
    }
    Ok(comparison)
}

fn summarise_disk(diff: &DiskDiff) -> String {
    let blocks = run_bytes(&diff.runs).div_ceil(BLOCK);
    let mut text = match diff.runs.first() {
        Some(&(first, _)) => format!(
            "the disk differs in {blocks} block{} of 4 KiB, the first at {first:#x}",
            if blocks == 1 { "" } else { "s" }
        ),
        None => "the disk's bytes are the same".to_string(),
    };
    if diff.lengths.0 != diff.lengths.1 {
        text.push_str(&format!(
            "; the raw disks are {} and {} bytes long",
            diff.lengths.0, diff.lengths.1
        ));
    }
    text
}

/// One line per region the differing runs fall in, with what differs
/// inside it indented below.
pub fn explain_disk(plan: &Plan, disks: [&Path; 2], diff: &DiskDiff) -> Result<Vec<String>> {
    let regions = plan.layout.regions();
    let mut lines = Vec::new();
    for (region, runs) in regions::group_by_region(&regions, &diff.runs) {
        let bytes = run_bytes(&runs);
        let first = runs.first().map_or(0, |r| r.0);
        let exact = first_byte_differing(disks[0], disks[1], first, BLOCK)
            .ok()
            .flatten()
            .unwrap_or(first);
        let Some(region) = region else {
            lines.push(format!(
                "outside every planned region: {bytes} bytes, the first differing byte at {exact:#x}"
            ));
            continue;
        };
        let inside = exact.saturating_sub(region.start);
        let partition = (region.kind == RegionKind::Partition)
            .then(|| {
                plan.layout
                    .partitions
                    .iter()
                    .find(|p| p.start == region.start && p.end() == region.end)
            })
            .flatten();
        let Some(part) = partition else {
            lines.push(format!(
                "{}: {bytes} bytes, the first differing byte at {exact:#x} (+{inside:#x} in it)",
                region.name
            ));
            continue;
        };
        let mount = part.mount.as_ref().map_or("", |m| m.path.as_str());
        let (kind, details) = match &part.filesystem {
            PlannedFs::Ext4 { .. } => (
                "ext4",
                Some(ext4::explain_ext4(disks, part.start, mount, &runs)),
            ),
            PlannedFs::Vfat { .. } => (
                "vfat",
                Some(vfat::explain_vfat(
                    disks,
                    (part.start, part.end()),
                    mount,
                    inside,
                )),
            ),
            PlannedFs::Raw { .. } => ("raw contents", None),
            PlannedFs::None => ("no filesystem", None),
        };
        let mounted = part
            .mount
            .as_ref()
            .map(|m| format!(", mounted at {}", m.path))
            .unwrap_or_default();
        lines.push(format!(
            "{} ({kind}{mounted}): {} of 4 KiB differ, the first differing byte at {exact:#x} (+{inside:#x} in it)",
            region.name,
            plural_blocks(bytes)
        ));
        match details {
            Some(Ok(details)) => lines.extend(details.into_iter().map(|l| format!("  {l}"))),
            Some(Err(err)) => lines.push(format!("  cannot look inside: {err:#}")),
            None => {}
        }
    }
    Ok(lines)
}

fn plural_blocks(bytes: u64) -> String {
    match bytes.div_ceil(BLOCK) {
        1 => "1 block".to_string(),
        n => format!("{n} blocks"),
    }
}
