//! The target `mkimg flash` writes: a block device or a regular file,
//! identified, opened and sized here — after `host::busy` found it unused
//! and before a byte is written.
//!
//! - A block device is opened `O_EXCL`: the kernel refuses that while the
//!   device is mounted or claimed (device mapper, md, another `O_EXCL`
//!   opener), a second line behind `host::busy`. Its size (seeking to the
//!   end, as bmaptool does) must hold the image.
//! - A regular file that does not exist is created (never through a
//!   dangling symlink: `O_CREAT|O_EXCL`) and sized to the image. An
//!   existing empty file is sized to the image; an existing file that is
//!   not empty is treated like a card: it must hold the image, and is
//!   never shrunk or grown, so bytes past the image stay as they were.
//!   Nor is it truncated first, as `bmaptool copy` does to a file: blocks
//!   the map leaves out keep what they held, exactly as on a card, so a
//!   file stands in for a device (tests) and nothing the user did not ask
//!   to change is zeroed. Flash to a new file for a clean copy.
//! - Anything else (a directory, a character device, a FIFO) is refused.
//!
//! After opening, the descriptor's identity is compared with what was
//! checked (so a path swapped in between is caught). [`FlashTarget::sync`]
//! flushes it to the medium and [`FlashTarget::drop_cache`] asks the kernel
//! to drop its cached pages (`POSIX_FADV_DONTNEED` after the sync: clean
//! pages go), so the read-back comes from the medium rather than memory.
//! Neither can make a lying medium honest; the read-back is what it is.
//!
//! Must not: spawn processes, or write anything (the caller writes).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::host::busy::{DevNum, TargetId};

/// What the target path names, before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Block(DevNum),
    File { dev: u64, ino: u64, len: u64 },
    Missing,
}

impl TargetKind {
    /// The identity `host::busy` checks; `None` for a file to be created.
    pub fn id(self) -> Option<TargetId> {
        match self {
            TargetKind::Block(dev) => Some(TargetId::Block(dev)),
            TargetKind::File { dev, ino, .. } => Some(TargetId::File { dev, ino }),
            TargetKind::Missing => None,
        }
    }
}

/// Stat `path` (following symlinks: `/dev/disk/by-id/…` are links).
pub fn identify(path: &Path) -> Result<TargetKind> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(TargetKind::Missing),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let kind = meta.file_type();
    if kind.is_block_device() {
        Ok(TargetKind::Block(DevNum::from_rdev(meta.rdev())))
    } else if kind.is_file() {
        Ok(TargetKind::File {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
        })
    } else {
        bail!(
            "{} is neither a block device nor a regular file",
            path.display()
        )
    }
}

/// An opened target, at least `image_size` bytes.
#[derive(Debug)]
pub struct FlashTarget {
    pub file: File,
    pub path: PathBuf,
    pub kind: TargetKind,
    /// The device's or file's size after opening.
    pub size: u64,
    /// A file mkimg created (it is not removed on failure: a partial
    /// image is the user's to look at or delete).
    pub created: bool,
}

/// Open `path`, which [`identify`] found to be `kind`, to write an image
/// of `image_size` bytes (see the module doc).
pub fn open_target(path: &Path, kind: TargetKind, image_size: u64) -> Result<FlashTarget> {
    let too_small = |size: u64| {
        anyhow::anyhow!(
            "{} holds {size} bytes, the image {image_size}: too small; nothing was written",
            path.display(),
        )
    };
    let (file, size, created) = match kind {
        TargetKind::Block(_) => {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(rustix::fs::OFlags::EXCL.bits() as i32)
                .open(path)
                .map_err(|err| match err.raw_os_error() {
                    Some(code) if code == rustix::io::Errno::BUSY.raw_os_error() => {
                        anyhow::anyhow!(
                            "{} is in use: the kernel refused exclusive access (mounted, \
                             part of a device-mapper or RAID device, or open by another \
                             program)",
                            path.display()
                        )
                    }
                    _ => anyhow::Error::new(err).context(format!("opening {}", path.display())),
                })?;
            let size = file
                .seek(SeekFrom::End(0))
                .with_context(|| format!("reading the size of {}", path.display()))?;
            if size < image_size {
                return Err(too_small(size));
            }
            (file, size, false)
        }
        TargetKind::File { len, .. } => {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            if len != 0 && len < image_size {
                return Err(too_small(len));
            }
            (file, len.max(image_size), false)
        }
        TargetKind::Missing => {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            (file, image_size, true)
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    let same = match kind {
        TargetKind::Block(dev) => {
            meta.file_type().is_block_device() && DevNum::from_rdev(meta.rdev()) == dev
        }
        TargetKind::File { dev, ino, .. } => meta.dev() == dev && meta.ino() == ino,
        TargetKind::Missing => meta.is_file(),
    };
    if !same {
        bail!(
            "{} changed while it was being opened; nothing was written",
            path.display()
        );
    }
    if meta.is_file() && meta.len() < image_size {
        file.set_len(image_size)
            .with_context(|| format!("sizing {} to {image_size} bytes", path.display()))?;
    }
    Ok(FlashTarget {
        file,
        path: path.to_owned(),
        kind,
        size,
        created,
    })
}

impl FlashTarget {
    /// Everything written reaches the medium (`fsync`).
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("flushing {} to the medium", self.path.display()))
    }

    /// Drop the cached pages of the first `len` bytes, so reading them
    /// again reads the medium. Best effort: `false` when the kernel
    /// refused (the read-back may then come from memory).
    pub fn drop_cache(&self, len: u64) -> bool {
        let Some(len) = std::num::NonZeroU64::new(len) else {
            return true;
        };
        rustix::fs::fadvise(&self.file, 0, Some(len), rustix::fs::Advice::DontNeed).is_ok()
    }
}
