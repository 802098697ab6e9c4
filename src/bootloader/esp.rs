//! What the build adds to the ESP: the grub EFI binary detected in the
//! rootfs (`detect`; e.g. Debian's monolithic grub or openEuler's
//! `/boot/efi/EFI/openEuler/grubriscv64.efi`) at the removable-media path
//! `EFI/BOOT/BOOT<ARCH>.EFI`, or the files the board's `[[efi_file]]`s name,
//! and grub.cfg where that binary's prefix says it reads it (or the board's
//! `[boot] grub_cfg`). Pure: takes the captures of the rootfs pass, returns
//! files.

use anyhow::{bail, Context, Result};

use crate::board::schema::BootLoader;
use crate::bootloader::detect::{captured_file, usable_grub, RootfsBoot};
use crate::bootloader::grub::{grub_config_for_rootfs, render_grub_cfg};
use crate::filesystems::vfat::VfatEntry;
use crate::plan::Plan;
use crate::rootfs::{CaptureResults, Captured};

/// What the build puts in the ESP for the boot loader.
#[derive(Debug, Clone)]
pub struct EspBoot {
    /// EFI binaries: the board's `[[efi_file]]`s, or the detected grub at
    /// the removable-media path.
    pub files: Vec<VfatEntry>,
    /// ESP path of grub.cfg (GRUB only): the board's `[boot] grub_cfg`,
    /// else where the grub binary's prefix says.
    pub grub_cfg: Option<String>,
    /// One line for the build log: what was copied and why there.
    pub summary: String,
}

/// The ESP's boot files for `plan` and the rootfs's detected `boot`.
pub fn esp_boot(plan: &Plan, boot: &RootfsBoot, captures: &CaptureResults) -> Result<EspBoot> {
    let arch = plan.board.arch;
    if !plan.boot.efi_files.is_empty() {
        let files = board_efi_files(plan, captures)?;
        if plan.boot.loader != BootLoader::Grub {
            return Ok(EspBoot {
                summary: format!("{} EFI file(s) from [[efi_file]]", files.len()),
                files,
                grub_cfg: None,
            });
        }
        if let Some(cfg) = &plan.boot.grub_cfg {
            return Ok(EspBoot {
                summary: format!("[[efi_file]] and [boot] grub_cfg = {cfg:?} from the board"),
                files,
                grub_cfg: Some(cfg.trim_start_matches('/').to_string()),
            });
        }
        // The board's grub: its prefix says where grub.cfg goes.
        let boot_file = arch
            .efi_boot_file()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (from, to) = plan
            .boot
            .efi_files
            .iter()
            .find(|(_, to)| to.to_ascii_lowercase().ends_with(&boot_file))
            .unwrap_or(&plan.boot.efi_files[0]);
        let data = captured_file(captures, from).unwrap_or_default();
        let dir = to
            .trim_start_matches('/')
            .rsplit_once('/')
            .map_or("", |(d, _)| d);
        let (_, cfg) = usable_grub(data, arch, plan.esp_partition(), plan.table(), dir)
            .map_err(|why| {
                anyhow::anyhow!(
                    "[[efi_file]] {from}: {why}; set [boot] grub_cfg to the ESP path this grub reads"
                )
            })?;
        return Ok(EspBoot {
            summary: format!("{from} from [[efi_file]] → {to}; grub.cfg where its prefix says"),
            files,
            grub_cfg: Some(cfg),
        });
    }
    if plan.boot.loader != BootLoader::Grub {
        return Ok(EspBoot {
            files: Vec::new(),
            grub_cfg: None,
            summary: "no EFI files".to_string(),
        });
    }
    let Some(grub) = &boot.grub else {
        let looked = if boot.grub_skipped.is_empty() {
            String::new()
        } else {
            format!("; passed over: {}", boot.grub_skipped.join("; "))
        };
        bail!(
            "the rootfs has no grub EFI binary mkimg can use (looked for {} and \
             /boot/efi/EFI/<vendor>/grub{}.efi{looked}); install the distro's grub EFI package \
             (Debian: grub-efi-{}-bin; Fedora/openEuler: grub2-efi-{}), or name the binary with \
             [[efi_file]] and [boot] grub_cfg in the board file",
            crate::bootloader::detect::monolithic_path(arch).unwrap_or_default(),
            arch.efi_suffix().unwrap_or_default(),
            arch.debian_arch(),
            arch.efi_suffix().unwrap_or_default(),
        );
    };
    let to = format!("EFI/BOOT/{}", arch.efi_boot_file().unwrap_or("BOOT.EFI"));
    let cfg = plan.boot.grub_cfg.as_deref().map_or_else(
        || grub.cfg.clone(),
        |c| c.trim_start_matches('/').to_string(),
    );
    Ok(EspBoot {
        summary: format!("{} → {to}; grub.cfg at {cfg}", grub.path),
        files: vec![VfatEntry::File {
            path: to,
            data: grub.data.clone(),
        }],
        grub_cfg: Some(cfg),
    })
}

/// The EFI binaries named by the board, taken from the rootfs captures.
fn board_efi_files(plan: &Plan, captures: &CaptureResults) -> Result<Vec<VfatEntry>> {
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

/// grub.cfg rendered from the template and what the rootfs holds, at `path`
/// in the ESP.
pub fn grub_cfg_file(plan: &Plan, boot: &RootfsBoot, path: &str) -> Result<VfatEntry> {
    let config = grub_config_for_rootfs(plan, boot).context("making grub.cfg")?;
    let text = render_grub_cfg(&config)?;
    Ok(VfatEntry::File {
        path: path.to_string(),
        data: text.into_bytes(),
    })
}
