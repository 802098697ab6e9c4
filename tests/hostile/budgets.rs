//! Resource bombs (issue 12, item 6): a 51 KiB tar with one 2 GiB sparse
//! member, an ~80 KiB zstd that expands to 2 GiB, a 512 MiB file under
//! /boot/efi. Each is refused from the member header before its data is
//! written, or, where it fits, written without holding it in RAM: peak
//! RSS stays under 256 MiB and the bytes written stay near the real data.

use std::fs;

use super::kit::{assert_no_workdir_left, board, Case};
use crate::support::tarball::{Tarball, MIB};
use crate::support::tools::have_tool;

const RSS_LIMIT_KIB: u64 = 256 * 1024;
const BOMB: u64 = 2 << 30;

fn assert_refused_by_budget(stderr: &str, path: &str) {
    for want in [
        "partition 'rootfs'",
        path,
        "grow the partition 'rootfs' in board.toml or use a smaller rootfs",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in: {stderr}");
    }
    assert!(!stderr.contains("truncated or corrupt"), "{stderr}");
}

/// Before: the whole 2 GiB went into the work directory (wchar ~2 GiB)
/// before "grow the partition". Now the header alone is enough.
#[test]
fn sparse_bomb_is_refused_before_its_data_is_written() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let tar = Tarball::minimal_riscv64().sparse("var/bomb", BOMB).finish();
    assert!(tar.len() < 64 << 10, "the bomb is small: {}", tar.len());
    let rootfs = case.write("bomb.tar", &tar);
    let board = board(case.dir.path(), "160M", "32M", |t| t);
    let run = case.build(board.to_str().unwrap(), rootfs.to_str().unwrap(), None);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_refused_by_budget(&run.stderr, "/var/bomb");
    assert!(run.wchar < 16 * MIB, "wrote {} bytes", run.wchar);
    eprintln!(
        "peak RSS {} KiB, wrote {} bytes",
        run.max_rss_kib, run.wchar
    );
    assert!(
        run.max_rss_kib <= RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.max_rss_kib
    );
    assert_no_workdir_left(&case.work());
    assert!(!case.out().exists());
}

#[test]
fn zstd_bomb_is_refused_before_it_is_decompressed() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let zst = Tarball::minimal_riscv64().zstd_with_zeros("var/zeros", BOMB);
    assert!(zst.len() < 256 << 10, "the bomb is small: {}", zst.len());
    let rootfs = case.write("bomb.tar.zst", &zst);
    let board = board(case.dir.path(), "160M", "32M", |t| t);
    let run = case.build(board.to_str().unwrap(), rootfs.to_str().unwrap(), None);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_refused_by_budget(&run.stderr, "/var/zeros");
    assert!(run.wchar < 16 * MIB, "wrote {} bytes", run.wchar);
    eprintln!(
        "peak RSS {} KiB, wrote {} bytes",
        run.max_rss_kib, run.wchar
    );
    assert!(
        run.max_rss_kib <= RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.max_rss_kib
    );
    assert_no_workdir_left(&case.work());
}

/// On a 3 GiB disk the 2 GiB sparse file fits the root partition, so
/// the build succeeds; the work tar and the ext4 image keep the holes, so
/// far less than 2 GiB is written.
#[test]
fn sparse_bomb_that_fits_is_written_sparse() {
    if !have_tool("time") || !have_tool("mke2fs") {
        return;
    }
    let case = Case::new();
    let tar = Tarball::minimal_riscv64().sparse("var/bomb", BOMB).finish();
    let rootfs = case.write("bomb.tar", &tar);
    let board = board(case.dir.path(), "3G", "64M", |t| t);
    let run = case.build(board.to_str().unwrap(), rootfs.to_str().unwrap(), None);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.wchar < 512 * MIB, "wrote {} bytes", run.wchar);
    eprintln!(
        "peak RSS {} KiB, wrote {} bytes",
        run.max_rss_kib, run.wchar
    );
    assert!(
        run.max_rss_kib <= RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.max_rss_kib
    );
    assert_no_workdir_left(&case.work());
}

/// Before: the ESP's files were held in memory (1.3 GiB RSS for a 512 MiB
/// file). Now they are spilled sparse and copied into the FAT in chunks.
#[test]
fn large_file_under_boot_efi_streams_into_the_fat_writer() {
    if !have_tool("time") || !have_tool("mke2fs") {
        return;
    }
    let case = Case::new();
    let tar = Tarball::minimal_riscv64()
        .dir("boot/efi/EFI")
        .sparse("boot/efi/EFI/big.img", 512 * MIB)
        .finish();
    let rootfs = case.write("big-esp.tar", &tar);
    let board = board(case.dir.path(), "1G", "600M", |t| t);
    let run = case.build(board.to_str().unwrap(), rootfs.to_str().unwrap(), None);
    assert!(run.status.success(), "{}", run.stderr);
    eprintln!(
        "peak RSS {} KiB, wrote {} bytes",
        run.max_rss_kib, run.wchar
    );
    assert!(
        run.max_rss_kib <= RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.max_rss_kib
    );
    assert_no_workdir_left(&case.work());
    // The file is in the ESP with its size (mtools reads the raw image at
    // the ESP's offset, 2 MiB).
    if have_tool("mdir") {
        let raw = case.out().join("qemu-riscv64.raw");
        let out = std::process::Command::new("mdir")
            .arg("-i")
            .arg(format!("{}@@2M", raw.display()))
            .arg("::/EFI")
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("536870912"), "{listing}");
    }
    let _ = fs::remove_dir_all(case.out());
}

/// The ESP has its own budget: a file larger than the ESP is refused from
/// its header, naming the ESP, before it reaches the spill file.
#[test]
fn file_larger_than_the_esp_names_the_esp() {
    if !have_tool("time") {
        return;
    }
    let case = Case::new();
    let tar = Tarball::minimal_riscv64()
        .dir("boot/efi/EFI")
        .sparse("boot/efi/EFI/big.img", 64 * MIB)
        .finish();
    let rootfs = case.write("big-esp.tar", &tar);
    let board = board(case.dir.path(), "160M", "32M", |t| t);
    let run = case.build(board.to_str().unwrap(), rootfs.to_str().unwrap(), None);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    for want in [
        "does not fit partition 'esp' (mounted at /boot/efi",
        "\"/boot/efi/EFI/big.img\" needs 67108864 bytes",
        "grow the partition 'esp' in board.toml",
    ] {
        assert!(
            run.stderr.contains(want),
            "missing {want:?} in: {}",
            run.stderr
        );
    }
    assert!(run.wchar < 16 * MIB, "wrote {} bytes", run.wchar);
    assert_no_workdir_left(&case.work());
}
