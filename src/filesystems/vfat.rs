//! FAT12/16/32 images (the EFI System Partition and other vfat partitions),
//! written without mounting anything.
//!
//! Owns: turning a list of directories and files into a complete,
//! `fsck.fat -n`-clean FAT volume on a device of exact size, and reading such
//! a volume back. The FAT engine is lamfat (a republish of rust-fatfs 0.4);
//! this module adds the policy around it: FAT type choice, canonical order,
//! fixed time stamps, name checks and space accounting with readable errors.
//!
//! Must not: open paths, read the clock, spawn processes (this kernel cannot
//! mount vfat, and a reproducible image must not depend on the host).
//!
//! In: a `Read + Write + Seek` device (a fresh zero-filled region, e.g. a new
//! sparse file: like mkfs.fat this is a quick format, so free clusters keep
//! whatever the device held), its size, `VfatOptions`, `[VfatEntry]`.
//! Out: the volume bytes; `read_vfat_tree` / `read_vfat_info` for tests and
//! `mkimg inspect`.
//!
//! Reproducibility: entries are created in canonical order (parents first,
//! siblings by case-folded name), every time stamp is `timestamp` (UTC), and
//! the volume id is a parameter, so equal inputs give identical bytes.

mod clock;
mod read;
mod tree;
mod volume;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fscommon::{BufStream, StreamSlice};
use lamfat::{FileSystem, FsOptions, StdIoWrapper};

use self::clock::{FatTimestamp, FixedClock};
pub use self::read::{read_vfat_info, read_vfat_tree};
use self::tree::{Contents, PlannedKind, PlannedNode};

#[cfg(test)]
mod tests;

/// Which FAT variant to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// FAT12 below 4200 KiB, FAT16 below 512 MiB, FAT32 from 512 MiB on.
    Auto,
    Fat12,
    Fat16,
    Fat32,
}

impl fmt::Display for FatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FatType::Auto => "auto FAT type",
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        })
    }
}

/// Volume-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfatOptions {
    /// At most 11 ASCII characters, stored upper-cased; empty for none.
    pub label: String,
    /// The serial shown as XXXX-XXXX (e.g. 0x00455350 → 0045-5350).
    pub volume_id: u32,
    pub fat_type: FatType,
    /// Unix seconds (SOURCE_DATE_EPOCH) used for every time stamp, as UTC,
    /// clamped to 1980..2107.
    pub timestamp: i64,
}

/// One thing to put on the volume. Paths are relative and '/'-separated;
/// parent directories are created implicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VfatEntry {
    Dir {
        path: String,
    },
    File {
        path: String,
        data: Vec<u8>,
    },
    /// A file whose bytes stay in an open file and are copied in chunks,
    /// so a large file never sits in memory.
    Slice {
        path: String,
        data: FileSlice,
    },
}

impl VfatEntry {
    pub fn path(&self) -> &str {
        match self {
            VfatEntry::Dir { path }
            | VfatEntry::File { path, .. }
            | VfatEntry::Slice { path, .. } => path,
        }
    }
}

/// `len` bytes at `offset` of a file the caller opened (e.g. the spill
/// file the rootfs pass wrote large ESP files to).
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl PartialEq for FileSlice {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileSlice {}

/// Chunk size for copying a [`FileSlice`] into the volume.
const COPY_CHUNK: usize = 1 << 20;

/// What the boot sector and FAT of an existing volume say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfatInfo {
    pub fat_type: FatType,
    pub volume_id: u32,
    /// Boot sector label, trailing spaces removed.
    pub label: String,
    /// Label from the root directory's volume entry, if any.
    pub root_label: Option<String>,
    pub cluster_size: u32,
    pub total_clusters: u32,
    pub free_clusters: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum VfatError {
    #[error("volume label {label:?} is invalid: {reason}")]
    InvalidLabel { label: String, reason: String },
    #[error("volume size {size} bytes is not a whole number of 512-byte sectors")]
    UnalignedSize { size: u64 },
    #[error("a volume of {size} bytes cannot be {fat_type}: {fat_type} needs {min}..={max} bytes")]
    SizeOutOfRange {
        size: u64,
        fat_type: FatType,
        min: u64,
        max: u64,
    },
    #[error("path {path:?} is invalid: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("path {path:?} is given twice")]
    DuplicatePath { path: String },
    #[error("path {path:?} is a file, but {other:?} needs it to be a directory")]
    FileDirClash { path: String, other: String },
    #[error(
        "paths {path:?} and {other:?} name the same FAT entry (FAT names are case-insensitive)"
    )]
    CaseClash { path: String, other: String },
    #[error("file {path:?} is {size} bytes; a FAT file holds at most 4 GiB - 1")]
    FileTooLarge { path: String, size: u64 },
    #[error(
        "not enough space: the files and directories need {needed} bytes but the volume has \
         {available} bytes free ({cluster_size}-byte clusters)"
    )]
    NoSpace {
        needed: u64,
        available: u64,
        cluster_size: u32,
    },
    #[error("the {fat_type} root directory needs {needed} entries but holds only {capacity}")]
    RootDirFull {
        fat_type: FatType,
        needed: u64,
        capacity: u64,
    },
    #[error("{context}")]
    Fat {
        context: String,
        #[source]
        source: lamfat::Error<io::Error>,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn fat_error(context: impl Into<String>) -> impl FnOnce(lamfat::Error<io::Error>) -> VfatError {
    let context = context.into();
    move |source| VfatError::Fat { context, source }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> VfatError {
    let context = context.into();
    move |source| VfatError::Io { context, source }
}

/// Formats `dev` (exactly `size` bytes from offset 0) as a FAT volume holding `entries`.
pub fn format_vfat<D: Read + Write + Seek>(
    mut dev: D,
    size: u64,
    opts: &VfatOptions,
    entries: &[VfatEntry],
) -> Result<(), VfatError> {
    let label = volume::encode_label(&opts.label)?;
    let nodes = tree::plan_tree(entries)?;
    let fat = volume::resolve_fat_type(opts.fat_type, size)?;
    let stamp = FatTimestamp::from_unix(opts.timestamp);

    // Every write goes through a window of exactly `size` bytes.
    let window = StreamSlice::new(&mut dev, 0, size).map_err(io_error("opening the volume"))?;
    let mut buffered = BufStream::new(window);
    let format_options = volume::format_options(size, fat, opts.volume_id, label);
    lamfat::format_volume(&mut StdIoWrapper::new(&mut buffered), format_options)
        .map_err(fat_error(format!("formatting {size} bytes as {fat}")))?;
    if label.is_some() {
        volume::stamp_label_entry(&mut buffered, stamp)
            .map_err(io_error("time-stamping the volume label entry"))?;
    }

    let fs_options = FsOptions::new()
        .time_provider(FixedClock::new(stamp))
        .update_accessed_date(false);
    let fs = FileSystem::new(&mut buffered, fs_options)
        .map_err(fat_error("opening the freshly formatted volume"))?;
    check_space(&fs, &nodes, fat, label.is_some())?;
    write_nodes(&fs, &nodes)?;
    fs.unmount().map_err(fat_error("closing the volume"))?;
    buffered.flush().map_err(io_error("flushing the volume"))?;
    drop(buffered);
    dev.flush().map_err(io_error("flushing the device"))
}

fn write_nodes<IO, TP, OCC>(
    fs: &FileSystem<IO, TP, OCC>,
    nodes: &[PlannedNode<'_>],
) -> Result<(), VfatError>
where
    IO: lamfat::ReadWriteSeek<Error = io::Error>,
    TP: lamfat::TimeProvider,
    OCC: lamfat::OemCpConverter,
{
    let root = fs.root_dir();
    for node in nodes {
        match node.kind {
            PlannedKind::Dir => {
                root.create_dir(&node.path)
                    .map_err(fat_error(format!("creating directory {:?}", node.path)))?;
            }
            PlannedKind::File(contents) => {
                let context = format!("writing file {:?} ({} bytes)", node.path, contents.len());
                let mut file = root
                    .create_file(&node.path)
                    .map_err(fat_error(context.clone()))?;
                match contents {
                    Contents::Bytes(data) => lamfat::Write::write_all(&mut file, data)
                        .map_err(fat_error(context.clone()))?,
                    Contents::Slice(slice) => {
                        let mut buf = vec![0u8; COPY_CHUNK];
                        let mut done = 0;
                        while done < slice.len {
                            let n = (slice.len - done).min(COPY_CHUNK as u64) as usize;
                            slice
                                .file
                                .read_exact_at(&mut buf[..n], slice.offset + done)
                                .map_err(io_error(format!("{context}: reading its contents")))?;
                            lamfat::Write::write_all(&mut file, &buf[..n])
                                .map_err(fat_error(context.clone()))?;
                            done += n as u64;
                        }
                    }
                }
                lamfat::Write::flush(&mut file).map_err(fat_error(context))?;
            }
        }
    }
    Ok(())
}

/// Fails before writing anything if the tree cannot fit, with the numbers.
fn check_space<IO, TP, OCC>(
    fs: &FileSystem<IO, TP, OCC>,
    nodes: &[PlannedNode<'_>],
    fat_type: FatType,
    has_label: bool,
) -> Result<(), VfatError>
where
    IO: lamfat::ReadWriteSeek<Error = io::Error>,
    TP: lamfat::TimeProvider,
    OCC: lamfat::OemCpConverter,
{
    let stats = fs.stats().map_err(fat_error("reading free space"))?;
    let cluster = u64::from(stats.cluster_size());
    let clusters_for = |bytes: u64| bytes.div_ceil(cluster);
    let mut needed_clusters = 0;
    for (dir, entries) in tree::count_dir_entries(nodes) {
        if !dir.is_empty() {
            needed_clusters += clusters_for(entries * tree::DIR_ENTRY_BYTES).max(1);
            continue;
        }
        let root_entries = entries + u64::from(has_label);
        if fat_type == FatType::Fat32 {
            // Format already gave the root its first cluster.
            needed_clusters += clusters_for(root_entries * tree::DIR_ENTRY_BYTES).saturating_sub(1);
        } else if root_entries > u64::from(volume::ROOT_DIR_ENTRIES) {
            return Err(VfatError::RootDirFull {
                fat_type,
                needed: root_entries,
                capacity: u64::from(volume::ROOT_DIR_ENTRIES),
            });
        }
    }
    for node in nodes {
        if let PlannedKind::File(contents) = node.kind {
            needed_clusters += clusters_for(contents.len());
        }
    }
    let free_clusters = u64::from(stats.free_clusters());
    if needed_clusters > free_clusters {
        return Err(VfatError::NoSpace {
            needed: needed_clusters * cluster,
            available: free_clusters * cluster,
            cluster_size: stats.cluster_size(),
        });
    }
    Ok(())
}
