//! Plan + rootfs contents → one finished image file per partition.
//!
//! vfat partitions get the rootfs files under their mount point plus the
//! extra files the build adds (EFI binaries, grub.cfg); ext4 partitions are
//! made by `mke2fs -d` from their tar; raw partitions point at the board's
//! file. Images are sparse files in the work directory, complete before the
//! disk is assembled. The build makes them in two groups ([`ImageGroup`]):
//! ext4 and raw first, then vfat, because `--grub mkconfig` makes the ESP's
//! grub.cfg from the finished root filesystem.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::board::paths::open_resolved;
use anyhow::{bail, Context, Result};

use crate::filesystems::ext4::{build_ext4, Ext4Params};
use crate::filesystems::vfat::{format_vfat, FatType, FileSlice, VfatEntry, VfatOptions};
use crate::plan::{Plan, PlannedFs};
use crate::rootfs::ingest::RootfsContents;
use crate::rootfs::MemKind;

/// A finished partition image.
#[derive(Debug, Clone)]
pub struct PartitionImage {
    pub partition: String,
    pub path: PathBuf,
}

/// Which partitions one call builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageGroup {
    /// ext4 and raw: everything the ESP's contents may depend on (`--grub
    /// mkconfig` reads the finished root filesystem).
    NotVfat,
    /// vfat, with the extra files (grub.cfg) made from the others.
    Vfat,
}

impl ImageGroup {
    fn holds(self, fs: &PlannedFs) -> bool {
        matches!(fs, PlannedFs::Vfat { .. }) == (self == ImageGroup::Vfat)
    }
}

/// Build every partition's image. `extra` adds files to vfat partitions
/// (partition name → entries), e.g. EFI binaries and grub.cfg for the ESP.
pub fn build_partition_images(
    plan: &Plan,
    contents: &RootfsContents,
    extra: &BTreeMap<String, Vec<VfatEntry>>,
    epoch: i64,
    workdir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PartitionImage>> {
    let mut images = build_image_group(
        plan,
        contents,
        &BTreeMap::new(),
        epoch,
        workdir,
        ImageGroup::NotVfat,
        progress,
    )?;
    images.extend(build_image_group(
        plan,
        contents,
        extra,
        epoch,
        workdir,
        ImageGroup::Vfat,
        progress,
    )?);
    sort_by_layout(plan, &mut images);
    Ok(images)
}

/// Images in the order of the partition table.
pub fn sort_by_layout(plan: &Plan, images: &mut [PartitionImage]) {
    let index = |name: &str| plan.layout.partitions.iter().position(|p| p.name == name);
    images.sort_by_key(|image| index(&image.partition));
}

/// Build the images of one [`ImageGroup`], in layout order.
pub fn build_image_group(
    plan: &Plan,
    contents: &RootfsContents,
    extra: &BTreeMap<String, Vec<VfatEntry>>,
    epoch: i64,
    workdir: &Path,
    group: ImageGroup,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PartitionImage>> {
    let mut images = Vec::new();
    for part in plan
        .layout
        .partitions
        .iter()
        .filter(|p| group.holds(&p.filesystem))
    {
        let who = format!("partition {} '{}'", part.number, part.name);
        let image = workdir.join(format!("{}.img", part.name));
        match &part.filesystem {
            PlannedFs::Vfat { label, volume_id } => {
                let mut entries: Vec<VfatEntry> = Vec::new();
                for entry in contents.files.get(&part.name).into_iter().flatten() {
                    if entry.path.is_empty() {
                        continue; // the mount point itself
                    }
                    match &entry.kind {
                        MemKind::Dir => entries.push(VfatEntry::Dir {
                            path: entry.path.clone(),
                        }),
                        MemKind::File(data) => entries.push(VfatEntry::File {
                            path: entry.path.clone(),
                            data: data.clone(),
                        }),
                        MemKind::Spilled(spilled) => entries.push(VfatEntry::Slice {
                            path: entry.path.clone(),
                            data: FileSlice {
                                file: Arc::clone(&spilled.file),
                                offset: spilled.offset,
                                len: spilled.len,
                            },
                        }),
                        MemKind::Symlink(target) => bail!(
                            "{who}: {} is a symlink (to {target}); FAT cannot hold symlinks",
                            entry.path
                        ),
                    }
                }
                for add in extra.get(&part.name).into_iter().flatten() {
                    entries.retain(|e| e.path() != add.path());
                    entries.push(add.clone());
                }
                let opts = VfatOptions {
                    label: label.clone().unwrap_or_default(),
                    volume_id: *volume_id,
                    fat_type: FatType::Auto,
                    timestamp: epoch,
                };
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&image)
                    .with_context(|| format!("creating {}", image.display()))?;
                file.set_len(part.size)?;
                format_vfat(&file, part.size, &opts, &entries)
                    .with_context(|| format!("{who}: writing the vfat filesystem"))?;
                progress(&format!("{who}: vfat, {} entries", entries.len()));
                images.push(PartitionImage {
                    partition: part.name.clone(),
                    path: image,
                });
            }
            PlannedFs::Ext4 {
                label,
                uuid,
                hash_seed,
            } => {
                let Some((tar, xattrs)) = contents.tars.get(&part.name) else {
                    bail!("{who}: ext4 without a mount point has no contents (set mount = \"/…\")");
                };
                let params = Ext4Params {
                    partition: part.name.clone(),
                    label: label.clone(),
                    uuid: *uuid,
                    hash_seed: *hash_seed,
                    source_date_epoch: epoch,
                };
                let report = build_ext4(&image, part.size, tar, &params, xattrs, workdir)
                    .with_context(|| format!("{who}: building the ext4 filesystem"))?;
                progress(&format!(
                    "{who}: ext4, {} MiB used of {} MiB, {} inodes, {:.1}s",
                    report.used_bytes >> 20,
                    part.size >> 20,
                    report.inodes,
                    report.elapsed.as_secs_f64()
                ));
                images.push(PartitionImage {
                    partition: part.name.clone(),
                    path: image,
                });
            }
            PlannedFs::Raw { source } => {
                // The planner resolved the board's path (no symlinks left);
                // a symlink planted since is not followed.
                let file = open_resolved(source)
                    .with_context(|| format!("{who}: raw contents {}", source.display()))?;
                if !file.metadata()?.is_file() {
                    bail!(
                        "{who}: raw contents {} is not a regular file",
                        source.display()
                    );
                }
                images.push(PartitionImage {
                    partition: part.name.clone(),
                    path: source.clone(),
                });
            }
            PlannedFs::None => {}
        }
    }
    Ok(images)
}
