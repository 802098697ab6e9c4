//! The mkconfig tree (`rootfs::tree`): what the pass writes beside the root
//! sink, and that the root sink sees exactly what it saw without it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::fixture::{every_kind, image_edits, run, Fx, Member, OLD};
use crate::rootfs::entry::{Entry, EntryKind};
use crate::rootfs::{
    process_rootfs, Captures, EntrySink, MemPolicy, MemorySink, RootfsError, RootfsJob,
    SplitTarget, TarSink, TreeSpec, TreeStats, TreeTee,
};

fn spec(dir: &Path) -> TreeSpec {
    TreeSpec {
        dir: dir.join("tree"),
        owner: (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        ),
        exclude: vec!["/home".into(), "/dev".into(), "/run".into(), "/tmp".into()],
        placeholders: vec!["/boot/vmlinuz-*".into(), "/boot/initrd.img-*".into()],
        max_bytes: 1 << 20,
    }
}

/// The pass over `input` with the image's edits, /boot/efi split off, and
/// the tree in front of the root sink: the root tar and the tree's stats.
fn run_with_tree(input: &[u8], spec: &TreeSpec) -> Result<(Vec<u8>, TreeStats), RootfsError> {
    let edits = image_edits();
    let mut root = TarSink::new(Vec::new());
    let mut esp = MemorySink::new(MemPolicy::Vfat);
    let mut tee = TreeTee::new(&mut root, spec).unwrap();
    let job = RootfsJob {
        edits: &edits,
        root: &mut tee,
        root_budget: None,
        split: vec![SplitTarget {
            mount_point: "/boot/efi".into(),
            sink: &mut esp,
            budget: None,
        }],
        captures: Captures::default(),
    };
    let result = process_rootfs(input, job);
    let stats = tee.into_captured().stats;
    result.map(|_| (root.into_parts().0, stats))
}

#[test]
fn the_tree_holds_the_selected_entries_as_the_image_gets_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let (root_tar, stats) = run_with_tree(&every_kind(), &spec).unwrap();
    // The root sink got the same stream as without the tree.
    let plain = run(
        &every_kind(),
        &image_edits(),
        &["/boot/efi"],
        Captures::default(),
    )
    .unwrap();
    assert!(root_tar == plain.root_tar, "the tee changed the root tar");

    let tree = &spec.dir;
    // Edits: /etc/hostname was a symlink to /etc/shadow, the image gets a file.
    assert_eq!(fs::read(tree.join("etc/hostname")).unwrap(), b"board\n");
    assert!(!fs::symlink_metadata(tree.join("etc/hostname"))
        .unwrap()
        .is_symlink());
    let hosts = fs::read_to_string(tree.join("etc/hosts")).unwrap();
    assert!(hosts.contains("127.0.1.1\tboard"), "{hosts}");
    assert!(!tree.join(".dockerenv").exists(), "removed by the edits");
    // Modes without set-id; hard links as links; symlinks as written.
    let sudo = fs::metadata(tree.join("usr/bin/sudo")).unwrap();
    assert_eq!(sudo.permissions().mode() & 0o7777, 0o755);
    assert_eq!(sudo.mtime(), OLD as i64, "the entry's time");
    let ping = fs::metadata(tree.join("usr/bin/ping")).unwrap();
    assert_eq!(ping.nlink(), 2);
    assert_eq!(
        fs::read_link(tree.join("etc/mtab")).unwrap(),
        Path::new("/proc/self/mounts")
    );
    // Kernel and initrd: their size, no content, no blocks.
    let kernel = tree.join("boot/vmlinuz-6.1.0-riscv64");
    assert_eq!(fs::metadata(&kernel).unwrap().len(), 6);
    assert_eq!(fs::read(&kernel).unwrap(), vec![0u8; 6]);
    assert_eq!(fs::metadata(&kernel).unwrap().blocks(), 0);
    // The ESP's mount point is there, empty: its files went to the ESP.
    assert_eq!(fs::read_dir(tree.join("boot/efi")).unwrap().count(), 0);
    for gone in ["home", "dev", "run", "tmp"] {
        assert!(!tree.join(gone).exists(), "{gone} was left out");
    }
    assert_eq!(stats.placeholders, 2);
    assert_eq!(stats.placeholder_bytes, 12);
    // Every member of the root but the left-out ones.
    assert!(stats.left_out >= 9, "{stats:?}");
    assert_eq!(stats.skipped, 0, "{stats:?}");
    let data: u64 = ["etc/hostname", "etc/hosts", "etc/shadow", "usr/bin/sudo"]
        .iter()
        .map(|p| fs::metadata(tree.join(p)).unwrap().len())
        .sum();
    assert!(stats.data_bytes > data, "{stats:?}");
}

/// A crafted tarball whose tree would have symlinks leading out: the links
/// are written as links, the pass refuses the member behind one, and
/// nothing appears outside the tree.
#[test]
fn symlinks_out_of_the_tree_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let decoy = dir.path().join("decoy");
    fs::create_dir(&decoy).unwrap();
    let spec = spec(dir.path());
    let up = format!("../../../../../../../../..{}", decoy.display());
    let input = Fx::new()
        .dir("./", 0o755)
        .dir("usr", 0o755)
        .symlink("usr/lib", "/")
        .symlink("etc", &up)
        .add(Member {
            data: b"pwned",
            ..Member::new("etc/pwned", EntryType::Regular)
        })
        .finish();
    let err = run_with_tree(&input, &spec).unwrap_err();
    assert!(
        matches!(err, RootfsError::ParentNotDirectory { .. }),
        "{err}"
    );
    assert_eq!(fs::read_dir(&decoy).unwrap().count(), 0);
    assert_eq!(fs::read_link(spec.dir.join("etc")).unwrap(), Path::new(&up));
    assert_eq!(
        fs::read_link(spec.dir.join("usr/lib")).unwrap(),
        Path::new("/")
    );

    // Below the pass, the tee itself refuses a path through a symlink.
    let other = TreeSpec {
        dir: dir.path().join("tree2"),
        ..spec.clone()
    };
    let mut sink = TarSink::new(Vec::new());
    let mut tee = TreeTee::new(&mut sink, &other).unwrap();
    let entry = |path: &str, kind| Entry::root_owned(path, kind, 0o644, 0);
    let link = EntryKind::Symlink {
        target: decoy.display().to_string(),
    };
    tee.write_entry(&entry("out", link), &mut std::io::empty())
        .unwrap();
    let file = entry("out/pwned", EntryKind::File { size: 5 });
    assert!(tee.write_entry(&file, &mut &b"pwned"[..]).is_err());
    let dir_entry = entry("out/sub", EntryKind::Dir);
    assert!(tee.write_entry(&dir_entry, &mut std::io::empty()).is_err());
    assert_eq!(fs::read_dir(&decoy).unwrap().count(), 0);
}

/// More file data than the tree may hold stops the pass at that member.
#[test]
fn the_tree_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TreeSpec {
        max_bytes: 10,
        ..spec(dir.path())
    };
    let input = Fx::new()
        .dir("./", 0o755)
        .dir("etc", 0o755)
        .file("etc/a", b"12345")
        .file("etc/b", b"123456")
        .finish();
    let err = run_with_tree(&input, &spec).unwrap_err();
    let text = format!("{:#}", anyhow::Error::new(err));
    assert!(text.contains("/etc/b"), "{text}");
    assert!(text.contains("more than"), "{text}");
    // Left out or kept as a size, data does not count (the edited
    // fstab, hostname and hosts, about 100 bytes, do).
    let big = vec![b'x'; 4096];
    let input = Fx::new()
        .dir("./", 0o755)
        .dir("boot", 0o755)
        .file("boot/vmlinuz-1", &big)
        .dir("home", 0o755)
        .file("home/big", &big)
        .finish();
    let spec = TreeSpec {
        dir: dir.path().join("tree2"),
        max_bytes: 1024,
        ..spec
    };
    assert!(run_with_tree(&input, &spec).is_ok());
}
