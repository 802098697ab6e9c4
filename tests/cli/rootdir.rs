//! `mkimg build --rootfs DIR`: a directory is read as the tarball of it.
//! The oracle is GNU tar: the same tree packed with `tar --sort=name
//! --xattrs` and built from the tarball must give a byte-identical disk.
//! Rootless where it can be (xattr `user.*`, `--owner root`); the
//! capability and the non-root refusal need root.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::board::small_riscv64;
use crate::support::build::Build;
use crate::support::run::{run_tool, stderr};
use crate::support::tarball::Tarball;
use crate::support::tools::{have_tools, is_root, require};

fn build(board: &Path, rootfs: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    let result = Build::new(board, rootfs, out)
        .format("raw")
        .args(extra)
        .output();
    (result.status.success(), stderr(&result))
}

/// The minimal rootfs extracted, plus nested dirs, a symlink out of the
/// tree, a hard link, a `user.` xattr and (root) a file capability.
fn make_tree(base: &Path) -> PathBuf {
    let tree = base.join("tree");
    fs::create_dir(&tree).unwrap();
    let tar = base.join("minimal.tar");
    fs::write(&tar, Tarball::minimal_riscv64().finish()).unwrap();
    run_tool(
        "tar",
        &["-xf", tar.to_str().unwrap(), "-C", tree.to_str().unwrap()],
    );
    let outside = base.join("outside-secret");
    fs::write(&outside, b"must never be read").unwrap();
    fs::create_dir_all(tree.join("srv/a/b")).unwrap();
    fs::write(tree.join("srv/a/b/deep"), b"deep file\n").unwrap();
    fs::write(tree.join("srv/a/z"), vec![7u8; 70_000]).unwrap();
    symlink(&outside, tree.join("srv/escape")).unwrap();
    fs::hard_link(tree.join("srv/a/b/deep"), tree.join("srv/hard")).unwrap();
    fs::write(tree.join("srv/tagged"), b"x").unwrap();
    run_tool(
        "setfattr",
        &[
            "-n",
            "user.mkimg",
            "-v",
            "0x0a00ff",
            tree.join("srv/tagged").to_str().unwrap(),
        ],
    );
    // A socket is skipped (GNU tar: "socket ignored"); a FIFO is kept.
    drop(std::os::unix::net::UnixListener::bind(tree.join("srv/sock")).unwrap());
    run_tool("mkfifo", &[tree.join("srv/fifo").to_str().unwrap()]);
    if is_root() {
        run_tool(
            "mknod",
            &[tree.join("srv/null").to_str().unwrap(), "c", "1", "3"],
        );
        fs::write(tree.join("usr/bin/ping"), b"ping").unwrap();
        run_tool(
            "setcap",
            &[
                "cap_net_raw+ep",
                tree.join("usr/bin/ping").to_str().unwrap(),
            ],
        );
    }
    tree
}

#[test]
fn directory_builds_the_same_disk_as_its_gnu_tar() {
    let tools = [
        "tar", "setfattr", "setcap", "debugfs", "mke2fs", "mkfifo", "mknod",
    ];
    if !require(have_tools(&tools), format!("needs {tools:?}")) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let board = small_riscv64(base.path());
    let tree = make_tree(base.path());
    let tarball = base.path().join("tree.tar");
    let mut tar_args = vec![
        "--sort=name",
        "--xattrs",
        "--xattrs-include=*",
        "--numeric-owner",
    ];
    let mut mkimg_extra = vec![];
    if !is_root() {
        tar_args.extend(["--owner=0", "--group=0"]);
        mkimg_extra.extend(["--owner", "root"]);
    }
    tar_args.extend([
        "-C",
        tree.to_str().unwrap(),
        "-cf",
        tarball.to_str().unwrap(),
        ".",
    ]);
    run_tool("tar", &tar_args);

    let (from_dir, from_tar) = (base.path().join("dir-out"), base.path().join("tar-out"));
    let (ok, err) = build(&board, &tree, &from_dir, &mkimg_extra);
    assert!(ok, "building from the directory: {err}");
    let (ok, err) = build(&board, &tarball, &from_tar, &[]);
    assert!(ok, "building from the tarball: {err}");

    let disk = |dir: &Path| {
        let raw = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "raw"))
            .expect("a raw disk");
        fs::read(raw).unwrap()
    };
    let (a, b) = (disk(&from_dir), disk(&from_tar));
    assert!(a == b, "the disks differ");

    // The tree's contents really are in the image (not both empty alike).
    let root_fs = base.path().join("root.ext4");
    extract_root(&from_dir, &root_fs);
    let fs_arg = root_fs.to_str().unwrap();
    let escape = run_tool("debugfs", &["-R", "stat /srv/escape", fs_arg]);
    assert!(escape.contains("Type: symlink"), "{escape}");
    assert!(escape.contains("outside-secret"), "{escape}");
    let inode = |dir: &str, name: &str| {
        let listing = run_tool("debugfs", &["-R", &format!("ls -l {dir}"), fs_arg]);
        listing
            .lines()
            .find(|l| l.split_whitespace().last() == Some(name))
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| panic!("{name} in {listing}"))
    };
    assert_eq!(
        inode("/srv", "hard"),
        inode("/srv/a/b", "deep"),
        "hard link"
    );
    let listing = run_tool("debugfs", &["-R", "ls -l /srv", fs_arg]);
    assert!(!listing.contains("sock"), "socket skipped: {listing}");
    let fifo = run_tool("debugfs", &["-R", "stat /srv/fifo", fs_arg]);
    assert!(fifo.contains("Type: FIFO"), "{fifo}");
    let xattrs = run_tool("debugfs", &["-R", "ea_list /srv/tagged", fs_arg]);
    assert!(xattrs.contains("user.mkimg"), "{xattrs}");
    if is_root() {
        let caps = run_tool("debugfs", &["-R", "ea_list /usr/bin/ping", fs_arg]);
        assert!(caps.contains("security.capability"), "{caps}");
        let null = run_tool("debugfs", &["-R", "stat /srv/null", fs_arg]);
        assert!(null.contains("Type: character special"), "{null}");
    }
}

/// Copy the root partition (the last one) out of the raw disk.
fn extract_root(out: &Path, dest: &Path) {
    let raw = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "raw"))
        .unwrap();
    let json = run_tool("sfdisk", &["--json", raw.to_str().unwrap()]);
    let table: serde_json::Value = serde_json::from_str(&json).unwrap();
    let parts = table["partitiontable"]["partitions"].as_array().unwrap();
    let root = parts.last().unwrap();
    let (start, size) = (
        root["start"].as_u64().unwrap(),
        root["size"].as_u64().unwrap(),
    );
    let bytes = fs::read(&raw).unwrap();
    fs::write(
        dest,
        &bytes[(start * 512) as usize..((start + size) * 512) as usize],
    )
    .unwrap();
}

/// Run as `nobody` on a tree owned by `nobody`: refused naming the owner
/// and `--owner root`; with `--owner root` the build goes on; a file
/// `nobody` cannot read is named with the reason.
#[test]
fn non_root_on_user_owned_tree_needs_owner_root() {
    if !require(
        is_root() && have_tools(&["setpriv", "tar"]),
        "needs root and setpriv",
    ) {
        return;
    }
    let base = tempfile::Builder::new()
        .prefix("mkimg-rootdir")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(
        base.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let board = small_riscv64(base.path());
    let tree = make_tree(base.path());
    run_tool(
        "chown",
        &["-R", "65534:65534", base.path().to_str().unwrap()],
    );
    let run = |name: &str, extra: &[&str]| {
        let out = base.path().join(name);
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_mkimg"))
            .args(["build", "--board", board.to_str().unwrap()])
            .args(["--rootfs", tree.to_str().unwrap(), "--format", "raw", "-o"])
            .arg(&out)
            .args(extra)
            .env("MKIMG_WORKDIR", base.path())
            .env("HOME", base.path())
            .output()
            .unwrap();
        (output.status.success(), stderr(&output))
    };
    let (ok, err) = run("out-refused", &[]);
    assert!(!ok, "refused");
    assert!(
        err.contains("uid 65534") && err.contains("--owner root"),
        "{err}"
    );
    let (ok, err) = run("out-owner-root", &["--owner", "root"]);
    assert!(ok, "with --owner root: {err}");

    // A file nobody cannot read: the producer's error, naming the file,
    // not the pass's "truncated" that follows it.
    let private = tree.join("srv/private");
    fs::write(&private, b"root only").unwrap();
    fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (ok, err) = run("out-unreadable", &["--owner", "root"]);
    assert!(!ok, "unreadable file refused");
    assert!(
        err.contains(private.to_str().unwrap()),
        "names the file: {err}"
    );
    assert!(err.contains("Permission denied"), "says why: {err}");
    assert!(!err.contains("truncated"), "{err}");
}

/// The pass stops first (a file larger than the root partition, refused
/// from its header): its message is reported, the producer blocked on the
/// pipe is released, nothing hangs.
#[test]
fn pass_error_on_a_directory_is_the_pass_error() {
    let base = tempfile::tempdir().unwrap();
    let board = small_riscv64(base.path());
    let tree = base.path().join("tree");
    fs::create_dir_all(tree.join("srv")).unwrap();
    let big = fs::File::create(tree.join("srv/big")).unwrap();
    big.set_len(300 << 20).unwrap();
    let extra: &[&str] = if is_root() { &[] } else { &["--owner", "root"] };
    let (ok, err) = build(&board, &tree, &base.path().join("out"), extra);
    assert!(!ok);
    assert!(err.contains("grow the partition 'rootfs'"), "{err}");
    assert!(err.contains("srv/big"), "{err}");
}
