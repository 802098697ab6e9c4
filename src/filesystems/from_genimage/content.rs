//! The tree one image holds (see the module doc of `from_genimage` for
//! genimage's rules), streamed once through the rootfs pass into a sink:
//! a tar for mke2fs, or memory for the vfat writer.
//!
//! In: the image, the environment, a sink and the image's size (the limit
//! the pass enforces entry by entry, before a sink sees the entry). Out:
//! the sink's entries and the statistics of what it received.
//! Reads the root path or a directory of the input path; writes only the
//! sink.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::inputs::{resolve_contained, Input};
use super::{describe, epoch_u64, locate, FsEnv};
use crate::genimage::{Config, Image};
use crate::rootfs::dir_source::{spawn_dir_stream, OwnerMap};
use crate::rootfs::{
    normalise_path, process_rootfs, Budget, Captures, Edits, Entry, EntryKind, EntrySink,
    OutputStats, RootfsError, RootfsJob, SinkError, SplitTarget,
};

/// Takes entries and keeps nothing: the outputs of other images.
struct Discard;

impl EntrySink for Discard {
    fn write_entry(&mut self, _: &Entry, _: &mut dyn Read) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Passes entries on and notes whether the directory `wanted` (a path from
/// the tree's root) went by while the tree was read, so a mount point
/// missing from the tree is found (the pass adds missing mount points as
/// directories after the tree's end).
struct Watch<'a> {
    inner: &'a mut dyn EntrySink,
    /// This output's mount point ("" for the root).
    prefix: String,
    wanted: Option<String>,
    seen: &'a Cell<bool>,
    ended: &'a Cell<bool>,
}

/// A reader that notes when its input has ended.
struct NoteEnd<'a, R> {
    inner: R,
    ended: &'a Cell<bool>,
}

impl<R: Read> Read for NoteEnd<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        Ok(n)
    }
}

impl EntrySink for Watch<'_> {
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        if let Some(wanted) = &self.wanted {
            let full = match (self.prefix.as_str(), entry.path.as_str()) {
                ("", p) => p.to_owned(),
                (m, "") => m.to_owned(),
                (m, p) => format!("{m}/{p}"),
            };
            if &full == wanted && entry.kind == EntryKind::Dir && !self.ended.get() {
                self.seen.set(true);
            }
        }
        self.inner.write_entry(entry, data)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()
    }
}

/// A tree to read: a directory or a tarball.
enum Tree<'p> {
    Dir(&'p Path),
    Tarball(&'p Path),
}

/// The mount points of every image of the config, normalised ("boot/efi"),
/// without duplicates; "/" counts as none.
pub fn mount_points(config: &Config) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for image in &config.images {
        if let Some(m) = mount_of(image)? {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// One image's mount point, normalised; `None` for none or "/".
pub fn mount_of(image: &Image) -> Result<Option<String>> {
    let Some(m) = &image.mountpoint else {
        return Ok(None);
    };
    let norm = normalise_path(&m.value).with_context(|| {
        format!(
            "{}: {}: mountpoint '{}' has a '..' component",
            m.at,
            describe(image),
            m.value
        )
    })?;
    Ok(Some(norm).filter(|n| !n.is_empty()))
}

/// A limit of `size` bytes on everything routed to the image: the pass
/// stops at the first entry that cannot fit. The bound is the size itself
/// (no filesystem overhead taken off), so nothing the filesystem tool
/// would accept is refused here; mke2fs and the vfat writer check exactly.
pub fn size_limit(image: &Image, size: u64) -> Budget {
    Budget::vfat(&locate(image), size)
}

/// An entry past the image's size, said in genimage's terms (the pass
/// speaks of partitions and board.toml).
fn explain_overrun(image: &Image, err: anyhow::Error) -> anyhow::Error {
    let Some(RootfsError::OverBudget {
        size,
        path,
        needed,
        left,
        ..
    }) = err.chain().find_map(|e| e.downcast_ref::<RootfsError>())
    else {
        return err;
    };
    let at = image
        .size
        .as_ref()
        .map_or_else(|| image.file.at.to_string(), |s| s.at.to_string());
    anyhow::anyhow!(
        "{at}: {}: its content does not fit in size {size} bytes: {path} needs {needed} bytes, only {left} are left; grow size",
        describe(image)
    )
}

/// Streams what `image` holds into `sink`; the statistics of its output.
pub fn stream_image_tree(
    image: &Image,
    env: &FsEnv<'_>,
    sink: &mut dyn EntrySink,
    limit: Budget,
) -> Result<OutputStats> {
    stream_tree_inner(image, env, sink, limit).map_err(|e| explain_overrun(image, e))
}

/// As [`stream_dir`], with an overrun said for `image`.
pub fn stream_dir_for(
    image: &Image,
    dir: &Path,
    env: &FsEnv<'_>,
    sink: &mut dyn EntrySink,
    limit: Budget,
) -> Result<OutputStats> {
    stream_dir(dir, env, sink, limit).map_err(|e| explain_overrun(image, e))
}

fn stream_tree_inner(
    image: &Image,
    env: &FsEnv<'_>,
    sink: &mut dyn EntrySink,
    limit: Budget,
) -> Result<OutputStats> {
    if let Some(src) = &image.srcpath {
        let dir = match resolve_contained(&src.value, env.inputpath)
            .with_context(|| format!("{}: srcpath '{}'", src.at, src.value))?
        {
            Input::Dir(dir) => dir,
            _ => bail!("{}: srcpath '{}' is not a directory", src.at, src.value),
        };
        return stream_dir(&dir, env, sink, limit);
    }
    let Some(root) = env.rootpath else {
        bail!(
            "{}: {} takes its content from the root path, but none was given (--rootpath DIR or a rootfs tarball; or set empty = true)",
            image.file.at,
            describe(image)
        );
    };
    let tree = if root.is_dir() {
        Tree::Dir(root)
    } else {
        Tree::Tarball(root)
    };
    let mine = mount_of(image)?;
    let mounts = mount_points(env.config)?;
    let edits = no_edits(env);
    let seen = Cell::new(false);
    let ended = Cell::new(false);
    let mut sink = Some(sink);
    let mut limit = Some(limit);
    let mut discards: Vec<Discard> = mounts.iter().map(|_| Discard).collect();
    let mut root_discard = Discard;
    let mut watches: Vec<Watch<'_>> = Vec::new();
    let root_watch = Watch {
        inner: match mine {
            None => sink.take().context("one sink")?,
            Some(_) => &mut root_discard,
        },
        prefix: String::new(),
        wanted: mine.clone(),
        seen: &seen,
        ended: &ended,
    };
    let root_limit = if mine.is_none() { limit.take() } else { None };
    for (m, discard) in mounts.iter().zip(discards.iter_mut()) {
        let ours = mine.as_deref() == Some(m.as_str());
        watches.push(Watch {
            inner: if ours {
                sink.take().context("one sink")?
            } else {
                discard
            },
            prefix: m.clone(),
            wanted: mine.clone(),
            seen: &seen,
            ended: &ended,
        });
    }
    let ours_index = mine
        .as_deref()
        .and_then(|m| mounts.iter().position(|x| x == m));
    let mut root_watch = root_watch;
    let split: Vec<SplitTarget<'_>> = mounts
        .iter()
        .zip(watches.iter_mut())
        .enumerate()
        .map(|(i, (m, w))| SplitTarget {
            mount_point: format!("/{m}"),
            sink: w,
            budget: if Some(i) == ours_index {
                limit.take()
            } else {
                None
            },
        })
        .collect();
    let stats = run_pass(&tree, &edits, &ended, &mut root_watch, root_limit, split)?;
    if let Some(m) = &mine {
        if !seen.get() {
            bail!(
                "{}: {}: mountpoint '/{m}' is not a directory of the root tree {} (genimage fails here too)",
                image
                    .mountpoint
                    .as_ref()
                    .map_or_else(|| image.file.at.to_string(), |l| l.at.to_string()),
                describe(image),
                root.display()
            );
        }
    }
    let index = ours_index.map_or(0, |i| i + 1);
    stats
        .into_iter()
        .nth(index)
        .context("the pass reported no statistics for the image")
}

/// Streams the directory `dir` (inside the input path) into `sink`.
fn stream_dir(
    dir: &Path,
    env: &FsEnv<'_>,
    sink: &mut dyn EntrySink,
    limit: Budget,
) -> Result<OutputStats> {
    let edits = no_edits(env);
    let ended = Cell::new(false);
    run_pass(
        &Tree::Dir(dir),
        &edits,
        &ended,
        sink,
        Some(limit),
        Vec::new(),
    )?
    .into_iter()
    .next()
    .context("the pass reported no statistics")
}

/// No replacements, no removals: only the mtime clamp.
fn no_edits(env: &FsEnv<'_>) -> Edits {
    let mut edits = Edits::new(epoch_u64(env));
    edits.remove.clear();
    edits
}

/// One pass over `tree`, capturing nothing.
fn run_pass<'s>(
    tree: &Tree<'_>,
    edits: &'s Edits,
    ended: &Cell<bool>,
    root: &'s mut dyn EntrySink,
    root_budget: Option<Budget>,
    split: Vec<SplitTarget<'s>>,
) -> Result<Vec<OutputStats>> {
    let captures = Captures {
        elf_dirs: Vec::new(),
        elf_count: 0,
        ..Captures::default()
    };
    let job = RootfsJob {
        edits,
        root,
        root_budget,
        split,
        captures,
    };
    match tree {
        Tree::Tarball(path) => {
            let file = File::open(path)
                .with_context(|| format!("opening root tarball {}", path.display()))?;
            let input = NoteEnd { inner: file, ended };
            let summary = process_rootfs(input, job)
                .with_context(|| format!("reading root tarball {}", path.display()))?;
            Ok(summary.outputs)
        }
        Tree::Dir(path) => {
            let (reader, producer) = spawn_dir_stream(path, OwnerMap::Keep)?;
            let mut reader = NoteEnd {
                inner: reader,
                ended,
            };
            let result = process_rootfs(&mut reader, job);
            let result = match result {
                Ok(summary) => {
                    // The padding after the end-of-archive blocks.
                    io::copy(&mut reader, &mut io::sink())?;
                    Ok(summary)
                }
                Err(err) => Err(err),
            };
            drop(reader);
            // The producer's error (an unreadable or changed file) is the
            // cause when there is one, not the short tar that follows.
            producer
                .join()
                .with_context(|| format!("reading directory {}", path.display()))?;
            let summary =
                result.with_context(|| format!("reading directory {}", path.display()))?;
            Ok(summary.outputs)
        }
    }
}
