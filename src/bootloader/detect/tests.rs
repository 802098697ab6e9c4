//! Detection: a table of os-release files; where grub.cfg goes for each
//! kind of prefix; the grub binary chosen among real x86_64 EFI images made
//! by the host's `grub-mkimage` (the oracle for the prefix format); BLS
//! entries as the menu; and the grub.cfg rendered from them, checked by
//! `grub-script-check`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::{cfg_path, describe, detect, wanted, Family, KernelSource, OsInfo, RootfsBoot};
use crate::board::schema::TableKind;
use crate::bootloader::golden::{builtin_plan, plan_from_toml};
use crate::bootloader::grub::{grub_config_for_rootfs, render_grub_cfg};
use crate::bootloader::kernels::find_kernels;
use crate::plan::Plan;
use crate::rootfs::{CaptureResults, Captured, DirChild, NodeType};
use crate::test_tools::{find_tool, have_file};

// ---- os-release ----

const DEBIAN_TRIXIE: &str = r#"PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
"#;

const UBUNTU_NOBLE: &str = r#"PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
"#;

const OPENEULER_2403: &str = r#"NAME="openEuler"
VERSION="24.03 (LTS)"
ID="openEuler"
VERSION_ID="24.03"
PRETTY_NAME="openEuler 24.03 (LTS)"
ANSI_COLOR="0;31"
"#;

const FEDORA_41: &str = r#"NAME="Fedora Linux"
VERSION="41 (Forty One)"
ID=fedora
VERSION_ID=41
PLATFORM_ID="platform:f41"
PRETTY_NAME="Fedora Linux 41 (Forty One)"
CPE_NAME="cpe:/o:fedoraproject:fedora:41"
"#;

const CENTOS_STREAM_9: &str = r#"NAME="CentOS Stream"
VERSION="9"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"
PLATFORM_ID="platform:el9"
PRETTY_NAME="CentOS Stream 9"
"#;

const ROCKY_9: &str = r#"NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
"#;

const TUMBLEWEED: &str = r#"NAME="openSUSE Tumbleweed"
# VERSION="20241101"
ID="opensuse-tumbleweed"
ID_LIKE="opensuse suse"
VERSION_ID="20241101"
PRETTY_NAME="openSUSE Tumbleweed"
"#;

const ALPINE: &str = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n\
PRETTY_NAME=\"Alpine Linux v3.20\"\n";

const ARCH: &str = "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n";

/// os-release(5): without ID, the ID is "linux".
const NO_ID: &str = "NAME=Custom\nVERSION_ID=\n";

/// Quoting as the format allows it: single quotes, escapes in double
/// quotes, unquoted words, comments, blank lines, odd spacing in ID_LIKE.
const QUOTING: &str = r#"# comment line

NAME='Mint "Xia"'
ID=linuxmint
ID_LIKE="  ubuntu   debian "
VERSION_ID="22\"1"
PRETTY_NAME=Mint\ 22
"#;

#[test]
fn os_release_table() {
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        Option<&'a str>,
        Option<&'a str>,
        Family,
    );
    let table: &[Row<'_>] = &[
        (
            DEBIAN_TRIXIE,
            "debian",
            &[],
            Some("13"),
            Some("Debian GNU/Linux"),
            Family::Debian,
        ),
        (
            UBUNTU_NOBLE,
            "ubuntu",
            &["debian"],
            Some("24.04"),
            Some("Ubuntu"),
            Family::Debian,
        ),
        (
            OPENEULER_2403,
            "openEuler",
            &[],
            Some("24.03"),
            Some("openEuler"),
            Family::Rpm,
        ),
        (
            FEDORA_41,
            "fedora",
            &[],
            Some("41"),
            Some("Fedora Linux"),
            Family::Rpm,
        ),
        (
            CENTOS_STREAM_9,
            "centos",
            &["rhel", "fedora"],
            Some("9"),
            Some("CentOS Stream"),
            Family::Rpm,
        ),
        (
            ROCKY_9,
            "rocky",
            &["rhel", "centos", "fedora"],
            Some("9.4"),
            Some("Rocky Linux"),
            Family::Rpm,
        ),
        (
            TUMBLEWEED,
            "opensuse-tumbleweed",
            &["opensuse", "suse"],
            Some("20241101"),
            Some("openSUSE Tumbleweed"),
            Family::Rpm,
        ),
        (
            ALPINE,
            "alpine",
            &[],
            Some("3.20.3"),
            Some("Alpine Linux"),
            Family::Other,
        ),
        (ARCH, "arch", &[], None, Some("Arch Linux"), Family::Other),
        (NO_ID, "linux", &[], None, Some("Custom"), Family::Other),
        (
            QUOTING,
            "linuxmint",
            &["ubuntu", "debian"],
            Some("22\"1"),
            Some("Mint \"Xia\""),
            Family::Debian,
        ),
        ("", "linux", &[], None, None, Family::Other),
    ];
    for (text, id, like, version, name, family) in table {
        let os = OsInfo::parse(text);
        assert_eq!(os.id, *id, "{text}");
        assert_eq!(os.id_like, *like, "{text}");
        assert_eq!(os.version_id.as_deref(), *version, "{text}");
        assert_eq!(os.name.as_deref(), *name, "{text}");
        assert_eq!(os.family(), *family, "{text}");
    }
    assert_eq!(
        OsInfo::parse(QUOTING).pretty_name.as_deref(),
        Some("Mint 22")
    );
}

// ---- plans ----

/// x86_64 UEFI on GPT: the ESP is partition 1.
const X86_GPT: &str = r#"
[board]
name = "pc-gpt"
description = "test: x86_64 UEFI + GRUB on GPT"
arch = "x86_64"
hostname = "pc"
image = "pc-gpt"
console = "ttyS0"

[disk]
table = "gpt"
size = "2G"

[[partition]]
name = "esp"
type = "esp"
size = "128M"
filesystem = "vfat"
mount = "/boot/efi"

[[partition]]
name = "rootfs"
type = "linux"
size = "rest"
filesystem = "ext4"
fs_uuid = "726f6f74-0000-4000-8000-0000000000c1"
mount = "/"

[boot]
loader = "grub"
cmdline = "console=ttyS0"
"#;

fn x86_gpt() -> Plan {
    plan_from_toml(X86_GPT)
}

/// The same on MBR, with the ESP second (after a BIOS boot area).
fn x86_mbr() -> Plan {
    let text = X86_GPT
        .replace(
            "table = \"gpt\"",
            "table = \"mbr\"\nmbr_signature = \"0x12345678\"",
        )
        .replace(
            "[[partition]]\nname = \"esp\"",
            "[[partition]]\nname = \"spare\"\ntype = \"0x83\"\nsize = \"8M\"\n\n\
             [[partition]]\nname = \"esp\"",
        )
        .replace("type = \"linux\"", "type = \"0x83\"");
    plan_from_toml(&text)
}

// ---- cfg_path ----

#[test]
fn cfg_path_for_each_kind_of_prefix() {
    let gpt = x86_gpt();
    let esp = gpt.esp_partition();
    assert_eq!(esp.map(|p| p.number), Some(1));
    let at = |prefix: Option<&str>| cfg_path(prefix, esp, TableKind::Gpt, "EFI/BOOT");
    assert_eq!(at(None).unwrap(), "EFI/BOOT/grub.cfg");
    assert_eq!(at(Some("")).unwrap(), "EFI/BOOT/grub.cfg");
    assert_eq!(
        at(Some("/EFI/openEuler")).unwrap(),
        "EFI/openEuler/grub.cfg"
    );
    assert_eq!(at(Some("/EFI/fedora/")).unwrap(), "EFI/fedora/grub.cfg");
    assert_eq!(at(Some("(hd0,gpt1)/EFI/x")).unwrap(), "EFI/x/grub.cfg");
    assert_eq!(at(Some("(hd0,1)/EFI/x")).unwrap(), "EFI/x/grub.cfg");
    // `/` and a device alone: the top of the ESP, as grub reads them.
    assert_eq!(at(Some("/")).unwrap(), "grub.cfg");
    assert_eq!(at(Some("(hd0,gpt1)")).unwrap(), "grub.cfg");
    // Only the first disk; a hybrid table's MBR numbers are not trusted.
    assert!(at(Some("(hd1,gpt1)/EFI/x")).is_err());
    assert!(at(Some("(hd,gpt1)/EFI/x")).is_err());
    assert!(cfg_path(Some("(hd0,gpt1)/EFI/x"), esp, TableKind::Hybrid, "EFI/BOOT").is_ok());
    assert!(cfg_path(
        Some("(hd0,msdos1)/EFI/x"),
        esp,
        TableKind::Hybrid,
        "EFI/BOOT"
    )
    .is_err());
    assert!(cfg_path(Some("(hd0,1)/EFI/x"), esp, TableKind::Hybrid, "EFI/BOOT").is_err());
    assert_eq!(
        cfg_path(None, esp, TableKind::Gpt, "/EFI/vendor/").unwrap(),
        "EFI/vendor/grub.cfg"
    );
    for (prefix, why) in [
        (
            "(hd0,gpt2)/EFI/x",
            "names device (hd0,gpt2), which is not the ESP (partition 1)",
        ),
        ("(hd0,msdos1)/EFI/x", "names device (hd0,msdos1)"),
        ("(memdisk)/boot/grub", "is inside the image's own memdisk"),
        ("($root)/x", "names device ($root)"),
        ("(hd0,gpt1,bsd1)/x", "names device (hd0,gpt1,bsd1)"),
        ("(cd0)/x", "names device (cd0)"),
        ("/EFI/../x", "not a plain directory path"),
        ("/EFI/./x", "not a plain directory path"),
        ("/EFI/my vendor", "not a plain directory path"),
        ("/EFI/$vendor", "not a plain directory path"),
        ("/EFI//x", "not a plain directory path"),
        ("(unclosed/EFI/x", "not a plain directory path"),
    ] {
        let err = at(Some(prefix)).unwrap_err();
        assert!(err.contains(why), "{prefix}: {err}");
        assert!(err.contains(&format!("{prefix:?}")), "{prefix}: {err}");
    }
    // No ESP: no device is the ESP.
    assert!(cfg_path(Some("(hd0,gpt1)/EFI/x"), None, TableKind::Gpt, "EFI/BOOT").is_err());
    assert_eq!(
        cfg_path(Some("/EFI/x"), None, TableKind::Gpt, "EFI/BOOT").unwrap(),
        "EFI/x/grub.cfg"
    );

    let mbr = x86_mbr();
    let esp = mbr.esp_partition();
    assert_eq!(esp.map(|p| p.number), Some(2));
    let at = |prefix: &str| cfg_path(Some(prefix), esp, TableKind::Mbr, "EFI/BOOT");
    assert_eq!(at("(hd0,msdos2)/EFI/x").unwrap(), "EFI/x/grub.cfg");
    assert_eq!(at("(hd0,2)/EFI/x").unwrap(), "EFI/x/grub.cfg");
    assert!(
        at("(hd0,msdos1)/EFI/x").is_err(),
        "partition 1 is not the ESP"
    );
    assert!(at("(hd0,gpt2)/EFI/x").is_err(), "no GPT on this disk");

    // The built-in board's ESP, through a real plan.
    let riscv = builtin_plan("qemu-riscv64");
    let esp = riscv.esp_partition();
    assert_eq!(
        cfg_path(
            Some("(hd0,gpt1)/EFI/debian"),
            esp,
            riscv.table(),
            "EFI/BOOT"
        )
        .unwrap(),
        "EFI/debian/grub.cfg"
    );
}

// ---- real grub images ----

const MONOLITHIC: &str = "/usr/lib/grub/x86_64-efi/monolithic/grubx64.efi";

/// A grub EFI image made by the host's grub-mkimage with `prefix`; `None`
/// (after a SKIP line, or a failure under MKIMG_REQUIRE_TOOLS) without it.
fn mkimage(prefix: &str, extra: &[&str]) -> Option<Vec<u8>> {
    let dir = Path::new("/usr/lib/grub/x86_64-efi");
    if find_tool("grub-mkimage").is_none()
        || !have_file(&dir.join("moddep.lst"), "grub-efi-amd64-bin")
    {
        return None;
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("grub-mkimage")
        .arg("-d")
        .arg(dir)
        .args(["-O", "x86_64-efi", "-p", prefix, "-o"])
        .arg(out.path())
        .args(extra)
        .args(["part_gpt", "fat"])
        .status()
        .unwrap();
    assert!(status.success(), "grub-mkimage -p {prefix:?} {extra:?}");
    Some(std::fs::read(out.path()).unwrap())
}

/// Captures holding `os_release` and `files`.
fn captures(os_release: Option<&str>, files: Vec<(&str, Captured)>) -> CaptureResults {
    let mut c = CaptureResults::default();
    if let Some(text) = os_release {
        c.files.insert(
            "/etc/os-release".into(),
            Captured::File(text.as_bytes().to_vec()),
        );
    }
    c.files
        .extend(files.into_iter().map(|(p, f)| (p.to_string(), f)));
    c
}

fn vendor(name: &str) -> String {
    format!("/boot/efi/EFI/{name}/grubx64.efi")
}

#[test]
fn wanted_names_the_candidates() {
    let c = wanted(&x86_gpt());
    assert!(c.files.iter().any(|f| f == MONOLITHIC), "{:?}", c.files);
    assert!(c.files.iter().any(|f| f == "/etc/os-release"));
    // Whether grub's modules are there (--grub mkconfig needs them).
    assert!(c.files.iter().any(|f| f == "/usr/lib/grub/x86_64-efi"));
    for p in [
        "/boot/loader/entries/*.conf",
        "/boot/efi/EFI/*/grubx64.efi",
        "/boot/efi/EFI/*/shimx64.efi",
    ] {
        assert!(c.patterns.iter().any(|q| q == p), "{p}: {:?}", c.patterns);
    }
    assert_eq!(c.dirs, ["/boot"]);
}

#[test]
fn own_vendor_first_case_insensitive() {
    let Some(openeuler) = mkimage("/EFI/openEuler", &[]) else {
        return;
    };
    let fedora = mkimage("/EFI/fedora", &[]).unwrap();
    let debian = mkimage("/EFI/debian", &[]).unwrap();
    let files = || {
        vec![
            (MONOLITHIC, Captured::File(debian.clone())),
            (
                "/boot/efi/EFI/fedora/grubx64.efi",
                Captured::File(fedora.clone()),
            ),
            (
                "/boot/efi/EFI/openEuler/grubx64.efi",
                Captured::File(openeuler.clone()),
            ),
            (
                "/usr/sbin/grub2-mkconfig",
                Captured::File(b"#!/bin/sh\n".to_vec()),
            ),
            ("/boot/grub2", Captured::Other(NodeType::Dir)),
        ]
    };
    let plan = x86_gpt();
    // openEuler's ID is "openEuler", its directory EFI/openEuler.
    for (os, path, cfg, prefix) in [
        (
            OPENEULER_2403,
            "openEuler",
            "EFI/openEuler/grub.cfg",
            "/EFI/openEuler",
        ),
        (
            "ID=openeuler\n",
            "openEuler",
            "EFI/openEuler/grub.cfg",
            "/EFI/openEuler",
        ),
        (FEDORA_41, "fedora", "EFI/fedora/grub.cfg", "/EFI/fedora"),
        (
            "ID=FEDORA\n",
            "fedora",
            "EFI/fedora/grub.cfg",
            "/EFI/fedora",
        ),
    ] {
        let boot = detect(&plan, &captures(Some(os), files()));
        let grub = boot.grub.as_ref().expect("a grub");
        assert_eq!(grub.path, vendor(path), "{os}");
        assert_eq!(grub.cfg, cfg);
        assert_eq!(grub.prefix.as_deref(), Some(prefix));
        assert!(!grub.blscfg, "the host's grub has no blscfg module");
        assert!(boot.grub_skipped.is_empty(), "{:?}", boot.grub_skipped);
        assert_eq!(boot.family, Family::Rpm);
        assert_eq!(boot.mkconfig.as_deref(), Some("/usr/sbin/grub2-mkconfig"));
        assert_eq!(boot.grub_dir.as_deref(), Some("/boot/grub2"));
    }
    let boot = detect(&plan, &captures(Some(OPENEULER_2403), files()));
    assert_eq!(boot.grub.as_ref().unwrap().data, openeuler);
    let lines = describe(&boot);
    assert!(
        lines.contains(
            &"distro: openEuler 24.03 (LTS) (ID=openEuler, VERSION_ID=24.03), RPM family"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"grub EFI: /boot/efi/EFI/openEuler/grubx64.efi (prefix \"/EFI/openEuler\") → grub.cfg at ESP:/EFI/openEuler/grub.cfg".to_string()),
        "{lines:#?}"
    );
}

#[test]
fn debian_monolithic_before_other_vendors() {
    let Some(aaa) = mkimage("/EFI/aaa", &[]) else {
        return;
    };
    let debian = mkimage("/EFI/debian", &[]).unwrap();
    let files = || {
        vec![
            ("/boot/efi/EFI/aaa/grubx64.efi", Captured::File(aaa.clone())),
            (MONOLITHIC, Captured::File(debian.clone())),
        ]
    };
    let plan = x86_gpt();
    for os in [Some(DEBIAN_TRIXIE), Some(ARCH), None] {
        let boot = detect(&plan, &captures(os, files()));
        let grub = boot.grub.as_ref().unwrap();
        assert_eq!(
            (grub.path.as_str(), grub.cfg.as_str()),
            (MONOLITHIC, "EFI/debian/grub.cfg")
        );
    }
    // Without the monolithic image, the other vendor's.
    let boot = detect(
        &plan,
        &captures(Some(DEBIAN_TRIXIE), vec![files()[0].clone()]),
    );
    assert_eq!(boot.grub.unwrap().path, vendor("aaa"));
}

#[test]
fn unusable_candidates_passed_over_with_reasons() {
    let Some(usable) = mkimage("(hd0,gpt1)/EFI/debian", &[]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("load.cfg");
    std::fs::write(
        &cfg,
        "search --fs-uuid --set=root 1234-ABCD\nset prefix=($root)/EFI/x\n",
    )
    .unwrap();
    let embedded = mkimage("/EFI/debian", &["-c", cfg.to_str().unwrap()]).unwrap();
    let memdisk = mkimage("(memdisk)/boot/grub", &[]).unwrap();
    let other_partition = mkimage("(hd0,gpt2)/EFI/b", &[]).unwrap();
    let variable = mkimage("($root)/EFI/c", &[]).unwrap();
    let no_prefix = mkimage("", &[]).unwrap();
    let files = vec![
        (
            "/boot/efi/EFI/openEuler/grubx64.efi",
            Captured::Symlink("../../../../usr/lib/grub/grubx64.efi".into()),
        ),
        (MONOLITHIC, Captured::File(embedded)),
        ("/boot/efi/EFI/a/grubx64.efi", Captured::File(memdisk)),
        (
            "/boot/efi/EFI/b/grubx64.efi",
            Captured::File(other_partition),
        ),
        ("/boot/efi/EFI/c/grubx64.efi", Captured::File(variable)),
        (
            "/boot/efi/EFI/d/grubx64.efi",
            Captured::File(b"MZ not really".to_vec()),
        ),
        (
            "/boot/efi/EFI/e/grubx64.efi",
            Captured::HardLink("/boot/efi/EFI/b/grubx64.efi".into()),
        ),
        (
            "/boot/efi/EFI/f/grubx64.efi",
            Captured::File(usable.clone()),
        ),
        (
            "/boot/efi/EFI/g/grubx64.efi",
            Captured::File(no_prefix.clone()),
        ),
        // Not candidates: another architecture's name, one level too deep.
        (
            "/boot/efi/EFI/h/grubaa64.efi",
            Captured::File(no_prefix.clone()),
        ),
        (
            "/boot/efi/EFI/i/j/grubx64.efi",
            Captured::File(no_prefix.clone()),
        ),
    ];
    let boot = detect(&x86_gpt(), &captures(Some(OPENEULER_2403), files));
    let grub = boot.grub.as_ref().expect("a usable grub");
    assert_eq!(grub.path, vendor("f"));
    assert_eq!(grub.cfg, "EFI/debian/grub.cfg");
    assert_eq!(grub.data, usable);
    let expected = [
        ("/boot/efi/EFI/openEuler/grubx64.efi: a symlink to ../../../../usr/lib/grub/grubx64.efi (not followed)"),
        (&format!("{MONOLITHIC}: it carries an embedded config")),
        ("/boot/efi/EFI/a/grubx64.efi: its prefix \"(memdisk)/boot/grub\" is inside the image's own memdisk"),
        ("/boot/efi/EFI/b/grubx64.efi: its prefix \"(hd0,gpt2)/EFI/b\" names device (hd0,gpt2)"),
        ("/boot/efi/EFI/c/grubx64.efi: its prefix \"($root)/EFI/c\" names device ($root)"),
        ("/boot/efi/EFI/d/grubx64.efi: not a grub EFI image mkimg can read"),
        ("/boot/efi/EFI/e/grubx64.efi: not a regular file (HardLink"),
    ];
    assert_eq!(
        boot.grub_skipped.len(),
        expected.len(),
        "{:#?}",
        boot.grub_skipped
    );
    for (got, want) in boot.grub_skipped.iter().zip(expected) {
        assert!(got.starts_with(want), "{got}\nwanted: {want}");
    }
    assert!(boot.grub_skipped[1].contains("search --fs-uuid --set=root 1234-ABCD"));
    let lines = describe(&boot);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("  passed over "))
            .count(),
        expected.len()
    );

    // Only the image without a prefix: grub.cfg where it is loaded from.
    let boot = detect(
        &x86_gpt(),
        &captures(
            None,
            vec![("/boot/efi/EFI/g/grubx64.efi", Captured::File(no_prefix))],
        ),
    );
    let grub = boot.grub.unwrap();
    assert_eq!(
        (grub.prefix.as_deref(), grub.cfg.as_str()),
        (Some(""), "EFI/BOOT/grub.cfg")
    );
}

#[test]
fn wrong_pe_machine_passed_over() {
    let Some(x86) = mkimage("/EFI/fedora", &[]) else {
        return;
    };
    let plan = builtin_plan("qemu-aarch64");
    let files = vec![
        (
            "/boot/efi/EFI/fedora/grubaa64.efi",
            Captured::File(x86.clone()),
        ),
        (
            "/usr/lib/grub/arm64-efi/monolithic/grubaa64.efi",
            Captured::File(x86.clone()),
        ),
        (
            "/boot/efi/EFI/fedora/shimaa64.efi",
            Captured::File(b"MZ".to_vec()),
        ),
    ];
    let boot = detect(&plan, &captures(Some(FEDORA_41), files));
    assert!(boot.grub.is_none());
    assert_eq!(boot.grub_skipped.len(), 2, "{:?}", boot.grub_skipped);
    for skipped in &boot.grub_skipped {
        assert!(
            skipped.contains("built for PE machine 0x8664, not aarch64 (0xaa64)"),
            "{skipped}"
        );
    }
    assert!(boot.grub_skipped[0].starts_with("/boot/efi/EFI/fedora/grubaa64.efi: "));
    assert_eq!(
        boot.shim.as_deref(),
        Some("/boot/efi/EFI/fedora/shimaa64.efi")
    );
    assert!(boot.warnings.iter().any(|w| w.contains("not through shim")));
    assert!(describe(&boot).contains(&"grub EFI: none usable".to_string()));
}

// ---- BLS entries as the menu ----

const FC41: &str = "6.11.4-301.fc41.x86_64";
const FC40: &str = "6.10.12-200.fc40.x86_64";

fn boot_dir(names: &[&str]) -> BTreeMap<String, Vec<DirChild>> {
    let children = names
        .iter()
        .map(|n| DirChild {
            name: n.to_string(),
            node: if n.contains('.') || n.contains('-') {
                NodeType::File
            } else {
                NodeType::Dir
            },
            symlink_target: None,
        })
        .collect();
    BTreeMap::from([("/boot".to_string(), children)])
}

fn fedora_boot() -> Vec<String> {
    [
        format!("vmlinuz-{FC41}"),
        format!("initramfs-{FC41}.img"),
        format!("vmlinuz-{FC40}"),
        format!("initramfs-{FC40}.img"),
        "early-microcode.img".into(),
        "loader".into(),
        "efi".into(),
        "grub2".into(),
    ]
    .to_vec()
}

fn entry(name: &str, text: String) -> (String, Captured) {
    (
        format!("/boot/loader/entries/{name}"),
        Captured::File(text.into_bytes()),
    )
}

/// Fedora's entries for two kernels (one naming files as seen from the
/// root filesystem, `/boot/…`), plus two naming files /boot lacks.
fn fedora_captures() -> CaptureResults {
    let names = fedora_boot();
    let mut c = captures(Some(FEDORA_41), Vec::new());
    c.dirs = boot_dir(&names.iter().map(String::as_str).collect::<Vec<_>>());
    c.files.extend([
        entry(
            &format!("abc-{FC41}.conf"),
            format!(
                "title Fedora Linux ({FC41}) 41 (Forty One)\nversion {FC41}\nlinux /vmlinuz-{FC41}\n\
                 initrd /initramfs-{FC41}.img\ninitrd /early-microcode.img\n\
                 options root=UUID=0b5e4a2c-9d1f-4c47-8a0e-3f6d2b1c9e77 ro rootflags=subvol=root rhgb quiet mkimg.bls=1\n\
                 grub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"
            ),
        ),
        entry(
            &format!("abc-{FC40}.conf"),
            format!(
                "title Fedora Linux ({FC40}) 40\nversion {FC40}\nlinux /boot/vmlinuz-{FC40}\n\
                 initrd /boot/initramfs-{FC40}.img\noptions root=/dev/vda2 rw\n"
            ),
        ),
        entry(
            "abc-6.9.0.conf",
            "version 6.9.0\nlinux /vmlinuz-6.9.0\n".to_string(),
        ),
        entry(
            "abc-6.8.0.conf",
            format!("version 6.8.0\nlinux /vmlinuz-{FC40}\ninitrd /initramfs-6.8.0.img\n"),
        ),
    ]);
    c
}

#[test]
fn bls_entries_become_the_menu() {
    let boot = detect(&x86_gpt(), &fedora_captures());
    assert_eq!(boot.kernel_source, KernelSource::Bls);
    let got: Vec<(&str, &str, Option<&str>)> = boot
        .kernels
        .iter()
        .map(|k| (k.version.as_str(), k.kernel.as_str(), k.initrd.as_deref()))
        .collect();
    let (k41, i41) = (format!("vmlinuz-{FC41}"), format!("initramfs-{FC41}.img"));
    let (k40, i40) = (format!("vmlinuz-{FC40}"), format!("initramfs-{FC40}.img"));
    assert_eq!(
        got,
        [
            (FC41, k41.as_str(), Some(i41.as_str())),
            (FC40, k40.as_str(), Some(i40.as_str()))
        ]
    );
    let bls = boot.kernels[0].bls.as_ref().unwrap();
    assert_eq!(bls.more_initrds, ["early-microcode.img"]);
    assert_eq!(bls.class.as_deref(), Some("fedora"));
    let skipped: Vec<&String> = boot
        .warnings
        .iter()
        .filter(|w| w.contains("skipped"))
        .collect();
    assert_eq!(skipped.len(), 2, "{:#?}", boot.warnings);
    assert!(
        skipped.iter().any(|w| w
            .contains("abc-6.9.0.conf: skipped: /vmlinuz-6.9.0 is not a file at the top of /boot")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|w| w.contains("abc-6.8.0.conf: skipped: /initramfs-6.8.0.img is not a file")),
        "{skipped:?}"
    );
    assert!(describe(&boot).contains(&format!("kernel from /boot/loader/entries: {k41} + {i41}")));
}

#[test]
fn no_usable_entry_falls_back_to_scanning_boot() {
    let names = fedora_boot();
    let mut c = captures(Some(FEDORA_41), Vec::new());
    c.dirs = boot_dir(&names.iter().map(String::as_str).collect::<Vec<_>>());
    c.files.extend([
        entry("missing.conf", "linux /vmlinuz-6.9.0\n".into()),
        entry("hostile.conf", "linux /../etc/shadow\n".into()),
        entry("deeper.conf", format!("linux /loader/vmlinuz-{FC41}\n")),
        (
            "/boot/loader/entries/link.conf".to_string(),
            Captured::Symlink("/dev/zero".into()),
        ),
    ]);
    let boot = detect(&x86_gpt(), &c);
    assert_eq!(boot.kernel_source, KernelSource::Scan);
    assert_eq!(boot.kernels, find_kernels(&names));
    assert_eq!(boot.kernels.len(), 2);
    assert!(boot.kernels.iter().all(|k| k.bls.is_none()));
    for what in [
        "link.conf: not a regular file",
        "missing.conf: skipped",
        "hostile.conf: skipped",
        "deeper.conf: skipped",
        "no usable entry in /boot/loader/entries",
    ] {
        assert!(
            boot.warnings.iter().any(|w| w.contains(what)),
            "{what}: {:#?}",
            boot.warnings
        );
    }
}

// ---- grub.cfg from BLS entries and from openEuler's defaults ----

/// grub-script-check's verdict on `text`; `None` when the tool is missing.
fn grub_script_check(text: &str) -> Option<Result<(), String>> {
    let tool = find_tool("grub-script-check")?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grub.cfg");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(tool).arg(&file).output().unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

fn render(plan: &Plan, boot: &RootfsBoot) -> String {
    let text = render_grub_cfg(&grub_config_for_rootfs(plan, boot).unwrap()).unwrap();
    if let Some(verdict) = grub_script_check(&text) {
        verdict.unwrap_or_else(|e| panic!("grub-script-check rejected:\n{e}\n{text}"));
    }
    text
}

#[test]
fn grub_cfg_from_fedora_bls_entries() {
    let plan = x86_gpt();
    let boot = detect(&plan, &fedora_captures());
    let text = render(&plan, &boot);
    let uuid = "726f6f74-0000-4000-8000-0000000000c1";
    assert!(
        text.contains("# Menu: the rootfs's Boot Loader Specification entries"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\nmenuentry 'Fedora Linux ({FC41}) 41 (Forty One)' --class fedora --class gnu-linux"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\tlinux\t/boot/vmlinuz-{FC41} root=UUID={uuid} ro rootflags=subvol=root rhgb quiet mkimg.bls=1 console=ttyS0\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\tinitrd\t/boot/initramfs-{FC41}.img /boot/early-microcode.img\n"
        )),
        "{text}"
    );
    // The second entry: its root= and rw replaced by the plan's root, ro.
    assert!(
        text.contains(&format!(
            "\tlinux\t/boot/vmlinuz-{FC40} root=UUID={uuid} ro console=ttyS0\n"
        )),
        "{text}"
    );
    assert!(
        !text.contains("0b5e4a2c") && !text.contains("/dev/vda2"),
        "{text}"
    );
    assert!(!text.contains("6.9.0") && !text.contains("6.8.0"), "{text}");
    assert_eq!(text.matches("\nmenuentry ").count(), 2);
}

const OPENEULER_DEFAULT_GRUB: &str = r#"GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_DISABLE_SUBMENU=true
GRUB_TERMINAL_OUTPUT="console"
GRUB_CMDLINE_LINUX="rd.lvm.lv=openeuler/root crashkernel=512M"
GRUB_DISABLE_RECOVERY="true"
"#;

#[test]
fn openeuler_distributor_from_system_release() {
    let plan = x86_gpt();
    let v = "6.6.0-28.0.0.34.oe2403.x86_64";
    let names = [
        format!("vmlinuz-{v}"),
        format!("initramfs-{v}.img"),
        "efi".into(),
    ];
    let mut c = captures(
        Some(OPENEULER_2403),
        vec![
            (
                "/etc/default/grub",
                Captured::File(OPENEULER_DEFAULT_GRUB.as_bytes().to_vec()),
            ),
            (
                "/etc/system-release",
                Captured::File(b"openEuler release 24.03 (LTS)\n".to_vec()),
            ),
        ],
    );
    c.dirs = boot_dir(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let boot = detect(&plan, &c);
    assert_eq!(boot.kernel_source, KernelSource::Scan);
    let config = grub_config_for_rootfs(&plan, &boot).unwrap();
    assert_eq!(config.distributor, "openEuler");
    assert_eq!(
        config.cmdline,
        "rd.lvm.lv=openeuler/root crashkernel=512M console=ttyS0"
    );
    let text = render(&plan, &boot);
    assert!(
        text.contains(&format!(
            "\nmenuentry 'openEuler GNU/Linux, with Linux {v}' --class openeuler "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("\tinitrd\t/boot/initramfs-{v}.img\n")),
        "{text}"
    );

    c.files.remove("/etc/system-release");
    let config = grub_config_for_rootfs(&plan, &detect(&plan, &c)).unwrap();
    // Without /etc/system-release the substitution is not run (a warning
    // says so) and the distributor falls back to os-release's NAME.
    assert_eq!(config.distributor, "openEuler");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("/etc/system-release` not run")),
        "{:?}",
        config.warnings
    );
}

/// An entry naming a directory of /boot (`/loader`, `/efi`) or a device
/// node as its kernel or initrd is not a menu entry grub can boot.
#[test]
fn bls_entry_naming_a_directory_is_skipped() {
    let mut c = fedora_captures();
    c.files
        .retain(|k, _| !k.starts_with("/boot/loader/entries/"));
    c.files.extend([
        entry("dir-kernel.conf", "version 9.9\nlinux /loader\n".into()),
        entry(
            "dir-initrd.conf",
            format!("version 9.8\nlinux /vmlinuz-{FC41}\ninitrd /boot/efi\n"),
        ),
        entry(
            "good.conf",
            format!("version {FC40}\nlinux /vmlinuz-{FC40}\n"),
        ),
    ]);
    let boot = detect(&x86_gpt(), &c);
    assert_eq!(boot.kernel_source, KernelSource::Bls);
    let kernels: Vec<&str> = boot.kernels.iter().map(|k| k.kernel.as_str()).collect();
    assert_eq!(kernels, [format!("vmlinuz-{FC40}")], "{:#?}", boot.warnings);
    for what in [
        "dir-kernel.conf: skipped: /loader is not a file",
        "dir-initrd.conf: skipped: /boot/efi is not a file",
    ] {
        assert!(
            boot.warnings.iter().any(|w| w.contains(what)),
            "{what}: {:#?}",
            boot.warnings
        );
    }
    // A symlink in /boot is a file to grub (it follows it).
    let mut c = fedora_captures();
    c.files
        .retain(|k, _| !k.starts_with("/boot/loader/entries/"));
    c.dirs.get_mut("/boot").unwrap().push(DirChild {
        name: "vmlinuz".into(),
        node: NodeType::Symlink,
        symlink_target: Some(format!("vmlinuz-{FC41}")),
    });
    c.files
        .extend([entry("link.conf", "version 1\nlinux /vmlinuz\n".into())]);
    let boot = detect(&x86_gpt(), &c);
    assert_eq!(boot.kernels[0].kernel, "vmlinuz", "{:#?}", boot.warnings);
}
