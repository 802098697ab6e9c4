//! Whether a flash target is in use by the running system: the refusals
//! `mkimg flash` makes before it opens the target for writing.
//!
//! A block device is in use when it, one of its partitions, or a device
//! stacked on any of them (device mapper, md: sysfs `holders/`) is mounted
//! (`/proc/self/mountinfo`, by major:minor and by the `/dev/…` source) or
//! is active swap (`/proc/swaps`). A mount of `/` among them is reported as
//! "holds the running system". A partition whose *sibling* is mounted is
//! not refused: writing `sda1` leaves `sda2` alone. The kernel's `O_EXCL`
//! on the open (see `host::target`) is the second line of defence: it
//! fails on a device that is mounted or claimed by a holder.
//!
//! A regular file is in use when it is an active swap file or backs a loop
//! device (sysfs `block/loop*/loop/backing_file`): writing it would change
//! what the swap or the loop device (and whatever is mounted from it)
//! reads underneath.
//!
//! In: the target's identity (device number, or file device and inode) and
//! [`HostTables`], the paths of the mount table, the swap table and sysfs —
//! parameters, so tests inject fixtures (`mkimg flash`'s hidden
//! `--mount-table`, `--swaps`, `--sysfs`) and never depend on, or touch,
//! the machine's real disks. Out: `None`, or an [`InUse`] saying who uses
//! what. Reads only; writes nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where the host's tables are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTables {
    pub mountinfo: PathBuf,
    pub swaps: PathBuf,
    pub sysfs: PathBuf,
}

impl Default for HostTables {
    fn default() -> Self {
        HostTables {
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            swaps: PathBuf::from("/proc/swaps"),
            sysfs: PathBuf::from("/sys"),
        }
    }
}

/// A block device number, `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    pub fn from_rdev(rdev: u64) -> DevNum {
        DevNum {
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        }
    }

    /// `8:1`, as mountinfo and sysfs `dev` files write it.
    pub fn parse(text: &str) -> Option<DevNum> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(DevNum {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// What a flash target is, for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetId {
    Block(DevNum),
    File { dev: u64, ino: u64 },
}

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// 1-based line in the table.
    pub line: usize,
    pub dev: DevNum,
    pub mount_point: String,
    pub source: String,
}

/// The lines of `/proc/self/mountinfo` (see proc(5)): `ID PARENT MAJ:MIN
/// ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>, String> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index.saturating_add(1);
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let bad = || format!("line {number}: not a mountinfo line: {line:?}");
        let dev = fields
            .get(2)
            .and_then(|f| DevNum::parse(f))
            .ok_or_else(bad)?;
        let mount_point = fields.get(4).map(|f| unescape(f)).ok_or_else(bad)?;
        let dash = fields.iter().position(|f| *f == "-").ok_or_else(bad)?;
        let source = fields
            .get(dash.saturating_add(2))
            .map(|f| unescape(f))
            .ok_or_else(bad)?;
        entries.push(MountEntry {
            line: number,
            dev,
            mount_point,
            source,
        });
    }
    Ok(entries)
}

/// The `Filename` column of `/proc/swaps` (after its header line).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// The kernel's octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i.saturating_add(1)..i.saturating_add(4))
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(c) => {
                out.push(c);
                i = i.saturating_add(4);
            }
            None => {
                out.push(b);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a device relates to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    Itself,
    /// A partition of the target (a whole disk).
    Partition(String),
    /// A device stacked on the target or a partition of it.
    Holder(String),
}

/// The target and every device whose use would make writing it unsafe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub members: Vec<(DevNum, Relation)>,
}

impl Family {
    fn relation(&self, dev: DevNum) -> Option<&Relation> {
        self.members.iter().find(|(d, _)| *d == dev).map(|(_, r)| r)
    }

    pub fn contains(&self, dev: DevNum) -> bool {
        self.relation(dev).is_some()
    }
}

/// Stacked devices followed at most this deep (dm on md on a partition is 2).
const MAX_HOLDER_DEPTH: usize = 8;
/// Members at most: a disk has at most a few hundred partitions.
const MAX_MEMBERS: usize = 4096;

/// `dev`, its partitions when it is a whole disk, and the holders of
/// those, from sysfs. A device sysfs does not know is its own family.
pub fn device_family(sysfs: &Path, dev: DevNum) -> Family {
    let mut members = vec![(dev, Relation::Itself)];
    let Ok(dir) = fs::canonicalize(sysfs.join("dev/block").join(dev.to_string())) else {
        return Family { members };
    };
    let mut dirs = vec![dir.clone()];
    if !dir.join("partition").exists() {
        for part in subdirs(&dir).filter(|d| d.join("partition").exists()) {
            if let Some(num) = read_dev(&part) {
                members.push((num, Relation::Partition(file_name(&part))));
                dirs.push(part);
            }
        }
    }
    let mut seen: BTreeSet<DevNum> = members.iter().map(|(d, _)| *d).collect();
    let mut level = dirs;
    for _ in 0..MAX_HOLDER_DEPTH {
        let mut next = Vec::new();
        for holder in level.iter().flat_map(|d| subdirs(&d.join("holders"))) {
            let Ok(holder) = fs::canonicalize(&holder) else {
                continue;
            };
            if let Some(num) = read_dev(&holder) {
                if seen.insert(num) && members.len() < MAX_MEMBERS {
                    members.push((num, Relation::Holder(file_name(&holder))));
                    next.push(holder);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Family { members }
}

fn subdirs(dir: &Path) -> impl Iterator<Item = PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
}

fn read_dev(dir: &Path) -> Option<DevNum> {
    DevNum::parse(&fs::read_to_string(dir.join("dev")).ok()?)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Why a target may not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InUse {
    Mounted {
        dev: DevNum,
        relation: Relation,
        mount_point: String,
        source: String,
        table: PathBuf,
        line: usize,
    },
    Swap {
        path: String,
        relation: Option<Relation>,
    },
    LoopBacking {
        device: String,
    },
}

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = |relation: &Relation| match relation {
            Relation::Itself => String::from("it"),
            Relation::Partition(name) => format!("its partition {name}"),
            Relation::Holder(name) => format!("{name}, a device stacked on it"),
        };
        match self {
            InUse::Mounted {
                dev,
                relation,
                mount_point,
                source,
                table,
                line,
            } => {
                let what = match mount_point.as_str() {
                    "/" => "holds the running system: ",
                    _ => "is in use: ",
                };
                write!(
                    f,
                    "{what}{} ({dev}, {source}) is mounted at {mount_point} ({}:{line})",
                    whose(relation),
                    table.display()
                )
            }
            InUse::Swap {
                path,
                relation: Some(relation),
            } => write!(f, "is in use: {} is active swap ({path})", whose(relation)),
            InUse::Swap {
                path,
                relation: None,
            } => write!(f, "is an active swap file ({path})"),
            InUse::LoopBacking { device } => write!(
                f,
                "backs the loop device /dev/{device}: detach it first (losetup -d /dev/{device})"
            ),
        }
    }
}

/// The first reason `target` may not be written, or `None`.
pub fn find_use(target: TargetId, tables: &HostTables) -> Result<Option<InUse>> {
    let read = |path: &Path| {
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let swaps = parse_swaps(&read(&tables.swaps)?);
    match target {
        TargetId::Block(dev) => {
            let family = device_family(&tables.sysfs, dev);
            let text = read(&tables.mountinfo)?;
            let mounts = parse_mountinfo(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", tables.mountinfo.display()))?;
            for mount in mounts {
                let by_number = family.relation(mount.dev);
                let by_source = block_rdev(&mount.source).and_then(|d| family.relation(d));
                if let Some(relation) = by_number.or(by_source) {
                    return Ok(Some(InUse::Mounted {
                        dev: mount.dev,
                        relation: relation.clone(),
                        mount_point: mount.mount_point,
                        source: mount.source,
                        table: tables.mountinfo.clone(),
                        line: mount.line,
                    }));
                }
            }
            for path in swaps {
                if let Some(relation) = block_rdev(&path).and_then(|d| family.relation(d)) {
                    return Ok(Some(InUse::Swap {
                        relation: Some(relation.clone()),
                        path,
                    }));
                }
            }
            Ok(None)
        }
        TargetId::File { dev, ino } => {
            let same = |path: &Path| {
                fs::metadata(path).is_ok_and(|m| m.is_file() && m.dev() == dev && m.ino() == ino)
            };
            if let Some(path) = swaps.into_iter().find(|p| same(Path::new(p))) {
                return Ok(Some(InUse::Swap {
                    path,
                    relation: None,
                }));
            }
            for device in subdirs(&tables.sysfs.join("block")) {
                let Ok(backing) = fs::read_to_string(device.join("loop/backing_file")) else {
                    continue;
                };
                let backing = backing.trim_end_matches('\n');
                if same(Path::new(backing)) {
                    return Ok(Some(InUse::LoopBacking {
                        device: file_name(&device),
                    }));
                }
            }
            Ok(None)
        }
    }
}

/// The device number of `path` when it names a block device under /dev
/// (a mount source or a swap device); other sources (`tmpfs`, a server
/// export) are not looked at.
fn block_rdev(path: &str) -> Option<DevNum> {
    if !path.starts_with("/dev/") {
        return None;
    }
    let meta = fs::metadata(path).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| DevNum::from_rdev(meta.rdev()))
}

/// Refuse `target` (named `shown`) when [`find_use`] finds a use.
pub fn refuse_in_use(shown: &Path, target: TargetId, tables: &HostTables) -> Result<()> {
    if let Some(reason) = find_use(target, tables)? {
        bail!("refusing to write {}: it {reason}", shown.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
