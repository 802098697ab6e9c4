//! The ext4 root partition image, built from the rootfs stage's tarball by
//! `mke2fs -d`, rootless and byte-reproducible.
//!
//! Owns: the mke2fs command line and its configuration (templates/mke2fs.conf,
//! handed to mke2fs through `MKE2FS_CONFIG` so the host's /etc/mke2fs.conf
//! never leaks in), the "does it fit" check before anything is written, the
//! restoring of xattrs mke2fs's tar reader drops (through libext2fs, never
//! a debugfs script: see [`xattrs`]), the
//! indexing of the directories mke2fs leaves linear (`e2fsck -fyD`, run only
//! when the tarball has a directory of more than one block: see [`fit`]),
//! and the space report read back with dumpe2fs.
//!
//! Reproducibility, checked by `cmp` in the tests:
//! - e2fsprogs >= 1.47.1 takes the clock from `SOURCE_DATE_EPOCH` (before
//!   `E2FSPROGS_FAKE_TIME`); it fixes s_mkfs_time, s_wtime, s_lastcheck,
//!   every inode's crtime and the times of the root and lost+found when the
//!   tarball does not carry them. We set both variables for mke2fs; the
//!   xattr step opens the image through libext2fs with its clock (`now`)
//!   set to the epoch, and setting an xattr changes no inode time.
//! - UUID (`-U`) and directory hash seed (`-E hash_seed=`) come from the
//!   plan; the metadata checksum seed derives from the UUID
//!   (metadata_csum_seed is off); the internal journal has no UUID of its own.
//! - The image file is created fresh (zero-filled, sparse) by us, so
//!   `assume_storage_prezeroed=1` is true: mke2fs skips zeroing inode tables
//!   and journal yet marks the groups ITABLE_ZEROED (no lazy init writing to
//!   the card at first boot). Byte-identical to `lazy_itable_init=0,
//!   lazy_journal_init=0` but the file stays sparse (2 GiB: 1.7 MiB
//!   allocated instead of 100 MiB). `nodiscard`: nothing to discard.
//! - `root_owner=0:0`: without it the root directory belongs to whoever runs
//!   mkimg (rootless builds) unless the tarball has a `./` entry.
//! - `-T default -b 4096`: no size-based usage type ("small" = 1 KiB blocks).
//! - The final `e2fsck -fyD` (directory indexing) gets `E2FSCK_TIME`. It
//!   runs only when some directory spans more than one block; whether it
//!   runs depends on the tarball alone, so two builds still match.
//!
//! Known limits of `mke2fs -d tar` (1.47.2), for the rootfs stage: inode
//! atime/ctime come from PAX `atime`/`ctime` records and are 0 (1970) when
//! the tarball has none; a hard-link entry re-applies ITS header's owner,
//! mode and mtime to the shared inode, so it must repeat the target's.
//!
//! Must not: pick identities or times (they come in [`Ext4Params`]), run
//! anything except through [`Cmd`], write input-derived text into any
//! tool's command script. In: the tarball, params, xattr list.
//! Out: the image file of exactly `size` bytes and an [`Ext4Report`].

mod fit;
mod libext2fs;
mod xattrs;

#[cfg(test)]
mod tests;

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;

use crate::host::cmd::{Cmd, CmdError};

pub use fit::{check_fits, check_inodes, estimate_needed, measure_tar, TarUsage};
pub use xattrs::{restore_xattrs, shown, XattrRecord};

/// The only block size mkimg makes (also in templates/mke2fs.conf).
pub const BLOCK_SIZE: u64 = 4096;
const MIB: u64 = 1 << 20;
/// ext4 `s_volume_name` is 16 bytes.
const LABEL_MAX: usize = 16;
/// The first e2fsprogs whose library honours SOURCE_DATE_EPOCH.
const MIN_E2FSPROGS: (u32, u32, u32) = (1, 47, 1);

/// The project's mke2fs.conf, written next to the build for `MKE2FS_CONFIG`.
pub use crate::templates::MKE2FS_CONF;

/// What the plan fixed for one ext4 partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Params {
    /// The partition's name in the board file, for messages.
    pub partition: String,
    pub label: Option<String>,
    pub uuid: Uuid,
    pub hash_seed: Uuid,
    pub source_date_epoch: i64,
}

/// What the built filesystem holds, read back with dumpe2fs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Report {
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Inodes in use (including the 10 reserved ones and lost+found).
    pub inodes: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error(
        "rootfs needs ~{} MiB but partition '{partition}' is {} MiB: short by {} MiB; \
         grow the partition (size = \"{}M\")",
        mib_up(*.needed), .size / MIB, mib_up(.needed - .size), .suggested / MIB
    )]
    TooSmall {
        partition: String,
        needed: u64,
        size: u64,
        suggested: u64,
    },
    #[error(
        "rootfs has {files} files and directories but the {} MiB ext4 partition '{partition}' \
         has room for {inodes} (one inode per 16 KiB); grow the partition (size = \"{}M\")",
        .size / MIB, .suggested / MIB
    )]
    TooManyFiles {
        partition: String,
        files: u64,
        inodes: u64,
        size: u64,
        suggested: u64,
    },
    #[error(
        "rootfs does not fit: mke2fs ran out of space in partition '{partition}' ({} MiB, \
         estimated need ~{} MiB): {detail}; grow the partition (size = \"{}M\")",
        .size / MIB, mib_up(*.needed), .suggested / MIB
    )]
    OutOfSpace {
        partition: String,
        size: u64,
        needed: u64,
        suggested: u64,
        detail: String,
    },
    #[error("partition '{partition}': size {size} is not a multiple of the {BLOCK_SIZE}-byte ext4 block")]
    UnalignedSize { partition: String, size: u64 },
    #[error("partition '{partition}': ext4 label {label:?} is {} bytes; ext4 labels hold at most {LABEL_MAX}", .label.len())]
    LabelTooLong { partition: String, label: String },
    #[error("partition '{partition}': SOURCE_DATE_EPOCH {epoch} is negative")]
    NegativeEpoch { partition: String, epoch: i64 },
    #[error(
        "e2fsprogs {found} is too old: reproducible ext4 images need >= 1.47.1, which takes \
         its clock from SOURCE_DATE_EPOCH (Debian 12: install e2fsprogs from bookworm-backports)"
    )]
    OldE2fsprogs { found: String },
    #[error("cannot tell the e2fsprogs version from `mke2fs -V`: {output:?}")]
    UnknownVersion { output: String },
    #[error("xattr {name} on {path}: {reason}")]
    BadXattr {
        path: String,
        name: String,
        reason: String,
    },
    #[error(
        "could not restore {count} xattr(s) in partition '{partition}': {}",
        .failed.join("; ")
    )]
    XattrsNotSet {
        partition: String,
        count: usize,
        /// "NAME on /PATH: reason", at most 20 and a count of the rest.
        failed: Vec<String>,
    },
}

fn mib_up(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

/// `mke2fs` for `image` (already `size` bytes, all zero) from `tar`.
/// Pure: builds the command, runs nothing.
pub fn mke2fs_cmd(params: &Ext4Params, conf: &Path, tar: &Path, image: &Path, size: u64) -> Cmd {
    let epoch = params.source_date_epoch.to_string();
    let mut cmd = Cmd::new(
        format!(
            "creating ext4 filesystem for partition '{}'",
            params.partition
        ),
        "mke2fs",
    )
    .args(["-q", "-F", "-t", "ext4", "-T", "default", "-b"])
    .arg(BLOCK_SIZE.to_string());
    if let Some(label) = &params.label {
        cmd = cmd.arg("-L").arg(label);
    }
    cmd.arg("-U")
        .arg(params.uuid.hyphenated().to_string())
        .arg("-E")
        .arg(format!(
            "hash_seed={},root_owner=0:0,assume_storage_prezeroed=1,nodiscard",
            params.hash_seed.hyphenated()
        ))
        .arg("-d")
        .arg(tar)
        .arg(image)
        // With -b, a bare number would count blocks; the suffix says KiB.
        .arg(format!("{}k", size / 1024))
        .env("MKE2FS_CONFIG", conf)
        .env("SOURCE_DATE_EPOCH", &epoch)
        .env("E2FSPROGS_FAKE_TIME", &epoch)
}

/// `mke2fs -V`, which prints the program and library versions on stderr.
pub fn mke2fs_version_cmd() -> Cmd {
    Cmd::new("checking the e2fsprogs version", "mke2fs").arg("-V")
}

/// The lower of the mke2fs and libext2fs versions in `mke2fs -V` output.
pub fn parse_e2fsprogs_version(text: &str) -> Option<(u32, u32, u32)> {
    let versions: Vec<(u32, u32, u32)> = text
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("mke2fs ")
                .or_else(|| line.strip_prefix("Using EXT2FS Library version "))?;
            let word = rest.split_whitespace().next()?;
            // Distribution suffixes such as "1.47.2-WIP" end the number.
            let mut parts = word.split('.').map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u32>()
                    .ok()
            });
            Some((
                parts.next()??,
                parts.next()??,
                parts.next().flatten().unwrap_or(0),
            ))
        })
        .collect();
    versions.into_iter().min()
}

/// `e2fsck -fyD`: turns the linear directories `mke2fs -d` writes into
/// hashed b-trees (libext2fs appends entries to plain directory blocks; the
/// kernel never indexes an existing multi-block directory itself, so a
/// 3000-entry /usr/lib/<triplet> would be scanned linearly on every lookup),
/// and checks everything else on the way. `E2FSCK_TIME` fixes the time it
/// writes to the superblock (e2fsck ignores SOURCE_DATE_EPOCH there);
/// `E2FSCK_CONFIG=/dev/null` keeps the host's /etc/e2fsck.conf out.
pub fn e2fsck_index_cmd(image: &Path, params: &Ext4Params) -> Cmd {
    let epoch = params.source_date_epoch.to_string();
    Cmd::new(
        format!("indexing directories of partition '{}'", params.partition),
        "e2fsck",
    )
    .args(["-f", "-y", "-D"])
    .arg(image)
    .env("E2FSCK_CONFIG", "/dev/null")
    .env("E2FSCK_TIME", &epoch)
    .env("SOURCE_DATE_EPOCH", &epoch)
}

/// `dumpe2fs -h`: the superblock summary [`read_report`] parses.
pub fn dumpe2fs_header_cmd(image: &Path) -> Cmd {
    Cmd::new("reading the ext4 superblock", "dumpe2fs")
        .arg("-h")
        .arg(image)
}

/// Build the ext4 image `image` (`size` bytes) from `tar`, then restore
/// `xattrs`. Scratch files go to a directory under `workdir` that is removed
/// afterwards. On error the image is left behind as evidence.
pub fn build_ext4(
    image: &Path,
    size: u64,
    tar: &Path,
    params: &Ext4Params,
    xattrs: &[XattrRecord],
    workdir: &Path,
) -> anyhow::Result<Ext4Report> {
    let started = Instant::now();
    check_params(params, size)?;
    for record in xattrs {
        xattrs::check_record(record)?;
    }
    check_e2fsprogs()?;

    let file =
        fs::File::open(tar).with_context(|| format!("opening rootfs tarball {}", tar.display()))?;
    let usage =
        measure_tar(file).with_context(|| format!("reading rootfs tarball {}", tar.display()))?;
    check_inodes(&usage, size, &params.partition)?;
    let needed = estimate_needed(&usage, size);
    check_fits(needed, size, &params.partition)?;

    let scratch = tempfile::Builder::new()
        .prefix("ext4-")
        .tempdir_in(workdir)
        .with_context(|| format!("creating a scratch directory in {}", workdir.display()))?;
    let conf = scratch.path().join("mke2fs.conf");
    fs::write(&conf, MKE2FS_CONF).with_context(|| format!("writing {}", conf.display()))?;

    create_zeroed_image(image, size)?;
    run_mke2fs(
        &resolve_sbin(mke2fs_cmd(params, &conf, tar, image, size)),
        params,
        size,
        needed,
    )?;
    xattrs::restore_xattrs(image, xattrs, params)?;
    // Only a directory of more than one block gets an index, so without one
    // the pass would change nothing that matters: skip it.
    if usage.needs_dir_index() {
        // Exit 0 even when it re-indexed (1.47.2); 1 would mean it had to
        // repair what mke2fs or libext2fs wrote, which we want to hear about.
        resolve_sbin(e2fsck_index_cmd(image, params)).run()?;
    }
    let mut report = read_report(image)?;
    scratch
        .close()
        .context("removing the ext4 scratch directory")?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// e2fsprogs lives in /usr/sbin, which is not on an ordinary user's PATH on
/// Debian: run it from there when PATH does not have it.
pub fn resolve_sbin(mut cmd: Cmd) -> Cmd {
    let program = PathBuf::from(&cmd.program);
    let on_path = |p: &Path| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    if program.components().count() == 1 && !on_path(&program) {
        if let Some(found) = ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(&program))
            .find(|p| p.is_file())
        {
            cmd.program = found.into_os_string();
        }
    }
    cmd
}

fn check_params(params: &Ext4Params, size: u64) -> Result<(), Ext4Error> {
    let partition = params.partition.clone();
    if size == 0 || !size.is_multiple_of(BLOCK_SIZE) {
        return Err(Ext4Error::UnalignedSize { partition, size });
    }
    if let Some(label) = &params.label {
        if label.len() > LABEL_MAX {
            return Err(Ext4Error::LabelTooLong {
                partition,
                label: label.clone(),
            });
        }
    }
    if params.source_date_epoch < 0 {
        return Err(Ext4Error::NegativeEpoch {
            partition,
            epoch: params.source_date_epoch,
        });
    }
    Ok(())
}

fn check_e2fsprogs() -> anyhow::Result<()> {
    let out = resolve_sbin(mke2fs_version_cmd()).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let found = parse_e2fsprogs_version(&text).ok_or_else(|| Ext4Error::UnknownVersion {
        output: text.trim().to_string(),
    })?;
    if found < MIN_E2FSPROGS {
        let found = format!("{}.{}.{}", found.0, found.1, found.2);
        return Err(Ext4Error::OldE2fsprogs { found }.into());
    }
    Ok(())
}

/// A fresh, sparse, all-zero file: what `assume_storage_prezeroed` promises.
fn create_zeroed_image(image: &Path, size: u64) -> anyhow::Result<()> {
    match fs::remove_file(image) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing old image {}", image.display()))
        }
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(image)
        .with_context(|| format!("creating image {}", image.display()))?;
    file.set_len(size)
        .with_context(|| format!("sizing image {} to {size} bytes", image.display()))
}

/// Runs mke2fs, turning its out-of-space failures into [`Ext4Error::OutOfSpace`].
fn run_mke2fs(cmd: &Cmd, params: &Ext4Params, size: u64, needed: u64) -> anyhow::Result<()> {
    let err = match cmd.run() {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    if let CmdError::Failed { stderr, .. } = &err {
        let full = [
            "Could not allocate block",
            "Could not allocate inode",
            "No space left",
        ];
        if let Some(line) = stderr.lines().find(|l| full.iter().any(|f| l.contains(f))) {
            let suggested = fit::suggest_size(needed.max(size + size / 4));
            return Err(Ext4Error::OutOfSpace {
                partition: params.partition.clone(),
                size,
                needed,
                suggested,
                detail: line.trim().to_string(),
            }
            .into());
        }
        if stderr.contains("libarchive") {
            return Err(anyhow::Error::new(err)
                .context("mke2fs reads tarballs through libarchive, loaded at run time: install libarchive13"));
        }
    }
    Err(err.into())
}

/// Used/free space and used inodes, from `dumpe2fs -h`.
pub fn read_report(image: &Path) -> anyhow::Result<Ext4Report> {
    let out = resolve_sbin(dumpe2fs_header_cmd(image)).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_report(&text)
        .with_context(|| format!("unexpected dumpe2fs -h output for {}", image.display()))
}

fn parse_report(text: &str) -> Option<Ext4Report> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
    };
    let block_size = field("Block size")?;
    let blocks = field("Block count")?;
    let free = field("Free blocks")?;
    let inodes = field("Inode count")?;
    let free_inodes = field("Free inodes")?;
    Some(Ext4Report {
        used_bytes: blocks.checked_sub(free)? * block_size,
        free_bytes: free * block_size,
        inodes: inodes.checked_sub(free_inodes)?,
        elapsed: Duration::ZERO,
    })
}
