//! How the image boots: the boot loader, how grub.cfg is made, the kernel
//! arguments, the files copied into the ESP — with their defaults, and
//! the checks that keep board text out of the boot loader's syntax. Also
//! whether the chosen loader can boot the planned disk at all.
//!
//! `--bootloader` and `--grub` are resolved here, not after planning, so
//! `mkimg plan` shows (and refuses) exactly what `mkimg build` will. Pure.

use toml::Spanned;

use crate::board::schema::{BootLoader, GrubMode};
use crate::board::Board;
use crate::plan::layout::Problem;
use crate::plan::{parttype, BootPlan, PlannedPartition};

/// `[boot]` and `[[efi_file]]` with their defaults, checked; `--bootloader`
/// and `--grub` ([`Board::cli_boot`]) win over the board's values.
pub fn plan_boot(board: &Board, problems: &mut Vec<Problem>) -> BootPlan {
    let file = &board.file;
    let section = file.boot.as_ref().map(Spanned::get_ref);
    let text = |field: Option<&Spanned<String>>| field.map(|f| f.get_ref().clone());
    let boot = BootPlan {
        loader: board
            .cli_boot
            .loader
            .or_else(|| {
                section
                    .and_then(|b| b.loader.as_ref())
                    .map(|l| *l.get_ref())
            })
            .unwrap_or(BootLoader::Grub),
        grub: board
            .cli_boot
            .grub
            .or_else(|| section.and_then(|b| b.grub.as_ref()).map(|g| *g.get_ref()))
            .unwrap_or(GrubMode::Template),
        grub_cfg: text(section.and_then(|b| b.grub_cfg.as_ref())),
        mkconfig: section.and_then(|b| b.mkconfig.clone()),
        cmdline: text(section.and_then(|b| b.cmdline.as_ref())).unwrap_or_default(),
        efi_files: file
            .efi_files
            .iter()
            .map(|f| (f.from.clone(), f.to.get_ref().clone()))
            .collect(),
        fdtdir: text(section.and_then(|b| b.fdtdir.as_ref())),
    };
    check_boot_strings(board, problems);
    boot
}

/// Whether the planned loader can boot the disk. GRUB (EFI) is installed
/// into the EFI System Partition, so a bootable board (one with a root
/// partition) that uses it needs one; without this check the build made
/// an image with no boot loader and exited 0.
///
/// The problem names where GRUB was chosen: `--bootloader` (no line),
/// `[boot] loader`, or — for the default — the root partition's `mount`,
/// which is what makes the board need a loader.
pub fn check_boot_loader(
    board: &Board,
    boot: &BootPlan,
    partitions: &[PlannedPartition],
    problems: &mut Vec<Problem>,
) {
    if boot.loader != BootLoader::Grub || !lacks_an_esp(partitions) {
        return;
    }
    const ADD_ONE: &str = "add one ([[partition]] with type = \"esp\", filesystem = \"vfat\", \
                           mount = \"/boot/efi\")";
    const NO_ESP: &str = "the board has no EFI System Partition to put GRUB in";
    let file = &board.file;
    let written = file.boot.as_ref().and_then(|b| b.get_ref().loader.as_ref());
    let problem = if board.cli_boot.loader.is_some() {
        Problem::error(format!(
            "--bootloader grub, but {NO_ESP}; {ADD_ONE} or use --bootloader extlinux"
        ))
    } else if let Some(loader) = written {
        Problem::error(format!(
            "[boot] loader is \"grub\", but {NO_ESP}; {ADD_ONE} or set [boot] loader = \"extlinux\""
        ))
        .at(board.locate(loader.span()))
    } else {
        let root = file
            .partitions
            .iter()
            .filter_map(|p| p.get_ref().mount.as_ref())
            .find(|m| m.get_ref() == "/");
        Problem::error(format!(
            "[boot] loader is \"grub\" (the default), but {NO_ESP}; {ADD_ONE} or set [boot] \
             loader = \"extlinux\""
        ))
        .at(root.map(|m| board.locate(m.span())))
    };
    problems.push(problem);
}

/// A bootable disk (a partition mounted at `/`) without an EFI System
/// Partition.
fn lacks_an_esp(partitions: &[PlannedPartition]) -> bool {
    let mounted_at =
        |p: &PlannedPartition, path: &str| p.mount.as_ref().is_some_and(|m| m.path == path);
    let bootable = partitions.iter().any(|p| mounted_at(p, "/"));
    let has_esp = partitions.iter().any(|p| {
        p.part_type.gpt == Some(parttype::ESP)
            || p.part_type.mbr == Some(0xef)
            || mounted_at(p, "/boot/efi")
    });
    bootable && !has_esp
}

/// Board strings that land in grub.cfg and extlinux.conf: kernel
/// arguments are whitespace-separated words (extlinux has no quoting, so
/// no control characters), and ESP paths are relative paths of plain
/// components (never `..`: they name files inside the ESP). Only written
/// values are checked: the defaults pass.
fn check_boot_strings(board: &Board, problems: &mut Vec<Problem>) {
    let file = &board.file;
    let section = file.boot.as_ref().map(Spanned::get_ref);
    let kernel_words = [
        ("boot.cmdline", section.and_then(|b| b.cmdline.as_ref())),
        ("board.console", file.board.console.as_ref()),
    ];
    for (key, field) in kernel_words {
        let Some(field) = field else { continue };
        let text = field.get_ref();
        let bad = if key == "board.console" {
            text.chars().find(|c| c.is_whitespace() || c.is_control())
        } else {
            text.chars().find(|c| c.is_control() && *c != ' ')
        };
        if let Some(c) = bad {
            problems.push(
                Problem::error(format!(
                    "{key} = {text:?} contains {c:?}; kernel arguments are written into the boot \
                     loader's configuration"
                ))
                .at(board.locate(field.span()))
                .with_fix("kernel arguments separated by single spaces, e.g. \"console=ttyS0,115200 quiet\""),
            );
        }
    }
    let esp_paths = section
        .and_then(|b| b.grub_cfg.as_ref())
        .map(|p| ("boot.grub_cfg", p))
        .into_iter()
        .chain(file.efi_files.iter().map(|f| ("efi_file.to", &f.to)));
    for (key, field) in esp_paths {
        let path = field.get_ref();
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
                .at(board.locate(field.span()))
                .with_fix("e.g. \"EFI/BOOT/BOOTRISCV64.EFI\""),
            );
        }
    }
    if let Some(field) = section.and_then(|b| b.fdtdir.as_ref()) {
        let fdtdir = field.get_ref();
        if let Some(c) = fdtdir.chars().find(|c| c.is_whitespace() || c.is_control()) {
            problems.push(
                Problem::error(format!(
                    "boot.fdtdir = {fdtdir:?} contains {c:?}; it is one word of extlinux.conf"
                ))
                .at(board.locate(field.span()))
                .with_fix("boot.fdtdir = \"/usr/lib/linux-image-{version}\""),
            );
        }
    }
}
