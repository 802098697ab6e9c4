use std::fs;
use std::io::Read;
use std::path::Path;

use super::*;
use crate::rootfs::entry::Xattr;

fn dir(path: &str) -> (Entry, Vec<u8>) {
    (
        Entry::root_owned(path, EntryKind::Dir, 0o755, 100),
        Vec::new(),
    )
}

fn file(path: &str, data: &[u8]) -> (Entry, Vec<u8>) {
    let size = data.len() as u64;
    (
        Entry::root_owned(path, EntryKind::File { size }, 0o644, 200),
        data.to_vec(),
    )
}

fn link(path: &str, target: &str) -> (Entry, Vec<u8>) {
    let kind = EntryKind::HardLink {
        target: target.into(),
    };
    (Entry::root_owned(path, kind, 0o644, 200), Vec::new())
}

/// The tar the sink writes for `entries` (in this arrival order).
fn tar_of(dir: &Path, name: &str, entries: &[(Entry, Vec<u8>)]) -> Result<Vec<u8>, SinkError> {
    let spool_path = dir.join(format!("{name}.spool"));
    let out = dir.join(format!("{name}.tar"));
    let spool = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&spool_path)
        .unwrap();
    let mut sink = SortedTarSink::new(spool, spool_path.clone(), out.clone());
    for (e, data) in entries {
        sink.write_entry(e, &mut data.as_slice())?;
    }
    sink.finish()?;
    let (path, _) = sink.write_tar()?;
    assert!(!spool_path.exists(), "the spool is removed");
    Ok(fs::read(path).unwrap())
}

/// (path, type, link target, contents) of every member.
fn members(tar: &[u8]) -> Vec<(String, tar::EntryType, String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let target = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, kind, target, data)
        })
        .collect()
}

#[test]
fn another_member_order_gives_the_same_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let a = [
        dir(""),
        dir("etc"),
        file("etc/passwd", b"root:x:0:0\n"),
        dir("usr"),
        dir("usr/bin"),
        file("usr/bin/a", &big),
        link("usr/bin/b", "usr/bin/a"),
        link("usr/bin/c", "usr/bin/b"),
        file("etc-z", b"zz"),
    ];
    // Directory order, and the data stored under another name of the link group.
    let b = [
        dir(""),
        dir("usr"),
        dir("usr/bin"),
        file("usr/bin/c", &big),
        link("usr/bin/a", "usr/bin/c"),
        link("usr/bin/b", "usr/bin/c"),
        file("etc-z", b"zz"),
        dir("etc"),
        file("etc/passwd", b"root:x:0:0\n"),
    ];
    let (ta, tb) = (
        tar_of(tmp.path(), "a", &a).unwrap(),
        tar_of(tmp.path(), "b", &b).unwrap(),
    );
    assert!(ta == tb, "two packings of one tree differ");
    let m = members(&ta);
    let names: Vec<&str> = m.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "./",
            "etc",
            "etc-z",
            "etc/passwd",
            "usr",
            "usr/bin",
            "usr/bin/a",
            "usr/bin/b",
            "usr/bin/c"
        ]
    );
    // The first name of the group holds the data; the others link to it.
    assert_eq!(m[6].1, tar::EntryType::Regular);
    assert!(m[6].3 == big);
    assert_eq!(
        (m[7].1, m[7].2.as_str()),
        (tar::EntryType::Link, "usr/bin/a")
    );
    assert_eq!(
        (m[8].1, m[8].2.as_str()),
        (tar::EntryType::Link, "usr/bin/a")
    );
}

#[test]
fn a_path_given_twice_keeps_the_last_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tar_of(
        tmp.path(),
        "t",
        &[
            dir(""),
            file("x", b"old"),
            file("y", b"y"),
            file("x", b"new!"),
        ],
    )
    .unwrap();
    let m = members(&t);
    assert_eq!(m.len(), 3);
    assert_eq!(
        (m[1].0.as_str(), m[1].3.as_slice()),
        ("x", b"new!".as_slice())
    );
}

#[test]
fn xattrs_follow_the_file_to_the_head_of_its_group() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut f, data) = file("z", b"cap");
    f.xattrs.push(Xattr {
        name: "security.capability".into(),
        value: vec![1, 2, 3],
    });
    let spool_path = tmp.path().join("s.spool");
    let spool = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&spool_path)
        .unwrap();
    let mut sink = SortedTarSink::new(spool, spool_path, tmp.path().join("s.tar"));
    sink.write_entry(&dir("").0, &mut io::empty()).unwrap();
    sink.write_entry(&f, &mut data.as_slice()).unwrap();
    sink.write_entry(&link("a", "z").0, &mut io::empty())
        .unwrap();
    let (_, xattrs) = sink.write_tar().unwrap();
    assert_eq!(xattrs.len(), 1);
    assert_eq!(xattrs[0].path, "a");
}

#[test]
fn links_to_what_is_not_a_file_here_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = tar_of(tmp.path(), "d", &[dir(""), dir("d"), link("l", "d")]).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
    let err = tar_of(tmp.path(), "m", &[dir(""), link("l", "gone")]).unwrap_err();
    assert!(
        err.to_string().contains("is not in this partition"),
        "{err}"
    );
}

#[test]
fn a_short_member_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let spool_path = tmp.path().join("s.spool");
    let spool = File::create(&spool_path).unwrap();
    let mut sink = SortedTarSink::new(spool, spool_path, tmp.path().join("s.tar"));
    let (e, _) = file("f", b"12345");
    assert!(sink.write_entry(&e, &mut b"12".as_slice()).is_err());
}
