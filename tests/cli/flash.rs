//! `mkimg flash` on plain files (rootless) and on loop devices (root): the
//! result equals the raw image byte for byte (`cmp`) and what `bmaptool
//! copy` makes of the same image on the same pre-filled target; damage to
//! the image or its map, a target too small, and a target in use (an
//! injected swap table, sysfs and mount table, never the machine's own
//! disks) are refused or reported by range, with the target unchanged
//! where the refusal comes before writing.
//!
//! One image is built for every test (a `sparse = false` partition makes
//! a mapped all-zero range, which must overwrite a pre-filled target);
//! tests that damage it work on copies.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::support::build::{bmap_ranges, Build};
use crate::support::run::{mkimg, stderr};
use crate::support::tools::{have_tools, require_root};

const BOARD: &str = r#"[board]
name = "fl"
description = "mkimg flash"
arch = "riscv64"
hostname = "fl"
image = "fl"

[disk]
table = "gpt"
size = "24M"
guid = "0b7c3c0e-4d3e-4c9a-9a55-6a3f6e1c2d02"

[[partition]]
name = "env"
type = "linux"
offset = "1M"
size = "128K"
filesystem = "none"
sparse = false

[[partition]]
name = "rootfs"
type = "linux"
offset = "2M"
size = "rest"
filesystem = "ext4"
mount = "/"
"#;

const SIZE: usize = 24 << 20;

/// The shared build: `DIR/out` with fl.raw, fl.raw.zst, fl.raw.bmap,
/// SHA256SUMS; `None` (skipped) without mke2fs.
fn built() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    if !have_tools(&["mke2fs", "cmp", "bmaptool"]) {
        return None;
    }
    let dir = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Build::minimal(dir.path(), BOARD)
            .bootloader("none")
            .format("raw,raw.zst")
            .run();
        Some(dir)
    });
    dir.as_ref().map(|d| {
        let out: &'static Path = Box::leak(d.path().join("out").into_boxed_path());
        out
    })
}

fn flash(args: &[&Path], extra: &[&str]) -> Output {
    let mut all: Vec<&str> = vec!["flash"];
    all.extend(args.iter().map(|p| p.to_str().unwrap()));
    all.extend(extra);
    mkimg(&all)
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    stderr(out)
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded:\n{}", stderr(out));
    stderr(out)
}

/// `cmp A B` says they are equal.
fn same(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success()
}

/// Deterministic noise (xorshift), so a failure reproduces.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `dir` with the image's raw and bmap copied (no SHA256SUMS).
fn copy_raw(out: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (raw, bmap) = (dir.join("fl.raw"), dir.join("fl.raw.bmap"));
    fs::copy(out.join("fl.raw"), &raw).unwrap();
    fs::copy(out.join("fl.raw.bmap"), &bmap).unwrap();
    (raw, bmap)
}

#[test]
fn a_directory_and_a_zst_image_flash_to_files_equal_to_the_raw() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let raw = out.join("fl.raw");

    let target = dir.path().join("card.img");
    let text = ok(&flash(&[out, &target], &[]));
    assert!(text.contains("fl.raw, block map"), "{text}");
    assert!(text.contains("read back and verified"), "{text}");
    assert!(text.contains("of 24.0 MiB"), "{text}");
    assert!(same(&raw, &target));

    let zst = out.join("fl.raw.zst");
    let target = dir.path().join("from-zst.img");
    let text = ok(&flash(&[&zst, &target], &[]));
    assert!(text.contains("zstd-compressed"), "{text}");
    assert!(text.contains("fl.raw.bmap"), "{text}");
    assert!(same(&raw, &target));

    // An existing empty file is sized to the image.
    let target = dir.path().join("empty.img");
    fs::write(&target, b"").unwrap();
    ok(&flash(&[&zst, &target], &[]));
    assert!(same(&raw, &target));
}

/// `got` holds the raw image in the blocks its map maps and `fill`
/// elsewhere.
fn assert_mapped_only(out: &Path, got: &[u8], fill: &[u8]) {
    let raw = fs::read(out.join("fl.raw")).unwrap();
    let ranges = bmap_ranges(&fs::read_to_string(out.join("fl.raw.bmap")).unwrap());
    // The env partition (1 MiB, sparse = false, all zeros) is mapped.
    assert!(
        ranges.iter().any(|&(a, b)| a <= 256 && 256 + 31 <= b),
        "{ranges:?}"
    );
    assert!(raw[1 << 20..(1 << 20) + (128 << 10)]
        .iter()
        .all(|&b| b == 0));
    for block in 0..SIZE / 4096 {
        let bytes = block * 4096..(block + 1) * 4096;
        let mapped = ranges
            .iter()
            .any(|&(a, b)| a <= block as u64 && block as u64 <= b);
        let expected = if mapped {
            &raw[bytes.clone()]
        } else {
            &fill[bytes.clone()]
        };
        assert!(got[bytes] == *expected, "block {block} (mapped: {mapped})");
    }
}

/// On a file, `bmaptool copy` truncates first (its CLI opens the target
/// `wb+`), so its result is the raw image everywhere; mkimg treats a file
/// like a card and leaves unmapped blocks alone. Where bmaptool writes,
/// both wrote the same; the loop device test compares the two whole.
#[test]
fn a_prefilled_file_changes_exactly_in_the_mapped_blocks() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let fill = noise(SIZE);
    let (ours, theirs) = (dir.path().join("ours.img"), dir.path().join("theirs.img"));
    fs::write(&ours, &fill).unwrap();
    fs::write(&theirs, &fill).unwrap();
    ok(&flash(&[out, &ours], &[]));
    assert_mapped_only(out, &fs::read(&ours).unwrap(), &fill);
    let copy = Command::new("bmaptool")
        .arg("copy")
        .arg(out.join("fl.raw.zst"))
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert!(
        same(&out.join("fl.raw"), &theirs),
        "bmaptool copy to a file"
    );
}

#[test]
fn no_verify_skips_the_read_back() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("card.img");
    let text = ok(&flash(&[out, &target], &["--no-verify"]));
    assert!(text.contains("not read back (--no-verify)"), "{text}");
    assert!(!text.contains("verified"), "{text}");
    assert!(same(&out.join("fl.raw"), &target));
}

#[test]
fn a_damaged_image_is_reported_by_range() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (raw, bmap) = copy_raw(out, dir.path());
    let ranges = bmap_ranges(&fs::read_to_string(&bmap).unwrap());
    let (first, last) = ranges[1];
    let mut data = fs::read(&raw).unwrap();
    data[first as usize * 4096 + 5] ^= 0x40;
    fs::write(&raw, &data).unwrap();
    let target = dir.path().join("card.img");
    let text = failed(&flash(&[&raw, &target], &[]));
    assert!(text.contains(&format!("blocks {first}-{last}")), "{text}");
    assert!(text.contains("do not match the block map"), "{text}");
    assert!(text.contains("partial image"), "{text}");
}

#[test]
fn a_damaged_block_map_is_refused_before_writing() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (raw, bmap) = copy_raw(out, dir.path());
    let xml = fs::read_to_string(&bmap).unwrap();
    // One digit of a range checksum: the file's own checksum catches it.
    let at = xml.find("chksum=\"").unwrap() + 8;
    let flipped = if &xml[at..at + 1] == "0" { "1" } else { "0" };
    fs::write(&bmap, format!("{}{flipped}{}", &xml[..at], &xml[at + 1..])).unwrap();
    let target = dir.path().join("card.img");
    let text = failed(&flash(&[&raw, &target], &[]));
    assert!(
        text.contains("fl.raw.bmap: not a usable block map"),
        "{text}"
    );
    assert!(text.contains("checksum does not match"), "{text}");
    assert!(!target.exists(), "the target was created");

    // In an output directory, SHA256SUMS catches any change first.
    let copy = dir.path().join("out");
    fs::create_dir(&copy).unwrap();
    copy_raw(out, &copy);
    fs::copy(out.join("SHA256SUMS"), copy.join("SHA256SUMS")).unwrap();
    fs::write(copy.join("fl.raw.bmap"), format!("{xml}\n")).unwrap();
    let text = failed(&flash(&[&copy, &target], &[]));
    assert!(text.contains("does not match SHA256SUMS"), "{text}");
    assert!(!target.exists());

    // No map at all: refused unless --nobmap, which writes every block.
    fs::remove_file(&bmap).unwrap();
    let text = failed(&flash(&[&raw, &target], &[]));
    assert!(text.contains("--nobmap"), "{text}");
    assert!(!target.exists());
    let text = ok(&flash(&[&raw, &target], &["--nobmap"]));
    assert!(text.contains("24.0 of 24.0 MiB"), "{text}");
    assert!(same(&raw, &target));
}

#[test]
fn a_target_smaller_than_the_image_is_left_unchanged() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("small.img");
    let fill = noise(SIZE - 4096);
    fs::write(&target, &fill).unwrap();
    let text = failed(&flash(&[out, &target], &[]));
    assert!(text.contains("too small; nothing was written"), "{text}");
    assert!(fs::read(&target).unwrap() == fill);
    // The image itself is not a target either.
    let raw = out.join("fl.raw");
    let text = failed(&flash(&[out, &raw], &[]));
    assert!(
        text.contains("it is") && text.contains("fl.raw itself"),
        "{text}"
    );
}

/// Tables for the hidden `--mount-table/--swaps/--sysfs` options.
struct Tables {
    dir: tempfile::TempDir,
}

impl Tables {
    fn new(mounts: &str, swaps: &str) -> Tables {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("mountinfo"),
            format!("22 1 0:21 / /proc rw,relatime - proc proc rw\n{mounts}"),
        )
        .unwrap();
        fs::write(
            dir.path().join("swaps"),
            format!("Filename\tType\tSize\tUsed\tPriority\n{swaps}"),
        )
        .unwrap();
        fs::create_dir_all(dir.path().join("sys/block")).unwrap();
        Tables { dir }
    }

    fn args(&self) -> Vec<String> {
        let p = |n: &str| self.dir.path().join(n).display().to_string();
        vec![
            "--mount-table".into(),
            p("mountinfo"),
            "--swaps".into(),
            p("swaps"),
            "--sysfs".into(),
            p("sys"),
        ]
    }
}

fn flash_with(source: &Path, target: &Path, tables: &Tables) -> Output {
    let args = tables.args();
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    flash(&[source, target], &extra)
}

#[test]
fn a_swap_file_or_loop_backing_file_is_refused_before_writing() {
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("swap file");
    let fill = noise(SIZE);
    fs::write(&target, &fill).unwrap();
    let escaped = target.display().to_string().replace(' ', "\\040");
    let tables = Tables::new("", &format!("{escaped}\tfile\t1024\t0\t-2\n"));
    let text = failed(&flash_with(out, &target, &tables));
    assert!(text.contains("is an active swap file"), "{text}");
    assert!(fs::read(&target).unwrap() == fill);

    // A loop device (in an injected sysfs) backed by the target.
    let tables = Tables::new("", "");
    let loop9 = tables.dir.path().join("sys/devices/virtual/block/loop9");
    fs::create_dir_all(loop9.join("loop")).unwrap();
    fs::write(loop9.join("dev"), "7:9\n").unwrap();
    fs::write(
        loop9.join("loop/backing_file"),
        format!("{}\n", target.display()),
    )
    .unwrap();
    symlink(&loop9, tables.dir.path().join("sys/block/loop9")).unwrap();
    let text = failed(&flash_with(out, &target, &tables));
    assert!(text.contains("backs the loop device /dev/loop9"), "{text}");
    assert!(fs::read(&target).unwrap() == fill);

    // The same tables without the target in them: written.
    let tables = Tables::new("", "");
    ok(&flash_with(out, &target, &tables));
    assert_mapped_only(out, &fs::read(&target).unwrap(), &fill);
}

// ---- loop devices (root) ----

use mkimg::host::loopdev::{LoopDevice, LoopOptions};

/// A loop device over a file of `size` bytes of noise, named `name`.
fn attach(dir: &Path, name: &str, size: usize) -> (LoopDevice, PathBuf) {
    let backing = dir.join(name);
    fs::write(&backing, noise(size)).unwrap();
    let dev = LoopDevice::attach(&backing, &LoopOptions::default()).unwrap();
    (dev, backing)
}

fn dev_num(path: &Path) -> String {
    let rdev = fs::metadata(path).unwrap().rdev();
    format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev))
}

/// Two pre-filled loop devices: mkimg flash on one, bmaptool copy on the
/// other; the two backing files end up identical.
#[test]
fn flash_to_a_loop_device_as_bmaptool_copy_does() {
    if !require_root("flash_to_a_loop_device_as_bmaptool_copy_does") {
        return;
    }
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ours, ours_file) = attach(dir.path(), "ours.img", SIZE);
    let (theirs, theirs_file) = attach(dir.path(), "theirs.img", SIZE);
    let text = ok(&flash(&[out, ours.path()], &[]));
    assert!(text.contains("read back and verified"), "{text}");
    let copy = Command::new("bmaptool")
        .arg("copy")
        .arg(out.join("fl.raw.zst"))
        .arg(theirs.path())
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    ours.close().unwrap();
    theirs.close().unwrap();
    let got = fs::read(&ours_file).unwrap();
    assert!(
        got == fs::read(&theirs_file).unwrap(),
        "differs from bmaptool copy"
    );
    assert_mapped_only(out, &got, &noise(SIZE));
}

#[test]
fn a_mounted_loop_device_is_refused_before_writing() {
    if !require_root("a_mounted_loop_device_is_refused_before_writing") {
        return;
    }
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (dev, backing) = attach(dir.path(), "card.img", SIZE);
    let num = dev_num(dev.path());
    let before = fs::read(&backing).unwrap();
    let name = dev.path().display().to_string();

    // The test's own tables name the loop device, never a real mount.
    let mounted = Tables::new(
        &format!("40 22 {num} / /mnt/card rw - ext4 {name} rw\n"),
        "",
    );
    let text = failed(&flash_with(out, dev.path(), &mounted));
    assert!(text.contains("is mounted at /mnt/card"), "{text}");
    let root = Tables::new(&format!("40 22 {num} / / rw - ext4 {name} rw\n"), "");
    let text = failed(&flash_with(out, dev.path(), &root));
    assert!(text.contains("holds the running system"), "{text}");
    let swap = Tables::new("", &format!("{name}\tpartition\t1024\t0\t-2\n"));
    let text = failed(&flash_with(out, dev.path(), &swap));
    assert!(text.contains("is active swap"), "{text}");

    // Held open exclusively (as a mount would): the kernel refuses O_EXCL.
    let holder = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::EXCL.bits() as i32)
        .open(dev.path())
        .unwrap();
    let text = failed(&flash_with(out, dev.path(), &Tables::new("", "")));
    assert!(text.contains("refused exclusive access"), "{text}");
    drop(holder);

    dev.close().unwrap();
    assert!(
        fs::read(&backing).unwrap() == before,
        "the device was written"
    );
}

#[test]
fn a_loop_device_smaller_than_the_image_is_refused() {
    if !require_root("a_loop_device_smaller_than_the_image_is_refused") {
        return;
    }
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (dev, backing) = attach(dir.path(), "card.img", SIZE - (1 << 20));
    let before = fs::read(&backing).unwrap();
    let text = failed(&flash(&[out, dev.path()], &[]));
    assert!(text.contains("too small; nothing was written"), "{text}");
    dev.close().unwrap();
    assert!(fs::read(&backing).unwrap() == before);
}

/// SIGINT while writing (the test hook pauses after the first chunk):
/// exit 130, and the message says the target is partially written.
#[test]
fn an_interrupted_flash_says_the_target_is_partial() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let Some(out) = built() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("card.img");
    let mut child = crate::support::run::mkimg_command([
        "flash",
        out.to_str().unwrap(),
        target.to_str().unwrap(),
    ])
    .env("MKIMG_TEST_HOOKS", "1")
    .env("MKIMG_TEST_PAUSE_AT", "flash-write")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "no pause:\n{seen}");
        seen.push_str(&line);
        if line.contains("test-pause: flash-write") {
            break;
        }
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("is partially written"), "{seen}{rest}");
    assert!(rest.contains("interrupted by SIGINT"), "{seen}{rest}");
}
