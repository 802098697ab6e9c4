//! The merge of the board's kernel arguments into /etc/default/grub,
//! checked by sourcing the result with the real `sh` in a temp directory
//! (as grub-mkconfig does), and what the rewrite and the capture check make
//! of a plan.

use std::fs;
use std::process::Command;

use super::{
    default_grub_rewrite, kept_in_image, merge_board_args, Kept, BLOCK_BEGIN, BLOCK_END,
    DEFAULT_GRUB_LIMIT,
};
use crate::bootloader::golden::{builtin_plan, plan_from_toml, SEPARATE_BOOT_BOARD};
use crate::rootfs::{CaptureResults, Captured};

/// Debian trixie's /etc/default/grub (grub2-common), shortened.
const DEBIAN: &str = "# If you change this file or any /etc/default/grub.d/*.cfg file,\n\
# run 'update-grub' afterwards to update /boot/grub/grub.cfg.\n\
\n\
GRUB_DEFAULT=0\n\
GRUB_TIMEOUT=5\n\
GRUB_DISTRIBUTOR=`( . /etc/os-release && echo ${NAME} )`\n\
GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n\
GRUB_CMDLINE_LINUX=\"\"\n\
\n\
#GRUB_DISABLE_OS_PROBER=false\n";

/// Source `text` with /bin/sh in a temp directory (a file `marker` there
/// shows whether anything ran) and print GRUB_CMDLINE_LINUX and
/// GRUB_CMDLINE_LINUX_DEFAULT, `|`-separated.
fn source_with_sh(text: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grub");
    fs::write(&file, text).unwrap();
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
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["grub"], "sourcing the file made files");
    String::from_utf8(out.stdout).unwrap()
}

fn merged(text: &str, args: &str) -> Vec<u8> {
    merge_board_args(text.as_bytes(), args)
        .unwrap()
        .unwrap_or_else(|| panic!("nothing added to {text:?}"))
}

#[test]
fn debian_file_keeps_its_text_and_gets_one_marked_block() {
    let out = merged(DEBIAN, "console=ttyS0");
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.starts_with(DEBIAN), "{text}");
    let block = &text[DEBIAN.len()..];
    assert!(block.starts_with(&format!("\n{BLOCK_BEGIN}\n")), "{block}");
    assert!(block.ends_with(&format!("{BLOCK_END}\n")), "{block}");
    assert_eq!(block.matches("GRUB_CMDLINE_LINUX=").count(), 1, "{block}");
    assert_eq!(source_with_sh(&out), "console=ttyS0|quiet");
    // The same input, the same bytes.
    assert_eq!(merged(DEBIAN, "console=ttyS0"), out);
}

#[test]
fn arguments_the_distro_has_are_not_repeated() {
    let distro = "GRUB_CMDLINE_LINUX=\"rootwait console=ttyS0\"\n";
    assert_eq!(
        merge_board_args(distro.as_bytes(), "console=ttyS0"),
        Ok(None)
    );
    let out = merged(distro, "console=ttyS0 earlycon rootwait earlycon");
    assert_eq!(source_with_sh(&out), "rootwait console=ttyS0 earlycon|");
    // Merging the result again adds nothing (a rootfs taken from an image).
    assert_eq!(
        merge_board_args(&out, "console=ttyS0 earlycon rootwait"),
        Ok(None)
    );
    // GRUB_CMDLINE_LINUX_DEFAULT does not count: recovery entries lack it.
    let distro = "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet console=ttyS0\"\n";
    let out = merged(distro, "console=ttyS0");
    assert_eq!(source_with_sh(&out), "console=ttyS0|quiet console=ttyS0");
}

#[test]
fn the_last_of_several_assignments_is_extended() {
    let distro = "GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n\
                  GRUB_CMDLINE_LINUX=\"splash\"\n\
                  GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX quiet\"";
    // The first assignment's console=ttyS0 was overwritten: it is added.
    let out = merged(distro, "console=ttyS0 quiet");
    assert_eq!(source_with_sh(&out), "splash quiet console=ttyS0|");
}

#[test]
fn a_file_without_a_final_newline_or_with_crlf() {
    let out = merged("GRUB_CMDLINE_LINUX=\"a\"", "console=ttyS0");
    assert!(out.starts_with(b"GRUB_CMDLINE_LINUX=\"a\"\n\n# BEGIN mkimg"));
    assert_eq!(source_with_sh(&out), "a console=ttyS0|");

    // CRLF: the distro's lines stay as they are (sh keeps their CR: its
    // GRUB_CMDLINE_LINUX is "\r"), the block's lines end in LF only, so no
    // CR reaches the words it adds.
    let distro = "GRUB_TIMEOUT=5\r\nGRUB_CMDLINE_LINUX=\"\"\r\n";
    let out = merged(distro, "console=ttyS0");
    assert!(out.starts_with(distro.as_bytes()));
    assert!(!out[distro.len()..].contains(&b'\r'));
    assert_eq!(source_with_sh(&out), "\r console=ttyS0|");
}

#[test]
fn empty_file_and_non_utf8_text() {
    let out = merged("", "console=ttyS0");
    assert!(out.starts_with(BLOCK_BEGIN.as_bytes()));
    assert_eq!(source_with_sh(&out), "console=ttyS0|");
    // A Latin-1 comment: kept byte for byte.
    let distro = b"# Gr\xfc\xdfe\nGRUB_CMDLINE_LINUX=\"quiet\"\n".to_vec();
    let out = merge_board_args(&distro, "console=ttyS0").unwrap().unwrap();
    assert!(out.starts_with(&distro));
    assert_eq!(source_with_sh(&out), "quiet console=ttyS0|");
}

#[test]
fn hostile_arguments_stay_literal_and_run_nothing() {
    for args in [
        "x='a b'",
        "\"q\"",
        "$(touch pwned)",
        "`touch pwned`",
        "a\\b \\",
        "x; touch pwned",
        "'",
        "'\\''",
        "${IFS}$HOME",
        "console=ttyS0 ' $(touch pwned) ` ; \" \\ x'y",
    ] {
        let out = merged(DEBIAN, args);
        let want = args.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(source_with_sh(&out), format!("{want}|quiet"), "{args}");
        // mkimg's own reading of the file (template mode) agrees with sh.
        let text = String::from_utf8(out).unwrap();
        let parsed = crate::bootloader::default_grub::parse_default_grub(&text, None).unwrap();
        assert_eq!(parsed.cmdline_linux, want, "{args}");
    }
}

#[test]
fn control_characters_and_unreadable_files_are_refused() {
    let err = merge_board_args(DEBIAN.as_bytes(), "console=ttyS0\nGRUB_X=1").unwrap_err();
    assert!(err.contains("'\\n'"), "{err}");
    let err = merge_board_args(b"GRUB_CMDLINE_LINUX=\"open\n", "console=ttyS0").unwrap_err();
    assert!(err.contains("unterminated \" quote"), "{err}");
    assert!(
        err.contains("cannot add the board's kernel arguments"),
        "{err}"
    );
}

#[test]
fn the_rewrite_is_for_grub_boards_with_arguments() {
    let plan = builtin_plan("qemu-riscv64");
    let (path, rewrite) = default_grub_rewrite(&plan).expect("qemu-riscv64 has console=ttyS0");
    assert_eq!(path, "/etc/default/grub");
    assert_eq!(rewrite.limit, DEFAULT_GRUB_LIMIT);
    let out = (rewrite.edit)(DEBIAN.as_bytes()).unwrap();
    assert_eq!(source_with_sh(&out), "console=ttyS0|quiet");
    // Nothing to add: the bytes come back as they were.
    let kept = b"GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n";
    assert_eq!((rewrite.edit)(kept).unwrap(), kept);

    // extlinux boards keep no /etc/default/grub.
    assert!(default_grub_rewrite(&builtin_plan("qemu-aarch64-uboot")).is_none());
    // A grub board without kernel arguments has nothing to add.
    let bare = SEPARATE_BOOT_BOARD
        .replace("console = \"ttyS0\"\n", "")
        .replace("cmdline = \"console=ttyS0\"\n", "");
    assert!(default_grub_rewrite(&plan_from_toml(&bare)).is_none());
}

#[test]
fn kept_in_image_reads_the_captured_file() {
    let plan = builtin_plan("qemu-riscv64");
    let with = |captured: Option<Captured>| {
        let mut captures = CaptureResults::default();
        if let Some(c) = captured {
            captures.files.insert("/etc/default/grub".into(), c);
        }
        kept_in_image(&plan, &captures)
    };
    assert_eq!(with(None), Kept::NoFile);
    let merged = merged(DEBIAN, "console=ttyS0");
    assert_eq!(with(Some(Captured::File(merged))), Kept::Kept);
    assert_eq!(
        with(Some(Captured::File(DEBIAN.into()))),
        Kept::Missing(vec!["console=ttyS0".into()])
    );
    assert_eq!(
        with(Some(Captured::Symlink("/etc/grub.conf".into()))),
        Kept::NotAFile("a symlink to \"/etc/grub.conf\"".into())
    );
    let uboot = builtin_plan("qemu-aarch64-uboot");
    assert_eq!(
        kept_in_image(&uboot, &CaptureResults::default()),
        Kept::NothingToKeep
    );
}
