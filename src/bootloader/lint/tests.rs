//! The lint against a real grub.cfg and hand-broken copies of it.
//!
//! Fixture `debian-trixie-riscv64.grub.cfg`: what Debian trixie's
//! grub-mkconfig (grub 2.12-9+deb13u2) wrote in `mkimg build --board
//! qemu-riscv64 --grub mkconfig` over the Debian rootfs plus
//! grub-efi-riscv64, taken from the ESP with
//! `mcopy -i disk.raw@@2M ::EFI/debian/grub.cfg`. It is what a passing
//! grub.cfg looks like: the distro's own menu, root by filesystem UUID.

use super::{check_grub_cfg, lint_grub_cfg, Finding, LintRules, RootBy};
use crate::arch::Arch;

const DEBIAN: &str = include_str!("debian-trixie-riscv64.grub.cfg");
const ROOT_UUID: &str = "78662d6f-706f-6570-6f72-742d726f6f74";

fn rules() -> LintRules {
    LintRules {
        root: RootBy::Uuid(ROOT_UUID.to_string()),
        arch: Arch::Riscv64,
        forbidden: vec!["/tmp/mkimg-work-AbCd".into(), "/dev/mkimg-root".into()],
    }
}

/// 1-based numbers of the lines holding `needle`.
fn lines_with(text: &str, needle: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect()
}

fn finding_lines(findings: &[Finding]) -> Vec<usize> {
    findings.iter().map(|f| f.line).collect()
}

#[test]
fn debian_grub_mkconfig_output_passes() {
    assert_eq!(lint_grub_cfg(DEBIAN, &rules()), Vec::<Finding>::new());
    assert!(DEBIAN.contains("submenu 'Advanced options for Debian GNU/Linux'"));
}

#[test]
fn loop_device_root_is_reported_on_each_kernel_line() {
    let broken = DEBIAN.replace(&format!("root=UUID={ROOT_UUID}"), "root=/dev/loop3");
    let findings = lint_grub_cfg(&broken, &rules());
    let kernel_lines = lines_with(&broken, "root=/dev/loop3");
    assert_eq!(
        kernel_lines.len(),
        3,
        "three entries: default, advanced, recovery"
    );
    // Each kernel line fails twice: wrong root= and a loop device named.
    let mut expected: Vec<usize> = kernel_lines.iter().flat_map(|&l| [l, l]).collect();
    expected.sort();
    assert_eq!(finding_lines(&findings), expected);
    assert!(
        findings[0].problem.contains("boots root=/dev/loop3"),
        "{findings:?}"
    );
    assert!(findings[0]
        .problem
        .contains(&format!("root=UUID={ROOT_UUID}")));
    assert!(findings[1].problem.contains("loop device"));
    assert!(findings[0]
        .text
        .contains("linux\t/boot/vmlinux-6.12.107+deb13-riscv64"));
}

#[test]
fn error_text_shows_line_numbers_and_lines() {
    let broken = DEBIAN.replace(ROOT_UUID, "00000000-0000-0000-0000-000000000000");
    let err = check_grub_cfg("grub.cfg from grub-mkconfig", &broken, &rules()).unwrap_err();
    let text = err.to_string();
    let first = lines_with(&broken, "\tlinux\t")[0];
    assert!(
        text.starts_with("grub.cfg from grub-mkconfig fails 3 check(s):"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  line {first}: boots root=UUID=00000000-")),
        "{text}"
    );
    assert!(
        text.contains("\n    linux\t/boot/vmlinux-6.12.107+deb13-riscv64 root=UUID=0000"),
        "{text}"
    );
}

#[test]
fn partuuid_rule_wants_partuuid() {
    let guid = "6b8a1c0e-3f1d-4c51-9d55-6a0f1e5b7c10";
    let rules = LintRules {
        root: RootBy::PartUuid(guid.to_string()),
        ..rules()
    };
    assert_eq!(lint_grub_cfg(DEBIAN, &rules).len(), 3);
    let by_partuuid = DEBIAN.replace(
        &format!("root=UUID={ROOT_UUID}"),
        &format!("root=PARTUUID={guid}"),
    );
    assert!(lint_grub_cfg(&by_partuuid, &rules).is_empty());
}

#[test]
fn linuxefi_is_x86_only() {
    let efi = DEBIAN
        .replace("\tlinux\t", "\tlinuxefi\t")
        .replace("\tinitrd\t", "\tinitrdefi\t");
    let findings = lint_grub_cfg(&efi, &rules());
    assert_eq!(findings.len(), 6, "{findings:?}");
    assert!(findings[0]
        .problem
        .contains("`linuxefi` exists only in x86 builds"));
    assert!(findings[0].problem.contains("riscv64 needs `linux`"));
    assert!(findings[1].problem.contains("`initrdefi`"));
    let x86 = LintRules {
        arch: Arch::X86_64,
        ..rules()
    };
    assert!(lint_grub_cfg(&efi, &x86).is_empty());
}

#[test]
fn host_paths_are_reported() {
    let leaked = DEBIAN.replace(
        "font=\"/usr/share/grub/unicode.pf2\"",
        "font=\"/tmp/mkimg-work-AbCd/mkconfig-root/usr/share/grub/unicode.pf2\"",
    );
    let findings = lint_grub_cfg(&leaked, &rules());
    assert_eq!(finding_lines(&findings), lines_with(&leaked, "mkimg-work"));
    assert_eq!(
        findings[0].problem,
        "names the build-host path /tmp/mkimg-work-AbCd"
    );
    let node = DEBIAN.replace(
        "search --no-floppy",
        "set root=/dev/mkimg-root; search --no-floppy",
    );
    assert!(!lint_grub_cfg(&node, &rules()).is_empty());
}

#[test]
fn missing_root_and_missing_kernel() {
    let no_root = DEBIAN.replace(&format!("root=UUID={ROOT_UUID} "), "");
    let findings = lint_grub_cfg(&no_root, &rules());
    assert_eq!(findings.len(), 3);
    assert!(findings[0]
        .problem
        .starts_with("boots a kernel without a root= argument"));

    let header_only: String = DEBIAN.lines().take(90).map(|l| format!("{l}\n")).collect();
    let findings = lint_grub_cfg(&header_only, &rules());
    assert_eq!(finding_lines(&findings), [0]);
    assert!(findings[0].to_string().starts_with("no `linux` line"));
}
