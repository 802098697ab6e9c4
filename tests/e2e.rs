//! End-to-end suite (privileged, slow): `mkimg rootfs` → `mkimg build` →
//! oracle checks → `mkimg boot`, for riscv64 and aarch64.
//!
//! Runs only with MKIMG_SLOW_TESTS=1 (CI sets it). Needs root for the loop
//! mount that compares the image with the tarball entry by entry, and for
//! running the non-root build as `nobody`. The rootfs comes from
//! `mkimg rootfs --board qemu-<arch>` (cached under ~/.cache/mkimg/rootfs), or
//! from $MKIMG_TEST_ROOTFS_RISCV64 / $MKIMG_TEST_ROOTFS_AARCH64.

#[path = "e2e/compare.rs"]
mod compare;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::rootfs::board_rootfs;
use support::run::{run_tool, text};
use support::tools::require_root;

fn slow() -> bool {
    if std::env::var_os("MKIMG_SLOW_TESTS").is_none() {
        eprintln!("SKIP: end-to-end suite needs MKIMG_SLOW_TESTS=1");
        return false;
    }
    true
}

fn mkimg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mkimg"))
        .args(args)
        .output()
        .expect("run mkimg")
}

struct Built {
    dir: tempfile::TempDir,
    out: PathBuf,
    plan: serde_json::Value,
}

fn build(board: &str, rootfs: &Path, extra_env: &[(&str, &str)]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkimg"));
    cmd.args([
        "build",
        "--board",
        board,
        "--format",
        "raw,qcow2",
        "--rootfs",
    ])
    .arg(rootfs)
    .arg("-o")
    .arg(&out);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let result = cmd.output().unwrap();
    assert!(
        result.status.success(),
        "build {board}: {}",
        text(&result.stderr)
    );
    eprint!("{}", text(&result.stderr));
    let plan = mkimg(&["plan", "--board", board, "--json"]);
    let plan = serde_json::from_slice(&plan.stdout).unwrap();
    Built { dir, out, plan }
}

fn partition(built: &Built, index: usize) -> (u64, u64) {
    let p = &built.plan["layout"]["partitions"][index];
    (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

/// Copy a partition out of the raw image (sparse) for the fsck tools.
fn extract(built: &Built, index: usize, name: &str) -> PathBuf {
    let (start, size) = partition(built, index);
    let raw = built.out.join(format!(
        "{}.raw",
        built.plan["board"]["image"].as_str().unwrap()
    ));
    let path = built.dir.path().join(name);
    run_tool(
        "dd",
        &[
            &format!("if={}", raw.display()),
            &format!("of={}", path.display()),
            "bs=1M",
            &format!("skip={}", start >> 20),
            &format!("count={}", size >> 20),
            "conv=sparse",
            "status=none",
        ],
    );
    path
}

fn check_image(arch: &str, built: &Built, rootfs: &Path) {
    let image = built.plan["board"]["image"].as_str().unwrap();
    let raw = built.out.join(format!("{image}.raw"));
    let qcow2 = built.out.join(format!("{image}.qcow2"));
    let raw_s = raw.to_str().unwrap();
    assert!(run_tool("sgdisk", &["-v", raw_s]).contains("No problems found"));
    run_tool("qemu-img", &["check", qcow2.to_str().unwrap()]);
    run_tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            raw_s,
            qcow2.to_str().unwrap(),
        ],
    );
    for file in ["start_vm.sh", "manifest.json"] {
        assert!(built.out.join(file).is_file(), "{file} missing");
    }

    let esp = extract(built, 0, "esp.img");
    let esp_s = esp.to_str().unwrap();
    run_tool("fsck.fat", &["-n", esp_s]);
    let boot_file = if arch == "riscv64" {
        "BOOTRISCV64.EFI"
    } else {
        "BOOTAA64.EFI"
    };
    let listing = run_tool("mdir", &["-i", esp_s, "-/", "-b", "::/"]);
    assert!(
        listing.contains(&format!("::/EFI/BOOT/{boot_file}")),
        "{listing}"
    );
    let grub_cfg = run_tool("mtype", &["-i", esp_s, "::/EFI/debian/grub.cfg"]);
    assert!(
        grub_cfg.contains("root=UUID=78662d6f-706f-6570-6f72-742d726f6f74"),
        "{grub_cfg}"
    );

    let root = extract(built, 1, "root.img");
    run_tool("e2fsck", &["-fn", root.to_str().unwrap()]);
    if require_root("the entry-by-entry comparison (a loop mount)") {
        let report = compare::compare_tar_with_image(rootfs, &root, built.dir.path());
        eprintln!(
            "{arch}: compared {} entries with the mounted image",
            report.compared
        );
        assert!(report.compared > 1000, "{report:?}");
        assert!(
            report.mismatches.is_empty(),
            "mismatches:\n{}",
            report.mismatches.join("\n")
        );
    }
}

fn boot_and_check(arch: &str, built: &Built) {
    let out = mkimg(&[
        "boot",
        built.out.to_str().unwrap(),
        "--timeout",
        "900",
        "--login",
        "root:root",
        "--run",
        "findmnt -no SOURCE /; findmnt -no SOURCE /boot/efi; hostname; uname -m",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "boot {arch}: {}\n{stdout}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["/dev/vda2", "/dev/vda1", &format!("mkimg-{arch}"), arch],
        "{stdout}"
    );
}

fn end_to_end(arch: &str) {
    if !slow() {
        return;
    }
    let rootfs = board_rootfs(arch);
    let board = format!("qemu-{arch}");
    let first = build(&board, &rootfs, &[]);
    check_image(arch, &first, &rootfs);

    // Reproducible whatever TMPDIR, working directory, umask and TZ.
    let tmp = tempfile::tempdir().unwrap();
    let second = {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("elsewhere");
        let status = Command::new("sh")
            .arg("-c")
            .arg("umask 077; cd \"$2\" && exec \"$1\" build --board \"$3\" --rootfs \"$4\" --format raw,qcow2 -o \"$5\"")
            .args(["sh", env!("CARGO_BIN_EXE_mkimg")])
            .arg(dir.path())
            .arg(&board)
            .arg(&rootfs)
            .arg(&out)
            .env("TMPDIR", tmp.path())
            .env("TZ", "Asia/Tokyo")
            .status()
            .unwrap();
        assert!(status.success());
        (dir, out)
    };
    for ext in ["raw", "qcow2"] {
        let name = format!("{board}.{ext}");
        let a = first.out.join(&name);
        let b = second.1.join(&name);
        run_tool("cmp", &[a.to_str().unwrap(), b.to_str().unwrap()]);
    }
    boot_and_check(arch, &first);
}

#[test]
fn riscv64_rootfs_build_check_boot() {
    end_to_end("riscv64");
}

#[test]
fn aarch64_rootfs_build_check_boot() {
    end_to_end("aarch64");
}

#[test]
fn template_build_succeeds_as_non_root() {
    if !slow() {
        return;
    }
    if !require_root("template_build_succeeds_as_non_root (switching to user nobody)") {
        return;
    }
    let rootfs = board_rootfs("riscv64");
    let dir = tempfile::tempdir().unwrap();
    // nobody needs a readable rootfs and a writable output/temp directory.
    let readable = dir.path().join("rootfs.tar");
    fs::copy(&rootfs, &readable).unwrap();
    run_tool("chmod", &["-R", "a+rwX", dir.path().to_str().unwrap()]);
    let binary = dir.path().join("mkimg");
    fs::copy(env!("CARGO_BIN_EXE_mkimg"), &binary).unwrap();
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-riscv64/board.toml");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&binary)
        .args(["build", "--board"])
        .arg(&boards)
        .arg("--rootfs")
        .arg(&readable)
        .arg("-o")
        .arg(dir.path().join("out"))
        .env("TMPDIR", dir.path())
        .env("HOME", dir.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "non-root build: {}",
        text(&out.stderr)
    );
    assert!(dir.path().join("out/qemu-riscv64.qcow2").is_file());
}
