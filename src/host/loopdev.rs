//! Loop devices: a file (a partition image, or a window of a whole disk
//! image) as a block device, attached with the loop driver's ioctls.
//!
//! Owns: [`LoopDevice`], the guard that holds the device it attached open
//! and detaches exactly that device — on [`LoopDevice::close`], or best
//! effort in `Drop` (error paths, unwinding). It never detaches a device it
//! did not attach.
//!
//! Autoclear: every device is attached with `LO_FLAGS_AUTOCLEAR` and the
//! guard keeps its file descriptor open. The kernel detaches an autoclear
//! device when its last opener closes it and no mount holds it, so if mkimg
//! is killed outright (SIGKILL, OOM) its descriptor closes, its private
//! mount namespace and the mounts in it go, and the device is freed: no
//! `losetup -d` is ever needed after a crash. This is why the guard attaches
//! by ioctl and not through util-linux `losetup`: losetup has no autoclear
//! option, and the device would be detached the moment losetup exits.
//!
//! Whole disks: these kernels do not scan partitions on loop devices (and
//! there is no udev to make the nodes), so a partition of a disk image is
//! attached on its own with `offset` and `size_limit`. mkimg's own build
//! attaches the partition image file directly.
//!
//! Must not: spawn processes (the ioctls are in `ioctl`, the only unsafe
//! code here), or let the descriptor it holds reach a child (std opens
//! every file `O_CLOEXEC`).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::io::Errno;

mod ioctl;

/// How a file is attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopOptions {
    /// Attach read-only: nothing can write the file through the device.
    pub read_only: bool,
    /// Byte offset in the file.
    pub offset: u64,
    /// At most this many bytes from `offset`; 0 = to the end.
    pub size_limit: u64,
    /// The device's logical sector size (512, 1024, 2048 or 4096: the
    /// kernel refuses others); 0 = the kernel's default, 512. What
    /// `losetup -b` sets: a 4Kn disk image read by the partitioning tools.
    pub block_size: u32,
}

/// How many times a free device is looked for when another process takes
/// the one the kernel offered before it is configured (EBUSY).
const ATTACH_TRIES: usize = 16;

/// An attached loop device, held open; detached on `close` or drop (and
/// by the kernel if mkimg dies).
#[derive(Debug)]
pub struct LoopDevice {
    device: PathBuf,
    file: PathBuf,
    rdev: u64,
    fd: Option<OwnedFd>,
}

impl LoopDevice {
    /// Attach `file` to a free loop device, with autoclear.
    pub fn attach(file: &Path, opts: &LoopOptions) -> Result<LoopDevice> {
        let hint = "loop devices need root and the loop module (`modprobe loop`)";
        let backing = OpenOptions::new()
            .read(true)
            .write(!opts.read_only)
            .open(file)
            .with_context(|| format!("opening {} to attach it", file.display()))?;
        let control = File::open("/dev/loop-control")
            .with_context(|| format!("opening /dev/loop-control; {hint}"))?;
        let mut last = Errno::BUSY;
        for _ in 0..ATTACH_TRIES {
            let number = ioctl::get_free(&control)
                .map_err(std::io::Error::from)
                .with_context(|| format!("asking /dev/loop-control for a free device; {hint}"))?;
            let device = PathBuf::from(format!("/dev/loop{number}"));
            let node = OpenOptions::new()
                .read(true)
                .write(!opts.read_only)
                .open(&device)
                .with_context(|| format!("opening {}", device.display()))?;
            match ioctl::configure(&node, ioctl::loop_config(backing.as_fd(), file, opts)) {
                Ok(()) => {
                    let meta = node
                        .metadata()
                        .with_context(|| format!("reading {}", device.display()))?;
                    let guard = LoopDevice {
                        device,
                        file: file.to_owned(),
                        rdev: meta.rdev(),
                        fd: Some(node.into()),
                    };
                    // Held by the guard from here on: a bad node is detached on return.
                    if !meta.file_type().is_block_device() {
                        bail!("{} is not a block device", guard.device.display());
                    }
                    return Ok(guard);
                }
                // Taken by another process between GET_FREE and CONFIGURE.
                Err(Errno::BUSY) => last = Errno::BUSY,
                Err(err) => {
                    return Err(std::io::Error::from(err)).with_context(|| {
                        format!("attaching {} to {}", file.display(), device.display())
                    })
                }
            }
        }
        Err(std::io::Error::from(last)).with_context(|| {
            format!(
                "attaching {}: every free loop device was taken first ({ATTACH_TRIES} tries)",
                file.display()
            )
        })
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

    /// Detach, reporting failure, or that a remaining user (a mount that
    /// was not taken down) still holds it: the kernel then detaches it
    /// when that user lets go.
    pub fn close(mut self) -> Result<()> {
        let Some(fd) = self.fd.take() else {
            return Ok(());
        };
        ioctl::clear(&fd)
            .map_err(std::io::Error::from)
            .with_context(|| {
                format!(
                    "detaching {} from {}",
                    self.device.display(),
                    self.file.display()
                )
            })?;
        // Still bound after the clear: another opener holds it, and the
        // kernel detaches it at the last close (autoclear). A process
        // another thread just forked lets go at its exec: wait for that.
        let deferred = ioctl::status(&fd).is_ok();
        drop(fd);
        self.wait_for_release();
        if deferred && self.bound() {
            bail!(
                "{} is still in use; it stays attached to {} until its last user closes it",
                self.device.display(),
                self.file.display()
            );
        }
        Ok(())
    }
}

impl LoopDevice {
    /// Wait (at most a second) until the kernel has let go of the device.
    /// It does at the last close of the device; ours is the last but for a
    /// process another thread of mkimg forked at that moment, which holds a
    /// copy of the descriptor until its exec closes it (close-on-exec).
    fn wait_for_release(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.bound() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Whether the device is still attached to our file (sysfs's
    /// `backing_file`; once detached the number may already serve another
    /// file, which is not ours to wait for).
    fn bound(&self) -> bool {
        let Some(name) = self.device.file_name() else {
            return false;
        };
        let backing = Path::new("/sys/block").join(name).join("loop/backing_file");
        let Ok(text) = std::fs::read_to_string(&backing) else {
            return false;
        };
        match std::fs::canonicalize(&self.file) {
            Ok(ours) => Path::new(text.trim_end_matches('\n')) == ours,
            Err(_) => true,
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Closing the descriptor would do (autoclear); clearing first
            // makes the detach synchronous when nothing else holds it.
            if let Err(err) = ioctl::clear(&fd) {
                eprintln!(
                    "mkimg: warning: detaching {}: {err}; the kernel detaches it from {} \
                     when its last user closes it",
                    self.device.display(),
                    self.file.display()
                );
                return;
            }
            drop(fd);
            // As in `close`: a process forked that moment holds it until
            // its exec.
            self.wait_for_release();
        }
    }
}

#[cfg(test)]
mod tests;
