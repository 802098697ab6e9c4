//! The built-in boards (`boards/<name>/` of the source tree), embedded in
//! the binary so an installed or copied mkimg has them without the checkout.
//!
//! Why a build-script table and not a crate such as `include_dir`: the five
//! boards are a handful of small files, and on stable Rust `include_dir`
//! does not tell cargo to rebuild when a file under the directory changes
//! (that needs its nightly feature), so an edited `board.toml` would be
//! silently stale. `build.rs` writes the table with one `include_bytes!` per
//! file (which rustc tracks) and `cargo::rerun-if-changed=boards` (which
//! catches added and removed files), and refuses symlinks and
//! subdirectories there.
//!
//! A built-in board has no directory of its own. The files its relative
//! paths name (rock3a's `idbloader.img`, nezha's blobs) are looked up in
//! the user's board directory of the same name, `~/.config/mkimg/boards/NAME/`
//! (see [`builtin_files_dir`]) — the directory whose `board.toml`, when
//! there is one, replaces the built-in board — with the same rules as any
//! board directory (`board::paths`). `--blob NAME=PATH` works as for any
//! board. Reads nothing but the binary itself; spawns nothing.

use std::path::{Path, PathBuf};

/// One built-in board: its directory name and its files.
#[derive(Debug, PartialEq, Eq)]
pub struct BuiltinBoard {
    pub name: &'static str,
    /// `(file name, contents)`, sorted by name; always holds `board.toml`.
    pub files: &'static [(&'static str, &'static [u8])],
}

/// Every built-in board, sorted by name.
pub static BUILTIN_BOARDS: &[BuiltinBoard] =
    include!(concat!(env!("OUT_DIR"), "/builtin_boards.rs"));

impl BuiltinBoard {
    /// The built-in board named `name`.
    pub fn find(name: &str) -> Option<&'static BuiltinBoard> {
        BUILTIN_BOARDS.iter().find(|b| b.name == name)
    }

    /// The contents of `file` (e.g. `README.md`).
    pub fn file(&self, file: &str) -> Option<&'static [u8]> {
        self.files.iter().find(|(n, _)| *n == file).map(|(_, b)| *b)
    }

    /// The board.toml text; `build.rs` checked it exists, and a non-UTF-8
    /// one is reported as text the parser refuses.
    pub fn board_toml(&self) -> String {
        String::from_utf8_lossy(self.file("board.toml").unwrap_or_default()).into_owned()
    }

    /// The name board errors cite: `<built-in>/NAME/board.toml`.
    pub fn display_path(&self) -> PathBuf {
        Path::new("<built-in>").join(self.name).join("board.toml")
    }
}

/// Where a built-in board's relative paths resolve:
/// `$XDG_CONFIG_HOME/mkimg/boards/NAME`, else `$HOME/.config/mkimg/boards/NAME`,
/// else `/nonexistent/.config/mkimg/boards/NAME` (`/nonexistent` is the
/// home Debian gives accounts that have none; it must not exist).
pub fn builtin_files_dir(name: &str) -> PathBuf {
    user_boards_dir()
        .unwrap_or_else(|| PathBuf::from("/nonexistent/.config/mkimg/boards"))
        .join(name)
}

/// `$XDG_CONFIG_HOME/mkimg/boards`, else `$HOME/.config/mkimg/boards`.
pub fn user_boards_dir() -> Option<PathBuf> {
    let nonempty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    nonempty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|config| config.join("mkimg/boards"))
}
