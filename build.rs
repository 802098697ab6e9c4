//! Compiles the libext2fs shim (src/filesystems/ext4/xattr_shim.c) and links
//! libext2fs and libcom_err (Debian: libext2fs-dev and comerr-dev, which
//! scripts/setup-debian.sh installs from bookworm-backports).
//!
//! Also writes `$OUT_DIR/builtin_boards.rs`, the table of built-in boards
//! (`boards/<name>/*`) that `src/board/builtin.rs` includes: one entry per
//! board directory, each regular file embedded with `include_bytes!`. A
//! symlink, a subdirectory or a non-UTF-8 name there stops the build, so
//! nothing is embedded by accident or silently left out.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    let shim = "src/filesystems/ext4/xattr_shim.c";
    println!("cargo::rerun-if-changed={shim}");
    cc::Build::new()
        .file(shim)
        .warnings(true)
        .extra_warnings(true)
        .compile("mkimg_xattr_shim");
    println!("cargo::rustc-link-lib=ext2fs");
    println!("cargo::rustc-link-lib=com_err");

    // A directory: cargo rescans everything under it for changes.
    println!("cargo::rerun-if-changed=boards");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    let table = builtin_boards_table(&Path::new(&manifest_dir).join("boards"));
    fs::write(Path::new(&out_dir).join("builtin_boards.rs"), table)
        .expect("writing builtin_boards.rs");
}

/// `&[BuiltinBoard { name, files: &[(file name, bytes)] }, …]`, sorted.
fn builtin_boards_table(boards: &Path) -> String {
    let mut out = String::from("&[\n");
    for board in sorted_entries(boards) {
        let meta = fs::symlink_metadata(&board).expect("reading boards/");
        assert!(
            meta.is_dir(),
            "{}: only board directories belong in boards/",
            board.display()
        );
        let name = utf8_name(&board);
        let files = sorted_entries(&board);
        assert!(
            files
                .iter()
                .any(|f| f.file_name().is_some_and(|n| n == "board.toml")),
            "{}: no board.toml",
            board.display()
        );
        writeln!(
            out,
            "    BuiltinBoard {{\n        name: {name:?},\n        files: &["
        )
        .unwrap();
        for file in files {
            let meta = fs::symlink_metadata(&file).expect("reading a board directory");
            assert!(
                meta.file_type().is_file(),
                "{}: a built-in board may only hold regular files",
                file.display()
            );
            let path = file.to_str().expect("board file path is not UTF-8");
            writeln!(
                out,
                "            ({:?}, include_bytes!({path:?})),",
                utf8_name(&file)
            )
            .unwrap();
        }
        out.push_str("        ],\n    },\n");
    }
    out.push(']');
    out
}

fn sorted_entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("reading a directory entry").path())
        .collect();
    entries.sort();
    entries
}

fn utf8_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{}: name is not UTF-8", path.display()))
        .to_string()
}
