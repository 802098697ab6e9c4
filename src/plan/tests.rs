//! Planner tests: placement numbers for the real boards and the must-fail
//! cases, each asserting its message.

use std::fs;
use std::path::Path;

use crate::board::{load_board_file, Board, BoardSearch};
use crate::plan::{plan_board, Plan, PlannedFs};

fn builtin(name: &str) -> Board {
    let search = BoardSearch {
        dirs: vec![crate::board::builtin_boards_dir()],
    };
    crate::board::load_board(name, &search).unwrap()
}

/// Write `text` as board.toml into `dir` (plus 64 KiB blobs named blob-*.bin).
fn board_in(dir: &Path, text: &str) -> Board {
    for name in ["boot0.bin", "toc1.bin"] {
        fs::write(dir.join(name), vec![0xa5u8; 64 << 10]).unwrap();
    }
    fs::write(dir.join("board.toml"), text).unwrap();
    load_board_file(&dir.join("board.toml")).unwrap()
}

fn plan_text(text: &str) -> Result<Plan, String> {
    let dir = tempfile::tempdir().unwrap();
    plan_board(&board_in(dir.path(), text), "test").map_err(|e| e.to_string())
}

const HEAD: &str = r#"
[board]
name = "t"
description = "test"
arch = "riscv64"
hostname = "t"
image = "t"
"#;

#[test]
fn qemu_riscv64_layout_matches_porting_layout() {
    let plan = plan_board(&builtin("qemu-riscv64"), "mkimg").unwrap();
    let layout = &plan.layout;
    assert_eq!(layout.disk_size, 10 << 30);
    let gpt = layout.gpt.as_ref().unwrap();
    assert_eq!(
        (gpt.entries_lba, gpt.entry_count, gpt.first_usable_lba),
        (2, 128, 34)
    );
    assert_eq!(gpt.backup_header_lba, (10 << 30) / 512 - 1);
    assert_eq!(gpt.last_usable_lba, gpt.backup_header_lba - 33);
    let esp = &layout.partitions[0];
    assert_eq!(
        (esp.name.as_str(), esp.start, esp.size),
        ("esp", 2 << 20, 1 << 30)
    );
    assert_eq!(esp.attributes, 1 << 2);
    assert_eq!(
        esp.filesystem,
        PlannedFs::Vfat {
            label: Some("ESP".into()),
            volume_id: 0x0045_5350
        }
    );
    assert_eq!(esp.mount.as_ref().unwrap().path, "/boot/efi");
    let root = &layout.partitions[1];
    assert_eq!(root.start, (2 << 20) + (1 << 30));
    assert_eq!(
        root.end(),
        (10 << 30) - (1 << 20),
        "rest ends aligned down below the backup GPT"
    );
    assert_eq!(
        root.filesystem.fs_uuid_text().unwrap(),
        "78662d6f-706f-6570-6f72-742d726f6f74"
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn identities_follow_the_seed() {
    let a = plan_board(&builtin("qemu-riscv64"), "one").unwrap();
    let b = plan_board(&builtin("qemu-riscv64"), "one").unwrap();
    let c = plan_board(&builtin("qemu-riscv64"), "two").unwrap();
    assert_eq!(a.layout.partitions[0].uuid, b.layout.partitions[0].uuid);
    assert_ne!(a.layout.partitions[0].uuid, c.layout.partitions[0].uuid);
    // Fixed by the board: unchanged by the seed.
    assert_eq!(
        a.layout.partitions[1].filesystem.fs_uuid_text(),
        c.layout.partitions[1].filesystem.fs_uuid_text()
    );
}

#[test]
fn allwinner_style_moved_array_and_blobs() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"
gpt_entries_offset = \"1M\"

[[blob]]
name = \"boot0\"
source = \"boot0.bin\"
offset = \"8K\"

[[blob]]
name = \"toc1\"
source = \"toc1.bin\"
offset = \"32800s\"

[[partition]]
name = \"boot\"
type = \"esp\"
size = \"8M\"
filesystem = \"vfat\"

[[partition]]
name = \"rootfs\"
type = \"linux\"
size = \"rest\"
"
    );
    let plan = plan_text(&text).unwrap();
    let gpt = plan.layout.gpt.as_ref().unwrap();
    assert_eq!(gpt.entries_lba, 2048);
    // first usable: after the toc1 blob (32800 s + 64 KiB) since it lies before the first partition
    assert_eq!(gpt.first_usable_lba, 32800 + 128);
    assert_eq!(
        plan.layout.partitions[0].start,
        17 << 20,
        "aligned up after the blob"
    );
}

#[test]
fn overlapping_partitions_fail_with_both_parties() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[partition]]
name = \"a\"
type = \"linux\"
offset = \"1M\"
size = \"8M\"

[[partition]]
name = \"b\"
type = \"linux\"
offset = \"4M\"
size = \"8M\"
"
    );
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains(
            "partition 1 'a' and partition 2 'b' overlap by 5242880 bytes at 0x400000..0x900000"
        ),
        "{err}"
    );
    assert!(
        err.contains("fix: move partition 2 'b' to offset = \"9M\" or later"),
        "{err}"
    );
    assert!(
        err.contains("!! partition 1 'a'"),
        "conflict map marks both: {err}"
    );
    assert!(err.contains("!! partition 2 'b'"), "{err}");
}

#[test]
fn blob_over_entry_array_fails_with_fix() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[blob]]
name = \"boot0\"
source = \"boot0.bin\"
offset = \"8K\"

[[partition]]
name = \"rootfs\"
type = \"linux\"
offset = \"2M\"
size = \"rest\"
"
    );
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains("primary GPT entries and blob 'boot0' overlap"),
        "{err}"
    );
    assert!(err.contains("disk.gpt_entries_offset = \"1M\""), "{err}");
    assert!(err.contains("!! blob 'boot0'"), "{err}");
}

#[test]
fn partition_past_end_fails() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[partition]]
name = \"big\"
type = \"linux\"
offset = \"1M\"
size = \"64M\"
"
    );
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains("partition 1 'big' ends at 0x4100000, past the end of the 64M disk"),
        "{err}"
    );
    assert!(err.contains("shrink it to size = \"62M\""), "{err}");
}

#[test]
fn bad_uuid_fails() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[partition]]
name = \"root\"
type = \"linux\"
size = \"rest\"
filesystem = \"ext4\"
fs_uuid = \"78662d6f-706f-6570-6f72-742d726f6f7\"
"
    );
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains(
            "partition 1 'root': fs_uuid = \"78662d6f-706f-6570-6f72-742d726f6f7\" is not a UUID"
        ),
        "{err}"
    );
}

#[test]
fn name_too_long_fails() {
    let long = "n".repeat(37);
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[partition]]
name = \"{long}\"
type = \"linux\"
size = \"rest\"
"
    );
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains("name is 37 UTF-16 code units; GPT names hold at most 36"),
        "{err}"
    );
}

#[test]
fn too_many_partitions_for_entry_count_fails() {
    let mut text = format!("{HEAD}\n[disk]\ntable = \"gpt\"\nsize = \"64M\"\ngpt_entries = 4\n");
    for i in 0..5 {
        text.push_str(&format!(
            "\n[[partition]]\nname = \"p{i}\"\ntype = \"linux\"\nsize = \"1M\"\n"
        ));
    }
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains("5 partitions but the GPT has only 4 entries"),
        "{err}"
    );
    assert!(err.contains("disk.gpt_entries = 8"), "{err}");
}

#[test]
fn misaligned_offset_and_duplicate_names_fail() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[partition]]
name = \"a\"
type = \"linux\"
offset = \"1536K\"
size = \"1M\"

[[partition]]
name = \"a\"
type = \"linux\"
size = \"1M\"
"
    );
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains("offset 0x180000 is not aligned to 1M"),
        "{err}"
    );
    assert!(err.contains("offset = \"2M\""), "{err}");
    assert!(
        err.contains("partitions 1 and 2 are both named 'a'"),
        "{err}"
    );
}

#[test]
fn mbr_rejects_five_partitions_and_gpt_guids() {
    let mut text = format!("{HEAD}\n[disk]\ntable = \"mbr\"\nsize = \"64M\"\n");
    for i in 0..5 {
        text.push_str(&format!(
            "\n[[partition]]\nname = \"p{i}\"\ntype = \"linux\"\nsize = \"1M\"\n"
        ));
    }
    let err = plan_text(&text).unwrap_err();
    assert!(
        err.contains("5 partitions but an MBR holds at most 4"),
        "{err}"
    );
}

#[test]
fn vfat_on_linux_type_warns() {
    let text = format!(
        "{HEAD}
[disk]
table = \"gpt\"
size = \"64M\"

[[partition]]
name = \"data\"
type = \"linux\"
size = \"rest\"
filesystem = \"vfat\"
"
    );
    let plan = plan_text(&text).unwrap();
    assert!(
        plan.warnings[0].contains("vfat on partition type \"linux\""),
        "{:?}",
        plan.warnings
    );
}

const BLOB_DISK: &str = r#"
[disk]
table = "gpt"
size = "64M"
gpt_entries_offset = "1M"

[[partition]]
name = "root"
type = "linux"
offset = "8M"
size = "rest"
filesystem = "ext4"
mount = "/"

# U-Boot boards boot with extlinux; GRUB would need an ESP.
[boot]
loader = "extlinux"
"#;

/// Before: the build made an image with no boot loader and exited 0.
#[test]
fn grub_without_an_esp_is_refused_at_plan_time() {
    let grub = BLOB_DISK.replace("loader = \"extlinux\"", "loader = \"grub\"");
    let err = plan_text(&format!("{HEAD}{grub}")).unwrap_err();
    assert!(err.contains("no EFI System Partition"), "{err}");
    assert!(err.contains("loader = \"extlinux\""), "{err}");
}

#[test]
fn rootfs_blob_needs_a_size_and_takes_it_as_its_region() {
    let blob = "\n[[blob]]\nname = \"spl\"\nsource = \"rootfs:/usr/lib/u-boot/b/spl.bin\"\noffset = \"8K\"\n";
    let err = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}")).unwrap_err();
    assert!(
        err.contains("blob 'spl': source \"rootfs:/usr/lib/u-boot/b/spl.bin\" has no size until the rootfs is read"),
        "{err}"
    );
    let plan = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}size = \"1000K\"\n")).unwrap();
    let spl = &plan.layout.blobs[0];
    assert_eq!(
        spl.source,
        crate::plan::BlobSource::Rootfs("/usr/lib/u-boot/b/spl.bin".into())
    );
    assert_eq!((spl.offset, spl.size), (8192, 1000 << 10));
}

#[test]
fn file_blob_larger_than_its_room_and_bad_magic_are_refused() {
    // board_in writes 64 KiB blob files.
    let blob = "\n[[blob]]\nname = \"boot0\"\nsource = \"boot0.bin\"\noffset = \"8K\"\nsize = \"32K\"\nhint = \"the BSP\"\n";
    let err = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}")).unwrap_err();
    assert!(
        err.contains("boot0.bin is 65536 bytes, more than its room size = 32768"),
        "{err}"
    );
    let err = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}magic = \"0xabc\"\n")).unwrap_err();
    assert!(
        err.contains("magic = \"0xabc\" is empty or bad hex"),
        "{err}"
    );
    let plan = plan_text(&format!(
        "{HEAD}{BLOB_DISK}{}magic = \"0xd00dfeed\"\n",
        blob.replace("32K", "64K")
    ))
    .unwrap();
    assert_eq!(
        plan.layout.blobs[0].magic,
        Some((0, vec![0xd0, 0x0d, 0xfe, 0xed]))
    );
}

#[test]
fn missing_blob_file_is_an_error_without_size_and_a_warning_with() {
    let blob = "\n[[blob]]\nname = \"spl\"\nsource = \"nope.bin\"\noffset = \"8K\"\nhint = \"U-Boot's SPL build\"\n";
    let err = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}")).unwrap_err();
    assert!(err.contains("nope.bin"), "{err}");
    assert!(
        err.contains("it usually comes from U-Boot's SPL build"),
        "{err}"
    );
    assert!(err.contains("--blob spl=PATH"), "{err}");
    let plan = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}size = \"64K\"\n")).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("nope.bin not found; it usually comes from U-Boot's SPL build")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn firmware_is_code_or_bios_not_both() {
    let fw = "\n[firmware]\ncode = \"a.fd\"\nbios = \"u-boot.bin\"\n";
    let err = plan_text(&format!("{HEAD}{BLOB_DISK}{fw}")).unwrap_err();
    assert!(
        err.contains("[firmware] needs exactly one of code"),
        "{err}"
    );
    let plan = plan_text(&format!(
        "{HEAD}{BLOB_DISK}\n[firmware]\nbios = \"u-boot.bin\"\n"
    ))
    .unwrap();
    let firmware = plan.firmware.unwrap();
    assert_eq!(firmware.load, crate::plan::FirmwareLoad::Bios);
    assert!(firmware.code.ends_with("u-boot.bin"));
}

#[test]
fn rock3a_and_nezha_layouts() {
    let plan = plan_board(&builtin("rock3a"), "mkimg").unwrap();
    let layout = &plan.layout;
    let blobs: Vec<_> = layout
        .blobs
        .iter()
        .map(|b| (b.name.as_str(), b.offset, b.size))
        .collect();
    assert_eq!(
        blobs,
        [
            ("idbloader", 64 * 512, 8160 << 10),
            ("u-boot", 16384 * 512, 8 << 20)
        ]
    );
    let parts: Vec<_> = layout
        .partitions
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.start,
                p.size,
                p.mount.as_ref().unwrap().path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            ("boot", 16 << 20, 496 << 20, "/boot"),
            ("rootfs", 512 << 20, 3 << 30, "/")
        ]
    );
    assert_eq!(layout.gpt.as_ref().unwrap().entries_lba, 2);

    let plan = plan_board(&builtin("nezha"), "mkimg").unwrap();
    let layout = &plan.layout;
    assert_eq!(layout.gpt.as_ref().unwrap().entries_lba, 2048);
    assert_eq!(
        (layout.blobs[0].offset, layout.blobs[1].offset),
        (8192, 32800 * 512)
    );
    let sizes: Vec<_> = layout
        .partitions
        .iter()
        .map(|p| (p.name.as_str(), p.size >> 10))
        .collect();
    assert_eq!(
        &sizes[..4],
        [
            ("boot-resource", 4032),
            ("env", 252),
            ("env-redund", 252),
            ("boot", 150 << 10)
        ]
    );
    assert!(matches!(
        layout.partitions[1].filesystem,
        PlannedFs::Raw { .. }
    ));
}

/// Offsets and sizes near u64::MAX wrapped in release builds (the sum
/// `offset + size`, `cursor = start + size`). Values over 1 EiB are refused
/// when the board is parsed; up to it, a value beyond the disk is refused at
/// plan time, citing its key's line.
#[test]
fn values_beyond_the_disk_are_refused_with_their_line() {
    let cases = [
        (
            "[[partition]]\nname = \"p\"\ntype = \"linux\"\noffset = \"1152921504606846976\"\nsize = \"1M\"\n",
            "partition 1 'p': offset = 0x1000000000000000 is beyond the end",
            16,
        ),
        (
            "[[partition]]\nname = \"p\"\ntype = \"linux\"\nsize = \"1152921504606845952\"\n",
            "partition 1 'p': size = 0xffffffffffffc00 is beyond the end",
            16,
        ),
        (
            "[[blob]]\nname = \"b\"\nsource = \"boot0.bin\"\noffset = \"1152921504606781440\"\n",
            "blob 'b': offset = 0xfffffffffff0000 is beyond the end",
            16,
        ),
        (
            "[[blob]]\nname = \"b\"\nsource = \"boot0.bin\"\noffset = \"8K\"\nsize = \"1152921504606781440\"\n",
            "blob 'b': size = 0xfffffffffff0000 is beyond the end",
            17,
        ),
    ];
    for (extra, needle, line) in cases {
        let text = format!("{HEAD}\n[disk]\ntable = \"gpt\"\nsize = \"64M\"\n\n{extra}");
        let err = plan_text(&text).unwrap_err();
        assert!(err.contains(needle), "{needle}:\n{err}");
        assert!(
            err.contains(&format!("board.toml:{line}:")),
            "line {line}:\n{err}"
        );
    }
    let text = format!("{HEAD}\n[disk]\ntable = \"gpt\"\nsize = \"18446744073709551104\"\n");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("board.toml"), &text).unwrap();
    let err = load_board_file(&dir.path().join("board.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("over 1 EiB"), "{err}");
    assert!(err.contains("board.toml:11:"), "{err}");
}
