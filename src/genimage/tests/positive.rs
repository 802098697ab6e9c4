//! Positive configs parsed into the expected model.

use uuid::uuid;

use super::configs::{self, CASES};
use super::{hd, image, load, opts};
use crate::genimage::model::{DiskSignature, ExtKind, TableType};
use crate::genimage::values::{Hole, ImageSize, MkdosfsArg, Mke2fsArg};
use crate::genimage::{load_config, load_config_str, ImageKind};

#[test]
fn sdcard_mbr() {
    let c = load(configs::SDCARD_MBR);
    assert_eq!(c.images.len(), 3);
    let ImageKind::Vfat(v) = &image(&c, "boot.vfat").kind else {
        panic!("vfat")
    };
    let files: Vec<&str> = v.files.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(files, ["zImage", "board.dtb"]);
    assert_eq!(v.file_entries[0].name.value, "extlinux/extlinux.conf");
    assert_eq!(v.file_entries[0].image.value, "extlinux.conf");
    assert_eq!(v.label.as_ref().map(|l| l.value.as_str()), Some("BOOT"));
    let ImageKind::Ext(e) = &image(&c, "rootfs.ext4").kind else {
        panic!("ext")
    };
    assert_eq!(e.kind, ExtKind::Ext4);
    assert!(e.use_mke2fs);
    assert_eq!(
        e.features.as_ref().map(|f| f.value.as_str()),
        Some("^metadata_csum")
    );
    let sd = image(&c, "sdcard.img");
    let h = hd(sd);
    assert_eq!(h.table, TableType::Mbr);
    assert_eq!(
        h.disk_signature.as_ref().map(|d| d.value),
        Some(DiskSignature::Fixed(0x1234abcd))
    );
    let p = &sd.partitions;
    assert_eq!(p.len(), 3);
    assert!(!p[0].in_partition_table);
    assert_eq!(p[0].offset.as_ref().map(|o| o.value), Some(8192));
    assert_eq!(p[1].partition_type.as_ref().map(|t| t.value), Some(0x0c));
    assert!(p[1].bootable && !p[2].bootable);
    assert_eq!(p[1].offset.as_ref().map(|o| o.value), Some(1 << 20));
    assert_eq!(
        p[2].image.as_ref().map(|i| i.value.as_str()),
        Some("rootfs.ext4")
    );
    // file:line kept: `partition rootfs` is on line 37 of the text.
    assert_eq!(p[2].at.to_string(), "t.cfg:37");
    assert_eq!(p[2].partition_type.as_ref().map(|t| t.at.line), Some(38));
    assert_eq!(
        image(&c, "boot.vfat").size.as_ref().map(|s| s.value),
        Some(ImageSize::Bytes(8 << 20))
    );
}

#[test]
fn gpt_shortcuts_resolve_to_their_guids() {
    let c = load(configs::GPT_SHORTCUTS);
    let d = image(&c, "disk.img");
    assert_eq!(hd(d).table, TableType::Gpt);
    assert_eq!(
        hd(d).disk_uuid.as_ref().map(|u| u.value),
        Some(uuid!("8f9b2a51-0c3e-4d6a-9b1e-2f4c5d6e7a8b"))
    );
    let types: Vec<_> = d
        .partitions
        .iter()
        .map(|p| p.partition_type_uuid.as_ref().map(|t| t.value))
        .collect();
    assert_eq!(
        types,
        [
            Some(uuid!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")),
            Some(uuid!("0fc63daf-8483-4772-8e79-3d69d8477de4")),
            Some(uuid!("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f")),
            Some(uuid!("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7")),
        ]
    );
    assert_eq!(
        d.partitions[0].partition_uuid.as_ref().map(|u| u.value),
        Some(uuid!("11111111-2222-4333-8444-555555555555"))
    );
}

#[test]
fn hybrid_and_gpt_attributes() {
    let c = load(configs::HYBRID);
    let d = image(&c, "disk.img");
    assert_eq!(hd(d).table, TableType::Hybrid);
    assert_eq!(hd(d).align.as_ref().map(|a| a.value), Some(1 << 20));
    assert_eq!(
        d.partitions[0].partition_type.as_ref().map(|t| t.value),
        Some(0xef)
    );
    assert!(d.partitions[0].bootable);
    let c = load(configs::GPT_ATTRIBUTES);
    let p = &image(&c, "disk.img").partitions[0];
    assert!(p.bootable && p.read_only && p.hidden && p.no_automount);
    assert!(!image(&c, "disk.img").partitions[1].hidden);
}

#[test]
fn holes_inline_and_in_a_file_section() {
    let c = load(configs::HOLES_INLINE);
    let holes: Vec<Hole> = image(&c, "bar.img").partitions[0]
        .holes
        .iter()
        .map(|h| h.value)
        .collect();
    assert_eq!(
        holes,
        [Hole {
            start: 440,
            end: 512
        }]
    );
    let c = load(configs::HOLES_FILE_SECTION);
    let foo = image(&c, "foo.img");
    // The deprecated `gpt = true`.
    assert_eq!(hd(foo).table, TableType::Gpt);
    assert_eq!(
        hd(foo).gpt_location.as_ref().map(|g| g.value),
        Some(64 << 10)
    );
    let ImageKind::File(f) = &image(&c, "bootloader.img").kind else {
        panic!("file")
    };
    let holes: Vec<Hole> = f.holes.iter().map(|h| h.value).collect();
    assert_eq!(
        holes,
        [
            Hole {
                start: 440,
                end: 1024
            },
            Hole {
                start: 64 << 10,
                end: 80 << 10
            }
        ]
    );
}

#[test]
fn includes_are_spliced_with_their_own_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inc = dir.path().join("inc");
    std::fs::create_dir_all(inc.join("common")).expect("mkdir");
    std::fs::write(inc.join("common/boot.cfg"), configs::INC_BOOT).expect("write");
    std::fs::write(inc.join("part-boot.cfg"), configs::INC_PART).expect("write");
    std::fs::write(dir.path().join("t.cfg"), configs::INCLUDES).expect("write");
    let mut o = opts(&[]);
    o.include_dirs = vec![inc.clone(), dir.path().to_path_buf()];
    let c = load_config(&dir.path().join("t.cfg"), &o).expect("loads");
    let boot = image(&c, "boot.vfat");
    assert_eq!(
        boot.file.at.to_string(),
        format!("{}:1", inc.join("common/boot.cfg").display())
    );
    let sd = image(&c, "sd.img");
    assert_eq!(sd.partitions[0].name.value, "boot");
    assert_eq!(
        sd.partitions[0].at.to_string(),
        format!("{}:1", inc.join("part-boot.cfg").display())
    );
}

#[test]
fn env_vars_expand_in_quotes_whole_tokens_and_defaults() {
    let c = load_config_str(configs::ENV_VARS, "t.cfg", &opts(configs::ENV)).expect("loads");
    let boot = image(&c, "boot.vfat");
    assert_eq!(
        boot.size.as_ref().map(|s| s.value),
        Some(ImageSize::Bytes(4 << 20))
    );
    let ImageKind::Vfat(v) = &boot.kind else {
        panic!("vfat")
    };
    let files: Vec<&str> = v.files.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(files, ["a.txt", "zImage"]);
    assert_eq!(v.label.as_ref().map(|l| l.value.as_str()), Some("DEFLABEL"));
    // An unset variable is empty, as in libconfuse.
    assert_eq!(
        image(&c, "disk.img").partitions[0]
            .image
            .as_ref()
            .map(|i| i.value.as_str()),
        Some("boot.vfat")
    );
}

#[test]
fn vfat_appends_nested_files_and_allowed_extraargs() {
    let c = load(configs::VFAT_NESTED);
    let ImageKind::Vfat(v) = &image(&c, "boot.vfat").kind else {
        panic!("vfat")
    };
    let files: Vec<&str> = v.files.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(files, ["zImage", "board.dtb", "a.txt"]);
    let names: Vec<&str> = v
        .file_entries
        .iter()
        .map(|f| f.name.value.as_str())
        .collect();
    assert_eq!(names, ["boot/extlinux.conf", "EFI/BOOT/BOOTAA64.EFI"]);
    assert_eq!(
        v.extraargs,
        [MkdosfsArg::FatSize(32), MkdosfsArg::SectorsPerCluster(1)]
    );
}

#[test]
fn ext_variants() {
    let c = load(configs::EXT_VARIANTS);
    let a = image(&c, "a.ext2");
    assert!(a.empty);
    let ImageKind::Ext(b) = &image(&c, "b.ext3").kind else {
        panic!("ext")
    };
    assert_eq!(b.kind, ExtKind::Ext3);
    assert_eq!(
        b.fs_timestamp.as_ref().map(|t| t.value.as_str()),
        Some("20240101000000")
    );
    assert_eq!(
        b.extraargs,
        [
            Mke2fsArg::InodeSize(256),
            Mke2fsArg::ReservedPercent(0),
            Mke2fsArg::Uuid(uuid!("01234567-89ab-4cde-8f01-23456789abcd"))
        ]
    );
    assert_eq!(
        image(&c, "b.ext3")
            .mountpoint
            .as_ref()
            .map(|m| m.value.as_str()),
        Some("/etc")
    );
    let ImageKind::Ext(e) = &image(&c, "c.ext4").kind else {
        panic!("ext")
    };
    assert_eq!(e.root_owner.as_ref().map(|o| o.value), Some((0, 0)));
    assert_eq!(
        e.mke2fs_conf.as_ref().map(|m| m.value.as_str()),
        Some("mke2fs.conf")
    );
}

#[test]
fn hdimage_options() {
    let c = load(configs::GPT_NO_BACKUP);
    let h = hd(image(&c, "disk.img"));
    assert!(h.gpt_no_backup && h.fill);
    assert_eq!(h.align.as_ref().map(|a| a.value), Some(64 << 10));
    assert_eq!(
        image(&c, "disk.img").partitions[1]
            .align
            .as_ref()
            .map(|a| a.value),
        Some(128 << 10)
    );
    let c = load(configs::MBR_EXTENDED);
    assert_eq!(hd(image(&c, "disk.img")).extended_partition, 4);
    assert_eq!(image(&c, "disk.img").partitions.len(), 5);
    let c = load(configs::TABLE_NONE);
    assert_eq!(hd(image(&c, "flash.img")).table, TableType::None);
    let c = load(configs::TEMPORARY);
    let r = image(&c, "rootfs.ext4");
    assert!(r.temporary);
    assert_eq!(r.name.as_ref().map(|n| n.value.as_str()), Some("rootfs"));
    let sd = image(&c, "sd.img");
    assert_eq!(
        hd(sd).disk_signature.as_ref().map(|d| d.value),
        Some(DiskSignature::Random)
    );
    assert!(sd.partitions[0].autoresize);
}

#[test]
fn squashfs_comments_quotes_and_config_section() {
    let c = load(configs::SQUASHFS);
    let ImageKind::Squashfs(s) = &image(&c, "root.squashfs").kind else {
        panic!("squashfs")
    };
    assert_eq!(s.compression.as_ref().map(|c| c.value.as_str()), Some("xz"));
    assert_eq!(s.block_size.as_ref().map(|b| b.value), Some(131072));
    let c = load(configs::COMMENTS_QUOTES);
    let b = image(&c, "boot.vfat");
    assert_eq!(
        b.size.as_ref().map(|s| s.value),
        Some(ImageSize::Bytes(2048 * 512))
    );
    let ImageKind::Vfat(v) = &b.kind else {
        panic!("vfat")
    };
    let files: Vec<&str> = v.files.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(files, ["a.txt", "zImage"]);
    assert_eq!(v.label.as_ref().map(|l| l.value.as_str()), Some("BOOT"));
    assert_eq!(b.file.at.line, 4);
    let c = load(configs::CONFIG_SECTION);
    assert_eq!(
        c.global.outputpath.as_ref().map(|o| o.value.as_str()),
        Some("images")
    );
    assert_eq!(c.global.loglevel, Some(1));
}

#[test]
fn every_case_loads() {
    for (name, text, env) in CASES {
        if name == "includes" {
            continue; // needs its include dir: includes_are_spliced…
        }
        if let Err(e) = load_config_str(text, "t.cfg", &opts(env)) {
            panic!("{name}: {e}");
        }
    }
}
