//! Android sparse images (`.simg`), the format fastboot and the i.MX /
//! Rockchip factory tools flash: a 28-byte header, then chunks that each
//! cover a run of blocks — RAW (the bytes follow), FILL (one 32-bit
//! pattern repeated: a wiped U-Boot environment costs 16 bytes), or
//! DONT_CARE (a hole: nothing is written to the device there).
//!
//! Flows in: the assembler's writes (increasing offsets, holes never
//! written) and the `sparse = false` byte ranges, classified into blocks by
//! [`crate::disk::blocks`]; flows out: the file, over `Write + Seek` (a RAW
//! chunk's header and the file header are written when their counts are
//! known). Blocks are 4096 bytes when the image size allows, else 512;
//! an image that is not a whole number of 512-byte sectors is refused
//! (the format has no partial block). A RAW chunk is cut at 64 MiB so its
//! 32-bit byte count cannot overflow; `simg2img` joins them back.
//!
//! Written here: the format is small (AOSP's `sparse_format.h`), and the
//! crates that write it (`android-sparse`, `simg`) take a whole raw file as
//! input rather than a stream of extents.

use std::io::{self, Seek, SeekFrom, Write};

use thiserror::Error;

use crate::disk::blocks::{BlockError, BlockEvent, Blocks};

const MAGIC: u32 = 0xed26_ff3a;
const FILE_HEADER: u16 = 28;
const CHUNK_HEADER: u16 = 12;
const RAW: u16 = 0xcac1;
const FILL: u16 = 0xcac2;
const DONT_CARE: u16 = 0xcac3;
/// A FILL chunk: its header and the 4-byte pattern.
const FILL_CHUNK_BYTES: u32 = 16;
/// Blocks per RAW chunk at most (64 MiB of 4 KiB blocks).
const RAW_MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, Error)]
pub enum SimgError {
    #[error("the image size {0} is not a whole number of 512-byte sectors: an Android sparse image has no partial block")]
    Size(u64),
    #[error("the image has {0} blocks, more than an Android sparse image can count")]
    TooLarge(u64),
    #[error(transparent)]
    Blocks(#[from] BlockError),
    #[error("writing the sparse image")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone, Copy)]
enum Run {
    None,
    /// File offset of the chunk header, blocks so far.
    Raw {
        header_at: u64,
        count: u32,
    },
    Fill {
        pattern: u32,
        count: u32,
    },
    DontCare {
        count: u32,
    },
}

/// What a finished sparse image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimgStats {
    pub block_size: u32,
    pub total_blocks: u32,
    pub chunks: u32,
    pub raw_blocks: u64,
    pub fill_blocks: u64,
    pub dont_care_blocks: u64,
    pub file_len: u64,
}

/// Streams a sparse image to `out`; see the module doc.
pub struct SimgWriter<W: Write + Seek> {
    out: W,
    blocks: Blocks,
    state: State,
}

struct State {
    run: Run,
    block: u32,
    raw_max: u32,
    chunks: u32,
    raw_blocks: u64,
    fill_blocks: u64,
    dont_care_blocks: u64,
    /// The first I/O error; later events are ignored once one is set.
    error: Option<io::Error>,
}

impl<W: Write + Seek> SimgWriter<W> {
    /// `forced`: byte ranges written even when zero (as FILL chunks).
    pub fn new(mut out: W, image_size: u64, forced: &[(u64, u64)]) -> Result<Self, SimgError> {
        let block: u32 = if image_size.trailing_zeros() >= 12 {
            4096
        } else if image_size.trailing_zeros() >= 9 {
            512
        } else {
            return Err(SimgError::Size(image_size));
        };
        let blocks = Blocks::new(image_size, u64::from(block), forced)?;
        if u32::try_from(blocks.count()).is_err() {
            return Err(SimgError::TooLarge(blocks.count()));
        }
        // The file header, written for real by `finish`.
        out.write_all(&[0; FILE_HEADER as usize])?;
        let raw_max = u32::try_from(RAW_MAX_BYTES.checked_div(u64::from(block)).unwrap_or(1))
            .unwrap_or(u32::MAX);
        Ok(SimgWriter {
            out,
            blocks,
            state: State {
                run: Run::None,
                block,
                raw_max,
                chunks: 0,
                raw_blocks: 0,
                fill_blocks: 0,
                dont_care_blocks: 0,
                error: None,
            },
        })
    }

    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SimgError> {
        let SimgWriter { out, blocks, state } = self;
        blocks.write_at(offset, data, &mut |e| state.on_event(out, e))?;
        state.error.take().map_or(Ok(()), |e| Err(e.into()))
    }

    /// Writes the last chunk and the file header; the writer and what it holds.
    pub fn finish(self) -> Result<(W, SimgStats), SimgError> {
        let SimgWriter {
            mut out,
            blocks,
            mut state,
        } = self;
        let total =
            u32::try_from(blocks.count()).map_err(|_| SimgError::TooLarge(blocks.count()))?;
        blocks.finish(&mut |e| state.on_event(&mut out, e));
        if let Some(e) = state.error.take() {
            return Err(e.into());
        }
        state.end_run(&mut out)?;
        let file_len = out.stream_position()?;
        let mut header = Vec::with_capacity(FILE_HEADER as usize);
        header.extend_from_slice(&MAGIC.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes()); // major
        header.extend_from_slice(&0u16.to_le_bytes()); // minor
        header.extend_from_slice(&FILE_HEADER.to_le_bytes());
        header.extend_from_slice(&CHUNK_HEADER.to_le_bytes());
        header.extend_from_slice(&state.block.to_le_bytes());
        header.extend_from_slice(&total.to_le_bytes());
        header.extend_from_slice(&state.chunks.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // no image checksum
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&header)?;
        out.seek(SeekFrom::Start(file_len))?;
        out.flush()?;
        let stats = SimgStats {
            block_size: state.block,
            total_blocks: total,
            chunks: state.chunks,
            raw_blocks: state.raw_blocks,
            fill_blocks: state.fill_blocks,
            dont_care_blocks: state.dont_care_blocks,
            file_len,
        };
        Ok((out, stats))
    }
}

/// The 32-bit pattern a whole block repeats, if it does.
fn fill_pattern(data: &[u8], block: u32) -> Option<u32> {
    if data.len() != block as usize {
        return None;
    }
    let first: [u8; 4] = data.get(..4)?.try_into().ok()?;
    data.chunks_exact(4)
        .all(|c| c == first)
        .then(|| u32::from_le_bytes(first))
}

fn chunk_header(kind: u16, blocks: u32, total_bytes: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[..2].copy_from_slice(&kind.to_le_bytes());
    h[4..8].copy_from_slice(&blocks.to_le_bytes());
    h[8..].copy_from_slice(&total_bytes.to_le_bytes());
    h
}

impl State {
    fn on_event<W: Write + Seek>(&mut self, out: &mut W, event: BlockEvent<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.apply(out, event) {
            self.error = Some(e);
        }
    }

    fn apply<W: Write + Seek>(&mut self, out: &mut W, event: BlockEvent<'_>) -> io::Result<()> {
        match event {
            BlockEvent::Unmapped { count, .. } => {
                let mut left = count;
                while left > 0 {
                    let room = match self.run {
                        Run::DontCare { count } => u32::MAX.saturating_sub(count),
                        _ => {
                            self.end_run(out)?;
                            self.run = Run::DontCare { count: 0 };
                            u32::MAX
                        }
                    };
                    let take = u32::try_from(left.min(u64::from(room))).unwrap_or(u32::MAX);
                    if take == 0 {
                        self.end_run(out)?;
                        continue;
                    }
                    if let Run::DontCare { count } = &mut self.run {
                        *count = count.saturating_add(take);
                    }
                    self.dont_care_blocks = self.dont_care_blocks.saturating_add(u64::from(take));
                    left = left.saturating_sub(u64::from(take));
                }
            }
            BlockEvent::Mapped { data, .. } => {
                if let Some(pattern) = fill_pattern(data, self.block) {
                    match &mut self.run {
                        Run::Fill { pattern: p, count } if *p == pattern && *count < u32::MAX => {
                            *count = count.saturating_add(1);
                        }
                        _ => {
                            self.end_run(out)?;
                            self.run = Run::Fill { pattern, count: 1 };
                        }
                    }
                    self.fill_blocks = self.fill_blocks.saturating_add(1);
                } else {
                    let extend = matches!(self.run, Run::Raw { count, .. } if count < self.raw_max);
                    if !extend {
                        self.end_run(out)?;
                        let header_at = out.stream_position()?;
                        out.write_all(&[0; CHUNK_HEADER as usize])?;
                        self.run = Run::Raw {
                            header_at,
                            count: 0,
                        };
                    }
                    out.write_all(data)?;
                    if let Run::Raw { count, .. } = &mut self.run {
                        *count = count.saturating_add(1);
                    }
                    self.raw_blocks = self.raw_blocks.saturating_add(1);
                }
            }
        }
        Ok(())
    }

    /// Writes the chunk being built (a RAW one's header goes back in place).
    fn end_run<W: Write + Seek>(&mut self, out: &mut W) -> io::Result<()> {
        let run = std::mem::replace(&mut self.run, Run::None);
        let too_big = || io::Error::other("sparse chunk larger than 4 GiB");
        match run {
            Run::None => return Ok(()),
            Run::Raw { header_at, count } => {
                let bytes = count
                    .checked_mul(self.block)
                    .and_then(|b| b.checked_add(u32::from(CHUNK_HEADER)))
                    .ok_or_else(too_big)?;
                let end = out.stream_position()?;
                out.seek(SeekFrom::Start(header_at))?;
                out.write_all(&chunk_header(RAW, count, bytes))?;
                out.seek(SeekFrom::Start(end))?;
            }
            Run::Fill { pattern, count } => {
                out.write_all(&chunk_header(FILL, count, FILL_CHUNK_BYTES))?;
                out.write_all(&pattern.to_le_bytes())?;
            }
            Run::DontCare { count } => {
                out.write_all(&chunk_header(DONT_CARE, count, u32::from(CHUNK_HEADER)))?;
            }
        }
        self.chunks = self.chunks.checked_add(1).ok_or_else(too_big)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
