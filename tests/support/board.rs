//! Board files for tests that build real images quickly.

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
