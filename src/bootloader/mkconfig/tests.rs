//! The pure parts of the mkconfig stage: the non-root message and the
//! image fingerprint. (The board's kernel arguments in /etc/default/grub
//! are `board_args`'s, tested there.)

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use super::{hash_image, NEEDS_ROOT};

#[test]
fn needs_root_names_the_rootless_mode() {
    assert!(NEEDS_ROOT.contains("needs root"));
    assert!(NEEDS_ROOT.contains("--grub template"));
}

/// A sparse file of `len` bytes with `data` at `offset`.
fn sparse(
    dir: &std::path::Path,
    name: &str,
    len: u64,
    writes: &[(u64, &[u8])],
) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(len).unwrap();
    for (offset, data) in writes {
        file.seek(SeekFrom::Start(*offset)).unwrap();
        file.write_all(data).unwrap();
    }
    file.sync_all().unwrap();
    path
}

#[test]
fn image_fingerprint_sees_content_not_extents() {
    let dir = tempfile::tempdir().unwrap();
    let len = 64 << 20;
    let data = vec![0x5a; 10_000];
    let zeros = vec![0; 1 << 20];
    let a = sparse(dir.path(), "a", len, &[(3 << 20, &data)]);
    // Same bytes, but with a megabyte of written zeros (data extent, not hole).
    let b = sparse(
        dir.path(),
        "b",
        len,
        &[(3 << 20, &data), (40 << 20, &zeros)],
    );
    assert_eq!(hash_image(&a).unwrap(), hash_image(&b).unwrap());
    // One byte differs, far from the rest.
    let c = sparse(
        dir.path(),
        "c",
        len,
        &[(3 << 20, &data), (50 << 20, b"\x01")],
    );
    assert_ne!(hash_image(&a).unwrap(), hash_image(&c).unwrap());
    // The same data at another offset; a different length.
    let d = sparse(dir.path(), "d", len, &[((3 << 20) + 4096, &data)]);
    assert_ne!(hash_image(&a).unwrap(), hash_image(&d).unwrap());
    let e = sparse(dir.path(), "e", len + 4096, &[(3 << 20, &data)]);
    assert_ne!(hash_image(&a).unwrap(), hash_image(&e).unwrap());
    // Data in the very last partial chunk.
    let f = sparse(dir.path(), "f", len + 100, &[(len + 99, b"\x02")]);
    let g = sparse(dir.path(), "g", len + 100, &[]);
    assert_ne!(hash_image(&f).unwrap(), hash_image(&g).unwrap());
}
