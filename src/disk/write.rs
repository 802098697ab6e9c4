//! Plan + partition images → the disk, in every format asked for, in one
//! pass (see [`crate::disk::assemble`]).
//!
//! A blob with holes goes in as the pieces between its holes (the table
//! structures the planner let into a hole are written there instead); a
//! reserved region (a non-table partition without contents) writes
//! nothing. Without `disk.fill` the raw file ends at the last byte of the
//! last piece, as genimage's image does without `fill = true`; qcow2 keeps
//! the disk's virtual size.

use std::path::Path;

use anyhow::{Context, Result};

use crate::disk::assemble::{assemble, table_pieces, AssemblyReport, Content, Piece};
use crate::disk::blobs::LoadedBlob;
use crate::disk::qcow2::Qcow2Options;
use crate::disk::sink::{
    BmapSink, CompressedRawSink, DiskSink, Qcow2Sink, RawCompression, RawSink, SimgSink, SinkReport,
};
use crate::filesystems::images::PartitionImage;
use crate::plan::{BlobSource, Plan, PlannedBlob};

/// One output format and where it goes.
#[derive(Debug, Clone)]
pub enum DiskOutput<'a> {
    Raw(&'a Path),
    Qcow2(&'a Path, Qcow2Options),
    /// The raw disk through a compressor.
    CompressedRaw(&'a Path, RawCompression),
    /// Android sparse image.
    Simg(&'a Path),
    /// The raw disk's block map (`IMAGE.raw.bmap`).
    Bmap(&'a Path),
}

impl DiskOutput<'_> {
    pub fn path(&self) -> &Path {
        match self {
            DiskOutput::Raw(p)
            | DiskOutput::Qcow2(p, _)
            | DiskOutput::CompressedRaw(p, _)
            | DiskOutput::Simg(p)
            | DiskOutput::Bmap(p) => p,
        }
    }
}

/// The pieces of a blob with holes: the bytes between the holes (and
/// before the end of its contents), each exactly its own room; the
/// planner made sure nothing else claims them.
fn hole_pieces(blob: &PlannedBlob, name: &str, content: &Content) -> Result<Vec<Piece>> {
    let len = match content {
        Content::Bytes(bytes) => bytes.len() as u64,
        Content::File(path) => std::fs::metadata(path)
            .with_context(|| format!("{name}: reading {}", path.display()))?
            .len(),
        Content::Slice { len, .. } => *len,
    };
    let mut pieces = Vec::new();
    let mut from = 0u64;
    let bounds = blob.holes.iter().copied().chain([(len, len)]);
    for (hole_start, hole_end) in bounds {
        let (start, end) = (from, hole_start.min(len));
        from = from.max(hole_end);
        if start >= end {
            continue;
        }
        let size = end.checked_sub(start).context("blob slice")?;
        let content = match content {
            Content::Bytes(bytes) => {
                let range = usize::try_from(start)?..usize::try_from(end)?;
                Content::Bytes(bytes.get(range).context("blob slice")?.to_vec())
            }
            Content::File(path) => Content::Slice {
                path: path.clone(),
                start,
                len: size,
            },
            Content::Slice { path, start: s, .. } => Content::Slice {
                path: path.clone(),
                start: s.checked_add(start).context("blob slice past 2^64")?,
                len: size,
            },
        };
        pieces.push(Piece {
            name: format!("{name} bytes {start:#x}..{end:#x}"),
            offset: blob.offset.checked_add(start).context("blob past 2^64")?,
            room: size,
            content,
        });
    }
    Ok(pieces)
}

/// Assemble tables, blobs and partition images into every output. `blobs`
/// holds the bytes of every planned blob (see [`crate::disk::blobs`]).
pub fn write_disk(
    plan: &Plan,
    blobs: &[LoadedBlob],
    images: &[PartitionImage],
    outputs: &[DiskOutput<'_>],
) -> Result<(AssemblyReport, Vec<SinkReport>)> {
    let layout = &plan.layout;
    let mut pieces = table_pieces(layout)?;
    let regions = layout.regions();
    for blob in &layout.blobs {
        if blob.source == BlobSource::Reserved {
            continue;
        }
        let loaded = blobs
            .iter()
            .find(|b| b.name == blob.name)
            .with_context(|| format!("blob '{}' was not loaded", blob.name))?;
        let name = format!("blob '{}' ({})", blob.name, blob.source);
        if !blob.holes.is_empty() {
            pieces.extend(hole_pieces(blob, &name, &loaded.content)?);
            continue;
        }
        // Room: up to the next region that starts after the blob.
        let next = regions
            .iter()
            .map(|r| r.start)
            .filter(|&s| s > blob.offset)
            .min()
            .unwrap_or(layout.disk_size);
        let room = next.checked_sub(blob.offset).with_context(|| {
            format!(
                "{name}: starts at {:#x}, past the end of the disk ({:#x})",
                blob.offset, layout.disk_size
            )
        })?;
        pieces.push(Piece {
            name,
            offset: blob.offset,
            room,
            content: loaded.content.clone(),
        });
    }
    for image in images {
        let part = layout
            .partitions
            .iter()
            .find(|p| p.name == image.partition)
            .with_context(|| format!("no partition named {}", image.partition))?;
        pieces.push(Piece {
            name: format!("partition {} '{}'", part.number, part.name),
            offset: part.start,
            room: part.size,
            content: Content::File(image.path.clone()),
        });
    }
    // Without `disk.fill` the raw file ends at the last byte written.
    let raw_len = if layout.fill {
        layout.disk_size
    } else {
        let mut end = 0u64;
        for piece in &pieces {
            let piece_end = piece.offset.checked_add(piece.byte_len()?);
            end = end.max(piece_end.context("a piece ends past 2^64")?);
        }
        end.min(layout.disk_size)
    };
    let mut sinks: Vec<Box<dyn DiskSink>> = Vec::new();
    for output in outputs {
        sinks.push(match output {
            DiskOutput::Raw(path) => Box::new(RawSink::create(path, raw_len)?),
            DiskOutput::Qcow2(path, opts) => {
                Box::new(Qcow2Sink::create(path, layout.disk_size, *opts)?)
            }
            DiskOutput::CompressedRaw(path, kind) => {
                Box::new(CompressedRawSink::create(path, layout.disk_size, *kind)?)
            }
            DiskOutput::Simg(path) => Box::new(SimgSink::create(
                path,
                layout.disk_size,
                &layout.dense_ranges(),
            )?),
            DiskOutput::Bmap(path) => Box::new(BmapSink::create(
                path,
                layout.disk_size,
                &layout.dense_ranges(),
            )?),
        });
    }
    let report = assemble(layout.disk_size, pieces, &mut sinks)?;
    let reports = sinks
        .into_iter()
        .map(|s| s.finish())
        .collect::<Result<Vec<_>>>()?;
    Ok((report, reports))
}
