//! genimage's layout options in board.toml, each built by mkimg and by
//! genimage 16 from a hand-written equivalent genimage.cfg and compared:
//! `gpt_backup = false` (gpt-no-backup), `fill`, the `hidden` flag,
//! `in_partition_table = false`, `holes`, `size = "rest"` (autoresize);
//! `forced_primary` against genimage's own expected output (genimage 16
//! lacks it; its test suite's hdimage-forced-primary.fdisk is the oracle).

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::build::Build;
use crate::support::run::{mkimg, run_tool, stderr, stdout};
use crate::support::tools::have_tools;

const UUID_DISK: &str = "11111111-2222-3333-4444-555555555555";
const UUID_A: &str = "aaaaaaaa-2222-3333-4444-555555555555";
const UUID_ROOT: &str = "cccccccc-2222-3333-4444-555555555555";

/// Deterministic non-zero bytes (so every byte of a blob is visible).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn board(disk: &str, rest: &str) -> String {
    format!(
        "[board]\nname = \"glayout\"\ndescription = \"genimage layout options\"\n\
         arch = \"riscv64\"\nhostname = \"t\"\nimage = \"t\"\n\n[disk]\n{disk}\n\n{rest}"
    )
}

/// Build `board_text` (with `files` next to it) into a raw image.
fn build(dir: &Path, board_text: &str, files: &[(&str, &[u8])]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for (name, data) in files {
        fs::write(dir.join(name), data).unwrap();
    }
    let build = Build::minimal(dir, board_text)
        .bootloader("none")
        .format("raw");
    build.run();
    build.out().join("t.raw")
}

/// Run genimage 16 on `cfg` with `inputs` (name, bytes; a `None` is a
/// sparse file of that size) in its input directory; the image `d.img`.
fn genimage(dir: &Path, cfg: &str, inputs: &[(&str, &[u8])], sparse: &[(&str, u64)]) -> PathBuf {
    let [root, input, output] = ["root", "input", "output"].map(|d| dir.join(d));
    for d in [&root, &input, &output] {
        fs::create_dir_all(d).unwrap();
    }
    for (name, data) in inputs {
        fs::write(input.join(name), data).unwrap();
    }
    for (name, len) in sparse {
        fs::File::create(input.join(name))
            .unwrap()
            .set_len(*len)
            .unwrap();
    }
    let cfg_path = dir.join("genimage.cfg");
    fs::write(&cfg_path, cfg).unwrap();
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    run_tool(
        "genimage",
        &[
            "--config",
            &arg(&cfg_path),
            "--rootpath",
            &arg(&root),
            "--inputpath",
            &arg(&input),
            "--outputpath",
            &arg(&output),
            "--tmppath",
            &arg(&dir.join("tmp")),
        ],
    );
    output.join("d.img")
}

/// The partition lines of `sfdisk -d`, device names cut off.
fn sfdisk_lines(image: &Path) -> Vec<String> {
    run_tool("sfdisk", &["-d", image.to_str().unwrap()])
        .lines()
        .filter(|l| l.contains(" : start="))
        .map(|l| l.split_once(" : ").unwrap().1.to_string())
        .collect()
}

fn bytes(image: &Path) -> Vec<u8> {
    fs::read(image).unwrap()
}

fn le64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

/// (my LBA, alternate LBA, first usable, last usable, entries LBA) of the
/// primary GPT header.
fn gpt_header(data: &[u8]) -> [u64; 5] {
    assert_eq!(&data[512..520], b"EFI PART");
    [24, 32, 40, 48, 72].map(|at| le64(data, 512 + at))
}

/// Two partitions: a raw one (1 MiB of data in 4 MiB) and the 8 MiB root.
fn raw_and_root(extra_a: &str, extra_root: &str) -> String {
    format!(
        "[[partition]]\nname = \"a\"\ntype = \"linux\"\nsize = \"4M\"\nfilesystem = \"raw\"\n\
         source = \"a.img\"\nuuid = \"{UUID_A}\"\n{extra_a}\n\n\
         [[partition]]\nname = \"root\"\ntype = \"linux\"\nsize = \"8M\"\n\
         filesystem = \"ext4\"\nmount = \"/\"\nuuid = \"{UUID_ROOT}\"\n{extra_root}\n"
    )
}

fn genimage_raw_and_root(hdimage: &str, extra_a: &str, extra_root: &str) -> String {
    format!(
        "image d.img {{\n  hdimage {{ {hdimage} }}\n  size = 64M\n\
         partition a {{ partition-type-uuid = L image = \"a.img\" size = 4M \
         partition-uuid = \"{UUID_A}\" {extra_a} }}\n\
         partition root {{ partition-type-uuid = L image = \"root.img\" size = 8M \
         partition-uuid = \"{UUID_ROOT}\" {extra_root} }}\n}}\n"
    )
}

#[test]
fn gpt_without_backup_matches_genimage() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = pattern(1 << 20, 7);
    let cfg = genimage_raw_and_root(
        &format!(
            "partition-table-type = \"gpt\" disk-uuid = \"{UUID_DISK}\" align = 1M \
             gpt-no-backup = true fill = true"
        ),
        "",
        "",
    );
    let theirs = bytes(&genimage(
        &dir.path().join("g"),
        &cfg,
        &[("a.img", &a)],
        &[("root.img", 8 << 20)],
    ));
    let text = board(
        &format!("table = \"gpt\"\nsize = \"64M\"\nguid = \"{UUID_DISK}\"\ngpt_backup = false"),
        &raw_and_root("", ""),
    );
    let image = build(&dir.path().join("m"), &text, &[("a.img", &a)]);
    let mine = bytes(&image);
    assert_eq!(mine.len(), theirs.len());
    // Primary header: itself as the alternate, the last usable LBA as if
    // the backup were there. genimage 16 sets the first usable LBA to the
    // first partition's (2048); mkimg to the end of the array (34).
    let [m_my, m_alt, m_first, m_last, m_entries] = gpt_header(&mine);
    let [g_my, g_alt, g_first, g_last, g_entries] = gpt_header(&theirs);
    assert_eq!(
        (m_my, m_alt, m_last, m_entries),
        (g_my, g_alt, g_last, g_entries)
    );
    assert_eq!((m_alt, m_last), (1, 131072 - 34));
    assert_eq!((m_first, g_first), (34, 2048));
    // The entry arrays (LBA 2..34): byte for byte.
    assert!(
        mine[1024..17408] == theirs[1024..17408],
        "entry arrays differ"
    );
    // No backup: the last 33 sectors are empty in both.
    let tail = mine.len() - 33 * 512;
    assert!(mine[tail..].iter().all(|&b| b == 0));
    assert!(theirs[tail..].iter().all(|&b| b == 0));
    assert_eq!(sfdisk_lines(&image)[0], {
        let g = dir.path().join("g/output/d.img");
        sfdisk_lines(&g)[0].clone()
    });
    let out = stdout(&mkimg(&["inspect", image.to_str().unwrap()]));
    assert!(out.contains("no backup GPT"), "{out}");
    assert!(!out.contains("backup GPT header"), "{out}");
}

/// The raw file's length with and without `fill`, against genimage's.
#[test]
fn fill_matches_genimage_file_sizes() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let a = pattern(1 << 20, 3);
    for (table, fill, len) in [
        ("mbr", false, 10u64 << 20),
        ("mbr", true, 64 << 20),
        ("gpt", false, 64 << 20),
        ("gpt-no-backup", false, 10 << 20),
        ("gpt-no-backup", true, 64 << 20),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (hd, disk) = match table {
            "mbr" => (
                "partition-table-type = \"mbr\" disk-signature = 0x12345678".to_string(),
                "table = \"mbr\"\nmbr_signature = \"0x12345678\"".to_string(),
            ),
            "gpt" => (
                format!("partition-table-type = \"gpt\" disk-uuid = \"{UUID_DISK}\""),
                format!("table = \"gpt\"\nguid = \"{UUID_DISK}\""),
            ),
            _ => (
                format!(
                    "partition-table-type = \"gpt\" disk-uuid = \"{UUID_DISK}\" \
                     gpt-no-backup = true"
                ),
                format!("table = \"gpt\"\nguid = \"{UUID_DISK}\"\ngpt_backup = false"),
            ),
        };
        let mbr = table == "mbr";
        let ty = |gpt_extra: &str| {
            if mbr {
                "partition-type = 0x83".to_string()
            } else {
                format!("partition-type-uuid = L {gpt_extra}")
            }
        };
        // root first (its image fills it), then 1 MiB of data in 4 MiB.
        let cfg = format!(
            "image d.img {{\n  hdimage {{ {hd} align = 1M fill = {fill} }}\n  size = 64M\n\
             partition root {{ {} image = \"root.img\" size = 8M }}\n\
             partition a {{ {} image = \"a.img\" size = 4M }}\n}}\n",
            ty(&format!("partition-uuid = \"{UUID_ROOT}\"")),
            ty(&format!("partition-uuid = \"{UUID_A}\"")),
        );
        let theirs = genimage(
            &dir.path().join("g"),
            &cfg,
            &[("a.img", &a)],
            &[("root.img", 8 << 20)],
        );
        let parts = format!(
            "[[partition]]\nname = \"root\"\ntype = \"{t}\"\nsize = \"8M\"\n\
             filesystem = \"ext4\"\nmount = \"/\"\nuuid = \"{UUID_ROOT}\"\n\n\
             [[partition]]\nname = \"a\"\ntype = \"{t}\"\nsize = \"4M\"\n\
             filesystem = \"raw\"\nsource = \"a.img\"\nuuid = \"{UUID_A}\"\n",
            t = if mbr { "0x83" } else { "linux" }
        );
        let parts = if mbr {
            parts
                .replace(&format!("uuid = \"{UUID_ROOT}\"\n"), "")
                .replace(&format!("uuid = \"{UUID_A}\"\n"), "")
        } else {
            parts
        };
        let text = board(&format!("{disk}\nsize = \"64M\"\nfill = {fill}"), &parts);
        let image = build(&dir.path().join("m"), &text, &[("a.img", &a)]);
        let what = format!("{table} fill = {fill}");
        assert_eq!(
            fs::metadata(&theirs).unwrap().len(),
            len,
            "genimage, {what}"
        );
        assert_eq!(fs::metadata(&image).unwrap().len(), len, "mkimg, {what}");
        assert_eq!(sfdisk_lines(&image), sfdisk_lines(&theirs), "{what}");
    }
}

#[test]
fn hidden_and_other_attributes_match_genimage() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = pattern(1 << 20, 5);
    let cfg = genimage_raw_and_root(
        &format!("partition-table-type = \"gpt\" disk-uuid = \"{UUID_DISK}\" align = 1M"),
        "hidden = true",
        "bootable = true read-only = true no-automount = true",
    );
    let theirs = genimage(
        &dir.path().join("g"),
        &cfg,
        &[("a.img", &a)],
        &[("root.img", 8 << 20)],
    );
    let text = board(
        &format!("table = \"gpt\"\nsize = \"64M\"\nguid = \"{UUID_DISK}\""),
        &raw_and_root(
            "flags = [\"hidden\"]",
            "flags = [\"legacy-bios-bootable\", \"read-only\", \"no-automount\"]",
        ),
    );
    let image = build(&dir.path().join("m"), &text, &[("a.img", &a)]);
    let mine = sfdisk_lines(&image);
    assert!(mine[0].ends_with("attrs=\"GUID:62\""), "{mine:?}");
    assert_eq!(mine, sfdisk_lines(&theirs));
    let json = stdout(&mkimg(&["inspect", image.to_str().unwrap()]));
    assert!(json.contains("attrs 0x4000000000000000"), "{json}");
}

/// A 1 MiB boot loader at offset 0 with a hole for the MBR's table (and,
/// on GPT, for the header and entry array), partitions from 1 MiB.
#[test]
fn holes_match_genimage() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let boot = pattern(1 << 20, 11);
    for (table, hole_end) in [("mbr", 512u64), ("gpt", 17408)] {
        let dir = tempfile::tempdir().unwrap();
        let (hd, disk) = if table == "mbr" {
            (
                "partition-table-type = \"mbr\" disk-signature = 0x12345678".to_string(),
                "table = \"mbr\"\nmbr_signature = \"0x12345678\"".to_string(),
            )
        } else {
            (
                format!("partition-table-type = \"gpt\" disk-uuid = \"{UUID_DISK}\""),
                format!("table = \"gpt\"\nguid = \"{UUID_DISK}\""),
            )
        };
        let ty = if table == "mbr" {
            "partition-type = 0x83".to_string()
        } else {
            format!("partition-type-uuid = L partition-uuid = \"{UUID_ROOT}\"")
        };
        let cfg = format!(
            "image d.img {{\n  hdimage {{ {hd} align = 1M }}\n  size = 16M\n\
             partition boot {{ in-partition-table = false offset = 0 image = \"boot.img\" \
             holes = {{\"(440;{hole_end})\"}} }}\n\
             partition root {{ {ty} image = \"root.img\" size = 8M }}\n}}\n"
        );
        let theirs = bytes(&genimage(
            &dir.path().join("g"),
            &cfg,
            &[("boot.img", &boot)],
            &[("root.img", 8 << 20)],
        ));
        let uuid = if table == "mbr" {
            String::new()
        } else {
            format!("uuid = \"{UUID_ROOT}\"\n")
        };
        let parts = format!(
            "[[blob]]\nname = \"boot\"\nsource = \"boot.img\"\noffset = \"0\"\n\
             holes = [{{ start = \"440\", end = \"{hole_end}\" }}]\n\n\
             [[partition]]\nname = \"root\"\ntype = \"{}\"\nsize = \"8M\"\n\
             filesystem = \"ext4\"\nmount = \"/\"\n{uuid}",
            if table == "mbr" { "0x83" } else { "linux" }
        );
        let text = board(&format!("{disk}\nsize = \"16M\""), &parts);
        let image = build(&dir.path().join("m"), &text, &[("boot.img", &boot)]);
        let mine = bytes(&image);
        let hole = 440..hole_end as usize;
        // The boot loader's bytes outside the hole, in both.
        for (who, data) in [("mkimg", &mine), ("genimage", &theirs)] {
            assert!(data[..440] == boot[..440], "{who}: boot code");
            assert!(
                data[hole.end..1 << 20] == boot[hole.end..],
                "{who}: after the hole"
            );
        }
        assert_eq!(sfdisk_lines(&image), {
            let g = dir.path().join("g/output/d.img");
            sfdisk_lines(&g)
        });
        if table == "mbr" {
            // The whole MBR table area is the same bytes.
            assert!(mine[440..512] == theirs[440..512], "MBR table");
        }
        // Without the hole: refused, naming the table structure.
        let no_hole = text.replace(
            &format!("holes = [{{ start = \"440\", end = \"{hole_end}\" }}]\n"),
            "",
        );
        let d = dir.path().join("refused");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("boot.img"), &boot).unwrap();
        fs::write(d.join("board.toml"), &no_hole).unwrap();
        let out = mkimg(&["plan", "--board", d.join("board.toml").to_str().unwrap()]);
        assert!(!out.status.success(), "{table}: planned without holes");
        let err = stderr(&out);
        let party = if table == "mbr" {
            "blob 'boot' and MBR overlap by 72 bytes at 0x1b8..0x200"
        } else {
            "blob 'boot' and primary GPT header overlap by"
        };
        assert!(err.contains(party), "{err}");
        assert!(err.contains("holes = [{ start = \"440\""), "{err}");
    }
}

/// A partition without a table entry between two with one: numbering and
/// automatic placement as genimage's, its bytes at its offset.
#[test]
fn in_partition_table_false_matches_genimage() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, x) = (pattern(1 << 20, 1), pattern(1 << 20, 2));
    let cfg = "image d.img {\n  hdimage { partition-table-type = \"mbr\" \
               disk-signature = 0x12345678 align = 1M }\n  size = 64M\n\
               partition a { partition-type = 0x83 image = \"a.img\" size = 4M }\n\
               partition x { in-partition-table = false offset = 8M image = \"x.img\" }\n\
               partition b { partition-type = 0x0c image = \"a.img\" size = 4M }\n\
               partition c { partition-type = 0x83 image = \"a.img\" autoresize = true }\n}\n";
    let theirs = genimage(
        &dir.path().join("g"),
        cfg,
        &[("a.img", &a), ("x.img", &x)],
        &[],
    );
    let parts = "[[partition]]\nname = \"a\"\ntype = \"0x83\"\nsize = \"4M\"\n\
                 filesystem = \"raw\"\nsource = \"a.img\"\n\n\
                 [[partition]]\nname = \"x\"\ntype = \"0x83\"\nin_partition_table = false\n\
                 offset = \"8M\"\nsize = \"1M\"\nfilesystem = \"raw\"\nsource = \"x.img\"\n\n\
                 [[partition]]\nname = \"b\"\ntype = \"0x0c\"\nsize = \"4M\"\n\
                 filesystem = \"raw\"\nsource = \"a.img\"\n\n\
                 [[partition]]\nname = \"c\"\ntype = \"0x83\"\nsize = \"rest\"\n\
                 filesystem = \"ext4\"\nmount = \"/\"\n";
    let text = board(
        "table = \"mbr\"\nsize = \"64M\"\nmbr_signature = \"0x12345678\"",
        parts,
    );
    let image = build(
        &dir.path().join("m"),
        &text,
        &[("a.img", &a), ("x.img", &x)],
    );
    let mine = sfdisk_lines(&image);
    assert_eq!(
        mine,
        [
            "start=        2048, size=        8192, type=83",
            "start=       18432, size=        8192, type=c",
            "start=       26624, size=      104448, type=83",
        ]
    );
    assert_eq!(mine, sfdisk_lines(&theirs));
    let data = bytes(&image);
    assert!(data[8 << 20..9 << 20] == x[..], "x at 8 MiB");
    assert!(bytes(&theirs)[8 << 20..9 << 20] == x[..]);
}

/// `size = "rest"` is genimage's `autoresize`: the end rounded down to the
/// alignment before the backup GPT.
#[test]
fn rest_matches_genimage_autoresize() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let a = pattern(1 << 20, 9);
    for align in ["1M", "4K"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "image d.img {{\n  hdimage {{ partition-table-type = \"gpt\" \
             disk-uuid = \"{UUID_DISK}\" align = {align} }}\n  size = 65M\n\
             partition a {{ partition-type-uuid = L image = \"a.img\" size = 4M \
             partition-uuid = \"{UUID_A}\" }}\n\
             partition root {{ partition-type-uuid = L image = \"a.img\" autoresize = true \
             partition-uuid = \"{UUID_ROOT}\" }}\n}}\n"
        );
        let theirs = genimage(&dir.path().join("g"), &cfg, &[("a.img", &a)], &[]);
        let text = board(
            &format!(
                "table = \"gpt\"\nsize = \"65M\"\nguid = \"{UUID_DISK}\"\nalignment = \"{align}\""
            ),
            &raw_and_root("", "").replace("size = \"8M\"", "size = \"rest\""),
        );
        let image = build(&dir.path().join("m"), &text, &[("a.img", &a)]);
        assert_eq!(sfdisk_lines(&image), sfdisk_lines(&theirs), "align {align}");
    }
}

/// genimage's tests/hdimage-forced-primary.config: extended partition in
/// slot 2, five logical partitions, two forced primaries after them.
/// genimage 16 has no `forced-primary`; the expected table is genimage's
/// own test oracle, tests/hdimage-forced-primary.fdisk.
#[test]
fn forced_primary_as_genimage_documents_it() {
    if !have_tools(&["sfdisk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let part = |name: &str, ty: &str, extra: &str| {
        format!("[[partition]]\nname = \"{name}\"\ntype = \"{ty}\"\nsize = \"1M\"\n{extra}\n")
    };
    let mut parts = part("part1", "0x0c", "flags = [\"legacy-bios-bootable\"]");
    for n in 5..=9 {
        parts += &part(&format!("part{n}"), "0x83", "");
    }
    parts += &part(
        "part3",
        "0x83",
        "forced_primary = true\nfilesystem = \"ext4\"\nmount = \"/\"",
    );
    parts += &part("part4", "0x82", "forced_primary = true");
    let text = board(
        "table = \"mbr\"\nsize = \"16M\"\nmbr_signature = \"0x12345678\"\nextended_partition = 2",
        &parts,
    );
    let image = build(dir.path(), &text, &[]);
    assert_eq!(
        sfdisk_lines(&image),
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

/// genimage's hdimage-fail8 … fail11: the forced_primary refusals.
#[test]
fn forced_primary_refusals() {
    let refused = |disk_extra: &str, parts: &[(&str, bool)]| {
        let dir = tempfile::tempdir().unwrap();
        let text = parts
            .iter()
            .map(|(name, forced)| {
                format!(
                    "[[partition]]\nname = \"{name}\"\ntype = \"0x83\"\nsize = \"1M\"\n{}\n",
                    if *forced { "forced_primary = true" } else { "" }
                )
            })
            .collect::<String>();
        let text = board(
            &format!("table = \"mbr\"\nsize = \"16M\"\n{disk_extra}"),
            &text,
        );
        fs::write(dir.path().join("board.toml"), text).unwrap();
        let out = mkimg(&[
            "plan",
            "--board",
            dir.path().join("board.toml").to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "planned:\n{}", stdout(&out));
        stderr(&out)
    };
    // fail8: before the extended partition it is primary anyway.
    let err = refused(
        "extended_partition = 1",
        &[
            ("p1", true),
            ("p2", false),
            ("p3", false),
            ("p4", false),
            ("p5", false),
        ],
    );
    assert!(
        err.contains("partition 'p1': forced_primary before any logical partition"),
        "{err}"
    );
    // fail9: automatic extended in slot 4, a forced primary needs slot 5.
    let err = refused(
        "",
        &[
            ("p1", false),
            ("p2", false),
            ("p3", false),
            ("p4", false),
            ("p5", true),
        ],
    );
    assert!(err.contains("forced_primary needs MBR slot 5"), "{err}");
    // fail10: extended in slot 3, the second forced primary is the 5th.
    let err = refused(
        "extended_partition = 3",
        &[
            ("p1", false),
            ("p2", false),
            ("e1", false),
            ("e2", false),
            ("p3", true),
            ("p4", true),
        ],
    );
    assert!(
        err.contains("partition 'p4': forced_primary needs MBR slot 5"),
        "{err}"
    );
    // fail11: a logical partition after a forced primary.
    let err = refused(
        "extended_partition = 1",
        &[("e1", false), ("e2", false), ("p2", true), ("e3", false)],
    );
    // holes on a partition with a table entry: refused.
    let dir = tempfile::tempdir().unwrap();
    let text = board(
        "table = \"gpt\"\nsize = \"16M\"",
        "[[partition]]\nname = \"p\"\ntype = \"linux\"\nsize = \"1M\"\n\
         holes = [{ start = \"0\", end = \"512\" }]\n",
    );
    fs::write(dir.path().join("board.toml"), text).unwrap();
    let out = mkimg(&[
        "plan",
        "--board",
        dir.path().join("board.toml").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("board.toml:16:10: partition 'p': holes are for"),
        "{}",
        stderr(&out)
    );
    assert!(
        err.contains("partition 'e3': a logical partition after a forced_primary"),
        "{err}"
    );
}
