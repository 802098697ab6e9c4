//! Where a build's work directory goes, and the sweep of the ones builds
//! that died left behind.
//!
//! Work directories are [`LockedDir`]s named `mkimg-work-<pid>-<random>`
//! (see `host::lockdir`) under the root [`work_root`] picks:
//! `$MKIMG_WORKDIR`; else /dev/shm when it is a tmpfs with room for the
//! worst case (the root tar and the ext4 image then never reach the disk:
//! mke2fs fsyncs its image, and on tmpfs that is free) and, when the build
//! runs programs from its work directory (the `--grub mkconfig` tree), is
//! not mounted `noexec`; else the system temp directory.
//!
//! Knows nothing of plans or tarballs: the caller says how much room the
//! build may need ([`ram_work_need`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::host::lockdir::{sweep, LockedDir, SweepReport};

/// Work directories are `mkimg-work-<pid>-<random>`.
pub const WORK_PREFIX: &str = "mkimg-work-";

/// Slack on top of the partitions in [`ram_work_need`].
const SLACK: u64 = 256 << 20;

/// The most a RAM-backed work directory may have to hold, given the sizes
/// of the mounted partitions: each twice (its tar or spill file, and its
/// image) plus slack. The worst case comes from the plan, not the tarball:
/// a compressed or sparse tarball says nothing about what it expands to,
/// but the rootfs pass stops before any partition's contents outgrow the
/// partition. `None` for a stream (standard input, a FIFO), which is
/// assumed not to fit: nothing about it is known before it is read.
pub fn ram_work_need(stream: bool, mounted_sizes: impl IntoIterator<Item = u64>) -> Option<u64> {
    (!stream).then(|| {
        mounted_sizes.into_iter().fold(SLACK, |sum, size| {
            sum.saturating_add(size.saturating_mul(2))
        })
    })
}

/// The directory the work directory goes in (see the module doc); `need`
/// from [`ram_work_need`]; `runs_programs`: the build executes files of its
/// work directory.
pub fn work_root(need: Option<u64>, runs_programs: bool) -> PathBuf {
    if let Some(dir) = std::env::var_os("MKIMG_WORKDIR") {
        return PathBuf::from(dir);
    }
    let Some(need) = need else {
        return std::env::temp_dir();
    };
    let shm = Path::new("/dev/shm");
    if let Ok(stat) = rustix::fs::statvfs(shm) {
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        let is_tmpfs = rustix::fs::statfs(shm).is_ok_and(|s| s.f_type == 0x0102_1994);
        let noexec = stat.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC);
        if is_tmpfs
            && free >= need
            && !(runs_programs && noexec)
            && rustix::fs::access(shm, rustix::fs::Access::WRITE_OK).is_ok()
        {
            return shm.to_path_buf();
        }
    }
    std::env::temp_dir()
}

/// A fresh work directory under `root`.
pub fn create_work_dir(root: &Path) -> io::Result<LockedDir> {
    LockedDir::create_unique(root, WORK_PREFIX)
}

/// Remove the work directories builds that died left, in every root
/// [`work_root`] may pick: only directories of mkimg's own naming whose
/// lock is free go. Never fails: problems are warnings in the reports.
pub fn sweep_work_dirs() -> Vec<SweepReport> {
    let mut roots = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    roots.extend(std::env::var_os("MKIMG_WORKDIR").map(PathBuf::from));
    roots.dedup();
    roots.iter().map(|r| sweep(r, &is_work_dir)).collect()
}

fn is_work_dir(name: &str) -> bool {
    name.strip_prefix(WORK_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, tail)| {
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !tail.is_empty()
        })
}

#[cfg(test)]
mod tests {
    use super::{is_work_dir, ram_work_need};

    /// Whatever the tarball's size, the worst case is the partitions':
    /// each twice plus slack. A stream never goes to RAM.
    #[test]
    fn ram_work_dir_need_comes_from_the_partitions() {
        assert_eq!(
            ram_work_need(false, [1 << 30, 9 << 30]),
            Some((20 << 30) + (256 << 20))
        );
        assert_eq!(ram_work_need(false, []), Some(256 << 20));
        assert_eq!(ram_work_need(true, [1 << 30]), None);
    }

    #[test]
    fn work_dir_names_are_recognised() {
        assert!(is_work_dir("mkimg-work-123-abc"));
        assert!(!is_work_dir("mkimg-work-123-"));
        assert!(!is_work_dir("mkimg-work-x1-abc"));
        assert!(!is_work_dir("other-123-abc"));
    }
}
