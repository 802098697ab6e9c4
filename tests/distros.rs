//! openEuler- and Fedora-layout rootfs on the stock boards (issue 14): the
//! layouts are simulated from Debian trixie packages
//! (tests/support/layouts.rs), since no RPM repository is reachable here.
//!
//! Slow suite: runs only with MKIMG_SLOW_TESTS=1 (CI sets it); the
//! `--grub mkconfig` cases run the rootless tree path, and the comparisons
//! with the mount path (same grub.cfg byte for byte, same disk) need root. The Debian rootfs comes from
//! $MKIMG_TEST_ROOTFS_RISCV64 / $MKIMG_TEST_ROOTFS_AARCH64
//! (scripts/prefetch-rootfs.sh), else `mkimg rootfs --board qemu-<arch>`.
//! Run it with `cargo test --release --test distros`.
//!
//! Per case, one build and one boot (one at a time: they share the CPU):
//! - grub boards (qemu-riscv64, qemu-aarch64; template and mkconfig): the
//!   ESP's grub.cfg is at `EFI/<vendor>/grub.cfg`, where the layout's grub
//!   image looks (its prefix `/EFI/<vendor>`), and `EFI/BOOT/BOOT<ARCH>.EFI`
//!   is that image byte for byte;
//! - qemu-aarch64-uboot (extlinux, template): extlinux.conf names the
//!   layout's `vmlinuz-<v>` and `initramfs-<v>.img`;
//! - every case boots to a root login and prints the os-release ID; in the
//!   Fedora layout `/proc/cmdline` carries the BLS entry's marker (Debian's
//!   grub has no `blscfg`, so a mode that ignores BLS fails here) and the
//!   image's `root=UUID=…`, not the entry's zeros.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use support::layouts::{
    bls_entry, grub_efi_path, layout_kernel_version, read_member, rpm_layout, write_layout, Layout,
    BLS_MARKER, BOGUS_ROOT,
};
use support::rootfs::board_rootfs;
use support::run::{run_tool, text};
use support::tools::{have_tools, require_root};

/// Builds and boots run one at a time.
static SLOW: Mutex<()> = Mutex::new(());

fn slow(test: &str) -> bool {
    if std::env::var("MKIMG_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIP: {test} needs MKIMG_SLOW_TESTS=1");
        return false;
    }
    have_tools(&["grub-mkimage", "mdir", "mcopy", "debugfs"])
}

fn mkimg() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mkimg"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null());
    command
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grub {
    Template,
    /// `--grub mkconfig`, the default rootless tree path.
    Mkconfig,
    /// `--grub mkconfig --mkconfig-via mount` (root).
    MkconfigMount,
}

struct Built {
    dir: tempfile::TempDir,
    out: PathBuf,
    raw: PathBuf,
    plan: serde_json::Value,
    layout_tar: PathBuf,
}

impl Built {
    /// Where the partition mounted at `mount` starts, in bytes.
    fn start_of(&self, mount: &str) -> u64 {
        let parts = self.plan["layout"]["partitions"].as_array().unwrap();
        let part = parts
            .iter()
            .find(|p| p["mount"]["path"] == mount)
            .unwrap_or_else(|| panic!("no partition mounted at {mount}"));
        part["start"].as_u64().unwrap()
    }

    /// The filesystem UUID of the root partition, from the plan.
    fn root_uuid(&self) -> String {
        let parts = self.plan["layout"]["partitions"].as_array().unwrap();
        let root = parts.iter().find(|p| p["mount"]["path"] == "/").unwrap();
        root["filesystem"]["uuid"].as_str().unwrap().to_string()
    }

    /// The ESP as mtools names it: `IMAGE@@OFFSET`.
    fn esp(&self) -> String {
        format!("{}@@{}", self.raw.display(), self.start_of("/boot/efi"))
    }
}

/// `mkimg build --board BOARD --rootfs <layout tarball> --format raw`.
fn build(board: &str, arch: &str, layout: Layout, grub: Grub) -> Built {
    let layout_tar = rpm_layout(&board_rootfs(arch), arch, layout);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut command = mkimg();
    command
        .args(["build", "--board", board, "--format", "raw", "--rootfs"])
        .arg(&layout_tar)
        .arg("-o")
        .arg(&out);
    match grub {
        Grub::Template => {}
        Grub::Mkconfig => {
            command.args(["--grub", "mkconfig"]);
        }
        Grub::MkconfigMount => {
            command.args(["--grub", "mkconfig", "--mkconfig-via", "mount"]);
        }
    }
    let started = Instant::now();
    let result = command.output().unwrap();
    assert!(
        result.status.success(),
        "build {board} {layout:?} {grub:?}: {}",
        text(&result.stderr)
    );
    eprintln!(
        "build {board} {layout:?} {grub:?}: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let plan = mkimg()
        .args(["plan", "--board", board, "--json"])
        .output()
        .unwrap();
    assert!(plan.status.success(), "plan: {}", text(&plan.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let image = plan["board"]["image"].as_str().unwrap();
    let raw = out.join(format!("{image}.raw"));
    Built {
        dir,
        out,
        raw,
        plan,
        layout_tar,
    }
}

/// The ESP holds grub.cfg where the layout's grub looks, and that grub as
/// the removable-media boot file.
fn check_esp(built: &Built, arch: &str, layout: Layout) {
    let esp = built.esp();
    let vendor = layout.vendor();
    let listing = run_tool("mdir", &["-i", &esp, "-/", "-b", "::/"]);
    assert!(
        listing.contains(&format!("::/EFI/{vendor}/grub.cfg")),
        "no EFI/{vendor}/grub.cfg on the ESP:\n{listing}"
    );
    assert!(
        !listing.contains("::/EFI/debian/"),
        "Debian's grub path on an {layout:?}-layout ESP:\n{listing}"
    );
    let boot_file = match arch {
        "riscv64" => "BOOTRISCV64.EFI",
        _ => "BOOTAA64.EFI",
    };
    let copy = built.dir.path().join(boot_file);
    run_tool(
        "mcopy",
        &[
            "-n",
            "-i",
            &esp,
            &format!("::EFI/BOOT/{boot_file}"),
            copy.to_str().unwrap(),
        ],
    );
    let on_esp = std::fs::read(&copy).unwrap();
    let efi_path = grub_efi_path(layout, arch);
    let in_layout = read_member(&built.layout_tar, &efi_path)
        .unwrap_or_else(|| panic!("{efi_path} is not in the layout tarball"));
    assert!(
        on_esp == in_layout,
        "EFI/BOOT/{boot_file} ({} bytes) is not the layout's {efi_path} ({} bytes)",
        on_esp.len(),
        in_layout.len()
    );
}

/// Boot to a root login; check the os-release ID and, for Fedora, that the
/// BLS entry's options reached the kernel with the image's root.
fn boot_and_check(built: &Built, layout: Layout) {
    let port = 20000 + (std::process::id() % 20000);
    let started = Instant::now();
    let output = mkimg()
        .arg("boot")
        .arg(&built.out)
        .args(["--timeout", "900", "--login", "root:root"])
        .args(["--run", "cat /proc/cmdline; . /etc/os-release; echo $ID"])
        .env("MKIMG_SSH_PORT", port.to_string())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "boot: {stderr}\n{stdout}");
    eprintln!("boot: {:.1}s", started.elapsed().as_secs_f64());
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines.last(), Some(&layout.vendor()), "{stdout}");
    let cmdline = lines.first().copied().unwrap_or_default();
    let root = format!("root=UUID={}", built.root_uuid());
    assert!(cmdline.contains(&root), "{root} missing: {stdout}");
    if layout == Layout::Fedora {
        assert!(
            cmdline.contains(BLS_MARKER),
            "{BLS_MARKER} missing: {stdout}"
        );
        assert!(
            !cmdline.contains(BOGUS_ROOT),
            "the BLS entry's root: {stdout}"
        );
    }
}

fn grub_case(test: &str, arch: &str, layout: Layout, grub: Grub) {
    if !slow(test) || (grub == Grub::MkconfigMount && !require_root(test)) {
        return;
    }
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let board = format!("qemu-{arch}");
    let built = build(&board, arch, layout, grub);
    check_esp(&built, arch, layout);
    if layout == Layout::Fedora {
        check_bls_entry(&built, &board);
    }
    boot_and_check(&built, layout);
}

/// The image's own BLS entry boots this image: the distro's text with its
/// `options` made `<its words but root=/ro> <the board's console>
/// root=UUID=<the plan's> ro`, the other lines byte for byte
/// (`bootloader::bls_options`): a grub with blscfg reads it as it is.
fn check_bls_entry(built: &Built, board: &str) {
    let version = layout_kernel_version(&built.layout_tar);
    let machine_id = text(&read_member(&built.layout_tar, "etc/machine-id").unwrap());
    let entry = format!("/boot/loader/entries/{}-{version}.conf", machine_id.trim());
    let root_fs = format!("{}?offset={}", built.raw.display(), built.start_of("/"));
    let found = run_tool("debugfs", &["-R", &format!("cat {entry}"), &root_fs]);
    let console = built.plan["board"]["console"].as_str().unwrap();
    let expected = bls_entry(&version).replace(
        &format!("options {BOGUS_ROOT} ro {BLS_MARKER}\n"),
        &format!(
            "options {BLS_MARKER} console={console} root=UUID={} ro\n",
            built.root_uuid()
        ),
    );
    assert_ne!(
        expected,
        bls_entry(&version),
        "the layout's options line moved"
    );
    assert_eq!(found, expected, "{board}: {entry} in the image");
}

fn extlinux_case(test: &str, layout: Layout) {
    if !slow(test) {
        return;
    }
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let built = build("qemu-aarch64-uboot", "aarch64", layout, Grub::Template);
    let root = format!("{}?offset={}", built.raw.display(), built.start_of("/"));
    let conf = run_tool(
        "debugfs",
        &["-R", "cat /boot/extlinux/extlinux.conf", &root],
    );
    let version = layout_kernel_version(&built.layout_tar);
    for name in [
        format!("/vmlinuz-{version}"),
        format!("/initramfs-{version}.img"),
    ] {
        assert!(conf.contains(&name), "{name} missing:\n{conf}");
    }
    if layout == Layout::Fedora {
        assert!(conf.contains(BLS_MARKER), "{BLS_MARKER} missing:\n{conf}");
        assert!(!conf.contains(BOGUS_ROOT), "the BLS entry's root:\n{conf}");
    }
    boot_and_check(&built, layout);
}

#[test]
fn riscv64_openeuler_template() {
    grub_case(
        "riscv64_openeuler_template",
        "riscv64",
        Layout::OpenEuler,
        Grub::Template,
    );
}

#[test]
fn riscv64_openeuler_mkconfig() {
    grub_case(
        "riscv64_openeuler_mkconfig",
        "riscv64",
        Layout::OpenEuler,
        Grub::Mkconfig,
    );
}

#[test]
fn riscv64_fedora_template() {
    grub_case(
        "riscv64_fedora_template",
        "riscv64",
        Layout::Fedora,
        Grub::Template,
    );
}

#[test]
fn riscv64_fedora_mkconfig() {
    grub_case(
        "riscv64_fedora_mkconfig",
        "riscv64",
        Layout::Fedora,
        Grub::Mkconfig,
    );
}

#[test]
fn aarch64_openeuler_template() {
    grub_case(
        "aarch64_openeuler_template",
        "aarch64",
        Layout::OpenEuler,
        Grub::Template,
    );
}

#[test]
fn aarch64_openeuler_mkconfig() {
    grub_case(
        "aarch64_openeuler_mkconfig",
        "aarch64",
        Layout::OpenEuler,
        Grub::Mkconfig,
    );
}

#[test]
fn aarch64_fedora_template() {
    grub_case(
        "aarch64_fedora_template",
        "aarch64",
        Layout::Fedora,
        Grub::Template,
    );
}

#[test]
fn aarch64_fedora_mkconfig() {
    grub_case(
        "aarch64_fedora_mkconfig",
        "aarch64",
        Layout::Fedora,
        Grub::Mkconfig,
    );
}

/// The layout's grub.cfg from the rootless tree path and from the mount
/// path (the real grub-probe over the loop-mounted root) is the same, byte
/// for byte, and so is the disk.
fn tree_equals_mount(test: &str, layout: Layout) {
    if !slow(test) || !require_root(test) {
        return;
    }
    let _one_at_a_time = SLOW.lock().unwrap_or_else(|e| e.into_inner());
    let tree = build("qemu-riscv64", "riscv64", layout, Grub::Mkconfig);
    let mount = build("qemu-riscv64", "riscv64", layout, Grub::MkconfigMount);
    let cfg = |built: &Built| {
        let copy = built.dir.path().join("grub.cfg");
        let from = format!("::EFI/{}/grub.cfg", layout.vendor());
        run_tool(
            "mcopy",
            &["-n", "-i", &built.esp(), &from, copy.to_str().unwrap()],
        );
        std::fs::read(copy).unwrap()
    };
    let tree_cfg = cfg(&tree);
    assert!(
        tree_cfg == cfg(&mount),
        "{layout:?}: the grub.cfg of the tree and mount paths differ"
    );
    assert!(text(&tree_cfg).contains(&format!("root=UUID={}", tree.root_uuid())));
    let manifest = |built: &Built| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(built.out.join("manifest.json")).unwrap()).unwrap()
    };
    let (tree, mount) = (manifest(&tree), manifest(&mount));
    assert_eq!(
        tree["outputs"], mount["outputs"],
        "{layout:?}: the images differ"
    );
    assert_eq!(
        (
            &tree["grub_mkconfig"]["via"],
            &mount["grub_mkconfig"]["via"]
        ),
        (&"tree".into(), &"mount".into())
    );
    assert_eq!(tree["grub_mkconfig"]["program"], "/usr/sbin/grub2-mkconfig");
}

#[test]
fn riscv64_openeuler_mkconfig_tree_equals_mount() {
    tree_equals_mount(
        "riscv64_openeuler_mkconfig_tree_equals_mount",
        Layout::OpenEuler,
    );
}

#[test]
fn riscv64_fedora_mkconfig_tree_equals_mount() {
    tree_equals_mount("riscv64_fedora_mkconfig_tree_equals_mount", Layout::Fedora);
}

#[test]
fn uboot_aarch64_openeuler_extlinux() {
    extlinux_case("uboot_aarch64_openeuler_extlinux", Layout::OpenEuler);
}

#[test]
fn uboot_aarch64_fedora_extlinux() {
    extlinux_case("uboot_aarch64_fedora_extlinux", Layout::Fedora);
}

/// The layout tarballs themselves (riscv64): GNU tar reads them, the paths
/// moved, the grub image carries its prefix, the BLS entry has Fedora's
/// shape, and a fresh build is byte for byte the cached one.
#[test]
fn layout_tarballs_are_in_shape_and_reproducible() {
    if !slow("layout_tarballs_are_in_shape_and_reproducible") {
        return;
    }
    let debian = board_rootfs("riscv64");
    for layout in [Layout::OpenEuler, Layout::Fedora] {
        let tar = rpm_layout(&debian, "riscv64", layout);
        let listing = run_tool("tar", &["-tf", tar.to_str().unwrap()]);
        let names: Vec<&str> = listing
            .lines()
            .map(|l| l.trim_start_matches("./").trim_end_matches('/'))
            .collect();
        let version = layout_kernel_version(&tar);
        let vendor = layout.vendor();
        for want in [
            format!("boot/vmlinuz-{version}"),
            format!("boot/initramfs-{version}.img"),
            "boot/efi".to_string(),
            format!("boot/efi/EFI/{vendor}"),
            grub_efi_path(layout, "riscv64"),
            "usr/sbin/grub2-mkconfig".to_string(),
            "usr/sbin/grub-probe".to_string(),
            "boot/grub2/unicode.pf2".to_string(),
            "etc/system-release".to_string(),
            format!("etc/{vendor}-release"),
            "usr/lib/grub/riscv64-efi/linux.mod".to_string(),
        ] {
            assert!(names.contains(&want.as_str()), "{layout:?}: no {want}");
        }
        for gone in [
            format!("boot/vmlinux-{version}"),
            format!("boot/initrd.img-{version}"),
            "vmlinuz".to_string(),
            "initrd.img".to_string(),
            "initrd.img.old".to_string(),
            "usr/sbin/grub-mkconfig".to_string(),
            "boot/grub".to_string(),
            "usr/lib/grub/riscv64-efi/monolithic".to_string(),
            "etc/grub.d/05_debian_theme".to_string(),
        ] {
            assert!(
                !names.contains(&gone.as_str()),
                "{layout:?}: {gone} is left"
            );
        }
        assert!(!listing.contains("/monolithic/"), "{layout:?}");
        let efi = read_member(&tar, &grub_efi_path(layout, "riscv64")).unwrap();
        let prefix = format!("/EFI/{vendor}\0");
        assert!(
            efi.windows(prefix.len()).any(|w| w == prefix.as_bytes()),
            "{layout:?}: the grub image does not carry the prefix /EFI/{vendor}"
        );
        let os_release = read_member(&tar, "usr/lib/os-release").unwrap();
        assert!(
            text(&os_release).contains(&format!("ID={}\n", os_id_value(layout))),
            "{}",
            text(&os_release)
        );
        if layout == Layout::Fedora {
            let machine_id = text(&read_member(&tar, "etc/machine-id").unwrap());
            let entry = format!("boot/loader/entries/{}-{version}.conf", machine_id.trim());
            let bls = read_member(&tar, &entry).unwrap_or_else(|| panic!("no {entry}"));
            assert_eq!(text(&bls), bls_entry(&version));
        }
    }
    // Reproducible: a fresh build is the cached one, byte for byte (and a
    // recipe change without a RECIPE bump shows up here).
    let fresh = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let started = Instant::now();
    write_layout(&debian, "riscv64", Layout::OpenEuler, fresh.as_file());
    eprintln!(
        "riscv64 openEuler layout: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let cached = rpm_layout(&debian, "riscv64", Layout::OpenEuler);
    run_tool(
        "cmp",
        &[fresh.path().to_str().unwrap(), cached.to_str().unwrap()],
    );
}

/// How os-release writes the layout's ID.
fn os_id_value(layout: Layout) -> &'static str {
    match layout {
        Layout::OpenEuler => "\"openEuler\"",
        Layout::Fedora => "fedora",
    }
}
