//! The rootfs tarball as ONE stream: decompress, check, edit, split, emit.
//!
//! ```text
//! (--rootfs DIR: dir_source walks it ──tar stream in a pipe──▶)
//! impl Read ──decompress──▶ tar stream ──reader──▶ RawMember ──member──▶ Entry
//!     ──pass (edits, removals, split by mount point, hard link/parent checks,
//!             mtime clamp, captures)──▶ EntrySink per partition
//!                                        ├─ TarSink    → PAX tar for `mke2fs -d` + xattr list
//!                                        └─ MemorySink → vfat files: small ones in memory,
//!                                                        large ones in a sparse spill file
//! ```
//!
//! With `--grub mkconfig`, a [`TreeTee`] stands in front of the root sink
//! and also writes the subtree grub-mkconfig reads into a directory of the
//! work dir (`tree.rs`).
//!
//! Every output may carry a [`Budget`] (its partition's bytes and inodes);
//! an entry that would overrun it is refused from its header, before any
//! sink sees it.
//!
//! Owns: everything between the tarball bytes and the per-partition sinks.
//! Must not: unpack onto the host, write any host file (it only writes the
//! sinks it is given), spawn processes, read the clock, or follow a symlink
//! of the rootfs. Reads host files only for the overlay (`scan_overlay`,
//! and the overlay files' bytes during the pass) and for a directory
//! rootfs (`dir_source`, on its own thread, never following a symlink).
//! Memory: file data streams through; only `/etc/hosts` (≤ 1 MiB), the
//! files of [`Edits::rewrites`] (each within its limit), captures, `MemorySink`'s small files (< 1 MiB each) and a path → type
//! map of the entries are held.

mod budget;
mod capture;
mod decompress;
pub mod dir_source;
mod edits;
mod entry;
mod error;
pub mod fstab;
pub mod ingest;
mod member;
mod pass;
mod reader;
mod sink;
mod sorted_tar;
mod sparse_file;
mod stats;
mod tar_sink;
mod tree;

#[cfg(test)]
mod tests;

use std::io::Read;

pub use budget::Budget;

use crate::host::interrupt;

pub use capture::{CaptureResults, Captured, Captures, DirChild, ElfHead};
pub use decompress::{detect_compression, Compression};
pub use edits::{
    render_hosts, scan_overlay, Edits, OverlayEntry, OverlayKind, Rewrite, RewriteFn,
    DEFAULT_REMOVALS,
};
pub use entry::{normalise_path, Entry, EntryKind, NodeType, Xattr};
pub use error::{RootfsError, SinkError};
pub use sink::{EntrySink, MemEntry, MemKind, MemPolicy, MemorySink, Spilled, SPILL_MIN};
pub use sorted_tar::SortedTarSink;
pub use sparse_file::SparseFile;
pub use stats::OutputStats;
pub use tar_sink::{append_files, AddedFile, TarSink, XattrRecord};
pub use tree::{CapturedTree, TreeSpec, TreeStats, TreeTee};

/// One partition other than the root, and where its entries go.
pub struct SplitTarget<'s> {
    /// Where the partition is mounted in the rootfs, e.g. "/boot/efi".
    pub mount_point: String,
    pub sink: &'s mut dyn EntrySink,
    /// What the partition can hold; `None` for no limit.
    pub budget: Option<Budget>,
}

pub struct RootfsJob<'s> {
    pub edits: &'s Edits,
    /// Receives everything not under a split mount point (mount points
    /// themselves included, as directories).
    pub root: &'s mut dyn EntrySink,
    /// What the root partition can hold; `None` for no limit.
    pub root_budget: Option<Budget>,
    /// The deepest mount point containing an entry wins.
    pub split: Vec<SplitTarget<'s>>,
    pub captures: Captures,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsSummary {
    pub compression: Compression,
    /// Members read from the tarball (after folding extension headers).
    pub members: u64,
    /// Size of the decompressed tar stream.
    pub tar_bytes: u64,
    /// Rootfs paths dropped by the removal list.
    pub removed: Vec<String>,
    /// The root output first, then the split outputs in job order.
    pub outputs: Vec<OutputStats>,
    pub captures: CaptureResults,
}

/// `12920 entries, 368 MiB of files (zstd-compressed)`: the build's
/// rootfs line; the compression only when there is one.
impl std::fmt::Display for RootfsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries, {} MiB of files",
            self.entries(),
            self.file_bytes() >> 20
        )?;
        match self.compression.describe() {
            Some(how) => write!(f, " ({how})"),
            None => Ok(()),
        }
    }
}

impl RootfsSummary {
    /// Entries written to all outputs.
    pub fn entries(&self) -> u64 {
        self.outputs.iter().map(|o| o.entries).sum()
    }

    /// Regular file bytes written to all outputs.
    pub fn file_bytes(&self) -> u64 {
        self.outputs.iter().map(|o| o.file_bytes).sum()
    }
}

/// Reads the whole tarball once and feeds every partition's sink.
pub fn process_rootfs<R: Read>(input: R, job: RootfsJob<'_>) -> Result<RootfsSummary, RootfsError> {
    let (compression, stream) = decompress::open_tar_stream(input)?;
    let mut walker = reader::TarWalker::new(stream);
    let mut pass = pass::Pass::new(job)?;
    let mut members = 0;
    while let Some(member) = walker.next_member()? {
        members += 1;
        pass.process_member(&member, &mut walker)?;
        interrupt::pause_at("rootfs-pass");
        interrupt::check()?;
    }
    walker.drain()?;
    if members == 0 {
        return Err(RootfsError::NoEntries);
    }
    let tar_bytes = walker.offset();
    let (outputs, removed, captures) = pass.finish(members, tar_bytes)?;
    Ok(RootfsSummary {
        compression,
        members,
        tar_bytes,
        removed,
        outputs,
        captures: captures.results,
    })
}
