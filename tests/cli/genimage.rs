//! `mkimg build --genimage` against genimage 16 as the oracle: a corpus of
//! hdimage layouts (UUIDs and signatures pinned) built by both from the
//! same small input files must give the same `sfdisk -d`, the same `fdisk
//! -l` disk identifier, the same file length — and, as it turns out, the
//! same bytes. Configs both tools refuse, with mkimg naming the genimage
//! `file:line`; configs only mkimg refuses (commands and tool paths,
//! includes from outside the include path, merges genimage does
//! silently). `import-genimage` round trips through `mkimg build --board`,
//! `plan --genimage --json`, and the rule that a build touches nothing
//! else in the output and tmp paths.
//!
//! Partitions here reach their bytes through input files and `file`
//! images; whole configs with vfat/ext/squashfs sub-images are in
//! `genimage_build.rs`, the layout options (`gpt-no-backup`, `holes`,
//! `autoresize`, …) in `genimage_opts.rs`, both on these helpers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::build::Build;
use crate::support::run::{mkimg, mkimg_command, run_tool, stderr, stdout};
use crate::support::tarball::Tarball;
use crate::support::tools::have_tools;

/// A test directory: input files, the config, and each tool's outputs.
pub(crate) struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    pub(crate) fn new(cfg: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input");
        fs::create_dir(&input).unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        // Recognizable, non-zero contents (holes would hide misplaced data).
        let pattern = |len: usize, seed: u8| -> Vec<u8> {
            (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
                .collect()
        };
        fs::write(input.join("a.bin"), pattern(3000, 1)).unwrap();
        fs::write(input.join("b.bin"), pattern(1 << 20, 2)).unwrap();
        fs::write(input.join("c.bin"), pattern(64 << 10, 3)).unwrap();
        fs::write(input.join("d.bin"), pattern(100 << 10, 4)).unwrap();
        fs::write(dir.path().join("g.cfg"), cfg).unwrap();
        Setup { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// genimage 16 into `gen/` (tmp `gen-tmp`), with `env` set.
    pub(crate) fn genimage(&self, env: &[(&str, &str)], extra: &[&str]) -> Output {
        let mut cmd = Command::new("genimage");
        cmd.current_dir(self.dir.path())
            // Relative: genimage 16 looks the config up in --includepath
            // too, and then finds no absolute path.
            .args(["--config", "g.cfg"])
            .args(["--inputpath", &self.s("input")])
            .args(["--rootpath", &self.s("root")])
            .args(["--outputpath", &self.s("gen")])
            .args(["--tmppath", &self.s("gen-tmp")])
            .args(extra)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run genimage")
    }

    /// `mkimg build --genimage` into `mine/` (tmp `mine-tmp`).
    pub(crate) fn mkimg(&self, env: &[(&str, &str)], extra: &[&str]) -> Output {
        self.mkimg_root(&self.s("root"), env, extra)
    }

    /// [`Setup::mkimg`] with `--rootpath root` (a directory or a tarball).
    pub(crate) fn mkimg_root(&self, root: &str, env: &[(&str, &str)], extra: &[&str]) -> Output {
        let cfg = "g.cfg".to_string();
        let (input, root, out, tmp) = (
            self.s("input"),
            root.to_string(),
            self.s("mine"),
            self.s("mine-tmp"),
        );
        let mut args = vec![
            "build",
            "--genimage",
            &cfg,
            "--inputpath",
            &input,
            "--rootpath",
            &root,
            "--outputpath",
            &out,
            "--tmppath",
            &tmp,
        ];
        args.extend_from_slice(extra);
        let mut cmd = mkimg_command(&args);
        cmd.current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run mkimg")
    }
}

/// `sfdisk -d` with the device path cut off every line.
pub(crate) fn sfdisk_dump(image: &Path) -> String {
    let text = run_tool("sfdisk", &["-d", image.to_str().unwrap()]);
    let dev = image.to_str().unwrap();
    text.lines()
        .filter(|l| !l.starts_with("device:"))
        .map(|l| l.replacen(dev, "DISK", 1))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn disk_identifier(image: &Path) -> String {
    let text = run_tool("fdisk", &["-l", image.to_str().unwrap()]);
    text.lines()
        .find(|l| l.starts_with("Disk identifier:"))
        .unwrap_or("no identifier")
        .to_string()
}

/// Build `cfg` with both tools and compare.
pub(crate) fn same_as_genimage(name: &str, cfg: &str, env: &[(&str, &str)], extra: &[&str]) {
    same_as_genimage_except(name, cfg, env, extra, &[]);
}

/// [`same_as_genimage`], the bytes of `skip` left out of the comparison
/// (each use says why).
pub(crate) fn same_as_genimage_except(
    name: &str,
    cfg: &str,
    env: &[(&str, &str)],
    extra: &[&str],
    skip: &[std::ops::Range<usize>],
) {
    if !have_tools(&["genimage", "sfdisk", "fdisk"]) {
        return;
    }
    let t = Setup::new(cfg);
    setup_includes(&t);
    let theirs = t.genimage(env, extra);
    assert!(
        theirs.status.success(),
        "{name}: genimage failed: {}",
        stderr(&theirs)
    );
    let mine = t.mkimg(env, extra);
    assert!(
        mine.status.success(),
        "{name}: mkimg failed: {}",
        stderr(&mine)
    );
    let (g, m) = (t.path("gen/d.img"), t.path("mine/d.img"));
    if !cfg.contains("partition-table-type = none") {
        assert_eq!(
            sfdisk_dump(&m),
            sfdisk_dump(&g),
            "{name}: sfdisk -d, mkimg (left) vs genimage 16"
        );
        assert_eq!(disk_identifier(&m), disk_identifier(&g), "{name}: fdisk -l");
    }
    let (gb, mb) = (fs::read(&g).unwrap(), fs::read(&m).unwrap());
    assert_eq!(
        mb.len(),
        gb.len(),
        "{name}: file length, mkimg (left) vs genimage 16"
    );
    let (gb, mb) = (without_chs(gb), without_chs(mb));
    let skipped = |i: usize| skip.iter().any(|r| r.contains(&i));
    if let Some(at) = (0..gb.len()).find(|&i| gb[i] != mb[i] && !skipped(i)) {
        panic!("{name}: first differing byte at {at:#x}");
    }
}

/// `bytes` with the CHS fields of every MBR and EBR entry zeroed: genimage
/// 16 encodes an EBR entry's relative LBA as CHS, mkimg the absolute one;
/// no reader uses them (sfdisk and fdisk agree above). A table sector is
/// one ending in 55 AA; the input files hold only odd bytes, so no data
/// sector does.
pub(crate) fn without_chs(mut bytes: Vec<u8>) -> Vec<u8> {
    for sector in bytes.chunks_exact_mut(512) {
        if sector[510..] == [0x55, 0xaa] {
            for entry in 0..4 {
                let base = 446 + entry * 16;
                for field in [1, 2, 3, 5, 6, 7] {
                    sector[base + field] = 0;
                }
            }
        }
    }
    bytes
}

/// Files `include("…")` finds in `inc/`.
pub(crate) fn setup_includes(t: &Setup) {
    let inc = t.path("inc");
    fs::create_dir(&inc).unwrap();
    fs::write(
        inc.join("parts.cfg"),
        "partition inc1 { image = \"c.bin\" partition-type = 0x83 }\n\
         partition inc2 { image = \"a.bin\" partition-type = 0x0c }\n",
    )
    .unwrap();
}

pub(crate) const U1: &str = "11111111-2222-4333-8444-555555555555";
pub(crate) const P1: &str = "a1a1a1a1-0000-4000-8000-000000000001";
pub(crate) const P2: &str = "a1a1a1a1-0000-4000-8000-000000000002";
pub(crate) const P3: &str = "a1a1a1a1-0000-4000-8000-000000000003";
pub(crate) const P4: &str = "a1a1a1a1-0000-4000-8000-000000000004";

/// An hdimage config `d.img` with `hd` inside `hdimage { }`, `extra`
/// image options and the partitions.
pub(crate) fn cfg(hd: &str, extra: &str, parts: &str) -> String {
    format!("image d.img {{\n  hdimage {{ {hd} }}\n  {extra}\n{parts}}}\n")
}

/// GPT partition `name` with uuid `uuid` and `body`.
pub(crate) fn gpart(name: &str, uuid: &str, body: &str) -> String {
    format!("  partition {name} {{ partition-uuid = {uuid} {body} }}\n")
}

pub(crate) fn gpt_hd(extra: &str) -> String {
    format!("partition-table-type = gpt disk-uuid = {U1} {extra}")
}

#[test]
fn mbr_layouts_match_genimage() {
    let sig = "disk-signature = 0x12345678";
    let cases: Vec<(&str, String)> = vec![
        (
            "sizes from input files",
            cfg(
                sig,
                "",
                "  partition a { image = \"a.bin\" partition-type = 0x83 }\n  \
                 partition b { image = \"b.bin\" partition-type = 0x0c bootable = true }\n",
            ),
        ),
        (
            "align 1M, bootable",
            cfg(
                &format!("{sig} align = 1M"),
                "",
                "  partition a { image = \"c.bin\" partition-type = 0x0c bootable = true }\n  \
                 partition b { image = \"d.bin\" partition-type = 0x83 }\n  \
                 partition c { size = 2M partition-type = 0x82 }\n",
            ),
        ),
        (
            "explicit offsets and sizes",
            cfg(
                &format!("{sig} align = 4K"),
                "",
                "  partition a { image = \"a.bin\" offset = 64K size = 64K partition-type = 0xda }\n  \
                 partition b { image = \"b.bin\" offset = 1M size = 3M partition-type = 0x83 }\n  \
                 partition c { image = \"c.bin\" partition-type = 0x83 }\n",
            ),
        ),
        (
            "image size, file cut after the last data",
            cfg(
                sig,
                "size = 16M",
                "  partition a { image = \"a.bin\" partition-type = 0x83 size = 4M }\n  \
                 partition b { size = 4M partition-type = 0x83 }\n",
            ),
        ),
        (
            "fill",
            cfg(
                &format!("{sig} fill = true align = 1M"),
                "size = 8M",
                "  partition a { image = \"c.bin\" partition-type = 0x83 }\n",
            ),
        ),
        (
            "automatic extended partition (six partitions)",
            cfg(
                &format!("{sig} align = 1M"),
                "",
                &(1..=6)
                    .map(|i| format!("  partition p{i} {{ image = \"c.bin\" partition-type = 0x83 }}\n"))
                    .collect::<String>(),
            ),
        ),
        (
            "extended-partition = 2, bootable on the second logical partition (dropped)",
            cfg(
                &format!("{sig} align = 1M extended-partition = 2"),
                "size = 32M",
                "  partition p1 { image = \"c.bin\" partition-type = 0x0c }\n  \
                 partition p2 { image = \"b.bin\" partition-type = 0x83 }\n  \
                 partition p3 { image = \"a.bin\" partition-type = 0x83 offset = 20M bootable = true }\n",
            ),
        ),
        (
            "partition align",
            cfg(
                sig,
                "",
                "  partition a { image = \"a.bin\" align = 1M partition-type = 0x83 }\n  \
                 partition b { image = \"a.bin\" align = 4K partition-type = 0x83 }\n",
            ),
        ),
        (
            "deprecated partition-table = true",
            cfg(
                &format!("{sig} partition-table = true"),
                "",
                "  partition a { image = \"d.bin\" partition-type = 0x83 }\n",
            ),
        ),
    ];
    for (name, text) in cases {
        same_as_genimage(name, &text, &[], &[]);
    }
}

#[test]
fn gpt_layouts_match_genimage() {
    let cases: Vec<(&str, String)> = vec![
        (
            "gpt, default type, sizes from inputs",
            cfg(
                &gpt_hd(""),
                "",
                &(gpart("a", P1, "image = \"a.bin\"") + &gpart("b", P2, "image = \"b.bin\"")),
            ),
        ),
        (
            "gpt, align 1M, image size",
            cfg(
                &gpt_hd("align = 1M"),
                "size = 8M",
                &(gpart("a", P1, "image = \"c.bin\"")
                    + &gpart("b", P2, "image = \"b.bin\" size = 2M")),
            ),
        ),
        (
            "gpt, type shortcuts",
            cfg(
                &gpt_hd(""),
                "",
                &(gpart("esp", P1, "image = \"c.bin\" partition-type-uuid = U")
                    + &gpart("swap", P2, "image = \"a.bin\" partition-type-uuid = S")
                    + &gpart("home", P3, "image = \"a.bin\" partition-type-uuid = H")
                    + &gpart("data", P4, "image = \"a.bin\" partition-type-uuid = F")
                    + "  partition raid { partition-uuid = a1a1a1a1-0000-4000-8000-000000000005 \
                       image = \"a.bin\" partition-type-uuid = R }\n  \
                       partition lvm { partition-uuid = a1a1a1a1-0000-4000-8000-000000000006 \
                       image = \"a.bin\" partition-type-uuid = V }\n"),
            ),
        ),
        (
            "gpt, type GUIDs",
            cfg(
                &gpt_hd(""),
                "",
                &(gpart(
                    "bios",
                    P1,
                    "image = \"a.bin\" partition-type-uuid = 21686148-6449-6e6f-744e-656564454649",
                ) + &gpart(
                    "root",
                    P2,
                    "image = \"c.bin\" partition-type-uuid = 72ec70a6-cf74-40e6-bd49-4bda08e8f224",
                )),
            ),
        ),
        (
            "gpt, bootable, read-only, no-automount",
            cfg(
                &gpt_hd(""),
                "",
                &(gpart("a", P1, "image = \"a.bin\" bootable = true")
                    + &gpart("b", P2, "image = \"a.bin\" read-only = true")
                    + &gpart(
                        "c",
                        P3,
                        "image = \"a.bin\" no-automount = true read-only = true",
                    )),
            ),
        ),
        (
            "gpt-location",
            cfg(
                &gpt_hd("gpt-location = 1M"),
                "",
                &(gpart("a", P1, "image = \"c.bin\"") + &gpart("b", P2, "image = \"a.bin\"")),
            ),
        ),
        (
            "gpt, explicit offsets",
            cfg(
                &gpt_hd("align = 4K"),
                "size = 6M",
                &(gpart("a", P1, "image = \"c.bin\" offset = 1M")
                    + &gpart("b", P2, "image = \"b.bin\" offset = 3M size = 2M")),
            ),
        ),
        (
            "deprecated gpt = true",
            format!(
                "image d.img {{\n  hdimage {{ gpt = true disk-uuid = {U1} }}\n{}}}\n",
                gpart("a", P1, "image = \"d.bin\"")
            ),
        ),
    ];
    for (name, text) in cases {
        same_as_genimage(name, &text, &[], &[]);
    }
}

#[test]
fn hybrid_none_images_env_include_match_genimage() {
    let hybrid = cfg(
        &format!("partition-table-type = hybrid disk-uuid = {U1} disk-signature = 0x0badcafe"),
        "",
        &(gpart(
            "esp",
            P1,
            "image = \"c.bin\" partition-type-uuid = U partition-type = 0xef bootable = true",
        ) + &gpart(
            "data",
            P2,
            "image = \"b.bin\" partition-type-uuid = F partition-type = 0x0c",
        ) + &gpart("root", P3, "image = \"d.bin\"")),
    );
    same_as_genimage("hybrid", &hybrid, &[], &[]);

    let none = cfg(
        "partition-table-type = none",
        "",
        "  partition a { image = \"c.bin\" }\n  partition b { image = \"b.bin\" offset = 1M }\n",
    );
    same_as_genimage("partition-table-type = none", &none, &[], &[]);

    // Sizes from other image sections: `file` images, one with `name`.
    let sections = "image first.img { file { } }\n\
                    image second.img { file { name = \"d.bin\" } }\n"
        .to_string()
        + &cfg(
            "disk-signature = 0x01020304",
            "",
            "  partition a { image = \"first.img\" partition-type = 0x83 }\n  \
             partition b { image = \"second.img\" partition-type = 0x83 }\n",
        );
    same_as_genimage_with_first(&sections);

    let env = cfg(
        "disk-signature = ${SIG}",
        "",
        "  partition a { image = \"${IMG}\" size = ${SIZE} partition-type = 0x83 }\n  \
         partition b { image = \"a.bin\" partition-type = \"${TYPE:-0x0c}\" }\n",
    );
    same_as_genimage(
        "${VAR} from the environment",
        &env,
        &[("SIG", "0x0a0b0c0d"), ("IMG", "c.bin"), ("SIZE", "1M")],
        &[],
    );

    let include = cfg(
        "disk-signature = 0x0f0e0d0c align = 4K",
        "",
        "  partition a { image = \"a.bin\" partition-type = 0x83 }\n  include(\"parts.cfg\")\n",
    );
    same_as_genimage(
        "include with --includepath",
        &include,
        &[],
        &["--includepath", "inc"],
    );
}

/// The `file` image sections case needs `input/first.img`.
fn same_as_genimage_with_first(cfg: &str) {
    if !have_tools(&["genimage", "sfdisk", "fdisk"]) {
        return;
    }
    let t = Setup::new(cfg);
    fs::copy(t.path("input/c.bin"), t.path("input/first.img")).unwrap();
    let theirs = t.genimage(&[], &[]);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let mine = t.mkimg(&[], &[]);
    assert!(mine.status.success(), "{}", stderr(&mine));
    let (g, m) = (t.path("gen/d.img"), t.path("mine/d.img"));
    assert_eq!(sfdisk_dump(&m), sfdisk_dump(&g));
    assert_eq!(fs::read(&m).unwrap(), fs::read(&g).unwrap());
}

/// Both tools refuse `cfg`; mkimg's message holds every one of `want`
/// (the `g.cfg:LINE` and the reason).
pub(crate) fn both_refuse(name: &str, cfg: &str, want: &[&str]) {
    let t = Setup::new(cfg);
    if have_tools(&["genimage"]) {
        let theirs = t.genimage(&[], &[]);
        assert!(
            !theirs.status.success(),
            "{name}: genimage 16 accepted it:\n{cfg}"
        );
    }
    let mine = t.mkimg(&[], &[]);
    assert!(!mine.status.success(), "{name}: mkimg accepted it:\n{cfg}");
    let err = stderr(&mine);
    for w in want {
        assert!(err.contains(w), "{name}: {w:?} not in:\n{err}");
    }
    assert!(
        !t.path("mine/d.img").exists(),
        "{name}: an image was written"
    );
}

#[test]
fn configs_both_tools_refuse() {
    let mbr = |parts: &str| cfg("", "", parts);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "overlap",
            mbr("  partition a { image = \"a.bin\" offset = 1M size = 2M partition-type = 0x83 }\n  \
                 partition b { image = \"a.bin\" offset = 2M size = 1M partition-type = 0x83 }\n"),
            vec!["g.cfg:5: partition 1 'a' and partition 2 'b' overlap", "disk map:"],
        ),
        (
            "past the image size",
            cfg("", "size = 2M", "  partition a { image = \"a.bin\" offset = 1M size = 2M partition-type = 0x83 }\n"),
            vec!["g.cfg:4: partition 1 'a' ends at 0x300000, past the end"],
        ),
        (
            "offset not aligned",
            cfg("align = 1M", "", "  partition a { image = \"a.bin\" offset = 1536K size = 1M partition-type = 0x83 }\n"),
            vec!["g.cfg:4: partition 1 'a': offset 0x180000 is not aligned to 1M"],
        ),
        (
            "a partition over the GPT entry array",
            cfg(&gpt_hd(""), "", &gpart("a", P1, "image = \"a.bin\" offset = 8K size = 1M")),
            vec!["g.cfg:4: ", "primary GPT entries and partition 1 'a' overlap"],
        ),
        (
            "hybrid without a partition-type",
            cfg("partition-table-type = hybrid", "", "  partition a { image = \"a.bin\" }\n"),
            vec!["g.cfg:2: partition-table-type = hybrid but no partition has a partition-type"],
        ),
        (
            "hybrid with four MBR partitions",
            cfg(
                "partition-table-type = hybrid",
                "",
                &(1..=4)
                    .map(|i| format!("  partition p{i} {{ image = \"a.bin\" partition-type = 0x83 }}\n"))
                    .collect::<String>(),
            ),
            vec!["g.cfg:7: 4 partitions with a partition-type: a hybrid MBR holds at most 3"],
        ),
        (
            "size not a multiple of the sector",
            mbr("  partition a { image = \"a.bin\" size = 3000 partition-type = 0x83 }\n"),
            vec!["g.cfg:4: partition 1 'a': start 0x200 / size 3000 are not multiples"],
        ),
        (
            "missing input file",
            mbr("  partition a { image = \"nope.bin\" partition-type = 0x83 }\n"),
            vec!["g.cfg:4: partition 'a': input file 'nope.bin': not found in the input path"],
        ),
        (
            "image larger than its partition",
            mbr("  partition a { image = \"b.bin\" size = 512K partition-type = 0x83 }\n"),
            vec!["g.cfg:4: partition 'a': size 524288 is too small for 'b.bin' (1048576 bytes)"],
        ),
        (
            "size zero",
            mbr("  partition a { size = 0 partition-type = 0x83 }\n"),
            vec!["g.cfg:4: partition 1 'a': size is zero"],
        ),
        (
            "partition-type in a GPT",
            cfg(&gpt_hd(""), "", &gpart("a", P1, "image = \"a.bin\" partition-type = 0x83")),
            vec!["g.cfg:4: partition 'a': 'partition-type' is only valid for mbr and hybrid"],
        ),
        (
            "partition-type-uuid in an MBR",
            mbr("  partition a { image = \"a.bin\" partition-type = 0x83 partition-type-uuid = L }\n"),
            vec!["g.cfg:4: partition 'a': 'partition-type-uuid' is only valid for gpt and hybrid"],
        ),
        (
            "unknown option",
            mbr("  partition a { image = \"a.bin\" partition-type = 0x83 sise = 1M }\n"),
            vec!["g.cfg:4: no such option 'sise' in partition 'a'"],
        ),
        (
            "extended-partition = 5",
            cfg("extended-partition = 5", "", "  partition a { image = \"a.bin\" partition-type = 0x83 }\n"),
            vec!["g.cfg:2: extended-partition: 5: 1 to 4, or 0 for automatic"],
        ),
        (
            "exec-pre (genimage runs `false` and fails; mkimg runs nothing)",
            cfg("", "exec-pre = \"false\"", "  partition a { image = \"a.bin\" partition-type = 0x83 }\n"),
            vec!["g.cfg:3: exec-pre is refused"],
        ),
    ];
    for (name, text, want) in &cases {
        both_refuse(name, text, want);
    }
}

/// What only mkimg refuses: genimage would run a command, merge two
/// sections, or read outside the include path.
#[test]
fn configs_only_mkimg_refuses() {
    for (name, text, want) in [
        (
            "a tool path",
            "config { mke2fs = \"/tmp/evil\" }\n".to_string()
                + &cfg(
                    "",
                    "",
                    "  partition a { image = \"a.bin\" partition-type = 0x83 }\n",
                ),
            "g.cfg:1: config { mke2fs = … } is refused",
        ),
        (
            "the same partition twice",
            cfg(
                "",
                "",
                "  partition a { image = \"a.bin\" partition-type = 0x83 }\n  \
                 partition a { image = \"a.bin\" partition-type = 0x83 }\n",
            ),
            "g.cfg:5: image 'd.img': partition 'a' is defined again",
        ),
        (
            "an include from outside the include path",
            cfg("", "", "  include(\"../outside.cfg\")\n"),
            "g.cfg:4: include(\"../outside.cfg\"): '..' is refused",
        ),
        (
            "a hybrid MBR whose 0xEE entry genimage writes over the GPT only",
            cfg(
                "partition-table-type = hybrid align = 1M",
                "",
                "  partition a { image = \"a.bin\" partition-type = 0x0c partition-type-uuid = F }\n",
            ),
            "g.cfg:2: hybrid: genimage's 0xEE entry covers the GPT",
        ),
        (
            "MBR partition without partition-type (genimage writes type 0)",
            cfg("", "", "  partition a {\n image = \"a.bin\" }\n"),
            "g.cfg:4: partition 'a' has no partition-type",
        ),
    ] {
        let t = Setup::new(&text);
        let out = t.mkimg(&[], &[]);
        assert!(!out.status.success(), "{name}: accepted");
        let err = stderr(&out);
        assert!(err.contains(want), "{name}: {want:?} not in:\n{err}");
    }
}

/// `import-genimage` prints a board.toml that `mkimg build --board`
/// turns into the same table as genimage's (partitions and disk
/// identity; a board keeps the GPT's first usable LBA after the array).
#[test]
fn import_genimage_round_trips_through_a_board_build() {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let cases = [
        cfg(
            "disk-signature = 0x12345678 align = 1M",
            "",
            "  partition a { image = \"c.bin\" partition-type = 0x0c bootable = true }\n  \
             partition b { image = \"b.bin\" partition-type = 0x83 size = 8M }\n",
        ),
        cfg(
            &gpt_hd("align = 1M"),
            "size = 16M",
            &(gpart("a", P1, "image = \"c.bin\" partition-type-uuid = U")
                + &gpart("b", P2, "image = \"b.bin\" read-only = true size = 8M")),
        ),
        cfg(
            "disk-signature = 0x0000abcd align = 1M",
            "",
            &((1..=5)
                .map(|i| {
                    format!("  partition p{i} {{ image = \"c.bin\" partition-type = 0x83 }}\n")
                })
                .collect::<String>()
                + "  partition p6 { image = \"c.bin\" partition-type = 0x83 size = 8M }\n"),
        ),
    ];
    for text in cases {
        let t = Setup::new(&text);
        let theirs = t.genimage(&[], &[]);
        assert!(theirs.status.success(), "{}", stderr(&theirs));
        let out = mkimg(&[
            "import-genimage",
            &t.s("g.cfg"),
            "--inputpath",
            &t.s("input"),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        // The user names the root partition (a board build makes the
        // root filesystem from the rootfs): the last one, a raw image so far.
        let printed = stdout(&out);
        let (head, last) = printed.rsplit_once("[[partition]]").unwrap();
        let last: String = last
            .lines()
            .filter(|l| !l.starts_with("filesystem") && !l.starts_with("source"))
            .map(|l| format!("{l}\n"))
            .collect();
        let board = t.path("board.toml");
        fs::write(
            &board,
            format!("{head}[[partition]]{last}filesystem = \"ext4\"\nmount = \"/\"\n"),
        )
        .unwrap();
        let rootfs = t.path("rootfs.tar");
        fs::write(&rootfs, Tarball::minimal_riscv64().finish()).unwrap();
        let built = Build::new(&board, &rootfs, t.path("board-out"))
            .format("raw")
            .output();
        assert!(
            built.status.success(),
            "{}\n{}",
            stderr(&built),
            stdout(&out)
        );
        let keep = |image: &Path| -> Vec<String> {
            sfdisk_dump(image)
                .lines()
                // A board build writes the whole disk (sfdisk's grain
                // follows the file's length) and keeps the first usable
                // LBA after the GPT entry array.
                .filter(|l| !l.starts_with("first-lba") && !l.starts_with("grain"))
                .map(String::from)
                .collect()
        };
        assert_eq!(
            keep(&t.path("board-out/d.img.raw")),
            keep(&t.path("gen/d.img")),
            "board build (left) vs genimage 16, from:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn plan_genimage_json_lists_every_image() {
    let text = "image first.img { file { } }\n".to_string()
        + &cfg(
            &gpt_hd(""),
            "",
            &(gpart("a", P1, "image = \"first.img\"") + &gpart("b", P2, "image = \"a.bin\"")),
        );
    let t = Setup::new(&text);
    fs::copy(t.path("input/c.bin"), t.path("input/first.img")).unwrap();
    let out = mkimg(&[
        "plan",
        "--genimage",
        &t.s("g.cfg"),
        "--inputpath",
        &t.s("input"),
        "--outputpath",
        &t.s("out"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["image"], "first.img");
    assert_eq!(images[0]["type"], "file");
    assert_eq!(images[1]["image"], "d.img");
    assert_eq!(images[1]["type"], "hdimage");
    assert!(images[1]["at"].as_str().unwrap().ends_with("g.cfg:2"));
    assert_eq!(images[1]["file"], t.s("out/d.img"));
    let layout = &images[1]["plan"]["layout"];
    assert_eq!(layout["table"], "gpt");
    assert_eq!(layout["gpt"]["disk_guid"], U1);
    assert_eq!(layout["gpt"]["first_usable_lba"], 34);
    assert_eq!(layout["partitions"][0]["start"], 34 * 512);
    assert_eq!(layout["partitions"][0]["size"], 64 << 10);
    assert_eq!(layout["partitions"][1]["uuid"], P2);
    // 34 + 128 + 6 sectors of partitions, the backup GPT, rounded to 4K.
    assert_eq!(layout["disk_size"], 203 * 512 / 4096 * 4096 + 4096);
    assert_eq!(images[1]["file_len"], layout["disk_size"]);
    let text = stdout(&mkimg(&[
        "plan",
        "--genimage",
        &t.s("g.cfg"),
        "--inputpath",
        &t.s("input"),
    ]));
    assert!(
        text.contains("image first.img: image 'first.img'"),
        "{text}"
    );
    assert!(text.contains("partition 1 'a'"), "{text}");
}

/// Files of the output and tmp paths that are not the config's images
/// are left as they were, and no temporary file stays behind.
#[test]
fn build_touches_nothing_else_in_the_output_and_tmp_paths() {
    let text = cfg(
        "disk-signature = 0x01020304",
        "",
        "  partition a { image = \"a.bin\" partition-type = 0x83 }\n",
    );
    let t = Setup::new(&text);
    for dir in ["mine", "mine-tmp"] {
        fs::create_dir(t.path(dir)).unwrap();
        fs::write(t.path(&format!("{dir}/keep.txt")), "mine").unwrap();
        fs::create_dir(t.path(&format!("{dir}/sub"))).unwrap();
        fs::write(t.path(&format!("{dir}/sub/x")), "x").unwrap();
    }
    std::os::unix::fs::symlink("/etc/hostname", t.path("mine/link")).unwrap();
    fs::write(t.path("mine/d.img"), "old image").unwrap();
    let out = t.mkimg(&[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(t.path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing("mine"), ["d.img", "keep.txt", "link", "sub"]);
    assert_eq!(listing("mine-tmp"), ["keep.txt", "sub"]);
    for dir in ["mine", "mine-tmp"] {
        assert_eq!(
            fs::read_to_string(t.path(&format!("{dir}/keep.txt"))).unwrap(),
            "mine"
        );
        assert_eq!(
            fs::read_to_string(t.path(&format!("{dir}/sub/x"))).unwrap(),
            "x"
        );
    }
    assert_eq!(
        fs::read_link(t.path("mine/link")).unwrap(),
        Path::new("/etc/hostname")
    );
    assert_eq!(
        fs::metadata(t.path("mine/d.img")).unwrap().len(),
        512 + 3000
    );
    // A failed build leaves the old image and no temporary file.
    fs::write(t.path("g.cfg"), text.replace("a.bin", "nope.bin")).unwrap();
    fs::write(t.path("mine/d.img"), "old image").unwrap();
    assert!(!t.mkimg(&[], &[]).status.success());
    assert_eq!(listing("mine"), ["d.img", "keep.txt", "link", "sub"]);
    assert_eq!(
        fs::read_to_string(t.path("mine/d.img")).unwrap(),
        "old image"
    );
    // Same inputs, same bytes.
    fs::write(t.path("g.cfg"), &text).unwrap();
    assert!(t.mkimg(&[], &[]).status.success());
    let first = fs::read(t.path("mine/d.img")).unwrap();
    assert!(t.mkimg(&[], &[]).status.success());
    assert_eq!(fs::read(t.path("mine/d.img")).unwrap(), first);
}

/// `boards/<board>/genimage.cfg` describes the same layout as the board:
/// genimage 16's `sfdisk -d` of it equals `mkimg build --board`'s (no boot
/// loader, a minimal rootfs, stand-in blobs) and `mkimg build --genimage`'s
/// (the boot loaders are `in-partition-table = false` partitions, nezha's
/// root is `autoresize`), whose boot loader bytes are genimage's too.
fn board_matches_its_genimage_cfg(board: &str, elf: &str, blobs: &[(&str, &str, Vec<u8>)]) {
    if !have_tools(&["genimage", "sfdisk"]) {
        return;
    }
    let t = Setup::new("");
    let mut blob_args = Vec::new();
    for (blob, file, bytes) in blobs {
        fs::write(t.path(&format!("input/{file}")), bytes).unwrap();
        blob_args.push(format!("{blob}={}", t.s(&format!("input/{file}"))));
    }
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("boards/{board}/genimage.cfg"));
    fs::copy(&cfg, t.path("g.cfg")).unwrap();
    let theirs = t.genimage(&[], &[]);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let rootfs = t.path("rootfs.tar");
    fs::write(&rootfs, Tarball::minimal(elf).finish()).unwrap();
    let blob_args: Vec<&str> = blob_args
        .iter()
        .flat_map(|b| ["--blob", b.as_str()])
        .collect();
    Build::new(board, &rootfs, t.path("board-out"))
        .bootloader("none")
        .format("raw")
        .args(&blob_args)
        .run();
    let theirs = t.path(&format!("gen/{board}.img"));
    assert_eq!(
        sfdisk_dump(&t.path(&format!("board-out/{board}.raw"))),
        sfdisk_dump(&theirs),
        "mkimg build --board {board} (left) vs genimage 16 on boards/{board}/genimage.cfg"
    );
    let mine = t.mkimg(&[], &[]);
    assert!(mine.status.success(), "{}", stderr(&mine));
    let mine = t.path(&format!("mine/{board}.img"));
    assert_eq!(
        sfdisk_dump(&mine),
        sfdisk_dump(&theirs),
        "mkimg build --genimage (left) vs genimage 16 on boards/{board}/genimage.cfg"
    );
    assert_eq!(disk_identifier(&mine), disk_identifier(&theirs));
    assert_eq!(
        fs::metadata(&mine).unwrap().len(),
        fs::metadata(&theirs).unwrap().len()
    );
    // The boot loaders, where genimage puts them.
    let (m, g) = (
        fs::File::open(&mine).unwrap(),
        fs::File::open(&theirs).unwrap(),
    );
    for (_, file, bytes) in blobs {
        let at = blob_offset(board, file);
        let read = |f: &fs::File| {
            let mut buf = vec![0u8; bytes.len()];
            std::os::unix::fs::FileExt::read_exact_at(f, &mut buf, at).unwrap();
            buf
        };
        assert!(read(&g) == *bytes, "{board}: genimage's {file} at {at:#x}");
        assert!(read(&m) == *bytes, "{board}: mkimg's {file} at {at:#x}");
    }
}

/// Where `boards/<board>/genimage.cfg` puts the boot loader `file`.
fn blob_offset(board: &str, file: &str) -> u64 {
    match (board, file) {
        ("rock3a", "idbloader.img") => 32 << 10,
        ("rock3a", "u-boot.itb") => 8 << 20,
        ("nezha", "boot0_sdcard.fex") => 8 << 10,
        ("nezha", "boot_package.fex") => 16400 << 10,
        // The environment's partitions are in the table: checked above.
        ("nezha", "env.fex") => (36 << 20) + (4032 << 10),
        _ => panic!("{board}: {file}?"),
    }
}

fn stand_in(len: usize, seed: u8, magic: &[u8], at: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 1)
        .collect();
    data[at..at + magic.len()].copy_from_slice(magic);
    data
}

#[test]
fn rock3a_genimage_cfg_has_the_boards_tables() {
    board_matches_its_genimage_cfg(
        "rock3a",
        "dash-arm64.elfhdr",
        &[
            (
                "idbloader",
                "idbloader.img",
                stand_in(304_912, 1, b"RKNS", 0),
            ),
            (
                "u-boot",
                "u-boot.itb",
                stand_in(1_466_928, 2, &[0xd0, 0x0d, 0xfe, 0xed], 0),
            ),
        ],
    );
}

#[test]
fn nezha_genimage_cfg_has_the_boards_tables() {
    let mut env = b"\0\0\0\0bootcmd=run distro_bootcmd\0\0".to_vec();
    env.resize(252 * 1024, 0);
    board_matches_its_genimage_cfg(
        "nezha",
        "dash-riscv64.elfhdr",
        &[
            (
                "boot0",
                "boot0_sdcard.fex",
                stand_in(65_536, 3, b"eGON.BT0", 4),
            ),
            (
                "boot-package",
                "boot_package.fex",
                stand_in(4_300_800, 4, b"sunxi-package", 0),
            ),
            ("env", "env.fex", env.clone()),
            ("env-redund", "env.fex", env),
        ],
    );
}
