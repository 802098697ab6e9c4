//! `mkimg build --verify-repro`: a second build in fresh directories
//! (another TMPDIR, umask and TZ) compared with the first. Unchanged
//! inputs pass as reproducible; a difference injected into the second
//! build only (the test hook `MKIMG_REPRO_TEST_PERTURB`: one byte appended
//! to a rootfs file) must be pinned to its partition and its file, with a
//! raw image, with a qcow2-only build, and in a vfat partition. Nothing of
//! the second build is left behind either way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::board::esp_boot_root;
use crate::support::build::Build;
use crate::support::run::stderr;
use crate::support::tarball::Tarball;
use crate::support::tools::have_tools;

struct Case {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// MKIMG_WORKDIR of the build: must be empty afterwards.
    work: PathBuf,
}

fn case() -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    fs::write(
        dir.join("board.toml"),
        esp_boot_root("repro", "verify-repro"),
    )
    .unwrap();
    let mut tar = Tarball::minimal_riscv64();
    tar.file("etc/motd", b"Welcome\n").file(
        "boot/efi/startup.nsh",
        b"fs0:\\EFI\\BOOT\\BOOTRISCV64.EFI\n",
    );
    for i in 0..12 {
        tar.file(&format!("etc/f{i:02}"), format!("file {i}\n").as_bytes());
    }
    fs::write(dir.join("rootfs.tar"), tar.finish()).unwrap();
    let work = dir.join("work");
    fs::create_dir(&work).unwrap();
    Case {
        _tmp: tmp,
        dir,
        work,
    }
}

/// `mkimg build --verify-repro` of the case, `perturb` given to the hook.
fn build(case: &Case, formats: &str, perturb: Option<&str>) -> Output {
    let mut build = Build::new(
        case.dir.join("board.toml"),
        case.dir.join("rootfs.tar"),
        case.dir.join("out"),
    )
    .bootloader("none")
    .format(formats)
    .args(&["--verify-repro"])
    .env("MKIMG_WORKDIR", &case.work)
    .env("TMPDIR", &case.work);
    if let Some(path) = perturb {
        build = build
            .env("MKIMG_TEST_HOOKS", "1")
            .env("MKIMG_REPRO_TEST_PERTURB", path);
    }
    let out = build.output();
    assert_nothing_left(&case.work, &out);
    out
}

/// The second build's output, TMPDIR and raw copies went with it.
fn assert_nothing_left(work: &Path, out: &Output) {
    let left: Vec<_> = fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{}", stderr(out));
}

/// What the failed verification says, from its verdict on (the build's
/// progress lines name every partition too).
fn report(out: &Output) -> String {
    let text = stderr(out);
    assert!(!out.status.success(), "the builds must differ:\n{text}");
    assert!(
        text.contains("the first build stays published in"),
        "{text}"
    );
    let at = text
        .find("mkimg: not reproducible: ")
        .unwrap_or_else(|| panic!("no verdict:\n{text}"));
    text[at..].to_string()
}

#[test]
fn unchanged_inputs_are_reproducible() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let case = case();
    let out = build(&case, "raw,qcow2", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    // repro.raw, repro.qcow2, repro.raw.bmap, manifest.json, SHA256SUMS.
    assert!(text.contains("reproducible: 5 files identical"), "{text}");
    assert!(text.contains("TZ=UTC-14"), "{text}");
    assert!(case.dir.join("out/repro.qcow2").is_file());
}

#[test]
fn a_changed_rootfs_file_is_named_with_its_partition_raw() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let case = case();
    let text = report(&build(&case, "raw", Some("/etc/motd")));
    assert!(text.contains("repro.raw: the disk differs in"), "{text}");
    let part = text
        .lines()
        .find(|l| l.contains("partition 3 'rootfs' (ext4, mounted at /)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(part.contains("of 4 KiB differ"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("/etc/motd (inode ")
                && l.contains("its data or extent tree differs in 1 block")
                && l.contains("its inode differs in size")),
        "{text}"
    );
    assert!(!text.contains("partition 1 'esp'"), "{text}");
    assert!(!text.contains("partition 2 'boot'"), "{text}");
    assert!(
        text.contains("manifest.json: fields differ: outputs[\"repro.raw\"].sha256"),
        "{text}"
    );
    // The first build is published as it was built.
    assert!(case.dir.join("out/repro.raw").is_file());
}

#[test]
fn a_changed_rootfs_file_is_named_with_qcow2_only() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let case = case();
    let out = build(&case, "qcow2", Some("/etc/motd"));
    assert!(
        stderr(&out).contains("also writing the raw disk to"),
        "{}",
        stderr(&out)
    );
    let text = report(&out);
    assert!(text.contains("repro.qcow2: the disk differs in"), "{text}");
    assert!(
        text.contains("partition 3 'rootfs' (ext4, mounted at /)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("/etc/motd (inode ")),
        "{text}"
    );
    let published: Vec<String> = fs::read_dir(case.dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !published.iter().any(|n| n.contains("raw")),
        "{published:?}"
    );
}

#[test]
fn a_changed_file_in_the_vfat_partition_is_named() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let case = case();
    let text = report(&build(&case, "raw", Some("/boot/efi/startup.nsh")));
    assert!(
        text.contains("partition 1 'esp' (vfat, mounted at /boot/efi)"),
        "{text}"
    );
    assert!(
        text.contains("/boot/efi/startup.nsh: contents differ (30 and 31 bytes, first at byte 30)"),
        "{text}"
    );
    assert!(!text.contains("partition 3 'rootfs'"), "{text}");
}

#[test]
fn a_rootfs_read_once_is_refused_before_building() {
    let case = case();
    let fifo = case.dir.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (rootfs, what) in [
        ("-", "standard input"),
        (fifo.to_str().unwrap(), "is a FIFO"),
    ] {
        let out = Build::new(case.dir.join("board.toml"), rootfs, case.dir.join("out"))
            .args(&["--verify-repro"])
            .env("MKIMG_WORKDIR", &case.work)
            .command()
            .stdin(fs::File::open(case.dir.join("rootfs.tar")).unwrap())
            .output()
            .unwrap();
        let text = stderr(&out);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("can be read only once"), "{text}");
        assert!(text.contains(what), "{text}");
        assert!(!case.dir.join("out").exists());
        assert_nothing_left(&case.work, &out);
    }
}
