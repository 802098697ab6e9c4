//! Budgets, duplicate paths, over-long names and empty archives: the pass
//! refuses them with the path, before any sink sees the offending entry.

use tar::{EntryType, Header};

use super::fixture::{run, run_budgeted, Fx, Member};
use crate::rootfs::{Budget, Captures, Edits, RootfsError};

const EPOCH: u64 = 1_700_000_000;

/// A member header that declares `size` bytes, with none of them behind
/// it: the pass must refuse it from the header alone (reading the data
/// would report a truncated archive instead).
pub(super) fn header_only(name: &str, size: u64) -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(EPOCH);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut tar = Fx::new().dir("etc", 0o755).finish();
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(h.as_bytes());
    tar
}

/// A GNU sparse member: `real` bytes long, storing only 512 of them.
fn sparse(name: &str, real: u64) -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_size(512);
    h.set_mtime(EPOCH);
    h.set_uid(0);
    h.set_gid(0);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.sparse[0].set_offset(0);
    gnu.sparse[0].set_length(512);
    gnu.set_real_size(real);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[b'x'; 512]);
    tar.extend_from_slice(&[0; 1024]);
    tar
}

fn budgeted(tar: &[u8], budget: Budget) -> Result<(), RootfsError> {
    run_budgeted(
        tar,
        &Edits::new(EPOCH),
        &[],
        Captures::default(),
        Some(budget),
    )
    .map(|_| ())
}

#[test]
fn a_member_larger_than_the_partition_is_refused_from_its_header() {
    let tar = header_only("var/big", 2 << 30);
    let err = budgeted(&tar, Budget::ext4("rootfs", 64 << 20)).unwrap_err();
    match &err {
        RootfsError::OverBudget {
            partition,
            path,
            needed,
            ..
        } => {
            assert_eq!((partition.as_str(), path.as_str()), ("rootfs", "/var/big"));
            assert_eq!(*needed, 2 << 30);
        }
        other => panic!("expected OverBudget, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("grow the partition 'rootfs' in board.toml or use a smaller rootfs"),
        "{text}"
    );
    // Without a budget the same archive reads its data and is truncated.
    let plain = run(&tar, &Edits::new(EPOCH), &[], Captures::default());
    assert!(matches!(
        plain,
        Err(RootfsError::TruncatedArchive { .. }) | Err(RootfsError::TruncatedMember { .. })
    ));
}

/// FAT has no holes: a sparse member costs its full size there.
#[test]
fn a_sparse_member_costs_its_full_size_on_fat() {
    let err = budgeted(
        &sparse("EFI/big.efi", 2 << 30),
        Budget::vfat("esp", 64 << 20),
    )
    .unwrap_err();
    assert!(
        matches!(&err, RootfsError::OverBudget { partition, needed, .. } if partition == "esp" && *needed == 2 << 30),
        "{err:?}"
    );
}

#[test]
fn inodes_run_out_before_bytes() {
    let mut fx = Fx::new();
    let names: Vec<String> = (0..60).map(|i| format!("f{i}")).collect();
    for name in &names {
        fx.file(name, b"");
    }
    let err = budgeted(&fx.finish(), Budget::ext4("rootfs", 1 << 20)).unwrap_err();
    assert!(
        matches!(&err, RootfsError::OutOfInodes { inodes: 53, path, .. } if path == "/f53"),
        "{err:?}"
    );
}

#[test]
fn a_path_given_twice_as_different_kinds_names_both() {
    let cases: [(Vec<u8>, &str, &str, &str); 2] = [
        (
            Fx::new().file("a", b"1").dir("a", 0o755).finish(),
            "/a",
            "file",
            "directory",
        ),
        (
            Fx::new().dir("d", 0o755).symlink("d", "x").finish(),
            "/d",
            "directory",
            "symlink",
        ),
    ];
    for (tar, want_path, want_first, want_second) in cases {
        let err = run(&tar, &Edits::new(EPOCH), &[], Captures::default()).unwrap_err();
        match &err {
            RootfsError::DuplicateEntry {
                path,
                first,
                second,
                ..
            } => assert_eq!(
                (path.as_str(), first.as_str(), second.as_str()),
                (want_path, want_first, want_second)
            ),
            other => panic!("expected DuplicateEntry, got {other:?}"),
        }
    }
    // The same kind twice is tar's "the later one wins", which mke2fs follows.
    run(
        &Fx::new().file("a", b"1").file("a", b"2").finish(),
        &Edits::new(EPOCH),
        &[],
        Captures::default(),
    )
    .unwrap();
}

#[test]
fn a_name_over_255_bytes_is_refused_with_the_member() {
    let ok = format!("d/{}", "x".repeat(255));
    let long = format!("d/{}", "x".repeat(256));
    let edits = Edits::new(EPOCH);
    let mut fx = Fx::new();
    fx.add(Member::new(&ok, EntryType::Regular));
    run(&fx.finish(), &edits, &[], Captures::default()).unwrap();
    let mut fx = Fx::new();
    fx.add(Member::new(&long, EntryType::Regular));
    let err = run(&fx.finish(), &edits, &[], Captures::default()).unwrap_err();
    assert!(
        matches!(&err, RootfsError::NameTooLong { name, len: 256, .. } if *name == long),
        "{err:?}"
    );
}

#[test]
fn a_valid_empty_archive_says_it_has_no_entries() {
    for tar in [vec![0u8; 10240], vec![0u8; 1024]] {
        let err = run(&tar, &Edits::new(EPOCH), &[], Captures::default()).unwrap_err();
        assert!(matches!(err, RootfsError::NoEntries), "{err:?}");
        assert!(err
            .to_string()
            .contains("the rootfs tarball has no entries"));
        assert!(!err.is_format_error());
    }
}
