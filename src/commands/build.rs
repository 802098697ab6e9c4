//! `mkimg build`: the chain of stages, one call each.
//!
//! board → plan → rootfs (one pass over the tarball; with `--grub mkconfig`
//! it also writes the subtree grub-mkconfig reads) → boot files (grub.cfg:
//! template, or grub-mkconfig over that tree) → filesystems → disk (tables,
//! blobs and images, streamed once into qcow2/raw) → outputs (firmware,
//! start_vm.sh, manifest.json) → atomic publish. With `--mkconfig-via
//! mount` (root only) grub-mkconfig runs over the finished root filesystem
//! instead: ext4 first, then boot files, then vfat. Nothing outside the
//! staging and work directories is written; a failure publishes nothing.
//!
//! Where stages do not depend on each other they run side by side
//! (`std::thread::scope`): unless grub.cfg needs the finished root
//! filesystem (`--mkconfig-via mount`), the ESP does not depend on it, so
//! the ESP's boot files (grub-mkconfig over the tree, in mkconfig mode) and
//! vfat are made beside ext4; firmware and start_vm.sh are written
//! while the disk is. The outputs do not depend on the order, so they are
//! the same bytes either way; every thread checks the interrupt flag, and
//! the first error (in chain order) is the build's.
//!
//! With `--verify-repro` the whole build runs a second time as a child
//! process, and the two outputs are compared (see [`repro`]).
//!
//! Before any of it: SIGINT/SIGTERM/SIGHUP become a flag the stages check
//! (`host::interrupt`), `-o` is checked to be something mkimg may replace,
//! and work and staging directories left by builds that died are swept
//! (`host::workdir`, `outputs::publish`: only those whose owner's lock is
//! free).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, IsTerminal};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::board::schema::{BootLoader, GrubMode};
use crate::bootloader::bls_options::entries_rewrite;
use crate::bootloader::board_args::{default_grub_rewrite, kept_in_image, Kept};
use crate::bootloader::detect::{self, RootfsBoot};
use crate::bootloader::esp::{esp_boot, grub_cfg_file};
use crate::bootloader::grub::default_kernel_cmdline;
use crate::bootloader::grub_packages::check_for_mkconfig;
use crate::bootloader::mkconfig::{self, MkconfigReport, MkconfigVia};
use crate::bootloader::place::place_extlinux;
use crate::bootstrap::{bootstrap, default_cache_dir, BootstrapOptions, ProgressStyle};
use crate::cli::{BuildArgs, Compress, ImageFormat, OwnerArg};
use crate::context::BuildContext;
use crate::disk::blobs::{check_blob_files, load_blobs};
use crate::disk::qcow2::{Compression, Qcow2Options};
use crate::disk::sink::RawCompression;
use crate::disk::write::{write_disk, DiskOutput};
use crate::filesystems::images::{build_image_group, sort_by_layout, ImageGroup, PartitionImage};
use crate::filesystems::vfat::VfatEntry;
use crate::host::interrupt;
use crate::host::lockdir::SweepReport;
use crate::host::workdir::{create_work_dir, ram_work_need, sweep_work_dirs, work_root};
use crate::outputs::manifest::{ManifestMkconfig, OutputFile, RootfsInput};
use crate::outputs::publish::{check_output_dir, sweep_stale_staging, Staging};
use crate::outputs::start_vm::ImageFormat as VmFormat;
use crate::outputs::write::{write_manifest, write_sha256sums, write_side_files};
use crate::plan::{plan_board, Plan};
use crate::rootfs::dir_source::OwnerMap;
use crate::rootfs::ingest::{ingest_rootfs, PassInputs, RootfsContents, RootfsSource};
use crate::rootfs::CapturedTree;

mod repro;

/// Where a build's files go: the output directory, and (for
/// `--verify-repro`) a raw copy of the disk outside it.
struct Destination<'a> {
    output_dir: &'a Path,
    compare_raw: Option<&'a Path>,
}

pub fn run(args: &BuildArgs) -> Result<()> {
    if let Some(mask) = args.umask {
        // --verify-repro's second build (see `repro`): before any file is made.
        rustix::process::umask(rustix::fs::Mode::from_bits_truncate(mask));
    }
    let started = Instant::now();
    let step = |text: &str| eprintln!("mkimg: [{:6.1}s] {text}", started.elapsed().as_secs_f64());
    interrupt::install().context("catching SIGINT, SIGTERM and SIGHUP")?;
    let board_spec = args
        .board
        .as_deref()
        .context("give --board NAME or --genimage FILE.cfg")?;
    let ctx = BuildContext::from_env(&args.seed)?;
    let board = super::load_board_with(board_spec, &args.overrides)?;
    let plan = plan_board(&board, &ctx.seed)
        .with_context(|| format!("planning board {}", board.path.display()))?;
    for warning in &plan.warnings {
        eprintln!("mkimg: warning: {warning}");
    }
    check_blob_files(&plan)?;
    if uses_mkconfig(&plan) {
        mkconfig::preflight(&plan, args.mkconfig_via)?;
    }
    let output_dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("output").join(&plan.board.name));
    check_output_dir(&output_dir)?;
    if args.verify_repro {
        repro::preflight(args)?;
    }
    let mut swept = sweep_work_dirs();
    swept.push(sweep_stale_staging(&output_dir));
    report_sweeps(swept);
    let rootfs = resolve_rootfs(args, &board.file.rootfs, &plan, &ctx)?;

    let mounted = plan.layout.partitions.iter().filter(|p| p.mount.is_some());
    let need = ram_work_need(rootfs.is_stream(), mounted.map(|p| p.size));
    // The mkconfig tree runs the rootfs's programs from the work directory.
    let tree = uses_mkconfig(&plan) && args.mkconfig_via == MkconfigVia::Tree;
    let need = need.map(|n| {
        n + if tree {
            mkconfig::tree::MAX_TREE_BYTES
        } else {
            0
        }
    });
    let root = work_root(need, tree);
    let repro_dir = match args.verify_repro {
        true => Some(repro::ReproDir::create()?),
        false => None,
    };
    // The comparison reads raw disks: without a raw format, both builds
    // also write one beside their work (the second through --repro-raw).
    let first_raw = repro_dir
        .as_ref()
        .filter(|_| !args.format.contains(&ImageFormat::Raw))
        .map(|dir| dir.first_raw());
    if let Some(path) = &first_raw {
        step(&format!(
            "--verify-repro: also writing the raw disk to {} for the comparison",
            path.display()
        ));
    }
    let destination = Destination {
        output_dir: &output_dir,
        compare_raw: first_raw.as_deref().or(args.repro_raw.as_deref()),
    };
    let work = create_work_dir(&root)
        .with_context(|| format!("creating the work directory in {}", root.display()))?;
    let result = build_in(&plan, &rootfs, &ctx, args, work.path(), &destination, &step);
    if args.keep_workdir {
        let kept = work.keep().context("marking the work directory kept")?;
        eprintln!("mkimg: work directory kept at {}", kept.display());
    } else {
        drop(work);
    }
    let published = result?;
    step(&format!("published {}", published.display()));
    if let Some(dir) = &repro_dir {
        repro::verify(args, &plan, dir, &published, &step)?;
    }
    Ok(())
}

fn build_in(
    plan: &Plan,
    rootfs: &RootfsSource,
    ctx: &BuildContext,
    args: &BuildArgs,
    workdir: &Path,
    destination: &Destination<'_>,
    step: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf> {
    // rootfs: one pass, split by mount point (and the mkconfig tree); the
    // board's kernel arguments written into the image's /etc/default/grub
    // and its BLS entries (with the plan's root) on the way.
    let wanted = detect::wanted(plan);
    let rewrites = default_grub_rewrite(plan)
        .into_iter()
        .chain(entries_rewrite(plan))
        .collect();
    let perturb = args.repro_perturb.as_deref();
    let via = uses_mkconfig(plan).then_some(args.mkconfig_via);
    let tree = match via {
        Some(MkconfigVia::Tree) => Some(mkconfig::tree_spec(workdir)?),
        _ => None,
    };
    let contents = ingest_rootfs(
        plan,
        rootfs,
        PassInputs {
            epoch: ctx.source_date_epoch,
            workdir,
            captures: wanted,
            rewrites,
            tree: tree.as_ref(),
            perturb,
        },
    )?;
    step(&format!("rootfs {rootfs}: {}", contents.summary));
    if let Some(tree) = &contents.tree {
        step(&format!(
            "mkconfig tree {}: {}",
            tree.dir.path().display(),
            tree.stats
        ));
    }
    let boot = detect::detect(plan, &contents.captures);
    if plan.boot.loader != BootLoader::None {
        for line in detect::describe(&boot) {
            step(&format!("detected {line}"));
        }
    }
    if plan.boot.loader == BootLoader::Grub {
        grub_defaults(plan, &boot, &contents, step)?;
    }

    // extlinux.conf first: on an ext4 /boot it is appended to that
    // partition's tar, which must happen before the ext4 image is made.
    let mut extra = BTreeMap::new();
    if plan.boot.loader == BootLoader::Extlinux {
        let placed = place_extlinux(plan, &contents, &boot, ctx.source_date_epoch, &mut extra)?;
        step(&format!("extlinux.conf on {placed}"));
    }

    // Filesystems: ext4 and raw, vfat with the boot files.
    interrupt::check()?;
    let (images, mkconfig_ran) = build_filesystems(
        plan,
        &contents,
        &boot,
        via,
        extra,
        ctx.source_date_epoch,
        workdir,
        step,
    )?;
    let blobs = load_blobs(plan, &contents.captures)?;

    // Disk, straight into the staging directory; firmware and start_vm.sh
    // beside it meanwhile.
    interrupt::check()?;
    let staging = Staging::create(destination.output_dir)?;
    let image = &plan.board.image;
    let qcow2_opts = Qcow2Options {
        compression: match args.compress {
            Compress::None => Compression::None,
            Compress::Zlib => Compression::Zlib,
            Compress::Zstd => Compression::Zstd,
        },
        ..Qcow2Options::default()
    };
    let paths: Vec<(ImageFormat, PathBuf)> = args
        .format
        .iter()
        .map(|&f| {
            (
                f,
                staging.path().join(format!("{image}.{}", format_suffix(f))),
            )
        })
        .collect();
    let bmap_path = staging.path().join(format!("{image}.raw.bmap"));
    let mut outputs = Vec::new();
    for (format, path) in &paths {
        let output = match format {
            ImageFormat::Raw => DiskOutput::Raw(path),
            ImageFormat::Qcow2 => DiskOutput::Qcow2(path, qcow2_opts),
            ImageFormat::RawZst => DiskOutput::CompressedRaw(path, RawCompression::Zstd),
            ImageFormat::RawXz => DiskOutput::CompressedRaw(path, RawCompression::Xz),
            ImageFormat::RawGz => DiskOutput::CompressedRaw(path, RawCompression::Gzip),
            ImageFormat::Simg => DiskOutput::Simg(path),
        };
        // One file per format even when it is named twice.
        if !outputs
            .iter()
            .any(|o: &DiskOutput<'_>| o.path() == path.as_path())
        {
            outputs.push(output);
        }
    }
    if outputs.is_empty() {
        bail!("--format names no image format; use qcow2, raw, raw.zst, raw.xz, raw.gz or simg");
    }
    if args.format.iter().any(|f| f.is_raw_based()) {
        outputs.push(DiskOutput::Bmap(&bmap_path));
    }
    // Not an output file: listed nowhere, outside the staging directory.
    if let Some(path) = destination.compare_raw {
        outputs.push(DiskOutput::Raw(path));
    }
    let vm_format = if args.format.contains(&ImageFormat::Qcow2) {
        Some(VmFormat::Qcow2)
    } else if args.format.contains(&ImageFormat::Raw) {
        Some(VmFormat::Raw)
    } else {
        None
    };
    let (disk, side) = thread::scope(|scope| {
        let side = scope.spawn(|| write_side_files(plan, staging.path(), vm_format));
        let disk = write_disk(plan, &blobs, &images, &outputs);
        (disk, joined(side))
    });
    let (assembly, sinks) = disk?;
    let mut files = side?;
    for sink in &sinks {
        if Some(sink.path.as_path()) == destination.compare_raw {
            continue;
        }
        let name = sink.path.file_name().unwrap_or_default().to_string_lossy();
        step(&format!(
            "wrote {name} ({} MiB written, {} MiB data streamed)",
            sink.bytes_written >> 20,
            assembly.data_bytes >> 20
        ));
        files.push(OutputFile {
            file: name.into_owned(),
            size: sink.file_len,
            sha256: sink.sha256.clone(),
        });
    }

    // manifest.json, then publish.
    let rootfs_input = RootfsInput {
        file: rootfs.manifest_name(),
        sha256: contents.sha256.clone(),
    };
    let epoch = u64::try_from(ctx.source_date_epoch).unwrap_or(0);
    let manifest = write_manifest(
        plan,
        staging.path(),
        epoch,
        files.clone(),
        rootfs_input,
        mkconfig_ran,
    )?;
    files.push(manifest);
    write_sha256sums(staging.path(), &files)?;
    staging.publish()
}

/// After the rootfs pass, for a grub build: with `--grub mkconfig`, refuse
/// a rootfs its grub-mkconfig cannot serve (before mke2fs and the
/// chroot); warn when the image's /etc/default/grub could not take the
/// board's kernel arguments; log the kernel command line.
fn grub_defaults(
    plan: &Plan,
    boot: &RootfsBoot,
    contents: &RootfsContents,
    step: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let mkconfig = uses_mkconfig(plan);
    if mkconfig {
        check_for_mkconfig(plan, boot, &contents.captures)?;
    }
    let kept = kept_in_image(plan, &contents.captures);
    let why = match &kept {
        Kept::NotAFile(what) => Some(format!("is {what}")),
        Kept::Missing(args) => Some(format!("lacks {}", args.join(" "))),
        Kept::NothingToKeep | Kept::NoFile | Kept::Kept => None,
    };
    if let Some(why) = why {
        eprintln!(
            "mkimg: warning: the image's /etc/default/grub {why}: the board's kernel arguments \
             are in this grub.cfg but update-grub on the target will drop them"
        );
    }
    // The line the default menu entry boots with; with --grub mkconfig as
    // 10_linux assembles it from the image's /etc/default/grub.
    if let Ok(line) = default_kernel_cmdline(plan, boot) {
        let source = match (mkconfig, kept) {
            (true, Kept::Kept) => {
                " (from the image's /etc/default/grub, board arguments merged in; grub-mkconfig writes the menu)"
            }
            (true, _) => " (from the image's /etc/default/grub; grub-mkconfig writes the menu)",
            (false, Kept::Kept) => " (board arguments also kept in the image's /etc/default/grub)",
            (false, _) => "",
        };
        step(&format!("kernel command line: {line}{source}"));
    }
    Ok(())
}

/// The file name suffix of an image format: `IMAGE.<suffix>`.
fn format_suffix(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Qcow2 => "qcow2",
        ImageFormat::Raw => "raw",
        ImageFormat::RawZst => "raw.zst",
        ImageFormat::RawXz => "raw.xz",
        ImageFormat::RawGz => "raw.gz",
        ImageFormat::Simg => "simg",
    }
}

/// Whether grub.cfg is made by the distro's grub-mkconfig.
fn uses_mkconfig(plan: &Plan) -> bool {
    plan.boot.loader == BootLoader::Grub && plan.boot.grub == GrubMode::Mkconfig
}

/// Every partition's image, in layout order: ext4 and raw, and vfat with
/// the boot files for the ESP (EFI binaries, grub.cfg) added to `extra`;
/// and which grub-mkconfig made grub.cfg, if one did (`via`). Unless
/// grub.cfg comes from grub-mkconfig over the finished root filesystem
/// (`--mkconfig-via mount`), the ESP's side (boot files, grub-mkconfig over
/// the tree included, then vfat) runs beside the other filesystems.
#[allow(clippy::too_many_arguments)]
fn build_filesystems(
    plan: &Plan,
    contents: &RootfsContents,
    boot: &RootfsBoot,
    via: Option<MkconfigVia>,
    mut extra: BTreeMap<String, Vec<VfatEntry>>,
    epoch: i64,
    workdir: &Path,
    step: &(dyn Fn(&str) + Sync),
) -> Result<(Vec<PartitionImage>, Option<ManifestMkconfig>)> {
    let no_extra = BTreeMap::new();
    let build_group = |group: ImageGroup, extra: &BTreeMap<String, Vec<VfatEntry>>| {
        interrupt::check()?;
        let mut progress = |text: &str| step(text);
        build_image_group(plan, contents, extra, epoch, workdir, group, &mut progress)
    };
    let (mut images, ran) = if via == Some(MkconfigVia::Mount) {
        let mut images = build_group(ImageGroup::NotVfat, &no_extra)?;
        let from = GrubCfgFrom::Mount(&images, workdir);
        let ran = add_boot_files(plan, contents, boot, from, &mut extra, step)?;
        images.extend(build_group(ImageGroup::Vfat, &extra)?);
        (images, ran)
    } else {
        let from = match (via, &contents.tree) {
            (None, _) => GrubCfgFrom::Template,
            (Some(_), Some(tree)) => GrubCfgFrom::Tree(tree),
            (Some(_), None) => bail!("the rootfs pass wrote no mkconfig tree"),
        };
        // The ESP's side: boot files (with the tree path, grub-mkconfig in
        // its sandbox) and then vfat; beside it the other filesystems.
        let (images, esp) = thread::scope(|scope| {
            let esp = scope.spawn(|| {
                let ran = add_boot_files(plan, contents, boot, from, &mut extra, step)?;
                Ok((ran, build_group(ImageGroup::Vfat, &extra)))
            });
            let images = build_group(ImageGroup::NotVfat, &no_extra);
            (images, joined(esp))
        });
        // Errors in chain order: boot files, then ext4 and the rest, then vfat.
        let (ran, esp) = esp?;
        let mut images = images?;
        images.extend(esp?);
        (images, ran)
    };
    sort_by_layout(plan, &mut images);
    Ok((images, ran))
}

/// Where grub.cfg comes from.
enum GrubCfgFrom<'a> {
    /// mkimg's template.
    Template,
    /// grub-mkconfig over the tree the rootfs pass wrote.
    Tree(&'a CapturedTree),
    /// grub-mkconfig over these finished images' root filesystem, mounted
    /// (its mount point in this work directory).
    Mount(&'a [PartitionImage], &'a Path),
}

/// The boot files for the ESP, added to its entry of `extra`: the EFI
/// binaries and, for GRUB, grub.cfg (`from`). Which grub-mkconfig ran, if
/// one did.
fn add_boot_files(
    plan: &Plan,
    contents: &RootfsContents,
    boot: &RootfsBoot,
    from: GrubCfgFrom<'_>,
    extra: &mut BTreeMap<String, Vec<VfatEntry>>,
    step: &(dyn Fn(&str) + Sync),
) -> Result<Option<ManifestMkconfig>> {
    let Some(esp) = plan.esp_partition() else {
        return Ok(None);
    };
    let esp_files = esp_boot(plan, boot, &contents.captures)?;
    step(&format!("ESP: {}", esp_files.summary));
    let mut files = esp_files.files;
    let mut ran = None;
    if let Some(path) = &esp_files.grub_cfg {
        let report = match from {
            GrubCfgFrom::Template => None,
            GrubCfgFrom::Tree(tree) => Some(
                mkconfig::grub_cfg_from_tree(plan, boot, tree, step).context(
                    "making grub.cfg with the distro's grub-mkconfig over the mkconfig tree \
                     (--grub mkconfig)",
                )?,
            ),
            GrubCfgFrom::Mount(images, workdir) => {
                Some(mkconfig_over_mount(plan, boot, images, workdir, step)?)
            }
        };
        files.push(match report {
            None => grub_cfg_file(plan, boot, path)?,
            Some(report) => {
                log_mkconfig(&report, step);
                ran = Some(ManifestMkconfig {
                    program: report.program.clone(),
                    via: report.via.name().to_string(),
                });
                VfatEntry::File {
                    path: path.to_string(),
                    data: report.grub_cfg.into_bytes(),
                }
            }
        });
    }
    extra.entry(esp.name.clone()).or_default().extend(files);
    Ok(ran)
}

/// The result of a scoped thread; a panic becomes an error.
fn joined<T>(handle: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(anyhow!("a build thread panicked")))
}

/// Say what the start-up sweeps removed and what they could not.
fn report_sweeps(reports: Vec<SweepReport>) {
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

/// grub.cfg by the distro's grub-mkconfig over the finished root
/// filesystem, mounted from a loop device (`--mkconfig-via mount`).
fn mkconfig_over_mount(
    plan: &Plan,
    boot: &RootfsBoot,
    images: &[PartitionImage],
    workdir: &Path,
    step: &(dyn Fn(&str) + Sync),
) -> Result<MkconfigReport> {
    let root = plan
        .root_partition()
        .context("--grub mkconfig needs a partition mounted at /")?;
    let image = images
        .iter()
        .find(|i| i.partition == root.name)
        .with_context(|| format!("no image was built for the root partition '{}'", root.name))?;
    mkconfig::grub_cfg_by_mkconfig(plan, boot, &image.path, workdir, step).context(
        "making grub.cfg with the distro's grub-mkconfig over the mounted root filesystem \
         (--grub mkconfig --mkconfig-via mount)",
    )
}

/// grub-mkconfig's messages and which path ran, for the build log.
fn log_mkconfig(report: &MkconfigReport, step: &(dyn Fn(&str) + Sync)) {
    for line in &report.messages {
        step(&format!("mkconfig: {line}"));
    }
    let over = match report.via {
        MkconfigVia::Tree => "over the mkconfig tree (rootless)",
        MkconfigVia::Mount => "over the mounted root filesystem",
    };
    step(&format!(
        "mkconfig: {} made grub.cfg {over}, --mkconfig-via {} ({} lines, lint passed) in {:.1}s",
        report.program,
        report.via.name(),
        report.grub_cfg.lines().count(),
        report.elapsed.as_secs_f64()
    ));
}

/// `--rootfs`, or the board's recipe bootstrapped (and cached).
fn resolve_rootfs(
    args: &BuildArgs,
    recipe: &Option<crate::board::recipe::RootfsRecipe>,
    plan: &Plan,
    ctx: &BuildContext,
) -> Result<RootfsSource> {
    let owner = match args.owner {
        OwnerArg::Keep => OwnerMap::Keep,
        OwnerArg::Root => OwnerMap::Root,
    };
    if let Some(path) = &args.rootfs {
        let source = check_rootfs_arg(path, owner)?;
        if owner == OwnerMap::Root && !matches!(source, RootfsSource::Dir(..)) {
            bail!("--owner root applies to a directory --rootfs; {path:?} is not one (a tarball keeps the owners it records)", path = path.display().to_string());
        }
        return Ok(source);
    }
    if owner == OwnerMap::Root {
        bail!("--owner root applies to a directory --rootfs; pass --rootfs DIR");
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

/// `--rootfs PATH`: a tarball file, a FIFO (read once, as a stream), `-`
/// for standard input, or a directory. Anything else is refused saying what
/// it is.
pub(crate) fn check_rootfs_arg(path: &Path, owner: OwnerMap) -> Result<RootfsSource> {
    const EXPECTED: &str =
        "--rootfs takes a tarball (tar, tar.gz, tar.xz or tar.zst), a FIFO, a directory, or - for standard input";
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
        return Ok(RootfsSource::Dir(path.to_path_buf(), owner));
    } else if kind.is_char_device() {
        format!("a character device; {EXPECTED}")
    } else if kind.is_block_device() {
        format!("a block device; {EXPECTED}")
    } else {
        format!("a socket; {EXPECTED}")
    };
    bail!("rootfs {} is {what}", path.display())
}
