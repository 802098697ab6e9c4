//! The rootfs cache: `<dir>/<key>.tar` plus `<dir>/<key>.json`, where the
//! key is the SHA-256 of the canonical recipe. Files appear atomically (a
//! temporary in the same directory, then rename), so a crash or a second
//! mkimg never sees half a tarball. Two builds of the same key race
//! harmlessly: the last rename wins.
//!
//! In: a [`ResolvedRecipe`]. Out: paths and the JSON record. Reads no clock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ResolvedRecipe;
use crate::digest::hex;

/// Bump when the bootstrap itself changes what a recipe produces (base
/// packages, hooks), so old cache entries stop matching.
pub const RECIPE_FORMAT: u32 = 1;

/// The canonical recipe: what the key hashes and the record shows. The
/// password itself is not kept, only its SHA-256.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRecipe {
    pub format: u32,
    pub distro: String,
    pub suite: String,
    pub arch: String,
    pub mirror: String,
    pub packages: Vec<String>,
    pub console: Option<String>,
    pub root_password_sha256: String,
    pub repos: Vec<String>,
    pub source_date_epoch: u64,
}

impl CanonicalRecipe {
    pub fn new(recipe: &ResolvedRecipe, source_date_epoch: u64) -> Self {
        CanonicalRecipe {
            format: RECIPE_FORMAT,
            distro: recipe.distro.as_str().to_string(),
            suite: recipe.suite.clone(),
            arch: recipe.arch.as_str().to_string(),
            mirror: recipe.mirror.clone(),
            packages: recipe.packages.clone(),
            console: recipe.console.clone(),
            root_password_sha256: hex(&Sha256::digest(recipe.root_password.as_bytes())),
            repos: recipe.repos.clone(),
            source_date_epoch,
        }
    }
}

/// The cache key: hex SHA-256 of the canonical recipe's JSON. Package order
/// does not matter (the resolved recipe sorts them); every other field does.
pub fn cache_key(recipe: &ResolvedRecipe, source_date_epoch: u64) -> String {
    let canonical = CanonicalRecipe::new(recipe, source_date_epoch);
    let json = serde_json::to_vec(&canonical).expect("a recipe serializes");
    hex(&Sha256::digest(json))
}

/// `$XDG_CACHE_HOME/mkimg/rootfs`, else `~/.cache/mkimg/rootfs`.
pub fn default_cache_dir() -> anyhow::Result<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
    let base = match xdg.filter(|p| p.is_absolute()) {
        Some(dir) => dir,
        None => {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .context("neither XDG_CACHE_HOME nor HOME is set; pass --cache-dir")?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(base.join("mkimg").join("rootfs"))
}

/// What `<key>.json` says about a cached tarball.
#[derive(Serialize, Debug)]
pub struct CacheRecord {
    pub key: String,
    pub recipe: CanonicalRecipe,
    /// `mmdebstrap 1.3.5`, `dnf 4.14.0`.
    pub tool: String,
    pub elapsed_seconds: f64,
    pub size_bytes: u64,
}

impl CacheRecord {
    pub fn new(
        recipe: &ResolvedRecipe,
        key: &str,
        source_date_epoch: u64,
        tool: String,
        elapsed: Duration,
        size_bytes: u64,
    ) -> Self {
        CacheRecord {
            key: key.to_string(),
            recipe: CanonicalRecipe::new(recipe, source_date_epoch),
            tool,
            elapsed_seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            size_bytes,
        }
    }
}

/// A temporary file name in the cache directory, removed on drop unless
/// persisted.
pub struct TempPath {
    path: PathBuf,
    persisted: bool,
}

impl TempPath {
    pub fn new(dir: &Path, key: &str) -> anyhow::Result<Self> {
        remove_stale_partials(dir, key);
        let path = dir.join(format!(".{key}.{}.partial", std::process::id()));
        Ok(TempPath {
            path,
            persisted: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename onto `target` (same directory, so atomic).
    pub fn persist(mut self, target: &Path) -> anyhow::Result<()> {
        std::fs::rename(&self.path, target)
            .with_context(|| format!("moving {} to {}", self.path.display(), target.display()))?;
        self.persisted = true;
        Ok(())
    }
}

/// Remove `.<key>.<pid>.partial` files left by runs that were killed (their
/// pid no longer exists, or is this process).
fn remove_stale_partials(dir: &Path, key: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{key}.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".partial"));
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Write `<dir>/<key>.json` atomically.
pub fn write_record(dir: &Path, key: &str, record: &CacheRecord) -> anyhow::Result<()> {
    let temp = TempPath::new(dir, &format!("{key}.json"))?;
    let mut json = serde_json::to_string_pretty(record)?;
    json.push('\n');
    std::fs::write(temp.path(), json)
        .with_context(|| format!("writing {}", temp.path().display()))?;
    temp.persist(&dir.join(format!("{key}.json")))
}

/// Put a copy of `cached` at `target` atomically, through a temporary next
/// to `target`. A copy, not a hard link, so editing the output cannot change
/// the cache; `std::fs::copy` uses copy_file_range, which shares extents
/// (a reflink) on filesystems that can.
pub fn publish_copy(cached: &Path, target: &Path) -> anyhow::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target.file_name().context("output path has no file name")?;
    let temp = TempPath::new(dir, &name.to_string_lossy())?;
    std::fs::copy(cached, temp.path())
        .with_context(|| format!("copying {} to {}", cached.display(), temp.path().display()))?;
    File::open(temp.path())?.sync_all()?;
    temp.persist(target)
}
