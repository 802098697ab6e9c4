//! Where a name the config gives (`files`, `file … { image = … }`,
//! `srcpath`, `mke2fs-conf`) is read from: an image of the config already
//! built, or a file or directory inside `--inputpath`.
//!
//! genimage finds an input as `INPUTPATH/NAME` (or an absolute NAME) and
//! lets `mcopy`/`cp` follow any symlink. mkimg refuses an absolute name,
//! a `..` component, and any name whose real path (every symlink on the
//! way resolved) is outside the input path, as `genimage::paths` does for
//! includes; it then opens the resolved path, never the name again.
//! Reads metadata only.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::FsEnv;
use crate::genimage::Located;

/// What a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An image of this config, already built (its file).
    Built(PathBuf),
    /// A regular file inside the input path (the real path).
    File(PathBuf),
    /// A directory inside the input path (the real path).
    Dir(PathBuf),
}

/// `name` as an image of the config (built) or an input path entry.
pub fn resolve_input(name: &Located<String>, env: &FsEnv<'_>) -> Result<Input> {
    if let Some(path) = env.built.get(&name.value) {
        return Ok(Input::Built(path.clone()));
    }
    if env.config.images.iter().any(|i| i.file.value == name.value) {
        bail!(
            "{}: image '{}' is used here before it is built (the caller builds the images a config uses first)",
            name.at,
            name.value
        );
    }
    resolve_contained(&name.value, env.inputpath)
        .with_context(|| format!("{}: input '{}'", name.at, name.value))
}

/// `name` inside `dir`: a regular file or a directory whose real path is
/// inside `dir`'s.
pub fn resolve_contained(name: &str, dir: &Path) -> Result<Input> {
    let rel = Path::new(name);
    if name.is_empty() {
        bail!("an empty name");
    }
    if rel.is_absolute() {
        bail!(
            "an absolute path is refused: mkimg reads inputs only from inside the input path {}",
            dir.display()
        );
    }
    if rel.components().any(|c| c == Component::ParentDir) {
        bail!(
            "'..' is refused: it would leave the input path {}",
            dir.display()
        );
    }
    let candidate = dir.join(rel);
    candidate
        .symlink_metadata()
        .with_context(|| format!("{} not found", candidate.display()))?;
    let root = dir
        .canonicalize()
        .with_context(|| format!("input path {}", dir.display()))?;
    let real = candidate
        .canonicalize()
        .with_context(|| format!("resolving {}", candidate.display()))?;
    if !real.starts_with(&root) {
        bail!(
            "{} resolves (through a symlink) to {}, outside the input path {}: refused",
            candidate.display(),
            real.display(),
            dir.display()
        );
    }
    let meta = real
        .metadata()
        .with_context(|| format!("reading {}", real.display()))?;
    if meta.is_file() {
        Ok(Input::File(real))
    } else if meta.is_dir() {
        Ok(Input::Dir(real))
    } else {
        bail!(
            "{} is neither a regular file nor a directory",
            candidate.display()
        )
    }
}

/// The last component of a name, as `mcopy FILE ::` names the copy.
pub fn basename(name: &str) -> Option<&str> {
    name.rsplit('/').find(|c| !c.is_empty() && *c != ".")
}
