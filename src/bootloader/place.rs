//! Puts generated boot files onto the partition that must hold them, after
//! the rootfs pass (their content depends on what the pass found).
//!
//! - vfat partitions: an extra [`VfatEntry`], like the ESP's grub.cfg;
//! - ext4 partitions: entries appended to the partition's tar before
//!   `mke2fs -d` reads it ([`append_files`]), owned root:root, mtime =
//!   SOURCE_DATE_EPOCH, so the image stays reproducible.
//!
//! The generators stay pure; this is the one small writer. A stale
//! `/boot/extlinux/extlinux.conf` of the rootfs is dropped during the pass
//! (see `rootfs::ingest`), so ours is the only one.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::bootloader::detect::RootfsBoot;
use crate::bootloader::extlinux::extlinux_file;
use crate::filesystems::vfat::VfatEntry;
use crate::plan::{Plan, PlannedFs};
use crate::rootfs::ingest::RootfsContents;
use crate::rootfs::{append_files, AddedFile, NodeType};

/// Write extlinux.conf onto the partition holding /boot: into `extra`
/// (vfat) or the partition's tar (ext4). Returns where it went.
pub fn place_extlinux(
    plan: &Plan,
    contents: &RootfsContents,
    boot: &RootfsBoot,
    epoch: i64,
    extra: &mut BTreeMap<String, Vec<VfatEntry>>,
) -> Result<String> {
    let file = extlinux_file(plan, boot)?;
    let part = plan
        .layout
        .partitions
        .iter()
        .find(|p| p.name == file.partition)
        .context("the partition holding /boot")?;
    let who = format!("partition {} '{}'", part.number, part.name);
    match &part.filesystem {
        PlannedFs::Vfat { .. } => {
            extra
                .entry(part.name.clone())
                .or_default()
                .push(VfatEntry::File {
                    path: file.path.clone(),
                    data: file.text.into_bytes(),
                });
        }
        PlannedFs::Ext4 { .. } => {
            let (tar, _) = contents
                .tars
                .get(&part.name)
                .with_context(|| format!("{who}: no tar for the ext4 holding /boot"))?;
            let mtime = u64::try_from(epoch).unwrap_or(0);
            let dir = file.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let mut added = Vec::new();
            // The rootfs may already have /boot/extlinux (its old config is
            // removed during the pass, the directory kept).
            let has_dir = contents.captures.dirs.get("/boot").is_some_and(|d| {
                d.iter()
                    .any(|c| c.name == "extlinux" && c.node == NodeType::Dir)
            });
            if !has_dir {
                added.push(AddedFile {
                    path: dir.to_string(),
                    data: None,
                    mtime,
                });
            }
            added.push(AddedFile {
                path: file.path.clone(),
                data: Some(file.text.into_bytes()),
                mtime,
            });
            append_files(tar, &added)
                .with_context(|| format!("{who}: adding {} to {}", file.path, tar.display()))?;
        }
        other => bail!("{who} holds /boot but is {other:?}; extlinux.conf needs ext4 or vfat"),
    }
    Ok(format!("{who}: /{}", file.path))
}
