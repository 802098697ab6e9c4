//! `mkimg build`: the chain of stages, one call each.
//!
//! board → plan → rootfs (one pass over the tarball) → filesystems but vfat
//! → boot files (grub.cfg: template, or grub-mkconfig over the finished root
//! filesystem) → vfat → disk (tables + blobs + images,
//! streamed once into qcow2/raw) → outputs (firmware, start_vm.sh,
//! manifest.json) → atomic publish. Nothing outside the staging and work
//! directories is written; a failure publishes nothing.
//!
//! Before any of it: SIGINT/SIGTERM/SIGHUP become a flag the stages check
//! (`host::interrupt`), `-o` is checked to be something mkimg may replace,
//! and work and staging directories left by builds that died are swept
//! (`host::lockdir`: only those whose owner's lock is free).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, IsTerminal};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::board::schema::{BootLoader, GrubMode};
use crate::board::{load_board, BoardSearch, BootOverride};
use crate::bootloader::esp::{efi_files, esp_partition, grub_cfg_file};
use crate::bootloader::mkconfig;
use crate::bootloader::place::place_extlinux;
use crate::bootstrap::{bootstrap, default_cache_dir, BootstrapOptions, ProgressStyle};
use crate::cli::{BuildArgs, Compress, ImageFormat};
use crate::context::BuildContext;
use crate::disk::blobs::{check_blob_files, load_blobs};
use crate::disk::qcow2::{Compression, Qcow2Options};
use crate::disk::write::{write_disk, DiskOutput};
use crate::filesystems::images::{build_image_group, sort_by_layout, ImageGroup, PartitionImage};
use crate::filesystems::vfat::VfatEntry;
use crate::host::interrupt;
use crate::host::lockdir::{sweep, LockedDir};
use crate::outputs::firmware::copy_firmware;
use crate::outputs::manifest::{manifest_from_plan, render_manifest, OutputFile, RootfsInput};
use crate::outputs::publish::{check_output_dir, sweep_stale_staging, Staging};
use crate::outputs::start_vm::{render_start_vm, start_vm_from_plan, ImageFormat as VmFormat};
use crate::plan::{plan_board, Plan};
use crate::rootfs::ingest::{hex, ingest_rootfs, RootfsSource};

pub fn run(args: &BuildArgs) -> Result<()> {
    let started = Instant::now();
    let step = |text: &str| eprintln!("mkimg: [{:6.1}s] {text}", started.elapsed().as_secs_f64());
    interrupt::install().context("catching SIGINT, SIGTERM and SIGHUP")?;
    let board_spec = args.board.as_deref().context("--board is required")?;
    let ctx = BuildContext::from_env(&args.seed)?;
    let mut board = load_board(board_spec, &BoardSearch::from_env())?;
    board.override_sources(&args.blobs)?;
    board.cli_boot = BootOverride {
        loader: args.bootloader,
        grub: args.grub,
    };
    let plan = plan_board(&board, &ctx.seed)
        .with_context(|| format!("planning board {}", board.path.display()))?;
    for warning in &plan.warnings {
        eprintln!("mkimg: warning: {warning}");
    }
    check_blob_files(&plan)?;
    if plan.boot.loader == BootLoader::Grub && plan.boot.grub == GrubMode::Mkconfig {
        mkconfig::preflight(&plan)?;
    }
    let output_dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("output").join(&plan.board.name));
    check_output_dir(&output_dir)?;
    sweep_leftovers(&output_dir);
    let rootfs = resolve_rootfs(args, &board.file.rootfs, &plan, &ctx)?;

    let root = work_root(&plan, &rootfs, plan.boot.grub == GrubMode::Mkconfig);
    let work = LockedDir::create_unique(&root, WORK_PREFIX)
        .with_context(|| format!("creating the work directory in {}", root.display()))?;
    let result = build_in(&plan, &rootfs, &ctx, args, work.path(), &output_dir, &step);
    if args.keep_workdir {
        let kept = work.keep().context("marking the work directory kept")?;
        eprintln!("mkimg: work directory kept at {}", kept.display());
    }
    let published = result?;
    step(&format!("published {}", published.display()));
    Ok(())
}

fn build_in(
    plan: &Plan,
    rootfs: &RootfsSource,
    ctx: &BuildContext,
    args: &BuildArgs,
    workdir: &Path,
    output_dir: &Path,
    step: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf> {
    // rootfs: one pass, split by mount point.
    let contents = ingest_rootfs(plan, rootfs, ctx.source_date_epoch, workdir)?;
    step(&format!("rootfs {rootfs}: {}", contents.summary));

    // extlinux.conf first: on an ext4 /boot it is appended to that
    // partition's tar, which must happen before the ext4 image is made.
    let mut extra = BTreeMap::new();
    if plan.boot.loader == BootLoader::Extlinux {
        let placed = place_extlinux(plan, &contents, ctx.source_date_epoch, &mut extra)?;
        step(&format!("extlinux.conf on {placed}"));
    }

    // Filesystems but vfat: the root filesystem is finished before grub.cfg
    // is made from it (--grub mkconfig).
    interrupt::check()?;
    let mut progress = |text: &str| step(text);
    let no_extra = BTreeMap::new();
    let epoch = ctx.source_date_epoch;
    let mut images = build_image_group(
        plan,
        &contents,
        &no_extra,
        epoch,
        workdir,
        ImageGroup::NotVfat,
        &mut progress,
    )?;

    // Boot files for the ESP.
    if let Some(esp) = esp_partition(plan) {
        let mut files = efi_files(plan, &contents.captures)?;
        if plan.boot.loader == BootLoader::Grub {
            files.push(match plan.boot.grub {
                GrubMode::Template => grub_cfg_file(plan, &contents.captures)?,
                GrubMode::Mkconfig => mkconfig_grub_cfg(plan, &images, workdir, step)?,
            });
        }
        extra
            .entry(esp.name.clone())
            .or_insert_with(Vec::new)
            .extend(files);
    }
    let blobs = load_blobs(plan, &contents.captures)?;

    // vfat, with the boot files.
    interrupt::check()?;
    let vfat = build_image_group(
        plan,
        &contents,
        &extra,
        epoch,
        workdir,
        ImageGroup::Vfat,
        &mut progress,
    )?;
    images.extend(vfat);
    sort_by_layout(plan, &mut images);

    // Disk, straight into the staging directory.
    interrupt::check()?;
    let staging = Staging::create(output_dir)?;
    let image = &plan.board.image;
    let qcow2_opts = Qcow2Options {
        compression: match args.compress {
            Compress::None => Compression::None,
            Compress::Zlib => Compression::Zlib,
            Compress::Zstd => Compression::Zstd,
        },
        ..Qcow2Options::default()
    };
    let raw_path = staging.path().join(format!("{image}.raw"));
    let qcow2_path = staging.path().join(format!("{image}.qcow2"));
    let mut outputs = Vec::new();
    if args.format.contains(&ImageFormat::Raw) {
        outputs.push(DiskOutput::Raw(&raw_path));
    }
    if args.format.contains(&ImageFormat::Qcow2) {
        outputs.push(DiskOutput::Qcow2(&qcow2_path, qcow2_opts));
    }
    if outputs.is_empty() {
        bail!("--format names no image format; use qcow2, raw or raw,qcow2");
    }
    let (assembly, sinks) = write_disk(plan, &blobs, &images, &outputs)?;
    for sink in &sinks {
        step(&format!(
            "wrote {} ({} MiB written, {} MiB data streamed)",
            sink.path.file_name().unwrap_or_default().to_string_lossy(),
            sink.bytes_written >> 20,
            assembly.data_bytes >> 20
        ));
    }

    // Firmware, start_vm.sh, manifest.json.
    if let Some(firmware) = &plan.firmware {
        copy_firmware(firmware, staging.path())?;
    }
    if plan.qemu.is_some() && plan.firmware.is_some() {
        let format = if args.format.contains(&ImageFormat::Qcow2) {
            VmFormat::Qcow2
        } else {
            VmFormat::Raw
        };
        let script = render_start_vm(&start_vm_from_plan(plan, format)?)?;
        let path = staging.path().join("start_vm.sh");
        fs::write(&path, script)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    let mut files = Vec::new();
    let mut names: Vec<_> = fs::read_dir(staging.path())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let path = staging.path().join(&name);
        files.push(OutputFile {
            file: name.to_string_lossy().into_owned(),
            size: fs::metadata(&path)?.len(),
            sha256: sha256_file(&path)?,
        });
    }
    let rootfs_name = rootfs.manifest_name();
    let manifest = manifest_from_plan(
        plan,
        u64::try_from(ctx.source_date_epoch).unwrap_or(0),
        files,
        RootfsInput {
            file: rootfs_name,
            sha256: contents.sha256.clone(),
        },
    );
    fs::write(
        staging.path().join("manifest.json"),
        render_manifest(&manifest),
    )?;
    staging.publish()
}

/// Work directories are `mkimg-work-<pid>-<random>` (see `host::lockdir`).
const WORK_PREFIX: &str = "mkimg-work-";

/// Remove what builds that died left: work directories in every root
/// [`work_root`] may pick, staging directories beside `output_dir`. Only
/// directories of mkimg's own naming whose lock is free go; problems are
/// warnings.
fn sweep_leftovers(output_dir: &Path) {
    let mut roots = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    roots.extend(std::env::var_os("MKIMG_WORKDIR").map(PathBuf::from));
    roots.dedup();
    let is_work = |name: &str| {
        name.strip_prefix(WORK_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(pid, tail)| {
                !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !tail.is_empty()
            })
    };
    let mut reports: Vec<_> = roots.iter().map(|r| sweep(r, &is_work)).collect();
    reports.push(sweep_stale_staging(output_dir));
    for report in reports {
        for path in report.removed {
            eprintln!(
                "mkimg: removed {} (left by a build that did not finish)",
                path.display()
            );
        }
        for warning in report.warnings {
            eprintln!("mkimg: warning: {warning}");
        }
    }
}

/// Where the work directory goes: `$MKIMG_WORKDIR`; else /dev/shm when it
/// is a tmpfs with room for the worst case (the root tar and the ext4 image
/// then never reach the disk: mke2fs fsyncs its image, and on tmpfs that is
/// free); else the system temp directory. Not /dev/shm for `--grub
/// mkconfig`: its chroot stage mounts a private tmpfs over /dev, which would
/// hide a work directory there.
///
/// The worst case comes from the plan, not the tarball: a compressed or
/// sparse tarball says nothing about what it expands to, but the rootfs
/// pass stops before any partition's contents outgrow the partition, so
/// the work directory holds at most each mounted partition twice (its tar
/// or spill file, and its image). A stream (standard input, a FIFO) is
/// assumed not to fit: nothing about it is known before it is read.
fn work_root(plan: &Plan, rootfs: &RootfsSource, mkconfig: bool) -> PathBuf {
    if let Some(dir) = std::env::var_os("MKIMG_WORKDIR") {
        return PathBuf::from(dir);
    }
    if mkconfig {
        return std::env::temp_dir();
    }
    let Some(need) = ram_work_need(plan, rootfs) else {
        return std::env::temp_dir();
    };
    let shm = Path::new("/dev/shm");
    if let Ok(stat) = rustix::fs::statvfs(shm) {
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        let is_tmpfs = rustix::fs::statfs(shm).is_ok_and(|s| s.f_type == 0x0102_1994);
        if is_tmpfs && free >= need && rustix::fs::access(shm, rustix::fs::Access::WRITE_OK).is_ok()
        {
            return shm.to_path_buf();
        }
    }
    std::env::temp_dir()
}

/// The most a RAM-backed work directory may have to hold: each mounted
/// partition twice (its tar or spill file, and its image) plus slack, or
/// `None` for a stream (standard input, a FIFO), which is assumed not to fit.
fn ram_work_need(plan: &Plan, rootfs: &RootfsSource) -> Option<u64> {
    let stream = match rootfs {
        RootfsSource::Stdin => true,
        RootfsSource::Path(path) => fs::metadata(path).is_ok_and(|m| !m.is_file()),
    };
    (!stream).then(|| {
        plan.layout
            .partitions
            .iter()
            .filter(|p| p.mount.is_some())
            .fold(256u64 << 20, |sum, p| {
                sum.saturating_add(p.size.saturating_mul(2))
            })
    })
}

/// grub.cfg by the distro's grub-mkconfig over the finished root filesystem.
fn mkconfig_grub_cfg(
    plan: &Plan,
    images: &[PartitionImage],
    workdir: &Path,
    step: &(dyn Fn(&str) + Sync),
) -> Result<VfatEntry> {
    let root = plan
        .root_partition()
        .context("--grub mkconfig needs a partition mounted at /")?;
    let image = images
        .iter()
        .find(|i| i.partition == root.name)
        .with_context(|| format!("no image was built for the root partition '{}'", root.name))?;
    let report = mkconfig::grub_cfg_by_mkconfig(plan, &image.path, workdir, step)
        .context("making grub.cfg with the distro's grub-mkconfig (--grub mkconfig)")?;
    for line in &report.messages {
        step(&format!("mkconfig: {line}"));
    }
    step(&format!(
        "mkconfig: {} made grub.cfg ({} lines, lint passed) in {:.1}s",
        report.program,
        report.grub_cfg.lines().count(),
        report.elapsed.as_secs_f64()
    ));
    Ok(VfatEntry::File {
        path: plan.boot.grub_cfg.trim_start_matches('/').to_string(),
        data: report.grub_cfg.into_bytes(),
    })
}

/// `--rootfs`, or the board's recipe bootstrapped (and cached).
fn resolve_rootfs(
    args: &BuildArgs,
    recipe: &Option<crate::board::recipe::RootfsRecipe>,
    plan: &Plan,
    ctx: &BuildContext,
) -> Result<RootfsSource> {
    if let Some(path) = &args.rootfs {
        return check_rootfs_arg(path);
    }
    let Some(recipe) = recipe else {
        bail!(
            "no --rootfs given and board {} has no [rootfs] recipe; pass --rootfs FILE or make one with `mkimg rootfs`",
            plan.board.name
        );
    };
    let opts = BootstrapOptions {
        cache_dir: default_cache_dir()?,
        refresh: false,
        source_date_epoch: u64::try_from(ctx.source_date_epoch).unwrap_or(0),
        progress: ProgressStyle::Auto,
    };
    bootstrap(recipe, plan.board.arch, &opts)
        .map(RootfsSource::Path)
        .context("bootstrapping the board's default rootfs")
}

/// `--rootfs PATH`: a tarball file, a FIFO (read once, as a stream) or `-`
/// for standard input. Anything else is refused saying what it is.
fn check_rootfs_arg(path: &Path) -> Result<RootfsSource> {
    const EXPECTED: &str =
        "--rootfs takes a tarball (tar, tar.gz, tar.xz or tar.zst), a FIFO, or - for standard input";
    if path.as_os_str() == "-" {
        if io::stdin().is_terminal() {
            bail!("--rootfs - reads the tarball from standard input, but standard input is a terminal; pipe one in (e.g. `docker export C | mkimg build … --rootfs -`)");
        }
        return Ok(RootfsSource::Stdin);
    }
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("rootfs {} not found; {EXPECTED}", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read rootfs {}", path.display())),
    };
    let kind = meta.file_type();
    let what = if kind.is_file() || kind.is_fifo() {
        return Ok(RootfsSource::Path(path.to_path_buf()));
    } else if kind.is_dir() {
        format!(
            "a directory; {EXPECTED} (make one with `tar -C {} -cf rootfs.tar .`)",
            path.display()
        )
    } else if kind.is_char_device() {
        format!("a character device; {EXPECTED}")
    } else if kind.is_block_device() {
        format!("a block device; {EXPECTED}")
    } else {
        format!("a socket; {EXPECTED}")
    };
    bail!("rootfs {} is {what}", path.display())
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path).with_context(|| format!("hashing {}", path.display()))?;
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::ram_work_need;
    use crate::board::{load_board, BoardSearch};
    use crate::plan::plan_board;
    use crate::rootfs::ingest::RootfsSource;

    /// Whatever the tarball's size (a 51 KiB bomb), the worst case is the
    /// plan's: qemu-riscv64's ~10 GiB of mounted partitions, twice. A
    /// stream (stdin; anything but a regular file) never goes to RAM.
    #[test]
    fn ram_work_dir_need_comes_from_the_plan() {
        let board = load_board("qemu-riscv64", &BoardSearch::from_env()).unwrap();
        let plan = plan_board(&board, "test").unwrap();
        let mounted: u64 = plan.layout.partitions.iter().map(|p| p.size).sum();
        let tiny = PathBuf::from(file!());
        assert_eq!(
            ram_work_need(&plan, &RootfsSource::Path(tiny)),
            Some(2 * mounted + (256 << 20))
        );
        assert_eq!(ram_work_need(&plan, &RootfsSource::Stdin), None);
        assert_eq!(
            ram_work_need(&plan, &RootfsSource::Path("/dev/null".into())),
            None
        );
    }
}
