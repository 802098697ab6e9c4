//! Where the assembled disk goes: a sparse raw file, a qcow2 file, or both
//! in one pass. Each sink takes data in increasing offset order (the
//! assembler guarantees it) and skips what is all zero, so no full-size raw
//! file is ever written unless raw output was asked for — and even then only
//! its data blocks are.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::disk::qcow2::{Qcow2Options, Qcow2Writer};

/// Granularity at which the raw sink detects all-zero blocks to leave holes.
const RAW_BLOCK: usize = 64 * 1024;

/// What a sink wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkReport {
    pub path: PathBuf,
    /// Bytes actually written to the file (data, not holes).
    pub bytes_written: u64,
    /// Final file length.
    pub file_len: u64,
}

/// A destination for the disk's bytes.
pub trait DiskSink {
    /// `data` at `offset`; offsets never go backwards.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<SinkReport>;
}

/// A sparse raw image: the file is sized up front, all-zero blocks are holes.
pub struct RawSink {
    path: PathBuf,
    file: File,
    written: u64,
}

impl RawSink {
    pub fn create(path: &Path, disk_size: u64) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        file.set_len(disk_size)
            .with_context(|| format!("sizing {}", path.display()))?;
        Ok(RawSink {
            path: path.to_path_buf(),
            file,
            written: 0,
        })
    }
}

impl DiskSink for RawSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset.checked_add(data.len() as u64).is_none() {
            bail!(
                "writing {} bytes to {} at {offset:#x}: ends past 2^64",
                data.len(),
                self.path.display()
            );
        }
        // Split on RAW_BLOCK boundaries of the disk so holes stay aligned:
        // the first chunk runs up to the first boundary, the rest are whole
        // blocks (the last one maybe short). Bytes to the next boundary are
        // -offset mod RAW_BLOCK (a power of two that divides 2^64, so the
        // two's-complement negation is exact).
        const BLOCK: u64 = RAW_BLOCK as u64;
        let head = (offset.wrapping_neg() % BLOCK) as usize;
        let (first, rest) = data.split_at(head.min(data.len()));
        let mut abs = offset;
        for chunk in std::iter::once(first).chain(rest.chunks(RAW_BLOCK)) {
            if chunk.iter().any(|&b| b != 0) {
                self.file.seek(SeekFrom::Start(abs))?;
                self.file
                    .write_all(chunk)
                    .with_context(|| format!("writing {} at {abs:#x}", self.path.display()))?;
                self.written = self
                    .written
                    .checked_add(chunk.len() as u64)
                    .context("counting bytes written")?;
            }
            abs = abs
                .checked_add(chunk.len() as u64)
                .context("offset past 2^64")?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<SinkReport> {
        let file_len = self.file.metadata()?.len();
        self.file
            .sync_all()
            .with_context(|| format!("syncing {}", self.path.display()))?;
        Ok(SinkReport {
            path: self.path,
            bytes_written: self.written,
            file_len,
        })
    }
}

/// A qcow2 image written directly (no raw intermediate).
pub struct Qcow2Sink {
    path: PathBuf,
    writer: Qcow2Writer<BufWriter<File>>,
}

impl Qcow2Sink {
    pub fn create(path: &Path, disk_size: u64, opts: Qcow2Options) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let writer = Qcow2Writer::new(BufWriter::with_capacity(1 << 20, file), disk_size, opts)
            .with_context(|| format!("starting qcow2 {}", path.display()))?;
        Ok(Qcow2Sink {
            path: path.to_path_buf(),
            writer,
        })
    }
}

impl DiskSink for Qcow2Sink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.writer.write_at(offset, data).with_context(|| {
            format!(
                "writing {} at guest offset {offset:#x}",
                self.path.display()
            )
        })
    }

    fn finish(self: Box<Self>) -> Result<SinkReport> {
        let path = self.path;
        let (buffered, stats) = self
            .writer
            .finish_with_stats()
            .with_context(|| format!("finishing qcow2 {}", path.display()))?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("syncing {}", path.display()))?;
        Ok(SinkReport {
            path,
            bytes_written: stats.file_len,
            file_len: stats.file_len,
        })
    }
}
