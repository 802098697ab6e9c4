//! Messages that name the thing and the fix (issue 12, item 7): what
//! `--rootfs` was given, empty archives, duplicate paths, names over 255
//! bytes, "truncated or corrupt?" only for format errors, grub without an
//! ESP, `-v` before the subcommand, and `--rootfs -` from standard input.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use sha2::{Digest, Sha256};

use super::kit::{assert_no_workdir_left, board, run_measured, Case};
use crate::support::tarball::Tarball;
use crate::support::tools::have_tool;

fn assert_failed_naming(run: &super::kit::Run, wants: &[&str]) {
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    for want in wants {
        assert!(
            run.stderr.contains(want),
            "missing {want:?} in: {}",
            run.stderr
        );
    }
}

fn small_board(case: &Case) -> String {
    board(case.dir.path(), "160M", "32M", |t| t)
        .to_string_lossy()
        .into_owned()
}

/// Before: all said "rootfs … not found".
#[test]
fn rootfs_that_is_not_a_tarball_says_what_it_is() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let socket = case.dir.path().join("rootfs.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for (path, kind) in [
        ("/dev/zero", "is a character device"),
        (socket.to_str().unwrap(), "is a socket"),
    ] {
        let run = case.build("qemu-riscv64", path, None);
        assert_failed_naming(&run, &[path, kind, "--rootfs takes a tarball"]);
        assert!(!run.stderr.contains("not found"), "{}", run.stderr);
    }
    assert_no_workdir_left(&case.work());
}

/// A directory is read as the tarball of it (it was refused before): an
/// empty one reaches the pass, which finds no program in it.
#[test]
fn rootfs_directory_is_read_as_a_tarball() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let dir = case.dir.path().join("tree");
    fs::create_dir(&dir).unwrap();
    let run = case.build(&small_board(&case), dir.to_str().unwrap(), None);
    assert_failed_naming(&run, &["has no ELF program"]);
    assert!(!run.stderr.contains("--rootfs takes"), "{}", run.stderr);
    assert_no_workdir_left(&case.work());
}

/// A FIFO is read once, as a stream, like standard input: an empty tar
/// written into it reaches the pass ("no entries").
#[test]
fn rootfs_fifo_is_read_as_a_stream() {
    if !have_tool("time") || !have_tool("mkfifo") {
        return;
    }
    let case = Case::new();
    let fifo = case.dir.path().join("rootfs.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = File::options().write(true).open(writer_path).unwrap();
        let _ = f.write_all(&[0u8; 10240]);
    });
    let run = case.build(&small_board(&case), fifo.to_str().unwrap(), None);
    // Unblock the writer if mkimg never opened the FIFO (then the asserts fail).
    let _ = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo);
    writer.join().unwrap();
    assert_failed_naming(&run, &["the rootfs tarball has no entries"]);
    assert_no_workdir_left(&case.work());
}

/// Before: "unknown format".
#[test]
fn valid_empty_tar_says_it_has_no_entries() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let empty = case.write("empty.tar", &[0u8; 10240]);
    let run = case.build(&small_board(&case), empty.to_str().unwrap(), None);
    assert_failed_naming(&run, &["the rootfs tarball has no entries"]);
    assert!(!run.stderr.contains("unknown format"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("truncated or corrupt"),
        "{}",
        run.stderr
    );
    assert_no_workdir_left(&case.work());
}

/// Before: these failed deep inside mke2fs/e2fsck without a path.
#[test]
fn duplicate_paths_of_different_kinds_are_named_at_the_pass() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let board = small_board(&case);
    let cases = [
        (
            Tarball::minimal_riscv64()
                .dir("srv")
                .file("srv/x", b"1")
                .dir("srv/x")
                .finish(),
            "\"/srv/x\" is given twice, first as a file and then as a directory",
        ),
        (
            Tarball::minimal_riscv64()
                .dir("srv")
                .dir("srv/d")
                .symlink("srv/d", "/etc")
                .finish(),
            "\"/srv/d\" is given twice, first as a directory and then as a symlink",
        ),
    ];
    for (tar, want) in cases {
        let rootfs = case.write("dup.tar", &tar);
        let run = case.build(&board, rootfs.to_str().unwrap(), None);
        assert_failed_naming(&run, &[want]);
        assert!(!run.stderr.contains("mke2fs"), "{}", run.stderr);
        assert!(
            !run.stderr.contains("truncated or corrupt"),
            "{}",
            run.stderr
        );
    }
    assert_no_workdir_left(&case.work());
}

#[test]
fn name_over_255_bytes_is_named() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let long = format!("srv/{}", "n".repeat(300));
    let tar = Tarball::minimal_riscv64()
        .dir("srv")
        .file(&long, b"x")
        .finish();
    let rootfs = case.write("long.tar", &tar);
    let run = case.build(&small_board(&case), rootfs.to_str().unwrap(), None);
    assert_failed_naming(&run, &[&long, "is 300 bytes", "at most 255 bytes"]);
    assert!(
        !run.stderr.contains("truncated or corrupt"),
        "{}",
        run.stderr
    );
    assert_no_workdir_left(&case.work());
}

/// The suffix stays for real format errors.
#[test]
fn truncated_tar_still_says_truncated_or_corrupt() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let tar = Tarball::minimal_riscv64().finish();
    let rootfs = case.write("cut.tar", &tar[..tar.len() - 1536]);
    let run = case.build(&small_board(&case), rootfs.to_str().unwrap(), None);
    assert_failed_naming(&run, &["plain tar; truncated or corrupt?"]);
    assert_no_workdir_left(&case.work());
}

/// Before: the image was built with no boot loader, exit 0.
#[test]
fn grub_board_without_an_esp_fails_at_plan_time() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let board = board(case.dir.path(), "160M", "32M", |text| {
        let start = text.find("[[partition]]").unwrap();
        let end = text[start + 1..].find("[[partition]]").unwrap() + start + 1;
        format!("{}{}", &text[..start], &text[end..])
    });
    let plan = run_measured(
        &["plan", "--board", board.to_str().unwrap()],
        &case.work(),
        None,
    );
    assert_failed_naming(&plan, &["no EFI System Partition", "loader = \"extlinux\""]);
    let rootfs = case.write("rootfs.tar", &Tarball::minimal_riscv64().finish());
    let run = case.build(board.to_str().unwrap(), rootfs.to_str().unwrap(), None);
    assert_failed_naming(&run, &["no EFI System Partition"]);
    assert!(!case.out().exists());
    assert_no_workdir_left(&case.work());
}

/// Before: clap refused `-v` before the subcommand.
#[test]
fn verbose_flag_goes_before_the_subcommand() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let run = run_measured(
        &[
            "-v",
            "build",
            "--board",
            "qemu-riscv64",
            "--rootfs",
            "/nonexistent.tar",
        ],
        &case.work(),
        None,
    );
    assert_failed_naming(&run, &["rootfs /nonexistent.tar not found"]);
    assert!(
        !run.stderr.contains("cannot be used with"),
        "{}",
        run.stderr
    );
}

/// `docker export C | mkimg build --board qemu-riscv64 --rootfs -`: the
/// tarball streams from standard input; the manifest records "-" and its
/// sha256.
#[test]
fn rootfs_from_standard_input() {
    if !have_tool("time") || !have_tool("mke2fs") {
        return;
    }
    let case = Case::new();
    let tar = Tarball::minimal_riscv64().finish();
    let path = case.write("rootfs.tar", &tar);
    let run = case.build("qemu-riscv64", "-", Some(File::open(&path).unwrap()));
    assert!(run.status.success(), "{}", run.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(case.out().join("manifest.json")).unwrap()).unwrap();
    let sha = format!("{:x}", Sha256::digest(&tar));
    assert_eq!(manifest["rootfs"]["file"], "-");
    assert_eq!(manifest["rootfs"]["sha256"], sha.as_str());
    assert_no_workdir_left(&case.work());
    let _ = fs::remove_dir_all(case.out());
}

/// Before: "reading rootfs … (plain tar; truncated or corrupt?)". Now a
/// full work directory (a 4 MiB tmpfs in a private mount namespace) is
/// named as such, with the work file and the fix. Needs root (mount).
#[test]
fn full_work_directory_says_so() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: mounting a small tmpfs needs root");
        return;
    }
    if !have_tool("unshare") {
        return;
    }
    let case = Case::new();
    let mut random = vec![0u8; 8 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let tar = Tarball::minimal_riscv64()
        .dir("srv")
        .file("srv/rand", &random)
        .finish();
    let rootfs = case.write("rootfs.tar", &tar);
    let work = case.work();
    let board = small_board(&case);
    // The script is constant; every path reaches it as an argument.
    let script = r#"d=$1; shift; mount -t tmpfs -o size=4m none "$d" || exit 99; "$@"; rc=$?; ls -A "$d"; exit $rc"#;
    let out = std::process::Command::new("unshare")
        .args(["-m", "--", "sh", "-c", script, "sh"])
        .arg(&work)
        .arg("env")
        .arg(format!("MKIMG_WORKDIR={}", work.display()))
        .arg(env!("CARGO_BIN_EXE_mkimg"))
        .args(["build", "--board", &board, "--rootfs"])
        .arg(&rootfs)
        .arg("-o")
        .arg(case.out())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in [
        "rootfs.tar (the contents of /)",
        "the file system holding the work directory is full",
        "MKIMG_WORKDIR",
        "No space left on device",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in: {stderr}");
    }
    assert!(!stderr.contains("truncated or corrupt"), "{stderr}");
    let left = String::from_utf8_lossy(&out.stdout);
    assert!(left.trim().is_empty(), "left in the work directory: {left}");
    assert!(!case.out().exists());
}
