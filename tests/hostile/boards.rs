//! Hostile board files: strings that would land in generated files, names
//! that would write outside the output directory, paths that would copy
//! host files into the image. Every case fails at plan time (or at parse
//! time, citing `board.toml:line:column`), before a byte is written.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::{assert_refused, entries, mkimg_in, tiny_tar};

const STOCK: &str = include_str!("../../boards/qemu-riscv64/board.toml");

/// A sandbox: a board directory, a decoy "host secret" outside it, a work
/// directory, and where the output would go.
struct Case {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    board_dir: PathBuf,
    secret: PathBuf,
    work: PathBuf,
    out: PathBuf,
    rootfs: PathBuf,
}

const SECRET: &[u8] = b"root:$6$decoy-host-secret:19000:0:99999:7:::\n";

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let board_dir = root.join("board");
        let work = root.join("work");
        fs::create_dir_all(&board_dir).unwrap();
        fs::create_dir_all(&work).unwrap();
        let secret = root.join("shadow");
        fs::write(&secret, SECRET).unwrap();
        let rootfs = root.join("rootfs.tar");
        tiny_tar(&rootfs);
        Case {
            out: root.join("out"),
            _tmp: tmp,
            root,
            board_dir,
            secret,
            work,
            rootfs,
        }
    }

    /// The stock qemu-riscv64 board with `line` (a `key = value` line of
    /// the stock file) replaced by `with`, or `with` appended when `line`
    /// is empty.
    fn board(&self, line: &str, with: &str) -> &Path {
        let text = if line.is_empty() {
            format!("{STOCK}\n{with}\n")
        } else {
            assert!(STOCK.contains(line), "stock board has no {line:?}");
            STOCK.replacen(line, with, 1)
        };
        fs::write(self.board_dir.join("board.toml"), text).unwrap();
        &self.board_dir
    }

    fn build(&self) -> std::process::Output {
        mkimg_in(
            &self.work,
            &[
                "build",
                "--board",
                self.board_dir.to_str().unwrap(),
                "--rootfs",
                self.rootfs.to_str().unwrap(),
                "-o",
                self.out.to_str().unwrap(),
            ],
        )
    }

    /// Nothing was written: no output, no work or staging directories, the
    /// decoy intact, and nothing new beside the sandbox's own files.
    fn assert_nothing_written(&self) {
        assert!(!self.out.exists(), "output directory was created");
        assert!(entries(&self.work).is_empty(), "{:?}", entries(&self.work));
        assert_eq!(fs::read(&self.secret).unwrap(), SECRET);
        let mut top: Vec<String> = entries(&self.root)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["board", "rootfs.tar", "shadow", "work"]);
    }
}

#[test]
fn name_with_a_newline_cannot_inject_into_start_vm_sh() {
    let case = Case::new();
    case.board(
        "name = \"qemu-riscv64\"",
        "name = \"x\\ntouch /tmp/mkimg-pwned\"",
    );
    let out = case.build();
    assert_refused(&out, &["board.toml:5:", "plain file name", "'\\n'"]);
    case.assert_nothing_written();
}

#[test]
fn image_names_that_are_paths_are_refused_before_writing() {
    for image in ["../escaped", "/tmp/mkimg-abs-image", "a/b", ".hidden", ".."] {
        let case = Case::new();
        case.board("image = \"qemu-riscv64\"", &format!("image = {image:?}"));
        let out = case.build();
        assert_refused(&out, &["board.toml:9:", "plain file name"]);
        case.assert_nothing_written();
        assert!(!Path::new("/tmp/mkimg-abs-image.qcow2").exists());
    }
}

#[test]
fn hostnames_that_break_etc_hosts_are_refused() {
    for hostname in [
        "",
        "a\nb",
        "evil\n10.0.0.1 bank.example",
        "a b",
        "-x",
        "a..b",
    ] {
        let case = Case::new();
        case.board(
            "hostname = \"mkimg-riscv64\"",
            &format!("hostname = {hostname:?}"),
        );
        let out = case.build();
        assert_refused(&out, &["board.toml:8:", "RFC 1123"]);
        case.assert_nothing_written();
    }
}

#[test]
fn description_with_control_characters_is_refused() {
    let case = Case::new();
    case.board(
        "description = \"QEMU virt riscv64, UEFI (EDK2) + GRUB, 10 GiB GPT disk\"",
        "description = \"ok\\u001b]0;pwned\\u0007\"",
    );
    assert_refused(&case.build(), &["board.toml:6:", "control character"]);
    case.assert_nothing_written();
}

#[test]
fn firmware_outside_the_board_and_firmware_dirs_is_not_copied() {
    let case = Case::new();
    let secret = case.secret.display().to_string();
    for (line, with) in [
        (
            "code = \"/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd\"",
            format!("code = {secret:?}"),
        ),
        (
            "vars = \"/usr/share/qemu-efi-riscv64/RISCV_VIRT_VARS.fd\"",
            "vars = \"/etc/shadow\"".to_string(),
        ),
        (
            "code = \"/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd\"",
            "code = \"../shadow\"".to_string(),
        ),
    ] {
        case.board(line, &with);
        let out = case.build();
        assert_refused(&out, &["[firmware]", "outside the board directory"]);
        case.assert_nothing_written();
    }
}

#[test]
fn firmware_symlink_in_the_board_dir_pointing_out_is_refused() {
    let case = Case::new();
    symlink(&case.secret, case.board_dir.join("CODE.fd")).unwrap();
    case.board(
        "code = \"/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd\"",
        "code = \"CODE.fd\"",
    );
    let out = case.build();
    assert_refused(
        &out,
        &[
            "[firmware] code",
            "\"CODE.fd\"",
            &case.secret.display().to_string(),
        ],
    );
    case.assert_nothing_written();
    fs::remove_file(case.board_dir.join("board.toml")).unwrap();
    fs::remove_file(case.board_dir.join("CODE.fd")).unwrap();
}

#[test]
fn overlay_of_a_host_directory_is_refused() {
    for overlay in ["/etc/ssh", "../", "/"] {
        let case = Case::new();
        case.board("", &format!("[edits]\noverlay = {overlay:?}"));
        let out = case.build();
        assert_refused(&out, &["[edits] overlay", "outside the board directory"]);
        case.assert_nothing_written();
    }
}

#[test]
fn blob_and_raw_sources_outside_the_board_are_refused() {
    let case = Case::new();
    symlink(&case.secret, case.board_dir.join("spl.bin")).unwrap();
    for (extra, who) in [
        (
            "[[blob]]\nname = \"spl\"\nsource = \"spl.bin\"\noffset = \"1M\"\nsize = \"64K\"",
            "blob 'spl'",
        ),
        (
            "[[blob]]\nname = \"spl\"\nsource = \"/etc/shadow\"\noffset = \"1M\"\nsize = \"64K\"",
            "blob 'spl'",
        ),
    ] {
        case.board("", extra);
        let out = case.build();
        assert_refused(&out, &[who, "outside the board directory"]);
        case.assert_nothing_written();
    }
    // A raw partition whose source climbs out.
    let raw = STOCK.replacen(
        "[[partition]]\nname = \"rootfs\"",
        "[[partition]]\nname = \"env\"\ntype = \"linux\"\nsize = \"1M\"\nfilesystem = \"raw\"\nsource = \"../shadow\"\n\n[[partition]]\nname = \"rootfs\"",
        1,
    );
    fs::write(case.board_dir.join("board.toml"), raw).unwrap();
    let out = case.build();
    assert_refused(&out, &["partition 2 'env'", "outside the board directory"]);
    case.assert_nothing_written();
}

#[test]
fn blob_given_on_the_command_line_may_live_anywhere() {
    let case = Case::new();
    let blob = case.root.join("spl.bin");
    fs::write(&blob, vec![0x5au8; 4096]).unwrap();
    case.board(
        "",
        "[[blob]]\nname = \"spl\"\nsource = \"/etc/shadow\"\noffset = \"1M\"\nsize = \"64K\"",
    );
    let arg = format!("spl={}", blob.display());
    let out = case.build();
    assert_refused(&out, &["blob 'spl'", "outside the board directory"]);
    let out = mkimg_in(
        &case.work,
        &[
            "build",
            "--board",
            case.board_dir.to_str().unwrap(),
            "--rootfs",
            case.rootfs.to_str().unwrap(),
            "-o",
            case.out.to_str().unwrap(),
            "--blob",
            &arg,
        ],
    );
    // Planned and past the blob check: it fails later, on the one-file
    // rootfs, not on the blob's location.
    let text = super::stderr(&out);
    assert!(!text.contains("outside the board directory"), "{text}");
}

#[test]
fn fstab_and_boot_loader_strings_are_checked() {
    for (line, with, needle) in [
        (
            "mount_options = \"umask=0077\"",
            "mount_options = \"umask=0077\\n/dev/sda1 / ext4 defaults 0 0\"",
            "mount_options",
        ),
        (
            "mount_options = \"umask=0077\"",
            "mount_options = \"umask=0077 0 0\"",
            "mount_options",
        ),
        (
            "mount = \"/boot/efi\"",
            "mount = \"/boot/../etc\"",
            "mount =",
        ),
        ("mount = \"/boot/efi\"", "mount = \"/boot/e fi\"", "mount ="),
        (
            "cmdline = \"console=ttyS0\"",
            "cmdline = \"console=ttyS0\\u0000init=/bin/sh\"",
            "boot.cmdline",
        ),
        (
            "console = \"ttyS0\"",
            "console = \"ttyS0 init=/bin/sh\"",
            "board.console",
        ),
        (
            "cmdline = \"console=ttyS0\"",
            "cmdline = \"console=ttyS0\"\ngrub_cfg = \"../../grub.cfg\"",
            "boot.grub_cfg",
        ),
        (
            "[firmware]",
            "[[efi_file]]\nfrom = \"/usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi\"\n\
             to = \"EFI/../../x.efi\"\n\n[firmware]",
            "efi_file.to",
        ),
    ] {
        let case = Case::new();
        case.board(line, with);
        let out = case.build();
        assert_refused(&out, &[needle]);
        case.assert_nothing_written();
    }
}
