//! Where a sparse file's data is: the one extent walker (SEEK_DATA /
//! SEEK_HOLE), used to read partition images into the disk and to
//! fingerprint an image without reading its holes. Reads no data.

use std::fs::File;
use std::io;

use anyhow::{Context, Result};

/// Data ranges of a (sparse) file, by SEEK_DATA/SEEK_HOLE; the whole file
/// when the filesystem does not support them.
pub fn data_extents(file: &File, len: u64) -> Result<Vec<(u64, u64)>> {
    use rustix::fs::{seek, SeekFrom as RSeek};
    let mut extents = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match seek(file, RSeek::Data(pos)) {
            Ok(start) => start,
            Err(rustix::io::Errno::NXIO) => break,
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) if pos == 0 => {
                return Ok(vec![(0, len)]);
            }
            Err(err) => return Err(io::Error::from(err)).context("SEEK_DATA"),
        };
        let end = seek(file, RSeek::Hole(start))
            .map_err(io::Error::from)
            .context("SEEK_HOLE")?;
        let end = end.min(len);
        if start >= end {
            break;
        }
        extents.push((start, end));
        pos = end;
    }
    Ok(extents)
}
