//! Helpers of the privileged tests (loop devices, mounts, chroot): a small
//! ext4 image made by mke2fs, attached read-only as the mkconfig stage
//! attaches the root, and the host's loop list. The root check that
//! skips or fails is `crate::test_tools::require_root`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::host::chroot::DiskLinks;
use crate::host::cmd::Cmd;
use crate::host::loopdev::{LoopDevice, LoopOptions};
use crate::test_tools::skip_or_fail;

pub(crate) const TEST_UUID: &str = "6d6b696d-672d-7465-7374-2d726f6f7421";

/// `mke2fs -t ext4 -U TEST_UUID -d tree image` (32 MiB), from a fresh
/// directory `tree` holding `files` (path, contents) plus the mount points
/// a chroot session needs.
pub(crate) fn ext4_image(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    ext4_image_with_links(dir, files, &[])
}

/// [`ext4_image`] with symlinks too: (path, target).
pub(crate) fn ext4_image_with_links(
    dir: &Path,
    files: &[(&str, &[u8])],
    links: &[(&str, &str)],
) -> PathBuf {
    let tree = dir.join("tree");
    for sub in ["dev", "proc", "sys", "tmp", "etc/default", "boot/efi"] {
        fs::create_dir_all(tree.join(sub)).unwrap();
    }
    for (path, data) in files {
        let path = tree.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        // Programs and libraries of a test chroot must be executable.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (path, target) in links {
        let path = tree.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &path).unwrap();
    }
    let image = dir.join("root.img");
    Cmd::new("making a test ext4 image", "mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-U",
            TEST_UUID,
            "-E",
            "root_owner=0:0",
            "-d",
        ])
        .arg(&tree)
        .arg(&image)
        .arg("32M")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .run()
        .unwrap();
    image
}

/// `image` attached read-only (as the mkconfig stage attaches the root).
pub(crate) fn attach_read_only(image: &Path) -> LoopDevice {
    let read_only = LoopOptions {
        read_only: true,
        ..LoopOptions::default()
    };
    LoopDevice::attach(image, &read_only).unwrap()
}

/// The /dev/disk links of a root made by [`ext4_image`]: its UUID only.
pub(crate) fn test_root_links() -> DiskLinks {
    DiskLinks {
        fs_uuid: Some(TEST_UUID.to_string()),
        part_uuid: None,
    }
}

/// `losetup -a` lines naming `file`.
pub(crate) fn loops_of(file: &Path) -> Vec<String> {
    let out = Cmd::new("listing loop devices", "losetup")
        .arg("-a")
        .output()
        .unwrap();
    let name = file.display().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&name))
        .map(str::to_string)
        .collect()
}

/// The host's mount table as the main thread sees it.
pub(crate) fn host_mounts() -> String {
    fs::read_to_string("/proc/self/mounts").unwrap()
}

/// Host programs (a name in /usr/bin, or an absolute path) and the shared
/// libraries `ldd` says they load, as
/// (path, contents) for [`ext4_image`]: enough for a chroot of the host's
/// own architecture without emulation.
pub(crate) fn host_programs(programs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |path: &str| {
        let real = fs::canonicalize(path).unwrap();
        if !files.iter().any(|(p, _)| p == path.trim_start_matches('/')) {
            files.push((
                path.trim_start_matches('/').to_string(),
                fs::read(real).unwrap(),
            ));
        }
    };
    for program in programs {
        let path = if program.starts_with('/') {
            program.to_string()
        } else {
            format!("/usr/bin/{program}")
        };
        add(&path);
        // ldd fails on a script or a static program: nothing to add.
        let Ok(out) = Cmd::new("listing libraries", "ldd").arg(&path).output() else {
            continue;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let lib = line
                .split("=>")
                .last()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            if lib.starts_with('/') {
                add(lib);
            }
        }
    }
    files
}

/// Debian's busybox-static, or None (skip) / panic (MKIMG_REQUIRE_TOOLS=1).
pub(crate) fn static_busybox() -> Option<Vec<u8>> {
    let data = fs::read("/bin/busybox").ok();
    let dynamic = Cmd::new("checking busybox", "ldd")
        .arg("/bin/busybox")
        .run()
        .is_ok();
    if data.is_some() && !dynamic {
        return data;
    }
    skip_or_fail("needs a static /bin/busybox (apt-get install busybox-static)");
    None
}
