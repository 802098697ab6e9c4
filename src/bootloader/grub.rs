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
use crate::bootloader::default_grub::{parse_default_grub_with, parse_os_release};
use crate::bootloader::detect::{KernelSource, RootfsBoot};
use crate::bootloader::kernels::{
    args_missing_from, board_cmdline, boot_prefix, find_kernels, join_cmdline, no_kernel_message,
    KernelEntry,
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
    /// The board's part of them: for entries from BLS, which carry the
    /// distro's arguments themselves, only this follows their options.
    pub board_cmdline: String,
    /// Where the menu came from, for the header comment.
    pub menu_source: String,
    pub arch: Arch,
    /// Findings while reading /etc/default/grub (not rendered).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
struct GrubCfgContext<'a> {
    os: String,
    arch: &'a str,
    menu_source: &'a str,
    timeout: i32,
    insmods: &'a [String],
    boot_fs_uuid: &'a str,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    title: String,
    class: String,
    id: String,
    version: String,
    kernel: String,
    /// Quoted GRUB words, joined.
    args: String,
    initrds: Vec<String>,
}

/// Render grub.cfg. Fails when there is no kernel to boot.
pub fn render_grub_cfg(config: &GrubConfig) -> Result<String> {
    if config.kernels.is_empty() {
        bail!("grub.cfg: no kernel to boot (the menu would be empty)");
    }
    let os = os_title(&config.distributor);
    let at_boot = |name: &String| format!("{}/{}", config.boot_prefix, name);
    let entries = config
        .kernels
        .iter()
        .map(|k| {
            let args = kernel_args(config, k);
            let (title, class) = match &k.bls {
                None => (
                    format!("{os}, with Linux {}", k.version),
                    os_class(&config.distributor),
                ),
                Some(bls) => (
                    bls.title
                        .clone()
                        .unwrap_or_else(|| format!("{os}, with Linux {}", k.version)),
                    bls.class
                        .clone()
                        .unwrap_or_else(|| os_class(&config.distributor)),
                ),
            };
            Entry {
                title: one_line(&title),
                class,
                id: format!("gnulinux-{}-advanced-{}", k.version, config.root_uuid),
                version: k.version.clone(),
                kernel: at_boot(&k.kernel),
                // Each argument one GRUB word: they come from the rootfs
                // (/etc/default/grub, BLS entries), and `;`, `$` or `{`
                // there must reach the kernel as text, not run as GRUB script.
                args: args.split(' ').map(sh_quote).collect::<Vec<_>>().join(" "),
                initrds: k
                    .initrd
                    .iter()
                    .chain(k.bls.iter().flat_map(|b| &b.more_initrds))
                    .map(at_boot)
                    .collect(),
            }
        })
        .collect();
    let ctx = GrubCfgContext {
        os,
        arch: config.arch.as_str(),
        menu_source: &config.menu_source,
        timeout: config.timeout,
        insmods: &config.insmods,
        boot_fs_uuid: &config.boot_fs_uuid,
        entries,
    };
    Ok(render_template("grub.cfg.j2", TEMPLATE, &ctx)?)
}

/// The kernel command line of `kernel`'s menu entry: `root=UUID=… ro`
/// and the arguments (a BLS entry's own options, then the board's).
fn kernel_args(config: &GrubConfig, kernel: &KernelEntry) -> String {
    let root = format!("root=UUID={}", config.root_uuid);
    match &kernel.bls {
        None => join_cmdline(&[&root, "ro", &config.cmdline]),
        Some(bls) => bls_args(&root, &bls.options, &config.board_cmdline),
    }
}

/// The kernel command line of the menu's default (first) entry, as the
/// template grub.cfg writes it; for the build log.
pub fn default_kernel_cmdline(plan: &Plan, boot: &RootfsBoot) -> Result<String> {
    let config = grub_config_for_rootfs(plan, boot)?;
    let first = config
        .kernels
        .first()
        .context("grub.cfg: no kernel to boot")?;
    Ok(kernel_args(&config, first))
}

/// Just the menu entries of [`render_grub_cfg`] (each loads its own
/// modules and finds its own root), to add to another grub.cfg.
pub fn render_menu_entries(config: &GrubConfig) -> Result<String> {
    let text = render_grub_cfg(config)?;
    let start = text
        .find("\nmenuentry ")
        .context("the grub.cfg template rendered no menuentry")?;
    Ok(text[start + 1..].to_string())
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
    let kernels = find_kernels(boot_names);
    if kernels.is_empty() {
        bail!("grub.cfg: {}", no_kernel_message(boot_names));
    }
    let texts = RootfsTexts {
        default_grub: default_grub_text,
        os_release: os_release_text,
        system_release: None,
    };
    grub_config(plan, kernels, "the kernels found in /boot", &texts)
}

/// Build the config from the plan and what was detected in the rootfs
/// (its BLS entries when it has them).
pub fn grub_config_for_rootfs(plan: &Plan, boot: &RootfsBoot) -> Result<GrubConfig> {
    if boot.kernels.is_empty() {
        bail!("grub.cfg: {}", no_kernel_message(&boot.boot_names));
    }
    let source = match boot.kernel_source {
        KernelSource::Bls => {
            "the rootfs's Boot Loader Specification entries (/boot/loader/entries)"
        }
        KernelSource::Scan => "the kernels found in /boot",
    };
    let texts = RootfsTexts {
        default_grub: boot.default_grub.as_deref(),
        os_release: boot.os_release.as_deref(),
        system_release: boot.system_release.as_deref(),
    };
    grub_config(plan, boot.kernels.clone(), source, &texts)
}

/// The rootfs texts grub.cfg's settings come from.
struct RootfsTexts<'a> {
    default_grub: Option<&'a str>,
    os_release: Option<&'a str>,
    system_release: Option<&'a str>,
}

fn grub_config(
    plan: &Plan,
    kernels: Vec<KernelEntry>,
    menu_source: &str,
    texts: &RootfsTexts<'_>,
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
    let defaults = match texts.default_grub {
        Some(text) => parse_default_grub_with(text, texts.os_release, texts.system_release)?,
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
    // Without a GRUB_DISTRIBUTOR, os-release's NAME (what Debian's and
    // Fedora's defaults compute), else Debian's fallback.
    let os_name = texts
        .os_release
        .and_then(|t| parse_os_release(t).ok())
        .and_then(|v| v.get("NAME").cloned());
    Ok(GrubConfig {
        distributor: defaults
            .distributor
            .clone()
            .filter(|d| !d.is_empty())
            .or(os_name.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "Debian".to_string()),
        timeout: defaults.timeout.unwrap_or(DEFAULT_TIMEOUT),
        kernels,
        root_uuid,
        boot_fs_uuid,
        boot_prefix: boot_prefix(plan),
        insmods,
        // As grub-mkconfig's 10_linux: GRUB_CMDLINE_LINUX, then
        // GRUB_CMDLINE_LINUX_DEFAULT; then the board's arguments the former
        // lacks (none when the image's file carries them: board_args.rs).
        cmdline: join_cmdline(&[
            &defaults.cmdline_linux,
            &defaults.cmdline_linux_default,
            &args_missing_from(&board_cmdline(plan), &defaults.cmdline_linux).join(" "),
        ]),
        board_cmdline: board_cmdline(plan),
        menu_source: menu_source.to_string(),
        arch: plan.board.arch,
        warnings: defaults.warnings,
    })
}

/// A BLS entry's kernel arguments: the plan's root (an entry's `root=`
/// names the filesystem the rootfs was made on, not the image's), `ro`,
/// the entry's options without root=/ro/rw, then the board's that they
/// lack (the pass has already added them to the image's entries:
/// `bootloader::bls_options`).
pub fn bls_args(root: &str, options: &[String], board: &str) -> String {
    let kept: Vec<&str> = options
        .iter()
        .map(String::as_str)
        .filter(|o| !o.starts_with("root=") && *o != "ro" && *o != "rw")
        .collect();
    let kept = kept.join(" ");
    let missing = args_missing_from(board, &kept).join(" ");
    join_cmdline(&[root, "ro", &kept, &missing])
}

/// Control characters (from rootfs text) as spaces: a title is one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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
