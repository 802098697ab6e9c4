//! `mkimg build` on small synthetic rootfs tarballs: the must-fail cases
//! (each asserting its message and that nothing is published) and the edit
//! that must replace, not follow, a symlink. Rootless; fast.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::board::small_riscv64;
use crate::support::build::{cut_partition, Build};
use crate::support::run::{mkimg, stderr};
use crate::support::tarball::Tarball;
use crate::support::tools::have_tool;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Build and return (success, stderr).
    fn build(&self, board: &str, rootfs: &Path) -> (bool, String) {
        let result = Build::new(board, rootfs, self.out()).format("raw").output();
        (result.status.success(), stderr(&result))
    }

    fn assert_nothing_published(&self) {
        let leftovers: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n == "out" || n.starts_with(".out"))
            .collect();
        assert!(leftovers.is_empty(), "published or staged: {leftovers:?}");
    }
}

/// The rootfs line names the compression in words, and only when there is
/// one (it printed `(None)` for a plain tar).
#[test]
fn rootfs_line_names_the_compression_only_when_there_is_one() {
    if !have_tool("mke2fs") {
        return;
    }
    let case = Case::new();
    let board = small_riscv64(case.dir.path());
    let plain = Tarball::minimal("dash-riscv64.elfhdr").finish();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for (name, bytes, end) in [
        ("rootfs.tar", plain.clone(), " MiB of files"),
        ("rootfs.tar.zst", zst, " MiB of files (zstd-compressed)"),
    ] {
        let tar = case.write(name, &bytes);
        let (ok, err) = case.build(board.to_str().unwrap(), &tar);
        assert!(ok, "{err}");
        let line = err
            .lines()
            .find(|l| l.contains(&format!("rootfs {}: ", tar.display())))
            .unwrap_or_else(|| panic!("no rootfs line in:\n{err}"));
        assert!(line.ends_with(end), "{line:?} should end in {end:?}");
        assert!(line.contains(" entries, "), "{line}");
    }
}

#[test]
fn rootfs_larger_than_partition_fails_before_writing() {
    if !have_tool("mke2fs") {
        return;
    }
    let case = Case::new();
    let mut spec = Tarball::minimal("dash-riscv64.elfhdr");
    // 200 MiB of incompressible-ish data cannot fit a ~126 MiB root.
    let big: Vec<u8> = (0..200u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    spec.file("srv/big.bin", &big);
    let tar = case.write("rootfs.tar", &spec.finish());
    let board = small_riscv64(case.dir.path());
    let (ok, err) = case.build(board.to_str().unwrap(), &tar);
    assert!(!ok);
    // The rootfs pass refuses the member from its header, before writing it.
    assert!(err.contains("does not fit partition 'rootfs'"), "{err}");
    assert!(
        err.contains("\"/srv/big.bin\" needs 209715200 bytes"),
        "{err}"
    );
    assert!(
        err.contains("grow the partition 'rootfs' in board.toml"),
        "{err}"
    );
    case.assert_nothing_published();
}

#[test]
fn entry_escaping_the_root_is_refused_with_its_name() {
    let case = Case::new();
    let mut spec = Tarball::minimal("dash-riscv64.elfhdr");
    spec.raw_name_file("../../tmp/x", b"evil");
    let tar = case.write("rootfs.tar", &spec.finish());
    let (ok, err) = case.build(small_riscv64(case.dir.path()).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(err.contains("../../tmp/x"), "{err}");
    assert!(!Path::new("/tmp/x").exists() || fs::read("/tmp/x").unwrap() != b"evil");
    case.assert_nothing_published();
}

#[test]
fn truncated_tar_is_an_error() {
    let case = Case::new();
    let bytes = Tarball::minimal("dash-riscv64.elfhdr").finish();
    let tar = case.write("rootfs.tar", &bytes[..bytes.len() / 2 + 100]);
    let (ok, err) = case.build(small_riscv64(case.dir.path()).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(
        err.contains("truncated") || err.contains("unexpected end"),
        "{err}"
    );
    case.assert_nothing_published();
}

#[test]
fn truncated_tar_zst_is_an_error() {
    let case = Case::new();
    let plain = Tarball::minimal("dash-riscv64.elfhdr").finish();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let tar = case.write("rootfs.tar.zst", &zst[..zst.len() * 2 / 3]);
    let (ok, err) = case.build(small_riscv64(case.dir.path()).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(err.contains("zstd"), "{err}");
    assert!(
        err.contains("truncated") || err.contains("unexpected end") || err.contains("incomplete"),
        "{err}"
    );
    case.assert_nothing_published();
}

#[test]
fn rootfs_of_another_architecture_is_refused_naming_both() {
    let case = Case::new();
    let tar = case.write(
        "rootfs.tar",
        &Tarball::minimal("dash-arm64.elfhdr").finish(),
    );
    let (ok, err) = case.build(small_riscv64(case.dir.path()).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(err.contains("aarch64"), "{err}");
    assert!(err.contains("riscv64"), "{err}");
    assert!(err.contains("qemu-riscv64"), "names the board: {err}");
    case.assert_nothing_published();
}

#[test]
fn hostname_symlink_is_replaced_not_followed() {
    if !have_tool("debugfs") {
        return;
    }
    let case = Case::new();
    let mut spec = Tarball::minimal("dash-riscv64.elfhdr");
    spec.file("etc/shadow", b"root:*:1::::::\n");
    spec.symlink("etc/hostname", "/etc/shadow");
    let tar = case.write("rootfs.tar", &spec.finish());
    let shadow_before = fs::read("/etc/shadow").ok();
    let board = small_riscv64(case.dir.path());
    let (ok, err) = case.build(board.to_str().unwrap(), &tar);
    assert!(ok, "{err}");
    assert_eq!(
        fs::read("/etc/shadow").ok(),
        shadow_before,
        "host untouched"
    );
    // Read /etc/hostname and /etc/shadow back from the root partition.
    let part = cut_partition(
        &board,
        1,
        &case.out().join("qemu-riscv64.raw"),
        &case.dir.path().join("root.img"),
    );
    let stat = Command::new("debugfs")
        .args(["-R", "stat /etc/hostname"])
        .arg(&part)
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("Type: regular"), "{stat}");
    let cat = Command::new("debugfs")
        .args(["-R", "cat /etc/hostname"])
        .arg(&part)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "mkimg-riscv64\n");
    let shadow = Command::new("debugfs")
        .args(["-R", "cat /etc/shadow"])
        .arg(&part)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shadow.stdout),
        "root:*:1::::::\n",
        "symlink target unchanged"
    );
}

/// manifest.json's digests are taken while the outputs are written (none
/// is read back): each must still be what `sha256sum` says of the
/// published file, the sparse raw disk (holes hash as zeros) and the qcow2
/// included, with firmware copies and start_vm.sh beside them; and the
/// manifest lists exactly the other files of the directory.
#[test]
fn manifest_digests_match_sha256sum_of_every_output() {
    if !have_tool("mke2fs") || !have_tool("sha256sum") {
        return;
    }
    let case = Case::new();
    let board = small_riscv64(case.dir.path());
    let fw = board.parent().unwrap();
    fs::write(fw.join("CODE.fd"), vec![0x5a; 3 << 20]).unwrap();
    fs::write(fw.join("VARS.fd"), b"vars").unwrap();
    let mut text = fs::read_to_string(&board).unwrap();
    text.push_str(&format!(
        "\n[firmware]\ncode = \"{}\"\nvars = \"{}\"\n",
        fw.join("CODE.fd").display(),
        fw.join("VARS.fd").display()
    ));
    fs::write(&board, text).unwrap();
    let tar = case.write(
        "rootfs.tar",
        &Tarball::minimal("dash-riscv64.elfhdr").finish(),
    );
    let out = case.out();
    Build::new(&board, &tar, &out).format("raw,qcow2").run();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<(String, u64, String)> = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["file"].as_str().unwrap().to_string(),
                o["size"].as_u64().unwrap(),
                o["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut on_disk: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // manifest.json cannot list itself, nor SHA256SUMS (which lists
        // manifest.json).
        .filter(|n| n != "manifest.json" && n != "SHA256SUMS")
        .collect();
    on_disk.sort();
    let names: Vec<String> = listed.iter().map(|l| l.0.clone()).collect();
    assert_eq!(
        names, on_disk,
        "manifest lists the directory, in name order"
    );
    for want in [
        "CODE.fd",
        "VARS.fd",
        "qemu-riscv64.qcow2",
        "qemu-riscv64.raw",
        "qemu-riscv64.raw.bmap",
        "start_vm.sh",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    for (file, size, sha) in &listed {
        let path = out.join(file);
        assert_eq!(fs::metadata(&path).unwrap().len(), *size, "{file}");
        let sum = Command::new("sha256sum").arg(&path).output().unwrap();
        assert!(sum.status.success());
        let sum = String::from_utf8(sum.stdout).unwrap();
        assert_eq!(sum.split_whitespace().next(), Some(sha.as_str()), "{file}");
    }
}

/// `-v` (a runner setting now, no environment variable) prints every
/// external command before it runs, from the build's threads too; without
/// it none is printed.
#[test]
fn verbose_prints_each_command_and_quiet_prints_none() {
    if !have_tool("mke2fs") {
        return;
    }
    let case = Case::new();
    let tar = case.write(
        "rootfs.tar",
        &Tarball::minimal("dash-riscv64.elfhdr").finish(),
    );
    let board = small_riscv64(case.dir.path());
    for verbose in [true, false] {
        let out = case.out();
        let mut args = vec![
            "build",
            "--board",
            board.to_str().unwrap(),
            "--rootfs",
            tar.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        if verbose {
            args.insert(0, "-v");
        }
        let result = mkimg(&args);
        let err = stderr(&result);
        assert!(result.status.success(), "{err}");
        let traced = err.lines().any(|l| l.starts_with("+ \"mke2fs\" \"-q\""));
        assert_eq!(traced, verbose, "-v {verbose}: {err}");
    }
}
