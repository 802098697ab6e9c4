//! Host paths a board file names — overlay, blob and raw-partition sources,
//! firmware code/vars/bios — stay inside the places a board may take files
//! from. A board directory may come from anywhere and mkimg often runs as
//! root: without this, `code = "/etc/shadow"` (or a symlink in the board
//! directory pointing there) would copy a host secret into the output.
//!
//! The rule: a path resolves — after following every symlink — inside the
//! board directory, or, for firmware only, inside a distribution's firmware
//! directory ([`FIRMWARE_ROOTS`], `/usr/share/qemu-efi-*`). A path given on
//! the command line (`--blob NAME=PATH`) is the user's own choice and is
//! only canonicalized. The planner stores the canonical path, and the
//! stages open it with [`open_resolved`], which refuses to follow any
//! symlink, so a symlink planted after planning cannot redirect the read.
//!
//! A path that does not exist yet (a blob the porter still has to fetch)
//! is resolved through its deepest existing ancestor; the rest may not hold
//! `..`. The board directory itself may not exist either (a built-in
//! board's files live in `~/.config/mkimg/boards/NAME/`, which the user may
//! not have made): it is resolved the same way. Reads only metadata;
//! spawns nothing.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};

/// Distribution firmware directories a board may name (besides
/// `/usr/share/qemu-efi-*`).
pub const FIRMWARE_ROOTS: [&str; 2] = ["/usr/share/AAVMF", "/usr/lib/u-boot"];

/// Where a board path may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Only inside the board directory (overlay, blobs, raw sources).
    BoardDir,
    /// The board directory or a distribution firmware directory.
    BoardDirOrFirmware,
    /// Anywhere: the path came from the command line.
    Anywhere,
}

/// A board path that leads outside where it may.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(
        "{text:?} resolves to {resolved}, outside the board directory {board_dir}{also}; a board \
         may only take files from its own directory{also}",
        also = firmware_note(*.allowed)
    )]
    Outside {
        text: String,
        resolved: PathBuf,
        board_dir: PathBuf,
        allowed: Allowed,
    },
    #[error(
        "{text:?} resolves to {resolved}, outside the directories a generated board may take \
         files from ({roots})"
    )]
    OutsideRoots {
        text: String,
        resolved: PathBuf,
        roots: String,
    },
    #[error("{text:?} does not exist and its missing part climbs out with '..'")]
    DotDot { text: String },
    #[error("resolving {text:?}: {source}")]
    Io { text: String, source: io::Error },
}

fn firmware_note(allowed: Allowed) -> &'static str {
    match allowed {
        Allowed::BoardDirOrFirmware => {
            " or a firmware directory (/usr/share/qemu-efi-*, /usr/share/AAVMF, /usr/lib/u-boot)"
        }
        Allowed::BoardDir | Allowed::Anywhere => "",
    }
}

/// `text` (relative to `board_dir`, or absolute) resolved through every
/// symlink, checked against `allowed`.
pub fn resolve_board_path(
    board_dir: &Path,
    text: &str,
    allowed: Allowed,
) -> Result<PathBuf, PathError> {
    let base = if board_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        board_dir
    };
    let resolved = resolve_existing_prefix(&base.join(text), text)?;
    if allowed == Allowed::Anywhere {
        return Ok(resolved);
    }
    // The distribution's firmware needs nothing of the board directory,
    // which may be unreadable (a built-in board's is under $HOME).
    if allowed == Allowed::BoardDirOrFirmware && is_firmware_path(&resolved) {
        return Ok(resolved);
    }
    // A built-in board's directory (`board::builtin`) may not exist yet:
    // resolved the same way, nothing can be inside it but what is missing.
    let board_dir = resolve_existing_prefix(base, text)?;
    if resolved.starts_with(&board_dir) {
        Ok(resolved)
    } else {
        Err(PathError::Outside {
            text: text.to_string(),
            resolved,
            board_dir,
            allowed,
        })
    }
}

/// `text` (an absolute path, or relative to the first root) resolved
/// through every symlink, which must lead inside one of `roots` (each
/// resolved the same way). For a board generated from a genimage.cfg,
/// whose raw sources are files of its input, output and tmp paths
/// (`Board::source_roots`); a board file never gets here.
pub fn resolve_in_roots(roots: &[PathBuf], text: &str) -> Result<PathBuf, PathError> {
    let base = roots.first().map_or(Path::new("."), PathBuf::as_path);
    let resolved = resolve_existing_prefix(&base.join(text), text)?;
    for root in roots {
        if resolved.starts_with(resolve_existing_prefix(root, text)?) {
            return Ok(resolved);
        }
    }
    let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    Err(PathError::OutsideRoots {
        text: text.to_string(),
        resolved,
        roots: list.join(", "),
    })
}

/// Canonicalize the deepest existing ancestor of `path` and append the
/// rest, which may not contain `..`.
fn resolve_existing_prefix(path: &Path, text: &str) -> Result<PathBuf, PathError> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(canonical) => {
                let mut out = canonical;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                    return Err(PathError::DotDot {
                        text: text.to_string(),
                    });
                };
                if matches!(
                    existing.components().next_back(),
                    Some(Component::ParentDir | Component::CurDir)
                ) {
                    return Err(PathError::DotDot {
                        text: text.to_string(),
                    });
                }
                rest.push(name);
                if !existing.pop() {
                    return Err(PathError::DotDot {
                        text: text.to_string(),
                    });
                }
            }
            Err(source) => {
                return Err(PathError::Io {
                    text: text.to_string(),
                    source,
                })
            }
        }
    }
}

fn is_firmware_path(path: &Path) -> bool {
    if FIRMWARE_ROOTS.iter().any(|root| path.starts_with(root)) {
        return true;
    }
    path.strip_prefix("/usr/share")
        .ok()
        .and_then(|rest| rest.components().next())
        .is_some_and(|first| {
            first.as_os_str().len() > "qemu-efi-".len()
                && first.as_os_str().to_string_lossy().starts_with("qemu-efi-")
        })
}

/// Open a path the planner resolved, for reading, following no symlink on
/// the way: what was checked is what is read.
pub fn open_resolved(path: &Path) -> io::Result<File> {
    let fd = openat2(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests;
