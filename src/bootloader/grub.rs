//! grub.cfg rendered natively from `templates/grub.cfg.j2` (board
//! `boot.grub = "template"`): no emulation, no root, no grub-mkconfig.
//!
//! Flows in: a [`GrubConfig`], usually built by [`grub_config_from_plan`]
//! from the plan, the file names in the rootfs's `/boot`, and the texts of
//! its `/etc/default/grub` and `/etc/os-release`. Flows out: the grub.cfg
//! text; the caller writes it where the EFI image reads it
//! (`plan.boot.grub_cfg` in the ESP). Pure: no I/O.
//!
//! The menu follows Debian's 10_linux in spirit (titles, classes, `gzio`,
//! `search --fs-uuid`, `linux … root=UUID=… ro <args>`), without the
//! "Advanced options" submenu and recovery entries. Root is named by
//! filesystem UUID because the build has no udev: grub-probe would see
//! /dev/loopN. `linux` (not `linuxefi`) on every architecture: upstream GRUB's
//! `linux` command boots EFI-stub kernels on arm64 and riscv64, and
//! `linuxefi` exists only in some distributions' x86 builds.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::arch::Arch;
use crate::board::schema::TableKind;
use crate::bootloader::default_grub::parse_default_grub;
use crate::bootloader::kernels::{
    board_cmdline, boot_prefix, find_kernels, join_cmdline, no_kernel_message, KernelEntry,
};
use crate::plan::{Plan, PlannedFs};
use crate::templates::{render_template, sh_quote};

const TEMPLATE: &str = crate::templates::GRUB_CFG;

/// Debian's GRUB_TIMEOUT default.
const DEFAULT_TIMEOUT: i32 = 5;

/// Everything grub.cfg says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrubConfig {
    /// GRUB_DISTRIBUTOR, e.g. `Debian` or `Debian GNU/Linux`.
    pub distributor: String,
    /// Seconds; -1 waits for a key.
    pub timeout: i32,
    /// Newest first; the first is the default entry.
    pub kernels: Vec<KernelEntry>,
    /// Filesystem UUID of `/`, for `root=UUID=`.
    pub root_uuid: String,
    /// Filesystem UUID (or vfat volume id) of the filesystem holding /boot.
    pub boot_fs_uuid: String,
    /// `/boot` when /boot is on the root filesystem, empty when separate.
    pub boot_prefix: String,
    /// GRUB modules for the partition table and /boot's filesystem.
    pub insmods: Vec<String>,
    /// Kernel arguments after `root=UUID=… ro`.
    pub cmdline: String,
    pub arch: Arch,
    /// Findings while reading /etc/default/grub (not rendered).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
struct GrubCfgContext<'a> {
    os: String,
    class: String,
    arch: &'a str,
    timeout: i32,
    insmods: &'a [String],
    boot_fs_uuid: &'a str,
    args: String,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    title: String,
    id: String,
    version: String,
    kernel: String,
    initrd: Option<String>,
}

/// Render grub.cfg. Fails when there is no kernel to boot.
pub fn render_grub_cfg(config: &GrubConfig) -> Result<String> {
    if config.kernels.is_empty() {
        bail!("grub.cfg: no kernel to boot (the menu would be empty)");
    }
    let os = os_title(&config.distributor);
    let entries = config
        .kernels
        .iter()
        .map(|k| Entry {
            title: format!("{os}, with Linux {}", k.version),
            id: format!("gnulinux-{}-advanced-{}", k.version, config.root_uuid),
            version: k.version.clone(),
            kernel: format!("{}/{}", config.boot_prefix, k.kernel),
            initrd: k
                .initrd
                .as_ref()
                .map(|i| format!("{}/{}", config.boot_prefix, i)),
        })
        .collect();
    let ctx = GrubCfgContext {
        class: os_class(&config.distributor),
        os,
        arch: config.arch.as_str(),
        timeout: config.timeout,
        insmods: &config.insmods,
        boot_fs_uuid: &config.boot_fs_uuid,
        // Each argument one GRUB word: the distro's part comes from the
        // rootfs's /etc/default/grub, and `;`, `$` or `{` there must reach
        // the kernel as text, not run as GRUB script.
        args: join_cmdline(&[
            &format!("root=UUID={}", config.root_uuid),
            "ro",
            &config.cmdline,
        ])
        .split(' ')
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" "),
        entries,
    };
    Ok(render_template("grub.cfg.j2", TEMPLATE, &ctx)?)
}

/// Build the config from the plan and what the rootfs holds: `boot_names`
/// are the file names in its /boot; the texts are its /etc/default/grub and
/// /etc/os-release when present.
pub fn grub_config_from_plan(
    plan: &Plan,
    boot_names: &[String],
    default_grub_text: Option<&str>,
    os_release_text: Option<&str>,
) -> Result<GrubConfig> {
    let root = plan
        .root_partition()
        .context("grub.cfg: no partition is mounted at /")?;
    let root_uuid = match &root.filesystem {
        PlannedFs::Ext4 { uuid, .. } => uuid.to_string(),
        other => bail!(
            "grub.cfg: the root partition '{}' must be ext4, not {other:?}",
            root.name
        ),
    };
    let boot = plan
        .partition_holding("/boot")
        .context("grub.cfg: no partition holds /boot")?;
    let boot_fs_uuid = boot.filesystem.fs_uuid_text().with_context(|| {
        format!(
            "grub.cfg: partition '{}' holds /boot but has no filesystem",
            boot.name
        )
    })?;
    let kernels = find_kernels(boot_names);
    if kernels.is_empty() {
        bail!("grub.cfg: {}", no_kernel_message(boot_names));
    }
    let defaults = match default_grub_text {
        Some(text) => parse_default_grub(text, os_release_text)?,
        None => Default::default(),
    };
    let mut insmods: Vec<String> = match plan.table() {
        TableKind::Gpt => vec!["part_gpt".into()],
        TableKind::Mbr => vec!["part_msdos".into()],
        TableKind::Hybrid => vec!["part_gpt".into(), "part_msdos".into()],
        TableKind::None => vec![],
    };
    insmods.push(match boot.filesystem {
        PlannedFs::Vfat { .. } => "fat".into(),
        _ => "ext2".into(),
    });
    Ok(GrubConfig {
        distributor: defaults
            .distributor
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "Debian".to_string()),
        timeout: defaults.timeout.unwrap_or(DEFAULT_TIMEOUT),
        kernels,
        root_uuid,
        boot_fs_uuid,
        boot_prefix: boot_prefix(plan),
        insmods,
        cmdline: join_cmdline(&[
            &defaults.cmdline_linux,
            &defaults.cmdline_linux_default,
            &board_cmdline(plan),
        ]),
        arch: plan.board.arch,
        warnings: defaults.warnings,
    })
}

/// The menu's OS name, as 10_linux makes it: `<distributor> GNU/Linux`,
/// except for Ubuntu/Kubuntu and — unlike 10_linux — a distributor that
/// already ends in "GNU/Linux" (trixie's GRUB_DISTRIBUTOR is os-release's
/// NAME, "Debian GNU/Linux"; doubling it helps no one).
fn os_title(distributor: &str) -> String {
    // It comes from the rootfs and lands in a comment line too: one line.
    let distributor: String = distributor
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let distributor = distributor.as_str();
    if matches!(distributor, "Ubuntu" | "Kubuntu") || distributor.ends_with("GNU/Linux") {
        distributor.to_string()
    } else {
        format!("{distributor} GNU/Linux")
    }
}

/// `--class`: the distributor's first word, lower-case, `[a-z0-9_]` only.
fn os_class(distributor: &str) -> String {
    distributor
        .split_whitespace()
        .next()
        .unwrap_or("gnu")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
