//! Cluster compression and decompression for qcow2.
//!
//! zlib clusters are raw deflate streams (no zlib header) made with a 4 KiB
//! window (window bits 12): QEMU inflates them with window bits -12 and would
//! reject back-references further than 4 KiB. zstd clusters are ordinary
//! zstd frames. Both compressors are single-threaded at a fixed level, so
//! the output is deterministic for a given library version. No I/O here.

use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Inflate, InflateFlush, Status};

use super::Compression;

/// Window bits QEMU uses for qcow2 deflate (`deflateInit2(..., -12, ...)`).
const ZLIB_WINDOW_BITS: i32 = 12;
/// zlib level: the best ratio, so output stays at or below `qemu-img -c`
/// (which uses level 6, memLevel 9).
const ZLIB_LEVEL: i32 = 9;
const ZLIB_MEM_LEVEL: i32 = 9;
/// zstd level: QEMU uses the library default (3); 5 buys a little more ratio.
const ZSTD_LEVEL: i32 = 5;

/// Reusable compression state for one image.
pub(crate) enum ClusterCompressor {
    Zlib(Box<Deflate>),
    Zstd(Box<zstd::bulk::Compressor<'static>>),
}

impl ClusterCompressor {
    /// `None` for [`Compression::None`].
    pub fn new(kind: Compression) -> Result<Option<ClusterCompressor>, String> {
        Ok(match kind {
            Compression::None => None,
            Compression::Zlib => Some(ClusterCompressor::Zlib(Box::new(Deflate::new_with_config(
                DeflateConfig {
                    level: ZLIB_LEVEL,
                    // Negative window bits: raw deflate, no zlib header.
                    window_bits: -ZLIB_WINDOW_BITS,
                    mem_level: ZLIB_MEM_LEVEL,
                    ..DeflateConfig::default()
                },
            )))),
            Compression::Zstd => Some(ClusterCompressor::Zstd(Box::new(
                zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| e.to_string())?,
            ))),
        })
    }

    /// Compresses one cluster into `out` (cleared first). Returns false when
    /// the result would not be smaller than the cluster, in which case the
    /// caller stores the cluster uncompressed, as QEMU does.
    pub fn compress_cluster(&mut self, cluster: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        out.clear();
        match self {
            ClusterCompressor::Zlib(deflate) => {
                deflate.reset();
                // Room for the worst case (stored blocks), so one call always
                // finishes the stream; too-small buffers trip zlib-rs.
                let bound = deflate_bound(cluster.len()).ok_or("cluster too large to compress")?;
                out.resize(bound, 0);
                let status = deflate
                    .compress(cluster, out, DeflateFlush::Finish)
                    .map_err(|e| e.as_str().to_string())?;
                if status != Status::StreamEnd {
                    return Err(format!("deflate did not finish ({status:?})"));
                }
                out.truncate(deflate.total_out() as usize);
                Ok(out.len() < cluster.len())
            }
            ClusterCompressor::Zstd(zstd) => {
                out.reserve(zstd::compress_bound(cluster.len()));
                zstd.compress_to_buffer(cluster, out)
                    .map_err(|e| e.to_string())?;
                Ok(out.len() < cluster.len())
            }
        }
    }
}

/// Upper bound of a raw deflate stream of `len` bytes for any window and
/// memory level (zlib's conservative `deflateBound`, plus slack).
fn deflate_bound(len: usize) -> Option<usize> {
    len.checked_add(len.div_ceil(8))?
        .checked_add(len.div_ceil(64))?
        .checked_add(5 + 64)
}

/// Decompresses one cluster from `src`, which may run past the end of the
/// compressed data (descriptors give its size only to the sector), filling
/// `dst` exactly.
pub(crate) fn decompress_cluster(
    kind: Compression,
    src: &[u8],
    dst: &mut [u8],
) -> Result<(), String> {
    match kind {
        Compression::None => Err("image has no compression type".into()),
        Compression::Zlib => {
            // A 32 KiB window reads streams made with any smaller one.
            let mut inflate = Inflate::new(false, 15);
            // Like QEMU, accept a buffer error once `dst` is full: `src`
            // runs to the end of a sector, past the end of the stream.
            let status = inflate
                .decompress(src, dst, InflateFlush::Finish)
                .map_err(|e| e.as_str().to_string())?;
            let produced = inflate.total_out() as usize;
            if produced != dst.len() {
                return Err(format!(
                    "deflate stream gave {produced} bytes ({status:?}), expected {}",
                    dst.len()
                ));
            }
            Ok(())
        }
        Compression::Zstd => {
            use std::io::Read;
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(src).map_err(|e| e.to_string())?;
            decoder.read_exact(dst).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod unit {
    use super::super::Compression;
    use super::{decompress_cluster, ClusterCompressor};

    /// Repeats at distance 6000 (> 4 KiB) after a compressible half.
    fn far_repeats() -> Vec<u8> {
        let mut cluster: Vec<u8> = (0..32768u32).map(|i| (i % 251) as u8).collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let block: Vec<u8> = (0..6000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        while cluster.len() < 65536 {
            cluster.extend_from_slice(&block);
        }
        cluster.truncate(65536);
        cluster
    }

    #[test]
    fn zlib_uses_qemus_4k_window() {
        let cluster = far_repeats();
        let mut compressor = ClusterCompressor::new(Compression::Zlib).unwrap().unwrap();
        let mut out = Vec::new();
        for _ in 0..2 {
            // The second round checks that reset() keeps the window size.
            assert!(compressor.compress_cluster(&cluster, &mut out).unwrap());
            // A 4 KiB window cannot reach the repeats 6000 bytes back, so
            // the noise half stays nearly incompressible (a 32 KiB window
            // would shrink it to about one 6000-byte block).
            assert!(out.len() > 30_000, "window too large: {} bytes", out.len());
            let mut back = vec![0u8; cluster.len()];
            decompress_cluster(Compression::Zlib, &out, &mut back).unwrap();
            assert!(back == cluster);
        }
    }

    #[test]
    fn incompressible_cluster_is_refused_and_roundtrips_otherwise() {
        let mut noise_state = 7u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                noise_state = noise_state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1);
                (noise_state >> 56) as u8
            })
            .collect();
        let text = b"qcow2 ".repeat(4096 / 6 + 1)[..4096].to_vec();
        for kind in [Compression::Zlib, Compression::Zstd] {
            let mut compressor = ClusterCompressor::new(kind).unwrap().unwrap();
            let mut out = Vec::new();
            assert!(
                !compressor.compress_cluster(&noise, &mut out).unwrap(),
                "{kind:?}"
            );
            assert!(
                compressor.compress_cluster(&text, &mut out).unwrap(),
                "{kind:?}"
            );
            // Trailing bytes (the rest of the last sector) must be ignored.
            out.extend_from_slice(&[0xff; 100]);
            let mut back = vec![0u8; 4096];
            decompress_cluster(kind, &out, &mut back).unwrap();
            assert!(back == text, "{kind:?}");
        }
    }
}
