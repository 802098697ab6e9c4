//! Writing an image's mapped blocks to a target, and reading them back:
//! the data path of `mkimg flash`, pure over `Read` (the image, maybe
//! through a decompressor) and `Write + Seek` / `Read + Seek` (the target).
//!
//! [`write_mapped`] reads the image front to back, skipping what the
//! [`Bmap`] leaves unmapped (seeking a raw file, discarding from a
//! decompressor: [`ImageStream`]), writes each mapped range at its offset,
//! and hashes it on the way. A range's SHA-256 can only be compared once
//! the whole range has been read, and a range may be gigabytes, so it is
//! compared *after* the range was written, as bmaptool does: a damaged
//! image or a map that is not its own stops the copy at the first bad
//! range, with the target partly written (the error says so). Holding a
//! range in memory to check it first would bound nothing. At the end the
//! rest of the image is read (to its end) and its length must be the map's
//! `ImageSize`.
//!
//! [`verify_mapped`] then reads every mapped range back from the target
//! and compares it with the digests the write computed (which, with a
//! block map, are the map's): the first range that differs is reported by
//! block numbers and byte offsets. Dropping the target's cached pages
//! before that (so the read-back comes from the medium) is the caller's
//! business (`host::target`).
//!
//! Signals: both loops call `host::interrupt::check` between chunks.
//!
//! Must not: open files, know whether the target is a device or a file,
//! or hold more than one chunk ([`CHUNK`]) of data.

use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::disk::bmap::{Bmap, BmapRange};
use crate::host::interrupt::{self, Interrupted};

/// Bytes read and written at a time.
pub const CHUNK: usize = 1 << 20;

/// The image as a forward-only stream.
pub trait ImageStream: Read {
    /// Move `bytes` forward without using them.
    fn skip(&mut self, bytes: u64) -> io::Result<()>;
    /// Read (or seek) to the end; how many bytes were left.
    fn rest(&mut self) -> io::Result<u64>;
}

/// A stream that can only be read (a decompressor): skipping discards.
pub struct Sequential<R>(pub R);

impl<R: Read> Read for Sequential<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> ImageStream for Sequential<R> {
    fn skip(&mut self, bytes: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.0).take(bytes), &mut io::sink())?;
        if skipped != bytes {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    fn rest(&mut self) -> io::Result<u64> {
        io::copy(&mut self.0, &mut io::sink())
    }
}

/// A raw image file: skipping seeks, so holes are never read.
pub struct Seekable<R>(pub R);

impl<R: Read> Read for Seekable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read + Seek> ImageStream for Seekable<R> {
    fn skip(&mut self, bytes: u64) -> io::Result<()> {
        let bytes = i64::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.0.seek(SeekFrom::Current(bytes)).map(|_| ())
    }

    fn rest(&mut self) -> io::Result<u64> {
        let here = self.0.stream_position()?;
        let end = self.0.seek(SeekFrom::End(0))?;
        Ok(end.saturating_sub(here))
    }
}

/// Whether the map's range digests are checked or only recorded (a map
/// made up for `--nobmap`, whose digests are unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDigests {
    Check,
    Record,
}

/// A range's place, for messages: blocks and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub first: u64,
    pub last: u64,
    pub start: u64,
    pub end: u64,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "blocks {}-{} (bytes {:#x}..{:#x})",
            self.first, self.last, self.start, self.end
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("reading the image at byte {offset:#x}: {source}")]
    Read { offset: u64, source: io::Error },
    #[error(
        "the image ends inside {place} of its block map: the image is cut short, or the \
         block map is not this image's"
    )]
    Truncated { place: Place },
    #[error("writing {place} of the target: {source}")]
    Write { place: Place, source: io::Error },
    #[error(
        "the image's {place} do not match the block map (SHA-256 {found}, the map says \
         {expected}): the image or its block map is damaged. These blocks were already \
         written: the target holds a partial image"
    )]
    ImageRange {
        place: Place,
        found: String,
        expected: String,
    },
    #[error(
        "the image holds {actual} bytes, its block map says {expected}: the block map is \
         not this image's (everything it maps was written and matched)"
    )]
    Size { actual: u64, expected: u64 },
    #[error("the block map's range {first}-{last} lies outside a 64-bit image")]
    Range { first: u64, last: u64 },
    #[error("reading back {place} of the target: {source}")]
    ReadBack { place: Place, source: io::Error },
    #[error(
        "verification failed: the target's {place} read back differently from what was \
         written (SHA-256 {found}, written {expected}): the medium is faulty or smaller \
         than it claims, or something else wrote to it"
    )]
    Verify {
        place: Place,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

fn place(bmap: &Bmap, range: &BmapRange) -> Result<Place, FlashError> {
    let (start, end) = bmap.byte_range(range).ok_or(FlashError::Range {
        first: range.first,
        last: range.last,
    })?;
    Ok(Place {
        first: range.first,
        last: range.last,
        start,
        end,
    })
}

/// Bytes of the next chunk of `[at, end)`.
fn chunk_len(at: u64, end: u64) -> usize {
    usize::try_from(end.saturating_sub(at))
        .unwrap_or(CHUNK)
        .min(CHUNK)
}

/// The chunks of `place`, in order: `fill` gets each chunk's offset and
/// buffer (reads it, and may write it on), then it is hashed and counted
/// in `progress`. The range's SHA-256. The interrupt flag is checked
/// before every chunk.
fn hash_chunks(
    place: Place,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64),
    mut fill: impl FnMut(u64, &mut [u8]) -> Result<(), FlashError>,
) -> Result<[u8; 32], FlashError> {
    let mut hasher = Sha256::new();
    let mut at = place.start;
    while at < place.end {
        interrupt::check()?;
        let n = chunk_len(at, place.end);
        let data = buf.get_mut(..n).unwrap_or_default();
        fill(at, data)?;
        hasher.update(&*data);
        // n <= end - at, so this stays <= end.
        at = at.saturating_add(n as u64);
        progress(n as u64);
    }
    Ok(hasher.finalize().into())
}

/// Copy the mapped ranges of `image` to `target` (see the module doc).
/// `progress` gets the bytes of each chunk written. Returns each range's
/// SHA-256, in order.
pub fn write_mapped<S: ImageStream, T: Write + Seek>(
    bmap: &Bmap,
    digests: RangeDigests,
    image: &mut S,
    target: &mut T,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<[u8; 32]>, FlashError> {
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    let mut written = Vec::with_capacity(bmap.ranges.len());
    for range in &bmap.ranges {
        let place = place(bmap, range)?;
        let gap = place.start.checked_sub(pos).ok_or(FlashError::Range {
            first: range.first,
            last: range.last,
        })?;
        image.skip(gap).map_err(|source| match source.kind() {
            io::ErrorKind::UnexpectedEof => FlashError::Truncated { place },
            _ => FlashError::Read {
                offset: pos,
                source,
            },
        })?;
        target
            .seek(SeekFrom::Start(place.start))
            .map_err(|source| FlashError::Write { place, source })?;
        let digest = hash_chunks(place, &mut buf, progress, |at, data| {
            image
                .read_exact(data)
                .map_err(|source| match source.kind() {
                    io::ErrorKind::UnexpectedEof => FlashError::Truncated { place },
                    _ => FlashError::Read { offset: at, source },
                })?;
            target
                .write_all(data)
                .map_err(|source| FlashError::Write { place, source })?;
            interrupt::pause_at("flash-write");
            Ok(())
        })?;
        pos = place.end;
        if digests == RangeDigests::Check && hex(&digest) != range.sha256 {
            return Err(FlashError::ImageRange {
                place,
                found: hex(&digest),
                expected: range.sha256.clone(),
            });
        }
        written.push(digest);
    }
    let rest = image.rest().map_err(|source| FlashError::Read {
        offset: pos,
        source,
    })?;
    let actual = pos.saturating_add(rest);
    if actual != bmap.image_size {
        return Err(FlashError::Size {
            actual,
            expected: bmap.image_size,
        });
    }
    Ok(written)
}

/// Read the mapped ranges back from `target` and compare each with
/// `digests` (from [`write_mapped`]); the first that differs is the error.
pub fn verify_mapped<T: Read + Seek>(
    bmap: &Bmap,
    digests: &[[u8; 32]],
    target: &mut T,
    progress: &mut dyn FnMut(u64),
) -> Result<(), FlashError> {
    let mut buf = vec![0u8; CHUNK];
    for (range, expected) in bmap.ranges.iter().zip(digests) {
        let place = place(bmap, range)?;
        target
            .seek(SeekFrom::Start(place.start))
            .map_err(|source| FlashError::ReadBack { place, source })?;
        let found = hash_chunks(place, &mut buf, progress, |_, data| {
            target
                .read_exact(data)
                .map_err(|source| FlashError::ReadBack { place, source })
        })?;
        if found != *expected {
            return Err(FlashError::Verify {
                place,
                found: hex(&found),
                expected: hex(expected),
            });
        }
    }
    Ok(())
}

/// A map of the whole image without digests, for `--nobmap`: ranges of
/// [`CHUNK`]-sized runs of blocks (so a read-back mismatch is placed to
/// within a chunk), used with [`RangeDigests::Record`].
pub fn whole_image_map(image_size: u64, block_size: u64) -> Bmap {
    let blocks_count = image_size.div_ceil(block_size.max(1));
    let per_range = (CHUNK as u64).checked_div(block_size).unwrap_or(1).max(1);
    let mut ranges = Vec::new();
    let mut first = 0u64;
    while first < blocks_count {
        let last = first
            .saturating_add(per_range)
            .min(blocks_count)
            .saturating_sub(1);
        ranges.push(BmapRange {
            first,
            last,
            sha256: String::new(),
        });
        first = last.saturating_add(1);
    }
    Bmap {
        image_size,
        block_size,
        blocks_count,
        mapped_blocks: blocks_count,
        ranges,
    }
}

#[cfg(test)]
mod tests;
