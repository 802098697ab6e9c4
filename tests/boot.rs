//! `mkimg boot` as a user runs it: against a fake start_vm.sh (fast), and
//! against a real Debian riscv64 kernel and initramfs in QEMU (slow, with
//! MKIMG_SLOW_TESTS=1).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mkimg::host::vm::live_members;
use rustix::process::{kill_process, Pid, Signal};
use support::run::text;
use support::tools::have_tool;

mod support;

const FAKE_START_VM: &str = "tests/fixtures/console/fake-start_vm.sh";

fn mkimg(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mkimg"));
    command.args(args).stdin(Stdio::null());
    command
}

fn install_script(dir: &Path, source: &Path) {
    let script = dir.join("start_vm.sh");
    fs::copy(source, &script).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
}

fn fake_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install_script(
        dir.path(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(FAKE_START_VM),
    );
    fs::write(dir.path().join("RISCV_VIRT_VARS.fd"), b"vars").unwrap();
    dir
}

fn dir_arg(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// The pid (and process group) the fake start_vm.sh recorded.
fn script_pgid(dir: &Path) -> i32 {
    fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn boot_logs_in_runs_and_prints_markers() {
    let dir = fake_dir();
    let log = dir.path().join("console.log");
    let out: Output = mkimg(&["boot", dir_arg(&dir), "--login", "root:pw"])
        .args([
            "--run",
            "echo guest says hi",
            "--log",
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(text(&out.stdout), "guest says hi\n");
    for marker in ["firmware", "kernel", "root", "multi-user", "login"] {
        assert!(
            err.lines()
                .any(|l| l.trim_start().ends_with(&format!("s {marker}"))),
            "{marker} not printed:\n{err}"
        );
    }
    assert!(err.contains("boot OK"), "{err}");
    let raw = fs::read(&log).unwrap();
    assert!(
        raw.starts_with(b"UEFI firmware (version fake)\r\n\x1b[2J"),
        "{}",
        text(&raw)
    );
    assert!(text(&raw).contains("poweroff"), "log stops before poweroff");
    assert!(live_members(script_pgid(dir.path())).is_empty());
}

#[test]
fn boot_failure_lists_markers_and_console_tail() {
    let dir = fake_dir();
    let out = mkimg(&["boot", dir_arg(&dir), "--timeout", "2"])
        .args(["--expect", "never printed"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("boot timed out after 2 s"), "{err}");
    assert!(err.contains("never printed (missed)"), "{err}");
    assert!(
        err.lines().any(|l| l.trim_start().ends_with("s kernel")),
        "{err}"
    );
    assert!(err.contains("  | debian login: "), "{err}");
    assert!(live_members(script_pgid(dir.path())).is_empty());

    let out = mkimg(&[
        "boot",
        dir_arg(&dir),
        "--login",
        "root:pw",
        "--run",
        "exit_code() { return 7; }; exit_code",
    ])
    .output()
    .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("exited with 7 in the guest"), "{err}");
}

#[test]
fn sigint_to_mkimg_stops_the_machine() {
    let dir = fake_dir();
    let child = mkimg(&["boot", dir_arg(&dir), "--expect", "never printed"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.path().join("pid").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "start_vm.sh never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = script_pgid(dir.path());
    // Let mkimg get to its console loop, with the fake waiting at login.
    std::thread::sleep(Duration::from_millis(700));
    assert!(!live_members(pgid).is_empty());
    kill_process(Pid::from_child(&child), Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        live_members(pgid).is_empty(),
        "{:?} left",
        live_members(pgid)
    );
}

/// Where the riscv64 rootfs tarball (from `mkimg rootfs` or mmdebstrap) is.
fn rootfs_riscv64() -> PathBuf {
    std::env::var_os("MKIMG_TEST_ROOTFS_RISCV64")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/mkimg-dev/rootfs-riscv64.tar"))
}

/// A directory honouring the start_vm.sh contract that boots the tarball's
/// kernel and initramfs directly and stops in the initramfs shell.
fn initramfs_dir(tarball: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .args([
            "-xf",
            tarball.to_str().unwrap(),
            "-C",
            dir_arg(&dir),
            "--wildcards",
        ])
        .args(["./boot/vmlinu*", "./boot/initrd.img-*"])
        .status()
        .unwrap();
    assert!(status.success(), "tar -xf {}", tarball.display());
    let boot = dir.path().join("boot");
    for entry in fs::read_dir(&boot).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let to = if name.starts_with("initrd") {
            "initrd.img"
        } else {
            "kernel"
        };
        fs::rename(boot.join(&name), dir.path().join(to)).unwrap();
    }
    let script = dir.path().join("start_vm.sh");
    fs::write(
        &script,
        "#!/bin/sh\nhere=$(cd \"$(dirname \"$0\")\" && pwd)\n\
         exec qemu-system-riscv64 -M virt -m 1G -smp 2 -nographic -net none -no-reboot \\\n\
         \x20 -kernel \"$here/kernel\" -initrd \"$here/initrd.img\" \\\n\
         \x20 -append 'console=ttyS0 break=top' \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn boot_riscv64_initramfs_runs_a_command() {
    if std::env::var_os("MKIMG_SLOW_TESTS").is_none() {
        eprintln!("SKIP: slow test; set MKIMG_SLOW_TESTS=1");
        return;
    }
    let tarball = rootfs_riscv64();
    if !tarball.is_file() || fs::metadata(&tarball).unwrap().len() == 0 {
        eprintln!(
            "SKIP: no riscv64 rootfs at {} (MKIMG_TEST_ROOTFS_RISCV64)",
            tarball.display()
        );
        return;
    }
    if !have_tool("qemu-system-riscv64") {
        return;
    }
    let dir = initramfs_dir(&tarball);
    let log = dir.path().join("console.log");
    let started = Instant::now();
    let out = mkimg(&[
        "boot",
        dir_arg(&dir),
        "--timeout",
        "240",
        "--markers",
        "sbi,kernel",
    ])
    .args([
        "--expect",
        "(initramfs) ",
        "--run",
        "uname -m; cat /proc/cmdline",
    ])
    .args(["--log", log.to_str().unwrap()])
    .output()
    .unwrap();
    let err = text(&out.stderr);
    eprintln!("{err}(total {:.1} s)", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "{err}\n{}",
        text(&fs::read(&log).unwrap_or_default())
    );
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().next(), Some("riscv64"), "{stdout}");
    assert!(stdout.contains("break=top"), "{stdout}");
    for marker in ["sbi", "kernel", "(initramfs) "] {
        assert!(err.contains(&format!("s {marker}\n")), "{marker}:\n{err}");
    }
}
