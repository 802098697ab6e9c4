//! Whole genimage configs end to end: vfat, ext4 and squashfs images and
//! the hdimage that holds them (Buildroot's SD-card shape and a few
//! more), built by genimage 16 and by `mkimg build --genimage` with
//! `--rootpath`, `--inputpath`, `--outputpath` and `--tmppath`. The disk
//! images must have the same `sfdisk -d` and disk identifier; each
//! filesystem partition, cut out of both disks, the same contents (FAT
//! tree and label through mkimg's reader, ext tree and superblock through
//! debugfs and dumpe2fs, squashfs listing through unsquashfs; the random
//! identities genimage's tools draw are not compared); every image lands
//! in the output path under its name (the same names as genimage's),
//! temporary ones in the tmp path, nothing else there touched. One config
//! with `${VAR}` and `include()`; one built from a root *tarball*
//! (mkimg's extension) gives the images the directory gives.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::genimage::{disk_identifier, sfdisk_dump, Setup};
use crate::support::fsimage::{ext_header, ext_tree, fat_label, fat_tree, squash_list};
use crate::support::run::{run_tool, stderr};
use crate::support::tools::{have_tools, is_root, require};

/// What a partition holds, and how to compare it.
#[derive(Clone, Copy, Debug)]
enum Fs {
    Vfat,
    Ext,
    Squashfs,
}

fn tools() -> bool {
    have_tools(&[
        "genimage",
        "sfdisk",
        "fdisk",
        "mkdosfs",
        "mcopy",
        "genext2fs",
        "mke2fs",
        "debugfs",
        "dumpe2fs",
        "mksquashfs",
        "unsquashfs",
        "tar",
    ]) && require(is_root(), "genimage keeps owners only as root")
}

/// A root tree and the input files a Buildroot board's genimage.cfg uses.
fn fixture(cfg: &str) -> Setup {
    let t = Setup::new(cfg);
    let root = t.path("root");
    for d in ["boot/extlinux", "etc", "usr/bin", "data/sub", "var/empty"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("boot/Image"), vec![0x4bu8; 300_000]).unwrap();
    fs::write(
        root.join("boot/extlinux/extlinux.conf"),
        "label linux\n  kernel /Image\n",
    )
    .unwrap();
    fs::write(root.join("etc/hostname"), "board\n").unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    set_mode(&root.join("usr/bin/tool"), 0o755);
    fs::write(root.join("data/sub/blob"), vec![0x33u8; 70_000]).unwrap();
    symlink("../etc/hostname", root.join("data/hostname")).unwrap();
    let input = t.path("input");
    fs::write(input.join("zImage"), pattern(400_000, 5)).unwrap();
    fs::write(input.join("board.dtb"), pattern(20_000, 6)).unwrap();
    fs::write(
        input.join("extlinux.conf"),
        "label buildroot\n  kernel /zImage\n  fdt /board.dtb\n",
    )
    .unwrap();
    fs::write(input.join("u-boot.bin"), pattern(200_000, 7)).unwrap();
    let inc = t.path("inc");
    fs::create_dir_all(&inc).unwrap();
    fs::write(
        inc.join("boot.cfg"),
        "image boot.vfat {\n  vfat { files = { \"zImage\", \"board.dtb\" } label = \"${LABEL}\" }\n  \
         size = ${BOOTSIZE}\n}\n",
    )
    .unwrap();
    t
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) | 1)
        .collect()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The bytes of partition `index` (0-based, `sfdisk -J` order) of `disk`,
/// written to `out`: up to the partition's end or the file's.
fn cut_partition(disk: &Path, index: usize, out: &Path) -> PathBuf {
    let json: serde_json::Value =
        serde_json::from_str(&run_tool("sfdisk", &["-J", disk.to_str().unwrap()])).unwrap();
    let part = &json["partitiontable"]["partitions"][index];
    let start = part["start"].as_u64().unwrap() as usize * 512;
    let size = part["size"].as_u64().unwrap() as usize * 512;
    let data = fs::read(disk).unwrap();
    let end = (start + size).min(data.len());
    fs::write(out, &data[start..end]).unwrap();
    out.to_path_buf()
}

/// The names in `dir`, sorted (none when it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Compare partition `index` of both disks as `fs`.
fn same_contents(t: &Setup, disk: &str, index: usize, fs: Fs, what: &str) {
    let g = cut_partition(
        &t.path(&format!("gen/{disk}")),
        index,
        &t.path(&format!("g-part{index}")),
    );
    let m = cut_partition(
        &t.path(&format!("mine/{disk}")),
        index,
        &t.path(&format!("m-part{index}")),
    );
    match fs {
        Fs::Vfat => {
            run_tool("fsck.fat", &["-n", m.to_str().unwrap()]);
            let tree = fat_tree(&m);
            assert!(!tree.is_empty(), "{what}: partition {index} is empty");
            assert!(
                fat_tree(&g) == tree,
                "{what}: partition {index}: FAT trees differ"
            );
            assert_eq!(fat_label(&g), fat_label(&m), "{what}: partition {index}");
        }
        Fs::Ext => {
            run_tool("e2fsck", &["-fn", m.to_str().unwrap()]);
            let tree = ext_tree(&m);
            assert!(!tree.is_empty(), "{what}: partition {index} is empty");
            assert_eq!(ext_tree(&g), tree, "{what}: partition {index}: ext trees");
            assert_eq!(ext_header(&g), ext_header(&m), "{what}: partition {index}");
        }
        Fs::Squashfs => {
            let list = squash_list(&m);
            assert!(list.len() > 1, "{what}: partition {index} is empty");
            assert_eq!(squash_list(&g), list, "{what}: partition {index}");
        }
    }
}

/// Build `cfg` with both tools (`env`, `extra` arguments to both) and
/// compare the disk `disk`, its filesystem partitions `parts`, and where
/// the images went (`temporary`: the names mkimg leaves in its tmp path).
fn same_build(
    what: &str,
    cfg: &str,
    disk: &str,
    parts: &[(usize, Fs)],
    temporary: &[&str],
    env: &[(&str, &str)],
    extra: &[&str],
) -> Setup {
    let t = fixture(cfg);
    // Something of the user's in the output path: left alone.
    fs::create_dir_all(t.path("mine")).unwrap();
    fs::write(t.path("mine/notes.txt"), "mine").unwrap();
    let theirs = t.genimage(env, extra);
    assert!(
        theirs.status.success(),
        "{what}: genimage failed: {}",
        stderr(&theirs)
    );
    let mine = t.mkimg(env, extra);
    assert!(
        mine.status.success(),
        "{what}: mkimg failed: {}",
        stderr(&mine)
    );
    let (g, m) = (
        t.path(&format!("gen/{disk}")),
        t.path(&format!("mine/{disk}")),
    );
    assert_eq!(sfdisk_dump(&m), sfdisk_dump(&g), "{what}: sfdisk -d");
    assert_eq!(disk_identifier(&m), disk_identifier(&g), "{what}: fdisk -l");
    assert_eq!(
        fs::metadata(&m).unwrap().len(),
        fs::metadata(&g).unwrap().len(),
        "{what}: file length, mkimg (left) vs genimage 16"
    );
    for &(index, fs) in parts {
        same_contents(&t, disk, index, fs, what);
    }
    let mut want = listing(&t.path("gen"));
    want.push("notes.txt".to_string());
    want.sort();
    assert_eq!(listing(&t.path("mine")), want, "{what}: the output path");
    assert_eq!(
        fs::read_to_string(t.path("mine/notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        listing(&t.path("mine-tmp")),
        temporary,
        "{what}: the tmp path"
    );
    t
}

const BUILDROOT: &str = r#"
image boot.vfat {
  vfat {
    files = { "zImage", "board.dtb" }
    file extlinux/extlinux.conf { image = "extlinux.conf" }
    label = "BOOT"
  }
  size = 16M
}

image rootfs.ext4 {
  ext4 { label = "rootfs" use-mke2fs = true }
  size = 24M
}

image sdcard.img {
  hdimage { disk-signature = 0x4d4b494d }
  partition boot {
    partition-type = 0xC
    bootable = true
    offset = 1M
    image = "boot.vfat"
  }
  partition rootfs {
    partition-type = 0x83
    image = "rootfs.ext4"
  }
}
"#;

#[test]
fn buildroot_sd_card_matches_genimage() {
    if !tools() {
        return;
    }
    same_build(
        "Buildroot SD card: boot.vfat from the input path, rootfs.ext4 from the root path",
        BUILDROOT,
        "sdcard.img",
        &[(0, Fs::Vfat), (1, Fs::Ext)],
        &[],
        &[],
        &[],
    );
}

#[test]
fn gpt_esp_and_root_from_the_root_path_match_genimage() {
    if !tools() {
        return;
    }
    let cfg = r#"
image esp.vfat {
  vfat { label = "ESP" }
  mountpoint = "/boot"
  size = 8M
}
image root.ext4 {
  ext4 { label = "root" }
  size = 16M
}
image disk.img {
  hdimage {
    partition-table-type = "gpt"
    disk-uuid = 5ca7a20b-0000-4000-8000-000000000001
    align = 1M
  }
  partition esp {
    partition-type-uuid = U
    partition-uuid = 5ca7a20b-0000-4000-8000-000000000002
    bootable = true
    image = "esp.vfat"
  }
  partition root {
    partition-type-uuid = L
    partition-uuid = 5ca7a20b-0000-4000-8000-000000000003
    image = "root.ext4"
  }
}
"#;
    let t = same_build(
        "GPT: the ESP is the root path's /boot, the root ext4 (genext2fs) the rest",
        cfg,
        "disk.img",
        &[(0, Fs::Vfat), (1, Fs::Ext)],
        &[],
        &[],
        &[],
    );
    // The root image leaves out the other image's mountpoint.
    let tree = ext_tree(&t.path("m-part1"));
    assert!(tree.iter().any(|l| l.starts_with("/etc/hostname ")));
    assert!(!tree.iter().any(|l| l.starts_with("/boot/")), "{tree:?}");
}

#[test]
fn squashfs_root_and_a_temporary_boot_image_match_genimage() {
    if !tools() {
        return;
    }
    // The squashfs is smaller than its `size`: genimage sizes the
    // partition and the file from `size`. (Without one, genimage 16
    // fails: "unexpected output file size".)
    let cfg = r#"
image boot.vfat {
  vfat { files = { "zImage", "board.dtb" } }
  size = 4M
  temporary = true
}
image root.squashfs {
  squashfs { compression = "xz" }
  size = 2M
}
image sd.img {
  hdimage { disk-signature = 0x0a0b0c0d align = 1M }
  partition boot { partition-type = 0x0c image = "boot.vfat" }
  partition root { partition-type = 0x83 image = "root.squashfs" }
}
"#;
    same_build(
        "squashfs root, boot.vfat temporary",
        cfg,
        "sd.img",
        &[(0, Fs::Vfat), (1, Fs::Squashfs)],
        &["boot.vfat"],
        &[],
        &[],
    );
}

#[test]
fn boot_loader_and_autoresized_root_match_genimage() {
    if !tools() {
        return;
    }
    let cfg = r#"
image boot.vfat {
  vfat { files = { "zImage" } file extlinux/extlinux.conf { image = "extlinux.conf" } }
  size = 8M
}
image rootfs.ext4 {
  ext4 { use-mke2fs = true features = "^metadata_csum" }
  size = 16M
}
image card.img {
  hdimage {
    partition-table-type = "gpt"
    gpt-location = 1M
    disk-uuid = 5ca7a20b-0000-4000-8000-000000000011
    align = 4K
  }
  size = 64M
  partition u-boot {
    in-partition-table = false
    image = "u-boot.bin"
    offset = 8K
  }
  partition boot {
    partition-type-uuid = F
    partition-uuid = 5ca7a20b-0000-4000-8000-000000000012
    offset = 4M
    image = "boot.vfat"
  }
  partition rootfs {
    partition-type-uuid = L
    partition-uuid = 5ca7a20b-0000-4000-8000-000000000013
    image = "rootfs.ext4"
    autoresize = true
  }
}
"#;
    let t = same_build(
        "a boot loader outside the table, an autoresized root",
        cfg,
        "card.img",
        &[(0, Fs::Vfat), (1, Fs::Ext)],
        &[],
        &[],
        &[],
    );
    let loader = pattern(200_000, 7);
    for who in ["gen", "mine"] {
        let data = fs::read(t.path(&format!("{who}/card.img"))).unwrap();
        assert!(data[8192..8192 + loader.len()] == loader[..], "{who}");
    }
}

#[test]
fn logical_partitions_with_split_filesystems_match_genimage() {
    if !tools() {
        return;
    }
    let cfg = r#"
image boot.vfat {
  vfat { files = { "zImage" } label = "BOOT" }
  size = 4M
}
image root.ext4 {
  ext4 { }
  size = 8M
}
image data.ext4 {
  ext4 { use-mke2fs = true label = "data" }
  mountpoint = "/data"
  size = 4M
}
image disk.img {
  hdimage { disk-signature = 0x600df00d align = 1M }
  partition boot { partition-type = 0x0c bootable = true image = "boot.vfat" }
  partition env { partition-type = 0xda image = "board.dtb" size = 1M }
  partition spare { partition-type = 0xda size = 1M }
  partition root { partition-type = 0x83 image = "root.ext4" }
  partition data { partition-type = 0x83 image = "data.ext4" }
}
"#;
    let t = same_build(
        "five partitions: root and /data logical, each its own ext image",
        cfg,
        "disk.img",
        &[(0, Fs::Vfat), (4, Fs::Ext), (5, Fs::Ext)],
        &[],
        &[],
        &[],
    );
    let data = ext_tree(&t.path("m-part5"));
    assert!(data.iter().any(|l| l.starts_with("/sub/blob ")), "{data:?}");
    let root = ext_tree(&t.path("m-part4"));
    assert!(!root.iter().any(|l| l.starts_with("/data/")), "{root:?}");
}

#[test]
fn variables_and_includes_with_filesystem_images_match_genimage() {
    if !tools() {
        return;
    }
    let cfg = r#"
include("boot.cfg")
image rootfs.ext4 {
  ext4 { use-mke2fs = true label = "${ROOTLABEL}" }
  size = ${ROOTSIZE}
}
image sdcard.img {
  hdimage { disk-signature = ${SIG} align = 1M }
  partition boot { partition-type = 0xC image = "boot.vfat" }
  partition rootfs { partition-type = 0x83 image = "rootfs.ext4" }
}
"#;
    same_build(
        "${VAR} in an included vfat section and in the ext4 and hdimage",
        cfg,
        "sdcard.img",
        &[(0, Fs::Vfat), (1, Fs::Ext)],
        &[],
        &[
            ("LABEL", "VARBOOT"),
            ("BOOTSIZE", "6M"),
            ("ROOTLABEL", "varroot"),
            ("ROOTSIZE", "12M"),
            ("SIG", "0x01234567"),
        ],
        &["--includepath", "inc"],
    );
}

/// The root path as a tarball (mkimg's extension): the same images as
/// from the directory, which genimage's match (the Buildroot config).
/// Byte for byte when the tarball lists the tree in name order (`tar
/// --sort=name`, as the directory is read): the tarball's order is the
/// order the files are written in, so another order gives other inode
/// numbers for the same tree (the trees are compared either way).
#[test]
fn a_root_tarball_gives_the_directorys_images() {
    if !tools() {
        return;
    }
    let t = same_build(
        "Buildroot SD card, from the directory",
        BUILDROOT,
        "sdcard.img",
        &[(0, Fs::Vfat), (1, Fs::Ext)],
        &[],
        &[],
        &[],
    );
    let tarball = t.path("root.tar");
    run_tool(
        "tar",
        &[
            "--sort=name",
            "-C",
            t.path("root").to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    let from_dir = t.path("from-dir");
    fs::rename(t.path("mine"), &from_dir).unwrap();
    let out = t.mkimg_root(tarball.to_str().unwrap(), &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sfdisk_dump(&t.path("mine/sdcard.img")),
        sfdisk_dump(&from_dir.join("sdcard.img"))
    );
    let dir_root = cut_partition(&from_dir.join("sdcard.img"), 1, &t.path("dir-root"));
    let tar_root = cut_partition(&t.path("mine/sdcard.img"), 1, &t.path("tar-root"));
    assert_eq!(ext_tree(&tar_root), ext_tree(&dir_root));
    assert_eq!(ext_header(&tar_root), ext_header(&dir_root));
    for name in ["boot.vfat", "rootfs.ext4", "sdcard.img"] {
        assert!(
            fs::read(t.path(&format!("mine/{name}"))).unwrap()
                == fs::read(from_dir.join(name)).unwrap(),
            "{name}: the tarball's image differs from the directory's"
        );
    }
}
