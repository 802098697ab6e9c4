//! A subtree of the root filesystem copied into a directory of the work
//! dir during the one pass: what `--grub mkconfig` runs the distro's
//! grub-mkconfig over (see `bootloader::mkconfig::tree`), instead of the
//! finished ext4 image on a loop device.
//!
//! Owns: [`TreeTee`], an [`EntrySink`] in front of the root partition's
//! sink: every entry goes on to that sink unchanged, and the entries the
//! [`TreeSpec`] selects are also written into a [`TreeDir`] — file data
//! copied while the root sink reads it (no second read, no buffering),
//! directories, symlinks and hard links as they are. What the caller
//! selects, not this file, decides which subtrees are left out and which
//! files keep only their name and size (a sparse file, its content not
//! copied: kernel and initrd images, which grub-mkconfig lists but never
//! reads).
//!
//! The tree sees the entries as the image gets them (after the edits),
//! with their permission bits but not their owners: everything belongs to
//! the sandbox's root ([`TreeSpec::owner`]). Set-id bits, device nodes and
//! FIFOs never reach it (see `host::treedir`, which also guarantees that
//! no symlink of the rootfs is followed and nothing is written outside the
//! directory).
//!
//! Limits: file data is bounded by [`TreeSpec::max_bytes`], checked from
//! each entry's header before its data streams (the root partition's budget
//! has already been charged by the pass).
//!
//! Must not: change what the root sink receives, or read data the root
//! sink does not also get.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::host::treedir::TreeDir;
use crate::rootfs::capture::matches_pattern;
use crate::rootfs::entry::{normalise_path, Entry, EntryKind};
use crate::rootfs::error::SinkError;
use crate::rootfs::sink::EntrySink;

/// What goes into the tree, and where.
#[derive(Debug, Clone)]
pub struct TreeSpec {
    /// The directory to make (its parent exists, it does not).
    pub dir: PathBuf,
    /// Uid and gid of everything in the tree.
    pub owner: (u32, u32),
    /// Rootfs paths ("/usr/lib/modules") whose subtrees stay out.
    pub exclude: Vec<String>,
    /// Files kept as sparse files of their size, by pattern (a component
    /// may hold one `*`, as in `Captures::patterns`: "/boot/vmlinuz-*").
    pub placeholders: Vec<String>,
    /// The most file data the tree may hold.
    pub max_bytes: u64,
}

/// What went into the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Entries written (directories, files, symlinks, hard links).
    pub entries: u64,
    /// Bytes of file data copied.
    pub data_bytes: u64,
    /// Files kept as sparse files of their size, and those sizes together.
    pub placeholders: u64,
    pub placeholder_bytes: u64,
    /// Entries of the root filesystem in left-out subtrees.
    pub left_out: u64,
    /// Device nodes, FIFOs, and hard links whose target was left out.
    pub skipped: u64,
}

impl std::fmt::Display for TreeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries, {:.1} MiB of files, {} file(s) ({:.1} MiB) kept as their size only, \
             {} entries left out",
            self.entries,
            mib(self.data_bytes),
            self.placeholders,
            mib(self.placeholder_bytes),
            self.left_out + self.skipped
        )
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// The tree and what went into it, after the pass.
#[derive(Debug)]
pub struct CapturedTree {
    pub dir: TreeDir,
    pub stats: TreeStats,
}

/// The root partition's sink with the tree beside it.
pub struct TreeTee<'s> {
    inner: &'s mut dyn EntrySink,
    tree: TreeDir,
    /// Normalised, without the leading `/`.
    exclude: Vec<String>,
    placeholders: Vec<Vec<String>>,
    max_bytes: u64,
    stats: TreeStats,
    /// Directories and their mtimes, set at the end (children change them).
    dirs: Vec<(String, u64)>,
}

impl<'s> TreeTee<'s> {
    /// Make the tree's directory; entries then go to `inner` and the tree.
    pub fn new(inner: &'s mut dyn EntrySink, spec: &TreeSpec) -> io::Result<TreeTee<'s>> {
        let tree = TreeDir::create(&spec.dir, spec.owner)?;
        Ok(TreeTee {
            inner,
            tree,
            exclude: spec
                .exclude
                .iter()
                .filter_map(|p| normalise_path(p))
                .collect(),
            placeholders: spec
                .placeholders
                .iter()
                .filter_map(|p| normalise_path(p))
                .map(|p| p.split('/').map(str::to_owned).collect())
                .collect(),
            max_bytes: spec.max_bytes,
            stats: TreeStats::default(),
            dirs: Vec::new(),
        })
    }

    /// The finished tree (after [`EntrySink::finish`]).
    pub fn into_captured(self) -> CapturedTree {
        CapturedTree {
            dir: self.tree,
            stats: self.stats,
        }
    }

    fn left_out(&self, path: &str) -> bool {
        self.exclude.iter().any(|e| {
            path == e
                || path
                    .strip_prefix(e.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    fn is_placeholder(&self, path: &str) -> bool {
        self.placeholders.iter().any(|p| matches_pattern(p, path))
    }

    /// A regular file: its data copied into the tree while `inner` reads it.
    fn tee_file(&mut self, entry: &Entry, size: u64, data: &mut dyn Read) -> Result<(), SinkError> {
        let path = &entry.path;
        if self.is_placeholder(path) {
            let file = self
                .tree
                .create_file(path, entry.mode)
                .map_err(tree_err(path))?;
            file.set_len(size).map_err(tree_err(path))?;
            self.tree
                .finish_file(&file, entry.mtime)
                .map_err(tree_err(path))?;
            self.stats.placeholders += 1;
            self.stats.placeholder_bytes += size;
            self.stats.entries += 1;
            return self.inner.write_entry(entry, data);
        }
        let total = self.stats.data_bytes.saturating_add(size);
        if total > self.max_bytes {
            return Err(SinkError::Io(io::Error::other(format!(
                "the mkconfig tree would hold more than {} MiB of files at /{path} \
                 (use --mkconfig-via mount)",
                self.max_bytes >> 20
            ))));
        }
        let mut file = self
            .tree
            .create_file(path, entry.mode)
            .map_err(tree_err(path))?;
        let mut copying = Copying {
            inner: data,
            out: &mut file,
            path,
        };
        self.inner.write_entry(entry, &mut copying)?;
        // What the root sink left unread still belongs in the tree.
        io::copy(&mut copying, &mut io::sink())?;
        self.tree
            .finish_file(&file, entry.mtime)
            .map_err(tree_err(path))?;
        self.stats.data_bytes = total;
        self.stats.entries += 1;
        Ok(())
    }
}

impl EntrySink for TreeTee<'_> {
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        let path = entry.path.as_str();
        if path.is_empty() {
            return self.inner.write_entry(entry, data);
        }
        if self.left_out(path) {
            self.stats.left_out += 1;
            return self.inner.write_entry(entry, data);
        }
        let written = match &entry.kind {
            EntryKind::File { size } => return self.tee_file(entry, *size, data),
            EntryKind::Dir => {
                self.inner.write_entry(entry, data)?;
                self.dirs.push((path.to_string(), entry.mtime));
                self.tree.make_dir(path, entry.mode).map(|()| true)
            }
            EntryKind::Symlink { target } => {
                self.inner.write_entry(entry, data)?;
                self.tree
                    .symlink(path, target)
                    .and_then(|()| self.tree.set_mtime(path, entry.mtime))
                    .map(|()| true)
            }
            EntryKind::HardLink { target } => {
                self.inner.write_entry(entry, data)?;
                self.tree.hard_link(path, target)
            }
            EntryKind::CharDev { .. } | EntryKind::BlockDev { .. } | EntryKind::Fifo => {
                self.inner.write_entry(entry, data)?;
                Ok(false)
            }
        };
        match written.map_err(tree_err(path))? {
            true => self.stats.entries += 1,
            false => self.stats.skipped += 1,
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()?;
        // Children first: setting a parent's time before would be undone.
        for (path, mtime) in self.dirs.iter().rev() {
            self.tree.set_mtime(path, *mtime).map_err(tree_err(path))?;
        }
        Ok(())
    }
}

/// A tree write failure, naming the tree and the entry.
fn tree_err(path: &str) -> impl Fn(io::Error) -> SinkError + '_ {
    move |err| {
        SinkError::Io(io::Error::new(
            err.kind(),
            format!("writing /{path} into the mkconfig tree: {err}"),
        ))
    }
}

/// Passes data through, writing each chunk into the tree's file.
struct Copying<'a> {
    inner: &'a mut dyn Read,
    out: &'a mut File,
    path: &'a str,
}

impl Read for Copying<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n]).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("writing /{} into the mkconfig tree: {err}", self.path),
            )
        })?;
        Ok(n)
    }
}
