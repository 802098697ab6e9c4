//! Test-only: golden-file comparison for the text generators (fstab,
//! grub.cfg, extlinux.conf, start_vm.sh, manifest.json), and the plans they
//! are rendered from (the built-in QEMU boards plus two test boards written
//! here: one with a separate /boot, one U-Boot/extlinux SBC).
//!
//! Golden files live in `tests/golden/`. A mismatch fails with a line diff
//! (`-` golden, `+` rendered, two lines of context). After an intended
//! change, `MKIMG_UPDATE_GOLDEN=1 cargo test` rewrites them; review the git
//! diff before committing.

use std::path::PathBuf;

use crate::board::{load_board, load_board_file, BoardSearch};
use crate::plan::{plan_board, Plan};

/// riscv64 GPT with ESP, a separate ext4 /boot and the root, listed in an
/// order that is not the mount order.
pub(crate) const SEPARATE_BOOT_BOARD: &str = r#"
[board]
name = "sep-boot"
description = "test: ESP + separate /boot + root"
arch = "riscv64"
hostname = "sep"
image = "sep-boot"
console = "ttyS0"

[disk]
table = "gpt"
size = "4G"

[[partition]]
name = "esp"
type = "esp"
size = "256M"
filesystem = "vfat"
label = "ESP"
fs_uuid = "0x1234ABCD"
mount = "/boot/efi"
mount_options = "umask=0077"

[[partition]]
name = "boot"
type = "xbootldr"
size = "512M"
filesystem = "ext4"
label = "boot"
fs_uuid = "626f6f74-0000-4000-8000-000000000001"
mount = "/boot"

[[partition]]
name = "rootfs"
type = "linux-root"
size = "rest"
filesystem = "ext4"
label = "rootfs"
fs_uuid = "726f6f74-0000-4000-8000-000000000002"
mount = "/"
mount_options = "errors=remount-ro"

[boot]
loader = "grub"
cmdline = "console=ttyS0"
"#;

/// An arm64 SBC booted by U-Boot from an MBR ext4 /boot partition.
pub(crate) const EXTLINUX_BOARD: &str = r#"
[board]
name = "sbc-arm64"
description = "test: U-Boot extlinux, separate /boot"
arch = "aarch64"
hostname = "sbc"
image = "sbc-arm64"
console = "ttyS2,1500000"

[disk]
table = "mbr"
size = "4G"
mbr_signature = "0x6d6b696d"

[[partition]]
name = "boot"
type = "0x83"
offset = "16M"
size = "512M"
flags = ["legacy-bios-bootable"]
filesystem = "ext4"
label = "boot"
fs_uuid = "626f6f74-0000-4000-8000-0000000000a1"
mount = "/boot"

[[partition]]
name = "rootfs"
type = "0x83"
size = "rest"
filesystem = "ext4"
label = "rootfs"
fs_uuid = "726f6f74-0000-4000-8000-0000000000a2"
mount = "/"

[boot]
loader = "extlinux"
"#;

/// The plan of a built-in board, seed "mkimg".
pub(crate) fn builtin_plan(name: &str) -> Plan {
    let search = BoardSearch {
        dirs: vec![crate::board::builtin_boards_dir()],
    };
    plan_board(&load_board(name, &search).unwrap(), "mkimg").unwrap()
}

/// The plan of a board file given as text, seed "mkimg".
pub(crate) fn plan_from_toml(text: &str) -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("board.toml");
    std::fs::write(&path, text).unwrap();
    plan_board(&load_board_file(&path).unwrap(), "mkimg").unwrap()
}

/// Lines of unchanged context shown around each change.
const CONTEXT: usize = 2;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Panics with a readable diff unless `actual` equals `tests/golden/<name>`.
pub(crate) fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var("MKIMG_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("updated {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading golden file {}: {e}\n(MKIMG_UPDATE_GOLDEN=1 cargo test writes it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the rendered text (- golden, + rendered):\n{}\n\
             If the change is intended: MKIMG_UPDATE_GOLDEN=1 cargo test, then review git diff.",
            path.display(),
            diff_lines(&expected, actual)
        );
    }
}

/// A unified-style line diff of `old` → `new` (LCS; fine for config files).
pub(crate) fn diff_lines(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    // lcs[i][j] = LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (marker, line number in old or new, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut shown_until = 0;
    for &k in &changed {
        let from = k.saturating_sub(CONTEXT).max(shown_until);
        if from > shown_until {
            out.push_str("@@ ...\n");
        }
        let to = (k + CONTEXT + 1).min(ops.len());
        for (marker, line, text) in &ops[from..to] {
            let text = text.strip_suffix('\n').unwrap_or(text);
            out.push_str(&format!("{marker}{line:>4} | {text}\n"));
        }
        shown_until = to;
    }
    if !old.ends_with('\n') || !new.ends_with('\n') {
        out.push_str(&format!(
            "(trailing newline: golden {}, rendered {})\n",
            old.ends_with('\n'),
            new.ends_with('\n')
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::diff_lines;

    #[test]
    fn diff_shows_changed_lines_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let diff = diff_lines(old, new);
        assert_eq!(
            diff,
            "@@ ...\n    3 | c\n    4 | d\n-   5 | e\n+   5 | E\n    6 | f\n    7 | g\n"
        );
    }

    #[test]
    fn diff_reports_insertions_and_missing_newline() {
        let diff = diff_lines("a\nb\n", "a\nx\nb");
        assert!(diff.contains("+   2 | x\n"), "{diff}");
        assert!(diff.contains("(trailing newline: golden true, rendered false)"));
    }
}
