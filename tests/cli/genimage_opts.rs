//! genimage's layout options through `mkimg build --genimage`, each in
//! configs built by genimage 16 too and compared as the main corpus
//! (`genimage.rs`) compares them: `sfdisk -d`, the disk identifier, the
//! file length and the bytes (CHS aside). `gpt-no-backup`, `fill`,
//! `hidden`, `holes` (on the partition and on its `file` image),
//! `in-partition-table = false` (with and without an offset),
//! `autoresize`, a bootable first logical partition (genimage marks the
//! extended entry), a logical partition with an align of its own, and
//! placement after the furthest partition. `forced-primary` is genimage
//! 17's: genimage 16 refuses it, and mkimg's table is compared with
//! genimage's own test oracle (tests/hdimage-forced-primary.fdisk). Then
//! `plan --genimage` and `import-genimage` show the options as board keys,
//! and the imported board builds the same table.

use std::fs;

use crate::genimage::{
    both_refuse, cfg, gpart, gpt_hd, same_as_genimage, same_as_genimage_except, sfdisk_dump, Setup,
    P1, P2, P3,
};
use crate::support::run::{mkimg, stderr, stdout};
use crate::support::tarball::Tarball;
use crate::support::tools::have_tools;

const SIG: &str = "disk-signature = 0x12345678";

#[test]
fn gpt_no_backup_and_fill_match_genimage() {
    let parts =
        gpart("a", P1, "image = \"c.bin\"") + &gpart("b", P2, "image = \"b.bin\" size = 2M");
    for (name, hd) in [
        (
            "gpt-no-backup: the file ends after the last data",
            "gpt-no-backup = true",
        ),
        ("gpt-no-backup, fill", "gpt-no-backup = true fill = true"),
        ("gpt, fill (the backup is at the end anyway)", "fill = true"),
    ] {
        same_as_genimage(
            name,
            &cfg(&gpt_hd(&format!("align = 1M {hd}")), "size = 8M", &parts),
            &[],
            &[],
        );
    }
    same_as_genimage(
        "mbr without fill: the file ends in the last image",
        &cfg(
            &format!("{SIG} align = 1M"),
            "size = 16M",
            "  partition a { image = \"a.bin\" partition-type = 0x83 size = 4M }\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn hidden_matches_genimage() {
    same_as_genimage(
        "hidden (GPT attribute 62) beside the other attributes",
        &cfg(
            &gpt_hd(""),
            "",
            &(gpart("a", P1, "image = \"a.bin\" hidden = true")
                + &gpart(
                    "b",
                    P2,
                    "image = \"c.bin\" hidden = true bootable = true read-only = true",
                )
                + &gpart("c", P3, "image = \"a.bin\"")),
        ),
        &[],
        &[],
    );
    same_as_genimage(
        "hidden on an MBR partition: genimage 16 ignores it",
        &cfg(
            SIG,
            "",
            "  partition a { image = \"a.bin\" partition-type = 0x83 hidden = true }\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn in_partition_table_false_and_holes_match_genimage() {
    same_as_genimage(
        "a boot loader at 0 (no offset) with a hole for the MBR; the next partition follows it",
        &cfg(
            SIG,
            "",
            "  partition boot { in-partition-table = false image = \"c.bin\" holes = {\"(440;512)\"} }\n  \
             partition a { image = \"a.bin\" partition-type = 0x83 }\n  \
             partition b { image = \"d.bin\" partition-type = 0x0c }\n",
        ),
        &[],
        &[],
    );
    same_as_genimage(
        "non-table partitions between table ones: explicit offsets, 1-byte alignment, odd sizes",
        &cfg(
            &format!("{SIG} align = 1M"),
            "size = 32M",
            "  partition a { image = \"c.bin\" partition-type = 0x83 }\n  \
             partition x { in-partition-table = false image = \"a.bin\" offset = 4M align = 2M }\n  \
             partition y { in-partition-table = false image = \"d.bin\" offset = 6000K }\n  \
             partition b { image = \"c.bin\" partition-type = 0x83 }\n",
        ),
        &[],
        &[],
    );
    // The `file` section's holes, on a GPT: the loader may cover the MBR
    // table, the header and the entry array. genimage writes the file and
    // then the header's 92 bytes over it, so the rest of sector 1 keeps
    // the loader's bytes there; mkimg writes the header sector whole (the
    // hole is the loader's "nothing here"): bytes 604..1024 are skipped.
    let holes = "image loader.img { file { name = \"b.bin\" holes = {\"(440;17K)\"} } }\n".to_string()
        + &cfg(
            &gpt_hd("align = 1M"),
            "",
            &("  partition loader { in-partition-table = false offset = 0 image = \"loader.img\" }\n"
                .to_string()
                + &gpart("a", P1, "image = \"c.bin\" offset = 1M")),
        );
    same_as_genimage_except(
        "a file section's holes over the GPT",
        &holes,
        &[],
        &[],
        std::slice::from_ref(&(604..1024)),
    );
}

#[test]
fn autoresize_matches_genimage() {
    same_as_genimage(
        "autoresize, GPT (the backup GPT's room is kept)",
        &cfg(
            &gpt_hd("align = 1M"),
            "size = 20M",
            &(gpart("a", P1, "image = \"c.bin\"")
                + &gpart("root", P2, "image = \"b.bin\" autoresize = true")),
        ),
        &[],
        &[],
    );
    same_as_genimage(
        "autoresize, gpt-no-backup, an align of its own",
        &cfg(
            &gpt_hd("gpt-no-backup = true"),
            "size = 10M",
            &(gpart("a", P1, "image = \"a.bin\"")
                + &gpart("root", P2, "image = \"a.bin\" align = 1M autoresize = true")),
        ),
        &[],
        &[],
    );
    same_as_genimage(
        "autoresize, MBR, with a minimum size",
        &cfg(
            &format!("{SIG} align = 4K"),
            "size = 8M",
            "  partition a { image = \"c.bin\" partition-type = 0x0c }\n  \
             partition root { partition-type = 0x83 size = 2M autoresize = true }\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn logical_partition_options_match_genimage() {
    let part = |n: u32, extra: &str| {
        format!("  partition p{n} {{ image = \"c.bin\" partition-type = 0x83 {extra} }}\n")
    };
    same_as_genimage(
        "bootable first logical partition: the extended entry is active",
        &cfg(
            &format!("{SIG} align = 1M"),
            "size = 32M",
            &(part(1, "")
                + &part(2, "")
                + &part(3, "")
                + &part(4, "bootable = true")
                + &part(5, "bootable = true")),
        ),
        &[],
        &[],
    );
    same_as_genimage(
        "logical partitions with an align of their own",
        &cfg(
            &format!("{SIG} align = 1M"),
            "size = 64M",
            &(part(1, "")
                + &part(2, "")
                + &part(3, "")
                + &part(4, "align = 4M")
                + &part(5, "align = 4M")),
        ),
        &[],
        &[],
    );
    same_as_genimage(
        "an automatic offset follows the furthest partition, not the previous one",
        &cfg(
            &format!("{SIG} align = 1M"),
            "",
            &(part(1, "offset = 8M") + &part(2, "offset = 2M") + &part(3, "")),
        ),
        &[],
        &[],
    );
}

/// genimage's tests/hdimage-forced-primary.config (extended partition in
/// slot 2, five logical partitions, two forced primaries after them);
/// genimage 16 does not know the option, so the table is genimage's own
/// expected one, tests/hdimage-forced-primary.fdisk.
#[test]
fn forced_primary_as_genimage_documents_it() {
    if !have_tools(&["sfdisk"]) {
        return;
    }
    let mut parts =
        "  partition part1 { image = \"b.bin\" partition-type = 0x0c bootable = true }\n"
            .to_string();
    for n in 5..=9 {
        parts += &format!("  partition part{n} {{ image = \"b.bin\" partition-type = 0x83 }}\n");
    }
    parts +=
        "  partition part3 { image = \"b.bin\" partition-type = 0x83 forced-primary = true }\n";
    parts +=
        "  partition part4 { image = \"b.bin\" partition-type = 0x82 forced-primary = true }\n";
    let text = cfg(
        &format!("{SIG} align = 1M extended-partition = 2"),
        "size = 16M",
        &parts,
    );
    let t = Setup::new(&text);
    if have_tools(&["genimage"]) {
        let theirs = t.genimage(&[], &[]);
        assert!(
            !theirs.status.success(),
            "genimage 16 knows forced-primary now"
        );
    }
    let out = t.mkimg(&[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dump = sfdisk_dump(&t.path("mine/d.img"));
    let lines: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.split_once(" : ").map(|(_, rest)| rest))
        .collect();
    assert_eq!(
        lines,
        [
            "start=        2048, size=        2048, type=c, bootable",
            "start=        4096, size=       20480, type=f",
            "start=       24576, size=        2048, type=83",
            "start=       26624, size=        2048, type=82",
            "start=        6144, size=        2048, type=83",
            "start=       10240, size=        2048, type=83",
            "start=       14336, size=        2048, type=83",
            "start=       18432, size=        2048, type=83",
            "start=       22528, size=        2048, type=83",
        ]
    );
}

#[test]
fn misplaced_options_are_refused_by_both_tools() {
    both_refuse(
        "a boot loader over the MBR without a hole",
        &cfg(
            SIG,
            "",
            "  partition boot { in-partition-table = false image = \"c.bin\" }\n  \
             partition a { image = \"a.bin\" partition-type = 0x83 offset = 1M }\n",
        ),
        &["g.cfg:", "and MBR overlap"],
    );
    both_refuse(
        "a partition without a table entry and without an image",
        &cfg(
            SIG,
            "size = 32M",
            "  partition a { image = \"a.bin\" partition-type = 0x83 }\n  \
             partition z { in-partition-table = false size = 64K offset = 20M }\n",
        ),
        &["g.cfg:5: partition 'z': a partition without a table entry needs an image"],
    );
    both_refuse(
        "autoresize without the image's size",
        &cfg(
            &gpt_hd(""),
            "",
            &gpart("root", P1, "image = \"a.bin\" autoresize = true"),
        ),
        &["g.cfg:4: partition 'root': autoresize needs the image's size"],
    );
    both_refuse(
        "autoresize smaller than its size",
        &cfg(
            SIG,
            "size = 4M",
            "  partition root { partition-type = 0x83 size = 8M autoresize = true }\n",
        ),
        &["g.cfg:4: partition 'root': autoresize leaves it"],
    );
}

/// `plan --genimage` plans them, `import-genimage` prints them as board
/// keys, and that board builds genimage's table (`fill = true`: without
/// it neither file holds the end of the disk the GPT names, and sfdisk
/// falls back to the protective MBR).
#[test]
fn plan_and_import_show_the_options() {
    let text = cfg(
        &gpt_hd("align = 1M gpt-no-backup = true fill = true"),
        "size = 24M",
        &("  partition boot { in-partition-table = false offset = 0 image = \"c.bin\" \
              holes = {\"(440;17K)\"} }\n"
            .to_string()
            + &gpart("a", P1, "image = \"c.bin\" hidden = true offset = 1M")
            + &gpart("root", P2, "image = \"a.bin\" autoresize = true")),
    );
    let t = Setup::new(&text);
    let plan = mkimg(&[
        "plan",
        "--genimage",
        &t.s("g.cfg"),
        "--inputpath",
        &t.s("input"),
        "--json",
    ]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let layout = &json["images"][0]["plan"]["layout"];
    assert_eq!(layout["gpt"]["backup"], false, "{layout}");
    assert_eq!(layout["blobs"][0]["name"], "boot");
    assert_eq!(layout["partitions"][1]["start"], 2 << 20);
    assert_eq!(
        layout["partitions"][1]["size"],
        (24 << 20) - (2 << 20) - (1 << 20)
    );
    let import = mkimg(&[
        "import-genimage",
        &t.s("g.cfg"),
        "--inputpath",
        &t.s("input"),
    ]);
    assert!(import.status.success(), "{}", stderr(&import));
    let board = stdout(&import);
    for line in [
        "gpt_backup = false",
        "fill = true",
        "in_partition_table = false",
        "  { start = \"440\", end = \"17K\" },",
        "flags = [\"hidden\"]",
        "size = \"rest\"",
    ] {
        assert!(board.lines().any(|l| l == line), "{line:?} in:\n{board}");
    }
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    // The imported board, its root filesystem made by a board build.
    let theirs = t.genimage(&[], &[]);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let (head, last) = board.rsplit_once("[[partition]]").unwrap();
    let last: String = last
        .lines()
        .filter(|l| !l.starts_with("filesystem") && !l.starts_with("source"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(
        t.path("board.toml"),
        format!("{head}[[partition]]{last}filesystem = \"ext4\"\nmount = \"/\"\n"),
    )
    .unwrap();
    fs::write(t.path("rootfs.tar"), Tarball::minimal_riscv64().finish()).unwrap();
    let built = mkimg(&[
        "build",
        "--board",
        &t.s("board.toml"),
        "--rootfs",
        &t.s("rootfs.tar"),
        "--format",
        "raw",
        "-o",
        &t.s("board-out"),
    ]);
    assert!(built.status.success(), "{}\n{board}", stderr(&built));
    let keep = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("first-lba") && !l.starts_with("grain"))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        keep(sfdisk_dump(&t.path("board-out/d.img.raw"))),
        keep(sfdisk_dump(&t.path("gen/d.img"))),
        "board build (left) vs genimage 16, from:\n{board}"
    );
}
