//! Loop devices: a file (a partition image, or a window of a whole disk
//! image) as a block device, through util-linux `losetup` run by [`Cmd`].
//!
//! Owns: the `losetup` argv ([`attach_cmd`], [`detach_cmd`], unit-tested
//! without running), and [`LoopDevice`], the guard that detaches exactly the
//! device it attached — on [`LoopDevice::close`], or best effort in `Drop`
//! (error paths, unwinding). It never detaches a device it did not attach.
//!
//! Whole disks: these kernels do not scan partitions on loop devices (and
//! there is no udev to make the nodes), so a partition of a disk image is
//! attached on its own with `offset` and `size_limit`. mkimg's own build
//! attaches the partition image file directly.
//!
//! What this cannot undo: a loop device is global, not part of a mount
//! namespace. If mkimg is killed with SIGKILL while one is attached, the
//! device stays attached to a file in the (then stale) work directory until
//! `losetup -d /dev/loopN`; SIGINT and SIGTERM are caught and cleaned up
//! (see `host::interrupt`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::host::cmd::Cmd;

/// How a file is attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopOptions {
    /// Attach read-only (`-r`): nothing can write the file through the device.
    pub read_only: bool,
    /// Byte offset in the file (`-o`).
    pub offset: u64,
    /// At most this many bytes from `offset` (`--sizelimit`); 0 = to the end.
    pub size_limit: u64,
}

/// `losetup --find --show [-r] [-o OFF] [--sizelimit N] FILE`: prints the device.
pub fn attach_cmd(file: &Path, opts: &LoopOptions) -> Cmd {
    let mut cmd = Cmd::new(
        format!("attaching {} to a loop device", file.display()),
        "losetup",
    )
    .args(["--find", "--show"]);
    if opts.read_only {
        cmd = cmd.arg("--read-only");
    }
    if opts.offset != 0 {
        cmd = cmd.args(["--offset", &opts.offset.to_string()]);
    }
    if opts.size_limit != 0 {
        cmd = cmd.args(["--sizelimit", &opts.size_limit.to_string()]);
    }
    cmd.arg(file)
}

/// `losetup --detach DEVICE`.
pub fn detach_cmd(device: &Path) -> Cmd {
    Cmd::new(format!("detaching {}", device.display()), "losetup")
        .arg("--detach")
        .arg(device)
}

/// An attached loop device; detached on `close` or drop.
#[derive(Debug)]
pub struct LoopDevice {
    device: PathBuf,
    file: PathBuf,
    rdev: u64,
    attached: bool,
}

impl LoopDevice {
    /// Attach `file` to the first free loop device.
    pub fn attach(file: &Path, opts: &LoopOptions) -> Result<LoopDevice> {
        let out = attach_cmd(file, opts).output().with_context(|| {
            "loop devices need root and the loop module (`modprobe loop`)".to_string()
        })?;
        let device = parse_attach_output(&out.stdout).with_context(|| {
            format!(
                "losetup printed {:?} for {}",
                String::from_utf8_lossy(&out.stdout),
                file.display()
            )
        })?;
        let mut guard = LoopDevice {
            device,
            file: file.to_owned(),
            rdev: 0,
            attached: true,
        };
        // Held by the guard from here on: a bad node is detached on return.
        let meta = std::fs::metadata(&guard.device)
            .with_context(|| format!("reading {}", guard.device.display()))?;
        if !meta.file_type().is_block_device() {
            bail!("{} is not a block device", guard.device.display());
        }
        guard.rdev = meta.rdev();
        Ok(guard)
    }

    /// The device node, e.g. `/dev/loop3`.
    pub fn path(&self) -> &Path {
        &self.device
    }

    /// The attached file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The device number (`st_rdev`, read at attach time), for a `mknod`
    /// of the same device where the host's /dev is not visible.
    pub fn rdev(&self) -> u64 {
        self.rdev
    }

    /// Detach, reporting failure.
    pub fn close(mut self) -> Result<()> {
        self.attached = false;
        detach_cmd(&self.device).run().with_context(|| {
            format!(
                "{} stays attached to {}",
                self.device.display(),
                self.file.display()
            )
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if self.attached {
            if let Err(err) = detach_cmd(&self.device).run() {
                eprintln!(
                    "mkimg: warning: {err}; {} stays attached to {} (`losetup -d {}`)",
                    self.device.display(),
                    self.file.display(),
                    self.device.display()
                );
            }
        }
    }
}

/// The device `losetup --show` printed: one absolute /dev path.
pub fn parse_attach_output(stdout: &[u8]) -> Result<PathBuf> {
    let text = std::str::from_utf8(stdout).context("not UTF-8")?.trim();
    if text.starts_with("/dev/") && !text.contains(char::is_whitespace) {
        Ok(PathBuf::from(text))
    } else {
        bail!("expected one /dev/loopN line")
    }
}

#[cfg(test)]
mod tests;
