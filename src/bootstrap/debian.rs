//! The Debian route: one `mmdebstrap` command, built here as a [`Cmd`] by a
//! pure function so its argv can be pinned by tests.
//!
//! What goes in: minbase, the kernel and grub EFI packages of the arch, the
//! init system, initramfs-tools and what a serial login needs. Customize
//! hooks then set root's password (`chpasswd -e` with a hash computed here,
//! so no password reaches argv), enable a serial getty with the symlink
//! `systemctl enable` would make, and drop the two files mmdebstrap copies
//! from the build host (/etc/hostname, /etc/resolv.conf): `mkimg build`
//! writes the hostname.

use std::path::Path;

use crate::arch::Arch;
use crate::host::cmd::Cmd;

use super::preflight::Mode;
use super::ResolvedRecipe;

/// Installed on every Debian rootfs besides the kernel and grub packages.
/// util-linux brings agetty; login and passwd the rest of a console login.
pub const DEBIAN_BASE_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "initramfs-tools",
    "login",
    "passwd",
    "util-linux",
    "procps",
    "iproute2",
    "ca-certificates",
];

/// Where a serial getty's unit lives in a merged-/usr Debian (trixie on).
const SERIAL_GETTY_UNIT: &str = "/usr/lib/systemd/system/serial-getty@.service";

/// How Debian names and boots one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebianArch {
    /// dpkg's name: `riscv64`, `arm64`, `armhf`, `amd64`, `loong64`.
    pub dpkg_arch: &'static str,
    /// The kernel metapackage.
    pub kernel_package: &'static str,
    /// Brings /usr/lib/grub/<grub_target>/monolithic/<grub_efi>. In bookworm
    /// (2.06) this package ships it; in trixie (2.12) it moved to
    /// grub-efi-<arch>-unsigned, which -bin depends on. Asking for -bin works
    /// on both; the tarball check after the bootstrap catches a change.
    pub grub_package: &'static str,
    pub grub_target: &'static str,
    pub grub_efi: &'static str,
    /// Kernel image name prefix in /boot (`vmlinux-` on riscv64).
    pub kernel_prefix: &'static str,
}

/// Debian's names for `arch`, for the arches mkimg can boot through EFI grub.
pub fn debian_arch(arch: Arch) -> anyhow::Result<DebianArch> {
    let d = |dpkg_arch, kernel_package, grub_package, grub_target, grub_efi, kernel_prefix| {
        DebianArch {
            dpkg_arch,
            kernel_package,
            grub_package,
            grub_target,
            grub_efi,
            kernel_prefix,
        }
    };
    Ok(match arch {
        Arch::Riscv64 => d(
            "riscv64",
            "linux-image-riscv64",
            "grub-efi-riscv64-bin",
            "riscv64-efi",
            "grubriscv64.efi",
            "vmlinux-",
        ),
        Arch::Aarch64 => d(
            "arm64",
            "linux-image-arm64",
            "grub-efi-arm64-bin",
            "arm64-efi",
            "grubaa64.efi",
            "vmlinuz-",
        ),
        Arch::Arm => d(
            "armhf",
            "linux-image-armmp-lpae",
            "grub-efi-arm-bin",
            "arm-efi",
            "grubarm.efi",
            "vmlinuz-",
        ),
        Arch::X86_64 => d(
            "amd64",
            "linux-image-amd64",
            "grub-efi-amd64-bin",
            "x86_64-efi",
            "grubx64.efi",
            "vmlinuz-",
        ),
        Arch::Loongarch64 => d(
            "loong64",
            "linux-image-loong64",
            "grub-efi-loong64-bin",
            "loongarch64-efi",
            "grubloongarch64.efi",
            "vmlinuz-",
        ),
        Arch::Ppc64le | Arch::S390x | Arch::Mips64el => anyhow::bail!(
            "mkimg boots Debian through EFI grub, which Debian does not build for {arch}"
        ),
    })
}

/// The full package list for `--include`: kernel, grub, base, then extras.
pub fn debian_packages(recipe: &ResolvedRecipe, names: &DebianArch) -> Vec<String> {
    let mut list: Vec<String> = [names.kernel_package, names.grub_package]
        .into_iter()
        .chain(DEBIAN_BASE_PACKAGES.iter().copied())
        .map(str::to_string)
        .collect();
    for extra in &recipe.packages {
        if !list.contains(extra) {
            list.push(extra.clone());
        }
    }
    list
}

/// The customize hooks, in order. Each is one shell command; mmdebstrap
/// passes the root directory as `$1`. Only checked words and a crypt hash
/// (`[./0-9A-Za-z$]`) are spliced in, the latter inside single quotes.
pub fn customize_hooks(recipe: &ResolvedRecipe) -> Vec<String> {
    let mut hooks = vec![format!(
        "echo 'root:{}' | chroot \"$1\" chpasswd -e",
        recipe.root_hash()
    )];
    if let Some(console) = &recipe.console {
        let wants = "\"$1/etc/systemd/system/getty.target.wants\"";
        hooks.push(format!(
            "test -e \"$1{SERIAL_GETTY_UNIT}\" && mkdir -p {wants} && \
             ln -sf {SERIAL_GETTY_UNIT} {wants}/serial-getty@{console}.service"
        ));
    }
    hooks.push("rm -f \"$1/etc/hostname\" \"$1/etc/resolv.conf\"".to_string());
    hooks
}

/// `mmdebstrap … <suite> <out> <mirror>` writing a tar to `out`.
pub fn mmdebstrap_cmd(
    recipe: &ResolvedRecipe,
    mode: Mode,
    out: &Path,
    source_date_epoch: u64,
) -> anyhow::Result<Cmd> {
    let names = debian_arch(recipe.arch)?;
    let mut cmd = Cmd::new(
        format!("bootstrapping Debian {} for {}", recipe.suite, recipe.arch),
        "mmdebstrap",
    )
    .arg(format!("--mode={}", mode.as_str()))
    .arg("--variant=minbase")
    .arg("--format=tar")
    .arg(format!("--arch={}", names.dpkg_arch))
    .arg(format!(
        "--include={}",
        debian_packages(recipe, &names).join(",")
    ));
    for hook in customize_hooks(recipe) {
        cmd = cmd.arg(format!("--customize-hook={hook}"));
    }
    Ok(cmd
        .arg(&recipe.suite)
        .arg(out)
        .arg(&recipe.mirror)
        .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string()))
}
