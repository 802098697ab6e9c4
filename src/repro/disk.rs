#![deny(clippy::arithmetic_side_effects)]
//! Where two raw disks differ: runs of differing 4 KiB blocks, found by
//! reading only where either file has data.
//!
//! A disk image is mostly holes (an empty 10 GiB partition costs nothing
//! in a sparse raw file); reading it byte by byte would read gigabytes of
//! zeros. So only the union of the two files' data extents
//! (`host::sparse::data_extents`, SEEK_DATA/SEEK_HOLE) is read, in 1 MiB
//! chunks, and compared block by block; a hole reads as zeros, as it does
//! for every reader of the image. A file shorter than the other reads as
//! zeros past its end (the lengths are reported apart).
//!
//! In: two paths. Out: [`DiskDiff`]. Checks the interrupt flag per chunk;
//! writes nothing.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::host::interrupt;
use crate::host::sparse::data_extents;

/// The unit of comparison.
pub const BLOCK: u64 = 4096;
/// How much is read from each file at once.
const CHUNK: u64 = 1 << 20;

/// Where two disks differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDiff {
    /// The two files' lengths.
    pub lengths: (u64, u64),
    /// `[start, end)` byte runs of differing blocks, ascending, disjoint,
    /// not adjacent.
    pub runs: Vec<(u64, u64)>,
}

impl DiskDiff {
    pub fn is_same(&self) -> bool {
        self.runs.is_empty() && self.lengths.0 == self.lengths.1
    }

    /// Differing bytes, counted in whole blocks (the last may be short).
    pub fn bytes(&self) -> u64 {
        run_bytes(&self.runs)
    }
}

/// The bytes `runs` cover.
pub fn run_bytes(runs: &[(u64, u64)]) -> u64 {
    runs.iter()
        .map(|&(start, end)| end.saturating_sub(start))
        .fold(0, u64::saturating_add)
}

/// Compare the raw disks `first` and `second` (see the module doc).
pub fn diff_disks(first: &Path, second: &Path) -> Result<DiskDiff> {
    let open = |path: &Path| {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("reading the size of {}", path.display()))?
            .len();
        let extents = data_extents(&file, len)
            .with_context(|| format!("finding the data of {}", path.display()))?;
        anyhow::Ok((file, len, extents))
    };
    let (a, a_len, mut extents) = open(first)?;
    let (b, b_len, b_extents) = open(second)?;
    extents.extend(b_extents);
    let extents = merge_aligned(extents, a_len.max(b_len));
    let mut runs = Vec::new();
    let chunk = usize::try_from(CHUNK).unwrap_or(usize::MAX);
    let (mut buf_a, mut buf_b) = (vec![0u8; chunk], vec![0u8; chunk]);
    for (start, end) in extents {
        let mut pos = start;
        while pos < end {
            interrupt::check()?;
            let len = end.saturating_sub(pos).min(CHUNK);
            let n = usize::try_from(len).unwrap_or(chunk);
            let (got_a, got_b) = (&mut buf_a[..n], &mut buf_b[..n]);
            read_full_at(&a, got_a, pos).with_context(|| format!("reading {}", first.display()))?;
            read_full_at(&b, got_b, pos)
                .with_context(|| format!("reading {}", second.display()))?;
            let block = usize::try_from(BLOCK).unwrap_or(n);
            for (index, (x, y)) in got_a.chunks(block).zip(got_b.chunks(block)).enumerate() {
                if x != y {
                    let at = u64::try_from(index)
                        .ok()
                        .and_then(|i| i.checked_mul(BLOCK))
                        .and_then(|o| o.checked_add(pos))
                        .context("disk offset past 2^64")?;
                    push_run(&mut runs, at, at.saturating_add(x.len() as u64));
                }
            }
            pos = pos.saturating_add(len);
        }
    }
    Ok(DiskDiff {
        lengths: (a_len, b_len),
        runs,
    })
}

/// The first byte at or after `offset` where the two files differ, within
/// `len` bytes; None when those bytes are the same.
pub fn first_byte_differing(
    first: &Path,
    second: &Path,
    offset: u64,
    len: u64,
) -> Result<Option<u64>> {
    let n = usize::try_from(len.min(CHUNK)).unwrap_or(0);
    let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
    read_full_at(&File::open(first)?, &mut x, offset)?;
    read_full_at(&File::open(second)?, &mut y, offset)?;
    Ok(x.iter()
        .zip(&y)
        .position(|(p, q)| p != q)
        .map(|i| offset.saturating_add(i as u64)))
}

/// Fill `buf` from `offset`: what `file` holds there, zeros past its end.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let mut done = 0usize;
    while done < buf.len() {
        let at = offset.saturating_add(done as u64);
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => {
                buf[done..].fill(0);
                break;
            }
            Ok(n) => done = done.saturating_add(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `extents` widened to whole blocks, clipped to `len`, sorted and merged.
fn merge_aligned(mut extents: Vec<(u64, u64)>, len: u64) -> Vec<(u64, u64)> {
    for extent in &mut extents {
        let start = (extent.0 >> BLOCK.trailing_zeros()) << BLOCK.trailing_zeros();
        let end = extent.1.div_ceil(BLOCK).saturating_mul(BLOCK).min(len);
        *extent = (start, end);
    }
    extents.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in extents {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ if start < end => merged.push((start, end)),
            _ => {}
        }
    }
    merged
}

/// Add `[start, end)` to `runs`, joining it to the last run it touches.
fn push_run(runs: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    match runs.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => runs.push((start, end)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::{diff_disks, first_byte_differing, merge_aligned, BLOCK};

    #[test]
    fn extents_become_whole_blocks_merged() {
        assert_eq!(
            merge_aligned(vec![(9000, 9100), (0, 10), (100, 4096)], 20000),
            vec![(0, 4096), (8192, 12288)]
        );
        // Touching blocks join; the end is clipped to the longer file.
        assert_eq!(
            merge_aligned(vec![(5000, 6000), (0, 10), (8192, 9000)], 8500),
            vec![(0, 8500)]
        );
    }

    /// Two sparse files with data far apart: only the blocks that differ
    /// are reported, as runs, with a hole in one file compared as zeros.
    #[test]
    fn finds_differing_blocks_in_sparse_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let write = |path: &std::path::Path, at: &[(u64, &[u8])]| {
            let mut f = std::fs::File::create(path).unwrap();
            f.set_len(1 << 30).unwrap();
            for (offset, data) in at {
                f.seek(SeekFrom::Start(*offset)).unwrap();
                f.write_all(data).unwrap();
            }
        };
        let same: &[u8] = &[7u8; 8192];
        write(
            &a,
            &[(0, same), (512 << 20, b"first"), (900 << 20, &[1u8; 9000])],
        );
        write(
            &b,
            &[(0, same), (512 << 20, b"fiRst"), (900 << 20, &[0u8; 9000])],
        );
        let diff = diff_disks(&a, &b).unwrap();
        assert_eq!(
            diff.runs,
            vec![
                (512 << 20, (512 << 20) + BLOCK),
                (900 << 20, (900 << 20) + 3 * BLOCK)
            ]
        );
        assert_eq!(diff.bytes(), 4 * BLOCK);
        assert!(!diff.is_same());
        assert_eq!(
            first_byte_differing(&a, &b, 512 << 20, BLOCK).unwrap(),
            Some((512 << 20) + 2)
        );
        assert!(diff_disks(&a, &a).unwrap().is_same());
    }
}
