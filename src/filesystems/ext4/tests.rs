//! Tests for the ext4 stage. Pure ones check argv, messages and parsing;
//! oracle ones build real images and ask e2fsck, dumpe2fs, debugfs, cmp and
//! (as root) the kernel through a read-only loop mount.

use std::fs;
use std::io::{BufWriter, Cursor};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;
use tar::{EntryType, Header};
use uuid::Uuid;

use super::fit::{journal_bytes, suggest_size};
use super::xattrs::{check_record, fs_path, restore_xattrs, same_value};
use super::{
    build_ext4, check_fits, check_inodes, estimate_needed, measure_tar, mke2fs_cmd,
    parse_e2fsprogs_version, parse_report, resolve_sbin, run_mke2fs, Ext4Error, Ext4Params,
    TarUsage, XattrRecord, MIB,
};
use crate::host::cmd::Cmd;
use crate::host::loopdev::LoopDevice;
use crate::host::mount::Mount;
use crate::host::test_support::attach_read_only;
use crate::test_tools::{have_tools, require_root};

pub(super) const EPOCH: i64 = 1_700_000_000;
const MTIME: u64 = 1_600_000_000;
pub(super) const SIZE: u64 = 64 * MIB;
const CAPABILITY: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

pub(super) fn params() -> Ext4Params {
    Ext4Params {
        partition: "rootfs".into(),
        label: Some("rootfs".into()),
        uuid: Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888),
        hash_seed: Uuid::from_u128(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000),
        source_date_epoch: EPOCH,
    }
}

/// Linux xattr-format ACL: version 2, (tag, perm, id) entries.
pub(super) fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        out.extend(tag.to_le_bytes());
        out.extend(perm.to_le_bytes());
        out.extend(id.to_le_bytes());
    }
    out
}

const NONE: u32 = u32::MAX;

/// `u::rw-,u:1000:r--,g::r--,m::r--,o::---`
pub(super) fn access_acl() -> Vec<u8> {
    acl(&[
        (1, 6, NONE),
        (2, 4, 1000),
        (4, 4, NONE),
        (0x10, 4, NONE),
        (0x20, 0, NONE),
    ])
}

/// `d:u::rwx,d:g::r-x,d:g:4:r-x,d:m::r-x,d:o::r-x` (journald's adm ACL).
pub(super) fn default_acl() -> Vec<u8> {
    acl(&[
        (1, 7, NONE),
        (4, 5, NONE),
        (8, 5, 4),
        (0x10, 5, NONE),
        (0x20, 5, NONE),
    ])
}

const ODD_DIR: &str = "srv/odd \"name\" dir";

/// The xattrs of the test tree, paths in both spellings the stage accepts.
fn test_records() -> Vec<XattrRecord> {
    let rec = |path: &str, name: &str, value: &[u8]| XattrRecord {
        path: path.into(),
        name: name.into(),
        value: value.to_vec(),
    };
    vec![
        rec("usr/bin/ping", "security.capability", &CAPABILITY),
        rec(
            "/var/log/journal",
            "system.posix_acl_default",
            &default_acl(),
        ),
        rec("srv/shared", "system.posix_acl_access", &access_acl()),
        rec("/srv/shared", "user.comment", b"made by mkimg"),
        rec(ODD_DIR, "user.odd", b"\x00\xff binary"),
        rec("", "trusted.root", b"top"),
    ]
}

fn blob() -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..MIB)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// A PAX tar like the rootfs stage writes: `./` first, parents before
/// children, xattrs as SCHILY.xattr records, hard links repeating the
/// target's metadata.
fn write_test_tar(path: &Path, extra_file: Option<u64>) {
    let mut tar = tar::Builder::new(BufWriter::new(fs::File::create(path).unwrap()));
    let put = |name: &str, kind: EntryType, mode: u32, owner: (u64, u64), data: &[u8]| {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(name).unwrap();
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        (h, data.to_vec())
    };
    let mut entries = vec![
        put("./", EntryType::Directory, 0o755, (0, 0), b""),
        put("./etc/", EntryType::Directory, 0o755, (0, 0), b""),
        put(
            "./etc/hello",
            EntryType::Regular,
            0o644,
            (1000, 100),
            b"hello\n",
        ),
        put("./etc/hello.link", EntryType::Link, 0o644, (1000, 100), b""),
        put("./etc/motd", EntryType::Symlink, 0o777, (0, 0), b""),
        put("./etc/long", EntryType::Symlink, 0o777, (0, 0), b""),
        put("./dev/", EntryType::Directory, 0o755, (0, 0), b""),
        put("./dev/null", EntryType::Char, 0o666, (0, 0), b""),
        put("./dev/sda", EntryType::Block, 0o660, (0, 6), b""),
        put("./dev/initctl", EntryType::Fifo, 0o600, (0, 0), b""),
        put("./usr/", EntryType::Directory, 0o755, (0, 0), b""),
        put("./usr/bin/", EntryType::Directory, 0o755, (0, 0), b""),
        put(
            "./usr/bin/ping",
            EntryType::Regular,
            0o755,
            (0, 0),
            b"\x7fELF",
        ),
        put("./usr/lib/", EntryType::Directory, 0o755, (0, 0), b""),
        put("./usr/lib/blob", EntryType::Regular, 0o644, (0, 0), &blob()),
        put("./var/", EntryType::Directory, 0o755, (0, 0), b""),
        put("./var/log/", EntryType::Directory, 0o755, (0, 0), b""),
        put(
            "./var/log/journal/",
            EntryType::Directory,
            0o2755,
            (0, 101),
            b"",
        ),
        put("./srv/", EntryType::Directory, 0o755, (0, 0), b""),
        put(
            "./srv/shared",
            EntryType::Regular,
            0o640,
            (0, 0),
            b"shared\n",
        ),
        put(
            &format!("./{ODD_DIR}/"),
            EntryType::Directory,
            0o755,
            (0, 0),
            b"",
        ),
    ];
    if let Some(len) = extra_file {
        entries.push(put(
            "./big",
            EntryType::Regular,
            0o644,
            (0, 0),
            &vec![0x5a; len as usize],
        ));
    }
    for (h, _) in &mut entries {
        let name = h.path().unwrap().to_string_lossy().into_owned();
        match name.as_str() {
            "./etc/hello.link" | "etc/hello.link" => h.set_link_name("./etc/hello").unwrap(),
            "./etc/motd" | "etc/motd" => h.set_link_name("hello").unwrap(),
            "./etc/long" | "etc/long" => h.set_link_name("x".repeat(90)).unwrap(),
            "./dev/null" | "dev/null" => {
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
            }
            "./dev/sda" | "dev/sda" => {
                h.set_device_major(8).unwrap();
                h.set_device_minor(0).unwrap();
            }
            _ => {}
        }
    }
    let records = test_records();
    for (mut h, data) in entries {
        let name = fs_path(&h.path().unwrap().to_string_lossy());
        let pax: Vec<(String, Vec<u8>)> = records
            .iter()
            .filter(|r| fs_path(&r.path) == name)
            .map(|r| (format!("SCHILY.xattr.{}", r.name), r.value.clone()))
            .collect();
        if !pax.is_empty() {
            tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        h.set_cksum();
        tar.append(&h, Cursor::new(data)).unwrap();
    }
    tar.into_inner().unwrap();
}

pub(super) const E2FS_TOOLS: [&str; 4] = ["mke2fs", "debugfs", "e2fsck", "dumpe2fs"];

struct Built {
    _dir: tempfile::TempDir,
    image: PathBuf,
}

fn build_test_image() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    write_test_tar(&tar, None);
    let image = dir.path().join("rootfs.ext4");
    let report = build_ext4(&image, SIZE, &tar, &params(), &test_records(), dir.path()).unwrap();
    assert_eq!(fs::metadata(&image).unwrap().len(), SIZE);
    assert!(
        report.used_bytes > MIB && report.used_bytes < 16 * MIB,
        "{report:?}"
    );
    assert_eq!(report.used_bytes + report.free_bytes, SIZE);
    assert_eq!(report.inodes, 11 + 19, "{report:?}");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "scratch dir not removed: {leftovers:?}");
    Built { _dir: dir, image }
}

/// A debugfs argument for a request the test writes from a path it chose
/// (libss unquoting: inside double quotes, `""` is a literal quote).
pub(super) fn quote(arg: &str) -> String {
    format!("\"{}\"", arg.replace('"', "\"\""))
}

pub(super) fn debugfs(image: &Path, request: &str) -> String {
    let out = Cmd::new("inspecting test image", "debugfs")
        .arg("-R")
        .arg(request)
        .arg(image);
    let out = resolve_sbin(out);
    String::from_utf8(out.output().unwrap().stdout).unwrap()
}

// ---- pure -------------------------------------------------------------

#[test]
fn mke2fs_argv_and_env_are_complete() {
    let cmd = mke2fs_cmd(
        &params(),
        Path::new("/w/mke2fs.conf"),
        Path::new("/w/rootfs.tar"),
        Path::new("/w/rootfs.ext4"),
        2048 * MIB,
    );
    assert_eq!(
        cmd.argv_text(),
        r#""mke2fs" "-q" "-F" "-t" "ext4" "-T" "default" "-b" "4096" "-L" "rootfs" "-U" "11112222-3333-4444-5555-666677778888" "-E" "hash_seed=9999aaaa-bbbb-cccc-dddd-eeeeffff0000,root_owner=0:0,assume_storage_prezeroed=1,nodiscard" "-d" "/w/rootfs.tar" "/w/rootfs.ext4" "2097152k""#
    );
    let env: Vec<(String, String)> = cmd
        .env
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
        .collect();
    let want = [
        ("MKE2FS_CONFIG", "/w/mke2fs.conf"),
        ("SOURCE_DATE_EPOCH", "1700000000"),
        ("E2FSPROGS_FAKE_TIME", "1700000000"),
    ];
    assert_eq!(env, want.map(|(k, v)| (k.to_string(), v.to_string())));
    assert!(cmd.purpose.contains("'rootfs'"));
}

#[test]
fn mke2fs_without_label_passes_no_dash_l() {
    let p = Ext4Params {
        label: None,
        ..params()
    };
    let cmd = mke2fs_cmd(&p, Path::new("c"), Path::new("t"), Path::new("i"), 64 * MIB);
    assert!(!cmd.args.iter().any(|a| a == "-L"), "{}", cmd.argv_text());
    assert_eq!(cmd.args.last().unwrap(), "65536k");
}

#[test]
fn config_lists_features_and_leaves_out_incompatible_ones() {
    let features = super::MKE2FS_CONF
        .lines()
        .find_map(|l| l.trim().strip_prefix("features = "))
        .unwrap();
    assert_eq!(
        features,
        "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize"
    );
    assert!(super::MKE2FS_CONF.contains("inode_size = 256"));
    assert!(super::MKE2FS_CONF.contains("blocksize = 4096"));
}

#[test]
fn e2fsprogs_version_is_the_lower_of_program_and_library() {
    let text = "mke2fs 1.47.2 (1-Jan-2025)\n\tUsing EXT2FS Library version 1.47.0\n";
    assert_eq!(parse_e2fsprogs_version(text), Some((1, 47, 0)));
    assert_eq!(
        parse_e2fsprogs_version("mke2fs 1.48-WIP (x)\n"),
        Some((1, 48, 0))
    );
    assert_eq!(parse_e2fsprogs_version("mkfs.ext4: no\n"), None);
}

#[test]
fn too_small_message_names_partition_shortfall_and_size_to_write() {
    let err = check_fits(100 * MIB + 1, 64 * MIB, "rootfs").unwrap_err();
    assert_eq!(
        err.to_string(),
        "rootfs needs ~101 MiB but partition 'rootfs' is 64 MiB: short by 37 MiB; \
         grow the partition (size = \"128M\")"
    );
    check_fits(64 * MIB, 64 * MIB, "rootfs").unwrap();
}

#[test]
fn too_many_files_message_names_inode_count() {
    let usage = TarUsage {
        data_bytes: MIB,
        inodes: 5000,
        largest_dir: 0,
    };
    let err = check_inodes(&usage, 64 * MIB, "rootfs").unwrap_err();
    assert_eq!(
        err.to_string(),
        "rootfs has 5000 files and directories but the 64 MiB ext4 partition 'rootfs' has room \
         for 4096 (one inode per 16 KiB); grow the partition (size = \"96M\")"
    );
    check_inodes(
        &TarUsage {
            inodes: 4085,
            ..usage
        },
        64 * MIB,
        "rootfs",
    )
    .unwrap();
}

#[test]
fn estimate_tracks_mke2fs_overhead() {
    // Used blocks of `mke2fs -d empty.tar` measured with 1.47.2.
    for (size, measured) in [
        (64 * MIB, 1297u64),
        (2048 * MIB, 26156),
        (16384 * MIB, 109_863),
    ] {
        let estimate = estimate_needed(&TarUsage::default(), size);
        let measured = measured * 4096;
        assert!(estimate >= measured, "{size}: {estimate} < {measured}");
        assert!(
            estimate < measured + size / 100 + MIB,
            "{size}: {estimate} vs {measured}"
        );
    }
    assert_eq!(journal_bytes(16384), 4 * MIB);
    assert_eq!(journal_bytes(524_288), 64 * MIB);
    assert_eq!(suggest_size(100 * MIB), 128 * MIB);
}

#[test]
fn measure_tar_counts_blocks_and_inodes() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("t.tar");
    write_test_tar(&tar, None);
    let usage = measure_tar(fs::File::open(&tar).unwrap()).unwrap();
    // 10 dirs + root, 4 small files, blob = 256 blocks, one long symlink.
    assert_eq!(usage.data_bytes, (11 + 3 + 256 + 1) * 4096);
    assert_eq!(usage.inodes, 1 + 10 + 4 + 2 + 3);
    assert!(!usage.needs_dir_index(), "{usage:?}");
}

/// A tar of `./d/` holding `count` empty files with 20-byte names: each
/// entry takes 28 bytes of a directory block.
fn write_dir_tar(path: &Path, count: usize) {
    let mut tar = tar::Builder::new(fs::File::create(path).unwrap());
    let mut put = |name: String, kind: EntryType| {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(name).unwrap();
        h.set_mode(0o644);
        h.set_size(0);
        h.set_cksum();
        tar.append(&h, std::io::empty()).unwrap();
    };
    put("./".into(), EntryType::Directory);
    put("./d/".into(), EntryType::Directory);
    for i in 0..count {
        put(format!("./d/file-number-{i:06}"), EntryType::Regular);
    }
    tar.into_inner().unwrap();
}

/// Directory sizes: 28 bytes per 20-byte name; a block holds 4084 bytes of
/// entries, `.` and `..` take 24, so 145 entries fill one block exactly.
/// The estimate keeps slack (lost+found, rounding), so it says "index"
/// a little early, never late.
#[test]
fn measure_tar_sizes_directories_as_mke2fs_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("d.tar");
    for (count, needs) in [(0, false), (140, false), (146, true), (400, true)] {
        write_dir_tar(&tar, count);
        let usage = measure_tar(fs::File::open(&tar).unwrap()).unwrap();
        assert_eq!(usage.needs_dir_index(), needs, "{count}: {usage:?}");
        assert!(usage.largest_dir >= 24 + 28 * count as u64, "{usage:?}");
    }
}

/// Parents a tar does not list are counted in their own parents once; a
/// path listed twice counts twice (mke2fs may leave a hole behind).
#[test]
fn measure_tar_counts_implicit_parents_and_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let tar_path = dir.path().join("p.tar");
    let mut tar = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    let names: Vec<String> = (0..200)
        .map(|i| format!("implicit-parent-dir-{i:04}/f"))
        .collect();
    for name in &names {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_path(name).unwrap();
        h.set_size(0);
        h.set_cksum();
        tar.append(&h, std::io::empty()).unwrap();
    }
    tar.into_inner().unwrap();
    let usage = measure_tar(fs::File::open(&tar_path).unwrap()).unwrap();
    // The root holds 200 unlisted 24-byte names: 200 * 32 bytes.
    assert!(usage.largest_dir >= 200 * 32, "{usage:?}");
    assert!(usage.needs_dir_index());
}

#[test]
fn paths_are_normalised_from_the_root() {
    assert_eq!(fs_path(""), "/");
    assert_eq!(fs_path("./var/log/"), "/var/log");
    assert_eq!(fs_path("/srv/x"), "/srv/x");
}

#[test]
fn unsupported_xattrs_are_rejected_by_name() {
    let bad = XattrRecord {
        path: "/x".into(),
        name: "system.nfs4_acl".into(),
        value: vec![],
    };
    let err = check_record(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with("xattr system.nfs4_acl on /x: ext4 stores only"),
        "{err}"
    );
    // No command script any more: control characters are ordinary bytes.
    let newline = XattrRecord {
        path: "/a\nb !c \"d\"".into(),
        name: "user.x\ny".into(),
        value: vec![],
    };
    check_record(&newline).unwrap();
    let nul = XattrRecord {
        path: "/a\0b".into(),
        ..newline.clone()
    };
    let err = check_record(&nul).unwrap_err().to_string();
    assert_eq!(
        err,
        r"xattr user.x\ny on /a\u{0}b: ext4 names cannot contain a NUL byte"
    );
    assert!(check_record(&XattrRecord {
        name: "user.".into(),
        ..newline
    })
    .is_err());
    for r in test_records() {
        check_record(&r).unwrap();
    }
}

#[test]
fn acl_readback_ignores_ids_of_entries_without_one() {
    let mut readback = access_acl();
    readback[8..12].copy_from_slice(&0u32.to_le_bytes()); // USER_OBJ id 0, as debugfs prints
    assert!(same_value(
        "system.posix_acl_access",
        &access_acl(),
        &readback
    ));
    readback[16..20].copy_from_slice(&1001u32.to_le_bytes()); // named user changed
    assert!(!same_value(
        "system.posix_acl_access",
        &access_acl(),
        &readback
    ));
    assert!(!same_value("user.x", b"a", b"b"));
}

#[test]
fn report_is_parsed_from_dumpe2fs_header() {
    let text = "Inode count:              16384\nBlock count:              16384\n\
                Free blocks:              15000\nFree inodes:              16350\n\
                Block size:               4096\n";
    let report = parse_report(text).unwrap();
    assert_eq!(
        (report.used_bytes, report.free_bytes, report.inodes),
        (1384 * 4096, 15000 * 4096, 34)
    );
}

// ---- oracle: e2fsprogs ------------------------------------------------

fn superblock_u32(image: &[u8], offset: usize) -> u32 {
    let at = 1024 + offset;
    u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
}

#[test]
fn image_is_clean_and_has_planned_features_and_identity() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let built = build_test_image();
    let fsck = Cmd::new("checking test image", "e2fsck")
        .args(["-fn"])
        .arg(&built.image);
    resolve_sbin(fsck).run().unwrap();
    let header = resolve_sbin(
        Cmd::new("reading test image", "dumpe2fs")
            .arg("-h")
            .arg(&built.image),
    );
    let header = String::from_utf8(header.output().unwrap().stdout).unwrap();
    let field = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap()
            .trim()
            .to_string()
    };
    let mut features: Vec<String> = field("Filesystem features")
        .split(' ')
        .map(String::from)
        .collect();
    features.sort();
    let mut want: Vec<&str> = "has_journal ext_attr resize_inode dir_index filetype extent 64bit \
         flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum"
        .split(' ')
        .collect();
    want.sort();
    assert_eq!(features, want);
    assert!(!features
        .iter()
        .any(|f| f == "orphan_file" || f == "metadata_csum_seed"));
    assert_eq!(
        field("Filesystem UUID"),
        "11112222-3333-4444-5555-666677778888"
    );
    assert_eq!(field("Filesystem volume name"), "rootfs");
    assert_eq!(
        field("Directory Hash Seed"),
        "9999aaaa-bbbb-cccc-dddd-eeeeffff0000"
    );
    assert_eq!(field("Block size"), "4096");
    assert_eq!(field("Inode size"), "256");
    assert_eq!(field("Default mount options"), "user_xattr acl");
    // Superblock times straight from the bytes (dumpe2fs prints local time).
    let bytes = fs::read(&built.image).unwrap();
    let epoch = EPOCH as u32;
    assert_eq!(superblock_u32(&bytes, 0x108), epoch, "s_mkfs_time");
    assert_eq!(superblock_u32(&bytes, 0x30), epoch, "s_wtime");
    assert_eq!(superblock_u32(&bytes, 0x40), epoch, "s_lastcheck");
    assert_eq!(superblock_u32(&bytes, 0x2c), 0, "s_mtime");
}

#[test]
fn inodes_keep_type_mode_owner_device_and_data() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let built = build_test_image();
    let stat = |path: &str| debugfs(&built.image, &format!("stat {}", quote(path)));
    let cases = [
        (
            "/",
            "Type: directory    Mode:  0755",
            "User:     0   Group:     0",
        ),
        (
            "/etc/hello",
            "Type: regular    Mode:  0644",
            "User:  1000   Group:   100",
        ),
        (
            "/etc/motd",
            "Type: symlink    Mode:  0777",
            "Fast link dest: \"hello\"",
        ),
        (
            "/dev/null",
            "Type: character special    Mode:  0666",
            "Device major/minor number: 01:03",
        ),
        (
            "/dev/sda",
            "Type: block special    Mode:  0660",
            "Device major/minor number: 08:00",
        ),
        ("/dev/initctl", "Type: FIFO    Mode:  0600", "User:     0"),
        (
            "/var/log/journal",
            "Type: directory    Mode:  02755",
            "Group:   101",
        ),
        (
            "/lost+found",
            "Type: directory    Mode:  0700",
            "mtime: 0x6553f100",
        ),
    ];
    for (path, kind, other) in cases {
        let text = stat(path);
        assert!(
            text.contains(kind) && text.contains(other),
            "{path}: {text}"
        );
    }
    let hello = stat("/etc/hello");
    assert!(hello.contains("Links: 2"), "{hello}");
    assert!(
        hello.contains("mtime: 0x5f5e1000") && hello.contains("crtime: 0x6553f100"),
        "{hello}"
    );
    let inode = |text: &str| text.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(inode(&stat("/etc/hello.link")), inode(&hello));
    assert_eq!(debugfs(&built.image, "cat /etc/long"), "x".repeat(90));
    let out = built.image.with_file_name("blob.out");
    debugfs(
        &built.image,
        &format!("dump /usr/lib/blob {}", quote(&out.to_string_lossy())),
    );
    assert!(fs::read(&out).unwrap() == blob(), "blob differs");
}

#[test]
fn every_xattr_is_in_the_image_in_ext4_format() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let built = build_test_image();
    let list = |path: &str| debugfs(&built.image, &format!("ea_list {}", quote(path)));
    let ping = list("/usr/bin/ping");
    assert!(
        ping.contains("security.capability (20) = 01 00 00 02 00 20 00 00 00 00"),
        "{ping}"
    );
    // ext4 on-disk ACL: version 1, 4-byte entries for u::, g::, m::, o::.
    let journal = list("/var/log/journal");
    let disk = "system.posix_acl_default (28) = 01 00 00 00 01 00 07 00 04 00 05 00 \
                08 00 05 00 04 00 00 00 10 00 05 00 20 00 05 00";
    assert!(journal.contains(disk), "{journal}");
    let shared = list("/srv/shared");
    let disk = "system.posix_acl_access (28) = 01 00 00 00 01 00 06 00 02 00 04 00 \
                e8 03 00 00 04 00 04 00 10 00 04 00 20 00 00 00";
    assert!(shared.contains(disk), "{shared}");
    assert!(
        shared.contains("user.comment (13) = \"made by mkimg\""),
        "{shared}"
    );
    let odd = list(&fs_path(ODD_DIR));
    assert!(
        odd.contains("user.odd (9) = 00 ff 20 62 69 6e 61 72 79"),
        "{odd}"
    );
    assert!(list("/").contains("trusted.root (3) = \"top\""));
}

#[test]
fn big_directories_are_hash_indexed() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar_path = dir.path().join("many.tar");
    let mut tar = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    let mut put = |name: String, kind: EntryType| {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(name).unwrap();
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        tar.append(&h, std::io::empty()).unwrap();
    };
    put("./lib/".into(), EntryType::Directory);
    for i in 0..400 {
        put(
            format!("./lib/libsomething-with-a-long-name.so.{i}"),
            EntryType::Regular,
        );
    }
    tar.into_inner().unwrap();
    let image = dir.path().join("many.ext4");
    build_ext4(&image, SIZE, &tar_path, &params(), &[], dir.path()).unwrap();
    let stat = debugfs(&image, "stat /lib");
    assert!(stat.contains("Flags: 0x81000"), "not indexed: {stat}");
    let htree = debugfs(&image, "htree /lib");
    assert!(htree.contains("Number of entries (count):"), "{htree}");
    let listing = debugfs(&image, "ls /lib");
    assert!(
        listing.contains("libsomething-with-a-long-name.so.399"),
        "{listing}"
    );
}

/// A rootfs whose directories all fit in one block skips the `e2fsck -D`
/// pass: the image is exactly what mke2fs and the xattr step make (the pass
/// would at least bump the superblock's lifetime-writes counter), and it is
/// clean.
#[test]
fn small_directories_skip_the_index_pass() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let built = build_test_image();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    write_test_tar(&tar, None);
    let conf = dir.path().join("mke2fs.conf");
    fs::write(&conf, super::MKE2FS_CONF).unwrap();
    let image = dir.path().join("direct.ext4");
    fs::File::create(&image).unwrap().set_len(SIZE).unwrap();
    resolve_sbin(mke2fs_cmd(&params(), &conf, &tar, &image, SIZE))
        .run()
        .unwrap();
    restore_xattrs(&image, &test_records(), &params()).unwrap();
    assert!(
        fs::read(&image).unwrap() == fs::read(&built.image).unwrap(),
        "build_ext4 changed the image after mke2fs and the xattrs"
    );
    let fsck = Cmd::new("checking test image", "e2fsck")
        .args(["-fn"])
        .arg(&built.image);
    resolve_sbin(fsck).run().unwrap();
}

/// A directory one entry past a block still gets its index.
#[test]
fn a_directory_just_past_one_block_is_indexed() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("d.tar");
    write_dir_tar(&tar, 146);
    let image = dir.path().join("d.ext4");
    build_ext4(&image, SIZE, &tar, &params(), &[], dir.path()).unwrap();
    let stat = debugfs(&image, "stat /d");
    assert!(stat.contains("Flags: 0x81000"), "not indexed: {stat}");
    assert!(debugfs(&image, "htree /d").contains("Number of entries (count):"));
    let fsck = Cmd::new("checking test image", "e2fsck")
        .args(["-fn"])
        .arg(&image);
    resolve_sbin(fsck).run().unwrap();
}

#[test]
fn builds_are_identical_whatever_tz_umask_cwd_and_tmpdir() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let built = build_test_image();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    write_test_tar(&tar, None);
    let image = dir.path().join("again.ext4");
    let other_tmp = dir.path().join("tmp");
    fs::create_dir(&other_tmp).unwrap();
    let test = format!(
        "{}::child_build",
        module_path!().split_once("::").unwrap().1
    );
    let exe = std::env::current_exe().unwrap();
    Cmd::new("building again in a child", "sh")
        .args(["-c", "umask 077; exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", &test, "--ignored", "--test-threads=1"])
        .env("TZ", "Asia/Tokyo")
        .env("TMPDIR", &other_tmp)
        .env("MKIMG_EXT4_CHILD_TAR", &tar)
        .env("MKIMG_EXT4_CHILD_IMAGE", &image)
        .cwd(&other_tmp)
        .run()
        .unwrap();
    Cmd::new("comparing builds", "cmp")
        .arg(&built.image)
        .arg(&image)
        .run()
        .unwrap();
}

/// The second build of the determinism test, run in its own process.
#[test]
#[ignore = "run by builds_are_identical_whatever_tz_umask_cwd_and_tmpdir"]
fn child_build() {
    let (Some(tar), Some(image)) = (
        std::env::var_os("MKIMG_EXT4_CHILD_TAR"),
        std::env::var_os("MKIMG_EXT4_CHILD_IMAGE"),
    ) else {
        panic!("run only by builds_are_identical_whatever_tz_umask_cwd_and_tmpdir");
    };
    let image = PathBuf::from(image);
    let workdir = image.parent().unwrap().join("work");
    fs::create_dir(&workdir).unwrap();
    build_ext4(
        &image,
        SIZE,
        Path::new(&tar),
        &params(),
        &test_records(),
        &workdir,
    )
    .unwrap();
}

#[test]
fn too_small_partition_fails_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    write_test_tar(&tar, Some(20 * MIB));
    let image = dir.path().join("rootfs.ext4");
    if !have_tools(&["mke2fs"]) {
        return;
    }
    let err = build_ext4(
        &image,
        16 * MIB,
        &tar,
        &params(),
        &test_records(),
        dir.path(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err.downcast_ref(), Some(Ext4Error::TooSmall { .. })),
        "{text}"
    );
    assert!(text.starts_with("rootfs needs ~2"), "{text}");
    assert!(
        text.contains("MiB but partition 'rootfs' is 16 MiB: short by "),
        "{text}"
    );
    assert!(text.ends_with("M\")"), "{text}");
    assert!(!image.exists(), "image written although it cannot fit");
}

#[test]
fn mke2fs_running_out_of_space_is_reported_as_too_small() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    write_test_tar(&tar, Some(12 * MIB));
    let image = dir.path().join("rootfs.ext4");
    fs::write(dir.path().join("mke2fs.conf"), super::MKE2FS_CONF).unwrap();
    super::create_zeroed_image(&image, 8 * MIB).unwrap();
    let cmd = mke2fs_cmd(
        &params(),
        &dir.path().join("mke2fs.conf"),
        &tar,
        &image,
        8 * MIB,
    );
    let err = run_mke2fs(&cmd, &params(), 8 * MIB, 7 * MIB).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err.downcast_ref(), Some(Ext4Error::OutOfSpace { .. })),
        "{text}"
    );
    assert!(
        text.starts_with(
            "rootfs does not fit: mke2fs ran out of space in partition 'rootfs' (8 MiB"
        ),
        "{text}"
    );
    assert!(text.contains("Could not allocate block"), "{text}");
    assert!(
        text.ends_with("grow the partition (size = \"16M\")"),
        "{text}"
    );
}

#[test]
fn xattr_on_missing_path_is_named() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let built = build_test_image();
    let records = [
        XattrRecord {
            path: "/srv/shared".into(),
            name: "user.ok".into(),
            value: b"1".to_vec(),
        },
        XattrRecord {
            path: "/no/such".into(),
            name: "user.x".into(),
            value: b"1".to_vec(),
        },
        XattrRecord {
            path: "/srv".into(),
            name: "user.big".into(),
            value: vec![7; 8000],
        },
    ];
    let err = restore_xattrs(&built.image, &records, &params()).unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "could not restore 2 xattr(s) in partition 'rootfs': \
         user.x on /no/such: File not found by ext2_lookup; \
         user.big on /srv: Insufficient space to store extended attribute data"
    );
}

// ---- oracle: the kernel (root only) -----------------------------------

/// A read-only loop mount, unmounted by `close` or on drop.
/// `image` attached read-only through the library's loop guard and mounted
/// read-only at `dir` (in the host's namespace, so the tools see it);
/// unmounted, then detached, on `close` or drop.
pub(super) struct LoopMount {
    // Dropped in this order: the mount, then the device under it.
    mount: Option<Mount>,
    device: Option<LoopDevice>,
}

impl LoopMount {
    pub(super) fn new(image: &Path, dir: &Path) -> LoopMount {
        fs::create_dir_all(dir).unwrap();
        let device = attach_read_only(image);
        let mount = Mount::filesystem(device.path(), dir, "ext4", MountFlags::RDONLY, "").unwrap();
        LoopMount {
            mount: Some(mount),
            device: Some(device),
        }
    }

    pub(super) fn close(mut self) {
        self.mount.take().unwrap().close().unwrap();
        self.device.take().unwrap().close().unwrap();
    }
}

#[test]
fn kernel_sees_acls_xattrs_and_devices() {
    if !require_root("kernel_sees_acls_xattrs_and_devices") {
        return;
    }
    if !have_tools(&["getfacl", "getfattr"]) {
        return;
    }
    let built = build_test_image();
    let mnt = built.image.with_file_name("mnt");
    let mount = LoopMount::new(&built.image, &mnt);
    let run = |program: &str, args: &[&str], path: &str| {
        let cmd = Cmd::new("reading mounted test image", program)
            .args(args)
            .arg(mnt.join(path));
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let shared = run("getfacl", &["-n", "-c"], "srv/shared");
    assert_eq!(
        shared,
        "user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::---\n\n"
    );
    let journal = run("getfacl", &["-n", "-c", "-d"], "var/log/journal");
    assert_eq!(
        journal,
        "user::rwx\ngroup::r-x\ngroup:4:r-x\nmask::r-x\nother::r-x\n\n"
    );
    let xattrs = run("getfattr", &["-d", "-m", "-", "-e", "hex"], "usr/bin/ping");
    assert!(
        xattrs.contains("security.capability=0x0100000200200000000000000000000000000000"),
        "{xattrs}"
    );
    let comment = run(
        "getfattr",
        &["-n", "user.comment", "--only-values"],
        "srv/shared",
    );
    assert_eq!(comment, "made by mkimg");
    let null = fs::metadata(mnt.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), (1 << 8) | 3);
    let hello = fs::metadata(mnt.join("etc/hello")).unwrap();
    assert_eq!(
        (
            hello.uid(),
            hello.gid(),
            hello.mode() & 0o7777,
            hello.nlink()
        ),
        (1000, 100, 0o644, 2)
    );
    assert_eq!(fs::read(mnt.join("usr/lib/blob")).unwrap(), blob());
    mount.close();
}
