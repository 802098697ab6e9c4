//! `mkimg build --grub mkconfig` as a user runs it (privileged suite).
//!
//! - `--mkconfig-via mount` without root: fails at once, naming the
//!   rootless default (needs root to run the test as `nobody` through
//!   `setpriv`);
//! - slow (MKIMG_SLOW_TESTS=1, root, a Debian riscv64 rootfs with
//!   grub-efi-riscv64 — the board's default recipe — from
//!   MKIMG_TEST_ROOTFS_RISCV64, else bootstrapped): two builds (the
//!   rootless tree path, the default) are byte-identical, the ESP's
//!   grub.cfg is Debian's own menu and passes the lint, the image boots to
//!   a root shell with root=UUID=…. Run it with `cargo test --release`: a
//!   debug mkimg takes ~10 minutes per build;
//! - slow: the tree path and the mount path give the same grub.cfg byte
//!   for byte, and the same image;
//! - slow: a user that is not root (`mkimg-ci`, made by
//!   scripts/setup-debian.sh) builds qemu-riscv64 and qemu-aarch64 with
//!   `--grub mkconfig` from a rootfs it can read, and boots them to a
//!   login;
//! - slow: SIGINT while grub-mkconfig runs in its sandbox (reached with the
//!   test hook `MKIMG_TEST_PAUSE_AT=grub-mkconfig`, no sleeps) kills it,
//!   exits 130, leaves /proc/mounts and `losetup -a` as they were, publishes
//!   nothing and leaves no work directory — on both paths.
//! - root, fast: a rootfs without /etc/default/grub, or without grub's
//!   modules for the board, is refused right after the rootfs pass (no
//!   ext4 built), naming the Debian package and `--grub template`;
//! - slow: the image's /etc/default/grub carries the board's
//!   console=ttyS0, so the grub.cfg the target's own update-grub makes
//!   keeps it;
//! - slow: native tools (`host::native_tools`) change nothing: builds with
//!   `MKIMG_NATIVE_TOOLS=0` and `=1` of Debian riscv64, the openEuler
//!   layout of it (tests/support/layouts.rs) and Debian aarch64, on the
//!   tree path and on the mount path, give the same grub.cfg (and per
//!   path the same image), and each log says which ran.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mkimg::arch::Arch;
use mkimg::bootloader::lint::{lint_grub_cfg, LintRules, RootBy};
use rustix::process::{kill_process, Pid, Signal};
use support::board::small_riscv64;
use support::layouts::{rpm_layout, Layout};
use support::rootfs::board_rootfs;
use support::run::text;
use support::tarball::Tarball;
use support::tools::{locate_tool, require, require_root};

mod support;

const ROOT_UUID: &str = "78662d6f-706f-6570-6f72-742d726f6f74";
/// Where qemu-riscv64's and qemu-aarch64's ESP starts (board.toml: offset = "2M").
const ESP_OFFSET: &str = "2M";

fn mkimg() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mkimg"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null());
    command
}

/// The rootfs for the slow tests, or `None` (with a loud message).
fn slow_rootfs(test: &str) -> Option<PathBuf> {
    if std::env::var("MKIMG_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("skipping {test}: set MKIMG_SLOW_TESTS=1");
        return None;
    }
    if !require_root(test) {
        return None;
    }
    Some(board_rootfs("riscv64"))
}

/// The slow tests share loop devices and pgrep: one at a time.
static SLOW: Mutex<()> = Mutex::new(());

/// Lines of `losetup -a` and /proc/self/mounts that belong to a build
/// whose TMPDIR is `tmp` (its work directory, its chroot) or name the
/// chroot's root node. Other users of this machine may mount and attach
/// meanwhile; everything mkimg makes is under its work directory.
fn leftovers(tmp: &Path) -> Vec<String> {
    let loops = text(&Command::new("losetup").arg("-a").output().unwrap().stdout);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let tmp = tmp.display().to_string();
    loops
        .lines()
        .chain(mounts.lines())
        .filter(|l| l.contains(&tmp) || l.contains("mkimg-root"))
        .map(str::to_string)
        .collect()
}

/// `mkimg build --grub mkconfig --mkconfig-via VIA` of qemu-riscv64 into
/// `out`, its work directory in `tmp`; returns the wall time.
fn build_via(rootfs: &Path, out: &Path, tmp: &Path, via: &str) -> Duration {
    let started = Instant::now();
    let output = mkimg()
        .args(["build", "--board", "qemu-riscv64", "--format", "raw,qcow2"])
        .args(["--grub", "mkconfig", "--mkconfig-via", via, "--rootfs"])
        .arg(rootfs)
        .arg("--output")
        .arg(out)
        .env("TMPDIR", tmp)
        .env("MKIMG_WORKDIR", tmp)
        .output()
        .unwrap();
    let log = text(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains(&format!("--mkconfig-via {via}")), "{log}");
    started.elapsed()
}

fn build(rootfs: &Path, out: &Path, tmp: &Path) -> Duration {
    build_via(rootfs, out, tmp, "tree")
}

/// grub.cfg from the ESP of `out`'s raw disk.
fn esp_grub_cfg(out: &Path, scratch: &Path) -> Vec<u8> {
    let raw = format!("{}@@{ESP_OFFSET}", out.join("qemu-riscv64.raw").display());
    let cfg = scratch.join("grub.cfg");
    let _ = std::fs::remove_file(&cfg);
    let status = Command::new("mcopy")
        .args(["-n", "-i", &raw, "::EFI/debian/grub.cfg"])
        .arg(&cfg)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(cfg).unwrap()
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

fn same_bytes(a: &Path, b: &Path) {
    let status = Command::new("cmp").arg(a).arg(b).status().unwrap();
    assert!(
        status.success(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn mount_path_without_root_fails_at_once_naming_the_rootless_default() {
    if !require_root("mount_path_without_root_fails_at_once_naming_the_rootless_default") {
        return;
    }
    let started = Instant::now();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mkimg"))
        .args(["build", "--board", "qemu-riscv64", "--grub", "mkconfig"])
        .args(["--mkconfig-via", "mount"])
        .args([
            "--rootfs",
            "/nonexistent/rootfs.tar",
            "--output",
            "/nonexistent/out",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&output.stderr);
    assert!(!output.status.success(), "{err}");
    // Before anything else: not even the missing rootfs is noticed.
    assert!(
        err.starts_with("mkimg: error: --mkconfig-via mount runs the distro's grub-mkconfig"),
        "{err}"
    );
    assert!(err.contains("needs root"), "{err}");
    assert!(
        err.contains("--mkconfig-via at tree (the default: no root)"),
        "{err}"
    );
    assert!(err.contains("use --grub template"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A small rootfs for `--grub mkconfig` that lacks what its grub-mkconfig
/// needs: the build stops right after the rootfs pass (before mke2fs)
/// with the package to add.
#[test]
fn mkconfig_refuses_an_incomplete_rootfs_after_the_pass() {
    let test = "mkconfig_refuses_an_incomplete_rootfs_after_the_pass";
    if !require_root(test)
        || !require(
            Path::new("/proc/sys/fs/binfmt_misc/qemu-riscv64").exists(),
            "no qemu-riscv64 binfmt entry; run scripts/setup-debian.sh",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let board = small_riscv64(dir.path());
    let debian = |t: &mut Tarball| {
        t.dir("etc/default")
            .dir("usr/sbin")
            .file("etc/os-release", b"NAME=\"Debian GNU/Linux\"\nID=debian\n")
            .file("usr/sbin/grub-mkconfig", b"#! /bin/sh\nexit 1\n");
    };
    let build = |tar: Vec<u8>| {
        let path = dir.path().join("rootfs.tar");
        std::fs::write(&path, tar).unwrap();
        let out = mkimg()
            .args(["build", "--board"])
            .arg(&board)
            .args(["--grub", "mkconfig", "--format", "raw", "--rootfs"])
            .arg(&path)
            .arg("-o")
            .arg(dir.path().join("out"))
            .env("TMPDIR", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(!dir.path().join("out").exists(), "published");
        let err = text(&out.stderr);
        assert!(
            !err.contains("ext4,"),
            "an ext4 image was built first: {err}"
        );
        err
    };
    // grub-common without grub-efi-riscv64: no /etc/default/grub.
    let mut t = Tarball::minimal_riscv64();
    debian(&mut t);
    let err = build(t.finish());
    assert!(err.contains("(debian) has no /etc/default/grub"), "{err}");
    assert!(err.contains("(Debian/Ubuntu: grub-efi-riscv64)"), "{err}");
    assert!(err.contains("or use --grub template"), "{err}");

    // /etc/default/grub, but no /usr/lib/grub/riscv64-efi (the grub binary
    // where an RPM distro keeps it).
    let mut t = Tarball::new();
    for d in [
        "etc",
        "usr",
        "usr/bin",
        "boot",
        "boot/efi",
        "boot/efi/EFI",
        "boot/efi/EFI/debian",
    ] {
        t.dir(d);
    }
    t.file(
        "usr/bin/dash",
        &support::tarball::elf_fixture("dash-riscv64.elfhdr"),
    )
    .file("boot/vmlinux-6.12.1-riscv64", b"kernel")
    .file(
        "boot/efi/EFI/debian/grubriscv64.efi",
        &support::tarball::grub_efi_fixture(0x5064, "/EFI/debian"),
    );
    debian(&mut t);
    t.file("etc/default/grub", b"GRUB_CMDLINE_LINUX=\"\"\n");
    let err = build(t.finish());
    assert!(err.contains("has no /usr/lib/grub/riscv64-efi/"), "{err}");
    assert!(err.contains("(Debian/Ubuntu: grub-efi-riscv64)"), "{err}");
}

#[test]
fn mkconfig_build_is_reproducible_distro_menu_and_boots() {
    let Some(rootfs) = slow_rootfs("mkconfig_build_is_reproducible_distro_menu_and_boots") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let first = build(&rootfs, &one, &tmp);
    let second = build(&rootfs, &two, &tmp);
    eprintln!(
        "--grub mkconfig builds: {:.1}s and {:.1}s",
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "work directory left"
    );
    for file in ["qemu-riscv64.raw", "qemu-riscv64.qcow2", "manifest.json"] {
        same_bytes(&one.join(file), &two.join(file));
    }
    let manifest = manifest(&one);
    assert_eq!(manifest["grub_mkconfig"]["via"], "tree");
    assert_eq!(
        manifest["grub_mkconfig"]["program"],
        "/usr/sbin/grub-mkconfig"
    );

    let raw = format!("{}@@{ESP_OFFSET}", one.join("qemu-riscv64.raw").display());
    let cfg = dir.path().join("grub.cfg");
    let status = Command::new("mcopy")
        .args(["-n", "-i", &raw, "::EFI/debian/grub.cfg"])
        .arg(&cfg)
        .status()
        .unwrap();
    assert!(status.success());
    let cfg = std::fs::read_to_string(cfg).unwrap();
    assert!(cfg.contains("generated by grub-mkconfig"), "{cfg}");
    assert!(
        cfg.contains("submenu 'Advanced options for Debian GNU/Linux'"),
        "{cfg}"
    );
    let kernel_lines: Vec<&str> = cfg
        .lines()
        .filter(|l| l.trim_start().starts_with("linux"))
        .collect();
    assert_eq!(kernel_lines.len(), 3, "{kernel_lines:?}");
    for line in &kernel_lines {
        assert!(
            line.contains(&format!("root=UUID={ROOT_UUID} ro")),
            "{line}"
        );
        assert!(line.contains("console=ttyS0"), "{line}");
    }
    let rules = LintRules {
        root: RootBy::Uuid(ROOT_UUID.to_string()),
        arch: Arch::Riscv64,
        forbidden: vec![
            "mkimg-work-".into(),
            "/dev/mkimg-root".into(),
            tmp.display().to_string(),
        ],
    };
    assert_eq!(lint_grub_cfg(&cfg, &rules), []);
    // grub-mkconfig saw no overlay: the image's own /etc/default/grub gave
    // it console=ttyS0, in mkimg's block after Debian's text.
    let default_grub = image_default_grub(&one.join("qemu-riscv64.raw"), dir.path());
    assert!(
        default_grub.starts_with("# If you change this file"),
        "{default_grub}"
    );
    assert!(
        default_grub.contains(
            "\n# BEGIN mkimg: the board's kernel arguments ([boot] cmdline, [board] console),\n"
        ),
        "{default_grub}"
    );
    assert!(
        default_grub.contains(
            "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX${GRUB_CMDLINE_LINUX:+ }\"'console=ttyS0'\n"
        ),
        "{default_grub}"
    );

    let port = 20000 + (std::process::id() % 20000);
    let output = mkimg()
        .arg("boot")
        .arg(&one)
        // Debian's GRUB_CMDLINE_LINUX_DEFAULT="quiet" hides the kernel and root
        // markers; the login prompt and the command's output prove the boot.
        .args(["--timeout", "900", "--markers", "firmware,grub,login"])
        // The target's own grub-mkconfig (what update-grub runs after a
        // kernel update) keeps the board's console.
        .args(["--login", "root:root", "--run"])
        .arg(
            "cat /proc/cmdline; grub-mkconfig -o /tmp/update.cfg >/dev/null 2>&1; \
             echo \"kept=$(grep -c 'linux.*console=ttyS0' /tmp/update.cfg)\"",
        )
        .env("MKIMG_SSH_PORT", port.to_string())
        .output()
        .unwrap();
    let (out, err) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{err}");
    assert!(out.contains(&format!("root=UUID={ROOT_UUID} ro")), "{out}");
    assert!(out.contains("console=ttyS0"), "{out}");
    assert!(out.contains("kept=3"), "{out}");
}

/// /etc/default/grub of the root partition of `raw` (qemu-riscv64's
/// layout), read with debugfs from a copy cut out into `dir`.
fn image_default_grub(raw: &Path, dir: &Path) -> String {
    let part = dir.join("root.img");
    // qemu-riscv64: ESP at 2M, 1G; the root partition follows, to the end
    // of the disk less the backup GPT.
    let status = Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", part.display()))
        .args(["bs=1M", "skip=1026", "status=none", "conv=sparse"])
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(locate_tool("debugfs").unwrap())
        .args(["-R", "cat /etc/default/grub"])
        .arg(&part)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(&part).unwrap();
    text(&out.stdout)
}

#[test]
fn sigint_while_grub_mkconfig_runs_over_the_tree_cleans_up() {
    sigint_while_grub_mkconfig_runs(
        "sigint_while_grub_mkconfig_runs_over_the_tree_cleans_up",
        "tree",
    );
}

#[test]
fn sigint_while_grub_mkconfig_runs_over_the_mount_cleans_up() {
    sigint_while_grub_mkconfig_runs(
        "sigint_while_grub_mkconfig_runs_over_the_mount_cleans_up",
        "mount",
    );
}

/// SIGINT at the test hook in grub-mkconfig's sandbox: killed, exit 130,
/// nothing left or published.
fn sigint_while_grub_mkconfig_runs(test: &str, via: &str) {
    let Some(rootfs) = slow_rootfs(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = dir.path().join("out");
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let mounts = || std::fs::read_to_string("/proc/self/mounts").unwrap();
    let before_mounts = mounts();
    // The test hook holds the build right after grub-mkconfig started in
    // its sandbox (host::interrupt::pause_at); the test stops that process
    // so it cannot finish first: only mkimg's kill can end it.
    let mut child = mkimg()
        .args([
            "build",
            "--board",
            "qemu-riscv64",
            "--grub",
            "mkconfig",
            "--mkconfig-via",
            via,
            "--rootfs",
        ])
        .arg(&rootfs)
        .arg("--output")
        .arg(&out)
        .env("TMPDIR", &tmp)
        .env("MKIMG_WORKDIR", &tmp)
        .env("MKIMG_TEST_HOOKS", "1")
        .env("MKIMG_TEST_PAUSE_AT", "grub-mkconfig")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let grub_mkconfig = loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        seen.push_str(&line);
        assert!(n > 0, "the build never reached grub-mkconfig:\n{seen}");
        if let Some(rest) = line.trim_end().strip_prefix("mkimg: test-pause: ") {
            let pid = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("child="))
                .and_then(|p| p.parse::<i32>().ok())
                .and_then(Pid::from_raw)
                .expect("the pause line names grub-mkconfig's pid");
            break pid;
        }
    };
    kill_process(grub_mkconfig, Signal::STOP).unwrap();
    let reader = std::thread::spawn(move || {
        let mut rest = seen;
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    let alive =
        |pid: Pid| std::path::Path::new(&format!("/proc/{}", pid.as_raw_nonzero())).exists();
    assert!(
        alive(grub_mkconfig),
        "grub-mkconfig finished before the signal"
    );
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process(pid, Signal::INT).unwrap();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(!status.success(), "{err}");
    assert_eq!(status.code(), Some(130), "exit status {status:?}: {err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(!alive(grub_mkconfig), "grub-mkconfig survived");
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    if mounts() != before_mounts {
        eprintln!("note: the host's mount table changed meanwhile (another user of this machine?)");
    }
    assert!(!out.exists(), "output published");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "work directory left"
    );
}

/// aarch64: Debian's grub-mkconfig through binfmt, then a boot. The rootfs
/// is qemu-aarch64's default (grub-efi-arm64 included, see [`board_rootfs`]).
#[test]
fn aarch64_mkconfig_build_boots_with_the_layout_root() {
    let test = "aarch64_mkconfig_build_boots_with_the_layout_root";
    if std::env::var("MKIMG_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("skipping {test}: set MKIMG_SLOW_TESTS=1");
        return;
    }
    if !require_root(test) {
        return;
    }
    let rootfs = board_rootfs("aarch64");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let built = mkimg()
        .args([
            "build",
            "--board",
            "qemu-aarch64",
            "--grub",
            "mkconfig",
            "--rootfs",
        ])
        .arg(&rootfs)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(built.status.success(), "build: {}", text(&built.stderr));
    // The ESP's grub.cfg is read from the booted system (/boot/efi).
    let booted = mkimg()
        .arg("boot")
        .arg(&out)
        .args([
            "--timeout",
            "600",
            "--markers",
            "firmware,grub,login",
            "--login",
            "root:root",
        ])
        .args([
            "--run",
            "cat /proc/cmdline; grep -c 'Advanced options' /boot/efi/EFI/debian/grub.cfg",
        ])
        .output()
        .unwrap();
    let stdout = text(&booted.stdout);
    assert!(
        booted.status.success(),
        "boot: {}\n{stdout}",
        text(&booted.stderr)
    );
    assert!(
        stdout.contains("root=UUID=78662d6f-706f-6570-6f72-742d726f6f74"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.trim() == "1"),
        "Debian's Advanced options submenu: {stdout}"
    );
}

/// One `--grub mkconfig --mkconfig-via VIA` build of `board` into `out` as
/// raw, native tools on or off (`MKIMG_NATIVE_TOOLS`): (its log, the
/// grub-mkconfig stage's time as the log says it).
fn build_native(board: &str, rootfs: &Path, out: &Path, via: &str, native: bool) -> (String, f64) {
    let output = mkimg()
        .args([
            "build", "--board", board, "--format", "raw", "--grub", "mkconfig",
        ])
        .args(["--mkconfig-via", via])
        .arg("--rootfs")
        .arg(rootfs)
        .arg("--output")
        .arg(out)
        .env("MKIMG_NATIVE_TOOLS", if native { "1" } else { "0" })
        .output()
        .unwrap();
    let log = text(&output.stderr);
    assert!(output.status.success(), "{log}");
    // "mkconfig: /usr/sbin/grub-mkconfig made grub.cfg over …, --mkconfig-via mount (170 lines, lint passed) in 2.0s"
    let seconds = log
        .lines()
        .find(|l| l.contains(" made grub.cfg ") && l.contains(" lines, "))
        .and_then(|l| l.rsplit(" in ").next())
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no stage time in {log}"));
    (log, seconds)
}

/// The same rootfs built with and without native tools (host::native_tools),
/// on the tree path and on the mount path: the log says which ran
/// natively; the ESP's grub.cfg is the same bytes in all four builds, and
/// so is the whole image on each path (manifest.json holds every output's
/// sha256; it names the path, so it is compared per path).
fn native_tools_change_nothing(test: &str, board: &str, rootfs: &Path, grub_cfg: &str) {
    let dir = tempfile::tempdir().unwrap();
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let image = format!("{board}.raw");
    let mut cfgs = Vec::new();
    let mut manifests = Vec::new();
    for (via, native) in [
        ("tree", false),
        ("tree", true),
        ("mount", false),
        ("mount", true),
    ] {
        let out = dir.path().join(format!(
            "{via}-{}",
            if native { "native" } else { "emulated" }
        ));
        let (log, seconds) = build_native(board, rootfs, &out, via, native);
        eprintln!("{test}: via {via}, native tools {native}: grub-mkconfig stage {seconds:.1}s");
        let expected = if native {
            "mkconfig: native tools: sh (dash), sed, grep, cat, tr, cut, basename, dirname, \
             rm, tail run as the host's programs ("
        } else {
            "mkconfig: native tools off (MKIMG_NATIVE_TOOLS=0): every program of the rootfs \
             runs emulated"
        };
        assert!(log.contains(expected), "{expected}:\n{log}");
        let cfg = out.join("grub.cfg");
        let raw = format!("{}@@{ESP_OFFSET}", out.join(&image).display());
        let status = Command::new("mcopy")
            .args(["-n", "-i", &raw, &format!("::{grub_cfg}")])
            .arg(&cfg)
            .status()
            .unwrap();
        assert!(status.success(), "mcopy {grub_cfg}");
        cfgs.push(std::fs::read(&cfg).unwrap());
        manifests.push(std::fs::read(out.join("manifest.json")).unwrap());
    }
    for (i, name) in [
        (1, "tree, native"),
        (2, "mount, emulated"),
        (3, "mount, native"),
    ] {
        assert!(
            cfgs[0] == cfgs[i],
            "grub.cfg differs:\n--- tree, emulated\n{}\n--- {name}\n{}",
            text(&cfgs[0]),
            text(&cfgs[i])
        );
    }
    assert!(text(&cfgs[0]).contains("automatically generated by grub"));
    assert_eq!(text(&manifests[0]), text(&manifests[1]), "tree path");
    assert_eq!(text(&manifests[2]), text(&manifests[3]), "mount path");
}

#[test]
fn native_tools_change_nothing_debian_riscv64() {
    let test = "native_tools_change_nothing_debian_riscv64";
    let Some(rootfs) = slow_rootfs(test) else {
        return;
    };
    native_tools_change_nothing(test, "qemu-riscv64", &rootfs, "EFI/debian/grub.cfg");
}

#[test]
fn native_tools_change_nothing_openeuler_layout_riscv64() {
    let test = "native_tools_change_nothing_openeuler_layout_riscv64";
    let Some(debian) = slow_rootfs(test) else {
        return;
    };
    let layout = rpm_layout(&debian, "riscv64", Layout::OpenEuler);
    let grub_cfg = format!("EFI/{}/grub.cfg", Layout::OpenEuler.vendor());
    native_tools_change_nothing(test, "qemu-riscv64", &layout, &grub_cfg);
}

#[test]
fn native_tools_change_nothing_debian_aarch64() {
    let test = "native_tools_change_nothing_debian_aarch64";
    if slow_rootfs(test).is_none() {
        return;
    }
    let rootfs = board_rootfs("aarch64");
    native_tools_change_nothing(test, "qemu-aarch64", &rootfs, "EFI/debian/grub.cfg");
}

/// The rootless tree path and the mount path (the distro's real
/// grub-probe over the loop-mounted root) give the same grub.cfg byte for
/// byte, hence the same image; only manifest.json's `via` differs.
#[test]
fn tree_and_mount_give_the_same_grub_cfg_and_image() {
    let Some(rootfs) = slow_rootfs("tree_and_mount_give_the_same_grub_cfg_and_image") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let (tree, mount) = (dir.path().join("tree"), dir.path().join("mount"));
    let took = (
        build_via(&rootfs, &tree, &tmp, "tree"),
        build_via(&rootfs, &mount, &tmp, "mount"),
    );
    eprintln!(
        "tree {:.1}s, mount {:.1}s",
        took.0.as_secs_f64(),
        took.1.as_secs_f64()
    );
    let cfg = esp_grub_cfg(&tree, dir.path());
    assert!(
        cfg == esp_grub_cfg(&mount, dir.path()),
        "the grub.cfg of the tree and mount paths differ"
    );
    assert!(text(&cfg).contains("generated by grub-mkconfig"));
    let (tree, mount) = (manifest(&tree), manifest(&mount));
    assert_eq!(tree["outputs"], mount["outputs"], "the images differ");
    assert_eq!(tree["grub_mkconfig"]["via"], "tree");
    assert_eq!(mount["grub_mkconfig"]["via"], "mount");
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
}

/// The unprivileged user scripts/setup-debian.sh makes: (uid, gid).
const CI_USER: &str = "mkimg-ci";

fn ci_user() -> Option<(u32, u32)> {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, CI_USER]).output().ok()?;
        text(&out.stdout).trim().parse::<u32>().ok()
    };
    let ids = id("-u").zip(id("-g"));
    if ids.is_none() {
        support::tools::skip_or_fail(format_args!(
            "no user {CI_USER}: scripts/setup-debian.sh makes it"
        ));
    }
    ids
}

/// `mkimg ARGS` as `uid`/`gid` (no groups), HOME and TMPDIR `home`.
fn as_user(uid: u32, gid: u32, home: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(env!("CARGO_BIN_EXE_mkimg"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", home)
        .env("TMPDIR", home)
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `mkimg build --grub mkconfig` of qemu-`arch` by a user that is not root,
/// from a copy of the rootfs it can read, into a directory it owns; then
/// `mkimg boot` (the same user) to a root login.
fn non_root_build_boots(test: &str, arch: &str) {
    if std::env::var("MKIMG_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("skipping {test}: set MKIMG_SLOW_TESTS=1");
        return;
    }
    if !require_root(test) {
        return;
    }
    let Some((uid, gid)) = ci_user() else {
        return;
    };
    let rootfs = board_rootfs(arch);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let copy = dir.path().join("rootfs.tar");
    std::fs::copy(&rootfs, &copy).unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    rustix::fs::chown(
        &home,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .unwrap();
    let out = home.join("out");
    let board = format!("qemu-{arch}");
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let built = as_user(
        uid,
        gid,
        &home,
        &[
            "build".as_ref(),
            "--board".as_ref(),
            board.as_ref(),
            "--grub".as_ref(),
            "mkconfig".as_ref(),
            "--rootfs".as_ref(),
            copy.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
    let log = text(&built.stderr);
    assert!(built.status.success(), "build as {CI_USER}: {log}");
    eprintln!(
        "{board} --grub mkconfig as {CI_USER}: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(log.contains(&format!("uid/gid 0 = host {uid}")), "{log}");
    assert!(log.contains("--mkconfig-via tree"), "{log}");
    assert_eq!(manifest(&out)["grub_mkconfig"]["via"], "tree");
    // `mkimg boot` picks a free port for the ssh forward itself.
    let booted = as_user(
        uid,
        gid,
        &home,
        &[
            "boot".as_ref(),
            out.as_os_str(),
            "--timeout".as_ref(),
            "900".as_ref(),
            "--markers".as_ref(),
            "firmware,grub,login".as_ref(),
            "--login".as_ref(),
            "root:root".as_ref(),
            "--run".as_ref(),
            "cat /proc/cmdline".as_ref(),
        ],
    );
    let stdout = text(&booted.stdout);
    assert!(
        booted.status.success(),
        "boot: {}\n{stdout}",
        text(&booted.stderr)
    );
    // Both boards' root filesystem UUID.
    assert!(
        stdout.contains(&format!("root=UUID={ROOT_UUID} ro")),
        "{stdout}"
    );
}

#[test]
fn non_root_riscv64_mkconfig_build_boots() {
    non_root_build_boots("non_root_riscv64_mkconfig_build_boots", "riscv64");
}

#[test]
fn non_root_aarch64_mkconfig_build_boots() {
    non_root_build_boots("non_root_aarch64_mkconfig_build_boots", "aarch64");
}
