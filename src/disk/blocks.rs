//! The disk as a sequence of fixed-size blocks, each *mapped* (it holds a
//! non-zero byte, or lies in a range that must be written even when zero)
//! or not: what the block map (`.bmap`) and the Android sparse image
//! (`.simg`) are made of.
//!
//! Flows in: the assembler's writes (increasing, non-overlapping offsets;
//! what is never written is a hole and reads as zeros) and the byte ranges
//! the board marks `sparse = false` (a U-Boot environment must really be
//! wiped when flashed, so its zeros are mapped). Flows out: one
//! [`BlockEvent`] per mapped block, in order, with the block's bytes, and
//! one per run of unmapped blocks. Memory: one block. Pure: no I/O.
//!
//! The last block may be short when the image size is not a multiple of
//! the block size; its bytes are the image's bytes (bmaptool hashes only
//! what the file holds).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("block size {0} is not a power of two of at least 512")]
    BlockSize(u64),
    #[error(
        "write at {offset:#x} goes back before {pos:#x}: writes must come in increasing order"
    )]
    Backwards { offset: u64, pos: u64 },
    #[error("write of {len} bytes at {offset:#x} ends past the image size {size:#x}")]
    PastEnd { offset: u64, len: u64, size: u64 },
}

/// What [`Blocks`] reports, in disk order.
#[derive(Debug, PartialEq, Eq)]
pub enum BlockEvent<'a> {
    /// Block `index` is mapped; `data` is its bytes (a whole block, or
    /// the image's tail).
    Mapped { index: u64, data: &'a [u8] },
    /// Blocks `first..first + count` are not mapped (all zero, not forced).
    Unmapped { first: u64, count: u64 },
}

/// Splits writes into blocks and classifies them; see the module doc.
pub struct Blocks {
    size: u64,
    block: u64,
    /// log2 of `block`.
    shift: u32,
    /// Sorted, merged block ranges `[first, end)` that are mapped even
    /// when zero.
    forced: Vec<(u64, u64)>,
    /// The block being filled, if any, and whether it has a non-zero byte.
    current: Option<(u64, bool)>,
    buf: Vec<u8>,
    /// First block not yet reported.
    next: u64,
    /// Byte offset below which nothing may be written any more.
    pos: u64,
}

impl Blocks {
    /// `forced`: byte ranges `[start, end)` mapped even when zero.
    pub fn new(size: u64, block: u64, forced: &[(u64, u64)]) -> Result<Blocks, BlockError> {
        if block < 512 || !block.is_power_of_two() {
            return Err(BlockError::BlockSize(block));
        }
        let shift = block.trailing_zeros();
        let mut ranges: Vec<(u64, u64)> = forced
            .iter()
            .filter(|(s, e)| e > s)
            .map(|&(s, e)| {
                let first = s.checked_shr(shift).unwrap_or(0);
                (first, e.min(size).div_ceil(block))
            })
            .filter(|(s, e)| e > s)
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Ok(Blocks {
            size,
            block,
            shift,
            forced: merged,
            current: None,
            buf: vec![0; usize::try_from(block).unwrap_or(4096)],
            next: 0,
            pos: 0,
        })
    }

    pub fn image_size(&self) -> u64 {
        self.size
    }

    pub fn block_size(&self) -> u64 {
        self.block
    }

    /// Number of blocks, the short tail included.
    pub fn count(&self) -> u64 {
        self.size.div_ceil(self.block)
    }

    /// Bytes of block `index` inside the image.
    fn len_of(&self, index: u64) -> usize {
        let start = index.saturating_mul(self.block);
        // At most one block: fits in usize.
        self.size.saturating_sub(start).min(self.block) as usize
    }

    /// The block holding byte `abs` (`shift` < 64: a valid shift).
    fn index_of(&self, abs: u64) -> u64 {
        abs.checked_shr(self.shift).unwrap_or(0)
    }

    /// Where byte `abs` lies within its block.
    fn within(&self, abs: u64) -> usize {
        // Below one block: fits in usize.
        (abs & self.block.saturating_sub(1)) as usize
    }

    fn is_forced(&self, index: u64) -> bool {
        let i = self.forced.partition_point(|&(_, e)| e <= index);
        self.forced.get(i).is_some_and(|&(s, _)| s <= index)
    }

    /// Feed `data` at `offset`; `emit` sees every block finished by it.
    pub fn write_at(
        &mut self,
        offset: u64,
        data: &[u8],
        emit: &mut dyn FnMut(BlockEvent<'_>),
    ) -> Result<(), BlockError> {
        if offset < self.pos {
            return Err(BlockError::Backwards {
                offset,
                pos: self.pos,
            });
        }
        let len = data.len() as u64;
        let end = offset.checked_add(len).filter(|&e| e <= self.size);
        let Some(end) = end else {
            return Err(BlockError::PastEnd {
                offset,
                len,
                size: self.size,
            });
        };
        let mut abs = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = self.index_of(abs);
            let within = self.within(abs);
            let take = rest.len().min(self.len_of(index).saturating_sub(within));
            let (piece, tail) = rest.split_at(take);
            let nonzero = piece.iter().any(|&b| b != 0);
            if self.current.map(|(i, _)| i) != Some(index) {
                self.finish_current(emit);
                self.skip_to(index, emit);
                if within == 0 && take == self.len_of(index) {
                    // A whole block in one piece: no copy.
                    if nonzero || self.is_forced(index) {
                        emit(BlockEvent::Mapped { index, data: piece });
                    } else {
                        emit(BlockEvent::Unmapped {
                            first: index,
                            count: 1,
                        });
                    }
                    self.next = index.saturating_add(1);
                    abs = abs.saturating_add(take as u64);
                    rest = tail;
                    continue;
                }
                self.buf.fill(0);
                self.current = Some((index, false));
            }
            if let Some(slot) = self.buf.get_mut(within..within.saturating_add(take)) {
                slot.copy_from_slice(piece);
            }
            if let Some((_, nz)) = &mut self.current {
                *nz |= nonzero;
            }
            abs = abs.saturating_add(take as u64);
            rest = tail;
        }
        self.pos = end;
        Ok(())
    }

    /// Report the rest of the image (holes and forced zeros to the end).
    pub fn finish(mut self, emit: &mut dyn FnMut(BlockEvent<'_>)) {
        self.finish_current(emit);
        let count = self.count();
        self.skip_to(count, emit);
    }

    fn finish_current(&mut self, emit: &mut dyn FnMut(BlockEvent<'_>)) {
        if let Some((index, nonzero)) = self.current.take() {
            self.skip_to(index, emit);
            let len = self.len_of(index);
            if nonzero || self.is_forced(index) {
                emit(BlockEvent::Mapped {
                    index,
                    data: &self.buf[..len],
                });
            } else {
                emit(BlockEvent::Unmapped {
                    first: index,
                    count: 1,
                });
            }
            self.next = index.saturating_add(1);
        }
    }

    /// Report the blocks from `self.next` up to `index` (exclusive), never
    /// written: forced ones as zero blocks, the others as holes.
    fn skip_to(&mut self, index: u64, emit: &mut dyn FnMut(BlockEvent<'_>)) {
        while self.next < index {
            let i = self.forced.partition_point(|&(_, e)| e <= self.next);
            match self.forced.get(i).copied() {
                Some((s, e)) if s <= self.next => {
                    let stop = e.min(index);
                    self.buf.fill(0);
                    for b in self.next..stop {
                        let len = self.len_of(b);
                        emit(BlockEvent::Mapped {
                            index: b,
                            data: &self.buf[..len],
                        });
                    }
                    self.next = stop;
                }
                next_forced => {
                    let stop = next_forced.map_or(index, |(s, _)| s.min(index));
                    emit(BlockEvent::Unmapped {
                        first: self.next,
                        count: stop.saturating_sub(self.next),
                    });
                    self.next = stop;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
