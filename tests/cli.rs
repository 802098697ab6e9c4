//! Unprivileged integration tests of the `mkimg` binary: what a user types,
//! what they see.

#[path = "cli/build.rs"]
mod build;
#[path = "cli/canonical.rs"]
mod canonical;
#[path = "cli/ci_examples.rs"]
mod ci_examples;
#[path = "cli/flash.rs"]
mod flash;
#[path = "cli/formats.rs"]
mod formats;
#[path = "cli/genimage.rs"]
mod genimage;
#[path = "cli/genimage_build.rs"]
mod genimage_build;
#[path = "cli/genimage_fs.rs"]
mod genimage_fs;
#[path = "cli/genimage_opts.rs"]
mod genimage_opts;
#[path = "cli/glayout.rs"]
mod glayout;
#[path = "cli/install.rs"]
mod install;
#[path = "cli/kept_args.rs"]
mod kept_args;
#[path = "cli/mbrext.rs"]
mod mbrext;
#[path = "cli/plan.rs"]
mod plan;
#[path = "cli/repro.rs"]
mod repro;
#[path = "cli/rootdir.rs"]
mod rootdir;
#[path = "cli/tables.rs"]
mod tables;

mod support;

use std::path::Path;

use support::run::{mkimg, stderr, stdout};

#[test]
fn boards_lists_qemu_boards() {
    let out = mkimg(&["boards"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    for (name, arch) in [
        ("qemu-riscv64", "riscv64"),
        ("qemu-aarch64", "aarch64"),
        ("qemu-aarch64-uboot", "aarch64"),
        ("rock3a", "aarch64"),
        ("nezha", "riscv64"),
    ] {
        assert!(rows.contains(&vec![name, arch]), "{name}:\n{text}");
    }
}

#[test]
fn plan_prints_qemu_riscv64_layout() {
    let out = mkimg(&["plan", "--board", "qemu-riscv64"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let esp = text
        .lines()
        .find(|l| l.starts_with("partition 1 'esp'"))
        .expect(&text);
    let cols: Vec<&str> = esp.split_whitespace().collect();
    // region(3 words) start end first last size type...
    assert_eq!(
        &cols[3..8],
        ["2097152", "1075838976", "4096", "2101247", "1G"],
        "{esp}"
    );
    assert!(esp.contains("vfat 0045-5350"), "{esp}");
    assert!(esp.contains("ESP /boot/efi"), "{esp}");
    let root = text
        .lines()
        .find(|l| l.starts_with("partition 2 'rootfs'"))
        .expect(&text);
    assert!(
        root.contains("ext4 78662d6f-706f-6570-6f72-742d726f6f74"),
        "{root}"
    );
    assert!(root.contains("rootfs /"), "{root}");
    assert!(
        text.contains("backup GPT header     10737417728  10737418240"),
        "{text}"
    );
}

#[test]
fn plan_json_holds_bytes() {
    let out = mkimg(&["plan", "--board", "qemu-riscv64", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let layout = &json["layout"];
    assert_eq!(layout["disk_size"], 10u64 << 30);
    assert_eq!(layout["sector_size"], 512);
    let esp = &layout["partitions"][0];
    assert_eq!(esp["start"], 2u64 << 20);
    assert_eq!(esp["size"], 1u64 << 30);
    assert_eq!(esp["filesystem"]["volume_id"], 0x0045_5350);
    let root = &layout["partitions"][1];
    assert_eq!(root["start"], (2u64 << 20) + (1 << 30));
    assert_eq!(
        root["filesystem"]["uuid"],
        "78662d6f-706f-6570-6f72-742d726f6f74"
    );
    assert_eq!(layout["gpt"]["backup_header_lba"], (10u64 << 30) / 512 - 1);
}

#[test]
fn plan_by_path_works_and_errors_cite_location() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-riscv64/board.toml");
    let text = std::fs::read_to_string(src)
        .unwrap()
        .replace("size = \"10G\"", "size = \"10g\"");
    let path = dir.path().join("board.toml");
    std::fs::write(&path, text).unwrap();
    let out = mkimg(&["plan", "--board", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:15:8: ", path.display())), "{err}");
    assert!(err.contains("unit \"g\" is not accepted"), "{err}");
}

#[test]
fn unknown_board_says_how_to_list() {
    let out = mkimg(&["plan", "--board", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`mkimg boards` lists the known boards"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in ["boards", "plan", "inspect", "flash"] {
        let out = mkimg(&[sub, "--help"]);
        assert!(out.status.success());
        assert!(
            stdout(&out).contains("Example:"),
            "{sub} --help lacks an example"
        );
    }
}

/// `register --persist` writes the line the kernel holds into
/// `<sysroot>/etc/binfmt.d` (a temp dir, never the machine's /etc), and
/// `status` then says the entry survives a reboot. Uses the host's riscv64
/// entry (scripts/setup-debian.sh), so `register` finds it already there
/// and changes nothing in the kernel.
#[test]
fn binfmt_register_persist_writes_what_is_registered() {
    use mkimg::host::binfmt::persist::same_registration;
    use mkimg::host::binfmt::{parse_entry, RegisterLine};
    let entry_path = Path::new("/proc/sys/fs/binfmt_misc/qemu-riscv64");
    if !support::tools::require(
        entry_path.exists(),
        "no qemu-riscv64 binfmt entry; run scripts/setup-debian.sh",
    ) {
        return;
    }
    let sysroot = tempfile::tempdir().unwrap();
    let root = sysroot.path().to_str().unwrap();
    let survives = || {
        let out = mkimg(&["binfmt", "status", "riscv64", "--json", "--sysroot", root]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let arch = json["arches"][0].clone();
        (arch["survives_reboot"].clone(), arch["persistent"].clone())
    };
    assert_eq!(
        survives(),
        (serde_json::json!(false), serde_json::Value::Null)
    );

    let out = mkimg(&[
        "binfmt",
        "register",
        "--persist",
        "--sysroot",
        root,
        "riscv64",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = sysroot.path().join("etc/binfmt.d/qemu-riscv64.conf");
    assert!(
        stdout(&out).contains(&format!("registered again at boot by {}", file.display())),
        "{}",
        stdout(&out)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = RegisterLine::parse(lines[0]).unwrap();
    let entry = parse_entry(&std::fs::read_to_string(entry_path).unwrap()).unwrap();
    assert_eq!(line.name, "qemu-riscv64");
    assert_eq!(line.interpreter, entry.interpreter);
    assert_eq!(line.offset, entry.offset);
    assert_eq!((&line.magic, &line.mask), (&entry.magic, &entry.mask));
    assert!(same_registration(&line, &entry), "{line:?} vs {entry:?}");
    assert_eq!(
        survives(),
        (
            serde_json::json!(true),
            serde_json::json!(file.to_str().unwrap())
        )
    );
}

#[test]
fn binfmt_status_reports_registered_arches() {
    // scripts/setup-debian.sh registers riscv64 and aarch64 with the F flag.
    let out = mkimg(&["binfmt", "status", "riscv64", "aarch64", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mounted"], true);
    for arch in json["arches"].as_array().unwrap() {
        assert_eq!(arch["usable_in_chroot"], true, "{arch:#}");
        assert!(arch["flags"].as_str().unwrap().contains('F'), "{arch:#}");
        assert_eq!(arch["interpreter_static"], true, "{arch:#}");
    }
    let native = mkimg(&["binfmt", "status", std::env::consts::ARCH]);
    assert!(
        native.status.success(),
        "the host's own arch needs no entry: {}",
        stderr(&native)
    );
    assert!(stdout(&native).contains("native"), "{}", stdout(&native));
}
