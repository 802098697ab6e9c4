//! `vfat` images: genimage runs `mkdosfs EXTRAARGS -n LABEL` on a sparse
//! file of `size` bytes, then `mcopy -sp` each input in; mkimg writes the
//! volume with its own FAT writer (`filesystems::vfat`, lamfat), so the
//! bytes differ (the FAT layout and cluster size are lamfat's) but the
//! files, directories and label are the same — checked against genimage 16
//! with `mdir`/`mtype` and `fsck.fat -n`.
//!
//! What is copied, as genimage 16 does it:
//! - `file NAME { image = X }`, in order, then `files = { X, … }`: each X is
//!   an image of the config already built or a file or directory of the
//!   input path; `file` puts it at NAME (parent directories created, as
//!   genimage's `mmd`), `files` at the root under X's last component (what
//!   `mcopy X ::` does). A directory is copied with everything in it.
//! - neither: the image's tree (see `from_genimage`) — but, as genimage's
//!   `mcopy DIR/* ::` shell glob does, without the entries at its top whose
//!   name starts with '.'.
//! - `empty = true` changes nothing: genimage 16's vfat ignores it (checked:
//!   the files are copied all the same), and so does mkimg.
//!
//! Symlinks: `mcopy` follows them wherever they point, on the build host.
//! mkimg follows one only inside the tree being copied (a relative target,
//! resolved lexically from the link's directory, that stays inside it and
//! ends at a regular file, through at most 40 links); an absolute target, a
//! target outside, a directory or a dangling link is an error naming the
//! link, because a config must not be able to copy a host file (mkimg
//! often runs as root) into an image.
//!
//! `extraargs` (already an allow-list of mkdosfs options) maps onto the
//! writer: `-F` the FAT type, `-n` the label (`label` wins, as it comes
//! after extraargs on genimage's command line), `-i` the volume id; `-f 2`,
//! `-S 512` and `-r 512` are what lamfat writes anyway; other values of
//! those and `-s` (cluster size) are refused with the image's location:
//! lamfat chooses the cluster size itself. The volume id, random in
//! mkdosfs, is derived from the seed and the image name; every time stamp
//! is SOURCE_DATE_EPOCH.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::content::{size_limit, stream_dir_for, stream_image_tree};
use super::inputs::{basename, resolve_input, Input};
use super::{identities, locate, required_size, FsEnv};
use crate::filesystems::vfat::{format_vfat, FatType, FileSlice, VfatEntry, VfatOptions};
use crate::genimage::model::Vfat;
use crate::genimage::values::MkdosfsArg;
use crate::genimage::Image;
use crate::rootfs::{MemEntry, MemKind, MemPolicy, MemorySink};

/// Symlinks followed in a row before giving up (the kernel's limit).
const MAX_LINK_HOPS: usize = 40;

pub fn build(image: &Image, v: &Vfat, env: &FsEnv<'_>, out: &std::path::Path) -> Result<()> {
    let size = required_size(image)?;
    let volume_id = identities(env).u32(&format!("vfat-volume-id:{}", image.file.value));
    let opts = vfat_options(image, v, volume_id, env.source_date_epoch)?;
    let scratch = tempfile::Builder::new()
        .prefix("vfat-")
        .tempdir_in(env.tmppath)
        .with_context(|| format!("creating a scratch directory in {}", env.tmppath.display()))?;
    let entries = if v.files.is_empty() && v.file_entries.is_empty() {
        let mut sink = spill_sink(scratch.path())?;
        stream_image_tree(image, env, &mut sink, size_limit(image, size))?;
        let visible: Vec<MemEntry> = sink
            .into_entries()
            .into_iter()
            .filter(|e| !e.path.is_empty() && !e.path.starts_with('.'))
            .collect();
        to_vfat_entries(&visible, "").with_context(|| locate(image))?
    } else {
        input_entries(image, v, env, size, scratch.path())?
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    file.set_len(size)
        .with_context(|| format!("sizing {} to {size} bytes", out.display()))?;
    format_vfat(&file, size, &opts, &entries)
        .with_context(|| format!("{}: writing the vfat filesystem", locate(image)))?;
    scratch
        .close()
        .context("removing the vfat scratch directory")?;
    Ok(())
}

fn spill_sink(dir: &std::path::Path) -> Result<MemorySink> {
    let spill = tempfile::tempfile_in(dir)
        .with_context(|| format!("creating a spill file in {}", dir.display()))?;
    Ok(MemorySink::new(MemPolicy::KeepSymlinks).with_spill(spill))
}

/// The writer's options from the label, the extraargs and the seed.
pub fn vfat_options(image: &Image, v: &Vfat, volume_id: u32, epoch: i64) -> Result<VfatOptions> {
    let mut opts = VfatOptions {
        label: String::new(),
        volume_id,
        fat_type: FatType::Auto,
        timestamp: epoch,
    };
    let refuse = |arg: String, why: &str| -> Result<()> {
        bail!(
            "{}: image '{}': extraargs '{arg}' is refused: {why}",
            image.file.at,
            image.file.value
        )
    };
    for arg in &v.extraargs {
        match arg {
            MkdosfsArg::FatSize(12) => opts.fat_type = FatType::Fat12,
            MkdosfsArg::FatSize(16) => opts.fat_type = FatType::Fat16,
            MkdosfsArg::FatSize(32) => opts.fat_type = FatType::Fat32,
            MkdosfsArg::FatSize(n) => refuse(format!("-F {n}"), "12, 16 or 32")?,
            MkdosfsArg::Label(l) => opts.label = l.clone(),
            MkdosfsArg::VolumeId(id) => opts.volume_id = *id,
            MkdosfsArg::Fats(2) | MkdosfsArg::SectorSize(512) | MkdosfsArg::RootEntries(512) => {}
            MkdosfsArg::Fats(n) => refuse(
                format!("-f {n}"),
                "mkimg's FAT writer (lamfat) always writes 2 FATs",
            )?,
            MkdosfsArg::SectorSize(n) => refuse(
                format!("-S {n}"),
                "mkimg's FAT writer (lamfat) writes 512-byte sectors only",
            )?,
            MkdosfsArg::RootEntries(n) => refuse(
                format!("-r {n}"),
                "mkimg's FAT writer (lamfat) gives FAT12/16 roots 512 entries",
            )?,
            MkdosfsArg::SectorsPerCluster(n) => refuse(
                format!("-s {n}"),
                "mkimg's FAT writer (lamfat) chooses the cluster size from the volume size",
            )?,
        }
    }
    if let Some(label) = &v.label {
        opts.label = label.value.clone();
    }
    Ok(opts)
}

/// `file NAME { image = … }` then `files = { … }`.
fn input_entries(
    image: &Image,
    v: &Vfat,
    env: &FsEnv<'_>,
    size: u64,
    scratch: &std::path::Path,
) -> Result<Vec<VfatEntry>> {
    let mut out = Vec::new();
    let placed = v
        .file_entries
        .iter()
        .map(|f| (&f.image, Some(&f.name)))
        .chain(v.files.iter().map(|f| (f, None)));
    for (source, name) in placed {
        let target = match name {
            Some(n) => check_target(&n.value)
                .map_err(|why| anyhow::anyhow!("{}: file '{}': {why}", n.at, n.value))?,
            None => basename(&source.value)
                .with_context(|| format!("{}: '{}' has no file name", source.at, source.value))?
                .to_owned(),
        };
        match resolve_input(source, env)? {
            Input::Built(path) | Input::File(path) => {
                out.extend(parents(&target));
                out.push(slice_entry(&target, &path)?);
            }
            Input::Dir(dir) => {
                let mut sink = spill_sink(scratch)?;
                stream_dir_for(image, &dir, env, &mut sink, size_limit(image, size)).with_context(
                    || format!("{}: copying directory '{}'", source.at, source.value),
                )?;
                out.extend(parents(&target));
                out.push(VfatEntry::Dir {
                    path: target.clone(),
                });
                let entries: Vec<MemEntry> = sink
                    .into_entries()
                    .into_iter()
                    .filter(|e| !e.path.is_empty())
                    .collect();
                out.extend(
                    to_vfat_entries(&entries, &target)
                        .with_context(|| format!("{}: directory '{}'", source.at, source.value))?,
                );
            }
        }
    }
    // genimage's `mmd` creates each parent once; so does the writer, but
    // it refuses a directory given twice.
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| !matches!(e, VfatEntry::Dir { .. }) || seen.insert(e.path().to_owned()));
    Ok(out)
}

/// A `file NAME` target: relative, no empty, '.' or '..' component.
fn check_target(name: &str) -> Result<String, String> {
    let parts: Vec<&str> = name.split('/').collect();
    if name.starts_with('/')
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(
            "write a relative path inside the filesystem, without '.', '..' or '//'".into(),
        );
    }
    Ok(name.to_owned())
}

/// The directories above `path`, outermost first.
fn parents(path: &str) -> Vec<VfatEntry> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = path[at..].find('/') {
        out.push(VfatEntry::Dir {
            path: path[..at + i].to_owned(),
        });
        at += i + 1;
    }
    out
}

/// A file copied in chunks from `path` (a built image or an input).
fn slice_entry(target: &str, path: &std::path::Path) -> Result<VfatEntry> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(VfatEntry::Slice {
        path: target.to_owned(),
        data: FileSlice {
            file: Arc::new(file),
            offset: 0,
            len,
        },
    })
}

/// Entries of one copied tree (paths relative to it) as writer entries
/// under `prefix`, symlinks replaced by the file they lead to.
pub fn to_vfat_entries(entries: &[MemEntry], prefix: &str) -> Result<Vec<VfatEntry>> {
    let index: HashMap<&str, &MemEntry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let under = |p: &str| {
        if prefix.is_empty() {
            p.to_owned()
        } else {
            format!("{prefix}/{p}")
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let path = under(&entry.path);
        let kind = match &entry.kind {
            MemKind::Symlink(_) => follow(entry, &index)?,
            other => other,
        };
        out.push(match kind {
            MemKind::Dir => VfatEntry::Dir { path },
            MemKind::File(data) => VfatEntry::File {
                path,
                data: data.clone(),
            },
            MemKind::Spilled(s) => VfatEntry::Slice {
                path,
                data: FileSlice {
                    file: Arc::clone(&s.file),
                    offset: s.offset,
                    len: s.len,
                },
            },
            MemKind::Symlink(_) => bail!("{}: a symlink loop", entry.path),
        });
    }
    Ok(out)
}

/// The regular file a symlink leads to inside the tree.
fn follow<'e>(link: &'e MemEntry, index: &HashMap<&str, &'e MemEntry>) -> Result<&'e MemKind> {
    let mut at = link;
    for _ in 0..MAX_LINK_HOPS {
        let MemKind::Symlink(target) = &at.kind else {
            return match &at.kind {
                MemKind::Dir => bail!(
                    "/{} is a symlink to a directory (/{}): FAT has no symlinks, and mkimg copies only a regular file in a link's place",
                    link.path,
                    at.path
                ),
                kind => Ok(kind),
            };
        };
        let resolved = resolve_link(&at.path, target).with_context(|| {
            format!(
                "/{} is a symlink to {target}, which leaves the copied tree: FAT has no symlinks, and mkimg follows one only inside the tree (genimage's mcopy would read the build host's file)",
                link.path
            )
        })?;
        at = index.get(resolved.as_str()).copied().with_context(|| {
            format!(
                "/{} is a symlink to {target}, which does not exist in the copied tree",
                link.path
            )
        })?;
    }
    bail!(
        "/{}: more than {MAX_LINK_HOPS} symlinks in a row",
        link.path
    )
}

/// `target` of the link at `path`, lexically, relative to the tree root;
/// `None` for an absolute target or one climbing above the root.
pub fn resolve_link(path: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    parts.pop();
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}
