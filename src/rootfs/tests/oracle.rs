//! Oracle tests: the output tar must be accepted by the real `mke2fs -d`
//! (e2fsprogs >= 1.47.1 with libarchive), the filesystem must pass
//! `e2fsck -fn`, and `debugfs` must show the metadata. Also pins the
//! `debugfs ea_set` form the ext4 stage uses to restore xattrs that
//! mke2fs drops.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use super::fixture::{acl, every_kind, image_edits, run, CAP_NET_RAW, EPOCH, LONG};
use super::zstd;
use crate::rootfs::Captures;
use crate::test_tools::{have_tools, skip_or_fail};

fn tool_ok(args: &[&str], img: &Path) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .arg(img)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{args:?} failed: {text}");
    text
}

fn debugfs(img: &Path, request: &str) -> String {
    tool_ok(&["debugfs", "-R", request], img)
}

/// Builds an ext4 image from the processed fixture; None when tools are missing.
fn build_image(dir: &Path) -> Option<(std::path::PathBuf, Vec<crate::rootfs::XattrRecord>)> {
    if !have_tools(&["mke2fs", "e2fsck", "debugfs"]) {
        return None;
    }
    let r = run(
        &zstd(&every_kind()),
        &image_edits(),
        &["/boot/efi"],
        Captures::default(),
    )
    .unwrap();
    let tar = dir.join("root.tar");
    std::fs::write(&tar, &r.root_tar).unwrap();
    let img = dir.join("root.img");
    File::create(&img).unwrap().set_len(64 << 20).unwrap();
    let o = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tar)
        .arg(&img)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("you need libarchive") {
        skip_or_fail("mke2fs cannot read tarballs without libarchive13");
        return None;
    }
    assert!(o.status.success(), "mke2fs -d failed: {stderr}");
    Some((img, r.xattrs))
}

#[test]
fn mke2fs_accepts_output_and_debugfs_shows_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let Some((img, _)) = build_image(dir.path()) else {
        return;
    };
    tool_ok(&["e2fsck", "-fn"], &img);

    let sda = debugfs(&img, "stat /dev/sda");
    assert!(sda.contains("Type: block special    Mode:  0660"), "{sda}");
    assert!(sda.contains("User:     0   Group:     6"), "{sda}");
    assert!(sda.contains("Device major/minor number: 08:00"), "{sda}");
    let null = debugfs(&img, "stat /dev/null");
    assert!(
        null.contains("Type: character special    Mode:  0666"),
        "{null}"
    );
    assert!(null.contains("Device major/minor number: 01:03"), "{null}");
    assert!(debugfs(&img, "stat /run/initctl").contains("Type: FIFO    Mode:  0600"));
    let tmp = debugfs(&img, "stat /tmp");
    assert!(tmp.contains("Mode:  01777"), "{tmp}");
    assert!(debugfs(&img, "stat /usr/bin/sudo").contains("Mode:  04755"));

    let ping = debugfs(&img, "stat /usr/bin/ping");
    assert!(ping.contains("Links: 2"), "hard link kept: {ping}");
    let mtime = format!("mtime: 0x{:08x}", super::fixture::OLD);
    assert!(ping.contains(&mtime), "{ping}");
    let caps = debugfs(&img, "ea_get -x /usr/bin/ping security.capability");
    let hex: String = CAP_NET_RAW.iter().map(|b| format!("{b:02x} ")).collect();
    assert!(
        caps.replace('\n', " ").contains(hex.trim()),
        "capability kept by mke2fs: {caps}"
    );

    let notes = debugfs(&img, "stat /home/user/notes");
    assert!(
        notes.contains("Mode:  0640") && notes.contains("User:  1000   Group:  1000"),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("mtime: 0x{EPOCH:08x}")),
        "clamped: {notes}"
    );
    let efi = debugfs(&img, "ls -l /boot/efi");
    assert_eq!(
        efi.lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("debugfs"))
            .count(),
        2,
        "only . and ..: {efi}"
    );
    assert!(debugfs(&img, "stat /boot/efi").contains("Mode:  0700"));
    assert!(debugfs(&img, "stat /etc/mtab").contains("Fast link dest: \"/proc/self/mounts\""));
    assert!(debugfs(&img, "cat /etc/hostname").contains("board\n"));
    assert!(debugfs(&img, "stat /etc/hostname").contains("Type: regular    Mode:  0644"));
    assert!(debugfs(&img, &format!("cat /{LONG}")).contains("long\n"));
    assert!(debugfs(&img, "stat /").contains("Mode:  0755"));
}

#[test]
fn debugfs_ea_set_restores_acl_dropped_by_mke2fs() {
    let dir = tempfile::tempdir().unwrap();
    let Some((img, xattrs)) = build_image(dir.path()) else {
        return;
    };
    // mke2fs keeps only security.capability.
    let before = debugfs(&img, "ea_list /home/user/notes");
    assert!(!before.contains("posix_acl"), "{before}");
    for x in xattrs.iter().filter(|x| x.name != "security.capability") {
        let value = dir.path().join("xattr.value");
        std::fs::write(&value, &x.value).unwrap();
        // The form handed to the ext4 stage: value from a file, absolute path.
        let request = format!("ea_set -f {} /{} {}", value.display(), x.path, x.name);
        tool_ok(&["debugfs", "-w", "-R", &request], &img);
    }
    tool_ok(&["e2fsck", "-fn"], &img);
    // libext2fs stores the ext4 on-disk ACL form (no id in *_OBJ/MASK/OTHER
    // entries) and reads it back with id 0 where the kernel writes -1.
    let acl_hex: String = acl(1000)
        .iter()
        .map(|b| format!("{b:02x} "))
        .collect::<String>()
        .replace("ff ff ff ff", "00 00 00 00");
    let got = debugfs(&img, "ea_get -x /home/user/notes system.posix_acl_access");
    assert!(
        got.replace('\n', " ").contains(acl_hex.trim()),
        "ACL restored: {got}"
    );
    let comment = debugfs(&img, "ea_get /home/user/notes user.comment");
    assert!(comment.contains("hello"), "{comment}");
}

#[test]
fn mke2fs_reads_non_ascii_and_long_names() {
    if !have_tools(&["mke2fs", "debugfs"]) {
        return;
    }
    let long_target = format!("/usr/share/{}", "é".repeat(70));
    let input = super::fixture::Fx::new()
        .dir("./", 0o755)
        .dir("./données", 0o755)
        .file("./données/café.txt", b"ok\n")
        .symlink("./lien", &long_target[..99.min(long_target.len())])
        .finish();
    let r = run(
        &input,
        &crate::rootfs::Edits::new(EPOCH),
        &[],
        Captures::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("t.tar");
    std::fs::write(&tar, &r.root_tar).unwrap();
    let img = dir.path().join("t.img");
    File::create(&img).unwrap().set_len(16 << 20).unwrap();
    let o = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tar)
        .arg(&img)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("you need libarchive") {
        skip_or_fail("mke2fs cannot read tarballs without libarchive13");
        return;
    }
    assert!(o.status.success(), "mke2fs: {stderr}");
    assert!(debugfs(&img, "cat /données/café.txt").contains("ok\n"));
    let link = debugfs(&img, "stat /lien");
    assert!(
        link.contains("Type: symlink") && link.contains("Size: 99"),
        "{link}"
    );
}
