//! What the build adds to the ESP: the EFI binaries the board copies out of
//! the rootfs (e.g. Debian's monolithic grub → `EFI/BOOT/BOOTRISCV64.EFI`)
//! and grub.cfg where that EFI image reads it. Pure: takes the captures of
//! the rootfs pass, returns files.

use anyhow::{bail, Context, Result};

use crate::bootloader::grub::{grub_config_from_plan, render_grub_cfg};
use crate::filesystems::vfat::VfatEntry;
use crate::plan::parttype::ESP;
use crate::plan::Plan;
use crate::rootfs::ingest::{DEFAULT_GRUB, OS_RELEASE};
use crate::rootfs::{CaptureResults, Captured};

/// The partition the EFI files go to: the ESP by type, else what is
/// mounted at /boot/efi.
pub fn esp_partition(plan: &Plan) -> Option<&crate::plan::PlannedPartition> {
    plan.layout
        .partitions
        .iter()
        .find(|p| p.part_type.gpt == Some(ESP))
        .or_else(|| {
            plan.partition_holding("/boot/efi")
                .filter(|p| p.mount.as_ref().is_some_and(|m| m.path == "/boot/efi"))
        })
}

/// The EFI binaries named by the board, taken from the rootfs captures.
pub fn efi_files(plan: &Plan, captures: &CaptureResults) -> Result<Vec<VfatEntry>> {
    let mut out = Vec::new();
    for (from, to) in &plan.boot.efi_files {
        let data = match captures.files.get(from.trim_start_matches('/')).or_else(|| captures.files.get(from)) {
            Some(Captured::File(data)) => data.clone(),
            Some(Captured::Symlink(target)) => bail!(
                "EFI file {from} is a symlink to {target} in the rootfs; point [[efi_file]] from at the real file"
            ),
            Some(other) => bail!("EFI file {from} is not a regular file in the rootfs ({other:?})"),
            None => bail!(
                "EFI file {from} is not in the rootfs; install the distro's grub EFI package \
                 (Debian: grub-efi-{}-bin) or fix [[efi_file]] in the board file",
                plan.board.arch.debian_arch()
            ),
        };
        out.push(VfatEntry::File {
            path: to.trim_start_matches('/').to_string(),
            data,
        });
    }
    Ok(out)
}

/// grub.cfg rendered from the template and what /boot holds.
pub fn grub_cfg_file(plan: &Plan, captures: &CaptureResults) -> Result<VfatEntry> {
    let boot_names: Vec<String> = captures
        .dirs
        .get("/boot")
        .or_else(|| captures.dirs.get("boot"))
        .map(|children| children.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let text_of = |path: &str| -> Option<String> {
        match captures
            .files
            .get(path.trim_start_matches('/'))
            .or_else(|| captures.files.get(path))
        {
            Some(Captured::File(data)) => Some(String::from_utf8_lossy(data).into_owned()),
            _ => None,
        }
    };
    let default_grub = text_of(DEFAULT_GRUB);
    let os_release = OS_RELEASE.iter().find_map(|p| text_of(p));
    let config = grub_config_from_plan(
        plan,
        &boot_names,
        default_grub.as_deref(),
        os_release.as_deref(),
    )
    .context("making grub.cfg")?;
    let text = render_grub_cfg(&config)?;
    Ok(VfatEntry::File {
        path: plan.boot.grub_cfg.trim_start_matches('/').to_string(),
        data: text.into_bytes(),
    })
}
