#![allow(clippy::arithmetic_side_effects)]

use std::fs;
use std::process::Command;

use super::*;
use crate::test_tools::find_tool;

/// A disk with data, holes, a forced zero range and a short tail.
/// Image size, writes at offsets, forced ranges.
type Sample = (u64, Vec<(u64, Vec<u8>)>, Vec<(u64, u64)>);

fn sample() -> Sample {
    let size = 10 * 4096 + 1536; // not a whole number of 4 KiB blocks
    let writes = vec![
        (0, vec![0xaa; 512]),                                // block 0, partly
        (4096, vec![1; 8192]),                               // blocks 1-2
        (4 * 4096 + 100, vec![0; 4000]),                     // zeros: not mapped
        (9 * 4096, [vec![0; 4096], vec![7; 1536]].concat()), // zero block 9, tail 10
    ];
    let forced = vec![(6 * 4096, 8 * 4096)]; // blocks 6-7
    (size, writes, forced)
}

fn build(size: u64, writes: &[(u64, Vec<u8>)], forced: &[(u64, u64)]) -> Bmap {
    let mut b = BmapBuilder::new(size, forced).unwrap();
    for (o, d) in writes {
        b.write_at(*o, d).unwrap();
    }
    b.finish()
}

fn raw_image(size: u64, writes: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut img = vec![0u8; size as usize];
    for (o, d) in writes {
        img[*o as usize..*o as usize + d.len()].copy_from_slice(d);
    }
    img
}

#[test]
fn ranges_and_checksums() {
    let (size, writes, forced) = sample();
    let bmap = build(size, &writes, &forced);
    let img = raw_image(size, &writes);
    let spans: Vec<(u64, u64)> = bmap.ranges.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(spans, [(0, 2), (6, 7), (10, 10)]);
    assert_eq!(bmap.mapped_blocks, 6);
    assert_eq!(bmap.blocks_count, 11);
    assert_eq!(bmap.image_size, size);
    assert_eq!(bmap.mapped_bytes(), 5 * 4096 + 1536);
    for r in &bmap.ranges {
        let start = (r.first * 4096) as usize;
        let end = (((r.last + 1) * 4096) as usize).min(img.len());
        assert_eq!(
            r.sha256,
            crate::digest::sha256_hex(&img[start..end]),
            "{r:?}"
        );
    }
}

#[test]
fn file_checksum_is_of_the_text_with_zeros() {
    let (size, writes, forced) = sample();
    let xml = build(size, &writes, &forced).to_xml();
    let line = xml
        .lines()
        .find(|l| l.contains("BmapFileChecksum"))
        .unwrap();
    let sum = line.split_whitespace().nth(1).unwrap();
    assert_eq!(sum.len(), 64);
    let zeroed = xml.replace(sum, &"0".repeat(64));
    assert_eq!(crate::digest::sha256_hex(zeroed.as_bytes()), sum);
}

/// bmaptool copy accepts the map (it verifies the file checksum and every
/// range's) and reproduces the raw image; a wrong range checksum fails it.
#[test]
fn bmaptool_copies_with_it() {
    let Some(bmaptool) = find_tool("bmaptool") else {
        return;
    };
    let (size, writes, forced) = sample();
    let img = raw_image(size, &writes);
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    fs::write(&raw, &img).unwrap();
    let bmap = build(size, &writes, &forced);
    fs::write(dir.path().join("disk.raw.bmap"), bmap.to_xml()).unwrap();
    let copy = dir.path().join("copy.raw");
    let out = Command::new(&bmaptool)
        .args(["copy", raw.to_str().unwrap(), copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&copy).unwrap(), img);

    // A range whose bytes differ from its checksum is caught.
    let mut bad = img.clone();
    bad[4096 + 17] ^= 1;
    fs::write(&raw, &bad).unwrap();
    let out = Command::new(&bmaptool)
        .args(["copy", raw.to_str().unwrap(), copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "bmaptool must reject a corrupted range"
    );
}
