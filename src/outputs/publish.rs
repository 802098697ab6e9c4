//! Atomic publish of the output directory, and the rule that guards it.
//!
//! The output directory is sacred: mkimg replaces only what it made — a
//! missing path, an empty directory, or one whose entries are all files its
//! own manifest.json lists ([`check_output_dir`], run before the build and
//! again just before the swap). Anything else, including a regular file or
//! a symlink at `-o`, is an error naming the path and what is in the way.
//!
//! Everything is written into a staging directory `.NAME.staging-PID` beside
//! the final one (same filesystem), a [`LockedDir`] so that a later run can
//! tell a crashed build's staging directory from a live one
//! ([`sweep_stale_staging`]). On success the staging directory replaces the
//! final one in a single `renameat2(RENAME_EXCHANGE)` (plain rename when
//! there was none), so a reader sees either the old complete output or the
//! new complete output, never a mix; the old output is locked during the
//! swap, so two builds cannot publish into one directory at once. On failure
//! (or drop without publish) the staging directory is removed and an earlier
//! good output is untouched.
//!
//! Must not: remove or replace a file it cannot prove mkimg made.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use rustix::fs::{renameat_with, RenameFlags, CWD};

use crate::host::interrupt;
use crate::host::lockdir::{lock_if_free, sweep, LockedDir, SweepReport};
use crate::outputs::manifest::{listed_files, MANIFEST_FILE, SHA256SUMS_FILE};

/// Set once this process published an output directory.
static PUBLISHED: AtomicBool = AtomicBool::new(false);

/// Whether this process published an output directory (with
/// `--verify-repro` the first build is, before the second one runs): what
/// `main` says after an interrupt.
pub fn published_any() -> bool {
    PUBLISHED.load(Ordering::SeqCst)
}

/// How many unexpected entries an error names.
const NAMED_ENTRIES: usize = 8;

/// Fail unless `final_dir` is absent, an empty directory, or a directory of
/// files its manifest.json lists (an earlier mkimg output).
pub fn check_output_dir(final_dir: &Path) -> Result<()> {
    let shown = final_dir.display();
    let meta = match fs::symlink_metadata(final_dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("output directory {shown}")),
    };
    if !meta.file_type().is_dir() {
        bail!(
            "output directory {shown} is {}, not a directory; -o must name a new path, an \
             empty directory or an earlier mkimg output",
            kind_of(&meta.file_type())
        );
    }
    let mut entries = BTreeSet::new();
    for entry in fs::read_dir(final_dir).with_context(|| format!("listing {shown}"))? {
        let entry = entry.with_context(|| format!("listing {shown}"))?;
        entries.insert(entry.file_name().to_string_lossy().into_owned());
    }
    if entries.is_empty() {
        return Ok(());
    }
    let refuse = |why: String| {
        anyhow::anyhow!(
            "refusing to replace {shown}: {why}; mkimg replaces only an empty directory or \
             one holding exactly the files of its own manifest.json — move them away or \
             choose another -o"
        )
    };
    let manifest = final_dir.join(MANIFEST_FILE);
    let is_file = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file());
    if !is_file(&manifest) {
        return Err(refuse(format!(
            "it is not empty and holds no {MANIFEST_FILE} (it holds {})",
            name_some(entries.iter())
        )));
    }
    let text = fs::read_to_string(&manifest)
        .map_err(|e| refuse(format!("its {MANIFEST_FILE} is unreadable: {e}")))?;
    let listed = listed_files(&text).map_err(|e| refuse(format!("its {MANIFEST_FILE}: {e}")))?;
    let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let unexpected: Vec<&String> = entries
        .iter()
        .filter(|e| e.as_str() != MANIFEST_FILE)
        .filter(|e| {
            let ours = listed.contains(e.as_str()) || e.as_str() == SHA256SUMS_FILE;
            !ours || !is_file(&final_dir.join(e))
        })
        .collect();
    if !unexpected.is_empty() {
        return Err(refuse(format!(
            "it holds entries its {MANIFEST_FILE} does not list as files: {}",
            name_some(unexpected.into_iter())
        )));
    }
    Ok(())
}

fn kind_of(kind: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a directory"
    }
}

fn name_some<'a>(names: impl ExactSizeIterator<Item = &'a String>) -> String {
    let count = names.len();
    let mut text: Vec<String> = names
        .take(NAMED_ENTRIES)
        .map(|n| format!("{n:?}"))
        .collect();
    if count > NAMED_ENTRIES {
        text.push(format!("and {} more", count - NAMED_ENTRIES));
    }
    text.join(", ")
}

/// `final_dir`'s parent and the staging name prefix `.NAME.staging-`.
fn staging_parts(final_dir: &Path) -> Result<(PathBuf, String)> {
    let name = final_dir
        .file_name()
        .with_context(|| {
            format!(
                "output directory {} has no name; give -o a path that ends in a directory name",
                final_dir.display()
            )
        })?
        .to_string_lossy()
        .into_owned();
    let parent = final_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent.to_path_buf(), format!(".{name}.staging-")))
}

/// Remove staging directories beside `final_dir` left by builds that died
/// (their lock is free). Never fails: problems are warnings in the report.
pub fn sweep_stale_staging(final_dir: &Path) -> SweepReport {
    let Ok((parent, prefix)) = staging_parts(final_dir) else {
        return SweepReport::default();
    };
    sweep(&parent, &|name: &str| {
        name.strip_prefix(prefix.as_str())
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A staging directory that becomes `final_dir` on [`Staging::publish`].
#[derive(Debug)]
pub struct Staging {
    final_dir: PathBuf,
    staging: LockedDir,
}

impl Staging {
    pub fn create(final_dir: &Path) -> Result<Self> {
        let (parent, prefix) = staging_parts(final_dir)?;
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let path = parent.join(format!("{prefix}{}", std::process::id()));
        // One of ours from a dead process that had this pid: provably stale.
        let _ = sweep_stale_staging(final_dir);
        let staging =
            LockedDir::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Staging {
            final_dir: final_dir.to_path_buf(),
            staging,
        })
    }

    /// Where outputs are written until publish.
    pub fn path(&self) -> &Path {
        self.staging.path()
    }

    /// Make the staging directory the output, atomically.
    pub fn publish(mut self) -> Result<PathBuf> {
        let staging = self.staging.path().to_path_buf();
        sync_dir_files(&staging)?;
        interrupt::pause_at("publish");
        interrupt::check()?;
        check_output_dir(&self.final_dir)?;
        let old = match fs::symlink_metadata(&self.final_dir) {
            Ok(_) => Some(lock_if_free(&self.final_dir)?.with_context(|| {
                format!(
                    "{} is being replaced by another mkimg right now",
                    self.final_dir.display()
                )
            })?),
            Err(_) => None,
        };
        if old.is_some() {
            renameat_with(CWD, &staging, CWD, &self.final_dir, RenameFlags::EXCHANGE)
                .map_err(std::io::Error::from)
                .with_context(|| {
                    format!(
                        "swapping {} into {}",
                        staging.display(),
                        self.final_dir.display()
                    )
                })?;
            self.staging.disown();
            // The old output now lives at the staging path, still locked by
            // `old`; check_output_dir proved it holds only our files.
            fs::remove_dir_all(&staging)
                .with_context(|| format!("removing the previous output {}", staging.display()))?;
        } else {
            fs::rename(&staging, &self.final_dir).with_context(|| {
                format!(
                    "renaming {} to {}",
                    staging.display(),
                    self.final_dir.display()
                )
            })?;
            self.staging.disown();
        }
        PUBLISHED.store(true, Ordering::SeqCst);
        Ok(self.final_dir.clone())
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

    use super::{check_output_dir, Staging};

    #[test]
    fn publish_replaces_atomically_and_failure_keeps_old_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("output/board");
        let first = Staging::create(&out).unwrap();
        fs::write(first.path().join("a.img"), b"one").unwrap();
        let manifest = r#"{"outputs": [{"file": "a.img"}]}"#;
        fs::write(first.path().join("manifest.json"), manifest).unwrap();
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

    #[test]
    fn only_absent_empty_or_manifest_listed_outputs_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        check_output_dir(&out).unwrap();
        fs::create_dir(&out).unwrap();
        check_output_dir(&out).unwrap();
        let manifest = r#"{"outputs": [{"file": "a.img"}, {"file": "start_vm.sh"}]}"#;
        fs::write(out.join("manifest.json"), manifest).unwrap();
        fs::write(out.join("a.img"), b"1").unwrap();
        check_output_dir(&out).unwrap();
        fs::write(out.join("start_vm.sh"), b"1").unwrap();
        check_output_dir(&out).unwrap();
        fs::write(out.join("notes"), b"mine").unwrap();
        let err = check_output_dir(&out).unwrap_err().to_string();
        assert!(err.contains("\"notes\""), "{err}");
        assert!(err.contains(&out.display().to_string()), "{err}");
        fs::remove_file(out.join("notes")).unwrap();
        fs::remove_file(out.join("a.img")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("a.img")).unwrap();
        let err = check_output_dir(&out).unwrap_err().to_string();
        assert!(
            err.contains("\"a.img\""),
            "a symlink is not our file: {err}"
        );

        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let err = check_output_dir(&file).unwrap_err().to_string();
        assert!(err.contains("is a regular file"), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let err = check_output_dir(&link).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
    }

    #[test]
    fn publish_refuses_a_directory_that_changed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let staging = Staging::create(&out).unwrap();
        let staged = staging.path().to_path_buf();
        fs::write(staging.path().join("a.img"), b"new").unwrap();
        fs::write(out.join("mine"), b"mine").unwrap();
        assert!(staging.publish().is_err());
        assert_eq!(fs::read(out.join("mine")).unwrap(), b"mine");
        assert!(!staged.exists(), "staging removed");
    }
}
