//! Streaming qcow2 writer: the guest side.
//!
//! Takes guest data in increasing, non-overlapping guest offsets and writes
//! a qcow2 version 3 image (refcount_order 4, no backing file) to a
//! `Write + Seek`. It assembles guest clusters from arbitrary chunks, skips
//! all-zero clusters, compresses, and builds the L2 and L1 tables; where
//! the bytes land is [`HostFile`]'s business. The host layout is fixed by
//! the input alone:
//!
//! ```text
//! cluster 0     header (zeros until finish writes it)
//! clusters 1..  data clusters in guest order (compressed ones packed back to
//!               back), each L2 table right after the last data cluster of
//!               its 512 MiB (for 64 KiB clusters) guest range
//! tail          refcount blocks, refcount table, L1 table (unpadded)
//! ```
//!
//! In memory: one guest cluster, one L2 table, the L1 table, one compressed
//! host cluster and one 16-bit refcount per host cluster.

use std::io::{Seek, Write};

use super::codec::ClusterCompressor;
use super::header::Header;
use super::host::{encode_u64s, HostFile};
use super::{
    Compression, Geometry, Qcow2Error, Qcow2Options, FLAG_COMPRESSED, FLAG_COPIED,
    MAX_CLUSTER_BITS, MAX_L1_ENTRIES, MIN_CLUSTER_BITS, SECTOR_SIZE,
};

/// Host offsets of standard clusters and tables must fit in bits 9-55.
const MAX_STANDARD_HOST_OFFSET: u64 = 1 << 56;

/// Counters for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qcow2Stats {
    /// Bytes of the image file (host side), including metadata.
    pub file_len: u64,
    /// Guest clusters stored uncompressed.
    pub standard_clusters: u64,
    /// Guest clusters stored compressed.
    pub compressed_clusters: u64,
    /// Guest clusters that received writes but were all zeros (unallocated).
    pub zero_clusters: u64,
    /// L2 tables written.
    pub l2_tables: u64,
}

/// The guest cluster being filled by unaligned writes.
struct PendingCluster {
    index: u64,
    buf: Vec<u8>,
}

/// The L2 table of the guest range currently being written.
struct OpenL2 {
    l1_index: u64,
    entries: Vec<u64>,
}

/// Streams a qcow2 image; see the module doc for the layout.
pub struct Qcow2Writer<W: Write + Seek> {
    host: HostFile<W>,
    geometry: Geometry,
    compression: Compression,
    compressor: Option<ClusterCompressor>,
    l1: Vec<u64>,
    l2: Option<OpenL2>,
    pending: Option<PendingCluster>,
    /// End of the previous write; the next one may not start before it.
    guest_end: u64,
    compressed_buf: Vec<u8>,
    stats: Qcow2Stats,
}

impl<W: Write + Seek> Qcow2Writer<W> {
    /// Starts an image of `virtual_size` bytes. The image is written from
    /// offset 0 of `out`, which should be empty.
    pub fn new(out: W, virtual_size: u64, opts: Qcow2Options) -> Result<Self, Qcow2Error> {
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&opts.cluster_bits) {
            return Err(Qcow2Error::ClusterBits(opts.cluster_bits));
        }
        let geometry = Geometry {
            cluster_bits: opts.cluster_bits,
            virtual_size,
        };
        let l1_entries = geometry.l1_entries();
        if l1_entries > MAX_L1_ENTRIES {
            return Err(Qcow2Error::VirtualSizeTooLarge {
                virtual_size,
                l1_entries,
                max: MAX_L1_ENTRIES,
            });
        }
        let compressor =
            ClusterCompressor::new(opts.compression).map_err(|reason| Qcow2Error::Compress {
                guest_offset: 0,
                reason,
            })?;
        Ok(Qcow2Writer {
            host: HostFile::new(out, opts.cluster_bits)?,
            geometry,
            compression: opts.compression,
            compressor,
            l1: vec![0; l1_entries as usize],
            l2: None,
            pending: None,
            guest_end: 0,
            compressed_buf: Vec::new(),
            stats: Qcow2Stats::default(),
        })
    }

    /// Host bytes written so far (the length of the image file so far).
    pub fn bytes_written(&self) -> u64 {
        self.host.len()
    }

    /// Writes `data` at `guest_offset`. Offsets must not go backwards and
    /// must not overlap the previous write; gaps read as zeros.
    pub fn write_at(&mut self, guest_offset: u64, data: &[u8]) -> Result<(), Qcow2Error> {
        if guest_offset < self.guest_end {
            return Err(Qcow2Error::BackwardsWrite {
                offset: guest_offset,
                previous_end: self.guest_end,
            });
        }
        let len = data.len() as u64;
        let virtual_size = self.geometry.virtual_size;
        let end = guest_offset.checked_add(len);
        let Some(end) = end.filter(|&end| end <= virtual_size) else {
            return Err(Qcow2Error::PastVirtualSize {
                offset: guest_offset,
                len,
                virtual_size,
            });
        };
        self.guest_end = end;
        let cluster_size = self.geometry.cluster_size() as usize;
        let mut offset = guest_offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = offset >> self.geometry.cluster_bits;
            let within = self.geometry.offset_in_cluster(offset) as usize;
            #[allow(clippy::arithmetic_side_effects)] // within < cluster_size
            let room = cluster_size - within;
            let (chunk, tail) = rest.split_at(rest.len().min(room));
            if self.pending.as_ref().is_some_and(|p| p.index != index) {
                self.flush_pending()?;
            }
            if chunk.len() == cluster_size {
                // A whole cluster: stored straight from the caller's slice.
                self.store_cluster(index, chunk)?;
            } else {
                let pending = self.pending.get_or_insert_with(|| PendingCluster {
                    index,
                    buf: vec![0; cluster_size],
                });
                pending.buf[within..][..chunk.len()].copy_from_slice(chunk);
            }
            #[allow(clippy::arithmetic_side_effects)] // offset + chunk.len() <= end (checked above)
            let next = offset + chunk.len() as u64;
            offset = next;
            rest = tail;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), Qcow2Error> {
        if let Some(pending) = self.pending.take() {
            self.store_cluster(pending.index, &pending.buf)?;
        }
        Ok(())
    }

    /// Stores one full guest cluster (zero-padded past the virtual size).
    fn store_cluster(&mut self, index: u64, cluster: &[u8]) -> Result<(), Qcow2Error> {
        if is_zero(cluster) {
            count(&mut self.stats.zero_clusters);
            return Ok(());
        }
        let l2_entries = self.geometry.l2_entries();
        let (l1_index, l2_index) = self.geometry.table_indices(index);
        if self.l2.as_ref().is_some_and(|l2| l2.l1_index != l1_index) {
            self.flush_l2()?;
        }
        let guest_offset = index << self.geometry.cluster_bits;
        let entry = if self.compress(guest_offset, cluster)? {
            count(&mut self.stats.compressed_clusters);
            self.store_compressed(guest_offset)?
        } else {
            count(&mut self.stats.standard_clusters);
            let at = self
                .host
                .append_cluster(cluster, "writing a data cluster")?;
            check_standard_offset(at)? | FLAG_COPIED
        };
        let l2 = self.l2.get_or_insert_with(|| OpenL2 {
            l1_index,
            entries: vec![0; l2_entries as usize],
        });
        l2.entries[l2_index as usize] = entry;
        Ok(())
    }

    /// Compresses into `compressed_buf`; true if the result is worth storing.
    fn compress(&mut self, guest_offset: u64, cluster: &[u8]) -> Result<bool, Qcow2Error> {
        let Some(compressor) = self.compressor.as_mut() else {
            return Ok(false);
        };
        compressor
            .compress_cluster(cluster, &mut self.compressed_buf)
            .map_err(|reason| Qcow2Error::Compress {
                guest_offset,
                reason,
            })
    }

    /// Stores `compressed_buf` and returns its compressed cluster descriptor.
    fn store_compressed(&mut self, guest_offset: u64) -> Result<u64, Qcow2Error> {
        let len = self.compressed_buf.len() as u64;
        let start = self.host.append_compressed(&self.compressed_buf)?;
        let (shift, _) = self.geometry.compressed_fields();
        // The offset field has `shift` bits, but never more than 56 count.
        let end = start
            .checked_add(len)
            .filter(|&end| end <= 1 << shift.min(56))
            .ok_or(Qcow2Error::HostOffsetTooLarge {
                host_offset: start,
                what: "compressed cluster descriptor",
            })?;
        // Sectors after the first one that the data touches.
        let extra_sectors = end
            .checked_sub(1)
            .filter(|&last| last >= start)
            .and_then(|last| (last / SECTOR_SIZE).checked_sub(start / SECTOR_SIZE))
            .ok_or_else(|| Qcow2Error::Compress {
                guest_offset,
                reason: "compressor returned no bytes".into(),
            })?;
        Ok(FLAG_COMPRESSED | (extra_sectors << shift) | start)
    }

    /// Writes the open L2 table and points its L1 entry at it.
    fn flush_l2(&mut self) -> Result<(), Qcow2Error> {
        if let Some(l2) = self.l2.take() {
            let at = self
                .host
                .append_cluster(&encode_u64s(&l2.entries), "writing an L2 table")?;
            self.l1[l2.l1_index as usize] = check_standard_offset(at)? | FLAG_COPIED;
            count(&mut self.stats.l2_tables);
        }
        Ok(())
    }

    /// Flushes the last partial cluster and the last L2 table, writes the
    /// refcount blocks, refcount table, L1 table and the header. Returns the
    /// sink positioned at the end of the image.
    pub fn finish(self) -> Result<W, Qcow2Error> {
        self.finish_with_stats().map(|(out, _)| out)
    }

    /// Like [`finish`](Self::finish), also returning the counters.
    pub fn finish_with_stats(mut self) -> Result<(W, Qcow2Stats), Qcow2Error> {
        self.flush_pending()?;
        self.flush_l2()?;
        let tail = self.host.finish_tail(&self.l1)?;
        check_standard_offset(tail.l1_offset)?;
        let header = Header {
            version: 3,
            geometry: self.geometry,
            // At most MAX_L1_ENTRIES (checked in `new`).
            l1_entries: u32::try_from(self.l1.len()).map_err(|_| {
                Qcow2Error::VirtualSizeTooLarge {
                    virtual_size: self.geometry.virtual_size,
                    l1_entries: self.l1.len() as u64,
                    max: MAX_L1_ENTRIES,
                }
            })?,
            l1_offset: if self.l1.is_empty() {
                0
            } else {
                tail.l1_offset
            },
            refcount_table_offset: tail.refcount_table_offset,
            refcount_table_clusters: u32::try_from(tail.refcount_table_clusters).map_err(|_| {
                Qcow2Error::HostOffsetTooLarge {
                    host_offset: tail.refcount_table_offset,
                    what: "refcount table (more than 2^32 clusters)",
                }
            })?,
            compression: self.compression,
        };
        self.stats.file_len = self.host.len();
        let out = self.host.finish_header(&header.to_raw().encode_v3())?;
        Ok((out, self.stats))
    }
}

/// Adds one to a statistics counter. Each counts guest clusters or L2
/// tables, at most virtual_size / 512 < 2^55, far from 2^64.
fn count(counter: &mut u64) {
    #[allow(clippy::arithmetic_side_effects)] // see above: < 2^55
    let next = *counter + 1;
    *counter = next;
}

/// Standard clusters and tables must sit below 2^56 (bits 9-55).
fn check_standard_offset(host_offset: u64) -> Result<u64, Qcow2Error> {
    if host_offset >= MAX_STANDARD_HOST_OFFSET {
        return Err(Qcow2Error::HostOffsetTooLarge {
            host_offset,
            what: "standard cluster descriptor",
        });
    }
    Ok(host_offset)
}

/// True if every byte is zero (folded per 512-byte chunk so it vectorises).
fn is_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(512)
        .all(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | b) == 0)
}
