//! Plan → one pass over the rootfs tarball.
//!
//! Sets up a sink per partition that has a mount point (ext4: a PAX tar file
//! in the work directory for `mke2fs -d`; vfat: files in memory), the edits
//! the plan implies (fstab, hostname, hosts, removals, overlay), and the
//! captures later stages need (the /boot listing, /etc/default/grub,
//! os-release, the EFI files the board copies into the ESP, `rootfs:` blobs,
//! ELF headers for the architecture check). Hashes the tarball as it streams, so it is read
//! exactly once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::board::schema::BootLoader;
use crate::elf::{check_rootfs_arch, detect_elf};
use crate::plan::{BlobSource, Plan, PlannedFs};
use crate::rootfs::fstab::render_fstab;
use crate::rootfs::{
    detect_compression, process_rootfs, scan_overlay, CaptureResults, Captures, Compression, Edits,
    EntrySink, MemEntry, MemPolicy, MemorySink, RootfsJob, RootfsSummary, SplitTarget, TarSink,
    XattrRecord,
};

/// Files whose content the build needs after the pass.
pub const DEFAULT_GRUB: &str = "/etc/default/grub";
pub const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
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
}

enum Sink {
    Tar(TarSink<BufWriter<File>>, PathBuf),
    Mem(MemorySink),
}

impl Sink {
    fn as_dyn(&mut self) -> &mut dyn EntrySink {
        match self {
            Sink::Tar(sink, _) => sink,
            Sink::Mem(sink) => sink,
        }
    }
}

/// Stream `tarball` once into per-partition outputs under `workdir`.
pub fn ingest_rootfs(
    plan: &Plan,
    tarball: &Path,
    epoch: i64,
    workdir: &Path,
) -> Result<RootfsContents> {
    let edits = plan_edits(plan, epoch)?;
    let mut sinks: BTreeMap<String, (String, Sink)> = BTreeMap::new();
    for part in &plan.layout.partitions {
        let Some(mount) = &part.mount else { continue };
        let sink = match &part.filesystem {
            PlannedFs::Ext4 { .. } => {
                let path = workdir.join(format!("{}.tar", part.name));
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                Sink::Tar(TarSink::new(BufWriter::with_capacity(1 << 20, file)), path)
            }
            PlannedFs::Vfat { .. } => Sink::Mem(MemorySink::new(MemPolicy::Vfat)),
            PlannedFs::Raw { .. } | PlannedFs::None => bail!(
                "partition {} '{}' is mounted at {} but has no filesystem mkimg can fill \
                 (set filesystem = \"ext4\" or \"vfat\", or drop mount)",
                part.number,
                part.name,
                mount.path
            ),
        };
        sinks.insert(part.name.clone(), (mount.path.clone(), sink));
    }
    let root_name = plan
        .root_partition()
        .map(|p| p.name.clone())
        .context("no partition is mounted at / (set mount = \"/\" on the root partition)")?;
    let (_, mut root_sink) = sinks.remove(&root_name).expect("root sink exists");

    let mut captures = Captures {
        files: vec![DEFAULT_GRUB.to_string()],
        dirs: vec!["/boot".to_string()],
        elf_dirs: vec![
            "/usr/bin".to_string(),
            "/bin".to_string(),
            "/usr/lib".to_string(),
        ],
        elf_count: 3,
        max_file_bytes: 64 << 20,
    };
    captures
        .files
        .extend(OS_RELEASE.iter().map(|s| s.to_string()));
    captures
        .files
        .extend(plan.boot.efi_files.iter().map(|(from, _)| from.clone()));
    // Blobs the board takes from the rootfs (`rootfs:/usr/lib/u-boot/…`).
    captures
        .files
        .extend(plan.layout.blobs.iter().filter_map(|b| match &b.source {
            BlobSource::Rootfs(path) => Some(path.clone()),
            BlobSource::File(_) => None,
        }));

    let compression = sniff_compression(tarball)?;
    let file =
        File::open(tarball).with_context(|| format!("opening rootfs {}", tarball.display()))?;
    let mut hashing = HashingReader {
        inner: file,
        hasher: Sha256::new(),
    };
    let summary = {
        let split = sinks
            .iter_mut()
            .map(|(_, (mount, sink))| SplitTarget {
                mount_point: mount.clone(),
                sink: sink.as_dyn(),
            })
            .collect();
        let job = RootfsJob {
            edits: &edits,
            root: root_sink.as_dyn(),
            split,
            captures,
        };
        process_rootfs(&mut hashing, job).with_context(|| {
            format!(
                "reading rootfs {} ({compression}; truncated or corrupt?)",
                tarball.display()
            )
        })?
    };
    // Hash any trailing bytes the tar reader did not need (padding).
    io::copy(&mut hashing, &mut io::sink())?;
    let sha256 = hex(&hashing.hasher.finalize());

    check_arch(plan, &summary.captures)?;

    let mut contents = RootfsContents {
        tars: BTreeMap::new(),
        files: BTreeMap::new(),
        captures: summary.captures.clone(),
        summary,
        sha256,
    };
    sinks.insert(root_name, ("/".to_string(), root_sink));
    for (name, (_, sink)) in sinks {
        match sink {
            Sink::Tar(sink, path) => {
                let (writer, xattrs) = sink.into_parts();
                // A throw-away file read back in seconds: flushed, not fsynced,
                // so it can die in the page cache without ever reaching disk.
                writer.into_inner().map_err(|e| e.into_error())?;
                contents.tars.insert(name, (path, xattrs));
            }
            Sink::Mem(sink) => {
                contents.files.insert(name, sink.into_entries());
            }
        }
    }
    Ok(contents)
}

/// "zstd", "gzip", "xz" or "plain tar", for messages.
fn sniff_compression(tarball: &Path) -> Result<String> {
    let mut head = Vec::with_capacity(16);
    File::open(tarball)
        .with_context(|| format!("opening rootfs {}", tarball.display()))?
        .take(16)
        .read_to_end(&mut head)?;
    Ok(match detect_compression(&head) {
        Ok(Compression::Zstd) => "zstd",
        Ok(Compression::Gzip) => "gzip",
        Ok(Compression::Xz) => "xz",
        _ => "plain tar",
    }
    .to_string())
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

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
