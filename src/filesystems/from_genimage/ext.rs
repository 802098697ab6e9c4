//! `ext2`/`ext3`/`ext4` images, always made by `mke2fs -d` from a tar of
//! the image's tree (streamed through the rootfs pass), then `e2fsck -fyD`
//! as genimage does (`-pvfD` there).
//!
//! genimage 16 has two ways, and mkimg reproduces the filesystem of each
//! with mke2fs (genext2fs is not needed, and one tool is one set of bugs):
//! - `use-mke2fs = false` (genimage 16's default): `genext2fs -d ROOT
//!   -i 16384` (1 KiB blocks, 128-byte inodes, 5% reserved, no features),
//!   then `tune2fs -O FEATURES` and `tune2fs -L LABEL`; FEATURES defaults to
//!   `has_journal` for ext3 and `extents,uninit_bg,dir_index,has_journal`
//!   for ext4. mkimg: `mke2fs -t ext2 -T default -O none -b 1024 -I 128
//!   -i 16384 -m 5 -O FEATURES -L LABEL`, with a mke2fs.conf that records
//!   no default mount options (genext2fs records none). Same feature line,
//!   geometry and tree (checked against genimage 16 with dumpe2fs and
//!   debugfs). genext2fs keeps no xattrs, so none are restored.
//! - `use-mke2fs = true`: `mke2fs -t TYPE [-T USAGE] -I 256 -E
//!   root_owner=…,lazy_itable_init=0,lazy_journal_init=0 [-O ^large_file
//!   below 4 GiB] [-O ^huge_file below 2 TiB] -d ROOT EXTRAARGS -L LABEL
//!   -O FEATURES` with the host's /etc/mke2fs.conf. mkimg passes the same
//!   options, but with e2fsprogs' default mke2fs.conf
//!   (templates/genimage-mke2fs.conf) or the config's `mke2fs-conf`, never
//!   the host's, so the result does not depend on the build machine.
//!   Xattrs mke2fs's tar reader drops are restored through libext2fs
//!   (`filesystems::ext4`).
//!
//! Reproducible where genimage is not: the UUID (`-U`, unless extraargs
//! give one) and the directory hash seed are derived from the seed and the
//! image name; mke2fs and e2fsck get their clock from `fs-timestamp` when
//! set, else SOURCE_DATE_EPOCH (genimage sets mkfs_time, lastcheck and
//! the write time to `fs-timestamp` afterwards with debugfs and mtime to 0;
//! mkimg's mke2fs writes the same values directly, and no debugfs script
//! is ever made from the config).
//!
//! Checked before mke2fs runs: every feature name (from `features` and
//! extraargs `-O`) is one e2fsprogs knows and may be set on a new
//! filesystem image ([`KNOWN_FEATURES`]); `mke2fs-conf` is a regular file
//! inside the input path; `mke2fs-conf` and `usage-type` need
//! `use-mke2fs = true`, as in genimage. A tree larger than the image stops
//! the pass at the first entry past the size; one that passes that bound
//! but still does not fit fails in mke2fs, reported with the image, its
//! line and what the tree holds.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use uuid::Uuid;

use super::content::{size_limit, stream_image_tree};
use super::inputs::{resolve_contained, Input};
use super::{identities, locate, required_size, FsEnv};
use crate::filesystems::ext4::{
    mke2fs_version_cmd, parse_e2fsprogs_version, resolve_sbin, restore_xattrs, Ext4Params,
};
use crate::genimage::model::{Ext, ExtKind};
use crate::genimage::values::Mke2fsArg;
use crate::genimage::Image;
use crate::host::cmd::{Cmd, CmdError};
use crate::rootfs::{OutputStats, SortedTarSink, XattrRecord};
use crate::templates::{GENEXT2FS_MKE2FS_CONF, GENIMAGE_MKE2FS_CONF};

/// Feature names mke2fs takes with -O for a new filesystem image
/// (e2fsprogs 1.47's list, aliases included). Left out on purpose:
/// `journal_dev` (makes an external journal device, not a filesystem),
/// `needs_recovery`, `orphan_present` and `snapshot_bitmap` (state flags,
/// not features one asks for), `replica`, `compression` (never
/// implemented).
pub const KNOWN_FEATURES: [&str; 39] = [
    "none",
    "64bit",
    "bigalloc",
    "casefold",
    "dir_index",
    "dir_nlink",
    "dir_prealloc",
    "ea_inode",
    "encrypt",
    "ext_attr",
    "extent",
    "extents",
    "extra_isize",
    "fast_commit",
    "filetype",
    "flex_bg",
    "fname_encoding",
    "gdt_csum",
    "has_journal",
    "huge_file",
    "imagic_inodes",
    "inline_data",
    "large_dir",
    "large_file",
    "lazy_bg",
    "meta_bg",
    "metadata_csum",
    "metadata_csum_seed",
    "mmp",
    "orphan_file",
    "project",
    "quota",
    "read-only",
    "resize_inode",
    "shared_blocks",
    "sparse_super",
    "sparse_super2",
    "stable_inodes",
    "uninit_bg",
];

/// The features genimage gives a genext2fs-made image without `features`.
fn genext2fs_default_features(kind: ExtKind) -> Option<&'static str> {
    match kind {
        ExtKind::Ext2 => None,
        ExtKind::Ext3 => Some("has_journal"),
        ExtKind::Ext4 => Some("extents,uninit_bg,dir_index,has_journal"),
    }
}

fn type_name(kind: ExtKind) -> &'static str {
    match kind {
        ExtKind::Ext2 => "ext2",
        ExtKind::Ext3 => "ext3",
        ExtKind::Ext4 => "ext4",
    }
}

/// Checks a `-O` list against [`KNOWN_FEATURES`] (a leading `^` clears
/// one).
pub fn check_features(list: &str) -> Result<(), String> {
    for f in list.split(',').map(str::trim) {
        let name = f.strip_prefix('^').unwrap_or(f);
        if !KNOWN_FEATURES.contains(&name) {
            return Err(format!(
                "'{name}' is not an ext2/3/4 feature mke2fs sets on a new filesystem (known: {})",
                KNOWN_FEATURES[1..].join(", ")
            ));
        }
    }
    Ok(())
}

/// `fs-timestamp` as Unix seconds: `@SECONDS`, or `YYYYMMDD[HHMM[SS]]` in
/// UTC, as debugfs's `set_current_time` reads it.
pub fn parse_fs_timestamp(text: &str) -> Option<i64> {
    if let Some(secs) = text.strip_prefix('@') {
        return secs.parse().ok();
    }
    if !text.chars().all(|c| c.is_ascii_digit()) || !matches!(text.len(), 8 | 12 | 14) {
        return None;
    }
    let num = |a: usize, b: usize| text.get(a..b).and_then(|s| s.parse::<i64>().ok());
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = match text.len() {
        8 => (0, 0, 0),
        12 => (num(8, 10)?, num(10, 12)?, 0),
        _ => (num(8, 10)?, num(10, 12)?, num(12, 14)?),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What mke2fs is told, apart from the content, the conf and the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtSpec {
    /// Options, in genimage's order.
    pub options: Vec<String>,
    /// The clock for mke2fs and e2fsck (Unix seconds).
    pub clock: i64,
    /// `use-mke2fs = false`: genext2fs's filesystem.
    pub genext2fs: bool,
}

/// The mke2fs options for `image` (pure: reads no file).
pub fn ext_spec(
    image: &Image,
    e: &Ext,
    size: u64,
    uuid: Uuid,
    hash_seed: Uuid,
    epoch: i64,
) -> Result<ExtSpec> {
    let at = |l: &crate::genimage::parse::Origin| l.to_string();
    let features = e.features.as_ref().filter(|f| !f.value.trim().is_empty());
    if let Some(f) = features {
        check_features(&f.value)
            .map_err(|why| anyhow::anyhow!("{}: features: {why}", at(&f.at)))?;
    }
    for arg in &e.extraargs {
        if let Mke2fsArg::Features(list) = arg {
            check_features(list)
                .map_err(|why| anyhow::anyhow!("{}: extraargs -O: {why}", at(&image.file.at)))?;
        }
    }
    let clock = match &e.fs_timestamp {
        Some(ts) => parse_fs_timestamp(&ts.value)
            .with_context(|| format!("{}: fs-timestamp '{}': not a time", ts.at, ts.value))?,
        None => epoch,
    };
    if clock < 0 {
        bail!(
            "{}: the filesystem clock {clock} is before 1970",
            locate(image)
        );
    }
    let label = e.label.as_ref().filter(|l| !l.value.is_empty());
    let opts = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let mut o = opts(&["-q", "-F"]);
    let ext_opts = |owner: (u32, u32)| {
        format!(
            "root_owner={}:{},lazy_itable_init=0,lazy_journal_init=0,assume_storage_prezeroed=1,nodiscard,hash_seed={}",
            owner.0,
            owner.1,
            hash_seed.hyphenated()
        )
    };
    if !e.use_mke2fs {
        for (what, l) in [
            ("mke2fs-conf", &e.mke2fs_conf),
            ("usage-type", &e.usage_type),
        ] {
            if let Some(l) = l {
                bail!(
                    "{}: {what} is only used with use-mke2fs = true (genimage refuses it too)",
                    l.at
                );
            }
        }
        o.extend(opts(&[
            "-t", "ext2", "-T", "default", "-O", "none", "-b", "1024", "-I", "128", "-i", "16384",
            "-m", "5", "-E",
        ]));
        o.push(ext_opts((0, 0)));
        o.push("-U".into());
        o.push(uuid.hyphenated().to_string());
        let list = features
            .map(|f| f.value.clone())
            .or_else(|| genext2fs_default_features(e.kind).map(str::to_owned));
        if let Some(list) = list {
            o.push("-O".into());
            o.push(list);
        }
        if let Some(l) = label {
            o.push("-L".into());
            o.push(l.value.clone());
        }
        return Ok(ExtSpec {
            options: o,
            clock,
            genext2fs: true,
        });
    }
    o.push("-t".into());
    o.push(type_name(e.kind).into());
    if let Some(u) = &e.usage_type {
        o.push("-T".into());
        o.push(u.value.clone());
    }
    o.extend(opts(&["-I", "256", "-E"]));
    o.push(ext_opts(e.root_owner.as_ref().map_or((0, 0), |l| l.value)));
    if size < 4 << 30 {
        o.extend(opts(&["-O", "^large_file"]));
    }
    if size < 2 << 40 {
        o.extend(opts(&["-O", "^huge_file"]));
    }
    if !e.extraargs.iter().any(|a| matches!(a, Mke2fsArg::Uuid(_))) {
        o.push("-U".into());
        o.push(uuid.hyphenated().to_string());
    }
    for arg in &e.extraargs {
        let (flag, value) = match arg {
            Mke2fsArg::Features(v) => ("-O", v.clone()),
            Mke2fsArg::Label(v) => ("-L", v.clone()),
            Mke2fsArg::BlockSize(n) => ("-b", n.to_string()),
            Mke2fsArg::InodeSize(n) => ("-I", n.to_string()),
            Mke2fsArg::BytesPerInode(n) => ("-i", n.to_string()),
            Mke2fsArg::Inodes(n) => ("-N", n.to_string()),
            Mke2fsArg::ReservedPercent(n) => ("-m", n.to_string()),
            Mke2fsArg::UsageType(v) => ("-T", v.clone()),
            Mke2fsArg::Uuid(u) => ("-U", u.hyphenated().to_string()),
        };
        o.push(flag.into());
        o.push(value);
    }
    if let Some(l) = label {
        o.push("-L".into());
        o.push(l.value.clone());
    }
    if let Some(f) = features {
        o.push("-O".into());
        o.push(f.value.clone());
    }
    Ok(ExtSpec {
        options: o,
        clock,
        genext2fs: false,
    })
}

/// `mke2fs OPTIONS [-d TAR] OUT SIZEk` (pure: runs nothing).
pub fn mke2fs_cmd(
    image: &Image,
    spec: &ExtSpec,
    conf: &Path,
    tar: Option<&Path>,
    out: &Path,
    size: u64,
) -> Cmd {
    let clock = spec.clock.to_string();
    let mut cmd = Cmd::new(
        format!("creating the filesystem of {}", locate(image)),
        "mke2fs",
    )
    .args(&spec.options);
    if let Some(tar) = tar {
        cmd = cmd.arg("-d").arg(tar);
    }
    cmd.arg(out)
        .arg(format!("{}k", size / 1024))
        .env("MKE2FS_CONFIG", conf)
        .env("SOURCE_DATE_EPOCH", &clock)
        .env("E2FSPROGS_FAKE_TIME", &clock)
}

/// `e2fsck -fyD`: what genimage's `e2fsck -pvfD` does, with a fixed clock
/// and without the host's e2fsck.conf.
pub fn e2fsck_cmd(image: &Image, out: &Path, clock: i64) -> Cmd {
    let clock = clock.to_string();
    Cmd::new(
        format!("checking and indexing the filesystem of {}", locate(image)),
        "e2fsck",
    )
    .args(["-f", "-y", "-D"])
    .arg(out)
    .env("E2FSCK_CONFIG", "/dev/null")
    .env("E2FSCK_TIME", &clock)
    .env("SOURCE_DATE_EPOCH", &clock)
}

pub fn build(image: &Image, e: &Ext, env: &FsEnv<'_>, out: &Path) -> Result<()> {
    let size = required_size(image)?;
    let ids = identities(env);
    let uuid = ids.uuid(&format!("ext-uuid:{}", image.file.value));
    let hash_seed = ids.uuid(&format!("ext-hash-seed:{}", image.file.value));
    let spec = ext_spec(image, e, size, uuid, hash_seed, env.source_date_epoch)?;
    check_e2fsprogs()?;
    let scratch = tempfile::Builder::new()
        .prefix("ext-")
        .tempdir_in(env.tmppath)
        .with_context(|| format!("creating a scratch directory in {}", env.tmppath.display()))?;
    let conf = mke2fs_conf(e, env, scratch.path(), spec.genext2fs)?;
    let content = if image.empty {
        None
    } else {
        Some(write_tar(image, env, size, scratch.path())?)
    };
    {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .with_context(|| format!("creating {}", out.display()))?;
        file.set_len(size)
            .with_context(|| format!("sizing {} to {size} bytes", out.display()))?;
    }
    let tar = content.as_ref().map(|(p, _, _)| p.as_path());
    let cmd = resolve_sbin(mke2fs_cmd(image, &spec, &conf, tar, out, size));
    if let Err(err) = cmd.run() {
        return Err(explain_mke2fs(
            image,
            size,
            err,
            content.as_ref().map(|c| &c.1),
        ));
    }
    if let Some((_, _, xattrs)) = &content {
        if !spec.genext2fs && !xattrs.is_empty() {
            let params = Ext4Params {
                partition: locate(image),
                label: e.label.as_ref().map(|l| l.value.clone()),
                uuid,
                hash_seed,
                source_date_epoch: spec.clock,
            };
            restore_xattrs(out, xattrs, &params)?;
        }
    }
    match resolve_sbin(e2fsck_cmd(image, out, spec.clock)).run() {
        // 1: it changed something (re-indexed a directory): genimage accepts it too.
        Err(CmdError::Failed { status, .. }) if status == "exited with 1" => {}
        other => other?,
    }
    scratch
        .close()
        .context("removing the ext scratch directory")?;
    Ok(())
}

/// The mke2fs.conf mke2fs reads: the config's (inside the input path) or
/// one of mkimg's, written into `scratch`.
fn mke2fs_conf(e: &Ext, env: &FsEnv<'_>, scratch: &Path, genext2fs: bool) -> Result<PathBuf> {
    if let Some(name) = &e.mke2fs_conf {
        let found = resolve_contained(&name.value, env.inputpath)
            .with_context(|| format!("{}: mke2fs-conf '{}'", name.at, name.value))?;
        let Input::File(path) = found else {
            bail!(
                "{}: mke2fs-conf '{}' is not a regular file",
                name.at,
                name.value
            );
        };
        let len = fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len > 1 << 20 {
            bail!(
                "{}: mke2fs-conf '{}' is {len} bytes; a mke2fs.conf of more than 1 MiB is refused",
                name.at,
                name.value
            );
        }
        return Ok(path);
    }
    let path = scratch.join("mke2fs.conf");
    let text = if genext2fs {
        GENEXT2FS_MKE2FS_CONF
    } else {
        GENIMAGE_MKE2FS_CONF
    };
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The image's tree as a tar in `scratch`, with its statistics and xattrs.
fn write_tar(
    image: &Image,
    env: &FsEnv<'_>,
    size: u64,
    scratch: &Path,
) -> Result<(PathBuf, OutputStats, Vec<XattrRecord>)> {
    let path = scratch.join("content.tar");
    let spool_path = scratch.join("content.spool");
    let spool = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&spool_path)
        .with_context(|| format!("creating {}", spool_path.display()))?;
    // Canonical member order (a rootpath tarball in any order gives the
    // same image as its directory): rootfs::SortedTarSink.
    let mut sink = SortedTarSink::new(spool, spool_path, path);
    let stats = stream_image_tree(image, env, &mut sink, size_limit(image, size))
        .with_context(|| format!("{}: collecting its content", locate(image)))?;
    let (path, xattrs) = sink
        .write_tar()
        .with_context(|| format!("{}: writing its content tar", locate(image)))?;
    Ok((path, stats, xattrs))
}

/// A mke2fs failure; out of space becomes "grow the size".
fn explain_mke2fs(
    image: &Image,
    size: u64,
    err: CmdError,
    stats: Option<&OutputStats>,
) -> anyhow::Error {
    if let CmdError::Failed { stderr, .. } = &err {
        let full = [
            "Could not allocate block",
            "Could not allocate inode",
            "No space left",
            "Not enough space",
        ];
        if let Some(line) = stderr.lines().find(|l| full.iter().any(|f| l.contains(f))) {
            let held = stats.map_or_else(String::new, |s| {
                format!(
                    " (its tree: {} entries, {} bytes of file data)",
                    s.entries, s.file_bytes
                )
            });
            let at = image
                .size
                .as_ref()
                .map_or_else(|| image.file.at.to_string(), |s| s.at.to_string());
            return anyhow::anyhow!(
                "{at}: image '{}': the content does not fit in size {size} bytes{held}: mke2fs says \"{}\"; grow size",
                image.file.value,
                line.trim()
            );
        }
    }
    anyhow::Error::new(err)
}

/// e2fsprogs >= 1.47.1: the first to take its clock from SOURCE_DATE_EPOCH.
fn check_e2fsprogs() -> Result<()> {
    let out = resolve_sbin(mke2fs_version_cmd()).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    match parse_e2fsprogs_version(&text) {
        Some(v) if v >= (1, 47, 1) => Ok(()),
        Some((a, b, c)) => bail!(
            "e2fsprogs {a}.{b}.{c} is too old: reproducible ext images need >= 1.47.1 (Debian 12: bookworm-backports)"
        ),
        None => bail!("cannot tell the e2fsprogs version from `mke2fs -V`: {text:?}"),
    }
}
