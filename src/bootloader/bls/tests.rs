//! BLS entry parsing: a Fedora-style entry field by field, menu order,
//! `$var` expansion from a grubenv block (hand-made and written by the
//! host's `grub-editenv`), and hostile entries skipped without losing the
//! good ones.

use super::{parse_entries, parse_grubenv, BlsEntry};
use crate::arch::Arch;
use crate::test_tools::find_tool;

/// What kernel-install writes on Fedora 41 aarch64 (the machine id is
/// the file name's prefix), with a second initrd added.
const FEDORA: &str = "title Fedora Linux (6.11.4-301.fc41.aarch64) 41 (Forty One)
version 6.11.4-301.fc41.aarch64
linux /vmlinuz-6.11.4-301.fc41.aarch64
initrd /initramfs-6.11.4-301.fc41.aarch64.img
initrd /boot/early-microcode.img
options root=UUID=0b5e4a2c-9d1f-4c47-8a0e-3f6d2b1c9e77 ro rootflags=subvol=root rhgb quiet
grub_users $grub_users
grub_arg --unrestricted
grub_class fedora
machine-id 5f0c2d8e9a7b4c31b2e6d4f8a1c3e5b7
";

fn files(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
        .collect()
}

fn minimal(version: &str, sort_key: Option<&str>) -> String {
    let mut text = format!("version {version}\nlinux /vmlinuz-{version}\n");
    if let Some(key) = sort_key {
        text.push_str(&format!("sort-key {key}\n"));
    }
    text
}

/// A grubenv as grub writes it: the signature line, `name=value` lines,
/// `#` padding to exactly 1024 bytes.
fn grubenv(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = b"# GRUB Environment Block\n".to_vec();
    for (name, value) in vars {
        block.extend_from_slice(format!("{name}={value}\n").as_bytes());
    }
    block.resize(1024, b'#');
    block
}

#[test]
fn fedora_entry_parsed_exactly() {
    let name = "5f0c2d8e9a7b4c31b2e6d4f8a1c3e5b7-6.11.4-301.fc41.aarch64.conf";
    let (entries, warnings) = parse_entries(&files(&[(name, FEDORA)]), None, Arch::Aarch64);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        entries,
        [BlsEntry {
            file: name.into(),
            title: Some("Fedora Linux (6.11.4-301.fc41.aarch64) 41 (Forty One)".into()),
            version: Some("6.11.4-301.fc41.aarch64".into()),
            linux: "/vmlinuz-6.11.4-301.fc41.aarch64".into(),
            initrds: vec![
                "/initramfs-6.11.4-301.fc41.aarch64.img".into(),
                "/boot/early-microcode.img".into()
            ],
            options: [
                "root=UUID=0b5e4a2c-9d1f-4c47-8a0e-3f6d2b1c9e77",
                "ro",
                "rootflags=subvol=root",
                "rhgb",
                "quiet"
            ]
            .map(String::from)
            .to_vec(),
            devicetree: None,
            class: Some("fedora".into()),
            sort_key: None,
        }]
    );
}

#[test]
fn tabs_comments_crlf_and_matching_architecture() {
    let text = "# a comment\r\n\r\ntitle\tTabbed\r\nlinux\t/vmlinuz-1\r\narchitecture AA64\r\n\
                devicetree /dtb-1/arm/board.dtb\r\n";
    let (entries, warnings) = parse_entries(&files(&[("t.conf", text)]), None, Arch::Aarch64);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(entries[0].title.as_deref(), Some("Tabbed"));
    assert_eq!(entries[0].linux, "/vmlinuz-1");
    assert_eq!(
        entries[0].devicetree.as_deref(),
        Some("/dtb-1/arm/board.dtb")
    );
}

#[test]
fn unknown_keys_and_overlays_warn_but_keep_the_entry() {
    let text = "linux /vmlinuz-1\nfrobnicate yes\ndevicetree-overlay /o.dtbo\n";
    let (entries, warnings) = parse_entries(&files(&[("u.conf", text)]), None, Arch::Riscv64);
    assert_eq!(entries.len(), 1);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("unknown key \"frobnicate\""),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("devicetree-overlay"), "{warnings:?}");
}

#[test]
fn menu_order_sort_key_then_version_then_file() {
    let a = minimal("6.1", Some("fedora"));
    let b = minimal("6.10", Some("fedora"));
    let c = minimal("6.9", Some("fedora"));
    // The newest version, but no sort-key: after every entry with one.
    let d = minimal("9.0", None);
    let e = minimal("1.0", Some("aaa"));
    let (entries, warnings) = parse_entries(
        &files(&[
            ("a.conf", &a),
            ("b.conf", &b),
            ("c.conf", &c),
            ("d.conf", &d),
            ("e.conf", &e),
            ("f.conf", &a),
            ("g.conf", &a),
        ]),
        None,
        Arch::Riscv64,
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let order: Vec<&str> = entries.iter().map(|e| e.file.as_str()).collect();
    // 6.10 is newer than 6.9 (digit runs compare as numbers, not text);
    // equal versions: file name descending.
    assert_eq!(
        order,
        ["e.conf", "b.conf", "c.conf", "g.conf", "f.conf", "a.conf", "d.conf"]
    );
    // Without sort-keys: version decides, whatever the file names say.
    let (entries, _) = parse_entries(
        &files(&[
            ("z.conf", &minimal("6.12.9", None)),
            ("a.conf", &minimal("6.12.48", None)),
            ("m.conf", &minimal("6.12.48~rc1", None)),
        ]),
        None,
        Arch::Riscv64,
    );
    let order: Vec<&str> = entries.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(order, ["a.conf", "m.conf", "z.conf"]);
}

#[test]
fn kernelopts_expanded_from_grubenv() {
    let env = grubenv(&[
        ("saved_entry", "5f0c-6.11.4-301.fc41.aarch64"),
        (
            "kernelopts",
            "root=/dev/mapper/fedora-root ro resume=UUID=1234",
        ),
        ("tuned_params", "skew_tick=1"),
        ("tuned_initrd", "/tuned.img"),
    ]);
    assert_eq!(env.len(), 1024);
    let vars = parse_grubenv(&env);
    assert_eq!(
        vars.keys().collect::<Vec<_>>(),
        ["kernelopts", "saved_entry", "tuned_initrd", "tuned_params"]
    );
    let text = "linux /vmlinuz-1\ninitrd /initramfs-1.img $tuned_initrd\n\
                options $kernelopts ${tuned_params}x $nosuch quiet\n";
    let (entries, warnings) = parse_entries(&files(&[("k.conf", text)]), Some(&env), Arch::Aarch64);
    assert_eq!(
        entries[0].options,
        [
            "root=/dev/mapper/fedora-root",
            "ro",
            "resume=UUID=1234",
            "skew_tick=1x",
            "quiet"
        ]
    );
    assert_eq!(entries[0].initrds, ["/initramfs-1.img", "/tuned.img"]);
    // The unknown variable became nothing, and said so.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("k.conf") && warnings[0].contains("$nosuch is not set in grubenv"),
        "{warnings:?}"
    );
    // Without a grubenv every variable is unknown.
    let (entries, warnings) = parse_entries(&files(&[("k.conf", text)]), None, Arch::Aarch64);
    assert_eq!(entries[0].options, ["x", "quiet"]);
    assert_eq!(warnings.len(), 4, "{warnings:?}");
}

/// The oracle: a grubenv written by the host's `grub-editenv`, read back.
#[test]
fn grubenv_written_by_grub_editenv() {
    let Some(tool) = find_tool("grub-editenv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    let run = |args: &[&str]| {
        let status = std::process::Command::new(&tool)
            .arg(&file)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "grub-editenv {args:?}");
    };
    run(&["create"]);
    run(&[
        "set",
        "kernelopts=root=UUID=abc ro quiet",
        r"path=C:\dir\file",
        "saved_entry=fedora-6.11",
    ]);
    let data = std::fs::read(&file).unwrap();
    assert_eq!(data.len(), 1024);
    let vars = parse_grubenv(&data);
    assert_eq!(vars["kernelopts"], "root=UUID=abc ro quiet");
    assert_eq!(vars["path"], r"C:\dir\file");
    assert_eq!(vars["saved_entry"], "fedora-6.11");
    assert_eq!(vars.len(), 3, "{vars:?}");
}

#[test]
fn hostile_entries_are_skipped_and_the_good_one_kept() {
    let good = "title Good\nlinux /vmlinuz-6.1\noptions quiet\n";
    let bad: &[(&str, &[u8])] = &[
        ("latin1.conf", b"title Caf\xe9\nlinux /vmlinuz-6.1\n"),
        ("escape.conf", b"title a\x1b[2Jb\nlinux /vmlinuz-6.1\n"),
        ("cr.conf", b"title a\rmenuentry x\nlinux /vmlinuz-6.1\n"),
        ("nul.conf", b"linux /vmlinuz-6.1\noptions a\0b\n"),
        ("relative.conf", b"linux ../../etc/shadow\n"),
        ("dotdot.conf", b"linux /boot/../x\n"),
        ("dot.conf", b"linux /./vmlinuz-6.1\n"),
        ("double-slash.conf", b"linux //vmlinuz-6.1\n"),
        ("space.conf", b"linux /vmlinuz 6.1\n"),
        ("quote.conf", b"linux /vmlinuz-'6.1'\n"),
        ("initrd.conf", b"linux /vmlinuz-6.1\ninitrd /x/../../y\n"),
        ("version.conf", b"version 6.1;reboot\nlinux /vmlinuz-6.1\n"),
        ("class.conf", b"grub_class a b\nlinux /vmlinuz-6.1\n"),
        ("sortkey.conf", b"sort-key $x\nlinux /vmlinuz-6.1\n"),
        ("nolinux.conf", b"title Nothing to boot\noptions quiet\n"),
        ("empty.conf", b""),
        ("arch.conf", b"linux /vmlinuz-6.1\narchitecture x64\n"),
    ];
    let mut all: Vec<(String, Vec<u8>)> = bad
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_vec()))
        .collect();
    all.insert(7, ("good.conf".into(), good.as_bytes().to_vec()));
    let (entries, warnings) = parse_entries(&all, None, Arch::Aarch64);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].file, "good.conf");
    assert_eq!(entries[0].options, ["quiet"]);
    assert_eq!(warnings.len(), bad.len(), "{warnings:#?}");
    for ((name, _), warning) in bad.iter().zip(&warnings) {
        assert!(
            warning.starts_with(&format!("/boot/loader/entries/{name}: skipped: ")),
            "{warning}"
        );
    }
    let reason = |name: &str| {
        warnings
            .iter()
            .find(|w| w.contains(&format!("/{name}:")))
            .unwrap()
            .clone()
    };
    assert!(reason("latin1.conf").contains("not UTF-8"));
    assert!(reason("escape.conf").contains("control character '\\u{1b}'"));
    assert!(reason("cr.conf").contains("control character '\\r'"));
    assert!(reason("relative.conf").contains("absolute path"));
    assert!(reason("version.conf").contains("version \"6.1;reboot\""));
    assert!(reason("nolinux.conf").contains("no linux line"));
    assert!(reason("arch.conf").contains("architecture x64, not aa64"));
}

/// grub escapes a newline in a value as `\` + newline and reads it back as
/// part of the value (`grub-editenv list` shows `a` as two lines); a line
/// after it is not a variable of its own. Read line by line, the second
/// line became `kernelopts=evil`, overriding the real one.
#[test]
fn grubenv_escaped_newline_stays_in_its_value() {
    let Some(tool) = find_tool("grub-editenv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    for args in [
        &["create"][..],
        &["set", "kernelopts=root=UUID=abc ro", "a=x\nkernelopts=evil"],
    ] {
        let status = std::process::Command::new(&tool)
            .arg(&file)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "grub-editenv {args:?}");
    }
    let vars = parse_grubenv(&std::fs::read(&file).unwrap());
    assert_eq!(vars["kernelopts"], "root=UUID=abc ro");
    // Pasted into kernel options, so one line: the newline as a space.
    assert_eq!(vars["a"], "x kernelopts=evil");
    assert_eq!(vars.len(), 2, "{vars:?}");
    // `\n` spelled out is an escaped `n` to grub, not a newline.
    let vars = parse_grubenv(&grubenv(&[("b", r"one\ntwo\\three")]));
    assert_eq!(vars["b"], r"onentwo\three");
}
