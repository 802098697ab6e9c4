//! The RPM route (openEuler, Fedora): `dnf --forcearch --installroot` into a
//! work directory, root's password and the serial getty set from the host,
//! then a deterministic `tar` of the tree.
//!
//! UNTESTED against a real repository: none is reachable where mkimg is
//! developed. The argv builders are pinned by unit tests; the host-side
//! edits are tested on a directory; running without a reachable repository
//! fails with dnf's own message and a hint.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::arch::Arch;
use crate::board::recipe::Distro;
use crate::host::cmd::Cmd;

use super::progress::Progress;
use super::shadow::set_root_hash;
use super::{tool_version, ResolvedRecipe};

/// Where systemd's serial getty template lives (both distros are merged-/usr).
const SERIAL_GETTY_UNIT: &str = "/usr/lib/systemd/system/serial-getty@.service";

/// The package list for `dnf install`: release, kernel, grub EFI, base, extras.
pub fn rpm_packages(recipe: &ResolvedRecipe) -> anyhow::Result<Vec<String>> {
    let release = match recipe.distro {
        Distro::Openeuler => "openEuler-release",
        Distro::Fedora => "fedora-release",
        Distro::Debian => bail!("Debian is not an RPM distribution"),
    };
    let grub = match recipe.arch {
        Arch::X86_64 => "grub2-efi-x64",
        Arch::Aarch64 => "grub2-efi-aa64",
        Arch::Riscv64 => "grub2-efi-riscv64",
        Arch::Loongarch64 => "grub2-efi-loongarch64",
        Arch::Arm => "grub2-efi-arm",
        other => bail!("mkimg boots through EFI grub, which has no RPM package for {other}"),
    };
    let base = [
        release,
        "kernel",
        grub,
        "systemd",
        "util-linux",
        "passwd",
        "dracut",
    ];
    let mut list: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    for extra in &recipe.packages {
        if !list.contains(extra) {
            list.push(extra.clone());
        }
    }
    Ok(list)
}

/// `dnf … install <packages>` into `root`, from the recipe's repositories
/// only (named mkimg-0, mkimg-1… in order).
pub fn dnf_install_cmd(recipe: &ResolvedRecipe, root: &Path, packages: &[String]) -> Cmd {
    let mut cmd = Cmd::new(
        format!(
            "installing {} {} for {} with dnf",
            recipe.distro.as_str(),
            recipe.suite,
            recipe.arch
        ),
        "dnf",
    )
    .arg("--forcearch")
    .arg(recipe.arch.as_str())
    .arg("--installroot")
    .arg(root)
    .arg("--releasever")
    .arg(&recipe.suite);
    for (i, url) in recipe.repos.iter().enumerate() {
        cmd = cmd.arg(format!("--repofrompath=mkimg-{i},{url}"));
    }
    for i in 0..recipe.repos.len() {
        cmd = cmd.arg("--repo").arg(format!("mkimg-{i}"));
    }
    cmd.arg("--setopt=install_weak_deps=False")
        .arg("-y")
        .arg("install")
        .args(packages)
}

/// `tar` of `root` to `out`, sorted, numeric owners, mtimes clamped to the
/// epoch, entries named `./…` as mmdebstrap names them.
pub fn tar_root_cmd(root: &Path, out: &Path, source_date_epoch: u64) -> Cmd {
    Cmd::new("packing the installed root into a tarball", "tar")
        .arg("--create")
        .arg(format!("--file={}", out.display()))
        .arg(format!("--directory={}", root.display()))
        .args(["--sort=name", "--numeric-owner", "--format=posix"])
        .args([
            "--pax-option=delete=atime,delete=ctime",
            "--xattrs",
            "--xattrs-include=*",
        ])
        .arg(format!("--mtime=@{source_date_epoch}"))
        .args(["--clamp-mtime", "."])
        .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
}

/// The edits mmdebstrap's hooks make, done from the host on an installed
/// tree: root's hash in etc/shadow, the serial getty link.
pub fn customize_root(root: &Path, recipe: &ResolvedRecipe) -> anyhow::Result<()> {
    let shadow_path = root.join("etc/shadow");
    let shadow = std::fs::read_to_string(&shadow_path)
        .with_context(|| format!("reading {}", shadow_path.display()))?;
    std::fs::write(&shadow_path, set_root_hash(&shadow, &recipe.root_hash())?)
        .with_context(|| format!("writing {}", shadow_path.display()))?;
    if let Some(console) = &recipe.console {
        let wants = root.join("etc/systemd/system/getty.target.wants");
        std::fs::create_dir_all(&wants).with_context(|| format!("creating {}", wants.display()))?;
        let link = wants.join(format!("serial-getty@{console}.service"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(SERIAL_GETTY_UNIT, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(())
}

/// A work directory removed (recursively) on drop.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the whole route, writing the tarball to `out`. Returns dnf's version.
pub(super) fn bootstrap_rpm(
    recipe: &ResolvedRecipe,
    out: &Path,
    source_date_epoch: u64,
    progress: &mut Progress,
) -> anyhow::Result<String> {
    let version = tool_version("dnf")?;
    let root = WorkDir(out.with_extension("root"));
    std::fs::create_dir_all(&root.0).with_context(|| format!("creating {}", root.0.display()))?;
    let packages = rpm_packages(recipe)?;
    dnf_install_cmd(recipe, &root.0, &packages)
        .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
        .run_with_stderr_lines(|line| progress.line(line))
        .with_context(|| {
            format!(
                "dnf could not install {} {}: are the repositories ({}) reachable from here?",
                recipe.distro.as_str(),
                recipe.suite,
                recipe.repos.join(", ")
            )
        })?;
    customize_root(&root.0, recipe)?;
    tar_root_cmd(&root.0, out, source_date_epoch).run()?;
    Ok(version)
}
