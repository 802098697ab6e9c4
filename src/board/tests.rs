use std::path::Path;

use super::{parse_board, BoardError, BoardSearch};

const MINIMAL: &str = r#"
[board]
name = "t"
description = "test"
arch = "riscv64"
hostname = "t"
image = "t"

[disk]
table = "gpt"
size = "64M"

[[partition]]
name = "root"
type = "linux"
size = "rest"
filesystem = "ext4"
"#;

fn parse_err(text: &str) -> String {
    match parse_board(text, Path::new("boards/t/board.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn minimal_board_parses() {
    let board = parse_board(MINIMAL, Path::new("b.toml")).unwrap();
    assert_eq!(board.partitions.len(), 1);
    assert_eq!(board.disk.size.get_ref().0, 64 << 20);
}

#[test]
fn unknown_key_cites_file_line_column() {
    let text = MINIMAL.replace(
        "filesystem = \"ext4\"",
        "filesystem = \"ext4\"\nfstype = \"ext4\"",
    );
    let err = parse_err(&text);
    assert!(err.starts_with("boards/t/board.toml:18:1: "), "{err}");
    assert!(err.contains("unknown field `fstype`"), "{err}");
}

#[test]
fn wrong_type_cites_location() {
    let text = MINIMAL.replace("image = \"t\"", "image = 5");
    let err = parse_err(&text);
    assert!(err.starts_with("boards/t/board.toml:7:9: "), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn bad_size_cites_location_and_fix() {
    let text = MINIMAL.replace("size = \"64M\"", "size = \"64m\"");
    let err = parse_err(&text);
    assert!(err.starts_with("boards/t/board.toml:11:8: "), "{err}");
    assert!(err.contains("unit \"m\" is not accepted"), "{err}");
}

#[test]
fn unknown_arch_is_an_error() {
    let err = parse_err(&MINIMAL.replace("riscv64", "sparc"));
    assert!(err.contains("unknown architecture \"sparc\""), "{err}");
}

#[test]
fn builtin_boards_are_listed_and_parse() {
    let search = BoardSearch {
        dirs: vec![super::builtin_boards_dir()],
    };
    let names: Vec<String> = search.list().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"qemu-riscv64".to_string()), "{names:?}");
    assert!(names.contains(&"qemu-aarch64".to_string()), "{names:?}");
    for (name, found) in search.list() {
        let board = found.load().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            board.file.board.name.as_str(),
            name,
            "board name must match its directory"
        );
    }
}

/// The embedded table is the source tree's boards/, file for file.
#[test]
fn embedded_boards_are_the_source_tree_boards() {
    use super::builtin::BUILTIN_BOARDS;
    let dir = super::builtin_boards_dir();
    let mut on_disk: Vec<(String, String, Vec<u8>)> = Vec::new();
    for board in std::fs::read_dir(&dir).unwrap() {
        let board = board.unwrap();
        for file in std::fs::read_dir(board.path()).unwrap() {
            let file = file.unwrap();
            on_disk.push((
                board.file_name().into_string().unwrap(),
                file.file_name().into_string().unwrap(),
                std::fs::read(file.path()).unwrap(),
            ));
        }
    }
    on_disk.sort();
    let embedded: Vec<(String, String, Vec<u8>)> = BUILTIN_BOARDS
        .iter()
        .flat_map(|b| {
            b.files
                .iter()
                .map(|(n, bytes)| (b.name.to_string(), n.to_string(), bytes.to_vec()))
        })
        .collect();
    assert_eq!(embedded, on_disk);
    assert!(super::BuiltinBoard::find("rock3a")
        .and_then(|b| b.file("README.md"))
        .is_some());
}

/// With no directory to search, every built-in board is still found, and
/// parses; a user directory holding a board of the same name wins.
#[test]
fn builtin_boards_are_found_without_any_directory_and_lose_to_user_boards() {
    let empty = BoardSearch { dirs: Vec::new() };
    let names: Vec<String> = empty.list().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "nezha",
            "qemu-aarch64",
            "qemu-aarch64-uboot",
            "qemu-riscv64",
            "rock3a"
        ]
    );
    let board = super::load_board("rock3a", &empty).unwrap();
    assert_eq!(board.path, Path::new("<built-in>/rock3a/board.toml"));
    assert!(
        board.dir.ends_with("mkimg/boards/rock3a"),
        "{:?}",
        board.dir
    );

    let user = tempfile::tempdir().unwrap();
    std::fs::create_dir(user.path().join("rock3a")).unwrap();
    let mine = MINIMAL.replace("name = \"t\"", "name = \"rock3a\"");
    std::fs::write(user.path().join("rock3a/board.toml"), mine).unwrap();
    let search = BoardSearch {
        dirs: vec![user.path().to_path_buf()],
    };
    let board = super::load_board("rock3a", &search).unwrap();
    assert_eq!(board.path, user.path().join("rock3a/board.toml"));
    let listed = search.list();
    let rock3a = listed.iter().find(|(n, _)| n == "rock3a").unwrap();
    assert_eq!(
        rock3a.1,
        super::BoardRef::File(user.path().join("rock3a/board.toml"))
    );
    assert_eq!(listed.len(), 5);
}

#[test]
fn unknown_board_lists_search_path() {
    let search = BoardSearch {
        dirs: vec![super::builtin_boards_dir()],
    };
    let err = search.resolve("no-such-board").unwrap_err();
    assert!(matches!(err, BoardError::NotFound { .. }));
    assert!(err.to_string().contains("mkimg boards"), "{err}");
}

#[test]
fn blob_overrides_replace_sources_or_name_the_choices() {
    use super::{BlobOverride, Board};
    let text = format!(
        "{MINIMAL}\n[[blob]]\nname = \"spl\"\nsource = \"spl.bin\"\noffset = \"8K\"\n\n\
         [[partition]]\nname = \"env\"\ntype = \"linux\"\nsize = \"1M\"\nfilesystem = \"raw\"\nsource = \"env.bin\"\n"
    );
    let file = parse_board(&text, Path::new("b.toml")).unwrap();
    let mut board = Board {
        file,
        path: "b.toml".into(),
        dir: "/boards/b".into(),
        cli_sources: Default::default(),
        text: text.clone(),
        cli_boot: Default::default(),
        source_roots: Vec::new(),
    };
    let o: Vec<BlobOverride> = ["spl=/out/spl.bin", "env=/out/env.img"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    board.override_sources(&o).unwrap();
    assert_eq!(
        board.file.blobs[0].get_ref().source.get_ref(),
        "/out/spl.bin"
    );
    assert_eq!(
        board.file.partitions[1]
            .get_ref()
            .source
            .as_ref()
            .map(|s| s.get_ref().as_str()),
        Some("/out/env.img")
    );
    let err = board
        .override_sources(&["root=/x".parse().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no blob or raw partition named \"root\" (it has: spl, env)"),
        "{err}"
    );
    let err = "spl".parse::<BlobOverride>().unwrap_err().to_string();
    assert!(err.contains("write NAME=PATH"), "{err}");
}

/// fuzz/board_plan: a blob whose `offset` + `size` wraps a u64 made
/// `plan_board` panic ("attempt to add with overflow" in resolve.rs). Sizes
/// over 1 EiB are now refused where they are written, with file:line.
#[test]
fn fuzz_regression_blob_offset_plus_size_wraps() {
    let text = include_str!("../../fuzz/regressions/board_plan/blob-offset-plus-size-wraps.toml");
    let err = parse_err(text);
    assert!(err.starts_with("boards/t/board.toml:15:"), "{err}");
    assert!(err.contains("\"16777215T\" is too large"), "{err}");
    let int = text.replace("\"16777215T\"", "9223372036854775807");
    let err = parse_err(&int);
    assert!(err.contains("9223372036854775807\" is too large"), "{err}");
}
