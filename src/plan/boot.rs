//! How the image boots: the boot loader, how grub.cfg is made, the kernel
//! arguments, the files copied into the ESP — with their defaults, and
//! the checks that keep board text out of the boot loader's syntax. Also
//! whether the chosen loader can boot the planned disk at all. Pure.

use crate::board::schema::{BootLoader, GrubMode};
use crate::board::Board;
use crate::plan::layout::Problem;
use crate::plan::{parttype, BootPlan, PlannedPartition};

/// `[boot]` and `[[efi_file]]` with their defaults, checked.
pub fn plan_boot(board: &Board, problems: &mut Vec<Problem>) -> BootPlan {
    let file = &board.file;
    let section = file.boot.clone();
    let boot = BootPlan {
        loader: section
            .as_ref()
            .and_then(|b| b.loader)
            .unwrap_or(BootLoader::Grub),
        grub: section
            .as_ref()
            .and_then(|b| b.grub)
            .unwrap_or(GrubMode::Template),
        grub_cfg: section
            .as_ref()
            .and_then(|b| b.grub_cfg.clone())
            .unwrap_or_else(|| "EFI/debian/grub.cfg".to_string()),
        mkconfig: section.as_ref().and_then(|b| b.mkconfig.clone()),
        cmdline: section
            .as_ref()
            .and_then(|b| b.cmdline.clone())
            .unwrap_or_default(),
        efi_files: file
            .efi_files
            .iter()
            .map(|f| (f.from.clone(), f.to.clone()))
            .collect(),
        fdtdir: section.as_ref().and_then(|b| b.fdtdir.clone()),
    };
    check_boot_strings(&boot, file.board.console.as_deref(), problems);
    boot
}

/// Why `loader` cannot boot a disk of `partitions`, if it cannot: GRUB
/// (EFI) is installed into the EFI System Partition, so a bootable board
/// (one with a root partition) that uses it needs one. Without it the
/// build would make an image with no boot loader and exit 0.
pub fn boot_loader_problem(loader: BootLoader, partitions: &[PlannedPartition]) -> Option<String> {
    let mounted_at =
        |p: &PlannedPartition, path: &str| p.mount.as_ref().is_some_and(|m| m.path == path);
    let bootable = partitions.iter().any(|p| mounted_at(p, "/"));
    let has_esp = partitions.iter().any(|p| {
        p.part_type.gpt == Some(parttype::ESP)
            || p.part_type.mbr == Some(0xef)
            || mounted_at(p, "/boot/efi")
    });
    (loader == BootLoader::Grub && bootable && !has_esp).then(|| {
        "[boot] loader is \"grub\" (the default), but the board has no EFI System \
         Partition to put GRUB in; add one ([[partition]] with type = \"esp\", \
         filesystem = \"vfat\", mount = \"/boot/efi\") or set [boot] loader = \"extlinux\""
            .to_string()
    })
}

/// Board strings that land in grub.cfg and extlinux.conf: kernel
/// arguments are whitespace-separated words (extlinux has no quoting, so
/// no control characters), and ESP paths are relative paths of plain
/// components (never `..`: they name files inside the ESP).
fn check_boot_strings(boot: &BootPlan, console: Option<&str>, problems: &mut Vec<Problem>) {
    let control = |text: &str| text.chars().find(|c| c.is_control() && *c != ' ');
    for (key, text) in [
        ("boot.cmdline", Some(boot.cmdline.as_str())),
        ("board.console", console),
    ] {
        let Some(text) = text else { continue };
        let bad = if key == "board.console" {
            text.chars().find(|c| c.is_whitespace() || c.is_control())
        } else {
            control(text)
        };
        if let Some(c) = bad {
            problems.push(
                Problem::error(format!(
                    "{key} = {text:?} contains {c:?}; kernel arguments are written into the boot \
                     loader's configuration"
                ))
                .with_fix("kernel arguments separated by single spaces, e.g. \"console=ttyS0,115200 quiet\""),
            );
        }
    }
    let esp_paths = std::iter::once(("boot.grub_cfg", boot.grub_cfg.as_str())).chain(
        boot.efi_files
            .iter()
            .map(|(_, to)| ("efi_file.to", to.as_str())),
    );
    for (key, path) in esp_paths {
        let plain = !path.is_empty()
            && path.trim_start_matches('/').split('/').all(|c| {
                !c.is_empty()
                    && c != "."
                    && c != ".."
                    && !c.chars().any(|ch| ch.is_control() || ch == '\\')
            });
        if !plain {
            problems.push(
                Problem::error(format!(
                    "{key} = {path:?} must be a path inside the ESP (plain names, no '..')"
                ))
                .with_fix("e.g. \"EFI/BOOT/BOOTRISCV64.EFI\""),
            );
        }
    }
    if let Some(fdtdir) = &boot.fdtdir {
        if let Some(c) = fdtdir.chars().find(|c| c.is_whitespace() || c.is_control()) {
            problems.push(
                Problem::error(format!(
                    "boot.fdtdir = {fdtdir:?} contains {c:?}; it is one word of extlinux.conf"
                ))
                .with_fix("boot.fdtdir = \"/usr/lib/linux-image-{version}\""),
            );
        }
    }
}
