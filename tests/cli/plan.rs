//! `mkimg plan` shows what `mkimg build` will do: `--bootloader` and
//! `--grub` are resolved by the planner for both commands, so the plan
//! prints the boot loader the build writes and refuses what the build
//! refuses, with the same words. Rootless; fast (the build is refused
//! before it reads a rootfs).

use super::{mkimg, stderr, stdout};
use crate::support::build::Build;

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

/// `plan --rootfs` reads the rootfs once and shows what was detected: the
/// distro, which grub binary (the os-release ID's own vendor directory
/// before Debian's monolithic one), where grub.cfg goes by the binary's
/// prefix, candidates passed over and why; `--json` has it under
/// `detected`. The build puts grub.cfg exactly there.
#[test]
fn plan_with_rootfs_shows_what_was_detected_and_build_follows_it() {
    use crate::support::tarball::{grub_efi_fixture, Tarball};
    let dir = tempfile::tempdir().unwrap();
    let debian = dir.path().join("debian.tar");
    std::fs::write(&debian, Tarball::minimal_riscv64().finish()).unwrap();
    let out = mkimg(&[
        "plan",
        "--board",
        "qemu-riscv64",
        "--rootfs",
        debian.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "grub EFI: /usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi (prefix \"/EFI/debian\") → grub.cfg at ESP:/EFI/debian/grub.cfg",
        "kernel from /boot: vmlinux-6.12.1-riscv64 + initrd.img-6.12.1-riscv64",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }

    // openEuler: its own grub (prefix /EFI/openEuler), and a second vendor
    // binary whose prefix names another partition, passed over.
    let mut spec = Tarball::minimal_riscv64();
    spec.file(
        "etc/os-release",
        b"NAME=\"openEuler\"\nID=\"openEuler\"\nVERSION_ID=\"24.03\"\n",
    )
    .dir("boot/efi/EFI")
    .dir("boot/efi/EFI/openEuler")
    .dir("boot/efi/EFI/other")
    .file(
        "boot/efi/EFI/openEuler/grubriscv64.efi",
        &grub_efi_fixture(0x5064, "/EFI/openEuler"),
    )
    .file(
        "boot/efi/EFI/other/grubriscv64.efi",
        &grub_efi_fixture(0x5064, "(hd0,gpt2)/boot/grub"),
    );
    let openeuler = dir.path().join("openeuler.tar");
    std::fs::write(&openeuler, spec.finish()).unwrap();
    let out = mkimg(&[
        "plan",
        "--board",
        "qemu-riscv64",
        "--rootfs",
        openeuler.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let detected = &json["detected"];
    assert_eq!(detected["os"]["id"], "openEuler", "{detected:#}");
    assert_eq!(detected["family"], "rpm", "{detected:#}");
    assert_eq!(
        detected["grub"]["path"], "/boot/efi/EFI/openEuler/grubriscv64.efi",
        "{detected:#}"
    );
    assert_eq!(
        detected["grub"]["cfg"], "EFI/openEuler/grub.cfg",
        "{detected:#}"
    );
    assert_eq!(
        json["layout"]["disk_size"], 10_737_418_240u64,
        "the plan is still there"
    );

    // Only the binary with the foreign device prefix: refused, saying why.
    let mut spec = Tarball::minimal_riscv64();
    spec.dir("boot/efi/EFI").dir("boot/efi/EFI/other").file(
        "boot/efi/EFI/other/grubriscv64.efi",
        &grub_efi_fixture(0x5064, "(hd0,gpt2)/boot/grub"),
    );
    spec.file(
        "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi",
        &grub_efi_fixture(0x5064, "(memdisk)/boot/grub"),
    );
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, spec.finish()).unwrap();
    let out = mkimg(&[
        "plan",
        "--board",
        "qemu-riscv64",
        "--rootfs",
        bad.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "ESP: the build would fail: the rootfs has no grub EFI binary mkimg can use",
        "names device (hd0,gpt2), which is not the ESP (partition 1)",
        "\"(memdisk)/boot/grub\" is inside the image's own memdisk",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }

    // The build puts grub.cfg where the plan said.
    let out_dir = dir.path().join("out");
    Build::new("qemu-riscv64", &openeuler, &out_dir)
        .format("raw")
        .run();
    let esp = format!("{}@@2097152", out_dir.join("qemu-riscv64.raw").display());
    let listing = crate::support::run::run_tool("mdir", &["-b", "-i", &esp, "::EFI/openEuler"]);
    assert!(
        listing.contains("GRUB.CFG") || listing.contains("grub.cfg"),
        "{listing}"
    );
    let copied = dir.path().join("BOOTRISCV64.EFI");
    crate::support::run::run_tool(
        "mcopy",
        &[
            "-i",
            &esp,
            "::EFI/BOOT/BOOTRISCV64.EFI",
            copied.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&copied).unwrap() == grub_efi_fixture(0x5064, "/EFI/openEuler"),
        "BOOTRISCV64.EFI is not the openEuler binary"
    );
}
