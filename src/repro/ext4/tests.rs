//! The debugfs output parsers on real output (e2fsprogs 1.47.2), the
//! group layout arithmetic against dumpe2fs's own listing of the same
//! filesystem, and the whole explanation on two real ext4 images that
//! differ in one byte of one file.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::{
    debugfs_cmd, explain_ext4, inode_fields, parse_icheck, parse_ncheck, parse_stats, Structure,
};
use crate::repro::disk::diff_disks;
use crate::test_tools::have_tools;

/// `debugfs -R stats` of a 300 MiB `mke2fs -t ext4 -b 4096` (trimmed).
const STATS: &str = "\
Filesystem features:      has_journal ext_attr resize_inode dir_index orphan_file filetype extent 64bit flex_bg metadata_csum_seed sparse_super large_file huge_file dir_nlink extra_isize metadata_csum
Inode count:              76800
Block count:              76800
First block:              0
Block size:               4096
Group descriptor size:    64
Reserved GDT blocks:      37
Blocks per group:         32768
Inodes per group:         25600
Inode blocks per group:   1600
First inode:              11
Inode size:               256
Journal inode:            8
Journal backup:           inode blocks
Orphan file inode:        12
Directories:              2
 Group  0: block bitmap at 39, inode bitmap at 42, inode table at 45
           27885 free blocks, 25588 free inodes, 2 used directories, 25588 unused inodes
           [Checksum 0xa6e2]
 Group  1: block bitmap at 40, inode bitmap at 43, inode table at 1645
           28633 free blocks, 25600 free inodes, 0 used directories, 25600 unused inodes
           [Inode not init, Checksum 0xba97]
 Group  2: block bitmap at 41, inode bitmap at 44, inode table at 3245
           11264 free blocks, 25600 free inodes, 0 used directories, 25600 unused inodes
           [Inode not init, Checksum 0x0fa3]
";

/// Where dumpe2fs puts everything of the same filesystem:
/// group 0: superblock 0, descriptors 1, reserved GDT 2-38, bitmaps 39-44,
/// inode tables 45-4844; group 1: backup superblock 32768, descriptors
/// 32769, reserved GDT 32770-32806; group 2 has no backup (sparse_super).
#[test]
fn the_group_layout_matches_dumpe2fs() {
    let g = parse_stats(STATS).unwrap();
    assert_eq!(
        (g.block_size, g.inode_size, g.inodes_per_group),
        (4096, 256, 25600)
    );
    assert_eq!((g.journal_inode, g.orphan_inode), (Some(8), Some(12)));
    assert_eq!(g.groups, [(39, 42, 45), (40, 43, 1645), (41, 44, 3245)]);
    let at = |block| g.structure_of(block);
    assert_eq!(at(0), Some(Structure::Superblock(0)));
    assert_eq!(at(1), Some(Structure::GroupDescriptors(0)));
    assert_eq!(at(2), Some(Structure::ReservedGdt(0)));
    assert_eq!(at(38), Some(Structure::ReservedGdt(0)));
    assert_eq!(at(39), Some(Structure::BlockBitmap(0)));
    assert_eq!(at(41), Some(Structure::BlockBitmap(2)));
    assert_eq!(at(43), Some(Structure::InodeBitmap(1)));
    assert_eq!(at(45), Some(Structure::InodeTable(0)));
    assert_eq!(at(1644), Some(Structure::InodeTable(0)));
    assert_eq!(at(1645), Some(Structure::InodeTable(1)));
    assert_eq!(at(4844), Some(Structure::InodeTable(2)));
    assert_eq!(at(4845), None);
    assert_eq!(at(32768), Some(Structure::Superblock(1)));
    assert_eq!(at(32769), Some(Structure::GroupDescriptors(1)));
    assert_eq!(at(32806), Some(Structure::ReservedGdt(1)));
    assert_eq!(at(32807), None);
    assert_eq!(at(65536), None, "group 2 holds no superblock copy");
    // Block 1645 is the first of group 1's table: inode 25601 onwards.
    assert_eq!(g.first_inode_in(1, 1645), Some(25601));
    assert_eq!(g.first_inode_in(0, 46), Some(17));
}

#[test]
fn a_layout_without_groups_is_not_used() {
    assert_eq!(parse_stats("Block size: 4096\n"), None);
    let no_groups: String = STATS
        .lines()
        .filter(|l| !l.contains("Group"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(parse_stats(&no_groups), None);
}

#[test]
fn icheck_and_ncheck_output_is_parsed_without_trusting_paths() {
    let icheck = parse_icheck("Block\tInode number\n2\t7\n1000\t8\n5000\t<block not found>\n");
    assert_eq!(
        icheck.into_iter().collect::<Vec<_>>(),
        [(2, Some(7)), (1000, Some(8)), (5000, None)]
    );
    let ncheck = parse_ncheck(
        "Inode\tPathname\n11\t//lost+found\n14\t/etc/f1\n15\t/etc/two\nlines\n14\t/etc/hard\n",
    );
    assert_eq!(ncheck[&11], ["/lost+found"]);
    assert_eq!(ncheck[&14], ["/etc/f1", "/etc/hard"]);
    assert_eq!(ncheck[&15], ["/etc/two\nlines"]);
}

#[test]
fn inode_fields_are_named() {
    let a = vec![0u8; 256];
    let mut b = a.clone();
    b[4] = 1; // i_size_lo
    b[137] = 1; // i_mtime_extra
    b[124] = 9; // checksum
    assert_eq!(inode_fields(&a, &b), ["size", "checksum", "mtime"]);
    b[200] = 1;
    assert_eq!(inode_fields(&a, &b).last(), Some(&"in-inode xattrs"));
}

#[test]
fn debugfs_gets_only_the_request_and_the_device() {
    let cmd = debugfs_cmd("icheck 5 6", &"/x/first.raw?offset=4096".into());
    assert_eq!(cmd.args, ["-R", "icheck 5 6", "/x/first.raw?offset=4096"]);
    assert!(cmd.program.to_string_lossy().ends_with("debugfs"));
}

/// `tree` as an ext4 filesystem of 32 MiB behind a 1 MiB prefix in `disk`,
/// made the same way each time.
fn ext4_disk(tree: &Path, disk: &Path) {
    let image = disk.with_extension("img");
    let conf = disk.with_extension("conf");
    fs::write(&conf, crate::templates::MKE2FS_CONF).unwrap();
    let _ = fs::remove_file(&image);
    fs::File::create(&image).unwrap().set_len(32 << 20).unwrap();
    let out = Command::new(crate::test_tools::locate_tool("mke2fs").unwrap())
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-T", "default"])
        .args(["-U", "0b7c3c0e-4d3e-4c9a-9a55-6a3f6e1c2d01"])
        .args([
            "-E",
            "hash_seed=0b7c3c0e-4d3e-4c9a-9a55-6a3f6e1c2d02,root_owner=0:0",
        ])
        .arg("-d")
        .arg(tree)
        .arg(&image)
        .env("SOURCE_DATE_EPOCH", "1735689600")
        .env("E2FSPROGS_FAKE_TIME", "1735689600")
        .env("MKE2FS_CONFIG", &conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bytes = vec![0u8; 1 << 20];
    bytes.extend(fs::read(&image).unwrap());
    fs::write(disk, bytes).unwrap();
}

/// One byte appended to one file: its data block and its inode (size,
/// checksum) differ, and the explanation names the file by path.
#[test]
fn a_changed_file_is_named_by_path_and_inode_fields() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    for i in 0..20 {
        fs::write(tree.join(format!("etc/f{i:02}")), format!("{i}\n")).unwrap();
    }
    fs::write(tree.join("etc/motd"), "hello\n").unwrap();
    let (a, b) = (dir.path().join("a.raw"), dir.path().join("b.raw"));
    let stamp = |p: &Path| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        fs::File::open(p).unwrap().set_modified(t).unwrap();
    };
    let stamp_all = || {
        for e in fs::read_dir(tree.join("etc")).unwrap() {
            stamp(&e.unwrap().path());
        }
        stamp(&tree.join("etc"));
    };
    stamp_all();
    ext4_disk(&tree, &a);
    fs::write(tree.join("etc/motd"), "hello\n#").unwrap();
    stamp_all();
    ext4_disk(&tree, &b);
    let diff = diff_disks(&a, &b).unwrap();
    assert!(!diff.runs.is_empty(), "the two filesystems must differ");
    let lines = explain_ext4([&a, &b], 1 << 20, "/", &diff.runs).unwrap();
    let text = format!("{:x?}\n{}", diff.runs, lines.join("\n"));
    let motd = lines
        .iter()
        .find(|l| l.starts_with("/etc/motd (inode "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        motd.contains("its data or extent tree differs in 1 block"),
        "{text}"
    );
    assert!(motd.contains("its inode differs in size"), "{text}");
    assert!(text.contains("inode table of group 0"), "{text}");
}
