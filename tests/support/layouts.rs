//! Rootfs tarballs in the layouts of two RPM distros, openEuler 24.03 and
//! Fedora 41, made from the Debian trixie rootfs the slow tests already
//! use: no RPM repository is reachable here (issue 14, "How to test it").
//!
//! One streaming pass over the Debian tarball, member by member. Every
//! member not named below is copied as it was: its header bytes, the PAX
//! or GNU long-name members before it, its data. The changes:
//!
//! - kernel `/boot/vmlinu[xz]-<v>` → `/boot/vmlinuz-<v>`, initrd
//!   `/boot/initrd.img-<v>` → `/boot/initramfs-<v>.img` (dracut's name);
//!   the top-level `/vmlinuz*` and `/initrd.img*` symlinks are dropped
//!   (RPM distros have none);
//! - Debian's `/usr/lib/grub/<target>/monolithic/` is dropped; the grub EFI
//!   image is made instead by the host's `grub-mkimage` from the rootfs's
//!   own module directory (captured during the pass) with prefix
//!   `/EFI/<vendor>`, as the distros' grub2-efi packages ship it, at
//!   `/boot/efi/EFI/<vendor>/grub<arch>.efi`;
//! - `/usr/sbin/grub-mkconfig` → `/usr/sbin/grub2-mkconfig` (only that
//!   program), `/boot/grub/…` → `/boot/grub2/…`; Debian's
//!   `/etc/grub.d/05_debian_theme` is dropped (it fails without
//!   `/boot/grub`, and RPM distros do not have it);
//! - `/usr/lib/os-release` (the `/etc/os-release` symlink stays),
//!   `/etc/system-release`, `/etc/<vendor>-release` and `/etc/default/grub`
//!   in the distro's style, with an empty `GRUB_CMDLINE_LINUX` (no `quiet`,
//!   no `rhgb`: the boot tests watch the console);
//! - Fedora only: `GRUB_ENABLE_BLSCFG=true`, a machine id when Debian's is
//!   empty, and one Boot Loader Specification entry per kernel in
//!   `/boot/loader/entries/` in Fedora's shape, whose `options` carry
//!   [`BLS_MARKER`] and a deliberately bogus `root=UUID=0…0` (a rootfs built
//!   in a container cannot know the image's root: mkimg must replace it).
//!
//! New members are appended at the end with the header of `/boot` as their
//! template (owner, mtime, format), so two runs give the same bytes. The
//! pass itself is [`pass`]; this file holds the recipe's text and names.
//!
//! Results are cached as `target/test-layouts/<debian stem>-<layout>-v<RECIPE>.tar`
//! (bump [`RECIPE`] when the recipe changes), written to a temporary name
//! and renamed: parallel tests, threads or processes, never see half a file.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use super::tools::locate_tool;

mod pass;

/// The version of the recipe, part of the cached file name.
const RECIPE: u32 = 1;

/// The marker argument the Fedora layout's BLS entry carries in `options`.
pub const BLS_MARKER: &str = "mkimg.bls=fedora-entry";

/// The machine id the Fedora layout gets when Debian's is empty
/// ("mkimg-fedora-lay" in hex).
pub const FEDORA_MACHINE_ID: &str = "6d6b696d672d6665646f72612d6c6179";

/// The root= the BLS entry carries: never the image's.
pub const BOGUS_ROOT: &str = "root=UUID=00000000-0000-0000-0000-000000000000";

/// What grub needs to boot a kernel and initrd on ext4 from a GPT disk's
/// vfat ESP and to run a grub-mkconfig-generated grub.cfg.
const GRUB_MODULES: [&str; 27] = [
    "part_gpt",
    "part_msdos",
    "fat",
    "ext2",
    "normal",
    "linux",
    "boot",
    "configfile",
    "search",
    "search_fs_uuid",
    "search_fs_file",
    "search_label",
    "echo",
    "test",
    "gzio",
    "ls",
    "cat",
    "loadenv",
    "minicmd",
    "reboot",
    "halt",
    "efi_gop",
    "all_video",
    "font",
    "gfxterm",
    "terminal",
    "serial",
];

/// An RPM distro's layout of `/boot`, grub and os-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    OpenEuler,
    Fedora,
}

impl Layout {
    /// The vendor directory under `/boot/efi/EFI` (and the grub prefix);
    /// also the os-release `ID`.
    pub fn vendor(self) -> &'static str {
        match self {
            Layout::OpenEuler => "openEuler",
            Layout::Fedora => "fedora",
        }
    }

    fn file_tag(self) -> &'static str {
        match self {
            Layout::OpenEuler => "openeuler",
            Layout::Fedora => "fedora",
        }
    }

    fn os_release(self) -> &'static str {
        match self {
            Layout::OpenEuler => {
                "NAME=\"openEuler\"\nVERSION=\"24.03 (LTS)\"\nID=\"openEuler\"\n\
                 VERSION_ID=\"24.03\"\nPRETTY_NAME=\"openEuler 24.03 (LTS)\"\n\
                 ANSI_COLOR=\"0;31\"\n\n"
            }
            Layout::Fedora => {
                "NAME=\"Fedora Linux\"\nVERSION=\"41 (Forty One)\"\nID=fedora\n\
                 VERSION_ID=41\nVERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f41\"\n\
                 PRETTY_NAME=\"Fedora Linux 41 (Forty One)\"\nANSI_COLOR=\"0;38;2;60;110;180\"\n\
                 CPE_NAME=\"cpe:/o:fedoraproject:fedora:41\"\n"
            }
        }
    }

    /// `/etc/system-release` and `/etc/<vendor>-release`.
    fn release(self) -> &'static str {
        match self {
            Layout::OpenEuler => "openEuler release 24.03 (LTS)\n",
            Layout::Fedora => "Fedora release 41 (Forty One)\n",
        }
    }

    fn default_grub(self) -> String {
        let mut text = String::from(
            "GRUB_TIMEOUT=5\n\
             GRUB_DISTRIBUTOR=\"$(sed 's, release .*$,,g' /etc/system-release)\"\n\
             GRUB_DEFAULT=saved\n\
             GRUB_DISABLE_SUBMENU=true\n\
             GRUB_TERMINAL_OUTPUT=\"console\"\n\
             GRUB_CMDLINE_LINUX=\"\"\n\
             GRUB_DISABLE_RECOVERY=\"true\"\n",
        );
        if self == Layout::Fedora {
            text.push_str("GRUB_ENABLE_BLSCFG=true\n");
        }
        text
    }
}

/// Debian's grub platform directory under /usr/lib/grub (also
/// `grub-mkimage -O`) and the EFI file name RPM distros give it.
pub fn grub_target(arch: &str) -> (&'static str, &'static str) {
    match arch {
        "riscv64" => ("riscv64-efi", "grubriscv64.efi"),
        "aarch64" => ("arm64-efi", "grubaa64.efi"),
        _ => panic!("no grub target for arch {arch:?}"),
    }
}

/// Where the layout keeps its grub EFI image, without the leading `/`:
/// `boot/efi/EFI/openEuler/grubriscv64.efi`.
pub fn grub_efi_path(layout: Layout, arch: &str) -> String {
    format!("boot/efi/EFI/{}/{}", layout.vendor(), grub_target(arch).1)
}

/// The BLS entry of kernel `version` in Fedora's shape.
pub fn bls_entry(version: &str) -> String {
    format!(
        "title Fedora Linux ({version}) 41 (Forty One)\n\
         version {version}\n\
         linux /boot/vmlinuz-{version}\n\
         initrd /boot/initramfs-{version}.img\n\
         options {BOGUS_ROOT} ro {BLS_MARKER}\n\
         grub_users $grub_users\n\
         grub_arg --unrestricted\n\
         grub_class fedora\n"
    )
}

/// One layout tarball is made at a time per test binary (they share the
/// CPU; a second thread then finds the first one's result).
static MAKING: Mutex<()> = Mutex::new(());

/// A rootfs tarball in `layout`, made from the Debian one at `debian`
/// (arch "riscv64" | "aarch64"), cached under
/// target/test-layouts/<debian file stem>-<layout>-v<RECIPE>.tar.
pub fn rpm_layout(debian: &Path, arch: &str, layout: Layout) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("test-layouts");
    let stem = debian
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("{}: no file stem", debian.display()));
    let path = dir.join(format!("{stem}-{}-v{RECIPE}.tar", layout.file_tag()));
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    if path.is_file() {
        return path;
    }
    fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix(".making-")
        .suffix(".tar")
        .tempfile_in(&dir)
        .unwrap();
    write_layout(debian, arch, layout, tmp.as_file());
    // Readable by the tests that build as another user.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap();
    tmp.persist(&path).unwrap();
    eprintln!(
        "made {} from {} in {:.1}s",
        path.display(),
        debian.display(),
        started.elapsed().as_secs_f64()
    );
    path
}

/// Write the `layout` tarball made from `debian` to `out` (not cached).
pub fn write_layout(debian: &Path, arch: &str, layout: Layout, out: &File) {
    let grub_mkimage =
        locate_tool("grub-mkimage").expect("grub-mkimage (package grub-common) is not installed");
    pass::convert(debian, arch, layout, out, &grub_mkimage)
        .unwrap_or_else(|e| panic!("making the {layout:?} layout of {}: {e}", debian.display()));
}

/// The data of member `rel` (no `./`) of the tarball at `tar`, if any.
pub fn read_member(tar: &Path, rel: &str) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(File::open(tar).unwrap());
    for entry in archive.entries_with_seek().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        if path.strip_prefix("./").unwrap_or(&path) == Path::new(rel) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            return Some(data);
        }
    }
    None
}

/// The version `<v>` of the one `/boot/vmlinuz-<v>` of a layout tarball.
pub fn layout_kernel_version(tar: &Path) -> String {
    let mut archive = tar::Archive::new(File::open(tar).unwrap());
    let mut versions = Vec::new();
    for entry in archive.entries_with_seek().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if let Some(v) = path.trim_start_matches("./").strip_prefix("boot/vmlinuz-") {
            versions.push(v.to_string());
        }
    }
    assert_eq!(versions.len(), 1, "{}: kernels {versions:?}", tar.display());
    versions.remove(0)
}
