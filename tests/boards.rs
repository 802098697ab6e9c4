//! Hardware boards built for real: `boards/rock3a` and `boards/nezha` from a
//! small synthetic rootfs with stand-in boot loaders of the real sizes,
//! checked by the reference tools (sgdisk -v, sfdisk -d, e2fsck -fn,
//! fsck.fat -n, debugfs, mtype) and byte for byte at every blob offset.
//! Plus the plan output, the conflict map, the missing-blob error, and (slow,
//! MKIMG_SLOW_TESTS=1) U-Boot booting an extlinux image in QEMU to a shell.
//!
//! Nothing binary is stored: stand-in blobs are generated here (a fixed
//! pattern with the magic the board checks), the rootfs tarball too.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

mod support;

use support::build::Build;
use support::run::{mkimg_command, run_tool, text};
use support::tools::have_tools;

const ROCK3A_ROOT_UUID: &str = "726f636b-3361-4000-8000-0000726f6f74";
const NEZHA_ROOT_UUID: &str = "6e657a68-6100-4000-8000-0000726f6f74";
const VERSION: &str = "6.1.0-test";
/// GPT type GUIDs as sfdisk prints them.
const LINUX_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const ROOT_AARCH64: &str = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";
const ROOT_RISCV64: &str = "72EC70A6-CF74-40E6-BD49-4BDA08E8F224";
const BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every build and plan here is made at this time.
const SOURCE_DATE_EPOCH: &str = "1700000000";

fn mkimg(args: &[&str]) -> Output {
    mkimg_command(args)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .output()
        .expect("run mkimg")
}

/// `len` bytes of a fixed pattern with `magic` at `at`: a stand-in for a
/// boot loader the board checks by its magic.
fn stand_in(len: usize, seed: u8, magic: &[u8], at: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 1)
        .collect();
    data[at..at + magic.len()].copy_from_slice(magic);
    data
}

fn idbloader() -> Vec<u8> {
    stand_in(304_912, 1, b"RKNS", 0)
}

fn u_boot_itb() -> Vec<u8> {
    stand_in(1_466_928, 2, &[0xd0, 0x0d, 0xfe, 0xed], 0)
}

fn boot0() -> Vec<u8> {
    stand_in(65_536, 3, b"eGON.BT0", 4)
}

fn boot_package() -> Vec<u8> {
    stand_in(4_300_800, 4, b"sunxi-package", 0)
}

fn env_image() -> Vec<u8> {
    let mut env = b"\0\0\0\0bootcmd=run distro_bootcmd\0\0".to_vec();
    env.resize(252 * 1024, 0);
    env
}

/// A tiny rootfs: an ELF /usr/bin/true of `arch` (a real 64-byte header
/// from tests/fixtures/elf, padded), a kernel and initrd in /boot, DTBs
/// where rock3a's fdtdir points, and `extra` files.
fn rootfs_tar(path: &Path, elf_fixture: &str, kernel: &str, extra: &[(&str, Vec<u8>)]) {
    let names = Naming {
        kernel: format!("{kernel}-{VERSION}"),
        initrd: format!("initrd.img-{VERSION}"),
        os_release: "PRETTY_NAME=\"Test\"\nID=debian\nVERSION_ID=13\n",
    };
    rootfs_tar_named(path, elf_fixture, &names, extra);
}

/// How a distro names what the rootfs holds.
struct Naming {
    /// File name in /boot.
    kernel: String,
    /// File name in /boot.
    initrd: String,
    os_release: &'static str,
}

/// [`rootfs_tar`] with the kernel, initrd and os-release of `names`.
fn rootfs_tar_named(path: &Path, elf_fixture: &str, names: &Naming, extra: &[(&str, Vec<u8>)]) {
    let mut elf = fs::read(manifest_dir().join("tests/fixtures/elf").join(elf_fixture)).unwrap();
    elf.resize(4096, 0);
    let mut builder = tar::Builder::new(File::create(path).unwrap());
    let mut add = |name: &str, data: Option<&[u8]>, mode: u32| {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(mode);
        match data {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, name, data).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, name, &[][..]).unwrap();
            }
        }
    };
    for dir in [
        "./",
        "boot/",
        "boot/dtbs/",
        "boot/dtbs/6.1.0-test/",
        "boot/dtbs/6.1.0-test/rockchip/",
        "etc/",
        "usr/",
        "usr/bin/",
        "usr/lib/",
        "root/",
        "tmp/",
    ] {
        add(dir, None, 0o755);
    }
    add("usr/bin/true", Some(&elf), 0o755);
    add("etc/os-release", Some(names.os_release.as_bytes()), 0o644);
    add(
        &format!("boot/{}", names.kernel),
        Some(b"not a kernel"),
        0o644,
    );
    add(
        &format!("boot/{}", names.initrd),
        Some(b"not an initrd"),
        0o644,
    );
    add(
        "boot/dtbs/6.1.0-test/rockchip/rk3568-rock-3a.dtb",
        Some(&[0xd0, 0x0d, 0xfe, 0xed]),
        0o644,
    );
    let mut made = std::collections::BTreeSet::new();
    for (name, data) in extra {
        let mut parent = String::new();
        for part in name.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            parent.push_str(part);
            parent.push('/');
            if !["usr/", "usr/lib/", "boot/", "etc/"].contains(&parent.as_str())
                && made.insert(parent.clone())
            {
                add(&parent, None, 0o755);
            }
        }
        add(name, Some(data), 0o644);
    }
    builder.into_inner().unwrap().sync_all().unwrap();
}

/// A builtin board copied into `dir/board` with `files` beside it; the
/// board text passes through `edit`.
fn board_copy(
    dir: &Path,
    name: &str,
    edit: impl Fn(String) -> String,
    files: &[(&str, &[u8])],
) -> PathBuf {
    let board = dir.join("board");
    fs::create_dir_all(&board).unwrap();
    let text =
        fs::read_to_string(manifest_dir().join("boards").join(name).join("board.toml")).unwrap();
    fs::write(board.join("board.toml"), edit(text)).unwrap();
    for (file, data) in files {
        fs::write(board.join(file), data).unwrap();
    }
    board.join("board.toml")
}

fn build(board: &Path, rootfs: &Path, out: &Path, extra: &[&str]) -> Output {
    Build::new(board, rootfs, out)
        .format("raw")
        .long_output()
        .args(extra)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .output()
}

fn read_at(image: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut file = File::open(image).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).unwrap();
    buf
}

fn assert_bytes_at(image: &Path, offset: u64, data: &[u8], what: &str) {
    assert!(
        read_at(image, offset, data.len()) == data,
        "{what}: the image differs from the file at {offset:#x}"
    );
}

/// Copy one partition out of the image (its data extents only: the image
/// is sparse) for the filesystem checkers, which have no offset option.
fn extract(image: &Path, start: u64, size: u64, out: &Path) -> PathBuf {
    let mut src = File::open(image).unwrap();
    let mut dst = File::create(out).unwrap();
    dst.set_len(size).unwrap();
    let total = src.metadata().unwrap().len();
    let extents = mkimg::host::sparse::data_extents(&src, total).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for (from, to) in extents {
        let (from, to) = (from.max(start), to.min(start + size));
        let mut pos = from;
        while pos < to {
            let want = (to - pos).min(buf.len() as u64) as usize;
            src.seek(SeekFrom::Start(pos)).unwrap();
            src.read_exact(&mut buf[..want]).unwrap();
            dst.seek(SeekFrom::Start(pos - start)).unwrap();
            dst.write_all(&buf[..want]).unwrap();
            pos += want as u64;
        }
    }
    out.to_path_buf()
}

/// `sgdisk -v` finds no problem; the only warning allowed is the gap
/// between the entry array and the first usable sector that the blobs
/// occupy on purpose.
fn check_sgdisk(image: &Path) {
    let out = run_tool("sgdisk", &["-v", image.to_str().unwrap()]);
    assert!(out.contains("No problems found"), "sgdisk -v:\n{out}");
    assert!(!out.contains("Caution"), "sgdisk -v:\n{out}");
    for paragraph in out.split("\n\n").filter(|p| p.contains("Warning")) {
        assert!(
            paragraph.contains("Warning: There is a gap between the main"),
            "sgdisk -v warns:\n{out}"
        );
    }
}

/// One `sfdisk -d` partition line: (start, size, type, name, attrs).
type SfdiskPart = (u64, u64, String, String, String);

/// The `sfdisk -d` text and its partition lines.
fn sfdisk_parts(image: &Path) -> (String, Vec<SfdiskPart>) {
    let dump = run_tool("sfdisk", &["-d", image.to_str().unwrap()]);
    let field = |line: &str, key: &str| -> String {
        line.split(", ")
            .map(str::trim)
            .find_map(|f| f.split_once(" : ").map_or(f, |(_, f)| f).strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let parts = dump
        .lines()
        .filter(|l| l.contains(" : start="))
        .map(|l| {
            (
                field(l, "start=").parse().unwrap(),
                field(l, "size=").parse().unwrap(),
                field(l, "type="),
                field(l, "name="),
                field(l, "attrs="),
            )
        })
        .collect();
    (dump, parts)
}

/// The regions of `mkimg plan --json`: (name, kind, start, end).
fn plan_regions(board: &Path) -> Vec<(String, u64, u64)> {
    let out = mkimg(&["plan", "--board", board.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layout = &json["layout"];
    let ss = layout["sector_size"].as_u64().unwrap();
    let gpt = &layout["gpt"];
    let array = gpt["entry_array_sectors"].as_u64().unwrap() * ss;
    let at = |key: &str| gpt[key].as_u64().unwrap() * ss;
    let mut regions = vec![
        ("primary GPT header".to_string(), ss, 2 * ss),
        (
            "primary GPT entries".to_string(),
            at("entries_lba"),
            at("entries_lba") + array,
        ),
        (
            "backup GPT entries".to_string(),
            at("backup_entries_lba"),
            at("backup_entries_lba") + array,
        ),
        (
            "backup GPT header".to_string(),
            at("backup_header_lba"),
            at("backup_header_lba") + ss,
        ),
    ];
    for blob in layout["blobs"].as_array().unwrap() {
        let start = blob["offset"].as_u64().unwrap();
        regions.push((
            format!("blob {}", blob["name"].as_str().unwrap()),
            start,
            start + blob["size"].as_u64().unwrap(),
        ));
    }
    regions
}

/// Neither GPT copy overlaps a blob's room.
fn check_gpt_clear_of_blobs(board: &Path) {
    let regions = plan_regions(board);
    let (blobs, tables): (Vec<_>, Vec<_>) = regions.iter().partition(|r| r.0.starts_with("blob"));
    assert!(!blobs.is_empty());
    for b in &blobs {
        for t in &tables {
            assert!(b.2 <= t.1 || t.2 <= b.1, "{b:?} overlaps {t:?}");
        }
    }
}

fn debugfs_cat(fs_image: &Path, path: &str) -> String {
    run_tool(
        "debugfs",
        &["-R", &format!("cat {path}"), fs_image.to_str().unwrap()],
    )
}

#[test]
fn rock3a_builds_with_blobs_ext4_boot_and_extlinux() {
    if !have_tools(&["sgdisk", "sfdisk", "e2fsck", "debugfs", "mke2fs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // idbloader.img next to the board, u-boot.itb given with --blob.
    let board = board_copy(
        dir.path(),
        "rock3a",
        |t| t,
        &[("idbloader.img", &idbloader())],
    );
    let itb = dir.path().join("u-boot.itb");
    fs::write(&itb, u_boot_itb()).unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    rootfs_tar(&rootfs, "dash-arm64.elfhdr", "vmlinuz", &[]);
    let out = dir.path().join("out");
    let blob_arg = format!("u-boot={}", itb.display());
    let result = build(&board, &rootfs, &out, &["--blob", &blob_arg]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert!(
        text(&result.stderr)
            .contains("extlinux.conf on partition 1 'boot': /extlinux/extlinux.conf"),
        "{}",
        text(&result.stderr)
    );
    let image = out.join("rock3a.raw");

    assert_bytes_at(&image, 64 * 512, &idbloader(), "idbloader");
    assert_bytes_at(&image, 16384 * 512, &u_boot_itb(), "u-boot.itb");
    check_sgdisk(&image);
    check_gpt_clear_of_blobs(&board);
    let (dump, parts) = sfdisk_parts(&image);
    assert!(dump.contains("label: gpt"), "{dump}");
    assert_eq!(
        parts,
        [
            (
                32768,
                1_015_808,
                LINUX_DATA.to_string(),
                "boot".to_string(),
                "LegacyBIOSBootable".to_string()
            ),
            (
                1_048_576,
                6_291_456,
                ROOT_AARCH64.to_string(),
                "rootfs".to_string(),
                String::new()
            ),
        ],
        "{dump}"
    );

    let boot = extract(&image, 16 << 20, 496 << 20, &dir.path().join("boot.img"));
    let root = extract(&image, 512 << 20, 3 << 30, &dir.path().join("root.img"));
    for fs_image in [&boot, &root] {
        run_tool("e2fsck", &["-fn", fs_image.to_str().unwrap()]);
    }
    let label = run_tool("e2label", &[boot.to_str().unwrap()]);
    assert_eq!(label.trim(), "boot");
    let fstab = debugfs_cat(&root, "/etc/fstab");
    assert!(
        fstab.contains(&format!("UUID={ROCK3A_ROOT_UUID}")) && fstab.contains(" /boot "),
        "{fstab}"
    );
    assert!(
        fstab
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/")),
        "{fstab}"
    );
    let conf = debugfs_cat(&boot, "/extlinux/extlinux.conf");
    for want in [
        &format!("\tkernel /vmlinuz-{VERSION}\n"),
        &format!("\tinitrd /initrd.img-{VERSION}\n"),
        &format!("\tfdtdir /dtbs/{VERSION}/\n"),
        &format!("\tappend root=UUID={ROCK3A_ROOT_UUID} rootwait ro console=ttyS2,1500000\n"),
    ] {
        assert!(conf.contains(want.as_str()), "no {want:?} in:\n{conf}");
    }
    // The kernel went to the boot partition, not the root.
    let listing = run_tool("debugfs", &["-R", "ls -l /", boot.to_str().unwrap()]);
    assert!(listing.contains(&format!("vmlinuz-{VERSION}")), "{listing}");
}

#[test]
fn rock3a_single_u_boot_rockchip_bin_from_the_rootfs() {
    if !have_tools(&["mke2fs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Mainline's one-file form, shipped in the rootfs the way distros do.
    let one_blob = |t: String| {
        let start = t.find("[[blob]]").unwrap();
        let end = t.find("[[partition]]").unwrap();
        format!(
            "{}[[blob]]\nname = \"u-boot-rockchip\"\nsource = \"rootfs:/usr/lib/u-boot/rock-3a-rk3568/u-boot-rockchip.bin\"\noffset = \"64s\"\nsize = \"16352K\"\nmagic = \"RKNS\"\nhint = \"Debian's u-boot-rockchip\"\n\n{}",
            &t[..start],
            &t[end..]
        )
    };
    let board = board_copy(dir.path(), "rock3a", one_blob, &[]);
    let mut bin = idbloader();
    bin.resize((16384 - 64) * 512, 0);
    bin.extend_from_slice(&u_boot_itb());
    let rootfs = dir.path().join("rootfs.tar");
    rootfs_tar(
        &rootfs,
        "dash-arm64.elfhdr",
        "vmlinuz",
        &[(
            "usr/lib/u-boot/rock-3a-rk3568/u-boot-rockchip.bin",
            bin.clone(),
        )],
    );
    let out = dir.path().join("out");
    let result = build(&board, &rootfs, &out, &[]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let image = out.join("rock3a.raw");
    assert_bytes_at(&image, 64 * 512, &bin, "u-boot-rockchip.bin");

    // Not in the rootfs: the error names the path and where it comes from.
    let bare = dir.path().join("bare.tar");
    rootfs_tar(&bare, "dash-arm64.elfhdr", "vmlinuz", &[]);
    let result = build(&board, &bare, &dir.path().join("out2"), &[]);
    let err = text(&result.stderr);
    assert!(!result.status.success());
    assert!(
        err.contains(
            "blob 'u-boot-rockchip': rootfs:/usr/lib/u-boot/rock-3a-rk3568/u-boot-rockchip.bin is not in the rootfs"
        ) && err.contains("usually comes from Debian's u-boot-rockchip"),
        "{err}"
    );
    // --blob replaces the rootfs source.
    let file = dir.path().join("u-boot-rockchip.bin");
    fs::write(&file, &bin).unwrap();
    let arg = format!("u-boot-rockchip={}", file.display());
    let result = build(&board, &bare, &dir.path().join("out3"), &["--blob", &arg]);
    assert!(result.status.success(), "{}", text(&result.stderr));
}

#[test]
fn missing_and_wrong_blobs_fail_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let board = board_copy(dir.path(), "rock3a", |t| t, &[]);
    let rootfs = dir.path().join("rootfs.tar");
    rootfs_tar(&rootfs, "dash-arm64.elfhdr", "vmlinuz", &[]);
    let result = build(&board, &rootfs, &dir.path().join("out"), &[]);
    let err = text(&result.stderr);
    assert!(!result.status.success());
    assert!(
        err.contains("idbloader.img not found")
            && err.contains("It usually comes from U-Boot built for rock-3a-rk3568")
            && err.contains("--blob idbloader=PATH"),
        "{err}"
    );
    assert!(
        !err.contains("rootfs "),
        "failed after reading the rootfs:\n{err}"
    );
    // A file without the Rockchip magic is refused.
    let wrong = dir.path().join("wrong.img");
    fs::write(&wrong, vec![0u8; 4096]).unwrap();
    let arg = format!("idbloader={}", wrong.display());
    let result = build(&board, &rootfs, &dir.path().join("out"), &["--blob", &arg]);
    let err = text(&result.stderr);
    assert!(err.contains("lacks the magic \"RKNS\" at byte 0"), "{err}");
    // An unknown name lists the board's blobs.
    let result = build(
        &board,
        &rootfs,
        &dir.path().join("out"),
        &["--blob", "spl=x"],
    );
    let err = text(&result.stderr);
    assert!(
        err.contains("has no blob or raw partition named \"spl\" (it has: idbloader, u-boot)"),
        "{err}"
    );
}

#[test]
fn nezha_builds_with_moved_array_raw_env_and_vfat_boot() {
    if !have_tools(&[
        "sgdisk", "sfdisk", "e2fsck", "debugfs", "fsck.fat", "mtype", "mke2fs",
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let board = board_copy(
        dir.path(),
        "nezha",
        |t| t,
        &[
            ("boot0_sdcard.fex", &boot0()),
            ("boot_package.fex", &boot_package()),
            ("env.fex", &env_image()),
        ],
    );
    let rootfs = dir.path().join("rootfs.tar");
    rootfs_tar(&rootfs, "dash-riscv64.elfhdr", "vmlinux", &[]);
    let out = dir.path().join("out");
    let result = build(&board, &rootfs, &out, &[]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let image = out.join("nezha.raw");

    assert_bytes_at(&image, 8 * 1024, &boot0(), "boot0");
    assert_eq!(&read_at(&image, 8 * 1024 + 4, 8), b"eGON.BT0");
    assert_bytes_at(&image, 32800 * 512, &boot_package(), "boot package");
    check_sgdisk(&image);
    check_gpt_clear_of_blobs(&board);
    // The primary header points at the moved array (LBA 2048 = 1 MiB).
    let header = read_at(&image, 512, 92);
    assert_eq!(&header[..8], b"EFI PART");
    assert_eq!(u64::from_le_bytes(header[72..80].try_into().unwrap()), 2048);

    let (dump, parts) = sfdisk_parts(&image);
    let want = [
        (73728, 8064, BASIC_DATA, "boot-resource", ""),
        (81792, 504, BASIC_DATA, "env", ""),
        (82296, 504, BASIC_DATA, "env-redund", ""),
        (82800, 307_200, BASIC_DATA, "boot", "LegacyBIOSBootable"),
        (390_000, 7_998_568, ROOT_RISCV64, "rootfs", ""),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(s, n, t, name, a)| (*s, *n, t.to_string(), name.to_string(), a.to_string()))
        .collect();
    assert_eq!(parts, want, "{dump}");

    // Raw partitions hold the environment file, byte for byte.
    assert_bytes_at(&image, 81792 * 512, &env_image(), "env");
    assert_bytes_at(&image, 82296 * 512, &env_image(), "env-redund");

    let res = extract(&image, 73728 * 512, 8064 * 512, &dir.path().join("res.img"));
    let boot = extract(
        &image,
        82800 * 512,
        307_200 * 512,
        &dir.path().join("boot.img"),
    );
    let root = extract(
        &image,
        390_000 * 512,
        7_998_568 * 512,
        &dir.path().join("root.img"),
    );
    for fat in [&res, &boot] {
        run_tool("fsck.fat", &["-n", fat.to_str().unwrap()]);
    }
    run_tool("e2fsck", &["-fn", root.to_str().unwrap()]);
    let fstab = debugfs_cat(&root, "/etc/fstab");
    assert!(
        fstab.contains(&format!("UUID={NEZHA_ROOT_UUID}")) && fstab.contains("UUID=6E65-7A32"),
        "{fstab}"
    );
    let mounts: Vec<&str> = fstab
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(mounts, ["/", "/boot"], "{fstab}");
    let conf = run_tool(
        "mtype",
        &["-i", boot.to_str().unwrap(), "::/extlinux/extlinux.conf"],
    );
    for want in [
        &format!("\tkernel /vmlinux-{VERSION}\n"),
        &format!("\tinitrd /initrd.img-{VERSION}\n"),
        &format!(
            "\tappend root=UUID={NEZHA_ROOT_UUID} rootwait ro earlycon=sbi console=ttyS0,115200\n"
        ),
    ] {
        assert!(conf.contains(want.as_str()), "no {want:?} in:\n{conf}");
    }
    assert!(!conf.contains("fdtdir"), "{conf}");
}

/// rock3a and nezha (both /boot on its own partition) with an openEuler-
/// and a Fedora-layout rootfs: extlinux.conf names `vmlinuz-<v>` and
/// dracut's `initramfs-<v>.img`; with BLS entries (Fedora) it boots what
/// the entry declares — its title, its options (the marker) — with the
/// image's root instead of the entry's.
#[test]
fn rock3a_and_nezha_extlinux_follow_openeuler_and_fedora_layouts() {
    if !have_tools(&["debugfs", "mtype", "mke2fs"]) {
        return;
    }
    const MARKER: &str = "mkimg.bls=fedora-entry";
    const ENTRY_ROOT: &str = "root=UUID=00000000-0000-0000-0000-000000000000";
    let rpm_names = |os_release| Naming {
        kernel: format!("vmlinuz-{VERSION}"),
        initrd: format!("initramfs-{VERSION}.img"),
        os_release,
    };
    let openeuler = rpm_names(
        "NAME=\"openEuler\"\nVERSION=\"24.03 (LTS)\"\nID=\"openEuler\"\n\
         VERSION_ID=\"24.03\"\nPRETTY_NAME=\"openEuler 24.03 (LTS)\"\n",
    );
    let fedora = rpm_names(
        "NAME=\"Fedora Linux\"\nVERSION_ID=41\nID=fedora\n\
         PRETTY_NAME=\"Fedora Linux 41 (Forty One)\"\n",
    );
    // /boot is its own partition on both boards: the entry names files
    // from that filesystem's top, as kernel-install writes them there.
    let entry = format!(
        "title Fedora Linux ({VERSION}) 41\nversion {VERSION}\nlinux /vmlinuz-{VERSION}\n\
         initrd /initramfs-{VERSION}.img\noptions {ENTRY_ROOT} ro {MARKER}\n\
         grub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"
    );
    let entry_path = format!("boot/loader/entries/6d6b696d672d6665646f72612d6c6179-{VERSION}.conf");
    for (layout, names, bls) in [("openeuler", &openeuler, false), ("fedora", &fedora, true)] {
        let extra: Vec<(&str, Vec<u8>)> = if bls {
            vec![(entry_path.as_str(), entry.clone().into_bytes())]
        } else {
            Vec::new()
        };
        for board_name in ["rock3a", "nezha"] {
            let dir = tempfile::tempdir().unwrap();
            let (files, elf, root_uuid): (Vec<(&str, Vec<u8>)>, _, _) = if board_name == "rock3a" {
                (
                    vec![("idbloader.img", idbloader()), ("u-boot.itb", u_boot_itb())],
                    "dash-arm64.elfhdr",
                    ROCK3A_ROOT_UUID,
                )
            } else {
                (
                    vec![
                        ("boot0_sdcard.fex", boot0()),
                        ("boot_package.fex", boot_package()),
                        ("env.fex", env_image()),
                    ],
                    "dash-riscv64.elfhdr",
                    NEZHA_ROOT_UUID,
                )
            };
            let files: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
            let board = board_copy(dir.path(), board_name, |t| t, &files);
            let rootfs = dir.path().join("rootfs.tar");
            rootfs_tar_named(&rootfs, elf, names, &extra);
            let out = dir.path().join("out");
            let mut blob = Vec::new();
            let itb = board.parent().unwrap().join("u-boot.itb");
            let blob_arg = format!("u-boot={}", itb.display());
            if board_name == "rock3a" {
                blob = vec!["--blob", blob_arg.as_str()];
            }
            let result = build(&board, &rootfs, &out, &blob);
            let log = text(&result.stderr);
            assert!(result.status.success(), "{board_name} {layout}: {log}");
            let image = out.join(format!("{board_name}.raw"));
            let conf = if board_name == "rock3a" {
                let boot = extract(&image, 16 << 20, 496 << 20, &dir.path().join("boot.img"));
                debugfs_cat(&boot, "/extlinux/extlinux.conf")
            } else {
                let boot = extract(
                    &image,
                    82800 * 512,
                    307_200 * 512,
                    &dir.path().join("boot.img"),
                );
                run_tool(
                    "mtype",
                    &["-i", boot.to_str().unwrap(), "::/extlinux/extlinux.conf"],
                )
            };
            let context = format!("{board_name} {layout}:\n{conf}\n{log}");
            for want in [
                format!("\tkernel /vmlinuz-{VERSION}\n"),
                format!("\tinitrd /initramfs-{VERSION}.img\n"),
                format!("\tappend root=UUID={root_uuid} rootwait ro "),
            ] {
                assert!(conf.contains(&want), "no {want:?}: {context}");
            }
            if bls {
                assert!(conf.contains(MARKER), "no BLS options: {context}");
                assert!(!conf.contains(ENTRY_ROOT), "the entry's root: {context}");
                assert!(
                    conf.contains(&format!("\tmenu label Fedora Linux ({VERSION}) 41\n")),
                    "no BLS title: {context}"
                );
                assert!(log.contains("from /boot/loader/entries"), "{context}");
            } else {
                assert!(log.contains("distro: openEuler"), "{context}");
            }
        }
    }
}

#[test]
fn plan_shows_blobs_and_the_moved_array() {
    let out = mkimg(&["plan", "--board", "rock3a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for row in [
        "blob 'idbloader'           32768     8388608         64     16383  8160K  raw blob",
        "blob 'u-boot'            8388608    16777216      16384     32767     8M  raw blob",
        "partition 1 'boot'      16777216   536870912      32768",
        "partition 2 'rootfs'   536870912  3758096384    1048576",
    ] {
        assert!(plan.contains(row), "no {row:?} in:\n{plan}");
    }
    // The files are not in the repository: the plan warns where they come from.
    assert!(
        text(&out.stderr).contains("usually comes from U-Boot built for rock-3a-rk3568"),
        "{}",
        text(&out.stderr)
    );

    let out = mkimg(&["plan", "--board", "nezha"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("128 entries at LBA 2048, usable LBA 73728.."),
        "{plan}"
    );
    let order: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.split("  ").next())
        .filter(|r| r.starts_with("blob") || r.starts_with("primary GPT entries"))
        .collect();
    assert_eq!(
        order,
        ["blob 'boot0'", "primary GPT entries", "blob 'boot-package'"],
        "{plan}"
    );
    assert!(
        plan.contains("blob 'boot-package'            16793600    37748736      32800"),
        "{plan}"
    );
}

#[test]
fn moving_a_blob_onto_the_entry_array_fails_with_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let board = board_copy(
        dir.path(),
        "nezha",
        |t| t.replacen("offset = \"8K\"", "offset = \"1020K\"", 1),
        &[],
    );
    let out = mkimg(&["plan", "--board", board.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for want in [
        "blob 'boot0' and primary GPT entries overlap by 16384 bytes at 0x100000..0x104000",
        "fix: move the GPT entry array clear of the blob",
        "disk map:",
        "!! blob 'boot0'                              0xff000 ..       0x1fd000",
        "!! primary GPT entries                      0x100000 ..       0x104000",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }
}

/// U-Boot (Debian's u-boot-qemu, qemu_arm64, `-bios`) finds our
/// extlinux.conf through distro boot, boots the Debian kernel with
/// root=UUID=, and systemd gives a login on the serial console.
#[test]
fn u_boot_boots_the_extlinux_image_to_a_shell() {
    if std::env::var("MKIMG_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIP: set MKIMG_SLOW_TESTS=1 to boot U-Boot + extlinux in QEMU");
        return;
    }
    let rootfs = std::env::var_os("MKIMG_TEST_ROOTFS_AARCH64")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/mkimg-dev/rootfs-aarch64.tar"));
    if !rootfs.is_file() {
        eprintln!(
            "SKIP: no aarch64 rootfs at {} (make one: mkimg rootfs --board qemu-aarch64 -o {0}; \
             or set MKIMG_TEST_ROOTFS_AARCH64)",
            rootfs.display()
        );
        return;
    }
    if !have_tools(&["qemu-system-aarch64"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = mkimg(&[
        "build",
        "--board",
        "qemu-aarch64-uboot",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--bootloader",
        "extlinux",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert!(out.join("u-boot.bin").is_file());
    let script = fs::read_to_string(out.join("start_vm.sh")).unwrap();
    assert!(script.contains("-bios \"$here/u-boot.bin\""), "{script}");
    let boot = mkimg(&[
        "boot",
        out.to_str().unwrap(),
        "--markers",
        "firmware,kernel,root,login",
        "--login",
        "root:root",
        "--run",
        "cat /proc/cmdline",
        "--timeout",
        "900",
        "--log",
        dir.path().join("console.log").to_str().unwrap(),
    ]);
    let console = fs::read_to_string(dir.path().join("console.log")).unwrap_or_default();
    assert!(
        boot.status.success(),
        "{}\n--- console ---\n{console}",
        text(&boot.stderr)
    );
    let cmdline = text(&boot.stdout);
    assert!(
        cmdline.contains("root=UUID=75626f6f-7471-656d-7561-613634726f6f"),
        "{cmdline}"
    );
    assert!(
        console.contains("Retrieving file: /boot/extlinux/extlinux.conf")
            || console.contains("Found /boot/extlinux/extlinux.conf"),
        "{console}"
    );
}
