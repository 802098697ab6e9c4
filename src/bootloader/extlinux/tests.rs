//! extlinux.conf: golden text for an SBC with a separate /boot and for
//! qemu-aarch64 (/boot on the root filesystem, Debian's DTB directory); a
//! structural check standing in for U-Boot's parser (every label has kernel
//! and append, every file named exists in the /boot listing, `default`
//! names a label, only keywords U-Boot's pxe parser knows); the refusals.

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
