//! The board's kernel arguments kept by the image's own /etc/default/grub
//! (template mode, rootless): read back from the built image with
//! `debugfs -R 'cat /etc/default/grub'`, then sourced with `sh` in a temp
//! directory — the board's arguments are the literal text, nothing runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::board::small_riscv64;
use crate::support::build::{cut_partition, Build};
use crate::support::tarball::Tarball;
use crate::support::tools::{have_tools, locate_tool};

/// Debian trixie's /etc/default/grub, shortened.
const DEBIAN_DEFAULT_GRUB: &str = "# If you change this file, run 'update-grub' afterwards.\n\
GRUB_DEFAULT=0\n\
GRUB_TIMEOUT=5\n\
GRUB_DISTRIBUTOR=`( . /etc/os-release && echo ${NAME} )`\n\
GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n\
GRUB_CMDLINE_LINUX=\"\"\n";

/// Kernel arguments a board file may hold that mean something to sh.
const HOSTILE: &str = r#"console=ttyS0 $(touch pwned) `touch pwned2` a;b "q" back\slash it's"#;

/// The small riscv64 board with `cmdline` as its `[boot] cmdline`.
fn board_with_cmdline(dir: &Path, cmdline: &str) -> PathBuf {
    let board = small_riscv64(dir);
    let text = fs::read_to_string(&board).unwrap();
    let toml_string = format!("\"{}\"", cmdline.replace('\\', "\\\\").replace('"', "\\\""));
    let text = text.replace(
        "cmdline = \"console=ttyS0\"",
        &format!("cmdline = {toml_string}"),
    );
    assert!(text.contains(&toml_string), "{text}");
    fs::write(&board, text).unwrap();
    board
}

/// A rootfs the board builds from, with `default_grub` as its
/// /etc/default/grub (mode 0640, group 4).
fn rootfs(default_grub: Option<&[u8]>) -> Vec<u8> {
    let mut t = Tarball::minimal_riscv64();
    t.dir("etc/default")
        .file("etc/os-release", b"NAME=\"Debian GNU/Linux\"\nID=debian\n");
    if let Some(text) = default_grub {
        t.file_owned("etc/default/grub", text, 0o640, 0, 4);
    }
    t.finish()
}

/// Build `board` from `tar` as raw into `dir/out`; returns the raw disk
/// and mkimg's stderr.
fn build(dir: &Path, board: &Path, tar: &[u8]) -> (PathBuf, String) {
    let tar_path = dir.join("rootfs.tar");
    fs::write(&tar_path, tar).unwrap();
    let build = Build::new(board, &tar_path, dir.join("out")).format("raw");
    let err = build.run();
    (build.out().join("qemu-riscv64.raw"), err)
}

/// The root partition of `raw` (per `mkimg plan --json`) cut out to a file.
fn root_partition(dir: &Path, board: &Path, raw: &Path) -> PathBuf {
    cut_partition(board, 1, raw, &dir.join("root.img"))
}

fn debugfs(image: &Path, request: &str) -> Vec<u8> {
    let out = Command::new(locate_tool("debugfs").unwrap())
        .args(["-R", request])
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "debugfs -R {request:?}");
    out.stdout
}

/// Source `text` with sh in an empty temp directory; GRUB_CMDLINE_LINUX
/// and GRUB_CMDLINE_LINUX_DEFAULT, `|`-separated, and the directory's
/// entries afterwards (anything but `grub` means something ran).
fn source_with_sh(text: &[u8]) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("grub"), text).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#". ./grub; printf '%s|%s' "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT""#)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    (String::from_utf8(out.stdout).unwrap(), names)
}

#[test]
fn the_images_default_grub_carries_the_board_arguments_literally() {
    if !have_tools(&["mke2fs", "debugfs", "e2fsck"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let board = board_with_cmdline(dir.path(), HOSTILE);
    let (raw, log) = build(
        dir.path(),
        &board,
        &rootfs(Some(DEBIAN_DEFAULT_GRUB.as_bytes())),
    );
    // The build says what the kernel gets: the board's arguments as
    // GRUB_CMDLINE_LINUX (as 10_linux orders them), then the distro's quiet.
    let line = log
        .lines()
        .find(|l| l.contains("] kernel command line: "))
        .unwrap_or_else(|| panic!("no kernel command line in:\n{log}"));
    assert!(
        line.ends_with(&format!(
            "kernel command line: root=UUID=78662d6f-706f-6570-6f72-742d726f6f74 ro {HOSTILE} quiet \
             (board arguments also kept in the image's /etc/default/grub)"
        )),
        "{line}"
    );
    assert!(!log.contains("warning"), "{log}");

    let part = root_partition(dir.path(), &board, &raw);
    let fsck = Command::new(locate_tool("e2fsck").unwrap())
        .arg("-fn")
        .arg(&part)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let text = debugfs(&part, "cat /etc/default/grub");
    let shown = String::from_utf8_lossy(&text).into_owned();
    assert!(shown.starts_with(DEBIAN_DEFAULT_GRUB), "{shown}");
    assert!(shown.contains("\n# BEGIN mkimg: "), "{shown}");
    assert!(shown.ends_with("# END mkimg\n"), "{shown}");
    let (values, names) = source_with_sh(&text);
    assert_eq!(values, format!("{HOSTILE}|quiet"));
    assert_eq!(names, ["grub"], "sourcing the image's file ran something");
    // The distro's mode and owner are kept.
    let stat = String::from_utf8_lossy(&debugfs(&part, "stat /etc/default/grub")).into_owned();
    assert!(stat.contains("Mode:  0640"), "{stat}");
    assert!(
        stat.split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["Group:", "4"]),
        "{stat}"
    );
}

/// A symlink at /etc/default/grub is neither followed nor replaced: the
/// build says the target's update-grub will drop the arguments.
#[test]
fn a_symlinked_default_grub_is_left_alone_with_a_warning() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let board = small_riscv64(dir.path());
    let mut t = Tarball::minimal_riscv64();
    t.dir("etc/default")
        .file("etc/grub.conf", DEBIAN_DEFAULT_GRUB.as_bytes())
        .symlink("etc/default/grub", "/etc/grub.conf");
    let (raw, log) = build(dir.path(), &board, &t.finish());
    assert!(
        log.contains(
            "warning: the image's /etc/default/grub is a symlink to \"/etc/grub.conf\": the \
             board's kernel arguments are in this grub.cfg but update-grub on the target will \
             drop them"
        ),
        "{log}"
    );
    let part = root_partition(dir.path(), &board, &raw);
    let text = debugfs(&part, "cat /etc/grub.conf");
    assert_eq!(String::from_utf8_lossy(&text), DEBIAN_DEFAULT_GRUB);
}
