//! `Edits::rewrites`: a small file of the tarball (or an overlay file)
//! changed as it streams, its owner, mode and xattrs kept, its size limit
//! enforced from the header; what it leaves alone (symlinks, removed
//! paths, absent files).

use std::sync::Arc;

use tar::EntryType;

use super::fixture::{image_edits, run, Fx, Member, CAP_NET_RAW, EPOCH, OLD};
use super::limits::header_only;
use super::stream::{find, read_back};
use crate::rootfs::{Captured, Captures, Edits, Rewrite, RootfsError};

/// Appends `+x` to the file; refuses text starting with `bad`.
fn append_x() -> Rewrite {
    Rewrite {
        limit: 64,
        edit: Arc::new(|bytes: &[u8]| {
            if bytes.starts_with(b"bad") {
                return Err("not a file this edit reads".to_string());
            }
            let mut out = bytes.to_vec();
            out.extend_from_slice(b"+x\n");
            Ok(out)
        }),
    }
}

fn edits_with(path: &str) -> Edits {
    let mut edits = image_edits();
    edits.rewrites.insert(path.to_string(), append_x());
    edits
}

fn captures() -> Captures {
    Captures {
        files: vec!["/etc/default/grub".to_string()],
        ..Captures::default()
    }
}

fn tarball(grub: Member<'_>) -> Vec<u8> {
    let mut fx = Fx::new();
    fx.dir("etc", 0o755).dir("etc/default", 0o755).add(grub);
    fx.file("etc/other", b"other\n").finish()
}

#[test]
fn the_file_is_changed_its_metadata_kept_and_captured() {
    let input = tarball(Member {
        mode: 0o640,
        owner: (0, 42, "root", "adm"),
        data: b"GRUB_TIMEOUT=5\n",
        pax: vec![("SCHILY.xattr.security.capability", CAP_NET_RAW.to_vec())],
        ..Member::new("etc/default/grub", EntryType::Regular)
    });
    let r = run(&input, &edits_with("/etc/default/grub"), &[], captures()).unwrap();
    let out = read_back(&r.root_tar);
    let grub = find(&out, "etc/default/grub");
    assert_eq!(grub.data, b"GRUB_TIMEOUT=5\n+x\n");
    assert_eq!((grub.mode, grub.uid, grub.gid), (0o640, 0, 42));
    assert_eq!((grub.uname.as_str(), grub.gname.as_str()), ("root", "adm"));
    assert_eq!(
        grub.xattrs,
        [("security.capability".to_string(), CAP_NET_RAW.to_vec())]
    );
    // Changed by the build: SOURCE_DATE_EPOCH, not the tarball's OLD.
    assert_eq!(grub.mtime, EPOCH);
    assert_ne!(grub.mtime, OLD);
    assert_eq!(find(&out, "etc/other").data, b"other\n", "others untouched");
    assert_eq!(
        r.summary.captures.files.get("/etc/default/grub"),
        Some(&Captured::File(b"GRUB_TIMEOUT=5\n+x\n".to_vec())),
        "captures see the image's file"
    );
    // Deterministic: the same input, the same output bytes.
    let again = run(&input, &edits_with("/etc/default/grub"), &[], captures()).unwrap();
    assert_eq!(again.root_tar, r.root_tar);
}

#[test]
fn a_file_over_the_limit_is_refused_from_its_header() {
    // The header says 65 bytes and no data follows: reading would report a
    // truncated archive; the limit must be checked first.
    let input = header_only("etc/default/grub", 65);
    let err = run(&input, &edits_with("/etc/default/grub"), &[], captures()).unwrap_err();
    assert!(
        matches!(
            err,
            RootfsError::RewriteTooLarge {
                size: 65,
                limit: 64,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("\"etc/default/grub\""), "{text}");
    assert!(text.contains("65 bytes"), "{text}");
    // Within the limit but cut short: the truncated member, by name.
    let input = header_only("etc/default/grub", 10);
    let err = run(&input, &edits_with("/etc/default/grub"), &[], captures()).unwrap_err();
    assert!(err.is_format_error(), "{err:?}");
    assert!(err.to_string().contains("truncated"), "{err}");
    // At the limit: fine.
    let input = tarball(Member {
        data: &[b'#'; 64],
        ..Member::new("etc/default/grub", EntryType::Regular)
    });
    run(&input, &edits_with("/etc/default/grub"), &[], captures()).unwrap();
}

#[test]
fn the_edits_refusal_names_the_member() {
    let input = tarball(Member {
        data: b"bad\n",
        ..Member::new("etc/default/grub", EntryType::Regular)
    });
    let err = run(&input, &edits_with("/etc/default/grub"), &[], captures()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RootfsError::Rewrite { .. }), "{err:?}");
    assert!(text.contains("\"etc/default/grub\""), "{text}");
    assert!(text.contains("not a file this edit reads"), "{text}");
}

#[test]
fn symlinks_removed_and_absent_paths_are_left_alone() {
    // A symlink is not followed and not replaced; its target stays as it is.
    let mut fx = Fx::new();
    fx.dir("etc", 0o755)
        .file("etc/shadow", b"root:*:1::::::\n")
        .dir("etc/default", 0o755)
        .symlink("etc/default/grub", "/etc/shadow");
    let r = run(
        &fx.finish(),
        &edits_with("/etc/default/grub"),
        &[],
        captures(),
    )
    .unwrap();
    let out = read_back(&r.root_tar);
    assert_eq!(
        find(&out, "etc/default/grub").link.as_deref(),
        Some("/etc/shadow")
    );
    assert_eq!(find(&out, "etc/shadow").data, b"root:*:1::::::\n");

    // Removed: gone, not rewritten.
    let input = tarball(Member {
        data: b"x\n",
        ..Member::new("etc/default/grub", EntryType::Regular)
    });
    let mut edits = edits_with("/etc/default/grub");
    edits.remove.push("/etc/default".to_string());
    let r = run(&input, &edits, &[], captures()).unwrap();
    assert!(!read_back(&r.root_tar)
        .iter()
        .any(|o| o.path.starts_with("etc/default")));

    // Absent: not created.
    let r = run(
        &tarball(Member::new("etc/x", EntryType::Regular)),
        &edits_with("/etc/default/grub"),
        &[],
        captures(),
    )
    .unwrap();
    assert!(!read_back(&r.root_tar)
        .iter()
        .any(|o| o.path == "etc/default/grub"));
}

#[test]
fn an_overlay_file_there_is_rewritten_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/default")).unwrap();
    std::fs::write(dir.path().join("etc/default/grub"), b"board's own\n").unwrap();
    let mut edits = edits_with("/etc/default/grub");
    edits.overlay = crate::rootfs::scan_overlay(dir.path()).unwrap();
    // The tarball's file is replaced by the overlay's, which is rewritten.
    let input = tarball(Member {
        data: b"distro\n",
        ..Member::new("etc/default/grub", EntryType::Regular)
    });
    let r = run(&input, &edits, &[], captures()).unwrap();
    let out = read_back(&r.root_tar);
    assert_eq!(find(&out, "etc/default/grub").data, b"board's own\n+x\n");
    // Also when the tarball has none.
    let r = run(
        &tarball(Member::new("etc/x", EntryType::Regular)),
        &edits,
        &[],
        captures(),
    )
    .unwrap();
    let out = read_back(&r.root_tar);
    assert_eq!(find(&out, "etc/default/grub").data, b"board's own\n+x\n");
}

/// Yields `data` up to `fail_at`, then a read error (a disk gone bad).
struct FailingReader {
    data: Vec<u8>,
    at: usize,
    fail_at: usize,
}

impl std::io::Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.fail_at {
            return Err(std::io::Error::other("disk gone"));
        }
        let n = buf.len().min(self.fail_at - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A read error inside the rewritten member is the input's error, with
/// its source: not a "truncated" archive.
#[test]
fn a_read_error_inside_the_file_keeps_its_source() {
    let big = vec![b'#'; 600 << 10];
    let input = tarball(Member {
        data: &big,
        ..Member::new("etc/default/grub", EntryType::Regular)
    });
    let mut edits = image_edits();
    let mut rewrite = append_x();
    rewrite.limit = 1 << 20;
    edits
        .rewrites
        .insert("/etc/default/grub".to_string(), rewrite);
    let mut root = crate::rootfs::TarSink::new(Vec::new());
    let job = crate::rootfs::RootfsJob {
        edits: &edits,
        root: &mut root,
        root_budget: None,
        split: Vec::new(),
        captures: captures(),
    };
    let reader = FailingReader {
        data: input,
        at: 0,
        fail_at: 300 << 10,
    };
    let err = crate::rootfs::process_rootfs(reader, job).unwrap_err();
    match &err {
        RootfsError::Input { source, .. } => assert_eq!(source.to_string(), "disk gone"),
        other => panic!("{other:?}"),
    }
}

/// A key with a `*` rewrites every file its pattern matches, and only
/// those (a name that only starts alike, a deeper path, a directory of
/// that name are left alone); a path's own rewrite wins over the pattern.
#[test]
fn a_pattern_key_rewrites_every_matching_file() {
    let mut fx = Fx::new();
    fx.dir("boot", 0o755)
        .dir("boot/entries", 0o755)
        .file("boot/entries/a.conf", b"a\n")
        .file("boot/entries/b.conf", b"b\n")
        .file("boot/entries/own.conf", b"own\n")
        .file("boot/entries/c.conf.bak", b"c\n")
        .dir("boot/entries/d.conf", 0o755)
        .file("boot/entries/d.conf/e.conf", b"e\n");
    let input = fx.finish();
    let mut edits = edits_with("/boot/entries/*.conf");
    let own = Rewrite {
        limit: 64,
        edit: Arc::new(|_: &[u8]| Ok(b"own rewrite\n".to_vec())),
    };
    edits
        .rewrites
        .insert("/boot/entries/own.conf".to_string(), own);
    let r = run(&input, &edits, &[], Captures::default()).unwrap();
    let out = read_back(&r.root_tar);
    let data = |path: &str| String::from_utf8(find(&out, path).data.clone()).unwrap();
    assert_eq!(data("boot/entries/a.conf"), "a\n+x\n");
    assert_eq!(data("boot/entries/b.conf"), "b\n+x\n");
    assert_eq!(data("boot/entries/own.conf"), "own rewrite\n");
    assert_eq!(data("boot/entries/c.conf.bak"), "c\n");
    assert_eq!(data("boot/entries/d.conf/e.conf"), "e\n");
}
