//! extlinux.conf: golden text for an SBC with a separate /boot and for
//! qemu-aarch64 (/boot on the root filesystem, Debian's DTB directory); a
//! structural check (every label has kernel and append, every file named
//! exists in the /boot listing, `default` names a label, only keywords
//! U-Boot's pxe parser knows); U-Boot itself reading the file in QEMU; the
//! refusals.

use super::{extlinux_config_from_plan, render_extlinux, BOOT_DTBS_FDTDIR, DEBIAN_FDTDIR};
use crate::bootloader::golden::{assert_golden, builtin_plan, plan_from_toml, EXTLINUX_BOARD};

fn arm64_boot() -> Vec<String> {
    [
        "vmlinuz-6.1.0-28-arm64",
        "initrd.img-6.1.0-28-arm64",
        "vmlinuz-6.12.48+deb13-arm64",
        "initrd.img-6.12.48+deb13-arm64",
        "config-6.12.48+deb13-arm64",
        "dtbs",
        "extlinux",
    ]
    .map(str::to_string)
    .to_vec()
}

/// Problems U-Boot's sysboot would have with `text`, given the files in
/// /boot and the prefix under which U-Boot sees them.
fn check_extlinux(text: &str, boot: &[String], prefix: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut labels: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut default = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let value = value.trim().to_string();
        match (key, labels.last_mut()) {
            ("label", _) => labels.push((value, Vec::new())),
            ("default", None) => default = Some(value),
            ("menu" | "prompt" | "timeout", None) => {}
            ("menu" | "kernel" | "linux" | "initrd" | "fdtdir" | "fdt" | "append", Some(l)) => {
                l.1.push((key.to_string(), value))
            }
            _ => problems.push(format!("line {}: unexpected {line:?}", n + 1)),
        }
    }
    let exists = |path: &str| {
        path.strip_prefix(prefix)
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|name| boot.iter().any(|b| b == name))
    };
    for (name, keys) in &labels {
        let get = |k: &str| keys.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        match get("kernel").or(get("linux")) {
            Some(kernel) if exists(kernel) => {}
            other => problems.push(format!("label {name}: kernel {other:?} not in /boot")),
        }
        if let Some(initrd) = get("initrd") {
            if !exists(initrd) {
                problems.push(format!("label {name}: initrd {initrd} not in /boot"));
            }
        }
        if !get("append").is_some_and(|a| a.contains("root=")) {
            problems.push(format!("label {name}: no append with root="));
        }
    }
    if labels.is_empty() {
        problems.push("no label".into());
    }
    if !labels
        .iter()
        .any(|(name, _)| Some(name) == default.as_ref())
    {
        problems.push(format!("default {default:?} names no label"));
    }
    problems
}

#[test]
fn sbc_with_separate_boot() {
    let plan = plan_from_toml(EXTLINUX_BOARD);
    let config = extlinux_config_from_plan(&plan, &arm64_boot(), Some(BOOT_DTBS_FDTDIR)).unwrap();
    assert_eq!(config.boot_prefix, "");
    assert_eq!(config.fdtdir.as_deref(), Some("/dtbs/{version}/"));
    assert_eq!(config.cmdline, "console=ttyS2,1500000");
    let text = render_extlinux(&config).unwrap();
    assert_golden("extlinux.conf.sbc-arm64", &text);
    let problems = check_extlinux(&text, &arm64_boot(), "");
    assert!(problems.is_empty(), "{problems:#?}\n{text}");
    // Newest first, and the first is the default.
    let labels: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("\tkernel "))
        .collect();
    assert_eq!(
        labels,
        [
            "\tkernel /vmlinuz-6.12.48+deb13-arm64",
            "\tkernel /vmlinuz-6.1.0-28-arm64"
        ]
    );
    assert!(text.contains("\ndefault l0\n"));
}

#[test]
fn qemu_aarch64_boot_on_root_with_debian_dtbs() {
    let plan = builtin_plan("qemu-aarch64");
    let config = extlinux_config_from_plan(&plan, &arm64_boot(), Some(DEBIAN_FDTDIR)).unwrap();
    let text = render_extlinux(&config).unwrap();
    assert_golden("extlinux.conf.qemu-aarch64", &text);
    assert!(text.contains("\tfdtdir /usr/lib/linux-image-6.12.48+deb13-arm64/\n"));
    assert!(text.contains(
        "\tappend root=UUID=78662d6f-706f-6570-6f72-742d726f6f74 rootwait ro console=ttyAMA0\n"
    ));
    let problems = check_extlinux(&text, &arm64_boot(), "/boot");
    assert!(problems.is_empty(), "{problems:#?}\n{text}");
}

/// The check is not vacuous.
#[test]
fn check_catches_missing_files_and_keys() {
    let plan = plan_from_toml(EXTLINUX_BOARD);
    let config = extlinux_config_from_plan(&plan, &arm64_boot(), None).unwrap();
    let text = render_extlinux(&config).unwrap();
    assert!(!text.contains("fdtdir"), "None leaves fdtdir out");
    let only_new = ["vmlinuz-6.12.48+deb13-arm64".to_string()];
    let problems = check_extlinux(&text, &only_new, "");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let broken = text
        .replace("\tappend", "\tapend")
        .replace("default l0", "default l9");
    let problems = check_extlinux(&broken, &arm64_boot(), "");
    assert!(
        problems.iter().any(|p| p.contains("unexpected")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("no append")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("default")),
        "{problems:#?}"
    );
}

#[test]
fn unreachable_fdtdir_and_missing_kernel_are_refused() {
    let plan = plan_from_toml(EXTLINUX_BOARD);
    let err = extlinux_config_from_plan(&plan, &arm64_boot(), Some(DEBIAN_FDTDIR)).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("fdtdir /usr/lib/linux-image-{version}/ is outside /boot"),
        "{text}"
    );
    assert!(text.contains("/boot/dtbs/{version}/"), "{text}");
    let err = extlinux_config_from_plan(&plan, &["dtbs".to_string()], None).unwrap_err();
    assert!(format!("{err:#}").contains("no kernel in /boot"), "{err:#}");
    assert!(format!("{err:#}").contains("/boot holds: dtbs"), "{err:#}");
}

/// The real parser: U-Boot (Debian's u-boot-qemu, qemu_arm64) boots a disk
/// whose bootable MBR partition holds the rendered extlinux.conf and a
/// fake kernel and initrd, lists our menu and fetches our exact paths
/// (newest kernel first). The fake kernel then fails its image check,
/// which is where the test stops.
#[test]
fn u_boot_reads_the_menu_and_fetches_our_paths() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use crate::disk::gpt::test_tools::run_tool;
    use crate::host::cmd::Cmd;
    use crate::host::vm::watch::watch;
    use crate::test_tools::find_tool;

    let tools: Option<Vec<_>> = ["qemu-system-aarch64", "sfdisk", "mkfs.vfat", "mmd", "mcopy"]
        .into_iter()
        .map(find_tool)
        .collect();
    let Some([qemu, sfdisk, mkfs, mmd, mcopy]) = tools.as_deref() else {
        return;
    };
    let u_boot = std::path::Path::new("/usr/lib/u-boot/qemu_arm64/u-boot.bin");
    if !crate::test_tools::have_file(u_boot, "u-boot-qemu") {
        return;
    }

    let plan = plan_from_toml(EXTLINUX_BOARD);
    let config = extlinux_config_from_plan(&plan, &arm64_boot(), Some(BOOT_DTBS_FDTDIR)).unwrap();
    let text = render_extlinux(&config).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    let mut child = Command::new(sfdisk)
        .args(["-q", img.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=79872, type=c, bootable\n")
        .unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk failed");
    // 79872 sectors = 39936 KiB blocks, at 1 MiB.
    run_tool(
        mkfs,
        &[
            "-n",
            "BOOT",
            "--offset",
            "2048",
            img.to_str().unwrap(),
            "39936",
        ],
    );
    let part = format!("{}@@1M", img.display());
    run_tool(mmd, &["-i", &part, "::/extlinux"]);
    let conf = dir.path().join("extlinux.conf");
    std::fs::write(&conf, &text).unwrap();
    run_tool(
        mcopy,
        &[
            "-i",
            &part,
            conf.to_str().unwrap(),
            "::/extlinux/extlinux.conf",
        ],
    );
    for name in [
        "vmlinuz-6.12.48+deb13-arm64",
        "initrd.img-6.12.48+deb13-arm64",
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, b"not really a kernel\n").unwrap();
        run_tool(
            mcopy,
            &["-i", &part, file.to_str().unwrap(), &format!("::/{name}")],
        );
    }

    let cmd = Cmd::new("running U-Boot in QEMU", qemu)
        .args([
            "-M",
            "virt",
            "-cpu",
            "cortex-a72",
            "-m",
            "512M",
            "-nographic",
            "-nic",
            "none",
        ])
        .arg("-bios")
        .arg(u_boot)
        .arg("-drive")
        .arg(format!("file={},format=raw,if=none,id=hd0", img.display()))
        .args(["-device", "virtio-blk-pci,drive=hd0", "-snapshot"]);
    let last = "Retrieving file: /vmlinuz-6.12.48+deb13-arm64";
    let watched = watch(
        cmd,
        &[("kernel fetched", &[last])],
        Duration::from_secs(120),
        &mut |_| {},
    );
    let out = &watched.text;
    assert!(
        watched.finished(),
        "U-Boot never fetched the kernel ({:?}):\n{out}",
        watched.ending
    );
    let expected = [
        "Retrieving file: /extlinux/extlinux.conf",
        "sbc-arm64 boot menu",
        "1:\tLinux 6.12.48+deb13-arm64",
        "2:\tLinux 6.1.0-28-arm64",
        "Retrieving file: /initrd.img-6.12.48+deb13-arm64",
        last,
    ];
    let mut from = 0;
    for line in expected {
        match out[from..].find(line) {
            Some(at) => from += at + line.len(),
            None => panic!("U-Boot output lacks {line:?} (in this order):\n{out}"),
        }
    }
}
