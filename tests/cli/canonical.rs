//! The same tree packed in another member order gives the same image byte
//! for byte: `tar --sort=name` against a parents-first walk with every
//! directory's children in reverse order, which also stores each hard-link
//! group's data under another name. The image depends on the tree only.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::board::esp_boot_root;
use crate::support::build::Build;
use crate::support::tarball::Tarball;
use crate::support::tools::have_tools;

/// Paths under `root`, parents first, each directory's children in
/// reverse name order.
fn reverse_walk(root: &Path, rel: &str, out: &mut Vec<String>) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.reverse();
    for name in names {
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        out.push(format!("./{path}"));
        if fs::symlink_metadata(root.join(&path)).unwrap().is_dir() {
            reverse_walk(root, &path, out);
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build(dir: &Path, rootfs: &Path, name: &str) -> Vec<u8> {
    let build = Build::new(dir.join("board.toml"), rootfs, dir.join(name))
        .bootloader("none")
        .format("raw");
    build.run();
    fs::read(build.out().join("canon.raw")).unwrap()
}

#[test]
fn another_member_order_gives_the_same_image() {
    if !have_tools(&["mke2fs", "tar"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("board.toml"),
        esp_boot_root("canon", "canonical member order"),
    )
    .unwrap();
    let tree = dir.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(dir.join("min.tar"), Tarball::minimal_riscv64().finish()).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(dir.join("min.tar"))
        .arg("-C")
        .arg(&tree));
    for i in 0..40 {
        let sub = tree.join(format!("usr/share/d{}", i % 7));
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            sub.join(format!("f{i:02}")),
            format!("file {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    fs::write(tree.join("boot/config-6.12.1-riscv64"), "CONFIG_X=y\n").unwrap();
    for name in [
        "EFI/BOOT/BOOTRISCV64.EFI",
        "EFI/debian/grub.cfg",
        "startup.nsh",
    ] {
        let path = tree.join("boot/efi").join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, name.repeat(50)).unwrap();
    }
    fs::hard_link(tree.join("usr/bin/dash"), tree.join("usr/bin/sh")).unwrap();
    fs::hard_link(tree.join("usr/bin/dash"), tree.join("usr/bin/zsh-compat")).unwrap();
    std::os::unix::fs::symlink("dash", tree.join("usr/bin/ash")).unwrap();

    let sorted = dir.join("sorted.tar");
    run(Command::new("tar")
        .args(["--sort=name", "--numeric-owner", "--format=gnu", "-cf"])
        .arg(&sorted)
        .arg("-C")
        .arg(&tree)
        .arg("."));
    let mut order = vec![".".to_string()];
    reverse_walk(&tree, "", &mut order);
    fs::write(dir.join("order.txt"), order.join("\n") + "\n").unwrap();
    let reversed = dir.join("reversed.tar");
    run(Command::new("tar")
        .args(["--no-recursion", "--numeric-owner", "--format=gnu", "-cf"])
        .arg(&reversed)
        .arg("-C")
        .arg(&tree)
        .arg("-T")
        .arg(dir.join("order.txt")));
    assert_ne!(
        fs::read(&sorted).unwrap(),
        fs::read(&reversed).unwrap(),
        "the two tarballs must differ for this test to mean anything"
    );
    let a = build(dir, &sorted, "a");
    let b = build(dir, &reversed, "b");
    assert!(a == b, "two packings of one tree gave different images");
}
