//! MBR extended and logical partitions: `mkimg build` of a seven-partition
//! MBR board checked by `sfdisk -d`, `fdisk -l` and `mkimg inspect`; three
//! layouts compared line for line in `sfdisk -d` with genimage 16 building
//! the equivalent genimage.cfg; and the refusals with their messages.

use std::fs;
use std::path::Path;

use crate::support::build::Build;
use crate::support::run::{mkimg, run_tool, stderr, stdout};
use crate::support::tools::{have_tool, have_tools};

/// `[[partition]]` blocks for `(name, type, size, extra)`.
fn partitions(parts: &[(&str, &str, &str, &str)]) -> String {
    parts
        .iter()
        .map(|(name, ty, size, extra)| {
            format!(
                "[[partition]]\nname = \"{name}\"\ntype = \"{ty}\"\nsize = \"{size}\"\n{extra}\n"
            )
        })
        .collect()
}

fn board(disk_extra: &str, parts: &str) -> String {
    format!(
        "[board]\nname = \"mbrext\"\ndescription = \"logical partitions\"\narch = \"riscv64\"\n\
         hostname = \"t\"\nimage = \"t\"\n\n[disk]\ntable = \"mbr\"\nsize = \"64M\"\n\
         mbr_signature = \"0x12345678\"\n{disk_extra}\n\n{parts}"
    )
}

fn write_board(dir: &Path, text: &str) -> String {
    let path = dir.join("board.toml");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Build `board_text` from the minimal rootfs into a raw image; its path.
fn build(dir: &Path, board_text: &str) -> String {
    let build = Build::minimal(dir, board_text)
        .bootloader("none")
        .format("raw");
    build.run();
    build.out().join("t.raw").display().to_string()
}

/// The partition lines of `sfdisk -d` with the image path cut off.
fn sfdisk_lines(image: &str) -> Vec<String> {
    run_tool("sfdisk", &["-d", image])
        .lines()
        .filter(|l| l.contains(" : start="))
        .map(|l| l.split_once(" : ").unwrap().1.to_string())
        .collect()
}

#[test]
fn seven_partitions_build_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let parts = partitions(&[
        ("p1", "0x83", "4M", ""),
        ("p2", "0x83", "4M", "flags = [\"legacy-bios-bootable\"]"),
        ("p3", "0x83", "4M", ""),
        ("p4", "0x83", "4M", ""),
        ("p5", "0x83", "2M", "alignment = \"512\""),
        ("p6", "0x0c", "4M", "flags = [\"legacy-bios-bootable\"]"),
        (
            "root",
            "linux",
            "rest",
            "filesystem = \"ext4\"\nmount = \"/\"",
        ),
    ]);
    let image = build(dir.path(), &board("", &parts));
    // MBR: p1..p3, the extended partition in slot 4 from the first EBR
    // (1 MiB before p4) to the end of the disk; logical 5..8, each EBR one
    // alignment before its partition (p5: alignment 512, right before it;
    // p6 then starts at p5's end rounded up to 1 MiB, plus 1 MiB).
    let expected = [
        "start=        2048, size=        8192, type=83",
        "start=       10240, size=        8192, type=83, bootable",
        "start=       18432, size=        8192, type=83",
        "start=       26624, size=      104448, type=f",
        "start=       28672, size=        8192, type=83",
        "start=       36865, size=        4096, type=83",
        "start=       45056, size=        8192, type=c, bootable",
        "start=       55296, size=       75776, type=83",
    ];
    if have_tool("sfdisk") {
        assert_eq!(sfdisk_lines(&image), expected);
    }
    if have_tool("fdisk") {
        let text = run_tool("fdisk", &["-l", &image]);
        assert!(text.contains("Disk identifier: 0x12345678"), "{text}");
        let line = |n: &str| {
            let device = format!("t.raw{n} ");
            text.lines()
                .find(|l| l.contains(&device))
                .unwrap_or("")
                .to_string()
        };
        assert!(line("4").ends_with("f W95 Ext'd (LBA)"), "{text}");
        assert!(line("7").contains(" *    45056  53247"), "{text}");
        assert!(!text.contains("not in disk order"), "{text}");
        assert!(text.contains("t.raw8"), "{text}");
        assert!(!text.contains("t.raw9"), "{text}");
    }
    let out = mkimg(&["inspect", &image, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(String, u64, u64, String)> = json["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["region"].as_str().unwrap().to_string(),
                r["start"].as_u64().unwrap() / 512,
                r["end"].as_u64().unwrap() / 512,
                r["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, start, end, ty) in [
        ("extended partition 4", 26624, 131072, "mbr 0x0f"),
        ("EBR of partition 5 'mbr5'", 26624, 26625, "table"),
        ("partition 5 'mbr5'", 28672, 36864, "mbr 0x83"),
        ("EBR of partition 6 'mbr6'", 36864, 36865, "table"),
        ("partition 6 'mbr6'", 36865, 40961, "mbr 0x83"),
        ("EBR of partition 7 'mbr7'", 43008, 43009, "table"),
        ("partition 7 'mbr7'", 45056, 53248, "mbr 0x0c active"),
        ("EBR of partition 8 'mbr8'", 53248, 53249, "table"),
        ("partition 8 'mbr8'", 55296, 131072, "mbr 0x83"),
    ] {
        let want = (name.to_string(), start, end, ty.to_string());
        assert!(rows.contains(&want), "{want:?} not in {rows:#?}");
    }
    let text = stdout(&mkimg(&["inspect", &image]));
    assert!(text.contains("partition 8 'mbr8'"), "{text}");
}

/// Build the same layout with genimage 16 and with mkimg (tables only:
/// `--bootloader none`, the root as the last logical partition).
fn compare_with_genimage(name: &str, genimage_cfg: &str, board_text: &str) {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let input = dir.path().join("input");
    let output = dir.path().join("output");
    for d in [&root, &input, &output] {
        fs::create_dir(d).unwrap();
    }
    let cfg = dir.path().join("genimage.cfg");
    fs::write(&cfg, genimage_cfg).unwrap();
    let tmp = dir.path().join("tmp");
    run_tool(
        "genimage",
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--rootpath",
            root.to_str().unwrap(),
            "--inputpath",
            input.to_str().unwrap(),
            "--outputpath",
            output.to_str().unwrap(),
            "--tmppath",
            tmp.to_str().unwrap(),
        ],
    );
    let theirs = sfdisk_lines(output.join("d.img").to_str().unwrap());
    assert!(
        theirs.iter().any(|l| l.contains("type=f")),
        "{name}: {theirs:?}"
    );
    let mine_dir = dir.path().join("mkimg");
    fs::create_dir(&mine_dir).unwrap();
    let mine = sfdisk_lines(&build(&mine_dir, board_text));
    assert_eq!(mine, theirs, "{name}: mkimg (left) vs genimage 16 (right)");
}

const GENIMAGE_HEAD: &str = "image d.img {\n  hdimage { partition-table-type = \"mbr\" \
                             disk-signature = 0x12345678 align = 1M %EXT% }\n  size = 64M\n";

fn genimage_cfg(ext: &str, parts: &[&str]) -> String {
    let mut text = GENIMAGE_HEAD.replace("%EXT%", ext);
    for (i, p) in parts.iter().enumerate() {
        text.push_str(&format!("  partition p{} {{ {p} }}\n", i + 1));
    }
    text + "}\n"
}

const ROOT: &str = "filesystem = \"ext4\"\nmount = \"/\"";

#[test]
fn genimage_automatic_extended_six_partitions() {
    let cfg = genimage_cfg(
        "",
        &[
            "partition-type = 0x83 size = 4M",
            "partition-type = 0x83 size = 4M",
            "partition-type = 0x0c size = 4M",
            "partition-type = 0x83 size = 4M",
            "partition-type = 0x83 size = 2M",
            "partition-type = 0x83 autoresize = true",
        ],
    );
    let parts = partitions(&[
        ("p1", "0x83", "4M", ""),
        ("p2", "0x83", "4M", ""),
        ("p3", "0x0c", "4M", ""),
        ("p4", "0x83", "4M", ""),
        ("p5", "0x83", "2M", ""),
        ("p6", "0x83", "rest", ROOT),
    ]);
    compare_with_genimage("automatic", &cfg, &board("", &parts));
}

#[test]
fn genimage_extended_partition_2_explicit_offsets() {
    let cfg = genimage_cfg(
        "extended-partition = 2",
        &[
            "partition-type = 0x0c offset = 1M size = 8M",
            "partition-type = 0x83 offset = 12M size = 4M",
            "partition-type = 0x83 size = 4M",
            "partition-type = 0x83 offset = 30M size = 6M",
            "partition-type = 0x83 offset = 40M autoresize = true",
        ],
    );
    let parts = [
        "[[partition]]\nname = \"p1\"\ntype = \"0x0c\"\noffset = \"1M\"\nsize = \"8M\"\n",
        "[[partition]]\nname = \"p2\"\ntype = \"0x83\"\noffset = \"12M\"\nsize = \"4M\"\n",
        "[[partition]]\nname = \"p3\"\ntype = \"0x83\"\nsize = \"4M\"\n",
        "[[partition]]\nname = \"p4\"\ntype = \"0x83\"\noffset = \"30M\"\nsize = \"6M\"\n",
        "[[partition]]\nname = \"p5\"\ntype = \"0x83\"\noffset = \"40M\"\nsize = \"rest\"\nfilesystem = \"ext4\"\nmount = \"/\"\n",
    ]
    .join("\n");
    compare_with_genimage(
        "extended-partition = 2",
        &cfg,
        &board("extended_partition = 2", &parts),
    );
}

#[test]
fn genimage_extended_partition_1_small_alignment() {
    let cfg = GENIMAGE_HEAD.replace("align = 1M %EXT%", "align = 4K extended-partition = 1")
        + "  partition p1 { partition-type = 0x83 size = 4M }\n\
           partition p2 { partition-type = 0x83 size = 1M }\n\
           partition p3 { partition-type = 0x0c size = 3M }\n\
           partition p4 { partition-type = 0x83 autoresize = true }\n}\n";
    let parts = partitions(&[
        ("p1", "0x83", "4M", ""),
        ("p2", "0x83", "1M", ""),
        ("p3", "0x0c", "3M", ""),
        ("p4", "0x83", "rest", ROOT),
    ]);
    compare_with_genimage(
        "extended-partition = 1, align 4K",
        &cfg,
        &board("extended_partition = 1\nalignment = \"4K\"", &parts),
    );
}

/// Plan a board that must be refused; its stderr.
fn refused(board_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let board = write_board(dir.path(), board_text);
    let out = mkimg(&["plan", "--board", &board]);
    assert!(!out.status.success(), "planned:\n{}", stdout(&out));
    stderr(&out)
}

#[test]
fn refusals() {
    let six = partitions(&[
        ("p1", "0x83", "4M", ""),
        ("p2", "0x83", "4M", ""),
        ("p3", "0x83", "4M", ""),
        ("p4", "0x83", "4M", ""),
        ("p5", "0x83", "4M", ""),
        ("p6", "0x83", "4M", ""),
    ]);
    let err = refused(&board("extended_partition = 5", &six));
    assert!(
        err.contains(
            "disk.extended_partition = 5: the extended partition takes an MBR slot, 1 to 4"
        ),
        "{err}"
    );
    assert!(err.contains("board.toml:12:22"), "{err}");

    let gpt = board("extended_partition = 2", &six).replace("table = \"mbr\"", "table = \"gpt\"");
    let err = refused(&gpt);
    assert!(
        err.contains("extended and logical partitions exist only in an MBR"),
        "{err}"
    );

    let two = partitions(&[("p1", "0x83", "4M", ""), ("p2", "0x83", "4M", "")]);
    let err = refused(&board("extended_partition = 3", &two));
    assert!(err.contains("no partition would be logical"), "{err}");

    // A logical partition placed before the previous one: the chain ascends.
    let backwards = partitions(&[
        ("p1", "0x83", "4M", ""),
        ("p2", "0x83", "4M", "offset = \"40M\""),
        ("p3", "0x83", "4M", "offset = \"20M\""),
    ]);
    let err = refused(&board("extended_partition = 2", &backwards));
    assert!(
        err.contains(
            "partition 6 'p3': its EBR at 0x1300000 is before the end of partition 5 'p2'"
        ),
        "{err}"
    );

    // An EBR inside the previous logical partition: the conflict map.
    let tight = partitions(&[
        ("p1", "0x83", "4M", ""),
        ("p2", "0x83", "4M", "offset = \"8M\""),
        ("p3", "0x83", "4M", "offset = \"12M\""),
    ]);
    let err = refused(&board("extended_partition = 2", &tight));
    assert!(err.contains("partition 5 'p2' and EBR of partition 6 'p3' overlap by 512 bytes at 0xb00000..0xb00200"), "{err}");
    assert!(err.contains("disk map:"), "{err}");

    // A primary partition after the logical ones lies in the extended one.
    let primary_after = partitions(&[
        ("p1", "0x83", "4M", "offset = \"40M\""),
        ("p2", "0x83", "4M", "offset = \"8M\""),
    ]);
    let err = refused(&board("extended_partition = 2", &primary_after));
    assert!(
        err.contains("partition 1 'p1': a primary partition inside the extended partition 2"),
        "{err}"
    );

    // A blob over an EBR.
    let blob = format!(
        "{}\n[[blob]]\nname = \"b\"\nsource = \"b.bin\"\noffset = \"11M\"\nsize = \"4K\"\n",
        partitions(&[
            ("p1", "0x83", "4M", ""),
            ("p2", "0x83", "4M", "offset = \"12M\"")
        ])
    );
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("b.bin"), [1u8; 4096]).unwrap();
    let path = write_board(dir.path(), &board("extended_partition = 2", &blob));
    let out = mkimg(&["plan", "--board", &path]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("EBR of partition 5 'p2' and blob 'b' overlap"),
        "{err}"
    );
}
