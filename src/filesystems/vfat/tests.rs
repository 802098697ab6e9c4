//! Oracle tests: images are written to sparse temp files and judged by
//! dosfstools (`fsck.fat -n -v`), mtools (`mdir`, `mcopy`, `minfo`) and
//! `file -s`. A missing tool skips with a message, and fails when
//! MKIMG_REQUIRE_TOOLS=1.

use std::fs::{File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use crate::test_tools::{have_tool, have_tools};

use super::volume::{format_options, resolve_fat_type, size_range, SECTOR_BYTES};
use super::{
    format_vfat, read_vfat_info, read_vfat_tree, FatType, VfatEntry, VfatError, VfatOptions,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// 2024-05-06T07:08:09Z
const STAMP: i64 = 1_714_979_289;

// ---------- helpers ----------

/// A file slice is copied in chunks: a 3 MiB + 7 byte slice of a larger
/// file, starting mid-file, arrives byte for byte (mcopy reads it back).
#[test]
fn a_file_slice_arrives_byte_for_byte() {
    if !have_tools(&["mcopy", "fsck.fat"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("spill");
    let mut bytes = pattern(5 * MIB as usize, 7);
    bytes[..MIB as usize].fill(0);
    std::fs::write(&backing, &bytes).unwrap();
    let slice = super::FileSlice {
        file: std::sync::Arc::new(File::open(&backing).unwrap()),
        offset: MIB - 5,
        len: 3 * MIB + 7,
    };
    let entries = vec![
        dir("EFI"),
        VfatEntry::Slice {
            path: "EFI/big.bin".into(),
            data: slice,
        },
    ];
    let image = build_image(
        tmp.path(),
        "slice.img",
        64 * MIB,
        &options("", 1, FatType::Auto),
        &entries,
    );
    assert_fsck_clean(&image);
    assert_mtools_contents(&image, &entries);
}

fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn options(label: &str, volume_id: u32, fat_type: FatType) -> VfatOptions {
    VfatOptions {
        label: label.to_owned(),
        volume_id,
        fat_type,
        timestamp: STAMP,
    }
}

fn file(path: &str, data: Vec<u8>) -> VfatEntry {
    VfatEntry::File {
        path: path.to_owned(),
        data,
    }
}

fn dir(path: &str) -> VfatEntry {
    VfatEntry::Dir {
        path: path.to_owned(),
    }
}

/// Deterministic pseudo-random bytes (xorshift), so compression-like
/// shortcuts cannot hide a wrong cluster chain.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn esp_entries() -> Vec<VfatEntry> {
    vec![
        file(
            "EFI/BOOT/BOOTRISCV64.EFI",
            pattern(5 * MIB as usize - 123, 1),
        ),
        file(
            "EFI/debian/grub.cfg",
            b"search --fs-uuid --set=root 0123-4567\nconfigfile ($root)/boot/grub/grub.cfg\n"
                .to_vec(),
        ),
        dir("EFI/empty"),
        file(
            "boot/dtbs/6.12.0/allwinner/sun20i-d1-lichee-rv-dock.dtb",
            pattern(40_000, 2),
        ),
        file("a long name with spaces.txt", b"hello".to_vec()),
        file("zero-length", Vec::new()),
    ]
}

/// A new sparse file of exactly `size` bytes.
fn sparse_image(dir: &Path, name: &str, size: u64) -> File {
    let image = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join(name))
        .expect("creating image");
    image.set_len(size).expect("sizing image");
    image
}

fn build_image(
    dir: &Path,
    name: &str,
    size: u64,
    opts: &VfatOptions,
    entries: &[VfatEntry],
) -> String {
    let mut image = sparse_image(dir, name, size);
    format_vfat(&mut image, size, opts, entries).expect("format_vfat");
    dir.join(name).to_str().expect("utf-8 temp path").to_owned()
}

/// `fsck.fat -n -v` must exit 0 and report nothing to fix.
fn assert_fsck_clean(image: &str) -> String {
    let output = run("fsck.fat", &["-n", "-v", image]);
    let report = text(&output);
    assert!(
        output.status.success(),
        "fsck.fat failed on {image}:\n{report}"
    );
    for line in report.lines() {
        let lower = line.to_lowercase();
        assert!(
            !lower.contains("differ") && !lower.contains("error") && !lower.contains("invalid"),
            "fsck.fat complained: {line}\n{report}"
        );
    }
    report
}

/// mtools sees every file with exactly our bytes, and every directory.
fn assert_mtools_contents(image: &str, entries: &[VfatEntry]) {
    for entry in entries {
        let target = format!("::/{}", entry.path());
        match entry {
            VfatEntry::File { data, .. } => {
                let output = run("mcopy", &["-n", "-i", image, &target, "-"]);
                assert!(output.status.success(), "mcopy {target}: {}", text(&output));
                assert!(output.stdout == *data, "mcopy {target}: bytes differ");
            }
            VfatEntry::Slice { data, .. } => {
                let output = run("mcopy", &["-n", "-i", image, &target, "-"]);
                assert!(output.status.success(), "mcopy {target}: {}", text(&output));
                let mut want = vec![0u8; data.len as usize];
                std::os::unix::fs::FileExt::read_exact_at(&*data.file, &mut want, data.offset)
                    .unwrap();
                assert!(output.stdout == want, "mcopy {target}: bytes differ");
            }
            VfatEntry::Dir { .. } => {
                let output = run("mdir", &["-i", image, &target]);
                assert!(output.status.success(), "mdir {target}: {}", text(&output));
            }
        }
    }
}

/// `fsck.fat -a` (repair) on a copy must change no byte: nothing to fix.
fn assert_fsck_repair_is_noop(image: &str) {
    let copy = format!("{image}.repaired");
    std::fs::copy(image, &copy).expect("copying image");
    let output = run("fsck.fat", &["-a", "-w", &copy]);
    assert!(output.status.success(), "fsck.fat -a: {}", text(&output));
    assert_same_file(image, &copy);
    std::fs::remove_file(&copy).expect("removing copy");
}

fn assert_same_file(a: &str, b: &str) {
    let (mut a_file, mut b_file) = (
        File::open(a).expect("open a"),
        File::open(b).expect("open b"),
    );
    let (mut a_buf, mut b_buf) = (vec![0_u8; MIB as usize], vec![0_u8; MIB as usize]);
    let mut offset = 0_u64;
    loop {
        let n = a_file.read(&mut a_buf).expect("read a");
        b_file.read_exact(&mut b_buf[..n]).expect("read b");
        if a_buf[..n] != b_buf[..n] {
            let at = a_buf.iter().zip(&b_buf).position(|(x, y)| x != y);
            panic!(
                "{a} and {b} differ at byte {}",
                offset + at.unwrap_or(0) as u64
            );
        }
        if n == 0 {
            assert_eq!(b_file.read(&mut b_buf).expect("read b"), 0, "{b} is longer");
            return;
        }
        offset += n as u64;
    }
}

fn read_bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("reading image")
}

// ---------- 1: the ESP ----------

#[test]
fn esp_1gib_is_fat32_fsck_clean_and_readable_by_mtools() {
    if !have_tools(&["fsck.fat", "mcopy", "minfo", "file"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let entries = esp_entries();
    let opts = options("ESP", 0x0045_5350, FatType::Auto);

    let started = Instant::now();
    let image = build_image(tmp.path(), "esp.img", GIB, &opts, &entries);
    let elapsed = started.elapsed();
    let allocated = std::fs::metadata(&image).expect("stat").blocks() * 512;
    eprintln!("1 GiB ESP with ~5 MiB of files: {elapsed:?}, {allocated} bytes allocated");
    // Sparse: only metadata and data are written (two 1 MiB FATs + ~5 MiB).
    assert!(
        allocated < 16 * MIB,
        "image not sparse: {allocated} bytes allocated"
    );

    let report = assert_fsck_clean(&image);
    assert!(
        report.contains("FATs, 32 bit entries"),
        "fsck.fat -v does not say FAT32:\n{report}"
    );
    // 13 entries (6 given, 7 implied directories) plus the volume label entry.
    assert!(
        report.contains(": 14 files,"),
        "fsck.fat file count:\n{report}"
    );
    assert_fsck_repair_is_noop(&image);
    assert_mtools_contents(&image, &entries);

    let minfo = text(&run("minfo", &["-i", &image, "::"]));
    assert!(
        minfo.contains("disk label=\"ESP        \""),
        "minfo label:\n{minfo}"
    );
    assert!(
        minfo.contains("serial number: 00455350"),
        "minfo serial:\n{minfo}"
    );
    let file_s = text(&run("file", &["-s", &image]));
    assert!(file_s.contains("FAT (32 bit)"), "file -s: {file_s}");
    assert!(
        file_s.contains("serial number 0x455350"),
        "file -s: {file_s}"
    );
    let mdir = text(&run("mdir", &["-i", &image, "::/"]));
    assert!(
        mdir.contains("Volume in drive : is ESP"),
        "mdir label:\n{mdir}"
    );
    assert!(
        mdir.contains("Volume Serial Number is 0045-5350"),
        "mdir serial:\n{mdir}"
    );
    // Every time stamp is the build time (mtools shows modification times).
    let listing = text(&run("mdir", &["-i", &image, "::/EFI/BOOT"]));
    assert!(
        listing.contains("2024-05-06   7:08"),
        "mdir time:\n{listing}"
    );

    let info = read_vfat_info(File::open(&image).map(ReadOnly).expect("open")).expect("info");
    assert_eq!(info.fat_type, FatType::Fat32);
    assert_eq!(info.volume_id, 0x0045_5350);
    assert_eq!(info.label, "ESP");
    assert_eq!(info.root_label.as_deref(), Some("ESP"));
    assert_eq!(info.cluster_size, 4096);
}

/// Lets a read-only file satisfy the `Write` bound; any write is a bug.
struct ReadOnly(File);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        panic!("reader tried to write");
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for ReadOnly {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

// ---------- 2: sizes and FAT types ----------

#[test]
fn small_and_boundary_sizes_pick_the_right_fat_type_and_pass_fsck() {
    if !have_tools(&["fsck.fat", "mcopy"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let entries = vec![
        file("boot.scr", pattern(3000, 3)),
        file("sub/dir/Image.gz", pattern(300_000, 4)),
        dir("sub/empty"),
    ];
    let cases = [
        // Allwinner boot-resource size.
        (
            4032 * KIB,
            FatType::Auto,
            FatType::Fat12,
            "FATs, 12 bit entries",
        ),
        (
            150 * MIB,
            FatType::Auto,
            FatType::Fat16,
            "FATs, 16 bit entries",
        ),
        (
            512 * MIB,
            FatType::Auto,
            FatType::Fat32,
            "FATs, 32 bit entries",
        ),
        // The ends of each forced range (see volume::size_range).
        (
            size_range(FatType::Fat12).1,
            FatType::Fat12,
            FatType::Fat12,
            "FATs, 12 bit entries",
        ),
        (
            size_range(FatType::Fat16).0,
            FatType::Fat16,
            FatType::Fat16,
            "FATs, 16 bit entries",
        ),
        (
            size_range(FatType::Fat32).0,
            FatType::Fat32,
            FatType::Fat32,
            "FATs, 32 bit entries",
        ),
        (
            size_range(FatType::Fat16).1,
            FatType::Fat16,
            FatType::Fat16,
            "FATs, 16 bit entries",
        ),
    ];
    for (index, (size, requested, expected, fsck_says)) in cases.into_iter().enumerate() {
        let name = format!("case{index}.img");
        let opts = options("BOOT", 0x1234_abcd, requested);
        let image = build_image(tmp.path(), &name, size, &opts, &entries);
        let report = assert_fsck_clean(&image);
        assert!(
            report.contains(fsck_says),
            "{size} bytes: fsck.fat says\n{report}"
        );
        assert_fsck_repair_is_noop(&image);
        assert_mtools_contents(&image, &entries);
        let info = read_vfat_info(File::open(&image).map(ReadOnly).expect("open")).expect("info");
        assert_eq!(info.fat_type, expected, "{size} bytes");
        std::fs::remove_file(&image).expect("cleanup");
    }
}

#[test]
fn no_label_writes_no_name_and_no_label_entry() {
    let mut dev = Cursor::new(vec![0_u8; 4032 * KIB as usize]);
    format_vfat(&mut dev, 4032 * KIB, &options("", 1, FatType::Auto), &[]).expect("format");
    let info = read_vfat_info(&mut dev).expect("info");
    assert_eq!(info.label, "NO NAME");
    assert_eq!(info.root_label, None);
}

/// A device that accepts everything and reads zeros: lets us ask lamfat
/// whether a 2 TiB layout exists without writing 2 TiB.
struct NullDevice {
    pos: u64,
    len: u64,
}

impl Read for NullDevice {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.len.saturating_sub(self.pos) as usize);
        buf[..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for NullDevice {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for NullDevice {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(at) => at,
            SeekFrom::End(delta) => self.len.saturating_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.saturating_add_signed(delta),
        };
        Ok(self.pos)
    }
}

fn lamfat_accepts(size: u64, fat_type: FatType) -> bool {
    let mut dev = lamfat::StdIoWrapper::new(NullDevice { pos: 0, len: size });
    lamfat::format_volume(&mut dev, format_options(size, fat_type, 1, None)).is_ok()
}

#[test]
fn fat_ranges_match_lamfat() {
    for fat_type in [FatType::Fat12, FatType::Fat16, FatType::Fat32] {
        let (min, max) = size_range(fat_type);
        assert!(
            lamfat_accepts(min, fat_type),
            "{fat_type} at its minimum {min}"
        );
        assert!(
            lamfat_accepts(max, fat_type),
            "{fat_type} at its maximum {max}"
        );
        assert!(
            !lamfat_accepts(min - SECTOR_BYTES, fat_type),
            "{fat_type} below {min}"
        );
        if fat_type != FatType::Fat32 {
            assert!(
                !lamfat_accepts(max + SECTOR_BYTES, fat_type),
                "{fat_type} above {max}"
            );
        }
    }
}

#[test]
fn auto_thresholds() {
    let auto = |size| resolve_fat_type(FatType::Auto, size).ok();
    assert_eq!(auto(4032 * KIB), Some(FatType::Fat12));
    assert_eq!(auto(4200 * KIB - SECTOR_BYTES), Some(FatType::Fat12));
    assert_eq!(auto(4200 * KIB), Some(FatType::Fat16));
    assert_eq!(auto(512 * MIB - SECTOR_BYTES), Some(FatType::Fat16));
    assert_eq!(auto(512 * MIB), Some(FatType::Fat32));
    assert_eq!(auto(GIB), Some(FatType::Fat32));
    assert_eq!(auto(20 * KIB), None);
    assert_eq!(auto(GIB + 1), None);
}

// ---------- 3: determinism ----------

fn image_bytes(size: u64, timestamp: i64, entries: &[VfatEntry]) -> Vec<u8> {
    let mut dev = Cursor::new(vec![0_u8; size as usize]);
    let opts = VfatOptions {
        timestamp,
        ..options("ESP", 0x0045_5350, FatType::Auto)
    };
    format_vfat(&mut dev, size, &opts, entries).expect("format");
    dev.into_inner()
}

#[test]
fn same_entries_in_any_order_give_identical_bytes() {
    let entries = esp_entries();
    let mut reversed = entries.clone();
    reversed.reverse();
    let mut rotated = entries.clone();
    rotated.rotate_left(2);
    let size = 40 * MIB;
    let first = image_bytes(size, STAMP, &entries);
    assert!(
        first == image_bytes(size, STAMP, &reversed),
        "reversed input changed the image"
    );
    assert!(
        first == image_bytes(size, STAMP, &rotated),
        "rotated input changed the image"
    );
    // Explicitly listing an implied parent changes nothing either.
    let mut with_parent = entries.clone();
    with_parent.push(dir("EFI/BOOT"));
    assert!(
        first == image_bytes(size, STAMP, &with_parent),
        "explicit parent changed the image"
    );
}

#[test]
fn different_timestamps_give_different_bytes() {
    let entries = esp_entries();
    let size = 40 * MIB;
    let first = image_bytes(size, STAMP, &entries);
    let second = image_bytes(size, STAMP + 3600, &entries);
    assert_eq!(first.len(), second.len());
    assert!(first != second, "time stamp not written");
    let differing = first.iter().zip(&second).filter(|(a, b)| a != b).count();
    // Only directory entry time fields may change, never layout or data.
    assert!(
        differing < 2_000,
        "{differing} bytes differ: more than time stamps"
    );
}

#[test]
fn label_entry_and_files_carry_the_timestamp() {
    if !have_tool("mdir") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let entries = [file("a.txt", b"a".to_vec())];
    for (fat_type, size) in [(FatType::Fat16, 64 * MIB), (FatType::Fat32, 64 * MIB)] {
        // 1999-12-31T23:59:58Z and a time before 1980 (clamped).
        for (timestamp, shown) in [(946_684_798, "1999-12-31  23:59"), (0, "1980-01-01   0:00")] {
            let name = format!("{fat_type}-{timestamp}.img");
            let opts = VfatOptions {
                timestamp,
                ..options("STAMPED", 7, fat_type)
            };
            let image = build_image(tmp.path(), &name, size, &opts, &entries);
            let listing = text(&run("mdir", &["-i", &image, "::/"]));
            assert!(
                listing.contains(shown),
                "{fat_type}: expected {shown}:\n{listing}"
            );
            // The label entry: its date field (offset 24 in the entry) is the stamp too.
            let bytes = read_bytes(&image);
            let label_at = bytes
                .windows(12)
                .position(|w| w == b"STAMPED    \x08")
                .expect("label entry");
            let date = u16::from_le_bytes([bytes[label_at + 24], bytes[label_at + 25]]);
            let expected_year = if timestamp == 0 { 1980 } else { 1999 };
            assert_eq!(
                1980 + (date >> 9),
                expected_year,
                "{fat_type} label entry date"
            );
        }
    }
}

// ---------- 4: round trip ----------

#[test]
fn read_vfat_tree_returns_everything_sorted() {
    let entries = vec![
        file("zz/last.bin", pattern(10_000, 5)),
        file("EFI/BOOT/BOOTRISCV64.EFI", pattern(70_000, 6)),
        dir("EFI/empty"),
        file("Grüße ünïcode.txt", b"utf-16 long name".to_vec()),
        file(&"n".repeat(255), b"longest name".to_vec()),
        file("mixed.Case.Name.tar.gz", Vec::new()),
    ];
    let mut dev = Cursor::new(vec![0_u8; 8 * MIB as usize]);
    format_vfat(
        &mut dev,
        8 * MIB,
        &options("RT", 9, FatType::Auto),
        &entries,
    )
    .expect("format");
    let tree = read_vfat_tree(&mut dev).expect("read back");

    let mut expected = entries.clone();
    expected.push(dir("EFI"));
    expected.push(dir("EFI/BOOT"));
    expected.push(dir("zz"));
    expected.sort_by_cached_key(|entry| super::tree::sort_key(entry.path()));
    assert_eq!(tree, expected);
    // Canonical order: parents before children.
    let paths: Vec<&str> = tree.iter().map(VfatEntry::path).collect();
    let efi = paths.iter().position(|p| *p == "EFI").expect("EFI");
    let boot = paths
        .iter()
        .position(|p| *p == "EFI/BOOT")
        .expect("EFI/BOOT");
    assert!(efi < boot, "{paths:?}");
}

#[test]
fn a_directory_spanning_several_clusters_round_trips() {
    // 150 long names in one directory on FAT12 with 512-byte clusters:
    // the directory chain grows to dozens of clusters.
    let entries: Vec<VfatEntry> = (0..150)
        .map(|i| {
            file(
                &format!("dir/file number {i:03} with a long name.txt"),
                vec![i as u8; i],
            )
        })
        .collect();
    let mut dev = Cursor::new(vec![0_u8; 1024 * KIB as usize]);
    format_vfat(
        &mut dev,
        1024 * KIB,
        &options("MANY", 1, FatType::Auto),
        &entries,
    )
    .expect("format");
    let tree = read_vfat_tree(&mut dev).expect("read back");
    assert_eq!(tree.len(), 151);
    assert_eq!(&tree[1..], &entries[..]);
}

// ---------- 5: must fail ----------

fn format_err(size: u64, opts: &VfatOptions, entries: &[VfatEntry]) -> VfatError {
    let mut dev = Cursor::new(vec![0_u8; size.min(64 * MIB) as usize]);
    format_vfat(&mut dev, size, opts, entries).expect_err("format must fail")
}

#[test]
fn rejects_bad_labels() {
    let too_long = format_err(4 * MIB, &options("ABCDEFGHIJKL", 1, FatType::Auto), &[]);
    assert!(
        matches!(too_long, VfatError::InvalidLabel { .. }),
        "{too_long:?}"
    );
    assert!(
        too_long.to_string().contains("\"ABCDEFGHIJKL\""),
        "{too_long}"
    );
    assert!(too_long.to_string().contains("at most 11"), "{too_long}");
    for bad in ["A.B", "A:B", " LEAD", "ÉFI"] {
        let err = format_err(4 * MIB, &options(bad, 1, FatType::Auto), &[]);
        assert!(
            matches!(err, VfatError::InvalidLabel { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn lower_case_label_is_upper_cased() {
    let mut dev = Cursor::new(vec![0_u8; 4 * MIB as usize]);
    format_vfat(&mut dev, 4 * MIB, &options("boot-a", 1, FatType::Auto), &[]).expect("format");
    let info = read_vfat_info(&mut dev).expect("info");
    assert_eq!(info.label, "BOOT-A");
    assert_eq!(info.root_label.as_deref(), Some("BOOT-A"));
}

#[test]
fn file_too_big_says_needed_and_available() {
    let entries = [file("EFI/BOOT/BOOTRISCV64.EFI", vec![7; 5 * MIB as usize])];
    let err = format_err(4 * MIB, &options("ESP", 1, FatType::Auto), &entries);
    let VfatError::NoSpace {
        needed,
        available,
        cluster_size,
    } = err
    else {
        panic!("expected NoSpace, got {err:?}");
    };
    assert!(
        needed >= 5 * MIB && available < 4 * MIB,
        "{needed} vs {available}"
    );
    let message = err_message(needed, available, cluster_size);
    assert!(message.contains(&needed.to_string()) && message.contains(&available.to_string()));
}

fn err_message(needed: u64, available: u64, cluster_size: u32) -> String {
    VfatError::NoSpace {
        needed,
        available,
        cluster_size,
    }
    .to_string()
}

#[test]
fn exactly_full_volume_fits_and_one_more_cluster_does_not() {
    let size = 4 * MIB;
    let mut dev = Cursor::new(vec![0_u8; size as usize]);
    format_vfat(&mut dev, size, &options("", 1, FatType::Auto), &[]).expect("format");
    let info = read_vfat_info(&mut dev).expect("info");
    let free = u64::from(info.free_clusters) * u64::from(info.cluster_size);
    // A root-level file (root of FAT12 is a fixed region) can use every free byte.
    let fits = [file("fill.bin", pattern(free as usize, 8))];
    let mut dev = Cursor::new(vec![0_u8; size as usize]);
    format_vfat(&mut dev, size, &options("", 1, FatType::Auto), &fits).expect("exactly full");
    let too_big = [file("fill.bin", pattern(free as usize + 1, 8))];
    let err = format_err(size, &options("", 1, FatType::Auto), &too_big);
    assert!(
        matches!(err, VfatError::NoSpace { available, .. } if available == free),
        "{err:?}"
    );
}

#[test]
fn space_estimate_is_exact_for_a_directory_that_fills_its_cluster() {
    // 512-byte clusters (FAT12 under 1 MiB) hold 16 entries: "." + ".." +
    // 7 one-letter names (long + short entry each) fill "d" exactly.
    let size = 512 * KIB;
    let mut dev = Cursor::new(vec![0_u8; size as usize]);
    format_vfat(&mut dev, size, &options("", 1, FatType::Auto), &[]).expect("format");
    let info = read_vfat_info(&mut dev).expect("info");
    assert_eq!(info.cluster_size, 512);
    let free = u64::from(info.free_clusters) * 512;
    let mut entries: Vec<VfatEntry> = "abcdefg"
        .chars()
        .map(|c| file(&format!("d/{c}"), Vec::new()))
        .collect();
    // Everything left after the one directory cluster goes to one file.
    entries.push(file("fill.bin", pattern((free - 512) as usize, 9)));
    let mut dev = Cursor::new(vec![0_u8; size as usize]);
    format_vfat(&mut dev, size, &options("", 1, FatType::Auto), &entries).expect("exactly full");
    assert_eq!(read_vfat_info(&mut dev).expect("info").free_clusters, 0);
    assert_eq!(
        read_vfat_tree(&mut dev).expect("tree").len(),
        entries.len() + 1
    );
    // One more name needs a second directory cluster, which is not there.
    entries.push(file("d/h", Vec::new()));
    let err = format_err(size, &options("", 1, FatType::Auto), &entries);
    assert!(
        matches!(err, VfatError::NoSpace { needed, available, .. } if needed == available + 512),
        "{err:?}"
    );
}

#[test]
fn rejects_duplicates_and_clashes_naming_the_path() {
    let opts = options("X", 1, FatType::Auto);
    let cases: Vec<(Vec<VfatEntry>, &str)> = vec![
        (
            vec![file("a/b", vec![1]), file("a/b", vec![2])],
            "\"a/b\" is given twice",
        ),
        (vec![dir("a/c"), dir("a/c")], "\"a/c\" is given twice"),
        (
            vec![file("a", vec![1]), file("a/b", vec![2])],
            "\"a\" is a file",
        ),
        (
            vec![file("a/b/c", vec![1]), file("a/b", vec![2])],
            "\"a/b\" is a file",
        ),
        (
            vec![file("EFI/x", vec![1]), file("efi/y", vec![2])],
            "same FAT entry",
        ),
        (
            vec![file("README", vec![1]), file("readme", vec![2])],
            "same FAT entry",
        ),
    ];
    for (entries, expected) in cases {
        let err = format_err(4 * MIB, &opts, &entries);
        assert!(err.to_string().contains(expected), "{entries:?}: {err}");
        // The error does not depend on input order.
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(
            format_err(4 * MIB, &opts, &reversed).to_string(),
            err.to_string()
        );
    }
}

#[test]
fn rejects_invalid_names_naming_the_path() {
    let opts = options("X", 1, FatType::Auto);
    for bad in [
        "EFI/bo:ot/x",
        "a*b",
        "q?",
        "a\"b",
        "a<b",
        "pipe|",
        "back\\slash",
        "/abs",
        "a//b",
        "trailing/",
        "dot./x",
        "space ",
        "./x",
        "a/../b",
        "tab\there",
        "emoji\u{1F600}",
    ] {
        let err = format_err(4 * MIB, &opts, &[file(bad, vec![1])]);
        assert!(
            matches!(err, VfatError::InvalidPath { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{bad:?}")),
            "{bad:?}: {err}"
        );
    }
    let long = "x".repeat(256);
    let err = format_err(4 * MIB, &opts, &[dir(&long)]);
    assert!(err.to_string().contains("longer than 255"), "{err}");
}

#[test]
fn forced_fat32_on_4mib_names_size_and_range() {
    let err = format_err(4 * MIB, &options("X", 1, FatType::Fat32), &[]);
    let message = err.to_string();
    assert!(matches!(err, VfatError::SizeOutOfRange { .. }), "{err:?}");
    assert!(message.contains("4194304 bytes"), "{message}");
    assert!(
        message.contains("FAT32 needs 34077184..=2199023255040 bytes"),
        "{message}"
    );
    // FAT12 cannot hold a 1 GiB ESP either.
    let err = format_err(GIB, &options("X", 1, FatType::Fat12), &[]);
    assert!(
        err.to_string()
            .contains("FAT12 needs 21504..=133885952 bytes"),
        "{err}"
    );
}

#[test]
fn rejects_unaligned_size_and_full_fat16_root() {
    let err = format_err(4 * MIB + 100, &options("X", 1, FatType::Auto), &[]);
    assert!(
        matches!(err, VfatError::UnalignedSize { size } if size == 4 * MIB + 100),
        "{err:?}"
    );
    // 513 short names: 2 entries each (long + short) = 1026 > 512 root entries.
    let many: Vec<VfatEntry> = (0..513)
        .map(|i| file(&format!("F{i}"), Vec::new()))
        .collect();
    let err = format_err(8 * MIB, &options("", 1, FatType::Auto), &many);
    assert!(
        matches!(
            err,
            VfatError::RootDirFull {
                needed: 1026,
                capacity: 512,
                ..
            }
        ),
        "{err:?}"
    );
}
