//! SHA-256 as mkimg records it: lower-case hex ([`hex`]), and the hashers
//! that digest a file's bytes while they are written, so no output is read
//! back for manifest.json.
//!
//! - [`HashingWriter`]: a sequential writer (a firmware copy, a script):
//!   hashes every byte that passes through.
//! - [`SparseHasher`]: a file written at increasing offsets with holes in
//!   between (the sparse raw disk): hashes the file's *logical* content,
//!   the holes as the zeros they read as, so the digest is what
//!   `sha256sum` says of the finished file.
//! - [`BackgroundHasher`]: SHA-256 on a thread of its own, for a stage whose
//!   own work keeps one core busy (the rootfs pass hashes the tarball it
//!   reads: about a third of that pass's CPU time, moved to the other core).
//!
//! No I/O of its own beyond the wrapped writer.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// A writer that hashes what it writes. Sequential only: it has no `Seek`,
/// so nothing written can be changed after it was hashed.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the byte count and the hex SHA-256 of the bytes.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, hex(&self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len = self.len.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Zeros fed to the hasher per update for a hole.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// SHA-256 of a file written at increasing, non-overlapping offsets, holes
/// reading as zeros: feed every write with [`SparseHasher::update_at`],
/// then [`SparseHasher::finish`] with the file's length.
#[derive(Default)]
pub struct SparseHasher {
    hasher: Sha256,
    /// Bytes hashed so far: the file's prefix [0, pos).
    pos: u64,
}

/// A write before the end of what was already hashed.
#[derive(Debug, thiserror::Error)]
#[error("write at {offset:#x} goes back before {hashed:#x}, which is already hashed")]
pub struct BackwardsWrite {
    pub offset: u64,
    pub hashed: u64,
}

impl SparseHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// `data` written at `offset`; what lies between the previous write and
    /// `offset` is a hole (zeros).
    pub fn update_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackwardsWrite> {
        self.zeros_to(offset)?;
        self.hasher.update(data);
        self.pos = self.pos.saturating_add(data.len() as u64);
        Ok(())
    }

    /// The hex SHA-256 of a file of `len` bytes (the rest is a hole).
    pub fn finish(mut self, len: u64) -> Result<String, BackwardsWrite> {
        self.zeros_to(len)?;
        Ok(hex(&self.hasher.finalize()))
    }

    fn zeros_to(&mut self, offset: u64) -> Result<(), BackwardsWrite> {
        let Some(mut gap) = offset.checked_sub(self.pos) else {
            return Err(BackwardsWrite {
                offset,
                hashed: self.pos,
            });
        };
        while gap > 0 {
            let n = gap.min(ZEROS.len() as u64);
            // n <= ZEROS.len(), a usize.
            self.hasher.update(&ZEROS[..n as usize]);
            gap -= n;
        }
        self.pos = offset;
        Ok(())
    }
}

/// Bytes handed to the hashing thread at a time.
const BATCH: usize = 1 << 20;

/// SHA-256 computed on another thread: [`update`](Self::update) copies the
/// bytes into a batch, full batches go to the thread through a bounded
/// channel (at most a few MiB in flight), [`finish`](Self::finish) waits
/// for the digest. When no thread can be started it hashes inline.
pub struct BackgroundHasher {
    batch: Vec<u8>,
    worker: Option<(SyncSender<Vec<u8>>, JoinHandle<Sha256>)>,
    /// Inline fallback, and where a failed worker's batches go.
    inline: Sha256,
}

impl Default for BackgroundHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundHasher {
    pub fn new() -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let worker = thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for batch in rx {
                    hasher.update(&batch);
                }
                hasher
            })
            .ok()
            .map(|handle| (tx, handle));
        BackgroundHasher {
            batch: Vec::with_capacity(BATCH),
            worker,
            inline: Sha256::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.worker.is_none() {
            self.inline.update(data);
            return;
        }
        while !data.is_empty() {
            let take = (BATCH - self.batch.len()).min(data.len());
            self.batch.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.batch.len() == BATCH {
                self.send();
            }
        }
    }

    fn send(&mut self) {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if let Some((tx, _)) = &self.worker {
            // The thread only stops when the channel closes (or it
            // panicked, which `finish` reports), so a send fails only then.
            let _ = tx.send(batch);
        }
    }

    /// The hex SHA-256 of everything passed to `update`.
    pub fn finish(mut self) -> String {
        let Some((tx, handle)) = self.worker.take() else {
            return hex(&self.inline.finalize());
        };
        let last = std::mem::take(&mut self.batch);
        let _ = tx.send(last);
        drop(tx);
        // The thread only hashes bytes: a panic there is a bug.
        let hasher = handle.join().expect("the sha256 thread panicked");
        hex(&hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use sha2::{Digest, Sha256};

    use super::{hex, sha256_hex, BackgroundHasher, HashingWriter, SparseHasher};

    /// Small and batch-sized pieces, across batch boundaries.
    #[test]
    fn background_hasher_matches_inline() {
        let data: Vec<u8> = (0..(3 << 20) + 12345u32)
            .map(|i| ((i * 7) >> 3) as u8)
            .collect();
        let mut h = BackgroundHasher::new();
        let mut rest = &data[..];
        for size in [1usize, 511, 1 << 20, 3, 2 << 20].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            h.update(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(h.finish(), sha256_hex(&data));
        assert_eq!(BackgroundHasher::new().finish(), sha256_hex(b""));
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hashing_writer_hashes_what_passes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, len, digest) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(len, 11);
        assert_eq!(digest, sha256_hex(b"hello world"));
    }

    /// Holes before, between and after the writes hash as zeros.
    #[test]
    fn sparse_hasher_hashes_holes_as_zeros() {
        let mut logical = vec![0u8; 300_000];
        logical[5..8].copy_from_slice(b"abc");
        logical[200_000..200_004].copy_from_slice(b"wxyz");
        let mut h = SparseHasher::new();
        h.update_at(5, b"abc").unwrap();
        h.update_at(200_000, b"wxyz").unwrap();
        assert_eq!(h.finish(300_000).unwrap(), hex(&Sha256::digest(&logical)));
    }

    #[test]
    fn sparse_hasher_refuses_going_back() {
        let mut h = SparseHasher::new();
        h.update_at(10, b"abcd").unwrap();
        assert!(h.update_at(12, b"x").is_err());
        assert!(h.finish(5).is_err());
    }
}
