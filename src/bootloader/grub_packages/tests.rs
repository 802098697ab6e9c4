//! The checks `--grub mkconfig` makes after the rootfs pass: each missing
//! piece names the package of the rootfs's distro family and the way out.

use super::check_for_mkconfig;
use crate::bootloader::board_args::merge_board_args;
use crate::bootloader::detect::detect;
use crate::bootloader::golden::builtin_plan;
use crate::rootfs::{CaptureResults, Captured, NodeType};

const DEBIAN: &str = "NAME=\"Debian GNU/Linux\"\nID=debian\n";
const OPENEULER: &str = "NAME=\"openEuler\"\nID=\"openEuler\"\nVERSION_ID=\"24.03\"\n";
const ALPINE: &str = "NAME=\"Alpine Linux\"\nID=alpine\n";

/// Captures of a rootfs with `os_release`, and /etc/default/grub (as the
/// pass leaves it: merged) and grub's modules for `target` when asked.
fn captures(
    os_release: &str,
    default_grub: Option<Captured>,
    target: Option<&str>,
) -> CaptureResults {
    let mut c = CaptureResults::default();
    c.files.insert(
        "/etc/os-release".into(),
        Captured::File(os_release.as_bytes().to_vec()),
    );
    if let Some(captured) = default_grub {
        c.files.insert("/etc/default/grub".into(), captured);
    }
    c.files.insert(
        "/usr/sbin/grub-mkconfig".into(),
        Captured::File(b"#! /bin/sh\n".to_vec()),
    );
    if let Some(target) = target {
        c.files.insert(
            format!("/usr/lib/grub/{target}"),
            Captured::Other(NodeType::Dir),
        );
    }
    c
}

fn merged(args: &str) -> Option<Captured> {
    let text = merge_board_args(b"GRUB_CMDLINE_LINUX=\"\"\n", args)
        .unwrap()
        .unwrap();
    Some(Captured::File(text))
}

fn check(board: &str, c: &CaptureResults) -> Result<(), String> {
    let plan = builtin_plan(board);
    let boot = detect(&plan, c);
    check_for_mkconfig(&plan, &boot, c).map_err(|e| format!("{e:#}"))
}

#[test]
fn a_complete_rootfs_passes() {
    let c = captures(DEBIAN, merged("console=ttyS0"), Some("riscv64-efi"));
    assert_eq!(check("qemu-riscv64", &c), Ok(()));
}

#[test]
fn no_default_grub_names_the_package_of_the_family() {
    let err = check("qemu-riscv64", &captures(DEBIAN, None, Some("riscv64-efi"))).unwrap_err();
    assert!(err.contains("has no /etc/default/grub"), "{err}");
    assert!(err.contains("(debian)"), "{err}");
    assert!(err.contains("Debian/Ubuntu: grub-efi-riscv64"), "{err}");
    assert!(!err.contains("grub2-"), "{err}");
    assert!(err.contains("or use --grub template"), "{err}");

    let err = check(
        "qemu-aarch64",
        &captures(OPENEULER, None, Some("arm64-efi")),
    )
    .unwrap_err();
    assert!(err.contains("grub2-tools owns it"), "{err}");
    assert!(err.contains("grub2-efi-aa64"), "{err}");
    assert!(!err.contains("Debian/Ubuntu"), "{err}");

    // An unknown family: both.
    let err = check("qemu-aarch64", &captures(ALPINE, None, Some("arm64-efi"))).unwrap_err();
    assert!(
        err.contains("grub-efi-arm64") && err.contains("grub2-efi-aa64"),
        "{err}"
    );
}

#[test]
fn no_module_directory_names_the_package_of_the_family() {
    let err = check(
        "qemu-riscv64",
        &captures(DEBIAN, merged("console=ttyS0"), None),
    )
    .unwrap_err();
    assert!(err.contains("has no /usr/lib/grub/riscv64-efi/"), "{err}");
    assert!(err.contains("Debian/Ubuntu: grub-efi-riscv64)"), "{err}");
    assert!(err.contains("or use --grub template"), "{err}");

    let c = captures(OPENEULER, merged("console=ttyAMA0"), Some("riscv64-efi"));
    let err = check("qemu-aarch64", &c).unwrap_err();
    assert!(err.contains("has no /usr/lib/grub/arm64-efi/"), "{err}");
    assert!(
        err.contains("grub2-efi-aa64 and grub2-efi-aa64-modules"),
        "{err}"
    );
}

#[test]
fn a_default_grub_mkimg_cannot_change_is_refused() {
    let c = captures(
        DEBIAN,
        Some(Captured::Symlink("/etc/shadow".into())),
        Some("riscv64-efi"),
    );
    let err = check("qemu-riscv64", &c).unwrap_err();
    assert!(err.contains("is a symlink to \"/etc/shadow\""), "{err}");
    assert!(err.contains("make it a regular file"), "{err}");

    // A file without the arguments (the pass did not change it).
    let c = captures(
        DEBIAN,
        Some(Captured::File(b"GRUB_CMDLINE_LINUX=\"quiet\"\n".to_vec())),
        Some("riscv64-efi"),
    );
    let err = check("qemu-riscv64", &c).unwrap_err();
    assert!(
        err.contains("lacks the board's kernel arguments console=ttyS0"),
        "{err}"
    );
}

#[test]
fn no_grub_mkconfig_names_the_package_of_the_family() {
    let mut c = captures(DEBIAN, merged("console=ttyS0"), Some("riscv64-efi"));
    c.files.remove("/usr/sbin/grub-mkconfig");
    let err = check("qemu-riscv64", &c).unwrap_err();
    assert!(
        err.contains("has no grub-mkconfig or grub2-mkconfig"),
        "{err}"
    );
    assert!(err.contains("/usr/sbin/grub2-mkconfig"), "{err}");
    assert!(err.contains("Debian/Ubuntu: grub-efi-riscv64"), "{err}");
    assert!(err.contains("[boot] mkconfig"), "{err}");
    c.files.insert(
        "/usr/sbin/grub2-mkconfig".into(),
        Captured::File(b"#! /bin/sh\n".to_vec()),
    );
    assert_eq!(check("qemu-riscv64", &c), Ok(()));
    c.files.remove("/usr/sbin/grub2-mkconfig");
    c.files.insert(
        "/etc/os-release".into(),
        Captured::File(OPENEULER.as_bytes().to_vec()),
    );
    let err = check("qemu-riscv64", &c).unwrap_err();
    assert!(err.contains("Fedora/openEuler: grub2-tools"), "{err}");
}
