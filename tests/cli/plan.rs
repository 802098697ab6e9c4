//! `mkimg plan` shows what `mkimg build` will do: `--bootloader` and
//! `--grub` are resolved by the planner for both commands, so the plan
//! prints the boot loader the build writes and refuses what the build
//! refuses, with the same words. Rootless; fast (the build is refused
//! before it reads a rootfs).

use super::{mkimg, stderr, stdout};

#[test]
fn plan_shows_the_boot_loader_and_takes_builds_boot_flags() {
    let default = mkimg(&["plan", "--board", "qemu-aarch64"]);
    assert!(default.status.success(), "{}", stderr(&default));
    assert!(
        stdout(&default).contains("boot: grub, grub.cfg by template where the rootfs's grub looks"),
        "{}",
        stdout(&default)
    );

    let out = mkimg(&[
        "plan",
        "--board",
        "qemu-aarch64",
        "--bootloader",
        "extlinux",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("boot: extlinux"), "{text}");
    assert!(!text.contains("boot: grub"), "{text}");

    let out = mkimg(&[
        "plan",
        "--board",
        "qemu-aarch64",
        "--grub",
        "mkconfig",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["boot"]["loader"], "grub", "{json:#}");
    assert_eq!(json["boot"]["grub"], "mkconfig", "{json:#}");

    let out = mkimg(&[
        "plan",
        "--board",
        "qemu-aarch64",
        "--bootloader",
        "extlinux",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["boot"]["loader"], "extlinux", "{json:#}");
}

/// Before: `plan` had no --bootloader, and `build --bootloader grub` on a
/// board without an ESP was refused after planning, blaming "[boot] loader
/// ... (the default)" though the board says extlinux.
#[test]
fn plan_and_build_refuse_grub_without_an_esp_in_the_same_words() {
    let dir = tempfile::tempdir().unwrap();
    let plan = mkimg(&[
        "plan",
        "--board",
        "qemu-aarch64-uboot",
        "--bootloader",
        "grub",
    ]);
    let build = mkimg(&[
        "build",
        "--board",
        "qemu-aarch64-uboot",
        "--bootloader",
        "grub",
        "--rootfs",
        dir.path().join("never-read.tar").to_str().unwrap(),
        "--output",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let problem = |err: &str| -> String {
        err.lines()
            .find(|l| l.contains("no EFI System Partition"))
            .unwrap_or_else(|| panic!("no ESP problem in:\n{err}"))
            .trim()
            .to_string()
    };
    assert!(!plan.status.success());
    assert!(!build.status.success());
    let (plan_err, build_err) = (stderr(&plan), stderr(&build));
    assert!(
        problem(&plan_err).contains(
            "--bootloader grub, but the board has no EFI System Partition to put GRUB in"
        ),
        "{plan_err}"
    );
    assert!(
        problem(&plan_err).contains("use --bootloader extlinux"),
        "{plan_err}"
    );
    assert_eq!(problem(&plan_err), problem(&build_err), "{build_err}");
    assert!(!dir.path().join("out").exists());

    // The board's own loader plans and would build.
    let plan = mkimg(&["plan", "--board", "qemu-aarch64-uboot"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("boot: extlinux"),
        "{}",
        stdout(&plan)
    );
}
