//! Atomic publish of the output directory.
//!
//! Everything is written into a staging directory beside the final one
//! (same filesystem). On success the staging directory replaces the final
//! one in a single `renameat2(RENAME_EXCHANGE)` (plain rename when there was
//! none), so a reader sees either the old complete output or the new complete
//! output, never a mix. On failure (or drop without publish) the staging
//! directory is removed and an earlier good output is untouched.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::{renameat_with, RenameFlags, CWD};

/// A staging directory that becomes `final_dir` on [`Staging::publish`].
#[derive(Debug)]
pub struct Staging {
    final_dir: PathBuf,
    staging: PathBuf,
    published: bool,
}

impl Staging {
    pub fn create(final_dir: &Path) -> Result<Self> {
        let parent = final_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let name = final_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("removing stale {}", staging.display()))?;
        }
        fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
        Ok(Staging {
            final_dir: final_dir.to_path_buf(),
            staging,
            published: false,
        })
    }

    /// Where outputs are written until publish.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Make the staging directory the output, atomically.
    pub fn publish(mut self) -> Result<PathBuf> {
        sync_dir_files(&self.staging)?;
        if self.final_dir.exists() {
            renameat_with(
                CWD,
                &self.staging,
                CWD,
                &self.final_dir,
                RenameFlags::EXCHANGE,
            )
            .map_err(std::io::Error::from)
            .with_context(|| {
                format!(
                    "swapping {} into {}",
                    self.staging.display(),
                    self.final_dir.display()
                )
            })?;
            // The old output now lives at the staging path.
            fs::remove_dir_all(&self.staging).with_context(|| {
                format!("removing the previous output {}", self.staging.display())
            })?;
        } else {
            fs::rename(&self.staging, &self.final_dir).with_context(|| {
                format!(
                    "renaming {} to {}",
                    self.staging.display(),
                    self.final_dir.display()
                )
            })?;
        }
        self.published = true;
        Ok(self.final_dir.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

fn sync_dir_files(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            fs::File::open(&path)?
                .sync_all()
                .with_context(|| format!("syncing {}", path.display()))?;
        }
    }
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::Staging;

    #[test]
    fn publish_replaces_atomically_and_failure_keeps_old_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("output/board");
        let first = Staging::create(&out).unwrap();
        fs::write(first.path().join("a.img"), b"one").unwrap();
        first.publish().unwrap();
        assert_eq!(fs::read(out.join("a.img")).unwrap(), b"one");

        // A failed build: staging dropped without publish.
        let failed = Staging::create(&out).unwrap();
        fs::write(failed.path().join("a.img"), b"half").unwrap();
        drop(failed);
        assert_eq!(fs::read(out.join("a.img")).unwrap(), b"one");

        let second = Staging::create(&out).unwrap();
        fs::write(second.path().join("b.img"), b"two").unwrap();
        second.publish().unwrap();
        assert!(!out.join("a.img").exists(), "old output replaced whole");
        assert_eq!(fs::read(out.join("b.img")).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("output")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging directory left behind");
    }
}
