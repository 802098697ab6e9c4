//! MBR tests. Oracles: `sfdisk -d` for a dos label, `sgdisk -v` and a
//! byte comparison with `sgdisk --hybrid` for hybrid MBRs.

use std::io::Cursor;

use super::{
    lba_to_chs, read_mbr, write_mbr, EePlacement, MbrEntry, MbrError, MbrTable, MBR_REGION,
};
use crate::disk::gpt::test_tools::{
    assert_sgdisk_clean, create_sparse, make_blob, read_at, run_tool, sfdisk_dump, write_at,
};
use crate::disk::gpt::{write_gpt, GptDisk, GptPartition};
use crate::test_tools::find_tool;

fn entry(bootable: bool, type_byte: u8, start_lba: u32, sectors: u32) -> MbrEntry {
    MbrEntry {
        bootable,
        type_byte,
        start_lba,
        sectors,
    }
}

/// Scenario 4: 64 MiB, four partitions, the first active.
fn four_partitions() -> MbrTable {
    MbrTable {
        disk_signature: 0x1234_5678,
        entries: vec![
            entry(true, 0x0C, 2048, 32768),
            entry(false, 0x83, 34816, 32768),
            entry(false, 0x83, 67584, 32768),
            entry(false, 0x82, 100352, 30720),
        ],
    }
}

fn fails_with(table: &MbrTable, disk_sectors: u64, message: &str) {
    let err = table.validate(disk_sectors).unwrap_err();
    assert_eq!(err.to_string(), message);
    let mut sink = Cursor::new(Vec::new());
    assert!(write_mbr(table, disk_sectors, &mut sink).is_err());
    assert!(sink.into_inner().is_empty(), "nothing written on error");
}

#[test]
fn rejects_five_entries() {
    let mut table = four_partitions();
    table.entries.push(entry(false, 0x83, 131000, 10));
    fails_with(&table, 1 << 20, "an MBR holds 4 entries, got 5");
}

#[test]
fn rejects_overlap_zero_size_and_past_end() {
    let mut table = four_partitions();
    table.entries[2].start_lba = 67583;
    fails_with(
        &table,
        131072,
        "MBR entry 2 (LBA 34816..=67583) overlaps MBR entry 3 (LBA 67583..=100350)",
    );
    let mut table = four_partitions();
    table.entries[1].sectors = 0;
    fails_with(&table, 131072, "MBR entry 2 (type 0x83) has zero sectors");
    let table = four_partitions();
    fails_with(&table, 131071, "MBR entry 4 (type 0x82, LBA 100352..=131071) ends past the last LBA 131070 of a 131071-sector disk");
    let mut table = four_partitions();
    table.entries[0].start_lba = 0;
    fails_with(
        &table,
        131072,
        "MBR entry 1 (type 0x0c) starts at LBA 0, over the MBR itself",
    );
}

#[test]
fn protective_clips_to_32_bits() {
    assert_eq!(
        MbrTable::protective(10 << 21).entries,
        [entry(false, 0xEE, 1, 20971519)]
    );
    assert_eq!(MbrTable::protective(1 << 40).entries[0].sectors, u32::MAX);
}

#[test]
fn hybrid_rules() {
    let esp = entry(true, 0xEF, 2048, 4096);
    let table = MbrTable::hybrid(1 << 20, &[esp]).unwrap();
    assert_eq!(table.entries, [esp, entry(false, 0xEE, 1, 2047)]);
    let table = MbrTable::hybrid_with(1 << 20, &[esp], EePlacement::First).unwrap();
    assert_eq!(table.entries[0], entry(false, 0xEE, 1, 2047));
    let err = MbrTable::hybrid(1 << 20, &[esp; 4]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a hybrid MBR mirrors 1 to 3 partitions, got 4"
    );
    let err = MbrTable::hybrid(1 << 20, &[entry(false, 0x83, 1, 10)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mirrored partition at LBA 1 leaves no room for the 0xEE entry from LBA 1"
    );
}

#[test]
fn chs_values_match_gdisk() {
    // Values read off sgdisk 1.0.9 output (255 heads, 63 sectors).
    assert_eq!(lba_to_chs(1), [0x00, 0x02, 0x00]);
    assert_eq!(lba_to_chs(2048), [0x20, 0x21, 0x00]);
    assert_eq!(lba_to_chs(133119), [0x49, 0x01, 0x08]);
    assert_eq!(lba_to_chs(1024 * 255 * 63 - 1), [0xFE, 0xFF, 0xFF]);
    assert_eq!(lba_to_chs(1024 * 255 * 63), [0xFE, 0xFF, 0xFF]);
}

#[test]
fn read_needs_boot_signature() {
    let mut image = Cursor::new(vec![0u8; 512]);
    let err = read_mbr(&mut image).unwrap_err();
    assert!(
        matches!(err, MbrError::NoBootSignature { found: 0 }),
        "{err}"
    );
}

#[test]
fn oracle_plain_mbr_four_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut file) = create_sparse(dir.path(), "dos.img", 64 << 20);
    let boot_code = make_blob(3, 440);
    write_at(&mut file, 0, &boot_code);
    let table = four_partitions();
    write_mbr(&table, 131072, &mut file).unwrap();
    assert!(
        read_at(&mut file, 0, 440) == boot_code,
        "boot code area was touched"
    );
    assert!(
        read_at(&mut file, 512, 512).iter().all(|&b| b == 0),
        "wrote past LBA 0"
    );
    assert_eq!(read_mbr(&mut file).unwrap(), table);
    let Some(dump) = sfdisk_dump(&path) else {
        return;
    };
    let expected =
        "label: dos\nlabel-id: 0x12345678\ndevice: IMG\nunit: sectors\nsector-size: 512\n\n\
        IMG1 : start=        2048, size=       32768, type=c, bootable\n\
        IMG2 : start=       34816, size=       32768, type=83\n\
        IMG3 : start=       67584, size=       32768, type=83\n\
        IMG4 : start=      100352, size=       30720, type=82\n";
    assert_eq!(dump, expected);
}

/// 64 MiB GPT with an ESP and a rootfs, for the hybrid tests.
fn hybrid_gpt() -> GptDisk {
    let mut disk =
        GptDisk::with_layout(512, 131072, uuid::Uuid::from_u128(0x4859_4252_4944), 2, 128);
    let part = |n: u128, type_guid, first, last, name: &str| GptPartition {
        type_guid,
        part_guid: uuid::Uuid::from_u128(0x4859_0000 + n),
        first_lba: first,
        last_lba: last,
        attributes: 0,
        name: name.into(),
    };
    disk.partitions = vec![
        part(1, crate::disk::gpt::tests::ESP_TYPE, 2048, 34815, "esp"),
        part(
            2,
            crate::disk::gpt::tests::LINUX_TYPE,
            34816,
            129023,
            "rootfs",
        ),
    ];
    disk
}

fn mirrored(disk: &GptDisk, bootable_esp: bool) -> [MbrEntry; 2] {
    let [esp, root] = [&disk.partitions[0], &disk.partitions[1]];
    let sectors = |p: &GptPartition| (p.last_lba - p.first_lba + 1) as u32;
    [
        entry(bootable_esp, 0xEF, esp.first_lba as u32, sectors(esp)),
        entry(false, 0x83, root.first_lba as u32, sectors(root)),
    ]
}

#[test]
fn oracle_hybrid_mbr() {
    let dir = tempfile::tempdir().unwrap();
    let disk = hybrid_gpt();
    let (path, mut file) = create_sparse(dir.path(), "hybrid.img", disk.disk_sectors * 512);
    let table = MbrTable::hybrid(disk.disk_sectors, &mirrored(&disk, true)).unwrap();
    write_mbr(&table, disk.disk_sectors, &mut file).unwrap();
    write_gpt(&disk, &mut file).unwrap();
    let back = read_mbr(&mut file).unwrap();
    assert_eq!(
        back.entries,
        [
            entry(true, 0xEF, 2048, 32768),
            entry(false, 0x83, 34816, 94208),
            entry(false, 0xEE, 1, 2047)
        ]
    );
    assert_sgdisk_clean(&path);
    if let Some(dump) = sfdisk_dump(&path) {
        assert_eq!(dump, crate::disk::gpt::tests::expected_sfdisk(&disk));
    }
    crate::disk::gpt::tests::assert_gpt_crate_reads(&path, &disk);
}

/// `sgdisk --hybrid` on the same GPT must produce the same bytes 440..512.
#[test]
fn oracle_hybrid_matches_sgdisk_bytes() {
    let Some(sgdisk) = find_tool("sgdisk") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = hybrid_gpt();
    for (placement, spec) in [(EePlacement::Last, "1:2:EE"), (EePlacement::First, "1:2")] {
        let name = format!("{placement:?}");
        let (ours, mut ours_file) =
            create_sparse(dir.path(), &format!("ours-{name}.img"), 64 << 20);
        let (theirs, mut theirs_file) =
            create_sparse(dir.path(), &format!("sgdisk-{name}.img"), 64 << 20);
        write_mbr(
            &MbrTable::protective(disk.disk_sectors),
            disk.disk_sectors,
            &mut theirs_file,
        )
        .unwrap();
        write_gpt(&disk, &mut theirs_file).unwrap();
        run_tool(
            &sgdisk,
            &[&format!("--hybrid={spec}"), theirs.to_str().unwrap()],
        );
        let table =
            MbrTable::hybrid_with(disk.disk_sectors, &mirrored(&disk, false), placement).unwrap();
        write_mbr(&table, disk.disk_sectors, &mut ours_file).unwrap();
        write_gpt(&disk, &mut ours_file).unwrap();
        let len = (MBR_REGION.end - MBR_REGION.start) as usize;
        let (a, b) = (
            read_at(&mut ours_file, 440, len),
            read_at(&mut theirs_file, 440, len),
        );
        assert_eq!(a, b, "{name}: MBR differs from sgdisk --hybrid={spec}");
        assert_sgdisk_clean(&ours);
    }
}
