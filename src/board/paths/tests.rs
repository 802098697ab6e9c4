use std::fs;
use std::os::unix::fs::symlink;

use super::{open_resolved, resolve_board_path, Allowed, PathError};

/// A board directory with one file, a decoy "host secret" beside it, and
/// symlinks that point in and out.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let board = tmp.path().join("board");
    fs::create_dir_all(board.join("sub")).unwrap();
    fs::write(board.join("env.bin"), b"env").unwrap();
    fs::write(tmp.path().join("secret"), b"host secret").unwrap();
    symlink("../secret", board.join("escape")).unwrap();
    symlink("env.bin", board.join("inside")).unwrap();
    symlink(tmp.path(), board.join("up")).unwrap();
    (tmp, board)
}

#[test]
fn files_inside_the_board_directory_resolve() {
    let (_tmp, board) = fixture();
    let canonical = board.canonicalize().unwrap();
    for text in ["env.bin", "./env.bin", "sub/../env.bin", "inside"] {
        let got = resolve_board_path(&board, text, Allowed::BoardDir).unwrap();
        assert_eq!(got, canonical.join("env.bin"), "{text}");
    }
    // Not there yet (a blob still to be fetched): resolved lexically.
    let got = resolve_board_path(&board, "sub/later.bin", Allowed::BoardDir).unwrap();
    assert_eq!(got, canonical.join("sub/later.bin"));
}

#[test]
fn paths_leading_out_are_refused_naming_where_they_lead() {
    let (tmp, board) = fixture();
    let secret = tmp.path().join("secret").canonicalize().unwrap();
    let outside = [
        "../secret".to_string(),
        secret.display().to_string(),
        "escape".to_string(),
        "up/secret".to_string(),
        "/etc/passwd".to_string(),
        "/etc/ssh".to_string(),
    ];
    for text in &outside {
        for allowed in [Allowed::BoardDir, Allowed::BoardDirOrFirmware] {
            let err = resolve_board_path(&board, text, allowed).unwrap_err();
            assert!(matches!(err, PathError::Outside { .. }), "{text}: {err}");
            assert!(err.to_string().contains("outside the board directory"));
        }
    }
    let err = resolve_board_path(&board, "nothing/../../secret2", Allowed::BoardDir).unwrap_err();
    assert!(matches!(err, PathError::DotDot { .. }), "{err}");
    // The command line may name anything.
    let got = resolve_board_path(&board, "escape", Allowed::Anywhere).unwrap();
    assert_eq!(got, secret);
}

#[test]
fn distribution_firmware_directories_are_allowed_for_firmware_only() {
    let (_tmp, board) = fixture();
    for text in [
        "/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd",
        "/usr/share/AAVMF/AAVMF_CODE.fd",
        "/usr/lib/u-boot/qemu_arm64/u-boot.bin",
    ] {
        assert!(
            resolve_board_path(&board, text, Allowed::BoardDirOrFirmware).is_ok(),
            "{text}"
        );
        assert!(resolve_board_path(&board, text, Allowed::BoardDir).is_err());
    }
    for text in [
        "/usr/share/qemu-efi-",
        "/usr/share/doc/x",
        "/usr/lib/u-bootx/y",
    ] {
        assert!(
            resolve_board_path(&board, text, Allowed::BoardDirOrFirmware).is_err(),
            "{text}"
        );
    }
}

#[test]
fn open_resolved_follows_no_symlink() {
    let (_tmp, board) = fixture();
    let canonical = board.canonicalize().unwrap();
    assert!(open_resolved(&canonical.join("env.bin")).is_ok());
    // A symlink planted where the plan saw a file is not followed.
    let err = open_resolved(&canonical.join("escape")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::LOOP.raw_os_error())
    );
}

/// The distribution's firmware resolves even when the board directory
/// cannot be (a built-in board's lies under $HOME, which another user may
/// not read: here it lies under a file, ENOTDIR, which holds for root too).
#[test]
fn firmware_resolves_without_a_readable_board_directory() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("home"), b"not a directory").unwrap();
    let board = tmp.path().join("home/.config/mkimg/boards/qemu-riscv64");
    let firmware = [
        "/usr/share/qemu-efi-riscv64",
        "/usr/share/AAVMF",
        "/usr/share/qemu",
    ]
    .iter()
    .map(std::path::Path::new)
    .find(|dir| dir.is_dir());
    let Some(firmware) = firmware else {
        crate::test_tools::skip_or_fail("no distribution firmware directory (qemu-efi-riscv64)");
        return;
    };
    let text = firmware.join("RISCV_VIRT_CODE.fd");
    let got = resolve_board_path(&board, text.to_str().unwrap(), Allowed::BoardDirOrFirmware);
    assert_eq!(
        got.unwrap(),
        firmware.canonicalize().unwrap().join("RISCV_VIRT_CODE.fd")
    );
    // A board-relative file still needs the directory.
    assert!(resolve_board_path(&board, "blob.bin", Allowed::BoardDir).is_err());
}
