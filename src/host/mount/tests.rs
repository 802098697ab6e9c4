//! mountinfo parsing, and mounts in a private namespace against the real
//! kernel (root): the host's /proc/self/mounts is the oracle that nothing
//! leaked, `losetup -a` that nothing stayed attached.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

use super::{in_private_namespace, parse_mount_points, thread_mount_points, Mount};
use crate::host::loopdev::{LoopDevice, LoopOptions};
use crate::host::test_support::{ext4_image, host_mounts, loops_of};
use crate::test_tools::require_root;

#[test]
fn mountinfo_mount_points_are_unescaped() {
    let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                37 36 0:5 / /proc rw - proc proc rw\n";
    assert_eq!(
        parse_mount_points(text),
        [PathBuf::from("/mnt/with space"), PathBuf::from("/proc")]
    );
}

#[test]
fn read_only_mount_in_a_private_namespace_leaves_the_host_alone() {
    if !require_root("read_only_mount_in_a_private_namespace_leaves_the_host_alone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = ext4_image(dir.path(), &[("etc/hello", b"hello from ext4\n")]);
    let target = dir.path().join("mnt");
    fs::create_dir(&target).unwrap();
    let before = host_mounts();
    let device = LoopDevice::attach(
        &image,
        &LoopOptions {
            read_only: true,
            ..LoopOptions::default()
        },
    )
    .unwrap();
    let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
    in_private_namespace(|| {
        let mount = Mount::filesystem(device.path(), &target, "ext4", flags, "noload")?;
        assert!(thread_mount_points()?.contains(&target));
        // The main thread (the host's namespace) does not see it.
        assert_eq!(host_mounts(), before);
        assert_eq!(fs::read(target.join("etc/hello"))?, b"hello from ext4\n");
        assert!(
            fs::write(target.join("etc/new"), b"x").is_err(),
            "mounted read-only"
        );
        mount.close()?;
        assert!(!thread_mount_points()?.contains(&target));
        Ok(())
    })
    .unwrap();
    device.close().unwrap();
    assert_eq!(host_mounts(), before);
    assert!(loops_of(&image).is_empty());
}

#[test]
fn panic_inside_the_namespace_unmounts_and_detaches() {
    if !require_root("panic_inside_the_namespace_unmounts_and_detaches") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = ext4_image(dir.path(), &[]);
    let target = dir.path().join("mnt");
    fs::create_dir(&target).unwrap();
    let before = host_mounts();
    let result = std::panic::catch_unwind(|| {
        let device = LoopDevice::attach(&image, &LoopOptions::default()).unwrap();
        let _ = in_private_namespace(|| -> anyhow::Result<()> {
            let _mount = Mount::filesystem(device.path(), &target, "ext4", MountFlags::RDONLY, "")?;
            let _tmp = Mount::tmpfs(&target.join("tmp"), MountFlags::empty(), "size=1m")?;
            panic!("boom with two mounts held");
        });
    });
    assert!(result.is_err());
    assert_eq!(host_mounts(), before);
    // Detached only if the mount was gone first (else it would linger busy).
    assert!(loops_of(&image).is_empty(), "{:?}", loops_of(&image));
}

#[test]
fn read_only_bind_and_move() {
    if !require_root("read_only_bind_and_move") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, a, b) = (
        dir.path().join("src"),
        dir.path().join("a"),
        dir.path().join("b"),
    );
    for d in [&src, &a, &b] {
        fs::create_dir(d).unwrap();
    }
    fs::write(src.join("file"), b"data").unwrap();
    in_private_namespace(|| {
        let bind = Mount::bind(&src, &a, true)?;
        assert_eq!(fs::read(a.join("file"))?, b"data");
        assert!(fs::write(a.join("other"), b"x").is_err(), "read-only bind");
        bind.close()?;
        let mut tmp = Mount::tmpfs(&a, MountFlags::NOSUID, "size=1m")?;
        fs::write(a.join("made-here"), b"1")?;
        tmp.move_to(&b)?;
        assert_eq!(tmp.target(), Path::new(&b));
        assert!(b.join("made-here").exists() && !a.join("made-here").exists());
        drop(tmp);
        assert!(!thread_mount_points()?.iter().any(|p| p == &a || p == &b));
        Ok(())
    })
    .unwrap();
    assert!(!src.join("other").exists());
}
