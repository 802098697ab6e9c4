//! `mkimg plan --genimage`, `mkimg build --genimage` and `mkimg
//! import-genimage`: a genimage.cfg read with genimage's option names and
//! defaults, its hdimages planned through a generated board.toml
//! (`plan::from_genimage`), its images built in dependency order.
//!
//! Paths: the command line's `--inputpath`, `--outputpath`, `--rootpath`,
//! `--tmppath` win over the config's `config { }` section, which wins over
//! genimage's defaults (`./input`, `./images`, `./root`, `./tmp`);
//! relative ones are taken from the current directory, as genimage does.
//! `--includepath` is colon-separated and searched before the current
//! directory; `${VAR}` expands from the process environment.
//!
//! Writing: each image goes to a temporary file beside its destination
//! (an hdimage: `.NAME.mkimg-PID.tmp`, created new, never through a
//! symlink; a filesystem image, which its builder creates: `NAME` inside a
//! new 0700 directory `.NAME.mkimg-XXXXXX`) and is renamed into place, so
//! a reader sees the old file or the new one. A temporary file is removed
//! on every way out (error, SIGINT through
//! `host::interrupt`, which unwinds through the guard). Nothing else in the
//! output or tmp path is touched: Buildroot keeps inputs and outputs in one
//! directory, so this is not the board build's staging-and-replace publish.
//! An hdimage is written raw, as long as genimage's file: the generated
//! board's `disk.fill` (see `plan::from_genimage`). Reproducible: identities from `--seed`,
//! timestamps from SOURCE_DATE_EPOCH (`context`).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::board::paths::open_resolved;
use crate::cli::{BuildArgs, GenimagePaths, ImportGenimageArgs, PlanArgs};
use crate::commands::plan::{plan_rows, render_disk};
use crate::commands::table::render_rows;
use crate::context::BuildContext;
use crate::disk::blobs::load_blobs;
use crate::disk::write::{write_disk, DiskOutput};
use crate::filesystems::from_genimage::{build_fs_image, FsEnv};
use crate::filesystems::images::PartitionImage;
use crate::genimage::model::{ImageKind, Located};
use crate::genimage::order::{build_order, uses};
use crate::genimage::paths::resolve_within;
use crate::genimage::values::ImageSize;
use crate::genimage::{load_config, Config, ParseOptions};
use crate::host::interrupt;
use crate::plan::from_genimage::{
    describe_image, image_output_path, import_hdimage, plan_hdimage, Dirs, GenimagePlan,
};
use crate::plan::PlannedFs;
use crate::rootfs::CaptureResults;

/// Read the config: includes from `includepath` then `.`, `${VAR}` from
/// the environment.
fn load(cfg: &Path, includepath: Option<&str>) -> Result<Config> {
    let mut include_dirs: Vec<PathBuf> = includepath
        .unwrap_or("")
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    include_dirs.push(PathBuf::from("."));
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let opts = ParseOptions { include_dirs, env };
    load_config(cfg, &opts).with_context(|| format!("reading {}", cfg.display()))
}

/// The command line's path, else the config's, else genimage's default;
/// absolute.
fn pick(cli: Option<&PathBuf>, config: Option<&Located<String>>, default: &str) -> Result<PathBuf> {
    let path = cli
        .cloned()
        .or_else(|| config.map(|c| PathBuf::from(&c.value)))
        .unwrap_or_else(|| PathBuf::from(default));
    std::path::absolute(&path).with_context(|| format!("resolving {}", path.display()))
}

/// The input, output and tmp paths, and the root path.
fn resolve_dirs(config: &Config, paths: &GenimagePaths) -> Result<(Dirs, PathBuf)> {
    let g = &config.global;
    let dirs = Dirs {
        inputpath: pick(paths.inputpath.as_ref(), g.inputpath.as_ref(), "input")?,
        outputpath: pick(paths.outputpath.as_ref(), g.outputpath.as_ref(), "images")?,
        tmppath: pick(paths.tmppath.as_ref(), g.tmppath.as_ref(), "tmp")?,
    };
    let root = pick(paths.rootpath.as_ref(), g.rootpath.as_ref(), "root")?;
    Ok((dirs, root))
}

fn plan_one(
    config: &Config,
    index: usize,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
    cfg: &Path,
    seed: &str,
) -> Result<GenimagePlan> {
    plan_hdimage(config, index, dirs, built, cfg, seed).map_err(|err| {
        anyhow!(err).context(format!(
            "planning image '{}' of {}",
            config.images[index].file.value,
            cfg.display()
        ))
    })
}

/// `mkimg plan --genimage`.
pub fn plan(args: &PlanArgs) -> Result<()> {
    let (cfg, paths, seed, json) = (
        args.genimage.as_deref().context("--genimage is required")?,
        &args.paths,
        args.seed.as_str(),
        args.json,
    );
    let config = load(cfg, paths.includepath.as_deref())?;
    let (dirs, _) = resolve_dirs(&config, paths)?;
    let built = BTreeMap::new();
    let mut text = String::new();
    let mut items = Vec::new();
    for (index, image) in config.images.iter().enumerate() {
        let name = &image.file.value;
        let file =
            image_output_path(image, &dirs).map_err(|why| anyhow!("{}: {why}", image.file.at))?;
        if let ImageKind::Hdimage(_) = image.kind {
            let planned = plan_one(&config, index, &dirs, &built, cfg, seed)?;
            let plan = &planned.plan;
            text.push_str(&format!(
                "image {name} ({}): hdimage, written as {} ({})\n",
                image.file.at,
                file.display(),
                planned.mapped.file_len.map_or(
                    "length known once its images are built".to_string(),
                    |n| format!("{n} bytes")
                )
            ));
            text.push_str(&render_disk(plan));
            text.push('\n');
            text.push_str(&render_rows(&plan_rows(plan), plan.layout.sector_size));
            text.push('\n');
            items.push(serde_json::json!({
                "image": name,
                "type": "hdimage",
                "at": image.file.at.to_string(),
                "file": file,
                "file_len": planned.mapped.file_len,
                "plan": plan,
            }));
        } else {
            let line = describe_image(image);
            text.push_str(&format!("image {name}: {line}\n"));
            items.push(serde_json::json!({
                "image": name,
                "type": kind_name(&image.kind),
                "at": image.file.at.to_string(),
                "file": file,
                "description": line,
            }));
        }
    }
    if json {
        let value = serde_json::json!({ "images": items });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

fn kind_name(kind: &ImageKind) -> &'static str {
    match kind {
        ImageKind::Hdimage(_) => "hdimage",
        ImageKind::Vfat(_) => "vfat",
        ImageKind::Ext(_) => "ext",
        ImageKind::File(_) => "file",
        ImageKind::Squashfs(_) => "squashfs",
    }
}

/// `mkimg import-genimage`.
pub fn import(args: &ImportGenimageArgs) -> Result<()> {
    let config = load(&args.config, args.includepath.as_deref())?;
    let paths = GenimagePaths {
        inputpath: args.inputpath.clone(),
        ..GenimagePaths::default()
    };
    let (dirs, _) = resolve_dirs(&config, &paths)?;
    let hdimages: Vec<usize> = config
        .images
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.kind, ImageKind::Hdimage(_)))
        .map(|(n, _)| n)
        .collect();
    let names = || {
        hdimages
            .iter()
            .map(|&n| config.images[n].file.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match (&args.image, hdimages.as_slice()) {
        (Some(name), _) => *hdimages
            .iter()
            .find(|&&n| config.images[n].file.value == *name)
            .ok_or_else(|| {
                anyhow!(
                    "--image {name}: no hdimage of that name (hdimages: {})",
                    names()
                )
            })?,
        (None, [one]) => *one,
        (None, []) => bail!("{} has no hdimage to import", args.config.display()),
        (None, _) => bail!(
            "{} has several hdimages ({}): pick one with --image NAME",
            args.config.display(),
            names()
        ),
    };
    let mapped = import_hdimage(&config, index, &dirs, &BTreeMap::new(), &args.config)
        .map_err(|err| anyhow!(err).context(format!("importing {}", args.config.display())))?;
    print!("{}", mapped.text);
    Ok(())
}

/// A file being written beside its destination; removed unless persisted.
struct TempFile {
    path: PathBuf,
    done: bool,
}

impl TempFile {
    /// A new, empty `.NAME.mkimg-PID.tmp` beside `dest` (never an existing
    /// file or a symlink).
    fn beside(dest: &Path) -> Result<TempFile> {
        let dir = dest.parent().context("an output file has a directory")?;
        let name = dest
            .file_name()
            .context("an output file has a name")?
            .to_string_lossy();
        let path = dir.join(format!(".{name}.mkimg-{}.tmp", std::process::id()));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(TempFile { path, done: false })
    }

    fn persist(mut self, dest: &Path) -> Result<()> {
        fs::rename(&self.path, dest)
            .with_context(|| format!("renaming {} to {}", self.path.display(), dest.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A file a filesystem builder creates (its own `create_new`, or
/// mksquashfs), inside a new private directory beside its destination
/// (`.NAME.mkimg-XXXXXX`, mode 0700, so nothing can be planted at the
/// file's path), renamed into place; the directory goes on every way out.
struct TempInDir {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempInDir {
    fn beside(dest: &Path) -> Result<TempInDir> {
        let parent = dest.parent().context("an output file has a directory")?;
        let name = dest.file_name().context("an output file has a name")?;
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{}.mkimg-", name.to_string_lossy()))
            .tempdir_in(parent)
            .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
        let path = dir.path().join(name);
        Ok(TempInDir { dir, path })
    }

    fn persist(self, dest: &Path) -> Result<()> {
        fs::rename(&self.path, dest)
            .with_context(|| format!("renaming {} to {}", self.path.display(), dest.display()))?;
        drop(self.dir);
        Ok(())
    }
}

/// Whether every image `index` holds has a size before it is built, so
/// its layout can be checked before anything is built.
fn sizes_known(config: &Config, index: usize) -> bool {
    uses(config, index).into_iter().all(|i| {
        let image = &config.images[i];
        matches!(image.kind, ImageKind::File(_))
            || matches!(
                image.size.as_ref().map(|s| s.value),
                Some(ImageSize::Bytes(_))
            )
    })
}

/// `mkimg build --genimage`.
pub fn build(args: &BuildArgs) -> Result<()> {
    interrupt::install().context("catching SIGINT, SIGTERM and SIGHUP")?;
    let cfg = args.genimage.as_deref().context("--genimage is required")?;
    let paths = &args.paths;
    let ctx = BuildContext::from_env(&args.seed)?;
    let config = load(cfg, paths.includepath.as_deref())?;
    let (dirs, rootpath) = resolve_dirs(&config, paths)?;
    let order = build_order(&config)?;
    let mut built: BTreeMap<String, PathBuf> = BTreeMap::new();
    // Layout problems first, before any image is built.
    for (index, image) in config.images.iter().enumerate() {
        image_output_path(image, &dirs).map_err(|why| anyhow!("{}: {why}", image.file.at))?;
        if matches!(image.kind, ImageKind::Hdimage(_)) && sizes_known(&config, index) {
            plan_one(&config, index, &dirs, &built, cfg, &ctx.seed)?;
        }
    }
    for dir in [&dirs.outputpath, &dirs.tmppath] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for index in order {
        interrupt::check()?;
        let image = &config.images[index];
        let name = image.file.value.clone();
        let dest =
            image_output_path(image, &dirs).map_err(|why| anyhow!("{}: {why}", image.file.at))?;
        match &image.kind {
            ImageKind::File(file) => {
                let input = file
                    .name
                    .as_ref()
                    .map_or(name.as_str(), |n| n.value.as_str());
                let found = resolve_within(
                    input,
                    std::slice::from_ref(&dirs.inputpath),
                    "the input path",
                )
                .map_err(|why| {
                    anyhow!(
                        "{}: image '{name}': input file '{input}': {why}",
                        image.file.at
                    )
                })?;
                built.insert(name, found.canonical);
            }
            ImageKind::Hdimage(_) => {
                let len = write_hdimage(&config, index, &dirs, &built, cfg, &ctx.seed, &dest)?;
                eprintln!("mkimg: wrote {} ({len} bytes)", dest.display());
                built.insert(name, dest);
            }
            _ => {
                let tmp = TempInDir::beside(&dest)?;
                let env = FsEnv {
                    config: &config,
                    inputpath: &dirs.inputpath,
                    rootpath: Some(&rootpath),
                    tmppath: &dirs.tmppath,
                    built: &built,
                    source_date_epoch: ctx.source_date_epoch,
                    seed: &ctx.seed,
                };
                build_fs_image(image, &env, &tmp.path)
                    .with_context(|| format!("{}: building image '{name}'", image.file.at))?;
                tmp.persist(&dest)?;
                eprintln!("mkimg: wrote {}", dest.display());
                built.insert(name, dest);
            }
        }
    }
    Ok(())
}

/// Plan, assemble and place one hdimage; its file length. The raw
/// file's length is the board's `disk.fill` (genimage's `fill`): without
/// it the file ends at the last byte written, as genimage's does.
fn write_hdimage(
    config: &Config,
    index: usize,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
    cfg: &Path,
    seed: &str,
    dest: &Path,
) -> Result<u64> {
    let planned = plan_one(config, index, dirs, built, cfg, seed)?;
    let plan = &planned.plan;
    let mut images = Vec::new();
    for part in &plan.layout.partitions {
        if let PlannedFs::Raw { source } = &part.filesystem {
            // Resolved by the planner inside the genimage paths; a symlink
            // planted since is not followed.
            let file = open_resolved(source).with_context(|| {
                format!("partition '{}': opening {}", part.name, source.display())
            })?;
            if !file.metadata()?.is_file() {
                bail!(
                    "partition '{}': {} is not a regular file",
                    part.name,
                    source.display()
                );
            }
            images.push(PartitionImage {
                partition: part.name.clone(),
                path: source.clone(),
            });
        }
    }
    // The partitions without a table entry are the plan's blobs (host
    // files inside the genimage paths, or reserved room).
    let blobs = load_blobs(plan, &CaptureResults::default())?;
    let tmp = TempFile::beside(dest)?;
    write_disk(plan, &blobs, &images, &[DiskOutput::Raw(&tmp.path)])
        .with_context(|| format!("writing {}", dest.display()))?;
    let mut len = fs::metadata(&tmp.path)
        .with_context(|| format!("reading {}", tmp.path.display()))?
        .len();
    // An image shorter than its section's `size` (a squashfs) is written
    // by genimage padded to that size: if it is the last thing written,
    // genimage's file is longer by zeros. Never cut: `disk.fill` decided.
    if let Some(want) = planned.mapped.file_len.filter(|&want| want > len) {
        let file = OpenOptions::new()
            .write(true)
            .open(&tmp.path)
            .with_context(|| format!("opening {}", tmp.path.display()))?;
        file.set_len(want)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("extending {} to {want} bytes", tmp.path.display()))?;
        len = want;
    }
    tmp.persist(dest)?;
    Ok(len)
}
