//! Restoring xattrs through libext2fs on real images, checked with debugfs
//! requests this test writes from paths it chose, `e2fsck -fn`, `cmp`, the
//! superblock bytes and (as root) getfacl on a loop mount.

use std::fs;
use std::path::{Path, PathBuf};

use super::super::tests::{
    access_acl, debugfs, default_acl, params, quote, LoopMount, E2FS_TOOLS, EPOCH, SIZE,
};
use super::super::{build_ext4, resolve_sbin};
use super::{restore_xattrs, shown, XattrRecord};
use crate::host::cmd::Cmd;
use crate::test_tools::{have_tools, require_root};

/// A PAX tar: each member's path (any length) and xattrs in its `x` header.
fn write_pax_tar(tar: &Path, members: &[(&str, bool)], records: &[XattrRecord]) {
    let mut b = tar::Builder::new(Vec::new());
    for (path, dir) in members {
        let mut pax: Vec<(String, Vec<u8>)> = vec![("path".into(), path.as_bytes().to_vec())];
        pax.extend(
            records
                .iter()
                .filter(|r| r.path == *path)
                .map(|r| (format!("SCHILY.xattr.{}", r.name), r.value.clone())),
        );
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("pax").unwrap();
        h.set_entry_type(if *dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mode(if *dir { 0o755 } else { 0o644 });
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }
    fs::write(tar, b.into_inner().unwrap()).unwrap();
}

fn rec(path: &str, name: &str, value: &[u8]) -> XattrRecord {
    XattrRecord {
        path: path.into(),
        name: name.into(),
        value: value.to_vec(),
    }
}

/// A directory chain about 6 KiB deep (components of 250 bytes with
/// spaces, quotes and `!`), and a file in it.
fn long_tree() -> (Vec<String>, String) {
    let mut dirs = Vec::new();
    let mut path = String::new();
    for i in 0..24 {
        let part = format!("{i:02} \"q\" !x {}", "d".repeat(240));
        path = if path.is_empty() {
            part
        } else {
            format!("{path}/{part}")
        };
        dirs.push(path.clone());
    }
    let file = format!("{path}/file");
    assert!((6000..6500).contains(&file.len()), "{}", file.len());
    (dirs, file)
}

fn long_records(dir: &str, file: &str) -> Vec<XattrRecord> {
    vec![
        rec(file, "user.comment", b"six KiB deep"),
        rec(file, "trusted.t", b"\x00\x01\n!binary"),
        rec(file, "security.s", b"label"),
        rec(file, "system.posix_acl_access", &access_acl()),
        rec(dir, "system.posix_acl_default", &default_acl()),
    ]
}

fn build(dir: &Path, name: &str, members: &[(&str, bool)], records: &[XattrRecord]) -> PathBuf {
    let tar = dir.join(format!("{name}.tar"));
    write_pax_tar(&tar, members, records);
    let image = dir.join(format!("{name}.ext4"));
    build_ext4(&image, SIZE, &tar, &params(), records, dir).unwrap();
    image
}

fn e2fsck_clean(image: &Path) {
    let fsck = Cmd::new("checking test image", "e2fsck")
        .arg("-fn")
        .arg(image);
    resolve_sbin(fsck).run().unwrap();
}

#[test]
fn xattrs_and_acls_on_a_6_kib_path_arrive_and_builds_are_identical() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (dirs, file) = long_tree();
    let deepest = dirs.last().unwrap().clone();
    let mut members: Vec<(&str, bool)> = dirs.iter().map(|d| (d.as_str(), true)).collect();
    members.push((&file, false));
    let records = long_records(&deepest, &file);
    let image = build(dir.path(), "a", &members, &records);

    let list = debugfs(&image, &format!("ea_list {}", quote(&format!("/{file}"))));
    assert!(
        list.contains("user.comment (12) = \"six KiB deep\""),
        "{list}"
    );
    assert!(
        list.contains("trusted.t (10) = 00 01 0a 21 62 69 6e 61 72 79"),
        "{list}"
    );
    assert!(list.contains("security.s (5) = \"label\""), "{list}");
    // ext4 on-disk ACL: version 1, 4-byte entries for u::, g::, m::, o::.
    let acl = "system.posix_acl_access (28) = 01 00 00 00 01 00 06 00 02 00 04 00 \
               e8 03 00 00 04 00 04 00 10 00 04 00 20 00 00 00";
    assert!(list.contains(acl), "{list}");
    let list = debugfs(
        &image,
        &format!("ea_list {}", quote(&format!("/{deepest}"))),
    );
    let acl = "system.posix_acl_default (28) = 01 00 00 00 01 00 07 00 04 00 05 00 \
               08 00 05 00 04 00 00 00 10 00 05 00 20 00 05 00";
    assert!(list.contains(acl), "{list}");
    e2fsck_clean(&image);

    let again = build(dir.path(), "b", &members, &records);
    Cmd::new("comparing builds", "cmp")
        .arg(&image)
        .arg(&again)
        .run()
        .unwrap();

    if !require_root("the getfacl part (a loop mount)") {
        return;
    }
    if !have_tools(&["getfacl"]) {
        return;
    }
    let mnt = dir.path().join("mnt");
    let mount = LoopMount::new(&image, &mnt);
    // getfacl takes the path relative to its working directory: a 6 KiB
    // absolute path would exceed PATH_MAX.
    let getfacl = |args: &[&str], path: &str| {
        let out = Cmd::new("reading mounted test image", "getfacl")
            .args(args)
            .arg(path)
            .cwd(mnt.join(&dirs[11]))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let below = |p: &str| p[dirs[11].len() + 1..].to_string();
    assert_eq!(
        getfacl(&["-n", "-c"], &below(&file)),
        "user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::---\n\n"
    );
    assert_eq!(
        getfacl(&["-n", "-c", "-d"], &below(&deepest)),
        "user::rwx\ngroup::r-x\ngroup:4:r-x\nmask::r-x\nother::r-x\n\n"
    );
    mount.close();
}

/// Control characters and a leading `!` are plain bytes of a name now.
#[test]
fn names_with_newlines_and_bangs_get_their_xattrs() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let odd = "odd/!touch x\n!touch y\t\"z\"";
    let members = [("odd", true), (odd, false)];
    let image = build(dir.path(), "odd", &members, &[rec(odd, "user.x", b"1")]);
    // Reach the inode by number: `ls -p` prints /ino/mode/uid/gid/name/size/.
    let listing = debugfs(&image, "ls -p /odd");
    let ino = listing
        .lines()
        .find(|l| l.contains("!touch x"))
        .and_then(|l| l.split('/').nth(1))
        .unwrap_or_else(|| panic!("no odd name in {listing:?}"));
    let got = debugfs(&image, &format!("ea_get <{ino}> user.x"));
    assert!(got.contains("\"1\""), "{got}");
    e2fsck_clean(&image);
    // A record that cannot be set is named, its control characters escaped.
    let missing = [rec("odd/no\nsuch\x1b[2J", "user.y", b"1")];
    let err = restore_xattrs(&image, &missing, &params()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r"could not restore 1 xattr(s) in partition 'rootfs': user.y on /odd/no\nsuch\u{1b}[2J: File not found by ext2_lookup"
    );
}

#[test]
fn messages_escape_control_characters_only() {
    assert_eq!(shown("a\tb \"c\" é\0"), r#"a\tb "c" é\u{0}"#);
}

fn superblock_wtime(image: &Path) -> u32 {
    let bytes = fs::read(image).unwrap();
    u32::from_le_bytes(bytes[1024 + 0x30..1024 + 0x34].try_into().unwrap())
}

/// libext2fs writes the superblock when it closes the image: its clock
/// must be the build's, not the wall clock (e2fsck, which runs after this
/// step in a build, would overwrite s_wtime and hide a leak).
#[test]
fn restoring_stamps_the_build_clock() {
    if !have_tools(&E2FS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let members = [("srv", true), ("srv/f", false)];
    let image = build(dir.path(), "clock", &members, &[]);
    assert_eq!(superblock_wtime(&image), EPOCH as u32);
    // A value too large for the inode: libext2fs allocates an xattr block,
    // which dirties the bitmaps and the superblock's free counts.
    let records = [rec("srv/f", "user.big", &[7; 3000])];
    restore_xattrs(&image, &records, &params()).unwrap();
    assert_eq!(superblock_wtime(&image), EPOCH as u32);
    let got = debugfs(&image, "ea_get -x /srv/f user.big");
    assert!(
        got.contains("user.big (3000) = 07 07 07 07 "),
        "{}",
        &got[..got.len().min(200)]
    );
    e2fsck_clean(&image);
}
