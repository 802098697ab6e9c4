//! Which kernels a rootfs's `/boot` holds, newest first: the menu entries of
//! grub.cfg and extlinux.conf.
//!
//! Flows in: the file names in `/boot` (the caller lists them from the
//! tarball; nothing here reads a filesystem). Flows out: [`KernelEntry`]s.
//!
//! Names recognised (`<v>` is the version, everything after the prefix):
//! - kernels: `vmlinuz-<v>` (Debian, Fedora, Arch), `vmlinux-<v>`
//!   (uncompressed), `Image-<v>` (vendor BSPs); for one version the first
//!   of these that exists wins;
//! - initrds: `initrd.img-<v>` (Debian), `initramfs-<v>.img` (Fedora,
//!   Arch), `initrd-<v>.img`, `initrd-<v>` (SUSE).
//!
//! Ignored on purpose: unversioned names (`vmlinuz`, `Image`, `vmlinuz.old`)
//! — in `/boot` they are Debian's `link_in_boot` symlinks to a versioned
//! kernel that is listed anyway, or an image with no version to sort by;
//! signed copies (`*.efi.signed`, used only under Secure Boot on amd64) and
//! package-manager leftovers (`*.dpkg-*`, `*.old`, `*.bak`).
//!
//! Versions compare like `dpkg --compare-versions` (and `sort -V` for the
//! names kernels use): digit runs numerically, so 6.12.48 > 6.12.9 > 6.1.0.
//!
//! Also here, shared by grub.cfg and extlinux.conf: how a boot loader that
//! reads the filesystem holding `/boot` names those files
//! ([`boot_prefix`]), and the board's kernel arguments ([`board_cmdline`]).

use std::cmp::Ordering;

use crate::plan::Plan;

/// Prefixes of kernel images, in order of preference for one version.
const KERNEL_PREFIXES: [&str; 3] = ["vmlinuz-", "vmlinux-", "Image-"];

/// Suffixes that mark a copy or a leftover, not a kernel to boot.
const IGNORED_SUFFIXES: [&str; 9] = [
    ".efi.signed",
    ".sig",
    ".old",
    ".bak",
    ".dpkg-tmp",
    ".dpkg-new",
    ".dpkg-old",
    ".dpkg-bak",
    ".dpkg-dist",
];

/// One bootable kernel found in `/boot`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelEntry {
    /// The version part of the name, e.g. `6.12.48+deb13-riscv64`.
    pub version: String,
    /// File name in `/boot`, e.g. `vmlinuz-6.12.48+deb13-riscv64`.
    pub kernel: String,
    /// File name of the matching initrd in `/boot`, if there is one.
    pub initrd: Option<String>,
    /// What a Boot Loader Specification entry adds, when the entry came
    /// from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bls: Option<BlsDetails>,
}

/// The parts of a BLS entry (`/boot/loader/entries/*.conf`) the menu uses
/// beyond kernel and initrd.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlsDetails {
    /// The entry's file name.
    pub file: String,
    pub title: Option<String>,
    /// Initrds after the first (file names in /boot).
    pub more_initrds: Vec<String>,
    /// The entry's kernel options, one word each (its `root=` included).
    pub options: Vec<String>,
    /// `grub_class`.
    pub class: Option<String>,
}

/// The kernels in `boot_entries` (file names in `/boot`), newest first, one
/// per version (the preferred image kind when several exist).
pub fn find_kernels(boot_entries: &[String]) -> Vec<KernelEntry> {
    let mut kernels: Vec<KernelEntry> = Vec::new();
    for prefix in KERNEL_PREFIXES {
        for name in boot_entries {
            let Some(version) = name.strip_prefix(prefix) else {
                continue;
            };
            if version.is_empty()
                || !is_plain_version(version)
                || IGNORED_SUFFIXES.iter().any(|s| version.ends_with(s))
                || kernels.iter().any(|k| k.version == version)
            {
                continue;
            }
            kernels.push(KernelEntry {
                version: version.to_string(),
                kernel: name.clone(),
                initrd: find_initrd(boot_entries, version),
                bls: None,
            });
        }
    }
    kernels.sort_by(|a, b| compare_versions(&b.version, &a.version));
    kernels
}

/// Kernel versions are pasted into grub.cfg and extlinux.conf (paths,
/// titles, ids): only the characters kernel packages use are accepted, so a
/// crafted file name in /boot (a newline, a space) cannot add a line.
fn is_plain_version(version: &str) -> bool {
    version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c))
}

fn find_initrd(boot_entries: &[String], version: &str) -> Option<String> {
    [
        format!("initrd.img-{version}"),
        format!("initramfs-{version}.img"),
        format!("initrd-{version}.img"),
        format!("initrd-{version}"),
    ]
    .into_iter()
    .find(|candidate| boot_entries.iter().any(|e| e == candidate))
}

/// Compare two version strings the way dpkg compares the upstream part of a
/// Debian version (deb-version(5)): alternate runs of non-digits and
/// digits; non-digits compare character by character with letters before
/// other characters and `~` before everything, even the end; digit runs
/// compare as numbers (of any length).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (a_text, a_rest) = split_run(a, |c| !c.is_ascii_digit());
        let (b_text, b_rest) = split_run(b, |c| !c.is_ascii_digit());
        let ord = compare_text(a_text, b_text);
        if ord != Ordering::Equal {
            return ord;
        }
        let (a_num, a_rest) = split_run(a_rest, |c| c.is_ascii_digit());
        let (b_num, b_rest) = split_run(b_rest, |c| c.is_ascii_digit());
        let ord = compare_digits(a_num, b_num);
        if ord != Ordering::Equal {
            return ord;
        }
        a = a_rest;
        b = b_rest;
    }
    Ordering::Equal
}

fn split_run(s: &[u8], keep: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&c| !keep(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// dpkg's character weight: `~` lowest, then the end of the run, letters,
/// then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_text(a: &[u8], b: &[u8]) -> Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| weight(a.get(i).copied()).cmp(&weight(b.get(i).copied())))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |s: &[u8]| -> Vec<u8> { s.iter().copied().skip_while(|&c| c == b'0').collect() };
    let (a, b) = (trim(a), trim(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

/// The path of `/boot` as seen from the root of the filesystem holding it:
/// `/boot` when /boot is a directory of the root filesystem, empty when
/// /boot is its own partition (its files sit at that filesystem's top).
pub fn boot_prefix(plan: &Plan) -> String {
    let separate = plan
        .partition_holding("/boot")
        .and_then(|p| p.mount.as_ref())
        .is_some_and(|m| m.path == "/boot");
    if separate {
        String::new()
    } else {
        "/boot".to_string()
    }
}

/// The board's kernel arguments: `boot.cmdline`, plus `console=<console>`
/// from `board.console` when the cmdline names no console itself.
pub fn board_cmdline(plan: &Plan) -> String {
    let mut args: Vec<String> = plan
        .boot
        .cmdline
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(console) = &plan.board.console {
        if !args.iter().any(|a| a.starts_with("console=")) {
            args.push(format!("console={console}"));
        }
    }
    args.join(" ")
}

/// The words of `args` (in order, each once) that `have` lacks: the
/// board's arguments a distro's GRUB_CMDLINE_LINUX does not give yet.
pub fn args_missing_from(args: &str, have: &str) -> Vec<String> {
    let have: Vec<&str> = have.split_whitespace().collect();
    let mut missing: Vec<String> = Vec::new();
    for arg in args.split_whitespace() {
        if !have.contains(&arg) && !missing.iter().any(|m| m == arg) {
            missing.push(arg.to_string());
        }
    }
    missing
}

/// `a b c` from parts that may be empty or padded.
pub fn join_cmdline(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error for a `/boot` without a kernel: what was looked for and what
/// was there.
pub fn no_kernel_message(boot_entries: &[String]) -> String {
    let found = if boot_entries.is_empty() {
        "/boot is empty".to_string()
    } else {
        let mut names = boot_entries.to_vec();
        names.sort();
        format!("/boot holds: {}", names.join(", "))
    };
    format!(
        "no kernel in /boot (looked for vmlinuz-<version>, vmlinux-<version>, Image-<version>); \
         {found}. Install a kernel package in the rootfs (Debian: linux-image-<arch>)"
    )
}

#[cfg(test)]
mod tests;
