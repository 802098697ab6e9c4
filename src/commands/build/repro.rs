//! `mkimg build --verify-repro`: the second build, run as a child process
//! of the same binary, and the verdict.
//!
//! The first build is the ordinary one and is published as usual. Then
//! `std::env::current_exe()` runs again (through the runner in `host::cmd`,
//! so a signal kills it and its process group and it dies with mkimg) with
//! the same arguments, rebuilt from the parsed [`BuildArgs`] (an exhaustive
//! destructuring: a new build option does not compile until it is passed
//! on), except:
//!
//! - `-o` a fresh directory inside a [`LockedDir`] of mkimg's own
//!   (`mkimg-work-PID-…` under `$MKIMG_WORKDIR`, else the system temp
//!   directory: not /dev/shm, as the second output and the raw copies are
//!   whole disks), removed on every way out, the start-up sweep's business
//!   if mkimg is SIGKILLed;
//! - `TMPDIR` and `MKIMG_WORKDIR` another fresh directory inside it, so the
//!   second build shares no temporary path with the first and leaves
//!   nothing outside it even when killed;
//! - `TZ` far from the first's (`UTC-14`, or `UTC+12` when the first
//!   already runs at UTC-14) and another umask (`0077`, or `0002` when the
//!   first already has 0077), which the child sets first thing from the
//!   hidden `--umask` (a child's umask cannot be set from outside without
//!   code between fork and exec, and this crate denies unsafe code);
//! - no `--verify-repro`, and not `--keep-workdir` (the second build's
//!   work directory would go with the scratch directory anyway).
//!
//! When no raw format was asked for, both builds also write the raw disk
//! into the scratch directory (`--repro-raw` for the child) for the
//! comparison; that costs one more sparse write of the disk's data per
//! build. Then `repro::compare_builds` says what differs.
//!
//! A rootfs that can be read only once (`--rootfs -`, a FIFO) is refused
//! before anything is built, rather than spooled to a temporary file:
//! spooling an unbounded stream behind the user's back is a surprise, and
//! writing it to a file first is one command for them. A directory rootfs
//! is read twice (a tree changed in between makes the builds differ, as it
//! should); the bootstrapped default rootfs comes from its cache both
//! times.
//!
//! Test hook: with `MKIMG_TEST_HOOKS=1` and `MKIMG_REPRO_TEST_PERTURB=PATH`
//! in the first build's environment, the second build gets the hidden
//! `--repro-perturb PATH`: one byte is appended to that rootfs file in its
//! rootfs pass (`rootfs::Edits::perturb`), a difference whose place the
//! tests know.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use crate::cli::{BoardOverrides, BuildArgs, GenimagePaths, ImageFormat};
use crate::host::cmd::{self, Cmd};
use crate::host::lockdir::LockedDir;
use crate::host::workdir::create_work_dir;
use crate::repro::{compare_builds, Builds};

/// The environment variable of the test hook (see the module doc).
pub const PERTURB_ENV: &str = "MKIMG_REPRO_TEST_PERTURB";

/// Refuse a rootfs that cannot be read twice, before anything is built.
pub(super) fn preflight(args: &BuildArgs) -> Result<()> {
    let Some(path) = &args.rootfs else {
        return Ok(());
    };
    if path.as_os_str() == "-" {
        bail!(
            "--verify-repro builds twice from the same rootfs, but --rootfs - (standard input) \
             can be read only once; write the tarball to a file and pass that"
        );
    }
    if fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        bail!(
            "--verify-repro builds twice from the same rootfs, but {} is a FIFO, which can be \
             read only once; write the tarball to a file and pass that",
            path.display()
        );
    }
    Ok(())
}

/// mkimg's scratch directory for the second build: its output, its
/// TMPDIR, the raw disks for the comparison. Removed when dropped.
pub(super) struct ReproDir {
    dir: LockedDir,
}

impl ReproDir {
    pub(super) fn create() -> Result<ReproDir> {
        let root = std::env::var_os("MKIMG_WORKDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = create_work_dir(&root).with_context(|| {
            format!(
                "creating the --verify-repro directory in {}",
                root.display()
            )
        })?;
        fs::create_dir(dir.path().join("tmp"))
            .with_context(|| format!("creating {}/tmp", dir.path().display()))?;
        Ok(ReproDir { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Where the first build writes its raw disk for the comparison.
    pub(super) fn first_raw(&self) -> PathBuf {
        self.path("first.raw")
    }
}

/// Run the second build, compare, report. `published` is the first
/// build's output directory; `image` the image's file stem.
pub(super) fn verify(
    args: &BuildArgs,
    plan: &crate::plan::Plan,
    repro: &ReproDir,
    published: &Path,
    step: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let image = plan.board.image.to_string();
    let has_raw = args.format.contains(&ImageFormat::Raw);
    let out = repro.path("out");
    let tmp = repro.path("tmp");
    let second_raw = repro.path("second.raw");
    let perturb = (std::env::var_os("MKIMG_TEST_HOOKS").is_some_and(|v| v == "1"))
        .then(|| std::env::var(PERTURB_ENV).ok())
        .flatten();
    let umask = other_umask(current_umask());
    let mut argv = second_build_argv(args, &out, cmd::verbose());
    argv.push(format!("--umask={umask:04o}").into());
    if !has_raw {
        argv.push(prefixed("--repro-raw=", second_raw.as_os_str()));
    }
    if let Some(path) = &perturb {
        argv.push(format!("--repro-perturb={path}").into());
        step(&format!(
            "test hook: the second build appends a byte to {path}"
        ));
    }
    let tz = other_timezone(std::env::var_os("TZ").as_deref());
    step(&format!(
        "second build (--verify-repro): TZ={tz}, umask {umask:04o}, TMPDIR={}",
        tmp.display()
    ));
    let exe = std::env::current_exe().context("finding mkimg's own executable")?;
    let result = Cmd::new("the second build of --verify-repro", exe)
        .args(&argv)
        .env("TMPDIR", &tmp)
        .env("MKIMG_WORKDIR", &tmp)
        .env("TZ", tz)
        .run_with_stderr_lines(|line| {
            let line = line.strip_prefix("mkimg: ").unwrap_or(line);
            eprintln!("mkimg: second build: {line}");
        });
    if let Err(err) = result {
        eprintln!(
            "mkimg: the second build did not finish; the first build stays published in {}",
            published.display()
        );
        return Err(err.into());
    }

    // debugfs reads DISK?offset=…: the disks must have paths without '?'.
    let (first_disk, second_disk) = if has_raw {
        let link = repro.path("first.raw");
        let target = fs::canonicalize(published.join(format!("{image}.raw")))
            .with_context(|| format!("finding {image}.raw in {}", published.display()))?;
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("linking {}", link.display()))?;
        (link, out.join(format!("{image}.raw")))
    } else {
        (repro.first_raw(), second_raw)
    };
    let disk_files: Vec<String> = args
        .format
        .iter()
        .map(|&f| format!("{image}.{}", super::format_suffix(f)))
        .collect();
    let builds = Builds {
        dirs: [published, &out],
        disks: [&first_disk, &second_disk],
        disk_files: &disk_files,
    };
    let comparison = compare_builds(plan, &builds).context("comparing the two builds")?;
    if comparison.differing.is_empty() {
        step(&format!(
            "reproducible: {} files identical",
            comparison.files
        ));
        return Ok(());
    }
    eprintln!(
        "mkimg: not reproducible: {} of {} files differ between the two builds:",
        comparison.differing.len(),
        comparison.files
    );
    for line in &comparison.report {
        eprintln!("  {line}");
    }
    bail!(
        "the two builds differ (see above); the first build stays published in {}",
        published.display()
    )
}

/// `build` with `args`' options as the user gave them, `-o out`, and `-v`
/// when `verbose`; none of the --verify-repro flags.
fn second_build_argv(args: &BuildArgs, out: &Path, verbose: bool) -> Vec<OsString> {
    // Exhaustive: a new option must be decided on here.
    let BuildArgs {
        board,
        genimage: _,
        paths,
        rootfs,
        owner,
        output: _,
        format,
        compress,
        overrides,
        mkconfig_via,
        seed,
        keep_workdir: _,
        verify_repro: _,
        umask: _,
        repro_raw: _,
        repro_perturb: _,
    } = args;
    // --genimage conflicts with --verify-repro, and these require it.
    let GenimagePaths {
        includepath: _,
        inputpath: _,
        rootpath: _,
        outputpath: _,
        tmppath: _,
    } = paths;
    let BoardOverrides {
        grub,
        bootloader,
        blobs,
    } = overrides;
    let mut argv: Vec<OsString> = Vec::new();
    if verbose {
        argv.push("-v".into());
    }
    argv.push("build".into());
    if let Some(board) = board {
        argv.push(format!("--board={board}").into());
    }
    if let Some(rootfs) = rootfs {
        argv.push(prefixed("--rootfs=", rootfs.as_os_str()));
    }
    argv.push(format!("--owner={}", value_name(owner)).into());
    argv.push(prefixed("--output=", out.as_os_str()));
    let formats: Vec<String> = format.iter().map(value_name).collect();
    argv.push(format!("--format={}", formats.join(",")).into());
    argv.push(format!("--compress={}", value_name(compress)).into());
    if let Some(grub) = grub {
        argv.push(format!("--grub={}", value_name(grub)).into());
    }
    if let Some(loader) = bootloader {
        argv.push(format!("--bootloader={}", value_name(loader)).into());
    }
    for blob in blobs {
        let mut arg = OsString::from(format!("--blob={}=", blob.name));
        arg.push(&blob.path);
        argv.push(arg);
    }
    argv.push(format!("--mkconfig-via={}", value_name(mkconfig_via)).into());
    argv.push(format!("--seed={seed}").into());
    argv
}

fn prefixed(flag: &str, value: &OsStr) -> OsString {
    let mut arg = OsString::from(flag);
    arg.push(value);
    arg
}

/// The command-line spelling of a value of a clap value enum.
fn value_name<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// A time zone far from `current` (the first build's `TZ`).
fn other_timezone(current: Option<&OsStr>) -> &'static str {
    let far_east = current.is_some_and(|tz| {
        let tz = tz.to_string_lossy();
        tz == "UTC-14" || tz.contains("Kiritimati")
    });
    if far_east {
        "UTC+12"
    } else {
        "UTC-14"
    }
}

/// A umask unlike `current`.
fn other_umask(current: u32) -> u32 {
    if current == 0o077 {
        0o002
    } else {
        0o077
    }
}

/// This process's umask (set and set back: there is no reading it alone;
/// called with no other thread of mkimg running).
fn current_umask() -> u32 {
    use rustix::fs::Mode;
    let old = rustix::process::umask(Mode::from_bits_truncate(0o022));
    rustix::process::umask(old);
    old.bits()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use clap::Parser;

    use super::{other_timezone, other_umask, second_build_argv};
    use crate::cli::{BuildArgs, Cli, Command};

    fn parse(argv: &[OsString]) -> BuildArgs {
        let cli = Cli::try_parse_from(
            std::iter::once(OsString::from("mkimg")).chain(argv.iter().cloned()),
        )
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match cli.command {
            Some(Command::Build(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    /// Every option the user gave reaches the second build with the same
    /// meaning; -o is replaced and the --verify-repro flags are dropped.
    #[test]
    fn the_second_build_gets_the_same_options_but_output() {
        let given: Vec<OsString> = [
            "build",
            "--board=-odd/board.toml",
            "--rootfs",
            "root fs.tar",
            "--owner",
            "keep",
            "-o",
            "first",
            "--format",
            "raw.zst,qcow2,simg",
            "--compress",
            "zstd",
            "--grub",
            "mkconfig",
            "--bootloader",
            "grub",
            "--mkconfig-via",
            "mount",
            "--blob",
            "spl=a=b.bin",
            "--blob",
            "env=env.img",
            "--seed",
            "s 1",
            "--keep-workdir",
            "--verify-repro",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let first = parse(&given);
        let argv = second_build_argv(&first, Path::new("/tmp/x/out"), true);
        assert_eq!(argv[0], "-v");
        let second = parse(&argv);
        assert_eq!(second.output.as_deref(), Some(Path::new("/tmp/x/out")));
        assert!(!second.verify_repro && !second.keep_workdir);
        let same = |a: &BuildArgs| {
            let mut a = a.clone();
            a.output = None;
            a.verify_repro = false;
            a.keep_workdir = false;
            format!("{a:?}")
        };
        assert_eq!(same(&first), same(&second));
    }

    #[test]
    fn time_zone_and_umask_differ_from_the_first_build() {
        assert_eq!(other_timezone(None), "UTC-14");
        assert_eq!(other_timezone(Some("Europe/Berlin".as_ref())), "UTC-14");
        assert_eq!(other_timezone(Some("UTC-14".as_ref())), "UTC+12");
        assert_eq!(
            other_timezone(Some("Pacific/Kiritimati".as_ref())),
            "UTC+12"
        );
        assert_eq!(other_umask(0o022), 0o077);
        assert_eq!(other_umask(0o077), 0o002);
    }
}
