//! `--format` with every image format at once, from one assembly pass:
//! each round-trips through its reference tool (zstd/xz/gzip -d, simg2img,
//! bmaptool copy) to the raw image; `sha256sum -c SHA256SUMS` passes; a
//! `sparse = false` partition is mapped in the .bmap and filled in the
//! .simg although it is all zeros, while an ordinary empty one is not.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::build::{bmap_ranges, Build};
use crate::support::tools::have_tools;

const BOARD: &str = r#"[board]
name = "fmt"
description = "every output format"
arch = "riscv64"
hostname = "fmt"
image = "fmt"

[disk]
table = "gpt"
size = "48M"
guid = "0b7c3c0e-4d3e-4c9a-9a55-6a3f6e1c2d01"

[[partition]]
name = "env"
type = "linux"
offset = "1M"
size = "128K"
filesystem = "none"
sparse = false

[[partition]]
name = "env2"
type = "linux"
offset = "2M"
size = "128K"
filesystem = "none"

[[partition]]
name = "rootfs"
type = "linux"
offset = "4M"
size = "rest"
filesystem = "ext4"
mount = "/"
"#;

const ENV: (u64, u64) = (1 << 20, (1 << 20) + (128 << 10));
const ENV2: (u64, u64) = (2 << 20, (2 << 20) + (128 << 10));

fn build(dir: &Path, formats: &str) -> PathBuf {
    let build = Build::minimal(dir, BOARD)
        .bootloader("none")
        .format(formats);
    build.run();
    build.out().to_path_buf()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn covered(ranges: &[(u64, u64)], block: u64) -> bool {
    ranges.iter().any(|&(a, b)| a <= block && block <= b)
}

/// The chunks of an Android sparse image: (type, first block, blocks).
fn simg_chunks(file: &[u8]) -> Vec<(u16, u64, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes(file[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xed26_ff3a);
    let chunks = u32_at(20);
    let mut at = 28usize;
    let mut block = 0u64;
    let mut out = Vec::new();
    for _ in 0..chunks {
        let (kind, count, total) = (u16_at(at), u32_at(at + 4), u32_at(at + 8));
        out.push((kind, block, u64::from(count)));
        block += u64::from(count);
        at += total as usize;
    }
    assert_eq!(at, file.len());
    out
}

#[test]
fn every_format_round_trips_through_its_reference_tool() {
    if !have_tools(&[
        "mke2fs",
        "zstd",
        "xz",
        "gzip",
        "simg2img",
        "bmaptool",
        "sha256sum",
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), "raw,qcow2,raw.zst,raw.xz,raw.gz,simg");
    let raw = fs::read(out.join("fmt.raw")).unwrap();
    assert_eq!(raw.len(), 48 << 20);

    for (file, tool) in [
        ("fmt.raw.zst", "zstd"),
        ("fmt.raw.xz", "xz"),
        ("fmt.raw.gz", "gzip"),
    ] {
        let back = run(Command::new(tool).arg("-dc").arg(out.join(file)));
        assert!(back == raw, "{tool} -d of {file} is not the raw image");
    }

    let back = dir.path().join("simg.raw");
    run(Command::new("simg2img")
        .arg(out.join("fmt.simg"))
        .arg(&back));
    assert!(
        fs::read(&back).unwrap() == raw,
        "simg2img differs from the raw image"
    );

    // bmaptool finds fmt.raw.bmap for the raw and for a compressed raw.
    for (file, copy) in [("fmt.raw", "bmap.raw"), ("fmt.raw.zst", "bmap-zst.raw")] {
        let dest = dir.path().join(copy);
        run(Command::new("bmaptool")
            .arg("copy")
            .arg(out.join(file))
            .arg(&dest));
        assert!(
            fs::read(&dest).unwrap() == raw,
            "bmaptool copy {file} differs"
        );
    }

    // SHA256SUMS: every other file of the directory, and they check.
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split_once("  ").unwrap().1)
        .collect();
    listed.sort();
    let mut on_disk: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
    assert!(on_disk.iter().any(|n| n == "manifest.json"));
    assert!(on_disk.iter().any(|n| n == "fmt.raw.bmap"));
    run(Command::new("sha256sum")
        .arg("-c")
        .arg("--strict")
        .arg("SHA256SUMS")
        .current_dir(&out));

    // sparse = false: env (all zeros) is mapped, env2 (all zeros) is not.
    assert!(raw[ENV.0 as usize..ENV2.1 as usize].iter().all(|&b| b == 0));
    let ranges = bmap_ranges(&fs::read_to_string(out.join("fmt.raw.bmap")).unwrap());
    for block in ENV.0 / 4096..ENV.1 / 4096 {
        assert!(
            covered(&ranges, block),
            "env block {block} not mapped: {ranges:?}"
        );
    }
    for block in ENV2.0 / 4096..ENV2.1 / 4096 {
        assert!(
            !covered(&ranges, block),
            "env2 block {block} mapped: {ranges:?}"
        );
    }
    let chunks = simg_chunks(&fs::read(out.join("fmt.simg")).unwrap());
    let kind_at = |block: u64| {
        chunks
            .iter()
            .find(|&&(_, first, n)| first <= block && block < first + n)
            .unwrap()
            .0
    };
    assert_eq!(kind_at(ENV.0 / 4096), 0xcac2, "env is a FILL chunk");
    assert_eq!(kind_at(ENV.1 / 4096 - 1), 0xcac2);
    assert_eq!(kind_at(ENV2.0 / 4096), 0xcac3, "env2 is DONT_CARE");
}

/// Only compressed formats: no raw on disk, the bmap still beside them,
/// and no start_vm.sh (QEMU cannot open a compressed raw).
#[test]
fn compressed_only_writes_no_raw() {
    if !have_tools(&["mke2fs", "zstd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), "raw.zst");
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["SHA256SUMS", "fmt.raw.bmap", "fmt.raw.zst", "manifest.json"]
    );
}

/// Two builds of the same inputs give the same bytes in every format.
#[test]
fn every_format_is_reproducible() {
    if !have_tools(&["mke2fs"]) {
        return;
    }
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let formats = "raw.zst,raw.xz,raw.gz,simg";
    let (oa, ob) = (build(a.path(), formats), build(b.path(), formats));
    let sums = |d: &Path| fs::read_to_string(d.join("SHA256SUMS")).unwrap();
    let (sa, sb) = (sums(&oa), sums(&ob));
    for line in sa.lines().filter(|l| !l.ends_with("manifest.json")) {
        assert!(
            sb.contains(line),
            "{line} differs between two builds:\n{sa}\n{sb}"
        );
    }
}
