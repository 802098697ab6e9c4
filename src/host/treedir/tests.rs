//! A tree filled the way the rootfs pass fills it, with the symlinks a
//! crafted tarball would plant: nothing lands outside, nothing is followed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Node, TreeDir};

fn me() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// Everything under `dir`, as sorted relative paths.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn entries_are_written_as_given_and_modes_are_tamed() {
    let top = tempfile::tempdir().unwrap();
    let tree = TreeDir::create(&top.path().join("root"), me()).unwrap();
    tree.make_dir("usr", 0o555).unwrap();
    tree.make_dir("usr/bin", 0o755).unwrap();
    let mut file = tree.create_file("usr/bin/su", 0o4755).unwrap();
    file.write_all(b"#!/bin/sh\n").unwrap();
    tree.finish_file(&file, 1_700_000_000).unwrap();
    tree.symlink("bin", "usr/bin").unwrap();
    assert!(tree.hard_link("usr/bin/su2", "usr/bin/su").unwrap());
    assert!(!tree.hard_link("usr/bin/gone", "usr/share/gone").unwrap());

    let root = top.path().join("root");
    let su = fs::metadata(root.join("usr/bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o755, "set-uid dropped");
    assert_eq!(su.mtime(), 1_700_000_000);
    assert_eq!(su.nlink(), 2);
    let usr = fs::metadata(root.join("usr")).unwrap();
    assert_eq!(usr.permissions().mode() & 0o7777, 0o755, "u+rwx added");
    assert_eq!(
        fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(tree.node("bin").unwrap(), Some(Node::Symlink));
    assert_eq!(tree.node("usr/bin/su").unwrap(), Some(Node::File));
    assert_eq!(tree.node("usr").unwrap(), Some(Node::Dir));
    assert_eq!(
        tree.node("bin/su").unwrap(),
        None,
        "not through the symlink"
    );
    assert_eq!(tree.node("usr/nothing").unwrap(), None);
    assert_eq!(tree.read_file("usr/bin/su", 64).unwrap(), b"#!/bin/sh\n");
    assert!(tree.read_file("usr/bin/su", 4).is_err(), "over the limit");
    assert!(tree.read_file("bin/su", 64).is_err(), "through a symlink");

    // A later entry of the same path replaces the earlier one (tar semantics).
    tree.symlink("usr/bin/su", "/etc/shadow").unwrap();
    assert_eq!(tree.node("usr/bin/su").unwrap(), Some(Node::Symlink));
    tree.write_file("usr/bin/su", b"again", 0o644).unwrap();
    assert_eq!(tree.read_file("usr/bin/su", 64).unwrap(), b"again");
    assert!(
        tree.symlink("usr", "x").is_err(),
        "a directory is not replaced"
    );
}

/// The symlinks a crafted tarball plants (`/usr/lib -> /`, a relative
/// climb, a link to a host directory) are kept as symlinks; every write
/// through them, and every `..` or absolute path, is refused, and the decoy
/// directory outside the tree stays empty.
#[test]
fn symlinks_and_dot_dots_never_lead_out() {
    let top = tempfile::tempdir().unwrap();
    let decoy = top.path().join("decoy");
    fs::create_dir(&decoy).unwrap();
    let tree = TreeDir::create(&top.path().join("root"), me()).unwrap();
    tree.make_dir("usr", 0o755).unwrap();
    tree.symlink("usr/lib", "/").unwrap();
    tree.symlink("etc", "../../../etc").unwrap();
    tree.symlink("host", decoy.to_str().unwrap()).unwrap();
    tree.symlink("up", "..").unwrap();

    // Unique, so that a regression shows up (and is removed) at the host's /.
    let evil = format!("mkimg-treedir-test-{}", std::process::id());
    let through_root = format!("usr/lib/{evil}");
    let through_tmp = format!("usr/lib/tmp/{evil}");
    for rel in [
        through_root.as_str(),
        through_tmp.as_str(),
        "etc/evil",
        "host/evil",
        "up/decoy/evil",
        "../decoy/evil",
        "usr/../../decoy/evil",
        "/decoy/evil",
        "./evil",
        "usr//evil",
        "",
    ] {
        assert!(tree.create_file(rel, 0o644).is_err(), "file {rel}");
        assert!(tree.make_dir(rel, 0o755).is_err(), "dir {rel}");
        assert!(tree.symlink(rel, "x").is_err(), "symlink {rel}");
        assert!(tree.write_file(rel, b"x", 0o644).is_err(), "write {rel}");
        assert!(tree.set_mtime(rel, 0).is_err(), "mtime {rel}");
    }
    for host in [Path::new("/").join(&evil), Path::new("/tmp").join(&evil)] {
        let leaked = host.symlink_metadata().is_ok();
        let _ = fs::remove_file(&host).or_else(|_| fs::remove_dir(&host));
        assert!(
            !leaked,
            "{} was written through usr/lib -> /",
            host.display()
        );
    }
    // Hard links neither from nor to a path through a symlink.
    fs::write(decoy.join("secret"), b"s").unwrap();
    assert!(!tree.hard_link("stolen", "host/secret").unwrap());
    assert!(tree.hard_link("host/planted", "usr").is_err());
    // A directory over an existing symlink is refused, not followed.
    assert!(tree.make_dir("host", 0o755).is_err());
    assert_eq!(listing(&decoy), vec!["secret".to_string()]);
    assert_eq!(
        listing(&top.path().join("root")),
        ["etc", "host", "up", "usr", "usr/lib"]
    );
}
