//! Where a file a genimage config names may be read from: only inside a
//! given list of directories.
//!
//! genimage resolves `include("x")` by trying each `--includepath`
//! directory and then the current directory, and it finds no absolute path
//! there (checked with genimage 16). mkimg keeps that search and also
//! refuses what would leave those directories, because it often runs as
//! root and the config is untrusted: an absolute path, a `..` component, a
//! symlink (anywhere on the way) whose target is outside the directory.
//! The same rule serves other paths the config names that mkimg reads
//! itself (`mke2fs-conf`), against the input directories.
//!
//! Reads metadata only (canonicalize); opens nothing.

use std::path::{Component, Path, PathBuf};

/// A file found inside one of the directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// As shown in messages: the directory as given, joined with the name.
    pub shown: PathBuf,
    /// The real path (every symlink resolved), inside that directory.
    pub canonical: PathBuf,
}

/// Finds `name` in the first of `dirs` that has it, refusing names and
/// symlinks that lead outside. `what` names the list in messages ("the
/// include path").
pub fn resolve_within(name: &str, dirs: &[PathBuf], what: &str) -> Result<Found, String> {
    if name.is_empty() {
        return Err("an empty file name".into());
    }
    let rel = Path::new(name);
    if rel.is_absolute() {
        return Err(format!(
            "an absolute path is refused: only files inside {what} are read \
             (genimage too searches only there)"
        ));
    }
    if rel.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "'..' is refused: it would leave {what} (mkimg reads a config's \
             files only from inside it)"
        ));
    }
    if dirs.is_empty() {
        return Err(format!("{what} is empty: nothing can be found"));
    }
    for dir in dirs {
        let candidate = dir.join(rel);
        if candidate.symlink_metadata().is_err() {
            continue;
        }
        let Ok(root) = dir.canonicalize() else {
            continue;
        };
        let canonical = candidate
            .canonicalize()
            .map_err(|e| format!("{}: {e}", candidate.display()))?;
        if !canonical.starts_with(&root) {
            return Err(format!(
                "{} resolves (through a symlink) to {}, outside {} — refused: \
                 mkimg reads nothing from outside {what}",
                candidate.display(),
                canonical.display(),
                dir.display()
            ));
        }
        if !canonical.is_file() {
            return Err(format!("{} is not a regular file", candidate.display()));
        }
        return Ok(Found {
            shown: candidate,
            canonical,
        });
    }
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(format!("not found in {what} ({})", list.join(":")))
}
