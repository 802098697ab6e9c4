//! The work tar for `mke2fs -d` in canonical order, whatever order the
//! rootfs tarball had: the same tree packed by `tar --sort=name`, by
//! directory order or by `docker export` gives the same ext4 image byte for
//! byte (mke2fs allocates inodes and directory entries in tar order).
//!
//! Owns: [`SortedTarSink`]. While the pass streams, each file's bytes go to
//! a spool file in the work directory (4 KiB-aligned, zero runs left as
//! holes) and its [`Entry`] is kept; at the end the entries are sorted by
//! path and written through [`TarSink`] with their bytes read back from
//! the spool, each spool range punched out (freed) once copied, so the
//! work directory holds about one copy of the data at any time.
//!
//! Canonical means: sorted by path bytes (parents before children, since a
//! parent's path is a prefix); a path given twice keeps its last entry, as
//! extracting the tarball would; hard links are re-pointed so the first
//! path of each link group (in sorted order) carries the file and the
//! others link to it — the packing order decides which name a tar stores
//! the data under, the tree does not. A link whose target is not a regular
//! file of this partition is refused.
//!
//! Memory: the entries' metadata (bounded by the partition's inode budget,
//! checked by the pass before an entry arrives). In: entries in archive
//! order. Out: the tar at the path given, and the xattr side list.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::rootfs::entry::{Entry, EntryKind};
use crate::rootfs::error::SinkError;
use crate::rootfs::sink::EntrySink;
use crate::rootfs::sparse_file::SparseFile;
use crate::rootfs::tar_sink::{TarSink, XattrRecord};

/// Spool alignment: a file's bytes start on a page, so the zero runs of
/// sparse files stay holes and a punched range frees whole pages.
const ALIGN: u64 = 4096;
const CHUNK: usize = 1 << 20;

/// Collects a partition's entries and writes them as a sorted tar.
pub struct SortedTarSink {
    spool: SparseFile,
    spool_path: PathBuf,
    out_path: PathBuf,
    /// Entries in arrival order, each with its data's spool offset.
    entries: Vec<(Entry, u64)>,
    buf: Vec<u8>,
}

impl SortedTarSink {
    /// `spool`: a new, empty work file at `spool_path` (removed by
    /// [`SortedTarSink::write_tar`]); the tar goes to `out_path`.
    pub fn new(spool: File, spool_path: PathBuf, out_path: PathBuf) -> Self {
        SortedTarSink {
            spool: SparseFile::new(spool),
            spool_path,
            out_path,
            entries: Vec::new(),
            buf: vec![0; CHUNK],
        }
    }

    /// Writes the tar in canonical order to the output path, removes the
    /// spool; the xattr side list of what was written.
    pub fn write_tar(self) -> Result<(PathBuf, Vec<XattrRecord>), SinkError> {
        let SortedTarSink {
            spool,
            spool_path,
            out_path,
            entries,
            buf: _,
        } = self;
        let spool = spool.into_file()?;
        let entries = canonical(entries)?;
        let out = SparseFile::new(File::create(&out_path)?);
        let mut tar = TarSink::new(BufWriter::with_capacity(CHUNK, out));
        for (entry, offset) in &entries {
            let size = match entry.kind {
                EntryKind::File { size } => size,
                _ => 0,
            };
            let mut data = SpoolRange {
                file: &spool,
                pos: *offset,
                end: offset.saturating_add(size),
            };
            tar.write_entry(entry, &mut data)?;
            if size > 0 {
                // Copied: give the pages back (tmpfs holds the work dir).
                let _ = rustix::fs::fallocate(
                    spool.as_fd(),
                    rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                    *offset,
                    size,
                );
            }
        }
        tar.finish()?;
        let (writer, xattrs) = tar.into_parts();
        let mut out = writer.into_inner().map_err(|e| e.into_error())?;
        out.flush()?;
        drop(spool);
        fs::remove_file(&spool_path)?;
        Ok((out_path, xattrs))
    }
}

/// A spool range as a reader.
struct SpoolRange<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for SpoolRange<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut out[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the work spool is shorter than what was written to it",
            ));
        }
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

impl EntrySink for SortedTarSink {
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        let offset = self.spool.position().next_multiple_of(ALIGN);
        if let EntryKind::File { size } = entry.kind {
            self.spool.skip_to(offset);
            let mut left = size;
            while left > 0 {
                let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                let n = data.read(&mut self.buf[..want])?;
                if n == 0 {
                    return Err(SinkError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: the member ended {left} bytes early", entry.path),
                    )));
                }
                self.spool.write_all(&self.buf[..n])?;
                left = left.saturating_sub(n as u64);
            }
        }
        self.entries.push((entry.clone(), offset));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.spool.flush()?;
        Ok(())
    }
}

/// Sorted by path, last entry of a path kept, hard links re-pointed at the
/// first path of their group; see the module doc.
fn canonical(entries: Vec<(Entry, u64)>) -> Result<Vec<(Entry, u64)>, SinkError> {
    // Last occurrence of each path wins.
    let mut last: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (i, (e, _)) in entries.iter().enumerate() {
        last.insert(e.path.clone(), i);
    }
    let mut kept: Vec<(Entry, u64)> = entries
        .into_iter()
        .enumerate()
        .filter(|(i, (e, _))| last.get(&e.path) == Some(i))
        .map(|(_, x)| x)
        .collect();
    kept.sort_by(|a, b| a.0.path.as_bytes().cmp(b.0.path.as_bytes()));
    let index: HashMap<String, usize> = kept
        .iter()
        .enumerate()
        .map(|(i, (e, _))| (e.path.clone(), i))
        .collect();

    // Each link's group root: the regular file it finally names.
    let mut root_of: Vec<Option<usize>> = vec![None; kept.len()];
    for (i, (e, _)) in kept.iter().enumerate() {
        let EntryKind::HardLink { target } = &e.kind else {
            continue;
        };
        let mut at = target;
        let mut hops = 0usize;
        let root = loop {
            let Some(&j) = index.get(at.as_str()) else {
                return Err(bad_link(&e.path, target, "is not in this partition"));
            };
            match &kept[j].0.kind {
                EntryKind::File { .. } => break j,
                EntryKind::HardLink { target: next } if hops < kept.len() => {
                    at = next;
                    hops = hops.saturating_add(1);
                }
                _ => return Err(bad_link(&e.path, target, "is not a regular file")),
            }
        };
        root_of[i] = Some(root);
    }
    // Group members in sorted order; the first one is the group's head.
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, root) in root_of.iter().enumerate() {
        if let Some(root) = root {
            groups.entry(*root).or_insert_with(|| vec![*root]).push(i);
        }
    }
    for (root, mut members) in groups {
        members.sort_unstable();
        members.dedup();
        // The head (first path) takes the file: metadata, xattrs, bytes;
        // every other member, the old root too, links to it with the same
        // metadata, whichever name the tarball stored the data under.
        let (file, offset) = kept[root].clone();
        let head = members[0];
        let head_path = kept[head].0.path.clone();
        for &m in &members {
            let path = kept[m].0.path.clone();
            kept[m] = if m == head {
                (
                    Entry {
                        path,
                        ..file.clone()
                    },
                    offset,
                )
            } else {
                let kind = EntryKind::HardLink {
                    target: head_path.clone(),
                };
                let xattrs = Vec::new();
                (
                    Entry {
                        path,
                        kind,
                        xattrs,
                        ..file.clone()
                    },
                    0,
                )
            };
        }
    }
    Ok(kept)
}

fn bad_link(path: &str, target: &str, why: &str) -> SinkError {
    SinkError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("hard link {path:?}: its target {target:?} {why}"),
    ))
}

#[cfg(test)]
mod tests;
