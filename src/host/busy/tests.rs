use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use super::*;

const LOOP3: DevNum = DevNum { major: 7, minor: 3 };
const LOOP3P1: DevNum = DevNum {
    major: 259,
    minor: 0,
};
const DM0: DevNum = DevNum {
    major: 253,
    minor: 0,
};

/// A sysfs with loop3 (partition loop3p1, dm-0 stacked on loop3p1) laid
/// out as the kernel does: `dev/block/MAJ:MIN` links into `devices/`.
fn fake_sysfs(root: &Path, backing: &Path) {
    let disk = root.join("devices/virtual/block/loop3");
    fs::create_dir_all(disk.join("loop3p1/holders")).unwrap();
    fs::create_dir_all(disk.join("holders")).unwrap();
    fs::create_dir_all(disk.join("loop")).unwrap();
    fs::write(disk.join("dev"), "7:3\n").unwrap();
    fs::write(
        disk.join("loop/backing_file"),
        format!("{}\n", backing.display()),
    )
    .unwrap();
    fs::write(disk.join("loop3p1/dev"), "259:0\n").unwrap();
    fs::write(disk.join("loop3p1/partition"), "1\n").unwrap();
    let dm = root.join("devices/virtual/block/dm-0");
    fs::create_dir_all(&dm).unwrap();
    fs::write(dm.join("dev"), "253:0\n").unwrap();
    symlink("../../../dm-0", disk.join("loop3p1/holders/dm-0")).unwrap();
    fs::create_dir_all(root.join("dev/block")).unwrap();
    fs::create_dir_all(root.join("block")).unwrap();
    symlink(
        "../../devices/virtual/block/loop3",
        root.join("dev/block/7:3"),
    )
    .unwrap();
    symlink(
        "../../devices/virtual/block/loop3/loop3p1",
        root.join("dev/block/259:0"),
    )
    .unwrap();
    symlink(
        "../../devices/virtual/block/dm-0",
        root.join("dev/block/253:0"),
    )
    .unwrap();
    symlink("../devices/virtual/block/loop3", root.join("block/loop3")).unwrap();
}

struct Host {
    dir: tempfile::TempDir,
    tables: HostTables,
}

fn host(mounts: &[(&str, &str, &str)], swaps: &[&str]) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fake_sysfs(&root.join("sys"), &root.join("backing.img"));
    let mut text = String::from("22 1 0:21 / /proc rw,relatime shared:12 - proc proc rw\n");
    for (i, (dev, point, source)) in mounts.iter().enumerate() {
        text.push_str(&format!(
            "{} 22 {dev} / {point} rw,relatime shared:1 master:2 - ext4 {source} rw\n",
            30 + i
        ));
    }
    fs::write(root.join("mountinfo"), text).unwrap();
    let mut table = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    for s in swaps {
        table.push_str(&format!("{s}\t\t\t\tfile\t\t1024\t\t0\t\t-2\n"));
    }
    fs::write(root.join("swaps"), table).unwrap();
    let tables = HostTables {
        mountinfo: root.join("mountinfo"),
        swaps: root.join("swaps"),
        sysfs: root.join("sys"),
    };
    Host { dir, tables }
}

#[test]
fn family_of_a_disk_has_its_partitions_and_their_holders() {
    let h = host(&[], &[]);
    let family = device_family(&h.tables.sysfs, LOOP3);
    assert_eq!(
        family.members,
        vec![
            (LOOP3, Relation::Itself),
            (LOOP3P1, Relation::Partition("loop3p1".into())),
            (DM0, Relation::Holder("dm-0".into())),
        ]
    );
    // A partition: itself and its holder, not its disk or siblings.
    let family = device_family(&h.tables.sysfs, LOOP3P1);
    assert_eq!(
        family.members,
        vec![
            (LOOP3P1, Relation::Itself),
            (DM0, Relation::Holder("dm-0".into()))
        ]
    );
    // Unknown to sysfs: only itself.
    let other = DevNum { major: 8, minor: 0 };
    assert_eq!(device_family(&h.tables.sysfs, other).members.len(), 1);
}

#[test]
fn a_mounted_disk_partition_or_holder_is_refused() {
    for (dev, point, expected) in [
        ("7:3", "/mnt", Relation::Itself),
        ("259:0", "/media/x y", Relation::Partition("loop3p1".into())),
        ("253:0", "/srv", Relation::Holder("dm-0".into())),
    ] {
        let escaped = point.replace(' ', "\\040");
        let h = host(
            &[("8:2", "/", "/dev/sda2"), (dev, &escaped, "/dev/whatever")],
            &[],
        );
        let found = find_use(TargetId::Block(LOOP3), &h.tables).unwrap();
        match found {
            Some(InUse::Mounted {
                relation,
                mount_point,
                line,
                ..
            }) => {
                assert_eq!(relation, expected);
                assert_eq!(mount_point, point);
                assert_eq!(line, 3);
            }
            other => panic!("{dev}: {other:?}"),
        }
    }
}

#[test]
fn the_root_mount_is_the_running_system() {
    let h = host(&[("259:0", "/", "/dev/loop3p1")], &[]);
    let err = refuse_in_use(Path::new("/dev/loop3"), TargetId::Block(LOOP3), &h.tables)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds the running system"), "{err}");
    assert!(err.contains("loop3p1"), "{err}");
    assert!(err.contains("mountinfo:2"), "{err}");
}

#[test]
fn unrelated_mounts_and_sibling_partitions_are_not_refused() {
    let h = host(
        &[("8:2", "/", "/dev/sda2"), ("7:3", "/mnt", "/dev/loop3")],
        &[],
    );
    // loop3p1's disk is mounted (odd, but it is not the target or its part).
    assert_eq!(find_use(TargetId::Block(LOOP3P1), &h.tables).unwrap(), None);
    let other = DevNum { major: 7, minor: 9 };
    assert_eq!(find_use(TargetId::Block(other), &h.tables).unwrap(), None);
}

#[test]
fn a_swap_file_and_a_loop_backing_file_are_refused() {
    let h = host(&[], &[]);
    let file = h.dir.path().join("target img");
    fs::write(&file, b"x").unwrap();
    let meta = fs::metadata(&file).unwrap();
    let id = TargetId::File {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    assert_eq!(find_use(id, &h.tables).unwrap(), None);
    let escaped = file.display().to_string().replace(' ', "\\040");
    let h2 = host(&[], &[&escaped]);
    let err = refuse_in_use(&file, id, &h2.tables)
        .unwrap_err()
        .to_string();
    assert!(err.contains("active swap file"), "{err}");

    let backing = h.dir.path().join("backing.img");
    fs::write(&backing, b"y").unwrap();
    let meta = fs::metadata(&backing).unwrap();
    let id = TargetId::File {
        dev: meta.dev(),
        ino: meta.ino(),
    };
    assert_eq!(
        find_use(id, &h.tables).unwrap(),
        Some(InUse::LoopBacking {
            device: "loop3".into()
        })
    );
}

#[test]
fn mountinfo_lines_are_parsed_and_bad_ones_named() {
    let text =
        "36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                37 35 0:5 / /dev rw - devtmpfs udev rw\n";
    let entries = parse_mountinfo(text).unwrap();
    assert_eq!(
        entries[0],
        MountEntry {
            line: 1,
            dev: DevNum {
                major: 98,
                minor: 0
            },
            mount_point: "/mnt 2".into(),
            source: "/dev/root".into(),
        }
    );
    assert_eq!(entries[1].source, "udev");
    let err = parse_mountinfo("36 35 98:0 /x /y rw - ext4\n1 2 x:y / / rw - a b c\n").unwrap_err();
    assert!(err.starts_with("line 1:"), "{err}");
    let err =
        parse_mountinfo("36 35 98:0 /x /y rw - ext4 s o\n1 2 x:y / / rw - a b c\n").unwrap_err();
    assert!(err.starts_with("line 2:"), "{err}");
    assert_eq!(
        parse_swaps("Filename Type\n/swap\\040file file 1 0 -2\n"),
        ["/swap file"]
    );
}
