//! A bootstrapped tarball, read back: does it hold what booting needs?
//! Kernel and initrd in /boot, the monolithic grub EFI image, a root
//! password hash, the serial getty link. Checked before a tarball enters the
//! cache, and by the tests.
//!
//! Reads the tar stream headers (and /etc/shadow's bytes) only.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{ensure, Context};

use super::debian::debian_arch;
use super::ResolvedRecipe;

/// What a rootfs tarball holds, as far as booting it goes. Paths are
/// without the leading `./`.
#[derive(Debug, Default, Clone)]
pub struct TarballSummary {
    pub entries: usize,
    /// Files in boot/ named vmlinux-*, vmlinuz-* or Image-*.
    pub kernels: Vec<String>,
    /// boot/initrd.img-* (Debian), boot/initramfs-* (dracut).
    pub initrds: Vec<String>,
    /// usr/lib/grub/<target>/monolithic/*.efi.
    pub grub_efi: Vec<String>,
    /// Root's password field in etc/shadow.
    pub root_password_field: Option<String>,
    /// etc/shadow's root line, field 3 (days since 1970 of the last change).
    pub root_last_change: Option<String>,
    /// etc/systemd/system/getty.target.wants/serial-getty@*.service links
    /// and their targets.
    pub serial_gettys: Vec<(String, String)>,
}

/// Read `path` and summarise it.
pub fn inspect_tarball(path: &Path) -> anyhow::Result<TarballSummary> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    summarize(BufReader::new(file)).with_context(|| format!("reading tarball {}", path.display()))
}

fn summarize(reader: impl Read) -> anyhow::Result<TarballSummary> {
    let mut summary = TarballSummary::default();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        summary.entries += 1;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").to_string();
        if let Some(name) = path.strip_prefix("boot/") {
            if ["vmlinux-", "vmlinuz-", "Image-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                summary.kernels.push(path.clone());
            } else if name.starts_with("initrd.img-") || name.starts_with("initramfs-") {
                summary.initrds.push(path.clone());
            }
        } else if path.starts_with("usr/lib/grub/")
            && path.contains("/monolithic/")
            && path.ends_with(".efi")
        {
            summary.grub_efi.push(path.clone());
        } else if path == "etc/shadow" {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let root = text.lines().find_map(|l| l.strip_prefix("root:"));
            let mut fields = root.map(|r| r.split(':')).into_iter().flatten();
            summary.root_password_field = fields.next().map(str::to_string);
            summary.root_last_change = fields.next().map(str::to_string);
        } else if path.starts_with("etc/systemd/system/getty.target.wants/serial-getty@") {
            let target = entry.link_name()?.map(|t| t.to_string_lossy().into_owned());
            summary
                .serial_gettys
                .push((path.clone(), target.unwrap_or_default()));
        }
    }
    Ok(summary)
}

impl TarballSummary {
    /// True when root has a usable password hash (not `*`, `!…` or empty).
    pub fn root_can_log_in(&self) -> bool {
        self.root_password_field
            .as_deref()
            .is_some_and(|f| f.starts_with('$'))
    }

    /// Fail naming the first missing piece the recipe should have produced.
    pub fn check_bootable(&self, recipe: &ResolvedRecipe) -> anyhow::Result<()> {
        ensure!(
            !self.kernels.is_empty(),
            "no kernel (boot/vmlinu?-*) in the tarball"
        );
        ensure!(
            !self.initrds.is_empty(),
            "no initrd (boot/initrd.img-*) in the tarball"
        );
        // RPM distros put grub's EFI image elsewhere (/boot/efi/EFI/<vendor>/).
        if !recipe.distro.is_rpm() {
            let names = debian_arch(recipe.arch)?;
            let grub = format!(
                "usr/lib/grub/{}/monolithic/{}",
                names.grub_target, names.grub_efi
            );
            ensure!(self.grub_efi.contains(&grub), "no {grub} in the tarball");
        }
        ensure!(
            self.root_can_log_in(),
            "root has no password hash in etc/shadow"
        );
        if let Some(console) = &recipe.console {
            let link =
                format!("etc/systemd/system/getty.target.wants/serial-getty@{console}.service");
            ensure!(
                self.serial_gettys.iter().any(|(path, _)| *path == link),
                "no {link} in the tarball"
            );
        }
        Ok(())
    }
}
