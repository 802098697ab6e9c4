//! Every refusal, with its message and file:line.

use std::path::PathBuf;

use super::{opts, refuse};
use crate::genimage::{load_config, ParseOptions};

fn assert_refused(text: &str, place: &str, words: &[&str]) {
    let e = refuse(text);
    assert_eq!(e.place, place, "{e}");
    for w in words {
        assert!(e.message.contains(w), "{e}: lacks {w:?}");
    }
}

#[test]
fn exec_pre_and_post() {
    assert_refused(
        "image a.vfat {\n vfat {}\n exec-pre = \"rm -rf /\"\n}",
        "t.cfg:3",
        &["exec-pre is refused", "never runs a command"],
    );
    assert_refused(
        "image a.vfat {\n vfat {}\n\n exec-post = \"true\"\n}",
        "t.cfg:4",
        &["exec-post is refused", "root"],
    );
}

#[test]
fn tool_paths_and_configdump() {
    for tool in ["mke2fs", "genext2fs", "mkdosfs", "tune2fs", "qemu-img"] {
        assert_refused(
            &format!("config {{\n {tool} = \"/tmp/evil\"\n}}"),
            "t.cfg:2",
            &[tool, "never runs a tool named by an input file"],
        );
    }
    assert_refused(
        "config { configdump = \"/etc/x\" }",
        "t.cfg:1",
        &["configdump"],
    );
}

#[test]
fn unknown_options_types_and_sections() {
    assert_refused(
        "image a.img {\n hdimage {\n  bogus = 1\n }\n}",
        "t.cfg:3",
        &["no such option 'bogus'"],
    );
    assert_refused(
        "image a {\n  cramfs {}\n}",
        "t.cfg:2",
        &["'cramfs' is not supported by mkimg"],
    );
    assert_refused(
        "image a {\n  ubi {}\n}",
        "t.cfg:2",
        &["'ubi' is not supported"],
    );
    assert_refused(
        "flash nand { pebsize = 1 }",
        "t.cfg:1",
        &["flash", "not supported"],
    );
    assert_refused(
        "image a { vfat {} flashtype = \"x\" }",
        "t.cfg:1",
        &["flashtype"],
    );
    assert_refused("image a { size = 1M }", "t.cfg:1", &["no image type"]);
    assert_refused(
        "image a { vfat {} ext4 {} }",
        "t.cfg:1",
        &["multiple image types"],
    );
    assert_refused(
        "image a { vfat {} partition p {} }",
        "t.cfg:1",
        &["partitions belong in an hdimage"],
    );
    assert_refused(
        "image a { hdimage {} partition p { fill = true } }",
        "t.cfg:1",
        &["no such option 'fill'"],
    );
}

#[test]
fn duplicates_and_conflicts() {
    assert_refused(
        "image a { vfat {} }\nimage a { vfat {} }",
        "t.cfg:2",
        &["defined again (first at t.cfg:1)"],
    );
    assert_refused(
        "image a { hdimage {}\n partition p {}\n partition p {} }",
        "t.cfg:3",
        &["partition 'p' is defined again"],
    );
    assert_refused(
        "image a { hdimage { partition-table-type = mbr\n gpt = true } }",
        "t.cfg:2",
        &["keep only partition-table-type"],
    );
}

#[test]
fn bad_values() {
    let cases: [(&str, &str); 14] = [
        ("image a { hdimage { fill = 1 } }", "invalid boolean"),
        (
            "image a { hdimage { partition-table-type = GPT } }",
            "not a valid partition-table-type",
        ),
        ("image a { hdimage { extended-partition = 5 } }", "1 to 4"),
        (
            "image a { hdimage { disk-signature = abc } }",
            "32-bit number",
        ),
        ("image a { hdimage { disk-uuid = abc } }", "invalid UUID"),
        (
            "image a { hdimage {} partition p { partition-type = 300 } }",
            "0 to 0xff",
        ),
        (
            "image a { hdimage {} partition p { partition-type-uuid = u } }",
            "shortcut 'u'",
        ),
        (
            "image a { hdimage {} partition p { size = 1MB } }",
            "not a number",
        ),
        (
            "image a { hdimage {} partition p { size = \"-1M\" } }",
            "not a number",
        ),
        (
            "image a { hdimage {} partition p { offset = 010 } }",
            "leading zero",
        ),
        (
            "image a { hdimage {} partition p { holes = {\"(512;440)\"} } }",
            "below the end",
        ),
        (
            "image a { vfat { label = \"TOO-LONG-LABEL\" } }",
            "at most 11",
        ),
        (
            "image a { ext4 { fs-timestamp = \"now; rm -rf /\" } }",
            "YYYYMMDDHHMMSS",
        ),
        (
            "image a { ext4 { mke2fs-conf = \"../etc/mke2fs.conf\" } }",
            "inside the input path",
        ),
    ];
    for (text, words) in cases {
        let e = refuse(text);
        assert_eq!(e.place, "t.cfg:1", "{e}");
        assert!(e.message.contains(words), "{text}: {e}");
    }
}

#[test]
fn extraargs_allow_lists() {
    let cases: [(&str, &str); 6] = [
        (
            "image a { ext4 { use-mke2fs = true extraargs = \"-d /etc\" } }",
            "'-d' is refused",
        ),
        (
            "image a { ext4 { use-mke2fs = true extraargs = \"-E offset=1\" } }",
            "'-E' is refused",
        ),
        (
            "image a { ext4 { use-mke2fs = true extraargs = \"-O x; reboot\" } }",
            "shell syntax",
        ),
        (
            "image a { ext4 { extraargs = \"-N 100\" } }",
            "set use-mke2fs = true",
        ),
        (
            "image a { vfat { extraargs = \"-C x\" } }",
            "'-C' is refused",
        ),
        ("image a { vfat { extraargs = \"-F 33\" } }", "[12, 16, 32]"),
    ];
    for (text, words) in cases {
        let e = refuse(text);
        assert!(e.message.contains(words), "{text}: {e}");
    }
}

#[test]
fn syntax_errors_cite_the_line() {
    assert_refused(
        "image a {\n vfat {\n  files = { \"a\" }, \n } }",
        "t.cfg:3",
        &["unexpected token ','"],
    );
    assert_refused(
        "image a {\n vfat {\n  label \"x\"\n} }",
        "t.cfg:3",
        &["missing"],
    );
    assert_refused("image a {\n vfat {\n", "t.cfg:2", &["not closed"]);
    assert_refused(
        "image a { vfat { label = \"A\"\n label += \"B\" } }",
        "t.cfg:2",
        &["append to non-list"],
    );
    assert_refused("image a { vfat { label = \"\\0\" } }", "t.cfg:1", &["NUL"]);
    assert_refused("\n${X} = 1", "t.cfg:2", &["${VAR}"]);
    assert_refused("foo(\"x\")", "t.cfg:1", &["no such option 'foo'"]);
    assert_refused("include(\"a\", \"b\")", "t.cfg:1", &["one file name"]);
}

#[test]
fn section_depth_is_capped() {
    let text = format!("{}{}", "a { ".repeat(50), "} ".repeat(50));
    let e = refuse(&text);
    assert!(e.message.contains("nested more than"), "{e}");
}

fn include_dir() -> (tempfile::TempDir, ParseOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inc = dir.path().join("inc");
    std::fs::create_dir_all(&inc).expect("mkdir");
    let mut o = opts(&[]);
    o.include_dirs = vec![inc];
    (dir, o)
}

fn load_main(dir: &tempfile::TempDir, o: &ParseOptions, text: &str) -> String {
    let main: PathBuf = dir.path().join("inc/main.cfg");
    std::fs::write(&main, text).expect("write");
    match load_config(&main, o) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn includes_that_escape_are_refused_with_why() {
    let (dir, o) = include_dir();
    std::fs::write(dir.path().join("outside.cfg"), "image a { vfat {} }").expect("write");
    let e = load_main(&dir, &o, "\ninclude(\"../outside.cfg\")");
    assert!(
        e.contains("main.cfg:2: include(\"../outside.cfg\"): '..' is refused"),
        "{e}"
    );
    let abs = dir.path().join("outside.cfg");
    let e = load_main(&dir, &o, &format!("include(\"{}\")", abs.display()));
    assert!(
        e.contains("main.cfg:1:") && e.contains("absolute path is refused"),
        "{e}"
    );
    std::os::unix::fs::symlink(&abs, dir.path().join("inc/link.cfg")).expect("symlink");
    let e = load_main(&dir, &o, "include(\"link.cfg\")");
    assert!(
        e.contains("main.cfg:1:") && e.contains("through a symlink") && e.contains("outside"),
        "{e}"
    );
    let e = load_main(&dir, &o, "include(\"missing.cfg\")");
    assert!(e.contains("not found in the include path"), "{e}");
}

#[test]
fn include_cycles_and_depth() {
    let (dir, o) = include_dir();
    std::fs::write(dir.path().join("inc/b.cfg"), "include(\"main.cfg\")\n").expect("write");
    let e = load_main(&dir, &o, "\n\ninclude(\"b.cfg\")");
    assert!(
        e.contains("b.cfg:1:") && e.contains("include cycle:") && e.contains("main.cfg -> "),
        "{e}"
    );
    // A chain deeper than the cap, without a cycle.
    for i in 0..12 {
        std::fs::write(
            dir.path().join(format!("inc/d{i}.cfg")),
            format!("include(\"d{}.cfg\")", i + 1),
        )
        .expect("write");
    }
    std::fs::write(dir.path().join("inc/d12.cfg"), "").expect("write");
    let e = load_main(&dir, &o, "include(\"d0.cfg\")");
    assert!(e.contains("nested more than 10 deep"), "{e}");
    // Including the same file twice is no cycle.
    std::fs::write(dir.path().join("inc/c.cfg"), "").expect("write");
    std::fs::write(
        dir.path().join("inc/main.cfg"),
        "include(\"c.cfg\") include(\"c.cfg\")",
    )
    .expect("write");
    assert!(load_config(&dir.path().join("inc/main.cfg"), &o).is_ok());
}
