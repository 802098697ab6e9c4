use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{import_hdimage, plan_hdimage, Dirs};
use crate::genimage::{load_config_str, Config, ParseOptions};

fn setup() -> (tempfile::TempDir, Dirs) {
    let dir = tempfile::tempdir().unwrap();
    let dirs = Dirs {
        inputpath: dir.path().join("input"),
        outputpath: dir.path().join("images"),
        tmppath: dir.path().join("tmp"),
    };
    fs::create_dir(&dirs.inputpath).unwrap();
    fs::write(dirs.inputpath.join("a.bin"), vec![1u8; 3000]).unwrap();
    fs::write(dirs.inputpath.join("b.bin"), vec![2u8; 1 << 20]).unwrap();
    (dir, dirs)
}

fn config(text: &str) -> Config {
    load_config_str(text, "g.cfg", &ParseOptions::default()).unwrap()
}

fn plan_cfg(text: &str) -> Result<crate::plan::Plan, String> {
    let (_dir, dirs) = setup();
    plan_hdimage(
        &config(text),
        0,
        &dirs,
        &BTreeMap::new(),
        Path::new("g.cfg"),
        "test",
    )
    .map(|p| p.plan)
    .map_err(|e| e.to_string())
}

#[test]
fn mbr_defaults_are_genimages() {
    let plan = plan_cfg(
        "image d.img {\n hdimage { disk-signature = 0x11223344 }\n \
         partition a { image = \"a.bin\" partition-type = 0x83 }\n \
         partition b { image = \"b.bin\" partition-type = 0x0c }\n}\n",
    )
    .unwrap();
    let parts = &plan.layout.partitions;
    assert_eq!((parts[0].start, parts[0].size), (512, 3072));
    assert_eq!((parts[1].start, parts[1].size), (7 * 512, 1 << 20));
    assert_eq!(parts[0].part_type.mbr, Some(0x83));
    let err = plan_cfg("image d.img {\n hdimage { }\n partition a {\n image = \"a.bin\" }\n}\n")
        .unwrap_err();
    assert!(
        err.contains("g.cfg:3: partition 'a' has no partition-type"),
        "{err}"
    );
    assert_eq!(plan.layout.disk_size, (7 + 2048) * 512);
    assert_eq!(plan.layout.mbr_signature, Some(0x1122_3344));
}

#[test]
fn gpt_first_usable_and_derived_size() {
    let plan = plan_cfg(
        "image d.img {\n hdimage { partition-table-type = gpt align = 1M }\n \
         partition a { image = \"a.bin\" size = 1M }\n}\n",
    )
    .unwrap();
    let gpt = plan.layout.gpt.as_ref().unwrap();
    assert_eq!(gpt.first_usable_lba, 2048);
    assert_eq!(plan.layout.disk_size, 4136 * 512);
}

#[test]
fn overlap_cites_the_genimage_line_and_keeps_the_map() {
    let err = plan_cfg(
        "image d.img {\n hdimage { }\n \
         partition a { image = \"a.bin\" offset = 1M size = 2M partition-type = 0x83 }\n \
         partition b { image = \"a.bin\"\n offset = 2M size = 1M partition-type = 0x83 }\n}\n",
    )
    .unwrap_err();
    assert!(
        err.contains("g.cfg:5: partition 1 'a' and partition 2 'b' overlap"),
        "{err}"
    );
    assert!(err.contains("disk map:"), "{err}");
}

fn import_text(text: &str) -> String {
    let (_dir, dirs) = setup();
    let mapped = import_hdimage(
        &config(text),
        0,
        &dirs,
        &BTreeMap::new(),
        Path::new("g.cfg"),
    )
    .map_err(|e| e.to_string())
    .unwrap();
    crate::board::parse_board(&mapped.text, Path::new("x.toml")).unwrap();
    mapped.text
}

#[test]
fn layout_options_become_board_keys() {
    let text = import_text(
        "image d.img {\n hdimage { gpt-no-backup = true partition-table-type = gpt }\n size = 8M\n \
         partition boot {\n in-partition-table = false offset = 0 image = \"a.bin\"\n \
         holes = {\"(440;1K)\", \"(1K;2K)\"} }\n \
         partition a {\n image = \"a.bin\" hidden = true offset = 1M }\n \
         partition r {\n image = \"a.bin\"\n autoresize = true }\n}\n",
    );
    for line in [
        "gpt_backup = false",
        "fill = false",
        "in_partition_table = false",
        "  { start = \"440\", end = \"1K\" },",
        "size = \"3000\"",
        "flags = [\"hidden\"]",
        "size = \"rest\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    let plan = plan_cfg(
        "image d.img {\n hdimage { gpt-no-backup = true partition-table-type = gpt }\n size = 8M\n \
         partition boot {\n in-partition-table = false offset = 0 image = \"a.bin\"\n \
         holes = {\"(440;1K)\", \"(1K;17K)\"} }\n \
         partition a {\n image = \"a.bin\" hidden = true offset = 1M }\n \
         partition r {\n image = \"a.bin\"\n autoresize = true }\n}\n",
    )
    .unwrap();
    let parts = &plan.layout.partitions;
    assert_eq!(parts.len(), 2);
    // autoresize: to the backup GPT's room, which stays reserved.
    assert_eq!(parts[1].start, (1 << 20) + 3072);
    assert_eq!(parts[1].end(), (8 << 20) - 33 * 512);
    assert!(!plan.layout.fill);
    assert_eq!(plan.layout.blobs[0].offset, 0);
}

#[test]
fn the_first_logical_partitions_bootable_is_the_extended_entrys() {
    let parts: String = (1..=5)
        .map(|n| {
            format!(
                " partition p{n} {{ image = \"a.bin\" partition-type = 0x83 {} }}\n",
                if n == 4 {
                    "bootable = true align = 4K"
                } else {
                    ""
                }
            )
        })
        .collect();
    let text = format!("image d.img {{\n hdimage {{ }}\n size = 1M\n{parts}}}\n");
    let imported = import_text(&text);
    assert!(
        imported.contains("\nextended_bootable = true\n"),
        "{imported}"
    );
    assert!(!imported.contains("legacy-bios-bootable"), "{imported}");
    let plan = plan_cfg(&text).unwrap();
    assert!(plan.layout.extended.as_ref().unwrap().bootable);
}

#[test]
fn autoresize_needs_the_image_size() {
    let err = plan_cfg(
        "image d.img {\n hdimage { partition-table-type = gpt }\n \
         partition a {\n image = \"a.bin\"\n autoresize = true }\n}\n",
    )
    .unwrap_err();
    assert!(
        err.contains("g.cfg:3: partition 'a': autoresize needs the image's size"),
        "{err}"
    );
}

#[test]
fn genimage_refusals_are_kept() {
    let err = plan_cfg(
        "image d.img {\n hdimage { partition-table-type = gpt }\n \
         partition a { image = \"a.bin\"\n partition-type = 0x83 }\n}\n",
    )
    .unwrap_err();
    assert!(
        err.contains("g.cfg:4: partition 'a': 'partition-type' is only valid"),
        "{err}"
    );
    let err = plan_cfg("image d.img {\n hdimage { }\n partition a {\n image = \"nope.bin\" partition-type = 0x83 }\n}\n")
        .unwrap_err();
    assert!(
        err.contains("g.cfg:4: partition 'a': input file 'nope.bin'"),
        "{err}"
    );
    let err =
        plan_cfg("image d.img {\n hdimage { }\n partition a { image = \"b.bin\"\n size = 512K partition-type = 0x83 }\n}\n")
            .unwrap_err();
    assert!(
        err.contains("g.cfg:4: partition 'a': size 524288 is too small"),
        "{err}"
    );
}

#[test]
fn hybrid_needs_a_shortcut_pair_and_the_ee_after_the_gpt() {
    let ok = plan_cfg(
        "image d.img {\n hdimage { partition-table-type = hybrid }\n \
         partition a { image = \"b.bin\" partition-type = 0x0c partition-type-uuid = F }\n}\n",
    )
    .unwrap();
    assert_eq!(ok.layout.partitions[0].part_type.mbr, Some(0x0c));
    let err = plan_cfg(
        "image d.img {\n hdimage { partition-table-type = hybrid align = 1M }\n \
         partition a { image = \"b.bin\" partition-type = 0x0c partition-type-uuid = F }\n}\n",
    )
    .unwrap_err();
    assert!(err.contains("0xEE entry covers the GPT"), "{err}");
    let err = plan_cfg(
        "image d.img {\n hdimage { partition-table-type = hybrid }\n \
         partition a { image = \"b.bin\"\n partition-type = 0x0c }\n}\n",
    )
    .unwrap_err();
    assert!(
        err.contains("g.cfg:4: partition 'a': GPT type 0fc63daf"),
        "{err}"
    );
}

#[test]
fn import_text_names_sub_images_and_sources() {
    let (_dir, dirs) = setup();
    let cfg = config(
        "image boot.vfat {\n vfat { label = \"BOOT\" files = { \"a.bin\" } }\n size = 4M\n}\n\
         image d.img {\n hdimage { }\n partition boot { image = \"boot.vfat\" partition-type = 0x0c }\n}\n",
    );
    let mapped = import_hdimage(&cfg, 1, &dirs, &BTreeMap::new(), Path::new("g.cfg")).unwrap();
    let text = &mapped.text;
    assert!(
        text.contains("# image 'boot.vfat' (g.cfg:1): vfat 'BOOT' with files a.bin, 4M"),
        "{text}"
    );
    let source = dirs.outputpath.join("boot.vfat");
    assert!(
        text.contains(&format!("source = \"{}\"", source.display())),
        "{text}"
    );
    assert!(text.contains("size = \"4M\""), "{text}");
    assert_eq!(mapped.file_len, Some(512 + (4 << 20)));
    crate::board::parse_board(text, Path::new("x.toml")).unwrap();
}

#[test]
fn an_unbuilt_image_without_size_is_unknown() {
    let (_dir, dirs) = setup();
    let cfg = config(
        "image r.ext4 {\n ext4 { }\n size = 50%\n}\n\
         image d.img {\n hdimage { }\n partition r {\n image = \"r.ext4\" partition-type = 0x83 }\n}\n",
    );
    let err = plan_hdimage(&cfg, 1, &dirs, &BTreeMap::new(), Path::new("g.cfg"), "t")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "g.cfg:8: partition 'r': the size of image 'r.ext4' is unknown until it is built"
        ),
        "{err}"
    );
}
