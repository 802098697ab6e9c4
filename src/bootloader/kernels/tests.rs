//! Kernel discovery and version order; `sort -V` (coreutils) is the oracle
//! for the order.

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

use super::{compare_versions, find_kernels, KernelEntry};
use crate::test_tools::find_tool;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Versions as they appear in Debian, Ubuntu, Fedora and vendor `/boot`s.
const VERSIONS: &[&str] = &[
    "6.12.48+deb13-riscv64",
    "6.12.9+deb13-riscv64",
    "6.12.48+deb13-arm64",
    "6.12.48+deb13-rt-arm64",
    "6.1.0-28-arm64",
    "6.1.0-9-arm64",
    "6.1.0-10-arm64",
    "6.1.0-28-cloud-arm64",
    "5.10.0-33-arm64",
    "6.16.3+deb14-riscv64",
    "6.6.63-current-sunxi64",
    "6.8.0-45-generic",
    "6.8.0-101-generic",
    "6.10.11-200.fc40.aarch64",
    "6.10.9-200.fc40.aarch64",
    "4.19.0-27-arm64",
    "6.12.0",
    "6.12",
    "6.12.1",
    "6.2.16-3-pve",
];

#[test]
fn versions_sort_like_sort_v() {
    let Some(sort) = find_tool("sort") else {
        return;
    };
    // A fixed shuffle so the input order is not already sorted.
    let mut input: Vec<&str> = VERSIONS.to_vec();
    input.reverse();
    input.rotate_left(7);
    let mut child = Command::new(sort)
        .arg("-V")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", input.join("\n")).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let expected: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut ours = input.clone();
    ours.sort_by(|a, b| compare_versions(a, b));
    assert_eq!(ours, expected, "our order vs sort -V");
}

#[test]
fn version_order_examples() {
    use Ordering::{Equal, Greater, Less};
    let cases = [
        ("6.12.48+deb13-riscv64", "6.12.9+deb13-riscv64", Greater),
        ("6.12.9+deb13-riscv64", "6.1.0-28-arm64", Greater),
        ("6.1.0-10-arm64", "6.1.0-9-arm64", Greater),
        ("6.1.0~rc1", "6.1.0", Less),
        ("6.1.0", "6.1.0", Equal),
        ("6.01", "6.1", Equal),
        ("6.1a", "6.1+", Less),
        ("123456789012345678901234567890", "99", Greater),
    ];
    for (a, b, want) in cases {
        assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
    }
}

#[test]
fn debian_boot_newest_first_with_initrds() {
    let boot = names(&[
        "System.map-6.12.9+deb13-riscv64",
        "config-6.12.9+deb13-riscv64",
        "initrd.img-6.12.9+deb13-riscv64",
        "vmlinuz-6.12.9+deb13-riscv64",
        "System.map-6.12.48+deb13-riscv64",
        "config-6.12.48+deb13-riscv64",
        "initrd.img-6.12.48+deb13-riscv64",
        "vmlinuz-6.12.48+deb13-riscv64",
        "vmlinuz",
        "vmlinuz.old",
        "initrd.img",
        "grub",
        "efi",
    ]);
    assert_eq!(
        find_kernels(&boot),
        vec![
            KernelEntry {
                version: "6.12.48+deb13-riscv64".into(),
                kernel: "vmlinuz-6.12.48+deb13-riscv64".into(),
                initrd: Some("initrd.img-6.12.48+deb13-riscv64".into()),
                bls: None,
            },
            KernelEntry {
                version: "6.12.9+deb13-riscv64".into(),
                kernel: "vmlinuz-6.12.9+deb13-riscv64".into(),
                initrd: Some("initrd.img-6.12.9+deb13-riscv64".into()),
                bls: None,
            },
        ]
    );
}

#[test]
fn other_layouts_and_ignored_names() {
    let boot = names(&[
        "Image-6.6.63-current-sunxi64",
        "vmlinux-6.6.63-current-sunxi64",
        "initramfs-6.10.11-200.fc40.aarch64.img",
        "vmlinuz-6.10.11-200.fc40.aarch64",
        "vmlinuz-6.10.11-200.fc40.aarch64.efi.signed",
        "vmlinuz-6.1.0-28-arm64.dpkg-tmp",
        "initrd-5.14.21-default",
        "Image-5.14.21-default",
        "Image",
        "vmlinuz-",
    ]);
    let found = find_kernels(&boot);
    let summary: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|k| (k.kernel.as_str(), k.initrd.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "vmlinuz-6.10.11-200.fc40.aarch64",
                Some("initramfs-6.10.11-200.fc40.aarch64.img")
            ),
            // vmlinux- is preferred over Image- for the same version.
            ("vmlinux-6.6.63-current-sunxi64", None),
            ("Image-5.14.21-default", Some("initrd-5.14.21-default")),
        ]
    );
}

#[test]
fn empty_boot_has_no_kernels() {
    assert!(find_kernels(&names(&["grub", "efi", "config-6.1.0-28-arm64"])).is_empty());
}
