//! A tarball member whose path is longer than debugfs' 8 KiB script line
//! buffer, with a pax xattr: when xattrs were restored through a
//! `debugfs -f` script, the tail of that line became a command of its own,
//! and a tail starting with `!` ran `system()` as the user running mkimg.
//! The path here is aimed so that the tail is `<spaces>!touch DECOY;#` on
//! the old script layout (a wide run of spaces absorbs a shifted split), so
//! it created DECOY before the fix; now the build must succeed, DECOY must
//! not exist, and the xattr must be in the image.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::board::small_riscv64;
use crate::support::run::{mkimg_command, run_tool};
use crate::support::tools::{have_tools, locate_tool};

/// debugfs reads a script with `fgets(buf, BUFSIZ)`: 8191 bytes a line.
const DEBUGFS_LINE: usize = 8191;

/// A PAX tar whose every member carries its path (and xattrs) in a pax
/// header, so paths of any length need no GNU extension.
struct PaxTar(tar::Builder<Vec<u8>>);

impl PaxTar {
    fn new() -> Self {
        PaxTar(tar::Builder::new(Vec::new()))
    }

    fn add(&mut self, path: &str, dir: bool, data: &[u8], xattrs: &[(&str, &[u8])]) {
        let mut pax: Vec<(String, Vec<u8>)> = vec![("path".into(), path.as_bytes().to_vec())];
        pax.extend(
            xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.to_vec())),
        );
        self.0
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("pax-named").unwrap();
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }

    /// `path` and every directory above it.
    fn add_with_parents(&mut self, path: &str, data: &[u8], xattrs: &[(&str, &[u8])]) {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            self.add(&parts[..i].join("/"), true, b"", &[]);
        }
        self.add(path, false, data, xattrs);
    }
}

/// A minimal riscv64 rootfs the stock board accepts: an ELF /usr/bin/dash,
/// a kernel and initrd, Debian's grub EFI binary.
fn base_rootfs(tar: &mut PaxTar) {
    let mut elf = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elf/dash-riscv64.elfhdr"),
    )
    .unwrap();
    elf.resize(4096, 0);
    for dir in ["etc", "usr", "usr/bin", "boot", "boot/efi"] {
        tar.add(dir, true, b"", &[]);
    }
    tar.add("usr/bin/dash", false, &elf, &[]);
    tar.add("boot/vmlinux-6.12.1-riscv64", false, b"kernel", &[]);
    tar.add("boot/initrd.img-6.12.1-riscv64", false, b"initrd", &[]);
    tar.add("etc/hosts", false, b"127.0.0.1\tlocalhost\n", &[]);
    tar.add_with_parents(
        "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi",
        &crate::support::tarball::grub_efi_fixture(0x5064, "/EFI/debian"),
        &[],
    );
}

/// A member path longer than `DEBUGFS_LINE` whose bytes from `split` on
/// (relative to the path's start) are spaces and then `!touch DECOY;#`:
/// components of `a`s up to there, every component at most 255 bytes.
fn exploit_path(split: usize, decoy: &Path) -> String {
    const SLED: usize = 200;
    let start = split - SLED / 2;
    let mut path = String::new();
    while path.len() + 252 < start {
        path.push_str(&"a".repeat(250));
        path.push('/');
    }
    path.push_str(&"b".repeat(start - path.len()));
    path.push('/');
    path.push_str(&" ".repeat(SLED));
    path.push_str("!touch ");
    // The decoy's absolute path continues the member path: more directories.
    path.push_str(decoy.to_str().unwrap());
    path.push_str(";#");
    while path.len() <= DEBUGFS_LINE + 64 {
        path.push_str("/c");
    }
    path
}

#[test]
fn long_member_path_with_xattr_runs_nothing_and_keeps_the_xattr() {
    if !have_tools(&["debugfs", "mke2fs", "e2fsck"]) {
        return;
    }
    let case = tempfile::tempdir().unwrap();
    let work = case.path().join("work");
    fs::create_dir(&work).unwrap();
    let decoy = case.path().join("decoy");
    // Old layout of the line: `ea_set -f "` WORK/mkimg-work-XXXXXX/ext4-XXXXXX
    // /xattrs/value-000000 `" "/` PATH ...
    let head = "ea_set -f \"".len() + work.as_os_str().len() + 50 + "\" \"/".len();
    let path = exploit_path(DEBUGFS_LINE - head, &decoy);
    assert!(path.len() > 8192 && path.split('/').all(|c| c.len() <= 255));

    let mut tar = PaxTar::new();
    base_rootfs(&mut tar);
    tar.add_with_parents(&path, b"payload", &[("user.x", b"kept")]);
    let rootfs = case.path().join("rootfs.tar");
    fs::write(&rootfs, tar.0.into_inner().unwrap()).unwrap();
    let board = small_riscv64(case.path());
    let out_dir = case.path().join("out");

    let out = mkimg_command(["build", "--board"])
        .arg(&board)
        .arg("--rootfs")
        .arg(&rootfs)
        .args(["--format", "raw", "--keep-workdir", "-o"])
        .arg(&out_dir)
        .env("MKIMG_WORKDIR", &work)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !decoy.exists(),
        "a command from the tarball ran on the host: {} exists",
        decoy.display()
    );
    assert!(out.status.success(), "build failed: {stderr}");

    // The root partition image is left in the kept work directory.
    let image = find_file(&work, "rootfs.img")
        .unwrap_or_else(|| panic!("no rootfs.img under {}", work.display()));
    let image = image.to_str().unwrap();
    // A request this test writes itself, from a path it chose.
    let text = run_tool(
        locate_tool("debugfs").unwrap(),
        &["-R", &format!("ea_get \"/{path}\" user.x"), image],
    );
    assert!(text.contains("kept"), "user.x not in the image: {text}");
    run_tool(locate_tool("e2fsck").unwrap(), &["-fn", image]);
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        }
    }
    None
}
