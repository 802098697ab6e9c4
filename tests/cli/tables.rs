//! Partition tables written from real board files, checked by the reference
//! tools (sgdisk -v, sfdisk -d), read back by the independent `gpt` crate,
//! and round-tripped through `mkimg inspect`.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use mkimg::board::load_board_file;
use mkimg::commands::plan::plan_rows;
use mkimg::disk::tables::write_tables;
use mkimg::host::loopdev::{LoopDevice, LoopOptions};
use mkimg::plan::{plan_board, Plan};

use crate::support::run::{mkimg, run_tool, stderr};
use crate::support::tools::{have_tool, have_tools, require_root};

/// A board copied into a temp dir with its blobs, planned, and its tables
/// written (blobs first) into a sparse image.
struct Written {
    _dir: tempfile::TempDir,
    image: PathBuf,
    plan: Plan,
    blobs: Vec<(u64, Vec<u8>)>,
}

fn blob_bytes(seed: u8) -> Vec<u8> {
    (0..64 * 1024u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn write_board(source: &Path) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let board_dir = dir.path().join("board");
    fs::create_dir(&board_dir).unwrap();
    fs::copy(source.join("board.toml"), board_dir.join("board.toml")).unwrap();
    for (i, name) in ["boot0.bin", "toc1.bin"].iter().enumerate() {
        fs::write(board_dir.join(name), blob_bytes(i as u8 + 1)).unwrap();
    }
    let board = load_board_file(&board_dir.join("board.toml")).unwrap();
    let plan = plan_board(&board, "test").unwrap_or_else(|e| panic!("{e}"));
    let image = dir.path().join("disk.img");
    let mut file = File::create(&image).unwrap();
    file.set_len(plan.layout.disk_size).unwrap();
    let mut blobs = Vec::new();
    for blob in &plan.layout.blobs {
        let mkimg::plan::BlobSource::File(path) = &blob.source else {
            panic!("{}: not a file blob", blob.name)
        };
        let data = fs::read(path).unwrap();
        file.seek(SeekFrom::Start(blob.offset)).unwrap();
        file.write_all(&data).unwrap();
        blobs.push((blob.offset, data));
    }
    write_tables(&plan.layout, &mut file).unwrap();
    drop(file);
    Written {
        _dir: dir,
        image,
        plan,
        blobs,
    }
}

fn test_board(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/boards")
        .join(name)
}

fn builtin_board(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("boards")
        .join(name)
}

/// The device the tools should read: the file itself, or a loop device for
/// 4096-byte sectors (sgdisk and sfdisk 2.38 assume 512 for plain files).
fn tool_target(w: &Written) -> Option<(String, Option<LoopDevice>)> {
    if w.plan.layout.sector_size == 512 {
        return Some((w.image.display().to_string(), None));
    }
    if !require_root("4096-byte sector tool checks (a loop device)") {
        return None;
    }
    let opts = LoopOptions {
        block_size: u32::try_from(w.plan.layout.sector_size).unwrap(),
        ..LoopOptions::default()
    };
    let dev = LoopDevice::attach(&w.image, &opts).unwrap();
    Some((dev.path().display().to_string(), Some(dev)))
}

fn check_sgdisk(target: &str, allow_gap_warnings: bool) {
    let text = run_tool("sgdisk", &["-v", target]);
    assert!(text.contains("No problems found"), "sgdisk -v:\n{text}");
    assert!(!text.contains("Caution"), "sgdisk -v:\n{text}");
    // Warnings are paragraphs; the only acceptable ones are about the gaps a
    // moved entry array leaves on purpose (room for boot-ROM blobs).
    for paragraph in text.split("\n\n").filter(|p| p.contains("Warning")) {
        let gap = paragraph.contains("Warning: There is a gap between the main");
        assert!(allow_gap_warnings && gap, "sgdisk -v warns:\n{text}");
    }
}

/// `sfdisk -d` lines for each partition: start, size, type, uuid, name.
fn check_sfdisk(target: &str, plan: &Plan) {
    let text = run_tool("sfdisk", &["-d", target]);
    let ss = plan.layout.sector_size;
    let has_gpt = plan.layout.gpt.is_some();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(lines.len(), plan.layout.partitions.len(), "{text}");
    for (line, part) in lines.iter().zip(&plan.layout.partitions) {
        let start = format!("start={:>12}", part.start / ss);
        let size = format!("size={:>12}", part.size / ss);
        assert!(line.contains(&start), "{line} lacks {start}");
        assert!(line.contains(&size), "{line} lacks {size}");
        if has_gpt {
            let type_guid = part.part_type.gpt.unwrap().to_string().to_uppercase();
            assert!(line.contains(&format!("type={type_guid}")), "{line}");
            let uuid = part.uuid.unwrap().to_string().to_uppercase();
            assert!(line.contains(&format!("uuid={uuid}")), "{line}");
            assert!(line.contains(&format!("name=\"{}\"", part.name)), "{line}");
        } else {
            let byte = part.part_type.mbr.unwrap();
            assert!(line.contains(&format!("type={byte:x}")), "{line}");
        }
    }
    if has_gpt {
        assert!(text.contains("label: gpt"), "{text}");
        let guid = plan
            .layout
            .gpt
            .as_ref()
            .unwrap()
            .disk_guid
            .to_string()
            .to_uppercase();
        assert!(text.contains(&format!("label-id: {guid}")), "{text}");
    } else {
        assert!(text.contains("label: dos"), "{text}");
        let sig = plan.layout.mbr_signature.unwrap();
        assert!(text.contains(&format!("label-id: {sig:#010x}")), "{text}");
    }
}

fn check_gpt_crate(w: &Written) {
    let Some(gpt_plan) = &w.plan.layout.gpt else {
        return;
    };
    let block = match w.plan.layout.sector_size {
        512 => gpt::disk::LogicalBlockSize::Lb512,
        _ => gpt::disk::LogicalBlockSize::Lb4096,
    };
    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(block)
        .open(&w.image)
        .unwrap();
    assert_eq!(disk.guid().to_string(), gpt_plan.disk_guid.to_string());
    let parts = disk.partitions();
    assert_eq!(parts.len(), w.plan.layout.partitions.len());
    let ss = w.plan.layout.sector_size;
    for part in &w.plan.layout.partitions {
        let found = &parts[&part.number];
        assert_eq!(found.first_lba, part.start / ss, "{}", part.name);
        assert_eq!(found.last_lba, part.end() / ss - 1, "{}", part.name);
        assert_eq!(found.name, part.name);
        assert_eq!(found.part_guid.to_string(), part.uuid.unwrap().to_string());
        assert_eq!(
            found.part_type_guid.guid.to_string(),
            part.part_type.gpt.unwrap().to_string()
        );
        assert_eq!(found.flags, part.attributes, "{}", part.name);
    }
    // The backup header is the very last sector.
    let mut file = File::open(&w.image).unwrap();
    file.seek(SeekFrom::Start(w.plan.layout.disk_size - ss))
        .unwrap();
    let mut sig = [0u8; 8];
    file.read_exact(&mut sig).unwrap();
    assert_eq!(&sig, b"EFI PART", "backup header is not the last sector");
    assert_eq!(gpt_plan.backup_header_lba, w.plan.layout.disk_sectors() - 1);
}

fn check_blobs(w: &Written) {
    let mut file = File::open(&w.image).unwrap();
    for (offset, data) in &w.blobs {
        let mut found = vec![0u8; data.len()];
        file.seek(SeekFrom::Start(*offset)).unwrap();
        file.read_exact(&mut found).unwrap();
        assert!(found == *data, "blob at {offset:#x} was overwritten");
    }
}

/// `mkimg inspect --json` gives back the plan's regions, starts, ends, types and GUIDs.
fn check_inspect(w: &Written) {
    let ss = w.plan.layout.sector_size.to_string();
    let image = w.image.to_str().unwrap();
    let out = mkimg(&["inspect", image, "--sector-size", &ss, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = json["regions"].as_array().unwrap();
    let planned: Vec<_> = plan_rows(&w.plan)
        .into_iter()
        .filter(|r| r.type_ != "raw blob")
        .collect();
    assert_eq!(found.len(), planned.len(), "{json:#}");
    for (f, p) in found.iter().zip(&planned) {
        assert_eq!(f["start"], p.start, "{}", p.region);
        assert_eq!(f["end"], p.end, "{}", p.region);
        assert_eq!(f["type"], p.type_.as_str(), "{}", p.region);
        let uuid = f["uuid"].as_str().unwrap();
        assert!(
            p.uuid.starts_with(uuid),
            "{}: {uuid} vs {}",
            p.region,
            p.uuid
        );
        if w.plan.layout.gpt.is_some() {
            assert_eq!(f["region"], p.region.as_str());
        }
    }
    assert_eq!(
        json["table"],
        serde_json::to_value(w.plan.layout.table).unwrap()
    );
    // The same tables read through a qcow2 (made by qemu-img, the oracle).
    if have_tool("qemu-img") {
        let qcow2 = w.image.with_extension("qcow2");
        let status = Command::new("qemu-img")
            .args(["convert", "-O", "qcow2", image, qcow2.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = mkimg(&[
            "inspect",
            qcow2.to_str().unwrap(),
            "--sector-size",
            &ss,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let via_qcow2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            via_qcow2["regions"], json["regions"],
            "qcow2 inspect differs from raw"
        );
        assert_eq!(via_qcow2["size"], json["size"]);
    }
    // The text form prints the same table header as `mkimg plan`.
    let text = mkimg(&["inspect", image, "--sector-size", &ss]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("REGION"));
}

fn check_all(w: &Written, allow_gap_warning: bool) {
    check_blobs(w);
    check_gpt_crate(w);
    check_inspect(w);
    if !have_tools(&["sgdisk", "sfdisk"]) {
        return;
    }
    if let Some((target, _loop)) = tool_target(w) {
        if w.plan.layout.gpt.is_some() {
            check_sgdisk(&target, allow_gap_warning);
        }
        check_sfdisk(&target, &w.plan);
    }
}

#[test]
fn qemu_riscv64_table() {
    check_all(&write_board(&builtin_board("qemu-riscv64")), false);
}

#[test]
fn qemu_aarch64_table() {
    check_all(&write_board(&builtin_board("qemu-aarch64")), false);
}

#[test]
fn moved_entry_array_with_blobs() {
    let w = write_board(&test_board("gpt-moved-array"));
    assert_eq!(w.plan.layout.gpt.as_ref().unwrap().entries_lba, 2048);
    // sgdisk warns about the gap before a moved array; that gap is the point.
    check_all(&w, true);
}

#[test]
fn four_k_sectors() {
    let w = write_board(&test_board("gpt-4k"));
    assert_eq!(w.plan.layout.sector_size, 4096);
    check_all(&w, false);
}

#[test]
fn mbr_four_partitions_active() {
    let w = write_board(&test_board("mbr-four"));
    check_all(&w, false);
    if have_tool("sfdisk") {
        let text = run_tool("sfdisk", &["-d", w.image.to_str().unwrap()]);
        let boot = text
            .lines()
            .find(|l| l.contains("start=       40960"))
            .unwrap();
        assert!(boot.contains("bootable"), "{text}");
        assert_eq!(text.matches("bootable").count(), 1, "{text}");
    }
}

#[test]
fn hybrid_mbr() {
    let w = write_board(&test_board("hybrid"));
    check_all(&w, false);
    let out = mkimg(&["inspect", w.image.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["table"], "hybrid");
    assert_eq!(json["mbr_signature"], 0xcafe0001u32);
    // LBA 0 mirrors esp (0xef, active), data (0x0c), rootfs (0x83), then 0xEE.
    let mut mbr = [0u8; 512];
    File::open(&w.image).unwrap().read_exact(&mut mbr).unwrap();
    let entry = |i: usize| &mbr[446 + 16 * i..446 + 16 * (i + 1)];
    assert_eq!((entry(0)[0], entry(0)[4]), (0x80, 0xef));
    assert_eq!((entry(1)[0], entry(1)[4]), (0x00, 0x0c));
    assert_eq!((entry(2)[0], entry(2)[4]), (0x00, 0x83));
    assert_eq!(entry(3)[4], 0xee);
    assert_eq!(u32::from_le_bytes(entry(3)[8..12].try_into().unwrap()), 1);
    assert_eq!(
        u32::from_le_bytes(entry(3)[12..16].try_into().unwrap()),
        2047
    );
}

/// A crafted GPT whose only entry ends at LBA 2^64 - 1 (both copies agree,
/// every CRC is right): `mkimg inspect` names the entry and exits 1.
/// Before: the reader accepted it and the row arithmetic panicked
/// ("attempt to add with overflow", exit 101) in a debug build.
#[test]
fn inspect_refuses_a_crafted_entry_past_the_disk() {
    use mkimg::disk::gpt::{write_gpt, GptDisk, GptPartition};
    use mkimg::disk::mbr::{write_mbr, MbrTable};
    use uuid::Uuid;

    const SECTORS: u64 = 2048;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("evil.img");
    let mut disk = GptDisk::with_layout(512, SECTORS, Uuid::from_u128(1), 2, 128);
    disk.partitions.push(GptPartition {
        type_guid: Uuid::from_u128(0x0FC6_3DAF_8483_4772_8E79_3D69_D847_7DE4),
        part_guid: Uuid::from_u128(2),
        first_lba: 100,
        last_lba: 200,
        attributes: 0,
        name: "evil".into(),
    });
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    file.set_len(SECTORS * 512).unwrap();
    write_mbr(&MbrTable::protective(SECTORS), SECTORS, &mut file).unwrap();
    write_gpt(&disk, &mut file).unwrap();
    let mut at = |offset: u64, bytes: Option<&[u8]>, len: usize| {
        file.seek(SeekFrom::Start(offset)).unwrap();
        match bytes {
            Some(bytes) => {
                file.write_all(bytes).unwrap();
                Vec::new()
            }
            None => {
                let mut buf = vec![0u8; len];
                file.read_exact(&mut buf).unwrap();
                buf
            }
        }
    };
    // Entry 1's last LBA (byte 40 of the entry) in both arrays.
    for array_lba in [2, disk.backup_entries_lba()] {
        at(array_lba * 512 + 40, Some(&u64::MAX.to_le_bytes()), 0);
    }
    let crc = crc32fast::hash(&at(2 * 512, None, 128 * 128));
    for header_lba in [1, SECTORS - 1] {
        let mut header = at(header_lba * 512, None, 92);
        header[88..92].copy_from_slice(&crc.to_le_bytes());
        header[16..20].fill(0);
        let header_crc = crc32fast::hash(&header);
        header[16..20].copy_from_slice(&header_crc.to_le_bytes());
        at(header_lba * 512, Some(&header), 0);
    }
    drop(file);

    let out = mkimg(&["inspect", image.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("GPT entry 1 (\"evil\") spans LBA 100..=18446744073709551615"),
        "{err}"
    );
}

/// `--sector-size` multiplied every LBA of an MBR-only image: 2^54 made
/// `mkimg inspect` panic with a multiply overflow (exit 101). Only the two
/// sizes disks use are accepted now.
#[test]
fn inspect_accepts_only_real_sector_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("mbr.img");
    fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let image = image.to_str().unwrap();
    for bad in ["18014398509481984", "0", "513", "4k"] {
        let out = crate::mkimg(&["inspect", image, "--sector-size", bad]);
        let text = crate::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {text}");
        assert!(text.contains("use 512 or 4096"), "{bad}: {text}");
    }
}
