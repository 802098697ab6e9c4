//! Assembly tests: one pass into raw + qcow2, checked by qemu-img and sgdisk.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use super::{assemble, table_pieces, Content, Piece};
use crate::board::{load_board, BoardSearch};
use crate::disk::qcow2::Qcow2Options;
use crate::disk::sink::{DiskSink, Qcow2Sink, RawSink};
use crate::host::sparse::data_extents;
use crate::plan::{plan_board, Plan};
use crate::test_tools::have_tool;

fn qemu_plan() -> Plan {
    let search = BoardSearch {
        dirs: vec![crate::board::builtin_boards_dir()],
    };
    plan_board(&load_board("qemu-riscv64", &search).unwrap(), "test").unwrap()
}

/// A sparse "partition image" with data at a few offsets.
fn sparse_image(path: &Path, size: u64, marks: &[(u64, u8)]) {
    let mut file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    for &(offset, byte) in marks {
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(&vec![byte; 300_000]).unwrap();
    }
}

#[test]
fn one_pass_into_raw_and_qcow2_is_identical_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let plan = qemu_plan();
    let layout = &plan.layout;
    let esp = &layout.partitions[0];
    let root = &layout.partitions[1];
    let esp_img = dir.path().join("esp.img");
    let root_img = dir.path().join("root.img");
    sparse_image(&esp_img, esp.size, &[(0, 0xeb), (1 << 20, 0x11)]);
    // Data near the end of the root partition, right before the backup GPT.
    sparse_image(
        &root_img,
        root.size,
        &[(0, 0x53), (root.size - 300_000, 0x7f)],
    );
    let mut pieces = table_pieces(layout).unwrap();
    pieces.push(Piece {
        name: "esp".into(),
        offset: esp.start,
        room: esp.size,
        content: Content::File(esp_img),
    });
    pieces.push(Piece {
        name: "rootfs".into(),
        offset: root.start,
        room: root.size,
        content: Content::File(root_img),
    });

    let raw = dir.path().join("disk.raw");
    let qcow = dir.path().join("disk.qcow2");
    let mut sinks: Vec<Box<dyn DiskSink>> = vec![
        Box::new(RawSink::create(&raw, layout.disk_size).unwrap()),
        Box::new(Qcow2Sink::create(&qcow, layout.disk_size, Qcow2Options::default()).unwrap()),
    ];
    let report = assemble(layout.disk_size, pieces, &mut sinks).unwrap();
    let reports: Vec<_> = sinks.into_iter().map(|s| s.finish().unwrap()).collect();
    // 4 marks of 300,000 bytes + tables; extents are whole filesystem blocks.
    assert!(
        report.data_bytes >= 1_200_000 && report.data_bytes < 1_400_000,
        "{report:?}"
    );
    assert!(
        reports[0].bytes_written < 2 << 20,
        "raw stays sparse: {:?}",
        reports[0]
    );
    assert_eq!(fs::metadata(&raw).unwrap().len(), 10 << 30);

    // Partition bytes landed at their offsets.
    let mut file = File::open(&raw).unwrap();
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(root.end() - 1)).unwrap();
    file.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], 0x7f);

    if have_tool("qemu-img") {
        let check = Command::new("qemu-img")
            .args(["check", "-q"])
            .arg(&qcow)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
        let cmp = Command::new("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "qcow2"])
            .arg(&raw)
            .arg(&qcow)
            .status()
            .unwrap();
        assert!(cmp.success(), "qcow2 differs from raw");
    }
    if have_tool("sgdisk") {
        let out = Command::new("sgdisk").arg("-v").arg(&raw).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("No problems found"));
    }
}

#[test]
fn overrun_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("u-boot.itb");
    fs::write(&blob, vec![1u8; 5000]).unwrap();
    let raw = dir.path().join("disk.raw");
    let mut sinks: Vec<Box<dyn DiskSink>> = vec![Box::new(RawSink::create(&raw, 1 << 20).unwrap())];
    let pieces = vec![
        Piece {
            name: "blob 'u-boot.itb'".into(),
            offset: 0x1000,
            room: 4096,
            content: Content::File(blob),
        },
        Piece {
            name: "partition 1 'boot'".into(),
            offset: 0x2000,
            room: 0x1000,
            content: Content::Bytes(vec![2; 16]),
        },
    ];
    let err = assemble(1 << 20, pieces, &mut sinks)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "blob 'u-boot.itb': 5000 bytes do not fit the 4096 bytes of room at 0x1000 (over by 904)"
    );
    let report = sinks.pop().unwrap().finish().unwrap();
    assert_eq!(
        report.bytes_written, 0,
        "nothing written on a refused assembly"
    );
}

#[test]
fn collision_names_both_pieces() {
    let pieces = vec![
        Piece {
            name: "blob 'a'".into(),
            offset: 0,
            room: 100,
            content: Content::Bytes(vec![1; 100]),
        },
        Piece {
            name: "blob 'b'".into(),
            offset: 50,
            room: 10,
            content: Content::Bytes(vec![1; 10]),
        },
    ];
    let err = assemble(4096, pieces, &mut []).unwrap_err().to_string();
    assert_eq!(
        err,
        "blob 'a': 100 bytes at 0x0 collide with blob 'b' at 0x32"
    );
}

#[test]
fn data_extents_follow_holes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    sparse_image(&path, 64 << 20, &[(8 << 20, 1), (40 << 20, 2)]);
    let file = File::open(&path).unwrap();
    let extents = data_extents(&file, 64 << 20).unwrap();
    assert_eq!(extents.len(), 2, "{extents:?}");
    assert!(extents[0].0 <= 8 << 20 && extents[0].1 >= (8 << 20) + 300_000);
    assert!(extents[1].0 <= 40 << 20 && extents[1].1 >= (40 << 20) + 300_000);
}
