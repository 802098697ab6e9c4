//! fstab: golden text for the QEMU board and a board with a separate /boot,
//! and `findmnt --verify` (util-linux) as the oracle.
//!
//! `findmnt --verify --tab-file F` also checks the host: every `UUID=` must
//! exist here and every mount point must be a directory here. Neither can be
//! true for an image being built, so exactly those two messages
//! ("unreachable on boot required source: UUID=…" and "…required target…")
//! are filtered; everything else (parse errors, wrong order, bad fields) fails.

use std::path::Path;

use super::render_fstab;
use crate::bootloader::golden::{
    assert_golden, builtin_plan, plan_from_toml, EXTLINUX_BOARD, SEPARATE_BOOT_BOARD,
};
use crate::test_tools::find_tool;

/// findmnt's findings on `text` that are not about this host; `None` when
/// findmnt is missing (skip).
fn findmnt_problems(text: &str) -> Option<Vec<String>> {
    let findmnt = find_tool("findmnt")?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fstab");
    std::fs::write(&file, text).unwrap();
    Some(run_findmnt(&findmnt, &file))
}

fn run_findmnt(findmnt: &Path, file: &Path) -> Vec<String> {
    let out = std::process::Command::new(findmnt)
        .args(["--verify", "--verbose", "--tab-file"])
        .arg(file)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut problems: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[E]") || l.starts_with("[W]") || l.contains("parse error"))
        .filter(|l| !l.starts_with("[E] unreachable on boot required source: UUID="))
        .filter(|l| !l.starts_with("[E] unreachable on boot required target:"))
        .filter(|l| !l.starts_with("0 parse errors"))
        .map(str::to_string)
        .collect();
    if !text.contains("0 parse errors") {
        problems.push(format!("no '0 parse errors' summary in:\n{text}"));
    }
    problems
}

#[test]
fn qemu_riscv64_fstab() {
    let text = render_fstab(&builtin_plan("qemu-riscv64"));
    assert_golden("fstab.qemu-riscv64", &text);
    if let Some(problems) = findmnt_problems(&text) {
        assert!(
            problems.is_empty(),
            "findmnt --verify:\n{problems:#?}\n{text}"
        );
    }
}

#[test]
fn separate_boot_fstab_mounts_parents_first() {
    let text = render_fstab(&plan_from_toml(SEPARATE_BOOT_BOARD));
    assert_golden("fstab.sep-boot", &text);
    let mounts: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(mounts, ["/", "/boot", "/boot/efi"]);
    if let Some(problems) = findmnt_problems(&text) {
        assert!(
            problems.is_empty(),
            "findmnt --verify:\n{problems:#?}\n{text}"
        );
    }
}

#[test]
fn mbr_board_fstab_names_ext4_uuids() {
    let text = render_fstab(&plan_from_toml(EXTLINUX_BOARD));
    let entries: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        entries,
        [
            [
                "UUID=726f6f74-0000-4000-8000-0000000000a2",
                "/",
                "ext4",
                "defaults",
                "0",
                "1"
            ],
            [
                "UUID=626f6f74-0000-4000-8000-0000000000a1",
                "/boot",
                "ext4",
                "defaults",
                "0",
                "2"
            ],
        ]
    );
    if let Some(problems) = findmnt_problems(&text) {
        assert!(
            problems.is_empty(),
            "findmnt --verify:\n{problems:#?}\n{text}"
        );
    }
}

/// The oracle is not vacuous: the same lines in the wrong order, and a
/// line with a missing field, are reported.
#[test]
fn findmnt_rejects_wrong_order_and_bad_lines() {
    let text = render_fstab(&plan_from_toml(SEPARATE_BOOT_BOARD));
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    lines.reverse();
    let Some(problems) = findmnt_problems(&format!("{}\n", lines.join("\n"))) else {
        return;
    };
    assert!(
        problems.iter().any(|p| p.contains("wrong order")),
        "{problems:#?}"
    );
    let problems = findmnt_problems("UUID=0045-5350 /boot/efi\n").unwrap();
    assert!(
        problems.iter().any(|p| p.contains("parse error")),
        "{problems:#?}"
    );
}
