//! What `--grub mkconfig` needs of the rootfs, checked from the captures of
//! the rootfs pass — before mke2fs, the loop device and the chroot, so a
//! rootfs that cannot work fails in seconds, naming the package that is
//! missing for its distro family:
//!
//! - grub-mkconfig or grub2-mkconfig (unless the board names one): Debian's
//!   `grub-common`, pulled in by `grub-efi-<arch>`; the RPM family's
//!   `grub2-tools`;
//! - `/etc/default/grub`, a regular file: grub-mkconfig reads it, and the
//!   image keeps the board's kernel arguments in it (`board_args`).
//!   Debian creates it in the postinst of `grub-efi-<arch>` (a rootfs with
//!   only `grub-common` has grub-mkconfig but no /etc/default/grub);
//!   Fedora's `grub2-tools` owns it without shipping it (the installer
//!   writes it), so an RPM rootfs made with dnf may lack it;
//! - the module directory of the board's grub platform,
//!   `/usr/lib/grub/<target>/` (`riscv64-efi`, `arm64-efi`): grub-mkconfig
//!   and its scripts look there. Debian: `grub-efi-<arch>-bin` (pulled in
//!   by `grub-efi-<arch>`); Fedora and openEuler:
//!   `grub2-efi-<arch>-modules`.
//!
//! Package names come from the architecture: Debian's `grub-efi-riscv64`,
//! `grub-efi-arm64`, `grub-efi-amd64`; the RPM family's `grub2-efi-riscv64`,
//! `grub2-efi-aa64`, `grub2-efi-x64` (the EFI file suffix). The family is
//! os-release's (`detect::OsInfo::family`); an unknown family gets both.
//! Pure: captures in, an error out.

use anyhow::{bail, Result};

use crate::arch::Arch;
use crate::bootloader::board_args::{kept_in_image, Kept};
use crate::bootloader::detect::{
    modules_dir, Family, RootfsBoot, DEFAULT_GRUB, MKCONFIG_CANDIDATES,
};
use crate::plan::Plan;
use crate::rootfs::{CaptureResults, Captured, NodeType};

/// What to install for the file or directory a check found missing.
enum Needed {
    Mkconfig,
    DefaultGrub,
    Modules,
}

/// The package(s) that bring `needed` on `family`, in words.
fn package_for(needed: Needed, family: Family, arch: Arch) -> String {
    let deb = format!("grub-efi-{}", arch.debian_arch());
    let rpm = format!("grub2-efi-{}", arch.efi_suffix().unwrap_or("<arch>"));
    let debian = format!("Debian/Ubuntu: {deb}");
    let rpm = match needed {
        Needed::Mkconfig => "Fedora/openEuler: grub2-tools".to_string(),
        Needed::DefaultGrub => format!(
            "Fedora/openEuler: grub2-tools owns it but does not create it (the installer \
             writes it): add one to the rootfs (or the board's [edits] overlay), and {rpm}"
        ),
        Needed::Modules => format!("Fedora/openEuler: {rpm} and {rpm}-modules"),
    };
    match family {
        Family::Debian => debian,
        Family::Rpm => rpm,
        Family::Other => format!("{debian}; {rpm}"),
    }
}

/// Refuse, before the build's heavy work, a rootfs whose grub-mkconfig
/// cannot make a grub.cfg that keeps the board's kernel arguments.
pub fn check_for_mkconfig(plan: &Plan, boot: &RootfsBoot, captures: &CaptureResults) -> Result<()> {
    let arch = plan.board.arch;
    let family = boot.family;
    let distro = boot.os.as_ref().map_or("the rootfs".to_string(), |os| {
        format!("the rootfs ({})", os.id)
    });
    const FIX: &str = "or use --grub template, where mkimg renders grub.cfg itself";
    if plan.boot.mkconfig.is_none() && boot.mkconfig.is_none() {
        bail!(
            "--grub mkconfig: {distro} has no grub-mkconfig or grub2-mkconfig (looked for {}); \
             add the package that has it to the rootfs ({}), name it with [boot] mkconfig, {FIX}",
            MKCONFIG_CANDIDATES.join(", "),
            package_for(Needed::Mkconfig, family, arch)
        );
    }
    if !captures.files.contains_key(DEFAULT_GRUB) {
        bail!(
            "--grub mkconfig: {distro} has no {DEFAULT_GRUB}, which grub-mkconfig reads and which \
             keeps the board's kernel arguments for the target's own update-grub; add the \
             package that makes it to the rootfs ({}), {FIX}",
            package_for(Needed::DefaultGrub, family, arch)
        );
    }
    match kept_in_image(plan, captures) {
        Kept::NotAFile(what) => bail!(
            "--grub mkconfig: {distro}'s {DEFAULT_GRUB} is {what}; mkimg adds the board's kernel \
             arguments only to a regular file (it never follows a link of the rootfs), and \
             grub-mkconfig would make a grub.cfg without them: make it a regular file in the \
             rootfs, {FIX}"
        ),
        Kept::Missing(args) => bail!(
            "--grub mkconfig: the image's {DEFAULT_GRUB} lacks the board's kernel arguments {} \
             in GRUB_CMDLINE_LINUX; {FIX}",
            args.join(" ")
        ),
        Kept::NothingToKeep | Kept::NoFile | Kept::Kept => {}
    }
    if let Some(dir) = modules_dir(arch) {
        let present = matches!(
            captures.files.get(&dir),
            Some(Captured::Other(NodeType::Dir))
        );
        if !present {
            bail!(
                "--grub mkconfig: {distro} has no {dir}/, grub's modules for {} that \
                 grub-mkconfig needs; add the package that holds them to the rootfs ({}), {FIX}",
                arch.grub_efi_target().unwrap_or_default(),
                package_for(Needed::Modules, family, arch)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
