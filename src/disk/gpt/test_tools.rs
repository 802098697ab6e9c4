//! Test helpers shared by the GPT and MBR oracle tests: running the
//! reference tools (found through `crate::test_tools`), sparse image files
//! and deterministic blobs. A 4Kn image is read through the library's own
//! loop device guard, `crate::host::loopdev::LoopDevice`. Test-only;
//! library code never spawns processes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::test_tools::find_tool;

/// Runs `tool args…` and returns stdout + stderr, panicking with both when
/// it exits non-zero.
pub(crate) fn run_tool(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{text}",
        tool.display(),
        out.status
    );
    text
}

/// `sgdisk -v` must say "No problems found" and give no warning or caution.
pub(crate) fn assert_sgdisk_clean(target: &Path) {
    assert_sgdisk_clean_except(target, &[]);
}

/// Like [`assert_sgdisk_clean`], but a warning or caution whose first line
/// contains one of `allowed` is accepted.
pub(crate) fn assert_sgdisk_clean_except(target: &Path, allowed: &[&str]) {
    let Some(sgdisk) = find_tool("sgdisk") else {
        return;
    };
    let text = run_tool(&sgdisk, &["-v", target.to_str().unwrap()]);
    assert!(
        text.contains("No problems found"),
        "sgdisk -v {}:\n{text}",
        target.display()
    );
    for line in text.lines() {
        let flagged = ["Warning", "Caution", "Problem:"]
            .iter()
            .any(|w| line.contains(w));
        let excused = allowed.iter().any(|a| line.contains(a));
        assert!(
            !flagged || excused,
            "sgdisk -v {} complains:\n{text}",
            target.display()
        );
    }
}

/// `sfdisk -d` of an image file or block device, with its path replaced by
/// IMG (and a loop device's partitions `/dev/loopNpK` shown as `IMGK`).
pub(crate) fn sfdisk_dump(target: &Path) -> Option<String> {
    let sfdisk = find_tool("sfdisk")?;
    let path = target.to_str().unwrap();
    let text = run_tool(&sfdisk, &["-d", path]);
    Some(text.replace(&format!("{path}p"), path).replace(path, "IMG"))
}

/// A sparse file of `bytes` bytes, opened read-write.
pub(crate) fn create_sparse(dir: &Path, name: &str, bytes: u64) -> (PathBuf, File) {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.set_len(bytes).unwrap();
    (path, file)
}

/// `len` deterministic, non-repeating-looking bytes (xorshift64*).
pub(crate) fn make_blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

pub(crate) fn write_at(file: &mut File, offset: u64, bytes: &[u8]) {
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
}

pub(crate) fn read_at(file: &mut File, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut buf).unwrap();
    buf
}
