//! Planner tests: placement numbers for the real boards and what small
//! boards resolve to. Every board `plan_board` must refuse is a row of the
//! table in `refusals`.

mod refusals;

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

/// Write `text` as board.toml into `dir`, with the 64 KiB blob files
/// boot0.bin and toc1.bin beside it.
fn board_in(dir: &Path, text: &str) -> Board {
    for name in ["boot0.bin", "toc1.bin"] {
        fs::write(dir.join(name), vec![0xa5u8; 64 << 10]).unwrap();
    }
    fs::write(dir.join("board.toml"), text).unwrap();
    load_board_file(&dir.join("board.toml")).unwrap()
}

/// Plan `text`; the error as the user sees it.
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
fn vfat_on_linux_type_warns_citing_the_type() {
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
        plan.warnings[0]
            .contains("board.toml:15:8: partition 1 'data': vfat on partition type \"linux\""),
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

/// `--bootloader` and `--grub` win over `[boot]`; a refusal the flag
/// causes names the flag and cites no line of the board.
#[test]
fn command_line_boot_flags_win_over_the_board() {
    use crate::board::schema::{BootLoader, GrubMode};
    use crate::board::BootOverride;
    let dir = tempfile::tempdir().unwrap();
    let mut board = board_in(dir.path(), &format!("{HEAD}{BLOB_DISK}"));
    let plan = plan_board(&board, "test").unwrap();
    assert_eq!(
        (plan.boot.loader, plan.boot.grub),
        (BootLoader::Extlinux, GrubMode::Template)
    );
    board.cli_boot = BootOverride {
        loader: Some(BootLoader::None),
        grub: Some(GrubMode::Mkconfig),
    };
    let plan = plan_board(&board, "test").unwrap();
    assert_eq!(
        (plan.boot.loader, plan.boot.grub),
        (BootLoader::None, GrubMode::Mkconfig)
    );
    board.cli_boot.loader = Some(BootLoader::Grub);
    let err = plan_board(&board, "test").unwrap_err();
    let problem = err
        .problems
        .iter()
        .find(|p| {
            p.message
                .starts_with("--bootloader grub, but the board has no EFI System Partition")
        })
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(problem.location, None, "{err}");
}

/// A `--blob` file has no line in the board: its problem cites none (not
/// line 1 of the board) and names the file it was given.
#[test]
fn a_blob_from_the_command_line_cites_no_board_line() {
    let dir = tempfile::tempdir().unwrap();
    let blob = "\n[[blob]]\nname = \"spl\"\nsource = \"spl.bin\"\noffset = \"8K\"\n";
    let mut board = board_in(dir.path(), &format!("{HEAD}{BLOB_DISK}{blob}"));
    let given = dir.path().join("elsewhere/spl.bin");
    board
        .override_sources(&[format!("spl={}", given.display()).parse().unwrap()])
        .unwrap();
    let err = plan_board(&board, "test").unwrap_err();
    let problem = err
        .problems
        .iter()
        .find(|p| p.message.starts_with("blob 'spl': cannot read"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(problem.message.contains("elsewhere/spl.bin"), "{err}");
    assert_eq!(problem.location, None, "{err}");
}

#[test]
fn rootfs_blob_takes_its_size_as_its_region() {
    let blob = "\n[[blob]]\nname = \"spl\"\nsource = \"rootfs:/usr/lib/u-boot/b/spl.bin\"\noffset = \"8K\"\nsize = \"1000K\"\n";
    let plan = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}")).unwrap();
    let spl = &plan.layout.blobs[0];
    assert_eq!(
        spl.source,
        crate::plan::BlobSource::Rootfs("/usr/lib/u-boot/b/spl.bin".into())
    );
    assert_eq!((spl.offset, spl.size), (8192, 1000 << 10));
}

#[test]
fn blob_magic_is_hex_bytes() {
    // board_in writes 64 KiB blob files.
    let blob = "\n[[blob]]\nname = \"boot0\"\nsource = \"boot0.bin\"\noffset = \"8K\"\nsize = \"64K\"\nmagic = \"0xd00dfeed\"\n";
    let plan = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}")).unwrap();
    assert_eq!(
        plan.layout.blobs[0].magic,
        Some((0, vec![0xd0, 0x0d, 0xfe, 0xed]))
    );
}

/// The build fails on a missing blob file; with a size the plan can still
/// be shown, and says where the file usually comes from.
#[test]
fn missing_blob_file_with_a_size_is_a_warning() {
    let blob = "\n[[blob]]\nname = \"spl\"\nsource = \"nope.bin\"\noffset = \"8K\"\nhint = \"U-Boot's SPL build\"\nsize = \"64K\"\n";
    let plan = plan_text(&format!("{HEAD}{BLOB_DISK}{blob}")).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("nope.bin not found; it usually comes from U-Boot's SPL build")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn firmware_bios_loads_with_dash_bios() {
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
    // The U-Boot environments are written whole when flashed; nothing else.
    let dense: Vec<_> = layout
        .partitions
        .iter()
        .filter(|p| !p.sparse)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(dense, ["env", "env-redund"]);
    assert_eq!(
        layout.dense_ranges(),
        [
            (layout.partitions[1].start, layout.partitions[1].end()),
            (layout.partitions[2].start, layout.partitions[2].end())
        ]
    );
}

/// Offsets and sizes near u64::MAX wrapped in release builds (the sum
/// `offset + size`, `cursor = start + size`). Values over 1 EiB are refused
/// when the board is parsed, citing their line; up to it, a value beyond
/// the disk is refused at plan time (see the `refusals` table).
#[test]
fn sizes_over_an_exbibyte_are_refused_when_parsed() {
    let text = format!("{HEAD}\n[disk]\ntable = \"gpt\"\nsize = \"18446744073709551104\"\n");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("board.toml"), &text).unwrap();
    let err = load_board_file(&dir.path().join("board.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("over 1 EiB"), "{err}");
    assert!(err.contains("board.toml:11:"), "{err}");
}
