//! GPT tests. Oracles: `sgdisk -v`, `sfdisk -d`, the `gpt` crate as an
//! independent reader, and byte-for-byte comparison with a table `sgdisk`
//! built itself. Images are sparse temp files.

use std::fs::File;
use std::io::Cursor;
use std::ops::Range;
use std::path::Path;

use uuid::{uuid, Uuid};

use super::raw::{RawEntry, RawHeader};
use super::test_tools::{
    assert_sgdisk_clean, assert_sgdisk_clean_except, create_sparse, make_blob, read_at, run_tool,
    sfdisk_dump, write_at,
};
use super::{read_gpt, write_gpt, GptDisk, GptError, GptPartition};
use crate::disk::mbr::{write_mbr, MbrTable};
use crate::host::loopdev::{LoopDevice, LoopOptions};
use crate::test_tools::{find_tool, require_root};

pub(crate) const ESP_TYPE: Uuid = uuid!("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
pub(crate) const LINUX_TYPE: Uuid = uuid!("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

fn part(type_guid: Uuid, n: u128, first: u64, last: u64, name: &str) -> GptPartition {
    GptPartition {
        type_guid,
        part_guid: Uuid::from_u128(0x5EED_0000_0000_4000_8000_0000_0000_0000 | n),
        first_lba: first,
        last_lba: last,
        attributes: 0,
        name: name.to_string(),
    }
}

/// Last LBA of a partition that ends at `last_usable` aligned down to `align`.
fn aligned_end(last_usable: u64, align: u64) -> u64 {
    (last_usable + 1) / align * align - 1
}

/// Scenario 1, the qemu board: 10 GiB, ESP at 2 MiB (1 GiB, legacy BIOS
/// bootable), rootfs from 1026 MiB to the last usable MiB.
pub(crate) fn qemu_disk() -> GptDisk {
    let mut disk = GptDisk::with_layout(
        512,
        10 << 21,
        uuid!("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        2,
        128,
    );
    let mut esp = part(ESP_TYPE, 1, 4096, 4096 + (1 << 21) - 1, "esp");
    esp.attributes = LEGACY_BIOS_BOOTABLE;
    let end = aligned_end(disk.last_usable_lba, 2048);
    disk.partitions = vec![esp, part(LINUX_TYPE, 2, 1026 * 2048, end, "rootfs")];
    disk
}

/// Scenario 2, Allwinner style: array at 1 MiB, blobs at 8 KiB and at
/// sector 32800, partitions from 20 MiB.
fn moved_array_disk() -> GptDisk {
    let mut disk = GptDisk::with_layout(
        512,
        256 << 11,
        uuid!("a1a2a3a4-b1b2-c1c2-d1d2-e1e2e3e4e5e6"),
        2048,
        128,
    );
    let end = aligned_end(disk.last_usable_lba, 2048);
    disk.partitions = vec![
        part(ESP_TYPE, 3, 40960, 40960 + (64 << 11) - 1, "boot"),
        part(LINUX_TYPE, 4, 40960 + (64 << 11), end, "rootfs"),
    ];
    disk
}
const BLOBS: [(u64, usize); 2] = [(8 << 10, 64 << 10), (32800 * 512, 64 << 10)];

/// Scenario 3: 4096-byte sectors, 64 MiB.
fn four_k_disk() -> GptDisk {
    let mut disk = GptDisk::with_layout(
        4096,
        16384,
        uuid!("44444444-0000-4000-8000-000000004096"),
        2,
        128,
    );
    let end = aligned_end(disk.last_usable_lba, 256);
    disk.partitions = vec![
        part(ESP_TYPE, 5, 256, 256 + 8192 - 1, "esp"),
        part(LINUX_TYPE, 6, 256 + 8192, end, "rootfs"),
    ];
    disk
}

/// 8 MiB, two partitions: the base for the must-fail tests.
fn small_disk() -> GptDisk {
    let mut disk = GptDisk::with_layout(512, 16384, Uuid::from_u128(7), 2, 128);
    disk.partitions = vec![
        part(ESP_TYPE, 7, 2048, 4095, "a"),
        part(LINUX_TYPE, 8, 4096, 16350, "b"),
    ];
    disk
}

/// Writes protective MBR + GPT into a new sparse file.
pub(crate) fn write_image(dir: &Path, name: &str, disk: &GptDisk) -> (std::path::PathBuf, File) {
    let (path, mut file) = create_sparse(dir, name, disk.disk_sectors * disk.sector_size);
    write_mbr(
        &MbrTable::protective(disk.disk_sectors),
        disk.disk_sectors,
        &mut file,
    )
    .unwrap();
    write_gpt(disk, &mut file).unwrap();
    (path, file)
}

/// The `sfdisk -d` text this disk must produce.
pub(crate) fn expected_sfdisk(disk: &GptDisk) -> String {
    let mut s = format!(
        "label: gpt\nlabel-id: {}\ndevice: IMG\nunit: sectors\nfirst-lba: {}\nlast-lba: {}\nsector-size: {}\n\n",
        disk.disk_guid.hyphenated().encode_upper(&mut Uuid::encode_buffer()),
        disk.first_usable_lba,
        disk.last_usable_lba,
        disk.sector_size
    );
    for (i, p) in disk.partitions.iter().enumerate() {
        s += &format!(
            "IMG{} : start={:>12}, size={:>12}, type={}, uuid={}, name=\"{}\"",
            i + 1,
            p.first_lba,
            p.last_lba - p.first_lba + 1,
            p.type_guid.hyphenated().to_string().to_uppercase(),
            p.part_guid.hyphenated().to_string().to_uppercase(),
            p.name
        );
        if p.attributes == LEGACY_BIOS_BOOTABLE {
            s += ", attrs=\"LegacyBIOSBootable\"";
        }
        s += "\n";
    }
    s
}

/// The `gpt` crate must find the same partitions in both arrays, both
/// headers valid, the backup header in the last sector.
pub(crate) fn assert_gpt_crate_reads(path: &Path, disk: &GptDisk) {
    let lb = match disk.sector_size {
        512 => gpt::disk::LogicalBlockSize::Lb512,
        _ => gpt::disk::LogicalBlockSize::Lb4096,
    };
    let g = gpt::GptConfig::new()
        .writable(false)
        .only_valid_headers(true)
        .logical_block_size(lb)
        .open(path)
        .expect("gpt crate opens the image");
    let primary = g.primary_header().unwrap().clone();
    let backup = g.backup_header().unwrap().clone();
    assert_eq!(*g.guid(), disk.disk_guid);
    assert_eq!(primary.part_start, disk.entries_lba);
    assert_eq!(
        backup.current_lba,
        disk.disk_sectors - 1,
        "backup header is the last sector"
    );
    assert_eq!(backup.part_start, disk.backup_entries_lba());
    assert_eq!(
        (primary.first_usable, primary.last_usable),
        (disk.first_usable_lba, disk.last_usable_lba)
    );
    let mut file = File::open(path).unwrap();
    for header in [&primary, &backup] {
        let parts = gpt::partition::file_read_partitions(&mut file, header, lb).unwrap();
        assert_eq!(parts.len(), disk.partitions.len());
        for (i, want) in disk.partitions.iter().enumerate() {
            let got = &parts[&(i as u32 + 1)];
            assert_eq!(got.part_type_guid.guid, want.type_guid);
            assert_eq!(got.part_guid, want.part_guid);
            assert_eq!(
                (got.first_lba, got.last_lba),
                (want.first_lba, want.last_lba)
            );
            assert_eq!(got.flags, want.attributes);
            assert_eq!(got.name, want.name);
        }
    }
}

// ---------------------------------------------------------------- unit tests

#[test]
fn crc32_is_the_iso_hdlc_polynomial() {
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

#[test]
fn header_crc_matches_python_zlib() {
    // Expected values from Python's struct + zlib.crc32 over the same
    // fields (an independent encoder): primary 0x9b833313, backup 0x240de0be,
    // empty 128-entry array 0xab54d286.
    let disk = GptDisk::with_layout(
        512,
        10 << 21,
        uuid!("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        2,
        128,
    );
    let array_crc = crc32fast::hash(&disk.encode_entries().unwrap());
    assert_eq!(array_crc, 0xab54_d286);
    let primary = disk.header(false, array_crc).encode();
    assert_eq!(primary[16..20], 0x9b83_3313u32.to_le_bytes());
    assert_eq!(primary[0..8], *b"EFI PART");
    let backup = disk.header(true, array_crc).encode();
    assert_eq!(backup[16..20], 0x240d_e0beu32.to_le_bytes());
    assert_eq!(
        RawHeader::decode(&backup).unwrap(),
        disk.header(true, array_crc)
    );
}

#[test]
fn names_are_utf16le_including_non_ascii() {
    let mut p = part(LINUX_TYPE, 1, 34, 100, "é😀");
    let bytes = p.to_raw(1).unwrap().encode();
    assert_eq!(
        bytes[56..64],
        [0xE9, 0x00, 0x3D, 0xD8, 0x00, 0xDE, 0x00, 0x00]
    );
    assert_eq!(
        GptPartition::from_raw(1, &RawEntry::decode(&bytes))
            .unwrap()
            .name,
        "é😀"
    );
    p.name = "é".repeat(36);
    let raw = RawEntry::decode(&p.to_raw(1).unwrap().encode());
    assert_eq!(GptPartition::from_raw(1, &raw).unwrap().name, p.name);
}

#[test]
fn layout_helpers() {
    let disk = qemu_disk();
    assert_eq!(disk.entry_array_sectors(), 32);
    assert_eq!(disk.backup_header_lba(), 20971519);
    assert_eq!(disk.backup_entries_lba(), 20971487);
    assert_eq!(
        (disk.first_usable_lba, disk.last_usable_lba),
        (34, 20971486)
    );
    let regions = moved_array_disk().regions().unwrap();
    let names: Vec<&str> = regions.iter().map(|r| r.0).collect();
    assert_eq!(
        names,
        [
            "primary GPT header",
            "primary GPT entries",
            "backup GPT entries",
            "backup GPT header"
        ]
    );
    assert_eq!(regions[0].1, 512..1024);
    assert_eq!(regions[1].1, 1 << 20..(1 << 20) + 16384);
    assert_eq!(regions[3].1, (256 << 20) - 512..256 << 20);
    assert_eq!(four_k_disk().entry_array_sectors(), 4);
}

#[test]
fn writes_nothing_outside_its_regions() {
    // 8 MiB, array moved to LBA 2048, pre-filled with 0xA5.
    let mut disk = GptDisk::with_layout(512, 16384, Uuid::from_u128(9), 2048, 128);
    disk.partitions = vec![part(LINUX_TYPE, 9, 4096, 8191, "x")];
    let mut image = Cursor::new(vec![0xA5u8; 16384 * 512]);
    write_gpt(&disk, &mut image).unwrap();
    let image = image.into_inner();
    let mut regions: Vec<Range<u64>> = disk.regions().unwrap().into_iter().map(|r| r.1).collect();
    regions.sort_by_key(|r| r.start);
    let mut at = 0;
    for r in regions
        .iter()
        .chain([&(image.len() as u64..image.len() as u64)])
    {
        let gap = &image[at as usize..r.start as usize];
        assert!(
            gap.iter().all(|&b| b == 0xA5),
            "byte written in {at}..{}",
            r.start
        );
        at = r.end;
    }
    // Every region was written: the header sectors are zero after the 92
    // header bytes, the arrays hold entry 1 and zeros.
    assert!(image[512 + 92..1024].iter().all(|&b| b == 0));
    assert_eq!(image[2048 * 512..2048 * 512 + 16], LINUX_TYPE.to_bytes_le());
    assert!(image[2048 * 512 + 128..2080 * 512].iter().all(|&b| b == 0));
    assert_eq!(&image[16383 * 512..16383 * 512 + 8], b"EFI PART");
}

fn fails_with(disk: &GptDisk, message: &str) {
    let err = disk.validate().unwrap_err();
    assert_eq!(err.to_string(), message);
    let mut sink = Cursor::new(Vec::new());
    assert!(write_gpt(disk, &mut sink).is_err());
    assert!(sink.into_inner().is_empty(), "nothing written on error");
}

#[test]
fn rejects_overlapping_partitions() {
    let mut disk = small_disk();
    disk.partitions[1].first_lba = 4000;
    fails_with(
        &disk,
        "partition 1 (\"a\", LBA 2048..=4095) overlaps partition 2 (\"b\", LBA 4000..=16350)",
    );
}

#[test]
fn rejects_partition_past_last_usable_or_end() {
    let mut disk = small_disk();
    disk.partitions[1].last_lba = 16351;
    fails_with(
        &disk,
        "partition 2 (\"b\", LBA 4096..=16351) overlaps the backup GPT entries (LBA 16351..=16382)",
    );
    disk.partitions[1].last_lba = 20000;
    fails_with(
        &disk,
        "partition 2 (\"b\", LBA 4096..=20000) overlaps the backup GPT entries (LBA 16351..=16382)",
    );
    disk.partitions[1] = part(LINUX_TYPE, 9, 17000, 18000, "b");
    fails_with(
        &disk,
        "partition 2 (\"b\", LBA 17000..=18000) lies outside the usable range LBA 34..=16350",
    );
}

#[test]
fn rejects_partition_over_moved_array_or_before_first_usable() {
    let mut disk = moved_array_disk();
    disk.partitions[0].first_lba = 2000;
    fails_with(&disk, "partition 1 (\"boot\", LBA 2000..=172031) overlaps the primary GPT entries (LBA 2048..=2079)");
    disk.partitions[0].first_lba = 0;
    fails_with(
        &disk,
        "partition 1 (\"boot\", LBA 0..=172031) overlaps the protective MBR (LBA 0..=0)",
    );
    disk.partitions[0] = part(ESP_TYPE, 1, 40, 100, "boot");
    fails_with(
        &disk,
        "partition 1 (\"boot\", LBA 40..=100) lies outside the usable range LBA 2080..=524254",
    );
}

#[test]
fn rejects_name_of_37_utf16_units() {
    let mut disk = small_disk();
    disk.partitions[0].name = "é".repeat(37);
    let msg = format!(
        "partition 1 name {:?} is 37 UTF-16 code units long; GPT allows 36",
        "é".repeat(37)
    );
    fails_with(&disk, &msg);
}

#[test]
fn rejects_more_partitions_than_entries() {
    let mut disk = GptDisk::with_layout(512, 16384, Uuid::from_u128(7), 2, 4);
    disk.partitions = (0..5)
        .map(|i| {
            part(
                LINUX_TYPE,
                i,
                2048 + 100 * i as u64,
                2147 + 100 * i as u64,
                "p",
            )
        })
        .collect();
    fails_with(&disk, "5 partitions do not fit in a table of 4 entries");
}

#[test]
fn rejects_bad_geometry() {
    let mut disk = small_disk();
    disk.sector_size = 1024;
    fails_with(&disk, "sector size 1024 is not supported (use 512 or 4096)");
    let mut disk = small_disk();
    disk.entries_lba = 2048;
    fails_with(&disk, "primary GPT entries at LBA 2048..=2079 must lie after the primary header (LBA 1) and before the first usable LBA 34");
    let mut disk = small_disk();
    disk.partitions[0].type_guid = Uuid::nil();
    fails_with(
        &disk,
        "partition 1 (\"a\") has the nil type GUID, which marks an unused entry",
    );
}

fn assert_round_trip(disk: &GptDisk) {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut file) = write_image(dir.path(), "rt.img", disk);
    assert_eq!(&read_gpt(&mut file, disk.sector_size).unwrap(), disk);
}

#[test]
fn round_trip_qemu() {
    assert_round_trip(&qemu_disk());
}

#[test]
fn round_trip_moved_array() {
    assert_round_trip(&moved_array_disk());
}

#[test]
fn round_trip_4k() {
    assert_round_trip(&four_k_disk());
}

#[test]
fn read_reports_damage_and_disagreement() {
    let dir = tempfile::tempdir().unwrap();
    let disk = small_disk();
    let (_, mut file) = write_image(dir.path(), "d.img", &disk);
    let backup_array = disk.backup_entries_lba() * 512;
    write_at(&mut file, backup_array + 60, b"X");
    let err = read_gpt(&mut file, 512).unwrap_err();
    assert!(
        matches!(
            err,
            GptError::EntriesCrc {
                which: "backup",
                lba: 16351,
                ..
            }
        ),
        "{err}"
    );

    let mut other = disk.clone();
    other.partitions[1].name = "c".into();
    write_gpt(&disk, &mut file).unwrap();
    let mut backup_only = Cursor::new(Vec::new());
    write_gpt(&other, &mut backup_only).unwrap();
    let bytes = backup_only.into_inner();
    let backup_bytes = &bytes[backup_array as usize..];
    write_at(&mut file, backup_array, backup_bytes);
    let err = read_gpt(&mut file, 512).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("primary and backup GPT disagree on entry array CRC32"),
        "{err}"
    );

    write_gpt(&disk, &mut file).unwrap();
    write_at(&mut file, 512 + 40, &[1]);
    let err = read_gpt(&mut file, 512).unwrap_err();
    assert!(
        matches!(
            err,
            GptError::HeaderCrc {
                which: "primary",
                lba: 1,
                ..
            }
        ),
        "{err}"
    );

    write_gpt(&disk, &mut file).unwrap();
    file.set_len(16385 * 512).unwrap();
    let err = read_gpt(&mut file, 512).unwrap_err();
    assert_eq!(
        err.to_string(),
        "backup GPT header is at LBA 16383 but the disk has 16385 sectors (it must be the last)"
    );
}

// -------------------------------------------------------------- oracle tests

#[test]
fn oracle_qemu_layout() {
    let dir = tempfile::tempdir().unwrap();
    let disk = qemu_disk();
    let (path, mut file) = write_image(dir.path(), "qemu.img", &disk);
    assert_eq!(
        &read_at(&mut file, (disk.disk_sectors - 1) * 512, 8),
        b"EFI PART"
    );
    assert_sgdisk_clean(&path);
    if let Some(dump) = sfdisk_dump(&path) {
        assert_eq!(dump, expected_sfdisk(&disk));
    }
    assert_gpt_crate_reads(&path, &disk);
}

/// The same table built by sgdisk itself must be identical byte for byte
/// (protective MBR, both headers, both arrays).
#[test]
fn oracle_qemu_layout_matches_sgdisk_bytes() {
    let Some(sgdisk) = find_tool("sgdisk") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = qemu_disk();
    let (_ours, mut ours_file) = write_image(dir.path(), "ours.img", &disk);
    let (theirs, mut theirs_file) =
        create_sparse(dir.path(), "sgdisk.img", disk.disk_sectors * 512);
    let [esp, root] = [&disk.partitions[0], &disk.partitions[1]];
    let args = [
        "-o".to_string(),
        format!("--disk-guid={}", disk.disk_guid),
        format!("--new=1:{}:{}", esp.first_lba, esp.last_lba),
        "--typecode=1:EF00".into(),
        format!("--partition-guid=1:{}", esp.part_guid),
        "--change-name=1:esp".into(),
        "--attributes=1:set:2".into(),
        format!("--new=2:{}:{}", root.first_lba, root.last_lba),
        "--typecode=2:8300".into(),
        format!("--partition-guid=2:{}", root.part_guid),
        "--change-name=2:rootfs".into(),
        theirs.to_str().unwrap().into(),
    ];
    run_tool(
        &sgdisk,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let head = 34 * 512;
    assert!(
        read_at(&mut ours_file, 0, head) == read_at(&mut theirs_file, 0, head),
        "LBA 0..34 differ from sgdisk's"
    );
    let tail_at = disk.backup_entries_lba() * 512;
    assert!(
        read_at(&mut ours_file, tail_at, 33 * 512) == read_at(&mut theirs_file, tail_at, 33 * 512),
        "backup differs from sgdisk's"
    );
}

#[test]
fn oracle_moved_array_keeps_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let disk = moved_array_disk();
    let (path, mut file) = create_sparse(dir.path(), "allwinner.img", disk.disk_sectors * 512);
    let blobs: Vec<(u64, Vec<u8>)> = BLOBS
        .iter()
        .enumerate()
        .map(|(i, &(at, len))| (at, make_blob(i as u64 + 11, len)))
        .collect();
    for (at, bytes) in &blobs {
        write_at(&mut file, *at, bytes);
        let blob = *at..*at + bytes.len() as u64;
        for (what, r) in disk.regions().unwrap() {
            assert!(
                r.end <= blob.start || blob.end <= r.start,
                "{what} {r:?} hits blob {blob:?}"
            );
        }
    }
    write_mbr(
        &MbrTable::protective(disk.disk_sectors),
        disk.disk_sectors,
        &mut file,
    )
    .unwrap();
    write_gpt(&disk, &mut file).unwrap();
    for (at, bytes) in &blobs {
        assert!(
            read_at(&mut file, *at, bytes.len()) == *bytes,
            "blob at byte {at} was overwritten"
        );
    }
    // The gap before the moved array is the point of this layout.
    assert_sgdisk_clean_except(
        &path,
        &["gap between the main metadata (sector 1) and the main"],
    );
    if let Some(dump) = sfdisk_dump(&path) {
        assert_eq!(dump, expected_sfdisk(&disk));
    }
    assert_gpt_crate_reads(&path, &disk);
    assert_eq!(read_gpt(&mut file, 512).unwrap(), disk);
}

#[test]
fn oracle_4k_sectors() {
    let dir = tempfile::tempdir().unwrap();
    let disk = four_k_disk();
    let (path, mut file) = write_image(dir.path(), "4k.img", &disk);
    assert_eq!(
        &read_at(&mut file, (disk.disk_sectors - 1) * 4096, 8),
        b"EFI PART"
    );
    assert_gpt_crate_reads(&path, &disk);
    // sfdisk 2.38 has no --sector-size and sgdisk takes the sector size from
    // the device: both look through a loop device with 4096-byte blocks.
    if require_root("oracle_4k_sectors (a loop device with 4096-byte sectors)") {
        let opts = LoopOptions {
            block_size: 4096,
            ..LoopOptions::default()
        };
        let dev = LoopDevice::attach(&path, &opts).unwrap();
        assert_sgdisk_clean(dev.path());
        if let Some(dump) = sfdisk_dump(dev.path()) {
            assert_eq!(dump, expected_sfdisk(&disk));
        }
        dev.close().unwrap();
    }
}

/// `backup = false`: only the primary header and array are written, the
/// header names itself as the alternate (genimage's gpt-no-backup), and
/// the reader reads it back from the primary alone — also from a file cut
/// after the last partition.
#[test]
fn without_backup_writes_and_reads_the_primary_only() {
    let mut disk = small_disk();
    disk.backup = false;
    let mut image = Cursor::new(vec![0u8; (disk.disk_sectors * 512) as usize]);
    write_gpt(&disk, &mut image).unwrap();
    let bytes = image.into_inner();
    let header = &bytes[512..1024];
    assert_eq!(u64::from_le_bytes(header[24..32].try_into().unwrap()), 1);
    assert_eq!(u64::from_le_bytes(header[32..40].try_into().unwrap()), 1);
    let tail = bytes.len() - (disk.entry_array_sectors() as usize + 1) * 512;
    assert!(
        bytes[tail..].iter().all(|&b| b == 0),
        "a backup was written"
    );
    assert_eq!(
        disk.regions().unwrap().len(),
        2,
        "regions() lists what is written"
    );
    let read = read_gpt(&mut Cursor::new(bytes.clone()), 512).unwrap();
    assert_eq!(read, disk);
    // Cut after the primary array: the disk is as long as the header says.
    let cut = bytes[..(disk.first_usable_lba * 512) as usize].to_vec();
    let read = read_gpt(&mut Cursor::new(cut), 512).unwrap();
    assert_eq!(read.disk_sectors, disk.disk_sectors);
    assert!(!read.backup);
}
