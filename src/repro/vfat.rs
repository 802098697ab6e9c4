//! A vfat partition of the two builds read back and compared: the files
//! whose contents differ, the ones only one build has, or, when the trees
//! are the same, the FAT metadata (boot sector, FATs, directory entries).
//!
//! Reads the partition's byte range of each raw disk through
//! `filesystems::vfat::read_vfat_tree` (every file in memory: an ESP is
//! small). The names come from the volume, so they are printed with
//! control characters escaped. Writes nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use fscommon::StreamSlice;

use crate::filesystems::ext4::shown;
use crate::filesystems::vfat::{read_vfat_tree, VfatEntry};

/// How many differing files are named.
const SHOWN: usize = 5;

/// The tree of the volume at `range` of `disk`: path → contents (None
/// for a directory).
fn read_tree(disk: &Path, range: (u64, u64)) -> Result<BTreeMap<String, Option<Vec<u8>>>> {
    let file = File::open(disk).with_context(|| format!("opening {}", disk.display()))?;
    let at = || format!("bytes {:#x}..{:#x} of {}", range.0, range.1, disk.display());
    let slice =
        StreamSlice::new(file, range.0, range.1).with_context(|| format!("reading {}", at()))?;
    let entries =
        read_vfat_tree(slice).with_context(|| format!("reading the FAT volume at {}", at()))?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| match entry {
            VfatEntry::Dir { path } => Some((path, None)),
            VfatEntry::File { path, data } => Some((path, Some(data))),
            VfatEntry::Slice { .. } => None,
        })
        .collect())
}

/// What differs in the FAT volume at disk bytes `range` of the two disks,
/// one line per file (the path as the running system sees it, under
/// `mount`, the partition's mount point or ""). `first_offset` is where
/// the first differing byte lies inside the partition, for the
/// metadata-only case.
pub fn explain_vfat(
    disks: [&Path; 2],
    range: (u64, u64),
    mount: &str,
    first_offset: u64,
) -> Result<Vec<String>> {
    let first = read_tree(disks[0], range)?;
    let second = read_tree(disks[1], range)?;
    let mount = mount.trim_end_matches('/');
    let mut lines = Vec::new();
    let mut paths: Vec<&String> = first.keys().chain(second.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let what = match (first.get(path), second.get(path)) {
            (Some(Some(a)), Some(Some(b))) if a != b => {
                let at = a
                    .iter()
                    .zip(b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                format!(
                    "contents differ ({} and {} bytes, first at byte {at})",
                    a.len(),
                    b.len()
                )
            }
            (Some(None), Some(Some(_))) => {
                "a directory in the first build, a file in the second".into()
            }
            (Some(Some(_)), Some(None)) => {
                "a file in the first build, a directory in the second".into()
            }
            (Some(_), None) => "only in the first build".into(),
            (None, Some(_)) => "only in the second build".into(),
            _ => continue,
        };
        lines.push(format!("{mount}/{}: {what}", shown(path)));
    }
    if lines.is_empty() {
        return Ok(vec![format!(
            "the files and directories are the same: FAT metadata differs (boot sector, \
             FATs or directory entries: names, dates, attributes), first at +{first_offset:#x}"
        )]);
    }
    let more = lines.len().saturating_sub(SHOWN);
    lines.truncate(SHOWN);
    if more > 0 {
        lines.push(format!("… and {more} more files"));
    }
    Ok(lines)
}
