//! Plan + partition images → the disk, in every format asked for, in one
//! pass (see [`crate::disk::assemble`]).

use std::path::Path;

use anyhow::{Context, Result};

use crate::disk::assemble::{assemble, table_pieces, AssemblyReport, Content, Piece};
use crate::disk::blobs::LoadedBlob;
use crate::disk::qcow2::Qcow2Options;
use crate::disk::sink::{DiskSink, Qcow2Sink, RawSink, SinkReport};
use crate::filesystems::images::PartitionImage;
use crate::plan::Plan;

/// One output format and where it goes.
#[derive(Debug, Clone)]
pub enum DiskOutput<'a> {
    Raw(&'a Path),
    Qcow2(&'a Path, Qcow2Options),
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
        let loaded = blobs
            .iter()
            .find(|b| b.name == blob.name)
            .with_context(|| format!("blob '{}' was not loaded", blob.name))?;
        // Room: up to the next region that starts after the blob.
        let next = regions
            .iter()
            .map(|r| r.start)
            .filter(|&s| s > blob.offset)
            .min()
            .unwrap_or(layout.disk_size);
        let name = format!("blob '{}' ({})", blob.name, blob.source);
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
    let mut sinks: Vec<Box<dyn DiskSink>> = Vec::new();
    for output in outputs {
        sinks.push(match output {
            DiskOutput::Raw(path) => Box::new(RawSink::create(path, layout.disk_size)?),
            DiskOutput::Qcow2(path, opts) => {
                Box::new(Qcow2Sink::create(path, layout.disk_size, *opts)?)
            }
        });
    }
    let report = assemble(layout.disk_size, pieces, &mut sinks)?;
    let reports = sinks
        .into_iter()
        .map(|s| s.finish())
        .collect::<Result<Vec<_>>>()?;
    Ok((report, reports))
}
