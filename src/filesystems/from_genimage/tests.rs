//! Argument mapping, checked without running a tool; the builds themselves
//! are compared with genimage 16 in tests/cli/genimage_fs.rs.

use std::path::Path;

use uuid::Uuid;

use super::ext::{check_features, ext_spec, parse_fs_timestamp};
use super::squashfs::mksquashfs_cmd;
use super::vfat::{resolve_link, vfat_options};
use crate::filesystems::vfat::FatType;
use crate::genimage::model::ImageKind;
use crate::genimage::{load_config_str, Image, ParseOptions};

fn image(cfg: &str) -> Image {
    load_config_str(cfg, "t.cfg", &ParseOptions::default())
        .unwrap()
        .images
        .remove(0)
}

const U: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
const H: Uuid = Uuid::from_u128(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000);

fn spec(cfg: &str) -> Result<Vec<String>, String> {
    let img = image(cfg);
    let ImageKind::Ext(e) = &img.kind else {
        panic!("not ext")
    };
    let size = match img.size.as_ref().unwrap().value {
        crate::genimage::values::ImageSize::Bytes(n) => n,
        _ => 0,
    };
    ext_spec(&img, e, size, U, H, 1000)
        .map(|s| s.options)
        .map_err(|e| format!("{e:#}"))
}

#[test]
fn genext2fs_way_gets_its_geometry_and_default_features() {
    let o = spec("image r.ext4 { ext4 { label = \"root\" } size = 8M }").unwrap();
    let text = o.join(" ");
    assert!(
        text.starts_with(
            "-q -F -t ext2 -T default -O none -b 1024 -I 128 -i 16384 -m 5 -E root_owner=0:0,"
        ),
        "{text}"
    );
    assert!(
        text.contains("hash_seed=9999aaaa-bbbb-cccc-dddd-eeeeffff0000"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "-U 11112222-3333-4444-5555-666677778888 -O extents,uninit_bg,dir_index,has_journal -L root"
        ),
        "{text}"
    );
    let ext2 = spec("image r.ext2 { ext2 { } size = 8M }").unwrap();
    assert!(!ext2.join(" ").contains("-O extents"), "{ext2:?}");
    let ext3 = spec("image r.ext3 { ext3 { } size = 8M }").unwrap();
    assert!(ext3.join(" ").ends_with("-O has_journal"), "{ext3:?}");
}

#[test]
fn mke2fs_way_maps_every_option_in_genimage_order() {
    let o = spec(
        "image r.ext4 { ext4 { use-mke2fs = true label = \"L\" features = \"^metadata_csum\" \
         usage-type = \"small\" root-owner = \"5:6\" extraargs = \"-b 4096 -N 99 -m 1 -I 512 -i 8192 -T news -O quota\" } size = 8M }",
    )
    .unwrap();
    let text = o.join(" ");
    assert!(
        text.starts_with("-q -F -t ext4 -T small -I 256 -E root_owner=5:6,lazy_itable_init=0,"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "-O ^large_file -O ^huge_file -U 11112222-3333-4444-5555-666677778888 -b 4096 -N 99 \
             -m 1 -I 512 -i 8192 -T news -O quota -L L -O ^metadata_csum"
        ),
        "{text}"
    );
    // A UUID in extraargs replaces the derived one; 4 GiB keeps large_file.
    let o = spec(
        "image r.ext4 { ext4 { use-mke2fs = true extraargs = \"-U 01234567-89ab-cdef-0123-456789abcdef\" } size = 4G }",
    )
    .unwrap();
    let text = o.join(" ");
    assert!(!text.contains("1111"), "{text}");
    assert!(
        !text.contains("^large_file") && text.contains("^huge_file"),
        "{text}"
    );
    assert!(
        text.ends_with("-U 01234567-89ab-cdef-0123-456789abcdef"),
        "{text}"
    );
}

#[test]
fn features_and_mke2fs_only_options_are_checked() {
    let err =
        spec("image r.ext4 { ext4 { features = \"extent,journal_dev\" } size = 8M }").unwrap_err();
    assert!(err.starts_with("t.cfg:1: features: 'journal_dev'"), "{err}");
    let err = spec("image r.ext4 { ext4 { use-mke2fs = true extraargs = \"-O nope\" } size = 8M }")
        .unwrap_err();
    assert!(err.contains("extraargs -O: 'nope'"), "{err}");
    let err = spec("image r.ext4 { ext4 { usage-type = \"small\" } size = 8M }").unwrap_err();
    assert!(
        err.contains("usage-type is only used with use-mke2fs = true"),
        "{err}"
    );
    assert!(check_features("^has_journal,extents, dir_index").is_ok());
    assert!(check_features("").is_err());
}

#[test]
fn fs_timestamp_reads_like_debugfs() {
    assert_eq!(parse_fs_timestamp("@1234"), Some(1234));
    assert_eq!(parse_fs_timestamp("19700101"), Some(0));
    assert_eq!(parse_fs_timestamp("20200102030405"), Some(1_577_934_245));
    assert_eq!(parse_fs_timestamp("202001020304"), Some(1_577_934_240));
    assert_eq!(parse_fs_timestamp("20201301"), None);
    assert_eq!(parse_fs_timestamp("2020"), None);
    let o = spec("image r.ext4 { ext4 { fs-timestamp = \"@77\" } size = 8M }");
    assert!(o.is_ok());
}

fn vfat(cfg: &str) -> Result<crate::filesystems::vfat::VfatOptions, String> {
    let img = image(cfg);
    let ImageKind::Vfat(v) = &img.kind else {
        panic!("not vfat")
    };
    vfat_options(&img, v, 42, 7).map_err(|e| format!("{e:#}"))
}

#[test]
fn vfat_extraargs_map_onto_the_writer_or_are_refused() {
    let o = vfat("image a.vfat { vfat { extraargs = \"-F 32 -i 00c0ffee -n OLD -f 2 -S 512 -r 512\" } size = 64M }")
        .unwrap();
    assert_eq!(
        (o.fat_type, o.volume_id, o.label.as_str(), o.timestamp),
        (FatType::Fat32, 0x00c0_ffee, "OLD", 7)
    );
    // `label` comes after extraargs on genimage's mkdosfs line: it wins.
    let o =
        vfat("image a.vfat { vfat { label = \"NEW\" extraargs = \"-n OLD\" } size = 1M }").unwrap();
    assert_eq!(
        (o.label.as_str(), o.volume_id, o.fat_type),
        ("NEW", 42, FatType::Auto)
    );
    for (args, want) in [
        ("-s 4", "'-s 4' is refused"),
        ("-f 1", "'-f 1' is refused"),
        ("-S 4096", "'-S 4096' is refused"),
        ("-r 112", "'-r 112' is refused"),
    ] {
        let err = vfat(&format!(
            "image a.vfat {{ vfat {{ extraargs = \"{args}\" }} size = 1M }}"
        ))
        .unwrap_err();
        assert!(
            err.starts_with("t.cfg:1: image 'a.vfat': extraargs") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn symlinks_resolve_lexically_inside_the_tree() {
    assert_eq!(resolve_link("a/b/link", "c").as_deref(), Some("a/b/c"));
    assert_eq!(
        resolve_link("a/b/link", "../x/./y").as_deref(),
        Some("a/x/y")
    );
    assert_eq!(resolve_link("link", "../etc/passwd"), None);
    assert_eq!(resolve_link("a/link", "/etc/passwd"), None);
}

#[test]
fn mksquashfs_argv_follows_genimage() {
    let img = image("image s.squashfs { squashfs { compression = \"none\" block-size = 64k } }");
    let ImageKind::Squashfs(s) = &img.kind else {
        panic!("not squashfs")
    };
    let cmd = mksquashfs_cmd(&img, s, Path::new("/d"), Path::new("/o"), 5);
    assert_eq!(
        cmd.argv_text(),
        "\"mksquashfs\" \"/d\" \"/o\" \"-b\" \"65536\" \"-noappend\" \"-no-progress\" \"-comp\" \
         \"gzip\" \"-noInodeCompression\" \"-noDataCompression\" \"-noFragmentCompression\" \
         \"-noXattrCompression\""
    );
    assert!(cmd
        .env
        .iter()
        .any(|(k, v)| k == "SOURCE_DATE_EPOCH" && v == "5"));
    let img = image("image s.squashfs { squashfs { } }");
    let ImageKind::Squashfs(s) = &img.kind else {
        panic!("not squashfs")
    };
    let text = mksquashfs_cmd(&img, s, Path::new("/d"), Path::new("/o"), 5).argv_text();
    assert!(
        text.ends_with("\"-b\" \"4096\" \"-noappend\" \"-no-progress\" \"-comp\" \"gzip\""),
        "{text}"
    );
}
