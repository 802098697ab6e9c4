//! A work file written front to back in which every all-zero 4 KiB chunk
//! is left as a hole: a sparse member (or a zstd bomb of zeros) becomes a
//! sparse work tar or spool, which readers get back as zeros. Used by the
//! work tars of `ingest` and the spool of `sorted_tar`.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// A file written front to back in which every all-zero 4 KiB chunk is
/// left as a hole: a sparse member (or a zstd bomb of zeros) becomes a
/// sparse work tar, which `mke2fs -d` reads back as zeros.
pub struct SparseFile {
    file: File,
    pos: u64,
}

const HOLE: usize = 4096;
const ZEROS: [u8; HOLE] = [0; HOLE];

impl SparseFile {
    pub fn new(file: File) -> Self {
        Self { file, pos: 0 }
    }

    /// Where the next byte goes.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves forward to `pos`, leaving a hole (never backwards).
    pub fn skip_to(&mut self, pos: u64) {
        self.pos = self.pos.max(pos);
    }

    /// The file, extended over a trailing hole.
    pub fn into_file(mut self) -> io::Result<File> {
        self.flush()?;
        Ok(self.file)
    }
}

impl Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for chunk in buf.chunks(HOLE) {
            // A slice compare is a memcmp, fast in debug builds too.
            if chunk.len() < HOLE || chunk != ZEROS {
                self.file.write_all_at(chunk, self.pos)?;
            }
            self.pos += chunk.len() as u64;
        }
        Ok(buf.len())
    }

    /// Extends the file over a trailing hole.
    fn flush(&mut self) -> io::Result<()> {
        if self.file.metadata()?.len() < self.pos {
            self.file.set_len(self.pos)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::MetadataExt;

    use super::SparseFile;

    /// Zero chunks become holes; the content reads back the same.
    #[test]
    fn sparse_file_leaves_zero_chunks_as_holes() {
        let file = tempfile::tempfile().unwrap();
        let mut probe = file.try_clone().unwrap();
        let mut out = std::io::BufWriter::new(SparseFile::new(file));
        let mut want = b"header".to_vec();
        want.resize(64 << 20, 0);
        out.write_all(&want).unwrap();
        out.flush().unwrap();
        let meta = probe.metadata().unwrap();
        assert_eq!(meta.len(), 64 << 20);
        assert!(meta.blocks() * 512 <= 1 << 20, "{} blocks", meta.blocks());
        let mut got = Vec::new();
        probe.rewind().unwrap();
        probe.read_to_end(&mut got).unwrap();
        assert!(got == want);
    }
}
