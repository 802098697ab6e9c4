//! Board definitions: finding `<dir>/<name>/board.toml` or a built-in board
//! ([`builtin`], embedded in the binary), parsing it with errors that cite
//! `file:line:column`, and listing the known boards.
//!
//! Flows out: a [`Board`] — the file as typed ([`schema::BoardFile`]) plus the
//! directory its relative paths (blobs, firmware, overlays) resolve against.
//! Reads files; spawns nothing. Interpreting the values is `crate::plan`'s job.

pub mod builtin;
pub mod names;
pub mod paths;
pub mod recipe;
pub mod schema;
pub mod size;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use toml::Spanned;

pub use builtin::BuiltinBoard;
pub use schema::BoardFile;

/// A parsed board file and where it came from.
#[derive(Debug, Clone)]
pub struct Board {
    pub file: BoardFile,
    /// The board.toml that was read.
    pub path: PathBuf,
    /// The directory relative paths in the board file resolve against.
    pub dir: PathBuf,
    /// Blobs and raw partitions whose `source` came from `--blob` on the
    /// command line: exempt from the board-directory rule (`paths`).
    pub cli_sources: BTreeSet<String>,
    /// The board file's text, to cite `file:line:column` for a value the
    /// planner rejects (see [`Board::locate`]).
    pub text: String,
    /// `--bootloader` and `--grub`, which win over the board's `[boot]`.
    pub cli_boot: BootOverride,
    /// Directories besides the board directory that raw partition sources
    /// may resolve into: empty for a board file; the input, output and tmp
    /// paths for a board generated from a genimage.cfg
    /// (`plan::from_genimage`), whose sources name files there.
    pub source_roots: Vec<PathBuf>,
}

/// `--bootloader` and `--grub` of `mkimg build` and `mkimg plan`: given,
/// they replace the board's `[boot] loader` and `grub` when the board is
/// planned, so the plan shows what the build does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootOverride {
    pub loader: Option<schema::BootLoader>,
    pub grub: Option<schema::GrubMode>,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(
        "no board named {name:?}; looked in {searched}. `mkimg boards` lists the known boards"
    )]
    NotFound { name: String, searched: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Parse { location: Location, message: String },
    #[error("--blob {name}=…: board {board} has no blob or raw partition named {name:?} (it has: {known})")]
    UnknownBlob {
        name: String,
        board: String,
        known: String,
    },
    #[error("--blob {arg:?}: {reason}; write NAME=PATH, e.g. --blob idbloader=out/idbloader.img")]
    BadBlobArg { arg: String, reason: String },
}

/// `--blob NAME=PATH`: the file for a blob (or a raw partition's `source`)
/// given on the command line; it replaces the board's `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobOverride {
    pub name: String,
    pub path: PathBuf,
}

impl std::str::FromStr for BlobOverride {
    type Err = BoardError;

    fn from_str(arg: &str) -> Result<Self, BoardError> {
        let bad = |reason: &str| BoardError::BadBlobArg {
            arg: arg.to_string(),
            reason: reason.to_string(),
        };
        let (name, path) = arg.split_once('=').ok_or_else(|| bad("no '='"))?;
        if name.is_empty() || path.is_empty() {
            return Err(bad("empty name or path"));
        }
        Ok(BlobOverride {
            name: name.to_string(),
            path: PathBuf::from(path),
        })
    }
}

impl Board {
    /// `file:line:column` of a byte span of the board text.
    pub fn locate(&self, span: std::ops::Range<usize>) -> Location {
        locate(&self.text, span.start, &self.path)
    }

    /// Point blobs and raw partitions at the files of `--blob` arguments.
    /// Relative paths are taken from the current directory.
    pub fn override_sources(&mut self, overrides: &[BlobOverride]) -> Result<(), BoardError> {
        for o in overrides {
            let path = if o.path.is_absolute() {
                o.path.clone()
            } else {
                std::env::current_dir()
                    .map_err(|source| BoardError::Read {
                        path: PathBuf::from("."),
                        source,
                    })?
                    .join(&o.path)
            };
            let text = path
                .to_str()
                .ok_or_else(|| BoardError::BadBlobArg {
                    arg: format!("{}={}", o.name, o.path.display()),
                    reason: "the path is not UTF-8".to_string(),
                })?
                .to_string();
            self.cli_sources.insert(o.name.clone());
            let file = &mut self.file;
            // No span: the planner cites `--blob NAME=PATH` for these
            // (`cli_sources`), not a line of the board file.
            let text = Spanned::new(0..0, text);
            let is_raw =
                |p: &schema::PartitionSection| p.filesystem == Some(schema::FilesystemKind::Raw);
            if let Some(blob) = file.blobs.iter_mut().find(|b| b.as_ref().name == o.name) {
                blob.as_mut().source = text;
            } else if let Some(part) = file
                .partitions
                .iter_mut()
                .map(Spanned::as_mut)
                .find(|p| p.name == o.name && is_raw(p))
            {
                part.source = Some(text);
            } else {
                let known: Vec<&str> = file
                    .blobs
                    .iter()
                    .map(|b| b.as_ref().name.as_str())
                    .chain(
                        file.partitions
                            .iter()
                            .map(Spanned::as_ref)
                            .filter(|p| is_raw(p))
                            .map(|p| p.name.as_str()),
                    )
                    .collect();
                return Err(BoardError::UnknownBlob {
                    name: o.name.clone(),
                    board: file.board.name.to_string(),
                    known: if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                });
            }
        }
        Ok(())
    }
}

/// `file:line:column`, 1-based, as editors understand it; column 0 means
/// "the whole line" and prints as `file:line` (a genimage.cfg value, whose
/// parser keeps lines only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column == 0 {
            return write!(f, "{}:{}", self.path.display(), self.line);
        }
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Where `--board NAME` is looked up, in order: `dirs`, then the built-in
/// boards.
#[derive(Debug, Clone)]
pub struct BoardSearch {
    pub dirs: Vec<PathBuf>,
}

/// A board `--board` or `mkimg boards` found: a file, or a built-in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardRef {
    File(PathBuf),
    Builtin(&'static BuiltinBoard),
}

impl BoardRef {
    /// Read and parse it.
    pub fn load(&self) -> Result<Board, BoardError> {
        match self {
            BoardRef::File(path) => load_board_file(path),
            BoardRef::Builtin(builtin) => load_builtin_board(builtin),
        }
    }

    /// The board.toml path, or `<built-in>/NAME/board.toml`.
    pub fn display_path(&self) -> PathBuf {
        match self {
            BoardRef::File(path) => path.clone(),
            BoardRef::Builtin(builtin) => builtin.display_path(),
        }
    }
}

impl BoardSearch {
    /// `$MKIMG_BOARDS` (colon-separated), `~/.config/mkimg/boards`
    /// (`$XDG_CONFIG_HOME/mkimg/boards`), then the built-in boards.
    pub fn from_env() -> Self {
        let mut dirs = Vec::new();
        if let Some(list) = std::env::var_os("MKIMG_BOARDS") {
            dirs.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs.extend(builtin::user_boards_dir());
        BoardSearch { dirs }
    }

    /// Resolve `--board`: a path when it contains `/` or ends in `.toml`, else a name.
    pub fn resolve(&self, spec: &str) -> Result<BoardRef, BoardError> {
        if spec.contains('/') || spec.ends_with(".toml") {
            let path = PathBuf::from(spec);
            return Ok(BoardRef::File(if path.is_dir() {
                path.join("board.toml")
            } else {
                path
            }));
        }
        for dir in &self.dirs {
            let candidate = dir.join(spec).join("board.toml");
            if candidate.is_file() {
                return Ok(BoardRef::File(candidate));
            }
        }
        if let Some(builtin) = BuiltinBoard::find(spec) {
            return Ok(BoardRef::Builtin(builtin));
        }
        let mut searched: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        searched.push("the built-in boards".to_string());
        Err(BoardError::NotFound {
            name: spec.to_string(),
            searched: searched.join(", "),
        })
    }

    /// Every board found, first directory wins on a name clash and any
    /// directory over a built-in board, sorted by name.
    pub fn list(&self) -> Vec<(String, BoardRef)> {
        let mut found: Vec<(String, BoardRef)> = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path().join("board.toml");
                if path.is_file() && !found.iter().any(|(n, _)| *n == name) {
                    found.push((name, BoardRef::File(path)));
                }
            }
        }
        for builtin in builtin::BUILTIN_BOARDS {
            if !found.iter().any(|(n, _)| n == builtin.name) {
                found.push((builtin.name.to_string(), BoardRef::Builtin(builtin)));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }
}

/// The `boards/` directory of the source tree (tests only: the binary
/// carries these boards itself, see [`builtin`]).
#[cfg(test)]
pub(crate) fn builtin_boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("boards")
}

/// Find and parse a board by name or path.
pub fn load_board(spec: &str, search: &BoardSearch) -> Result<Board, BoardError> {
    search.resolve(spec)?.load()
}

/// Parse a built-in board; its relative paths resolve in
/// [`builtin::builtin_files_dir`].
pub fn load_builtin_board(builtin: &BuiltinBoard) -> Result<Board, BoardError> {
    let text = builtin.board_toml();
    let path = builtin.display_path();
    let file = parse_board(&text, &path)?;
    Ok(Board {
        file,
        path,
        dir: builtin::builtin_files_dir(builtin.name),
        cli_sources: BTreeSet::new(),
        cli_boot: BootOverride::default(),
        source_roots: Vec::new(),
        text,
    })
}

/// Parse one board.toml.
pub fn load_board_file(path: &Path) -> Result<Board, BoardError> {
    let text = fs::read_to_string(path).map_err(|source| BoardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = parse_board(&text, path)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Board {
        file,
        path: path.to_path_buf(),
        dir,
        cli_sources: BTreeSet::new(),
        text,
        cli_boot: BootOverride::default(),
        source_roots: Vec::new(),
    })
}

/// Parse board text; `path` is only used in error locations.
pub fn parse_board(text: &str, path: &Path) -> Result<BoardFile, BoardError> {
    toml::from_str::<BoardFile>(text).map_err(|err| {
        let offset = err.span().map(|s| s.start).unwrap_or(0);
        BoardError::Parse {
            location: locate(text, offset, path),
            message: err.message().trim_end().to_string(),
        }
    })
}

fn locate(text: &str, offset: usize, path: &Path) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    Location {
        path: path.to_path_buf(),
        line,
        column,
    }
}

#[cfg(test)]
mod tests;
