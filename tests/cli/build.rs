//! `mkimg build` on small synthetic rootfs tarballs: the must-fail cases
//! (each asserting its message and that nothing is published) and the edit
//! that must replace, not follow, a symlink. Rootless; fast.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{mkimg, stderr, tool_available};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elf")
        .join(name);
    let mut bytes = fs::read(path).unwrap();
    bytes.resize(4096, 0);
    bytes
}

/// A tarball builder for small rootfs trees.
struct TarSpec {
    builder: tar::Builder<Vec<u8>>,
}

impl TarSpec {
    /// A minimal riscv64-looking rootfs: an ELF /usr/bin/dash, a kernel and
    /// initrd in /boot, Debian's grub EFI path, /boot/efi.
    fn rootfs(elf: &str) -> Self {
        let mut spec = TarSpec {
            builder: tar::Builder::new(Vec::new()),
        };
        for dir in [
            "etc",
            "usr",
            "usr/bin",
            "boot",
            "boot/efi",
            "usr/lib",
            "usr/lib/grub",
            "usr/lib/grub/riscv64-efi",
            "usr/lib/grub/riscv64-efi/monolithic",
        ] {
            spec.dir(dir);
        }
        spec.file("usr/bin/dash", &fixture(elf));
        spec.file("boot/vmlinux-6.12.1-riscv64", b"kernel");
        spec.file("boot/initrd.img-6.12.1-riscv64", b"initrd");
        spec.file(
            "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi",
            b"MZ grub",
        );
        spec.file("etc/hosts", b"127.0.0.1\tlocalhost\n");
        spec
    }

    fn dir(&mut self, path: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        self.builder
            .append_data(&mut h, path, std::io::empty())
            .unwrap();
    }

    fn file(&mut self, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        self.builder.append_data(&mut h, path, data).unwrap();
    }

    /// Raw name, bypassing the tar crate's own path checks.
    fn raw_file(&mut self, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
    }

    fn symlink(&mut self, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        self.builder.append_link(&mut h, path, target).unwrap();
    }

    fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Build and return (success, stderr).
    fn build(&self, board: &str, rootfs: &Path) -> (bool, String) {
        let out = self.out();
        let result = mkimg(&[
            "build",
            "--board",
            board,
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--format",
            "raw",
            "-o",
            out.to_str().unwrap(),
        ]);
        (result.status.success(), stderr(&result))
    }

    fn assert_nothing_published(&self) {
        let leftovers: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n == "out" || n.starts_with(".out"))
            .collect();
        assert!(leftovers.is_empty(), "published or staged: {leftovers:?}");
    }
}

/// A copy of qemu-riscv64 with a small disk (root partition 100 MiB).
fn small_board(case: &Case) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-riscv64/board.toml");
    let text = fs::read_to_string(src)
        .unwrap()
        .replace("size = \"10G\"", "size = \"160M\"")
        .replace("size = \"1G\"", "size = \"32M\"")
        .replace("/usr/share/qemu-efi-riscv64/", "/nonexistent-firmware/")
        .replace("[firmware]", "[firmware.unused]");
    let text = text.split("[firmware.unused]").next().unwrap().to_string()
        + "\n[qemu]\nmachine = \"virt\"\n";
    let dir = case.dir.path().join("board");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("board.toml"), text).unwrap();
    dir.join("board.toml")
}

#[test]
fn rootfs_larger_than_partition_fails_before_writing() {
    if !tool_available("mke2fs") {
        return;
    }
    let case = Case::new();
    let mut spec = TarSpec::rootfs("dash-riscv64.elfhdr");
    // 200 MiB of incompressible-ish data cannot fit a ~126 MiB root.
    let big: Vec<u8> = (0..200u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    spec.file("srv/big.bin", &big);
    let tar = case.write("rootfs.tar", &spec.finish());
    let board = small_board(&case);
    let (ok, err) = case.build(board.to_str().unwrap(), &tar);
    assert!(!ok);
    // The rootfs pass refuses the member from its header, before writing it.
    assert!(err.contains("does not fit partition 'rootfs'"), "{err}");
    assert!(
        err.contains("\"/srv/big.bin\" needs 209715200 bytes"),
        "{err}"
    );
    assert!(
        err.contains("grow the partition 'rootfs' in board.toml"),
        "{err}"
    );
    case.assert_nothing_published();
}

#[test]
fn entry_escaping_the_root_is_refused_with_its_name() {
    let case = Case::new();
    let mut spec = TarSpec::rootfs("dash-riscv64.elfhdr");
    spec.raw_file("../../tmp/x", b"evil");
    let tar = case.write("rootfs.tar", &spec.finish());
    let (ok, err) = case.build(small_board(&case).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(err.contains("../../tmp/x"), "{err}");
    assert!(!Path::new("/tmp/x").exists() || fs::read("/tmp/x").unwrap() != b"evil");
    case.assert_nothing_published();
}

#[test]
fn truncated_tar_is_an_error() {
    let case = Case::new();
    let bytes = TarSpec::rootfs("dash-riscv64.elfhdr").finish();
    let tar = case.write("rootfs.tar", &bytes[..bytes.len() / 2 + 100]);
    let (ok, err) = case.build(small_board(&case).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(
        err.contains("truncated") || err.contains("unexpected end"),
        "{err}"
    );
    case.assert_nothing_published();
}

#[test]
fn truncated_tar_zst_is_an_error() {
    let case = Case::new();
    let plain = TarSpec::rootfs("dash-riscv64.elfhdr").finish();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let tar = case.write("rootfs.tar.zst", &zst[..zst.len() * 2 / 3]);
    let (ok, err) = case.build(small_board(&case).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(err.contains("zstd"), "{err}");
    assert!(
        err.contains("truncated") || err.contains("unexpected end") || err.contains("incomplete"),
        "{err}"
    );
    case.assert_nothing_published();
}

#[test]
fn rootfs_of_another_architecture_is_refused_naming_both() {
    let case = Case::new();
    let tar = case.write("rootfs.tar", &TarSpec::rootfs("dash-arm64.elfhdr").finish());
    let (ok, err) = case.build(small_board(&case).to_str().unwrap(), &tar);
    assert!(!ok);
    assert!(err.contains("aarch64"), "{err}");
    assert!(err.contains("riscv64"), "{err}");
    assert!(err.contains("qemu-riscv64"), "names the board: {err}");
    case.assert_nothing_published();
}

#[test]
fn hostname_symlink_is_replaced_not_followed() {
    if !tool_available("debugfs") {
        return;
    }
    let case = Case::new();
    let mut spec = TarSpec::rootfs("dash-riscv64.elfhdr");
    spec.file("etc/shadow", b"root:*:1::::::\n");
    spec.symlink("etc/hostname", "/etc/shadow");
    let tar = case.write("rootfs.tar", &spec.finish());
    let shadow_before = fs::read("/etc/shadow").ok();
    let (ok, err) = case.build(small_board(&case).to_str().unwrap(), &tar);
    assert!(ok, "{err}");
    assert_eq!(
        fs::read("/etc/shadow").ok(),
        shadow_before,
        "host untouched"
    );
    // Read /etc/hostname and /etc/shadow back from the root partition.
    let raw = case.out().join("qemu-riscv64.raw");
    let plan = mkimg(&[
        "plan",
        "--board",
        small_board(&case).to_str().unwrap(),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let root = &json["layout"]["partitions"][1];
    let (start, size) = (
        root["start"].as_u64().unwrap(),
        root["size"].as_u64().unwrap(),
    );
    let part = case.dir.path().join("root.img");
    let status = Command::new("dd")
        .args([
            format!("if={}", raw.display()),
            format!("of={}", part.display()),
        ])
        .args([
            "bs=1M",
            &format!("skip={}", start >> 20),
            &format!("count={}", size >> 20),
            "status=none",
            "conv=sparse",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let stat = Command::new("debugfs")
        .args(["-R", "stat /etc/hostname"])
        .arg(&part)
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("Type: regular"), "{stat}");
    let cat = Command::new("debugfs")
        .args(["-R", "cat /etc/hostname"])
        .arg(&part)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "mkimg-riscv64\n");
    let shadow = Command::new("debugfs")
        .args(["-R", "cat /etc/shadow"])
        .arg(&part)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shadow.stdout),
        "root:*:1::::::\n",
        "symlink target unchanged"
    );
}
