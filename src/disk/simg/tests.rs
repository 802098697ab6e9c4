#![allow(clippy::arithmetic_side_effects)]

use std::fs;
use std::io::Cursor;
use std::process::Command;

use super::*;
use crate::test_tools::find_tool;

fn write(size: u64, writes: &[(u64, Vec<u8>)], forced: &[(u64, u64)]) -> (Vec<u8>, SimgStats) {
    let mut w = SimgWriter::new(Cursor::new(Vec::new()), size, forced).unwrap();
    for (o, d) in writes {
        w.write_at(*o, d).unwrap();
    }
    let (cur, stats) = w.finish().unwrap();
    (cur.into_inner(), stats)
}

fn raw_image(size: u64, writes: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut img = vec![0u8; size as usize];
    for (o, d) in writes {
        img[*o as usize..*o as usize + d.len()].copy_from_slice(d);
    }
    img
}

/// Image size, writes at offsets, forced ranges.
type Sample = (u64, Vec<(u64, Vec<u8>)>, Vec<(u64, u64)>);

fn sample() -> Sample {
    let pattern: Vec<u8> = [0xde, 0xad, 0xbe, 0xef].repeat(2048); // two fill blocks
    let noise: Vec<u8> = (0..3 * 4096u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let writes = vec![
        (0, vec![0x55; 100]),
        (8192, noise),
        (5 * 4096, pattern),
        (100 * 4096, vec![9; 4096]),
    ];
    (128 * 4096, writes, vec![(40 * 4096, 48 * 4096)])
}

#[test]
fn chunks_and_header() {
    let (size, writes, forced) = sample();
    let (file, stats) = write(size, &writes, &forced);
    assert_eq!(&file[..4], &0xed26_ff3au32.to_le_bytes());
    assert_eq!(stats.block_size, 4096);
    assert_eq!(stats.total_blocks, 128);
    // raw(0) dc(1) raw(2-4) fill(5-6) dc(7-39) fill 0 (40-47, forced)
    // dc(48-99) fill 9 (100) dc(101-127)
    assert_eq!(stats.chunks, 9);
    assert_eq!(stats.raw_blocks, 4);
    assert_eq!(stats.fill_blocks, 11);
    assert_eq!(
        stats.raw_blocks + stats.fill_blocks + stats.dont_care_blocks,
        128
    );
    assert_eq!(stats.file_len, file.len() as u64);
}

#[test]
fn refuses_partial_sectors() {
    assert!(matches!(
        SimgWriter::new(Cursor::new(Vec::new()), 1000, &[]),
        Err(SimgError::Size(1000))
    ));
    // 512-byte blocks when the size is not a multiple of 4096.
    let (_, stats) = write(3 * 512, &[(512, vec![1; 512])], &[]);
    assert_eq!(stats.block_size, 512);
    assert_eq!(stats.total_blocks, 3);
}

/// simg2img turns it back into the raw image, byte for byte.
#[test]
fn simg2img_round_trip() {
    let Some(simg2img) = find_tool("simg2img") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (size, writes, forced) = sample();
    for (name, size, writes) in [
        ("sample", size, writes.clone()),
        (
            "sectors",
            7 * 512,
            vec![(512, vec![3; 1024]), (3072, vec![0xff; 512])],
        ),
        ("empty", 64 * 4096, vec![]),
    ] {
        let (file, _) = write(size, &writes, &forced_for(name, &forced));
        let simg = dir.path().join(format!("{name}.simg"));
        let raw = dir.path().join(format!("{name}.raw"));
        fs::write(&simg, &file).unwrap();
        let out = Command::new(&simg2img)
            .args([simg.to_str().unwrap(), raw.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(fs::read(&raw).unwrap(), raw_image(size, &writes), "{name}");
    }
}

fn forced_for(name: &str, forced: &[(u64, u64)]) -> Vec<(u64, u64)> {
    if name == "sample" {
        forced.to_vec()
    } else {
        Vec::new()
    }
}
