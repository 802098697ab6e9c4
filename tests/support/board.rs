//! Board files for tests that build real images quickly: a copy of a
//! stock board made small, and a small board of three partitions.

use std::fs;
use std::path::{Path, PathBuf};

/// A copy of the stock qemu-riscv64 board in `dir/board/board.toml` with a
/// 160 MiB disk (ESP 32 MiB) and no firmware files, so a build needs
/// neither gigabytes nor EDK2.
pub fn small_riscv64(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-riscv64/board.toml");
    let text = fs::read_to_string(src)
        .unwrap()
        .replace("size = \"10G\"", "size = \"160M\"")
        .replace("size = \"1G\"", "size = \"32M\"");
    let text =
        text.split("[firmware]").next().unwrap().to_string() + "\n[qemu]\nmachine = \"virt\"\n";
    let board = dir.join("board");
    fs::create_dir_all(&board).unwrap();
    fs::write(board.join("board.toml"), text).unwrap();
    board.join("board.toml")
}

/// A 48 MiB GPT board named `name` (its hostname and image name too): an
/// 8 MiB vfat ESP at /boot/efi, an 8 MiB ext4 /boot, the rest ext4 at /.
pub fn esp_boot_root(name: &str, description: &str) -> String {
    format!(
        r#"[board]
name = "{name}"
description = "{description}"
arch = "riscv64"
hostname = "{name}"
image = "{name}"

[disk]
table = "gpt"
size = "48M"

[[partition]]
name = "esp"
type = "esp"
size = "8M"
filesystem = "vfat"
mount = "/boot/efi"

[[partition]]
name = "boot"
type = "linux"
size = "8M"
filesystem = "ext4"
mount = "/boot"

[[partition]]
name = "rootfs"
type = "linux"
size = "rest"
filesystem = "ext4"
mount = "/"
"#
    )
}
