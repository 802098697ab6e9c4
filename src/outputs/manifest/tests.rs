//! manifest.json: golden text for qemu-riscv64 and an MBR board, parsed
//! back to the same value, and the absence of any time but
//! SOURCE_DATE_EPOCH.

use super::{
    listed_sha256, manifest_from_plan, render_manifest, Manifest, ManifestMkconfig, OutputFile,
    RootfsInput,
};
use crate::bootloader::golden::{assert_golden, builtin_plan, plan_from_toml, EXTLINUX_BOARD};
use crate::plan::Plan;

fn manifest(plan: &Plan) -> Manifest {
    let mut m = manifest_from_plan(
        plan,
        1_700_000_000,
        vec![
            OutputFile {
                file: format!("{}.qcow2", plan.board.image),
                size: 1_234_567_890,
                sha256: "ab".repeat(32),
            },
            OutputFile {
                file: "start_vm.sh".into(),
                size: 1234,
                sha256: "cd".repeat(32),
            },
        ],
        RootfsInput {
            file: "rootfs.tar.zst".into(),
            sha256: "ef".repeat(32),
        },
    );
    // The golden files must not change with every release.
    assert_eq!(m.mkimg_version, env!("CARGO_PKG_VERSION"));
    m.mkimg_version = "VERSION".into();
    m
}

#[test]
fn qemu_riscv64_manifest() {
    let mut m = manifest(&builtin_plan("qemu-riscv64"));
    // As a `--grub mkconfig` build over the tree records it.
    m.grub_mkconfig = Some(ManifestMkconfig {
        program: "/usr/sbin/grub-mkconfig".into(),
        via: "tree".into(),
    });
    let text = render_manifest(&m);
    assert_golden("manifest.qemu-riscv64.json", &text);
    assert!(text.ends_with("}\n"));
    let back: Manifest = serde_json::from_str(&text).unwrap();
    assert_eq!(back, m);
    // Top-level keys in declaration order.
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once('"').map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "mkimg_version",
            "board",
            "seed",
            "source_date_epoch",
            "layout",
            "outputs",
            "rootfs",
            "grub_mkconfig"
        ]
    );
}

#[test]
fn mbr_board_manifest() {
    let m = manifest(&plan_from_toml(EXTLINUX_BOARD));
    let text = render_manifest(&m);
    assert_golden("manifest.sbc-arm64.json", &text);
    assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    assert!(text.contains("\"mbr_signature\": \"0x6d6b696d\""));
    assert!(text.contains("\"mbr_type\": \"0x83\""));
    assert!(text.contains("\"disk_guid\": null"));
    assert!(text.contains("\"grub_mkconfig\": null"));
}

#[test]
fn same_inputs_same_bytes_and_no_clock() {
    let plan = builtin_plan("qemu-riscv64");
    let a = render_manifest(&manifest(&plan));
    let b = render_manifest(&manifest(&plan));
    assert_eq!(a, b);
    assert!(
        !a.contains("time"),
        "no timestamp field but source_date_epoch"
    );
    assert_eq!(a.matches("1700000000").count(), 1);
}

#[test]
fn listed_files_accepts_plain_names_only() {
    use super::{listed_files, ListedFilesError};
    let text = |file: &str| {
        serde_json::json!({"outputs": [{"file": "a.qcow2"}, {"file": file}]}).to_string()
    };
    assert_eq!(
        listed_files(&text("start_vm.sh")).unwrap(),
        ["a.qcow2", "start_vm.sh"]
    );
    for bad in [
        "../victim",
        "a/b",
        "/etc/passwd",
        "",
        ".",
        "..",
        "manifest.json",
        "a\0b",
    ] {
        assert!(
            matches!(listed_files(&text(bad)), Err(ListedFilesError::NotPlainName(n)) if n == bad),
            "{bad:?}"
        );
    }
    assert!(matches!(
        listed_files("{\"board\": 1}"),
        Err(ListedFilesError::Json(_))
    ));
}

#[test]
fn listed_sha256_finds_a_name_in_sha256sum_format() {
    let a = "a".repeat(64);
    let b = "B".repeat(64);
    let text = format!("{a}  x.raw\n{b} *x.raw.bmap\nnot a line\n{a}  x.raw.zst\n");
    assert_eq!(listed_sha256(&text, "x.raw"), Some(a.clone()));
    assert_eq!(listed_sha256(&text, "x.raw.bmap"), Some("b".repeat(64)));
    assert_eq!(listed_sha256(&text, "x.raw.zst"), Some(a));
    assert_eq!(listed_sha256(&text, "x"), None);
    assert_eq!(listed_sha256(&format!("{}  é", "é".repeat(32)), "é"), None);
}
