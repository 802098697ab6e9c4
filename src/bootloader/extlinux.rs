//! extlinux.conf for U-Boot's distro boot (`sysboot`), rendered from
//! `templates/extlinux.conf.j2`.
//!
//! Flows in: an [`ExtlinuxConfig`], usually from [`extlinux_config_from_plan`]
//! (the plan, the file names in the rootfs's /boot, where the device trees
//! are). Flows out: the text; the caller writes it to
//! `/boot/extlinux/extlinux.conf`. Pure: no I/O.
//!
//! Paths in extlinux.conf are relative to the filesystem U-Boot reads it
//! from — the partition holding /boot. With /boot on the root filesystem a
//! kernel is `/boot/vmlinuz-<v>`; with a separate /boot partition it is
//! `/vmlinuz-<v>`.
//!
//! Device trees, the trade-off: Debian ships them in
//! `/usr/lib/linux-image-<v>/` ([`DEBIAN_FDTDIR`]). U-Boot reaches that path
//! only when /boot is on the root filesystem. With a separate /boot the
//! DTBs must be copied under /boot (flash-kernel's habit is
//! `/boot/dtbs/<v>/`, [`BOOT_DTBS_FDTDIR`]) by whoever assembles the rootfs,
//! and `fdtdir` must point there; [`extlinux_config_from_plan`] refuses an
//! fdtdir U-Boot cannot reach. `None` leaves `fdtdir` out: U-Boot then
//! passes its own (built-in or firmware-provided) device tree, right for
//! boards whose firmware supplies the DT.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bootloader::detect::RootfsBoot;
use crate::bootloader::grub::bls_args;
use crate::bootloader::kernels::{
    board_cmdline, boot_prefix, find_kernels, join_cmdline, no_kernel_message, KernelEntry,
};
use crate::plan::{Plan, PlannedFs};
use crate::templates::render_template;

const TEMPLATE: &str = crate::templates::EXTLINUX_CONF;

/// Where Debian's linux-image packages put the DTBs (a rootfs path).
pub const DEBIAN_FDTDIR: &str = "/usr/lib/linux-image-{version}/";
/// DTBs copied under /boot, reachable on a separate /boot partition.
pub const BOOT_DTBS_FDTDIR: &str = "/boot/dtbs/{version}/";

/// Everything extlinux.conf says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtlinuxConfig {
    /// The board name, for the header comment.
    pub board: String,
    pub menu_title: String,
    /// Tenths of a second (the syslinux/U-Boot unit).
    pub timeout: u32,
    /// Newest first; the first is the default label.
    pub kernels: Vec<KernelEntry>,
    /// Filesystem UUID of `/`, for `root=UUID=`.
    pub root_uuid: String,
    /// `/boot` when /boot is on the root filesystem, empty when separate.
    pub boot_prefix: String,
    /// Device tree directory as U-Boot sees it, `{version}` replaced by each
    /// kernel's version; `None`: no fdtdir line.
    pub fdtdir: Option<String>,
    /// Kernel arguments after `root=UUID=… rootwait ro`.
    pub cmdline: String,
}

#[derive(Serialize)]
struct ExtlinuxContext<'a> {
    board: &'a str,
    menu_title: &'a str,
    timeout: u32,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    label: String,
    menu_label: String,
    kernel: String,
    initrd: Option<String>,
    fdtdir: Option<String>,
    append: String,
}

/// Render extlinux.conf. Fails when there is no kernel to boot.
pub fn render_extlinux(config: &ExtlinuxConfig) -> Result<String> {
    if config.kernels.is_empty() {
        bail!("extlinux.conf: no kernel to boot (the menu would be empty)");
    }
    let append = join_cmdline(&[
        &format!("root=UUID={}", config.root_uuid),
        "rootwait ro",
        &config.cmdline,
    ]);
    let entries = config
        .kernels
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let at_boot = |name: &String| format!("{}/{}", config.boot_prefix, name);
            let initrds: Vec<String> = k
                .initrd
                .iter()
                .chain(k.bls.iter().flat_map(|b| &b.more_initrds))
                .map(at_boot)
                .collect();
            Entry {
                label: format!("l{i}"),
                menu_label: k
                    .bls
                    .as_ref()
                    .and_then(|b| b.title.as_deref())
                    .map(|t| t.replace(|c: char| c.is_control(), " "))
                    .unwrap_or_else(|| format!("Linux {}", k.version)),
                kernel: at_boot(&k.kernel),
                // extlinux.conf separates initrds with commas.
                initrd: (!initrds.is_empty()).then(|| initrds.join(",")),
                fdtdir: config
                    .fdtdir
                    .as_ref()
                    .map(|d| d.replace("{version}", &k.version)),
                append: match &k.bls {
                    None => append.clone(),
                    Some(bls) => bls_args(
                        &format!("root=UUID={} rootwait", config.root_uuid),
                        &bls.options,
                        &config.cmdline,
                    ),
                },
            }
        })
        .collect();
    let ctx = ExtlinuxContext {
        board: &config.board,
        menu_title: &config.menu_title,
        timeout: config.timeout,
        entries,
    };
    Ok(render_template("extlinux.conf.j2", TEMPLATE, &ctx)?)
}

/// Build the config from the plan and the file names in the rootfs's /boot.
/// `fdtdir` is a rootfs path (e.g. [`DEBIAN_FDTDIR`], [`BOOT_DTBS_FDTDIR`]);
/// it is translated to the path U-Boot sees, and refused when U-Boot cannot
/// reach it (outside a separate /boot partition).
pub fn extlinux_config_from_plan(
    plan: &Plan,
    boot_names: &[String],
    fdtdir: Option<&str>,
) -> Result<ExtlinuxConfig> {
    extlinux_config(plan, find_kernels(boot_names), boot_names, fdtdir)
}

/// [`extlinux_config_from_plan`] with the menu's kernels given (from BLS
/// entries or /boot, `bootloader::detect`).
fn extlinux_config(
    plan: &Plan,
    kernels: Vec<KernelEntry>,
    boot_names: &[String],
    fdtdir: Option<&str>,
) -> Result<ExtlinuxConfig> {
    let root = plan
        .root_partition()
        .context("extlinux.conf: no partition is mounted at /")?;
    let root_uuid = match &root.filesystem {
        PlannedFs::Ext4 { uuid, .. } => uuid.to_string(),
        other => bail!(
            "extlinux.conf: the root partition '{}' must be ext4, not {other:?}",
            root.name
        ),
    };
    if kernels.is_empty() {
        bail!("extlinux.conf: {}", no_kernel_message(boot_names));
    }
    let prefix = boot_prefix(plan);
    let fdtdir = match fdtdir {
        None => None,
        // /boot on the root filesystem: every rootfs path is reachable.
        Some(dir) if prefix == "/boot" => Some(dir.to_string()),
        Some(dir) => match dir.strip_prefix("/boot/") {
            Some(rest) => Some(format!("/{rest}")),
            None => bail!(
                "extlinux.conf: fdtdir {dir} is outside /boot, but /boot is its own \
                 partition and U-Boot reads only that one; copy the DTBs to \
                 {BOOT_DTBS_FDTDIR} and use that"
            ),
        },
    };
    Ok(ExtlinuxConfig {
        board: plan.board.name.to_string(),
        menu_title: format!("{} boot menu", plan.board.name),
        timeout: 30,
        kernels,
        root_uuid,
        boot_prefix: prefix,
        fdtdir,
        cmdline: board_cmdline(plan),
    })
}

/// Where extlinux.conf goes: U-Boot's distro boot looks for
/// `/extlinux/extlinux.conf` and `/boot/extlinux/extlinux.conf` on the
/// partition it scans.
pub const EXTLINUX_CONF: &str = "extlinux/extlinux.conf";

/// extlinux.conf for the partition holding /boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtlinuxFile {
    /// The partition that holds /boot.
    pub partition: String,
    /// Relative to that partition's root: `extlinux/extlinux.conf` on a
    /// separate /boot, `boot/extlinux/extlinux.conf` on the root.
    pub path: String,
    pub text: String,
}

/// Render extlinux.conf for `plan` from the rootfs's detected menu (its BLS
/// entries, else the kernels in /boot), with the board's `fdtdir`. A board
/// fdtdir under /boot that /boot does not hold is refused: U-Boot would
/// load no device tree.
pub fn extlinux_file(plan: &Plan, boot: &RootfsBoot) -> Result<ExtlinuxFile> {
    let boot_names = &boot.boot_names;
    let fdtdir = plan.boot.fdtdir.as_deref();
    if let Some(rest) = fdtdir.and_then(|d| d.strip_prefix("/boot/")) {
        let top = rest.split('/').next().unwrap_or_default();
        if !top.contains('{') && !boot_names.iter().any(|n| n == top) {
            bail!(
                "extlinux.conf: [boot] fdtdir = {:?}, but the rootfs's /boot has no {top}; \
                 copy the kernel's device trees there (Debian ships them in \
                 /usr/lib/linux-image-<version>/), or drop fdtdir so U-Boot passes its own",
                fdtdir.unwrap_or_default()
            );
        }
    }
    let config = extlinux_config(plan, boot.kernels.clone(), boot_names, fdtdir)?;
    let text = render_extlinux(&config)?;
    let partition = plan
        .partition_holding("/boot")
        .context("extlinux.conf: no partition holds /boot")?;
    Ok(ExtlinuxFile {
        partition: partition.name.clone(),
        path: format!("{}/{EXTLINUX_CONF}", config.boot_prefix)
            .trim_start_matches('/')
            .to_string(),
        text,
    })
}

#[cfg(test)]
mod tests;
