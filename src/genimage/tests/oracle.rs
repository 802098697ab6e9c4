//! genimage 16 as the oracle: every positive config is built by the real
//! tool (in a temp dir, with small input files) and must succeed; each
//! malformed config must fail in both genimage and mkimg. Skipped (or
//! failed under MKIMG_REQUIRE_TOOLS) when genimage is not installed.

use std::path::Path;
use std::process::Command;

use super::configs::{CASES, INC_BOOT, INC_PART};
use super::opts;
use crate::genimage::load_config_str;
use crate::test_tools::find_tool;

/// A work dir laid out as genimage expects, with every input file the
/// positive configs name.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for sub in ["root/etc", "input", "images", "tmp", "inc/common"] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    let write = |p: &str, data: &[u8]| std::fs::write(d.join(p), data).expect("write");
    write("root/etc/hostname", b"board\n");
    write("input/a.txt", b"a\n");
    write("input/zImage", &[0x5a; 3000]);
    write("input/board.dtb", &[0xd0; 700]);
    write("input/extlinux.conf", b"label linux\n");
    write("input/u-boot.bin", &[0xb0; 4096]);
    write("input/bootloader.img", &[0; 96 * 1024]);
    write("inc/common/boot.cfg", INC_BOOT.as_bytes());
    write("inc/part-boot.cfg", INC_PART.as_bytes());
    // e2fsprogs' own defaults, as a file the config names.
    let conf = std::fs::read("/etc/mke2fs.conf").unwrap_or_else(|_| {
        b"[fs_types]\n\text4 = {\n\t\tfeatures = has_journal,extent\n\t}\n\tsmall = {\n\t\tinode_ratio = 4096\n\t}\n".to_vec()
    });
    write("mke2fs.conf", &conf);
    write("input/mke2fs.conf", &conf);
    dir
}

/// Runs genimage on `text` in `dir`; Ok(()) or Err(its output).
fn run_genimage(tool: &Path, dir: &Path, text: &str, env: &[(&str, &str)]) -> Result<(), String> {
    std::fs::write(dir.join("t.cfg"), text).expect("write config");
    let _ = std::fs::remove_dir_all(dir.join("tmp"));
    std::fs::create_dir_all(dir.join("tmp")).expect("mkdir tmp");
    let mut cmd = Command::new(tool);
    cmd.current_dir(dir)
        .args([
            "--config",
            "t.cfg",
            "--rootpath",
            "root",
            "--inputpath",
            "input",
        ])
        .args([
            "--outputpath",
            "images",
            "--tmppath",
            "tmp",
            "--includepath",
            "inc",
        ])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running genimage");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn genimage_builds_every_positive_config() {
    let Some(tool) = find_tool("genimage") else {
        return;
    };
    for (name, text, env) in CASES {
        let dir = workdir();
        let mut o = opts(env);
        o.include_dirs = vec![dir.path().join("inc"), dir.path().to_path_buf()];
        if let Err(e) = load_config_str(text, "t.cfg", &o) {
            panic!("{name}: mkimg refuses what it should accept: {e}");
        }
        if let Err(out) = run_genimage(&tool, dir.path(), text, env) {
            panic!("{name}: genimage 16 rejects it:\n{out}");
        }
    }
}

/// Syntax errors both tools must reject (each checked against genimage 16).
const MALFORMED: [(&str, &str); 8] = [
    ("comma between options", "image x.img { hdimage { align = 512, fill = true } partition p { image = \"u-boot.bin\" } }"),
    ("unknown option", "image x.img { hdimage {} foo = 1 partition p { image = \"u-boot.bin\" } }"),
    ("unterminated string", "image x.vfat { vfat { files = { \"a.txt } } size = 2M }"),
    ("no equal sign", "image x.vfat { vfat { files { \"a.txt\" } } size = 2M }"),
    ("image without title", "image { vfat { } size = 2M }"),
    ("+= on a scalar", "image x.vfat { vfat { label = \"A\" label += \"B\" files = {\"a.txt\"} } size = 2M }"),
    ("bad boolean 1", "image x.img { hdimage { fill = 1 } partition p { image = \"u-boot.bin\" } }"),
    ("unknown function", "foo(\"x\") image x.vfat { vfat { files = {\"a.txt\"} } size = 2M }"),
];

#[test]
fn genimage_and_mkimg_reject_malformed_configs() {
    let Some(tool) = find_tool("genimage") else {
        return;
    };
    for (what, text) in MALFORMED {
        let dir = workdir();
        assert!(
            load_config_str(text, "t.cfg", &opts(&[])).is_err(),
            "{what}: mkimg accepts it"
        );
        assert!(
            run_genimage(&tool, dir.path(), text, &[]).is_err(),
            "{what}: genimage 16 accepts it, so the case is wrong"
        );
    }
}
