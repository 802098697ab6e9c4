//! `-o` names something mkimg did not make: refused with the path and what
//! is in the way, the thing left exactly as it was, no staging or work
//! directory left beside it. And `-o` an earlier mkimg output: replaced.

use std::fs;
use std::os::unix::fs::symlink;

use crate::lifecycle::{build_tools_available, entries_with_prefix, snapshot, Case};

/// No staging directory beside `out`, no work directory in the case's root.
fn assert_nothing_left(case: &Case) {
    assert_eq!(
        entries_with_prefix(case.dir.path(), ".out."),
        Vec::<String>::new()
    );
    assert_eq!(
        entries_with_prefix(&case.work_root(), "mkimg-work-"),
        Vec::<String>::new()
    );
}

#[test]
fn foreign_non_empty_directory_is_refused() {
    let case = Case::new();
    let out = case.out();
    fs::create_dir(&out).unwrap();
    fs::write(out.join("thesis.tex"), b"years of work").unwrap();
    fs::create_dir(out.join("photos")).unwrap();
    fs::write(out.join("photos/cat.jpg"), b"meow").unwrap();
    let before = snapshot(&out);
    let (status, err) = case.build(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("refusing to replace {}", out.display())),
        "{err}"
    );
    assert!(
        err.contains("\"thesis.tex\"") && err.contains("\"photos\""),
        "{err}"
    );
    assert!(err.contains("no manifest.json"), "{err}");
    assert_eq!(snapshot(&out), before, "untouched");
    assert_nothing_left(&case);
}

#[test]
fn regular_file_is_refused() {
    let case = Case::new();
    let out = case.out();
    fs::write(&out, b"my notes").unwrap();
    let (status, err) = case.build(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "output directory {} is a regular file",
            out.display()
        )),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"my notes");
    assert_nothing_left(&case);
}

#[test]
fn symlink_is_refused_and_its_target_untouched() {
    let case = Case::new();
    let target = case.dir.path().join("elsewhere");
    fs::create_dir(&target).unwrap();
    let out = case.out();
    symlink(&target, &out).unwrap();
    // Even a link to an empty directory: mkimg would swap the link away.
    let (status, err) = case.build(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "output directory {} is a symbolic link",
            out.display()
        )),
        "{err}"
    );
    assert_eq!(fs::read_link(&out).unwrap(), target);
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    assert_nothing_left(&case);
}

#[test]
fn manifest_listing_a_path_is_refused() {
    let case = Case::new();
    let out = case.out();
    fs::create_dir(&out).unwrap();
    fs::write(
        out.join("manifest.json"),
        br#"{"outputs": [{"file": "../victim", "size": 1, "sha256": ""}]}"#,
    )
    .unwrap();
    let before = snapshot(&out);
    let (status, err) = case.build(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("\"../victim\", which is not a plain file name"),
        "{err}"
    );
    assert_eq!(snapshot(&out), before);
    assert_nothing_left(&case);
}

#[test]
fn earlier_output_is_replaced_but_not_with_an_extra_file_in_it() {
    if !build_tools_available() {
        return;
    }
    let case = Case::new();
    let out = case.out();
    // An empty directory is fine.
    fs::create_dir(&out).unwrap();
    let (status, err) = case.build(&out);
    assert!(status.success(), "{err}");
    let first = snapshot(&out);
    assert!(
        first.contains_key("qemu-riscv64.qcow2"),
        "{:?}",
        first.keys()
    );
    assert!(first.contains_key("start_vm.sh"), "{:?}", first.keys());

    // Its own earlier output: replaced (a different rootfs, so new bytes).
    fs::write(&case.rootfs, crate::lifecycle::rootfs_tar(3)).unwrap();
    let (status, err) = case.build(&out);
    assert!(status.success(), "{err}");
    let second = snapshot(&out);
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    assert_ne!(second["manifest.json"], first["manifest.json"], "replaced");
    assert_nothing_left(&case);

    // A user's file added to it: refused, all of it untouched.
    fs::write(out.join("README.txt"), b"mine").unwrap();
    let before = snapshot(&out);
    let (status, err) = case.build(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("does not list as files: \"README.txt\""),
        "{err}"
    );
    assert_eq!(snapshot(&out), before);
    assert_nothing_left(&case);

    // A directory with a listed file's name: refused too.
    fs::remove_file(out.join("README.txt")).unwrap();
    fs::remove_file(out.join("start_vm.sh")).unwrap();
    fs::create_dir(out.join("start_vm.sh")).unwrap();
    fs::write(out.join("start_vm.sh/keep"), b"mine").unwrap();
    let (status, err) = case.build(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("\"start_vm.sh\""), "{err}");
    assert_eq!(fs::read(out.join("start_vm.sh/keep")).unwrap(), b"mine");
    assert_nothing_left(&case);
}
