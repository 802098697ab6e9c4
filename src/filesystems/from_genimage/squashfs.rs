//! `squashfs` images: `mksquashfs DIR OUT -b BLOCK -noappend -comp C`, as
//! genimage 16 runs it (block size 4096 and gzip unless set; `none` is
//! gzip with every compression switched off, as in genimage).
//!
//! mksquashfs (squashfs-tools 4.5) reads only a directory, so the tree must
//! be one on disk: `srcpath` (inside the input path), or a root path
//! directory, or its `mountpoint` subdirectory (reached without crossing a
//! symlink). A rootfs tarball as root path is refused rather than
//! unpacked onto the host; so is a tree from which another image's mount
//! point would have to be cut (genimage empties those directories in its
//! copy; mksquashfs cannot leave an empty directory in the place of an
//! excluded one). mksquashfs stores symlinks as symlinks and follows none.
//!
//! Reproducible: `SOURCE_DATE_EPOCH` in mksquashfs's environment sets the
//! creation time and every inode's time (genimage keeps the files' own);
//! nothing else in a squashfs image depends on the host. `size`, when
//! given, is a limit: a larger result is an error, as in genimage.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::content::{mount_of, mount_points};
use super::inputs::{resolve_contained, Input};
use super::{describe, locate, FsEnv};
use crate::genimage::model::Squashfs;
use crate::genimage::values::ImageSize;
use crate::genimage::Image;
use crate::host::cmd::Cmd;

/// genimage's default `block-size`.
const DEFAULT_BLOCK: u64 = 4096;

/// `mksquashfs` for `dir` into `out` (pure: runs nothing).
pub fn mksquashfs_cmd(image: &Image, s: &Squashfs, dir: &Path, out: &Path, epoch: i64) -> Cmd {
    let block = s.block_size.as_ref().map_or(DEFAULT_BLOCK, |b| b.value);
    let comp = s.compression.as_ref().map_or("gzip", |c| c.value.as_str());
    let mut cmd = Cmd::new(
        format!("creating the squashfs of {}", locate(image)),
        "mksquashfs",
    )
    .arg(dir)
    .arg(out)
    .arg("-b")
    .arg(block.to_string())
    .args(["-noappend", "-no-progress", "-comp"]);
    cmd = if comp == "none" {
        cmd.args([
            "gzip",
            "-noInodeCompression",
            "-noDataCompression",
            "-noFragmentCompression",
            "-noXattrCompression",
        ])
    } else {
        cmd.arg(comp)
    };
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string())
}

pub fn build(image: &Image, s: &Squashfs, env: &FsEnv<'_>, out: &Path) -> Result<()> {
    if let Some(b) = &s.block_size {
        if !(4096..=1 << 20).contains(&b.value) || !b.value.is_power_of_two() {
            bail!(
                "{}: block-size {}: mksquashfs takes a power of two from 4096 to 1M",
                b.at,
                b.value
            );
        }
    }
    if env.source_date_epoch < 0 {
        bail!("{}: SOURCE_DATE_EPOCH is before 1970", locate(image));
    }
    let scratch = tempfile::Builder::new()
        .prefix("squashfs-")
        .tempdir_in(env.tmppath)
        .with_context(|| format!("creating a scratch directory in {}", env.tmppath.display()))?;
    let dir = if image.empty {
        let empty = scratch.path().join("empty");
        std::fs::create_dir(&empty).with_context(|| format!("creating {}", empty.display()))?;
        empty
    } else {
        source_dir(image, env)?
    };
    mksquashfs_cmd(image, s, &dir, out, env.source_date_epoch).run()?;
    if let Some(limit) = &image.size {
        let len = std::fs::metadata(out)
            .with_context(|| format!("reading {}", out.display()))?
            .len();
        match limit.value {
            ImageSize::Bytes(max) if len > max => bail!(
                "{}: {}: the squashfs is {len} bytes, larger than size {max}; grow size to at least {len}",
                limit.at,
                describe(image)
            ),
            ImageSize::Percent(_) => bail!(
                "{}: {}: a size in percent is not supported by mkimg yet",
                limit.at,
                describe(image)
            ),
            _ => {}
        }
    }
    scratch
        .close()
        .context("removing the squashfs scratch directory")?;
    Ok(())
}

/// The directory mksquashfs reads.
fn source_dir(image: &Image, env: &FsEnv<'_>) -> Result<PathBuf> {
    if let Some(src) = &image.srcpath {
        return match resolve_contained(&src.value, env.inputpath)
            .with_context(|| format!("{}: srcpath '{}'", src.at, src.value))?
        {
            Input::Dir(dir) => Ok(dir),
            _ => bail!("{}: srcpath '{}' is not a directory", src.at, src.value),
        };
    }
    let Some(root) = env.rootpath else {
        bail!(
            "{}: {} takes its content from the root path, but none was given (--rootpath DIR)",
            image.file.at,
            describe(image)
        );
    };
    if !root.is_dir() {
        bail!(
            "{}: {}: mksquashfs reads a directory, and the root path {} is not one; mkimg does not unpack a rootfs tarball onto the host: give a directory as --rootpath",
            image.file.at,
            describe(image),
            root.display()
        );
    }
    let mine = mount_of(image)?;
    let real_root = root
        .canonicalize()
        .with_context(|| format!("resolving {}", root.display()))?;
    let dir = match &mine {
        None => real_root.clone(),
        Some(m) => {
            let joined = real_root.join(m);
            let real = joined.canonicalize().with_context(|| {
                format!(
                    "{}: mountpoint '/{m}' is not in the root tree {}",
                    locate(image),
                    root.display()
                )
            })?;
            if real != joined || !real.is_dir() {
                bail!(
                    "{}: mountpoint '/{m}' is not a plain directory of {} (a symlink is not followed)",
                    locate(image),
                    root.display()
                );
            }
            real
        }
    };
    let prefix = mine.clone().unwrap_or_default();
    for other in mount_points(env.config)? {
        let inside = prefix.is_empty()
            || other
                .strip_prefix(prefix.as_str())
                .is_some_and(|r| r.starts_with('/'));
        if Some(&other) != mine.as_ref() && inside {
            bail!(
                "{}: the mount point /{other} of another image lies inside this squashfs's tree; mkimg cannot cut it out for mksquashfs (genimage leaves it as an empty directory): not supported",
                locate(image)
            );
        }
    }
    Ok(dir)
}
