//! Plan → one pass over the rootfs tarball.
//!
//! Sets up a sink per partition that has a mount point (ext4: a PAX tar file
//! in the work directory for `mke2fs -d`; vfat: files in memory), the edits
//! the plan implies (fstab, hostname, hosts, removals, overlay) and those
//! the caller adds (`rewrites`: the board's kernel arguments in
//! /etc/default/grub, from `bootloader::board_args`), and the
//! captures later stages ask for (`bootloader::detect::wanted`: the /boot
//! listing, /etc/default/grub, os-release, grub binaries, BLS entries,
//! `rootfs:` blobs, ELF headers for the architecture check). Hashes the tarball as it streams, so it is read
//! exactly once: a file, a FIFO, standard input (`--rootfs -`) or a
//! directory (the tar stream `dir_source.rs` writes of it) alike.
//!
//! With a [`TreeSpec`] (`--grub mkconfig`), a [`TreeTee`] in front of the
//! root partition's sink also writes the subtree grub-mkconfig reads into
//! the work directory (`rootfs::tree`); it comes back as
//! [`RootfsContents::tree`].
//!
//! Every mounted partition gets a [`Budget`] from its size, so the pass
//! stops at the first member that cannot fit, before writing it. The work
//! tars are written sparse ([`SparseFile`](crate::rootfs::SparseFile)) and in canonical order ([`SortedTarSink`]) and large ESP files go to a
//! sparse spill file, so the work directory holds about the final data.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::board::schema::BootLoader;
use crate::digest::BackgroundHasher;
use crate::elf::{check_rootfs_arch, detect_elf};
use crate::plan::{Plan, PlannedFs};
use crate::rootfs::dir_source::{spawn_dir_stream, DirProducer, OwnerMap};
use crate::rootfs::fstab::render_fstab;
use crate::rootfs::{
    detect_compression, process_rootfs, scan_overlay, Budget, CaptureResults, CapturedTree,
    Captures, Compression, Edits, EntrySink, MemEntry, MemPolicy, MemorySink, Rewrite, RootfsError,
    RootfsJob, RootfsSummary, SinkError, SortedTarSink, SplitTarget, TreeSpec, TreeTee,
    XattrRecord,
};

/// The rootfs's own extlinux.conf (e.g. from u-boot-menu), replaced by ours.
const EXTLINUX_STALE: &str = "/boot/extlinux/extlinux.conf";

/// What the pass produced, per partition name.
#[derive(Debug)]
pub struct RootfsContents {
    /// ext4 partitions: the tar for mke2fs and the xattrs it will drop.
    pub tars: BTreeMap<String, (PathBuf, Vec<XattrRecord>)>,
    /// vfat partitions: their files.
    pub files: BTreeMap<String, Vec<MemEntry>>,
    pub captures: CaptureResults,
    pub summary: RootfsSummary,
    /// sha256 of the tarball as read (compressed bytes).
    pub sha256: String,
    /// The subtree of the root filesystem written beside it, when asked
    /// for (`--grub mkconfig`: see `rootfs::tree`).
    pub tree: Option<CapturedTree>,
}

/// Where the tarball comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// A regular file or a FIFO, read once from the start.
    Path(PathBuf),
    /// `--rootfs -`: standard input, e.g. `docker export C | mkimg … --rootfs -`.
    Stdin,
    /// A directory, read as the tar stream of it (`dir_source.rs`); its
    /// sha256 in manifest.json is of that canonical stream.
    Dir(PathBuf, OwnerMap),
}

impl RootfsSource {
    /// The name manifest.json records: the file name, or "-" for stdin.
    pub fn manifest_name(&self) -> String {
        match self {
            RootfsSource::Path(path) | RootfsSource::Dir(path, _) => path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            RootfsSource::Stdin => "-".to_string(),
        }
    }

    /// Read once, as a stream (standard input, a FIFO): nothing about its
    /// size is known before it is read.
    pub fn is_stream(&self) -> bool {
        match self {
            RootfsSource::Stdin | RootfsSource::Dir(..) => true,
            RootfsSource::Path(path) => std::fs::metadata(path).is_ok_and(|m| !m.is_file()),
        }
    }

    /// The tar stream, and for a directory the thread producing it.
    fn open(&self) -> Result<(Box<dyn Read>, Option<DirProducer>)> {
        Ok(match self {
            RootfsSource::Path(path) => (
                Box::new(
                    File::open(path)
                        .with_context(|| format!("opening rootfs {}", path.display()))?,
                ),
                None,
            ),
            RootfsSource::Stdin => (Box::new(io::stdin().lock()), None),
            RootfsSource::Dir(path, owner) => {
                let (reader, producer) = spawn_dir_stream(path, *owner)?;
                (Box::new(reader), Some(producer))
            }
        })
    }
}

impl fmt::Display for RootfsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootfsSource::Path(path) | RootfsSource::Dir(path, _) => {
                write!(f, "{}", path.display())
            }
            RootfsSource::Stdin => f.write_str("(standard input)"),
        }
    }
}

enum Sink {
    Tar(SortedTarSink, PathBuf),
    Mem(MemorySink, PathBuf),
}

impl Sink {
    fn as_dyn(&mut self) -> &mut dyn EntrySink {
        match self {
            Sink::Tar(sink, _) => sink,
            Sink::Mem(sink, _) => sink,
        }
    }

    fn path(&self) -> &Path {
        match self {
            Sink::Tar(_, path) | Sink::Mem(_, path) => path,
        }
    }
}

fn create_work_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} in the work directory (set MKIMG_WORKDIR to a writable directory with room)",
                path.display()
            )
        })
}

/// What the one pass takes besides the plan and the source.
pub struct PassInputs<'a> {
    /// SOURCE_DATE_EPOCH: the mtime of every file mkimg writes.
    pub epoch: i64,
    /// Where the per-partition outputs go.
    pub workdir: &'a Path,
    /// What to keep for the boot stages (`bootloader::detect`).
    pub captures: Captures,
    /// Files of the tarball changed as they stream ([`Edits::rewrites`]).
    pub rewrites: BTreeMap<String, Rewrite>,
    /// The subtree of the root filesystem to write into a directory as
    /// well (`rootfs::tree`: the `--grub mkconfig` tree).
    pub tree: Option<&'a TreeSpec>,
    /// The `--verify-repro` test hook ([`Edits::perturb`]): `None` but in
    /// that hook's second build.
    pub perturb: Option<&'a str>,
}

/// Stream the rootfs `source` once into per-partition outputs under
/// `inputs.workdir`, keeping the captures and, with a tree spec, that
/// subtree in a directory (see [`PassInputs`]).
pub fn ingest_rootfs(
    plan: &Plan,
    source: &RootfsSource,
    inputs: PassInputs<'_>,
) -> Result<RootfsContents> {
    let PassInputs {
        epoch,
        workdir,
        captures,
        rewrites,
        tree,
        perturb,
    } = inputs;
    let mut edits = plan_edits(plan, epoch)?;
    edits.rewrites = rewrites;
    edits.perturb = perturb.map(str::to_string);
    let mut sinks: BTreeMap<String, (String, Sink, Budget)> = BTreeMap::new();
    for part in &plan.layout.partitions {
        let Some(mount) = &part.mount else { continue };
        let (sink, budget) = match &part.filesystem {
            PlannedFs::Ext4 { .. } => {
                let path = workdir.join(format!("{}.tar", part.name));
                let spool_path = workdir.join(format!("{}.spool", part.name));
                let spool = create_work_file(&spool_path)?;
                let sink = Sink::Tar(SortedTarSink::new(spool, spool_path, path.clone()), path);
                (sink, Budget::ext4(&part.name, part.size))
            }
            PlannedFs::Vfat { .. } => {
                let path = workdir.join(format!("{}.spill", part.name));
                let sink = MemorySink::new(MemPolicy::Vfat).with_spill(create_work_file(&path)?);
                (Sink::Mem(sink, path), Budget::vfat(&part.name, part.size))
            }
            PlannedFs::Raw { .. } | PlannedFs::None => bail!(
                "partition {} '{}' is mounted at {} but has no filesystem mkimg can fill \
                 (set filesystem = \"ext4\" or \"vfat\", or drop mount)",
                part.number,
                part.name,
                mount.path
            ),
        };
        sinks.insert(part.name.clone(), (mount.path.clone(), sink, budget));
    }
    let root_name = plan
        .root_partition()
        .map(|p| p.name.clone())
        .context("no partition is mounted at / (set mount = \"/\" on the root partition)")?;
    let (_, mut root_sink, root_budget) = sinks.remove(&root_name).expect("root sink exists");

    let (input, producer) = source.open()?;
    let mut hashing = HashingReader {
        inner: input,
        hasher: BackgroundHasher::new(),
        head: Vec::new(),
    };
    let mut work_files: BTreeMap<String, PathBuf> = sinks
        .values()
        .map(|(mount, sink, _)| (mount.clone(), sink.path().to_path_buf()))
        .collect();
    work_files.insert("/".to_string(), root_sink.path().to_path_buf());
    let captured_tree;
    let summary = {
        let mut tee = None;
        let root: &mut dyn EntrySink = match tree {
            Some(spec) => {
                tee.insert(TreeTee::new(root_sink.as_dyn(), spec).with_context(|| {
                    format!("creating the mkconfig tree {}", spec.dir.display())
                })?)
            }
            None => root_sink.as_dyn(),
        };
        let split = sinks
            .iter_mut()
            .map(|(_, (mount, sink, budget))| SplitTarget {
                mount_point: mount.clone(),
                sink: sink.as_dyn(),
                budget: Some(budget.clone()),
            })
            .collect();
        let job = RootfsJob {
            edits: &edits,
            root,
            root_budget: Some(root_budget),
            split,
            captures,
        };
        let result = process_rootfs(&mut hashing, job);
        captured_tree = tee.map(TreeTee::into_captured);
        match result {
            Ok(summary) => summary,
            Err(err) => {
                let err = explain(err, source, &hashing.head, &work_files);
                // A directory's producer stopped first (an unreadable or
                // changed file): its error is the cause, not the short tar.
                drop(hashing);
                if let Some(producer) = producer {
                    producer
                        .join()
                        .with_context(|| format!("reading rootfs directory {source}"))?;
                }
                return Err(err);
            }
        }
    };
    // Hash any trailing bytes the tar reader did not need (padding).
    io::copy(&mut hashing, &mut io::sink())?;
    if let Some(producer) = producer {
        producer
            .join()
            .with_context(|| format!("reading rootfs directory {source}"))?;
    }
    let sha256 = hashing.hasher.finish();

    check_arch(plan, &summary.captures)?;

    let mut contents = RootfsContents {
        tars: BTreeMap::new(),
        files: BTreeMap::new(),
        captures: summary.captures.clone(),
        summary,
        sha256,
        tree: captured_tree,
    };
    let finished = sinks
        .into_iter()
        .map(|(name, (_, sink, _))| (name, sink))
        .chain([(root_name, root_sink)]);
    for (name, sink) in finished {
        match sink {
            Sink::Tar(sink, _) => {
                // Canonical order (sorted_tar.rs); a throw-away file read
                // back in seconds: flushed, not fsynced.
                let (path, xattrs) = sink
                    .write_tar()
                    .with_context(|| format!("writing the work tar of partition '{name}'"))?;
                contents.tars.insert(name, (path, xattrs));
            }
            Sink::Mem(sink, _) => {
                contents.files.insert(name, sink.into_entries());
            }
        }
    }
    Ok(contents)
}

/// Reads `source` once for `captures` only (`mkimg plan --rootfs`): no
/// sinks, no budgets, no edits, nothing written. Checks the rootfs's
/// architecture against the plan like a build does.
pub fn capture_rootfs(
    plan: &Plan,
    source: &RootfsSource,
    captures: Captures,
) -> Result<CaptureResults> {
    struct Discard;
    impl EntrySink for Discard {
        fn write_entry(
            &mut self,
            _: &crate::rootfs::Entry,
            _: &mut dyn Read,
        ) -> Result<(), SinkError> {
            Ok(())
        }
        fn finish(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }
    let edits = Edits::new(0);
    let mut discard = Discard;
    let (mut input, producer) = source.open()?;
    let job = RootfsJob {
        edits: &edits,
        root: &mut discard,
        root_budget: None,
        split: Vec::new(),
        captures,
    };
    let result = process_rootfs(&mut input, job);
    drop(input);
    if let Some(producer) = producer {
        producer
            .join()
            .with_context(|| format!("reading rootfs directory {source}"))?;
    }
    let summary = result.map_err(|err| explain(err, source, &[], &BTreeMap::new()))?;
    check_arch(plan, &summary.captures)?;
    Ok(summary.captures)
}

/// The rootfs stage's error with the context that fits it: "truncated or
/// corrupt?" only for the archive's own bytes, the work file and a hint
/// for a write that failed (a full disk), the source for everything else.
fn explain(
    err: RootfsError,
    source: &RootfsSource,
    head: &[u8],
    work_files: &BTreeMap<String, PathBuf>,
) -> anyhow::Error {
    if err.is_format_error() {
        let kind = match detect_compression(head) {
            Ok(Compression::Zstd) => "zstd",
            Ok(Compression::Gzip) => "gzip",
            Ok(Compression::Xz) => "xz",
            _ => "plain tar",
        };
        return anyhow::Error::new(err).context(format!(
            "reading rootfs {source} ({kind}; truncated or corrupt?)"
        ));
    }
    if let RootfsError::Sink {
        output,
        source: SinkError::Io(io_err),
        ..
    } = &err
    {
        let file = work_files.get(output).map_or_else(
            || "the work directory".to_string(),
            |p| p.display().to_string(),
        );
        let why = match io_err.raw_os_error() {
            Some(28) => "the file system holding the work directory is full (no space left on device); free space there or set MKIMG_WORKDIR to a directory with more room",
            Some(13) | Some(30) => "the work directory is not writable; set MKIMG_WORKDIR to a writable directory",
            _ => "the work directory could not be written",
        };
        let msg = format!("writing {file} (the contents of {output}): {why}");
        return anyhow::Error::new(err).context(msg);
    }
    anyhow::Error::new(err).context(format!("reading rootfs {source}"))
}

/// The edits a plan implies.
fn plan_edits(plan: &Plan, epoch: i64) -> Result<Edits> {
    let mut edits = Edits::new(u64::try_from(epoch).unwrap_or(0));
    edits.remove = plan.edits.remove.clone();
    if plan.boot.loader == BootLoader::Extlinux {
        // The build writes its own after the pass; a stale one must not
        // land beside it in the tar.
        edits.remove.push(EXTLINUX_STALE.to_string());
    }
    edits.replace_file("/etc/fstab", render_fstab(plan));
    edits.replace_file("/etc/hostname", format!("{}\n", plan.board.hostname));
    edits.set_hostname(&plan.board.hostname);
    if let Some(dir) = &plan.edits.overlay {
        edits.overlay =
            scan_overlay(dir).with_context(|| format!("reading overlay {}", dir.display()))?;
    }
    Ok(edits)
}

/// Refuse a rootfs of another architecture, naming both.
fn check_arch(plan: &Plan, captures: &CaptureResults) -> Result<()> {
    let Some(head) = captures.elf_heads.first() else {
        bail!("the rootfs has no ELF program under /usr/bin, /bin or /usr/lib: is it a root filesystem?");
    };
    let info = detect_elf(&head.head).with_context(|| {
        format!(
            "reading the ELF header of /{}",
            head.path.trim_start_matches('/')
        )
    })?;
    check_rootfs_arch(plan.board.arch, &info, &head.path)
        .with_context(|| format!("rootfs does not match board {}", plan.board.name))?;
    Ok(())
}

/// Hashes what it reads and keeps the first bytes (to name the format in
/// messages without reading the input twice: it may be a stream).
struct HashingReader<R> {
    inner: R,
    hasher: BackgroundHasher,
    head: Vec<u8>,
}

const HEAD_BYTES: usize = 16;

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        let want = HEAD_BYTES.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..want]);
        Ok(n)
    }
}
