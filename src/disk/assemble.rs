//! Assemble the disk: partition tables, raw blobs and finished partition
//! images, streamed once in offset order into every sink.
//!
//! Every piece is bounded: it knows its room (a partition's size, a blob's
//! space up to the next region), and a piece that would overrun fails before
//! any byte is written, naming both parties ("u-boot.itb: 1466928 bytes at
//! 0x800000 collide with partition 1 'boot' at 0x1000000"). Partition images
//! are complete before the stream starts, so the tables that point at them
//! are never written ahead of their contents. Image files are read by data
//! extent (SEEK_DATA/SEEK_HOLE), so a mostly empty 9 GiB ext4 image costs only
//! its data. A signal (see `host::interrupt`) stops the stream between
//! chunks.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::disk::sink::DiskSink;
use crate::disk::tables::write_tables;
use crate::host::interrupt;
use crate::host::sparse::data_extents;
use crate::plan::Layout;

/// How much is read from an image file per write.
const CHUNK: usize = 1 << 20;

/// Where a piece's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A whole file (possibly sparse).
    File(PathBuf),
    /// Bytes `[start, start + len)` of a file (a blob between its holes).
    Slice {
        path: PathBuf,
        start: u64,
        len: u64,
    },
}

/// One bounded piece of the disk.
#[derive(Debug, Clone)]
pub struct Piece {
    pub name: String,
    pub offset: u64,
    /// Room the piece may fill, in bytes.
    pub room: u64,
    pub content: Content,
}

impl Piece {
    /// How many bytes the piece writes (holes of a sparse file included).
    pub fn byte_len(&self) -> Result<u64> {
        Ok(match &self.content {
            Content::Bytes(bytes) => bytes.len() as u64,
            Content::File(path) => std::fs::metadata(path)
                .with_context(|| format!("{}: reading {}", self.name, path.display()))?
                .len(),
            Content::Slice { len, .. } => *len,
        })
    }
}

/// What the assembly streamed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AssemblyReport {
    /// Bytes of data handed to the sinks (holes excluded).
    pub data_bytes: u64,
    pub pieces: usize,
}

/// The partition tables as pieces, captured from the pure writers.
pub fn table_pieces(layout: &Layout) -> Result<Vec<Piece>> {
    let mut capture = Capture::default();
    write_tables(layout, &mut capture).context("writing the partition tables")?;
    Ok(capture
        .extents()?
        .into_iter()
        .map(|(offset, data)| Piece {
            name: format!("partition table at {offset:#x}"),
            offset,
            room: data.len() as u64,
            content: Content::Bytes(data),
        })
        .collect())
}

/// Stream every piece, in offset order, into every sink.
pub fn assemble(
    disk_size: u64,
    mut pieces: Vec<Piece>,
    sinks: &mut [Box<dyn DiskSink>],
) -> Result<AssemblyReport> {
    pieces.sort_by_key(|p| p.offset);
    // Bounds and collisions first: nothing is written if anything is off.
    let mut lens = Vec::with_capacity(pieces.len());
    let nexts = pieces.iter().skip(1).map(Some).chain([None]);
    for (piece, next) in pieces.iter().zip(nexts) {
        let len = piece.byte_len()?;
        if let Some(over) = len.checked_sub(piece.room).filter(|&over| over > 0) {
            bail!(
                "{}: {len} bytes do not fit the {} bytes of room at {:#x} (over by {over})",
                piece.name,
                piece.room,
                piece.offset,
            );
        }
        let Some(end) = piece.offset.checked_add(len) else {
            bail!(
                "{}: {len} bytes at {:#x} end past 2^64, past the end of the disk \
                 ({disk_size:#x})",
                piece.name,
                piece.offset
            );
        };
        if end > disk_size {
            bail!(
                "{}: ends at {end:#x}, past the end of the disk ({disk_size:#x})",
                piece.name,
            );
        }
        if let Some(next) = next {
            if end > next.offset {
                bail!(
                    "{}: {len} bytes at {:#x} collide with {} at {:#x}",
                    piece.name,
                    piece.offset,
                    next.name,
                    next.offset
                );
            }
        }
        lens.push(len);
    }
    let mut report = AssemblyReport {
        data_bytes: 0,
        pieces: pieces.len(),
    };
    let mut buf = vec![0u8; CHUNK];
    // Every piece lies inside the disk (checked above), so no sum of
    // positions or byte counts below can pass disk_size; they stay checked
    // so that a broken invariant is an error, not a wrap.
    let overflow = || anyhow!("byte count past 2^64 while assembling the disk");
    for (piece, len) in pieces.iter().zip(lens) {
        match &piece.content {
            Content::Bytes(bytes) => {
                for sink in sinks.iter_mut() {
                    sink.write_at(piece.offset, bytes)
                        .with_context(|| piece.name.clone())?;
                }
                report.data_bytes = report
                    .data_bytes
                    .checked_add(bytes.len() as u64)
                    .ok_or_else(overflow)?;
            }
            Content::File(path) => {
                stream_file(piece, path, 0, len, sinks, &mut buf, &mut report)?;
            }
            Content::Slice { path, start, .. } => {
                stream_file(piece, path, *start, len, sinks, &mut buf, &mut report)?;
            }
        }
    }
    Ok(report)
}

/// Bytes `[skip, skip + len)` of `path`, by data extent, to `piece.offset`
/// onwards in every sink.
fn stream_file(
    piece: &Piece,
    path: &std::path::Path,
    skip: u64,
    len: u64,
    sinks: &mut [Box<dyn DiskSink>],
    buf: &mut [u8],
    report: &mut AssemblyReport,
) -> Result<()> {
    // Every piece lies inside the disk (checked by `assemble`), so no sum
    // of positions or byte counts below can pass the disk size; they stay
    // checked so that a broken invariant is an error, not a wrap.
    let overflow = || anyhow!("byte count past 2^64 while assembling the disk");
    let chunk = buf.len();
    let mut file =
        File::open(path).with_context(|| format!("{}: opening {}", piece.name, path.display()))?;
    let end_in_file = skip.checked_add(len).ok_or_else(overflow)?;
    for (start, end) in data_extents(&file, end_in_file)? {
        let (start, end) = (start.max(skip), end.min(end_in_file));
        if start >= end {
            continue;
        }
        file.seek(SeekFrom::Start(start))?;
        let mut pos = start;
        while let Some(left) = end.checked_sub(pos).filter(|&left| left > 0) {
            let want = usize::try_from(left).map_or(chunk, |left| left.min(chunk));
            file.read_exact(&mut buf[..want]).with_context(|| {
                format!("{}: reading {} at {pos:#x}", piece.name, path.display())
            })?;
            let at = pos
                .checked_sub(skip)
                .and_then(|rel| piece.offset.checked_add(rel))
                .ok_or_else(overflow)?;
            for sink in sinks.iter_mut() {
                sink.write_at(at, &buf[..want])
                    .with_context(|| piece.name.clone())?;
            }
            pos = pos.checked_add(want as u64).ok_or_else(overflow)?;
            interrupt::pause_at("disk-write");
            interrupt::check()?;
        }
        report.data_bytes = end
            .checked_sub(start)
            .and_then(|n| report.data_bytes.checked_add(n))
            .ok_or_else(overflow)?;
    }
    Ok(())
}

/// A `Write + Seek` that records what is written, for the table writers.
#[derive(Debug, Default)]
struct Capture {
    pos: u64,
    writes: Vec<(u64, Vec<u8>)>,
}

impl Capture {
    /// Coalesced, sorted extents; later writes win where they overlap.
    fn extents(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut writes = self.writes.clone();
        writes.sort_by_key(|w| w.0);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for (offset, data) in writes {
            if let Some((last_off, last)) = out.last_mut() {
                // Sorted: offset >= last_off, so this only fails when the
                // distance does not fit memory, i.e. is past the extent.
                let rel = usize::try_from(offset.abs_diff(*last_off)).unwrap_or(usize::MAX);
                if rel <= last.len() {
                    let new_end = rel.checked_add(data.len()).with_context(|| {
                        format!("table write at {offset:#x} ends past the address space")
                    })?;
                    if new_end > last.len() {
                        last.resize(new_end, 0);
                    }
                    last[rel..new_end].copy_from_slice(&data);
                    continue;
                }
            }
            out.push((offset, data));
        }
        Ok(out)
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self
            .pos
            .checked_add(buf.len() as u64)
            .ok_or(io::ErrorKind::InvalidInput)?;
        self.writes.push((self.pos, buf.to_vec()));
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Capture {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or(io::ErrorKind::InvalidInput)?,
            SeekFrom::End(_) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "seek from end"))
            }
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;
