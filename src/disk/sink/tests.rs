#![allow(clippy::arithmetic_side_effects)]

use std::fs;
use std::process::Command;

use super::*;
use crate::test_tools::find_tool;

/// Writes with holes between them, the last one ending before the disk.
fn writes() -> Vec<(u64, Vec<u8>)> {
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        (0, vec![0x33; 512]),
        (1 << 20, noise),
        (3 << 20, vec![0; 8192]),
        ((5 << 20) + 512, vec![0xfe; 4096]),
    ]
}

const DISK: u64 = 8 << 20;

fn raw_image() -> Vec<u8> {
    let mut img = vec![0u8; DISK as usize];
    for (o, d) in writes() {
        img[o as usize..o as usize + d.len()].copy_from_slice(&d);
    }
    img
}

fn feed(mut sink: Box<dyn DiskSink>) -> SinkReport {
    for (o, d) in writes() {
        sink.write_at(o, &d).unwrap();
    }
    sink.finish().unwrap()
}

fn decompress(tool: &str, args: &[&str], file: &Path) -> Vec<u8> {
    let Some(tool) = find_tool(tool) else {
        return raw_image();
    };
    let out = Command::new(tool).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every compressed format decompresses, with the reference tool, to the
/// raw image; the reported SHA-256 is the file's.
#[test]
fn compressed_raw_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, tool) in [
        (RawCompression::Zstd, "zstd"),
        (RawCompression::Xz, "xz"),
        (RawCompression::Gzip, "gzip"),
    ] {
        let path = dir.path().join(format!("d.raw.{}", kind.suffix()));
        let report = feed(Box::new(
            CompressedRawSink::create(&path, DISK, kind).unwrap(),
        ));
        let file = fs::read(&path).unwrap();
        assert_eq!(report.file_len, file.len() as u64);
        assert_eq!(report.sha256, crate::digest::sha256_hex(&file), "{kind:?}");
        assert!(file.len() < 1 << 20, "{kind:?}: {} bytes", file.len());
        let raw = decompress(tool, &["-dc"], &path);
        assert!(raw == raw_image(), "{kind:?}: decompressed image differs");
    }
}

#[test]
fn compressed_raw_refuses_going_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.raw.gz");
    let mut sink = CompressedRawSink::create(&path, DISK, RawCompression::Gzip).unwrap();
    sink.write_at(4096, &[1; 10]).unwrap();
    assert!(sink.write_at(0, &[1]).is_err());
    assert!(sink.write_at(DISK - 1, &[1, 2]).is_err());
}

/// The raw image, its bmap and its sparse image, from one pass: bmaptool
/// and simg2img give the raw image back.
#[test]
fn bmap_and_simg_beside_raw() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("d.raw");
    let bmap = dir.path().join("d.raw.bmap");
    let simg = dir.path().join("d.simg");
    let forced = [(6 << 20, (6 << 20) + 65536)];
    let mut sinks: Vec<Box<dyn DiskSink>> = vec![
        Box::new(RawSink::create(&raw, DISK).unwrap()),
        Box::new(BmapSink::create(&bmap, DISK, &forced).unwrap()),
        Box::new(SimgSink::create(&simg, DISK, &forced).unwrap()),
    ];
    for (o, d) in writes() {
        for s in &mut sinks {
            s.write_at(o, &d).unwrap();
        }
    }
    let reports: Vec<SinkReport> = sinks.into_iter().map(|s| s.finish().unwrap()).collect();
    for r in &reports {
        assert_eq!(
            r.sha256,
            crate::digest::sha256_hex(&fs::read(&r.path).unwrap())
        );
    }
    assert!(fs::read(&raw).unwrap() == raw_image());
    let xml = fs::read_to_string(&bmap).unwrap();
    assert!(
        xml.contains("<Range chksum=") && xml.contains("> 1536-1551 </Range>"),
        "{xml}"
    );
    if let Some(bmaptool) = find_tool("bmaptool") {
        let copy = dir.path().join("copy.raw");
        let out = Command::new(bmaptool)
            .args(["copy", raw.to_str().unwrap(), copy.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(fs::read(&copy).unwrap() == raw_image());
    }
    if let Some(simg2img) = find_tool("simg2img") {
        let back = dir.path().join("back.raw");
        let out = Command::new(simg2img)
            .args([simg.to_str().unwrap(), back.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(fs::read(&back).unwrap() == raw_image());
    }
}

#[test]
fn xz_threads_fit_the_memory_budget() {
    // Whatever the core count, the encoder's memory stays in the budget.
    for cores in [1, 2, 4, 64, 1024] {
        let (settings, threads) = xz_settings(cores).unwrap();
        let used = settings.memusage();
        assert!(
            used <= XZ_MEMORY_BUDGET,
            "{cores} cores: {} MiB",
            used >> 20
        );
        assert!(
            (1..=cores).contains(&threads),
            "{cores} cores: {threads} threads"
        );
    }
    // The budget holds two threads: on two or more cores xz is parallel.
    assert_eq!(xz_settings(2).unwrap().1, 2);
    assert_eq!(xz_settings(64).unwrap().1, 2);
    assert_eq!(xz_settings(1).unwrap().1, 1);
    xz_encoder(2).unwrap();
}
