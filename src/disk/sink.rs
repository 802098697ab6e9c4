//! Where the assembled disk goes: a sparse raw file, a qcow2 file, or both
//! in one pass. Each sink takes data in increasing offset order (the
//! assembler guarantees it) and skips what is all zero, so no full-size raw
//! file is ever written unless raw output was asked for — and even then only
//! its data blocks are.
//!
//! Each sink also reports the SHA-256 of its file for manifest.json. The
//! raw sink hashes as it writes ([`SparseHasher`]: the logical content,
//! holes as zeros). The qcow2 sink cannot: its header (cluster 0) is only
//! known once the last cluster is placed, and SHA-256 must see the file's
//! first bytes first, so a streaming hash would have to hold the whole file
//! back. It hashes the file it just wrote (still in the page cache) on a
//! thread of its own while the file is fsynced.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::digest::{HashingWriter, SparseHasher};
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
    /// Hex SHA-256 of the file's bytes (holes read as zeros).
    pub sha256: String,
}

/// A destination for the disk's bytes.
pub trait DiskSink {
    /// `data` at `offset`; offsets never go backwards.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<SinkReport>;
}

/// A sparse raw image: the file is sized up front (the disk size, or less
/// without `disk.fill`), all-zero blocks are holes.
pub struct RawSink {
    path: PathBuf,
    file: File,
    written: u64,
    disk_size: u64,
    hasher: SparseHasher,
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
            disk_size,
            hasher: SparseHasher::new(),
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
        self.hasher
            .update_at(offset, data)
            .with_context(|| format!("hashing {}", self.path.display()))?;
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
        if file_len != self.disk_size {
            bail!(
                "{} is {file_len} bytes, not the disk's {}",
                self.path.display(),
                self.disk_size
            );
        }
        let sha256 = self
            .hasher
            .finish(file_len)
            .with_context(|| format!("hashing {}", self.path.display()))?;
        self.file
            .sync_all()
            .with_context(|| format!("syncing {}", self.path.display()))?;
        Ok(SinkReport {
            path: self.path,
            bytes_written: self.written,
            file_len,
            sha256,
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
        let sha256 = hash_while_syncing(&path, &file)?;
        Ok(SinkReport {
            sha256,
            path,
            bytes_written: stats.file_len,
            file_len: stats.file_len,
        })
    }
}

/// Hex SHA-256 of the file just written at `path` (read from the page
/// cache on a thread of its own) while `file` is synced to the disk: for
/// formats whose headers are patched in place, so no streaming hash.
fn hash_while_syncing(path: &Path, file: &File) -> Result<String> {
    let (sha256, synced) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| hash_file(path));
        let synced = file.sync_all();
        let sha256 = hashing
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the hashing thread panicked")));
        (sha256, synced)
    });
    synced.with_context(|| format!("syncing {}", path.display()))?;
    sha256
}

/// Hex SHA-256 of the file at `path`.
fn hash_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("hashing {}", path.display()))?;
    let mut hashing = HashingWriter::new(std::io::sink());
    std::io::copy(&mut file, &mut hashing)
        .with_context(|| format!("hashing {}", path.display()))?;
    Ok(hashing.finish().2)
}

/// Compression of a raw image stream (`--format raw.zst|raw.xz|raw.gz`).
///
/// Memory is bounded, not proportional to the core count: all formats of
/// one build stay within the 256 MiB peak RSS goal (docs/performance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawCompression {
    /// zstd level 3 on every core, in [`ZSTD_JOB_SIZE`] jobs (zstd's
    /// default for level 3 is 8 MiB: twice the buffers for +0.5% size).
    Zstd,
    /// xz preset 6 with a [`XZ_DICT_SIZE`] dictionary in independent
    /// [`XZ_BLOCK_SIZE`] blocks, on as many threads as fit in
    /// [`XZ_MEMORY_BUDGET`] (see [`xz_encoder`]).
    Xz,
    /// gzip level 6.
    Gzip,
}

impl RawCompression {
    /// The file name suffix after `.raw`.
    pub fn suffix(self) -> &'static str {
        match self {
            RawCompression::Zstd => "zst",
            RawCompression::Xz => "xz",
            RawCompression::Gzip => "gz",
        }
    }
}

/// The sequential file under a compressor: buffered, hashed as written.
type Hashed = HashingWriter<BufWriter<File>>;

enum Encoder {
    Zstd(zstd::stream::write::Encoder<'static, Hashed>),
    Xz(liblzma::write::XzEncoder<Hashed>),
    Gzip(flate2::write::GzEncoder<Hashed>),
}

impl Encoder {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Encoder::Zstd(e) => e,
            Encoder::Xz(e) => e,
            Encoder::Gzip(e) => e,
        }
    }

    fn finish(self) -> std::io::Result<Hashed> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
        }
    }
}

/// A compressed raw image: the whole disk, holes as zeros, streamed through
/// the compressor as it is assembled (no uncompressed raw on disk).
pub struct CompressedRawSink {
    path: PathBuf,
    encoder: Encoder,
    pos: u64,
    disk_size: u64,
}

/// Threads the compressors use: every core.
fn compress_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// zstd's job size: each worker holds about two of these.
const ZSTD_JOB_SIZE: u32 = 4 << 20;
/// xz's dictionary: half of preset 6's 8 MiB. The encoder's match finder
/// takes ~11× the dictionary per thread; on rootfs data the output is
/// 0.5% larger (docs/performance.md), and decompression needs 5 MiB.
pub const XZ_DICT_SIZE: u32 = 4 << 20;
/// xz's block: each thread buffers one in and one out.
pub const XZ_BLOCK_SIZE: u64 = 8 << 20;
/// What the xz encoder may take, all threads together.
pub const XZ_MEMORY_BUDGET: u64 = 160 << 20;

/// The xz encoder of [`xz_settings`].
pub fn xz_encoder(max_threads: u32) -> Result<liblzma::stream::Stream> {
    Ok(xz_settings(max_threads)?.0.encoder()?)
}

/// xz preset 6 with [`XZ_DICT_SIZE`] and [`XZ_BLOCK_SIZE`], CRC64, on up
/// to `max_threads` threads — fewer when their memory would pass
/// [`XZ_MEMORY_BUDGET`] (liblzma's own estimate), never fewer than one.
/// Returns the settings and the thread count chosen.
pub fn xz_settings(max_threads: u32) -> Result<(liblzma::stream::MtStreamBuilder, u32)> {
    let builder = |threads: u32| -> Result<liblzma::stream::MtStreamBuilder> {
        let mut options = liblzma::stream::LzmaOptions::new_preset(6)?;
        options.dict_size(XZ_DICT_SIZE);
        let mut filters = liblzma::stream::Filters::new();
        filters.lzma2(&options);
        let mut builder = liblzma::stream::MtStreamBuilder::new();
        builder
            .threads(threads)
            .block_size(XZ_BLOCK_SIZE)
            .filters(filters)
            .check(liblzma::stream::Check::Crc64);
        Ok(builder)
    };
    let mut threads = max_threads.max(1);
    while threads > 1 && builder(threads)?.memusage() > XZ_MEMORY_BUDGET {
        threads = threads.saturating_sub(1);
    }
    Ok((builder(threads)?, threads))
}

impl CompressedRawSink {
    pub fn create(path: &Path, disk_size: u64, kind: RawCompression) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let hashed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let encoder = match kind {
            RawCompression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(hashed, 3)
                    .context("starting the zstd encoder")?;
                e.multithread(compress_threads())
                    .context("zstd worker threads")?;
                e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
                    .context("zstd job size")?;
                e.include_checksum(true).context("zstd content checksum")?;
                Encoder::Zstd(e)
            }
            RawCompression::Xz => {
                let stream = xz_encoder(compress_threads()).context("starting the xz encoder")?;
                Encoder::Xz(liblzma::write::XzEncoder::new_stream(hashed, stream))
            }
            RawCompression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                hashed,
                flate2::Compression::new(6),
            )),
        };
        Ok(CompressedRawSink {
            path: path.to_path_buf(),
            encoder,
            pos: 0,
            disk_size,
        })
    }

    /// Zeros up to `offset` (a hole of the disk).
    fn zeros_to(&mut self, offset: u64) -> Result<()> {
        while self.pos < offset {
            let n = offset.saturating_sub(self.pos).min(ZEROS.len() as u64);
            // n <= ZEROS.len(): fits in usize.
            let chunk = ZEROS.get(..n as usize).unwrap_or_default();
            self.encoder
                .writer()
                .write_all(chunk)
                .with_context(|| format!("compressing {}", self.path.display()))?;
            self.pos = self.pos.saturating_add(n);
        }
        Ok(())
    }
}

/// Zeros for holes, fed to compressors and hashers a chunk at a time.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

impl DiskSink for CompressedRawSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset < self.pos {
            bail!(
                "{}: write at {offset:#x} goes back before {:#x}",
                self.path.display(),
                self.pos
            );
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.disk_size)
            .with_context(|| {
                format!(
                    "{}: {} bytes at {offset:#x} end past the disk",
                    self.path.display(),
                    data.len()
                )
            })?;
        self.zeros_to(offset)?;
        self.encoder
            .writer()
            .write_all(data)
            .with_context(|| format!("compressing {}", self.path.display()))?;
        self.pos = end;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<SinkReport> {
        self.zeros_to(self.disk_size)?;
        let path = self.path;
        let hashed = self
            .encoder
            .finish()
            .with_context(|| format!("finishing {}", path.display()))?;
        let (buffered, len, sha256) = hashed.finish();
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("syncing {}", path.display()))?;
        Ok(SinkReport {
            path,
            bytes_written: len,
            file_len: len,
            sha256,
        })
    }
}

/// An Android sparse image ([`crate::disk::simg`]).
pub struct SimgSink {
    path: PathBuf,
    writer: crate::disk::simg::SimgWriter<BufWriter<File>>,
}

impl SimgSink {
    /// `forced`: byte ranges written even when zero (`sparse = false`).
    pub fn create(path: &Path, disk_size: u64, forced: &[(u64, u64)]) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let writer = crate::disk::simg::SimgWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            disk_size,
            forced,
        )
        .with_context(|| format!("starting {}", path.display()))?;
        Ok(SimgSink {
            path: path.to_path_buf(),
            writer,
        })
    }
}

impl DiskSink for SimgSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.writer
            .write_at(offset, data)
            .with_context(|| format!("writing {} at {offset:#x}", self.path.display()))
    }

    fn finish(self: Box<Self>) -> Result<SinkReport> {
        let path = self.path;
        let (buffered, stats) = self
            .writer
            .finish()
            .with_context(|| format!("finishing {}", path.display()))?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        // Chunk headers are patched in place: hashed from the file, as qcow2.
        let sha256 = hash_while_syncing(&path, &file)?;
        Ok(SinkReport {
            sha256,
            path,
            bytes_written: stats.file_len,
            file_len: stats.file_len,
        })
    }
}

/// `IMAGE.raw.bmap`: the block map of the raw image, from the same writes.
pub struct BmapSink {
    path: PathBuf,
    builder: crate::disk::bmap::BmapBuilder,
}

impl BmapSink {
    /// `forced`: byte ranges mapped even when zero (`sparse = false`).
    pub fn create(path: &Path, disk_size: u64, forced: &[(u64, u64)]) -> Result<Self> {
        let builder = crate::disk::bmap::BmapBuilder::new(disk_size, forced)
            .with_context(|| format!("starting {}", path.display()))?;
        Ok(BmapSink {
            path: path.to_path_buf(),
            builder,
        })
    }
}

impl DiskSink for BmapSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.builder
            .write_at(offset, data)
            .with_context(|| format!("mapping {} at {offset:#x}", self.path.display()))
    }

    fn finish(self: Box<Self>) -> Result<SinkReport> {
        let xml = self.builder.finish().to_xml();
        std::fs::write(&self.path, &xml)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(SinkReport {
            sha256: crate::digest::sha256_hex(xml.as_bytes()),
            path: self.path,
            bytes_written: xml.len() as u64,
            file_len: xml.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests;
