//! The pure parts of the mkconfig stage: what is added to
//! /etc/default/grub (checked by sourcing it with the real `sh`, as
//! grub-mkconfig does) and the image fingerprint.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

use super::{hash_image, render_board_defaults, with_board_defaults, NEEDS_ROOT};

/// Source `text` with /bin/sh and print the variables grub-mkconfig reads.
fn source_with_sh(text: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grub");
    fs::write(&file, text).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#". "$1"; printf '%s|%s|%s' "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT" "$GRUB_DISABLE_OS_PROBER""#)
        .arg("sh")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const DEBIAN_DEFAULT: &str = "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n\
    GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n#GRUB_DISABLE_OS_PROBER=false";

#[test]
fn board_arguments_are_appended_to_the_distros() {
    let lines = render_board_defaults("console=ttyS0");
    assert!(lines.contains("not part of the image"), "{lines}");
    let text = with_board_defaults(DEBIAN_DEFAULT.as_bytes(), &lines);
    assert_eq!(source_with_sh(&text), "console=ttyS0|quiet|true");

    let distro = b"GRUB_CMDLINE_LINUX=\"rootwait\"\n";
    let text = with_board_defaults(distro, &lines);
    assert_eq!(source_with_sh(&text), "rootwait console=ttyS0||true");
}

#[test]
fn absent_default_grub_and_empty_cmdline() {
    let text = with_board_defaults(b"", &render_board_defaults("console=ttyS0 earlycon"));
    assert_eq!(source_with_sh(&text), "console=ttyS0 earlycon||true");
    let text = with_board_defaults(b"GRUB_CMDLINE_LINUX=\"a\"", &render_board_defaults("  "));
    assert_eq!(source_with_sh(&text), "a||true");
}

#[test]
fn shell_metacharacters_stay_literal() {
    let cmdline = "x='a b' $(touch /tmp/nope) `id` \"q\"";
    let text = with_board_defaults(b"", &render_board_defaults(cmdline));
    assert_eq!(source_with_sh(&text), format!("{cmdline}||true"));
}

#[test]
fn needs_root_names_the_rootless_mode() {
    assert!(NEEDS_ROOT.contains("needs root"));
    assert!(NEEDS_ROOT.contains("--grub template"));
}

/// A sparse file of `len` bytes with `data` at `offset`.
fn sparse(
    dir: &std::path::Path,
    name: &str,
    len: u64,
    writes: &[(u64, &[u8])],
) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(len).unwrap();
    for (offset, data) in writes {
        file.seek(SeekFrom::Start(*offset)).unwrap();
        file.write_all(data).unwrap();
    }
    file.sync_all().unwrap();
    path
}

#[test]
fn image_fingerprint_sees_content_not_extents() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 << 20;
    let data = vec![0x5a; 10_000];
    let zeros = vec![0; 1 << 20];
    let a = sparse(dir.path(), "a", len, &[(3 << 20, &data)]);
    // Same bytes, but with a megabyte of written zeros (data extent, not hole).
    let b = sparse(
        dir.path(),
        "b",
        len,
        &[(3 << 20, &data), (40 << 20, &zeros)],
    );
    assert_eq!(hash_image(&a).unwrap(), hash_image(&b).unwrap());
    // One byte differs, far from the rest.
    let c = sparse(
        dir.path(),
        "c",
        len,
        &[(3 << 20, &data), (50 << 20, b"\x01")],
    );
    assert_ne!(hash_image(&a).unwrap(), hash_image(&c).unwrap());
    // The same data at another offset; a different length.
    let d = sparse(dir.path(), "d", len, &[((3 << 20) + 4096, &data)]);
    assert_ne!(hash_image(&a).unwrap(), hash_image(&d).unwrap());
    let e = sparse(dir.path(), "e", len + 4096, &[(3 << 20, &data)]);
    assert_ne!(hash_image(&a).unwrap(), hash_image(&e).unwrap());
    // Data in the very last partial chunk.
    let f = sparse(dir.path(), "f", len + 100, &[(len + 99, b"\x02")]);
    let g = sparse(dir.path(), "g", len + 100, &[]);
    assert_ne!(hash_image(&f).unwrap(), hash_image(&g).unwrap());
}
