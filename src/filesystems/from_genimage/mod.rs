//! The filesystem images of a genimage.cfg (`vfat`, `ext2`/`ext3`/`ext4`,
//! `squashfs`), built the way genimage 16 builds them, by mkimg's own
//! writers and with every input contained.
//!
//! In: one [`Image`] of a [`crate::genimage::Config`] and a [`FsEnv`] (the
//! `--inputpath`, `--rootpath`, `--tmppath` directories, the images of the
//! config built so far, the clock and the seed). Out: the image file at
//! the path the caller gives (a new file it renames into place). `file`
//! images have nothing to build (the caller uses the input); `hdimage` is
//! the caller's (the plan assembles it).
//!
//! What goes into an image, as genimage 16 decides (measured against it):
//! - `srcpath`: that directory, whole. genimage takes any host path; mkimg
//!   resolves it inside `--inputpath` only (no absolute path, no `..`, no
//!   symlink out of it), because the config is untrusted and mkimg often
//!   runs as root. With `mountpoint` too it is refused, as genimage does.
//! - `mountpoint = "/boot"`: the `boot` subtree of the root path, minus
//!   the subtrees of deeper mount points of other images.
//! - neither: the whole root path minus every other image's mount point;
//!   those mount points stay as empty directories with their own mode and
//!   owner (genimage `mv`s each subtree out and re-creates the directory).
//!   A mount point that is not in the root tree is an error, as in
//!   genimage (whose `mv` fails).
//! - `empty = true`: nothing (the filesystem alone), for ext and squashfs;
//!   genimage 16's vfat ignores it, and so does mkimg's.
//!
//! The root path is a directory (read by `rootfs::dir_source`: sorted, no
//! symlink followed, owners as on disk) or, mkimg's extension, a rootfs
//! tarball (plain, gzip, xz or zstd); either way the tree goes through the
//! one rootfs pass (`rootfs::process_rootfs`: hard link, path and name
//! checks; a size limit per image enforced while it streams; mtimes
//! clamped to SOURCE_DATE_EPOCH, which is what makes the image
//! reproducible where genimage copies the build time). The split by mount
//! point is the pass's own (deepest wins), so nested mount points work in
//! any order (genimage's `mv` needs the inner one first).
//!
//! Per type, what mkimg does differently and why: see [`vfat`] (lamfat, not
//! mkdosfs + mcopy), [`ext`] (always mke2fs, genext2fs's geometry
//! reproduced when `use-mke2fs` is false) and [`squashfs`] (mksquashfs,
//! as genimage). Identities genimage leaves to chance (vfat volume id, ext
//! UUID and hash seed) are derived from the seed and the image's name.
//!
//! Must not: run a program except through `host::cmd`, read a file outside
//! the input path, the root path and the built images, write outside the
//! output file and its own temp directories under `--tmppath`.

mod content;
pub mod ext;
mod inputs;
pub mod squashfs;
pub mod vfat;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};

use crate::genimage::model::ImageKind;
use crate::genimage::values::ImageSize;
use crate::genimage::{Config, Image};
use crate::plan::identity::IdentitySource;

/// What every image of one genimage run shares.
pub struct FsEnv<'a> {
    pub config: &'a Config,
    pub inputpath: &'a Path,
    /// --rootpath: a directory or (mkimg's extension) a rootfs tarball.
    pub rootpath: Option<&'a Path>,
    pub tmppath: &'a Path,
    /// Images of this config already built: section name → file.
    pub built: &'a BTreeMap<String, std::path::PathBuf>,
    pub source_date_epoch: i64,
    pub seed: &'a str,
}

/// Builds one vfat / ext2/3/4 / squashfs image section into `out` (a new
/// file; the caller renames it into place). `file` images: nothing to
/// build (return Ok) — the caller uses the input. hdimage: error (not this
/// module's).
pub fn build_fs_image(image: &Image, env: &FsEnv<'_>, out: &Path) -> Result<()> {
    if let (Some(src), Some(_)) = (&image.srcpath, &image.mountpoint) {
        bail!(
            "{}: {}: srcpath and mountpoint cannot both be set (genimage refuses them too)",
            src.at,
            describe(image)
        );
    }
    match &image.kind {
        ImageKind::File(_) => Ok(()),
        ImageKind::Hdimage(_) => bail!(
            "{}: {} is an hdimage: disk images are assembled by the plan, not built here",
            image.file.at,
            describe(image)
        ),
        ImageKind::Vfat(v) => vfat::build(image, v, env, out),
        ImageKind::Ext(e) => ext::build(image, e, env, out),
        ImageKind::Squashfs(s) => squashfs::build(image, s, env, out),
    }
}

/// `image 'boot.vfat'`, for messages (the caller adds `file:line`).
fn describe(image: &Image) -> String {
    format!("image '{}'", image.file.value)
}

/// `image 'boot.vfat' (genimage.cfg:3)`: names the image and where it is.
fn locate(image: &Image) -> String {
    format!("{} ({})", describe(image), image.file.at)
}

/// The image's `size` in bytes, which vfat and ext images need.
fn required_size(image: &Image) -> Result<u64> {
    match &image.size {
        None => bail!(
            "{}: {}: no size given; this image type needs size = … (genimage: \"no size given or must not be zero\")",
            image.file.at,
            describe(image)
        ),
        Some(s) => match s.value {
            ImageSize::Bytes(0) => bail!("{}: {}: size must not be zero", s.at, describe(image)),
            ImageSize::Bytes(n) => Ok(n),
            ImageSize::Percent(p) => bail!(
                "{}: {}: size = {p}% (a share of the content's size) is not supported by mkimg yet; give the size in bytes",
                s.at,
                describe(image)
            ),
        },
    }
}

/// The identities genimage leaves to chance, derived per image name.
fn identities(env: &FsEnv<'_>) -> IdentitySource {
    IdentitySource::new(env.seed, "genimage")
}

/// SOURCE_DATE_EPOCH as the pass's clamp (a negative epoch clamps to 0).
fn epoch_u64(env: &FsEnv<'_>) -> u64 {
    u64::try_from(env.source_date_epoch).unwrap_or(0)
}
