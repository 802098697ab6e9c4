//! Host side of the qcow2 writer: where bytes land in the image file.
//!
//! Owns the output sink, the end of the file, one 16-bit refcount per host
//! cluster, and the "open" compressed cluster. Standard clusters and tables
//! are appended at the end, cluster-aligned. Compressed clusters are packed
//! back to back like QEMU does: they fill an open host cluster kept in
//! memory, may run on into the next host cluster while the open one is
//! still the last thing in the file, and keep filling it after standard
//! clusters were appended behind it (the open cluster is then written once
//! as a placeholder and rewritten in place when it closes: the only
//! backwards seeks besides the header rewrite). The end of the image
//! (refcount blocks, refcount table, L1 table) is written by `finish_tail`.
//! Knows nothing of guest offsets.

use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU64;

use super::Qcow2Error;

/// A host cluster being filled with compressed clusters.
struct OpenCluster {
    host_offset: u64,
    buf: Vec<u8>,
    fill: usize,
    /// A placeholder was written and the file continues past it.
    placed: bool,
}

pub(crate) struct HostFile<W: Write + Seek> {
    out: W,
    cluster_bits: u32,
    /// Bytes written so far; the sink's position.
    end: u64,
    refcounts: Vec<u16>,
    open: Option<OpenCluster>,
}

impl<W: Write + Seek> HostFile<W> {
    /// Starts the file with a zeroed cluster 0, reserved for the header.
    pub fn new(mut out: W, cluster_bits: u32) -> Result<Self, Qcow2Error> {
        seek_to(&mut out, 0)?;
        let mut host = HostFile {
            out,
            cluster_bits,
            end: 0,
            refcounts: Vec::new(),
            open: None,
        };
        host.append_cluster(&vec![0; 1 << cluster_bits], "reserving the header")?;
        Ok(host)
    }

    /// Bytes written so far (the open compressed cluster counts once placed).
    pub fn len(&self) -> u64 {
        self.end
    }

    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Appends one cluster-sized block at the next cluster boundary with
    /// refcount 1; returns its host offset.
    pub fn append_cluster(
        &mut self,
        block: &[u8],
        action: &'static str,
    ) -> Result<u64, Qcow2Error> {
        debug_assert_eq!(block.len() as u64, self.cluster_size());
        self.place_open_cluster()?;
        let at = self.end;
        self.write_end(block, action)?;
        self.add_refcount(at >> self.cluster_bits)?;
        Ok(at)
    }

    /// Stores a compressed cluster (shorter than a cluster); returns its
    /// host offset, usually not aligned.
    pub fn append_compressed(&mut self, blob: &[u8]) -> Result<u64, Qcow2Error> {
        let cluster_size = self.cluster_size() as usize;
        debug_assert!(blob.len() < cluster_size);
        let reusable = self.open.as_ref().is_some_and(|open| {
            let fits = open
                .buf
                .get(open.fill..)
                .is_some_and(|free| blob.len() <= free.len());
            // Spilling into the next cluster needs that cluster to follow.
            let can_spill = !open.placed && open.fill < cluster_size;
            let index = (open.host_offset >> self.cluster_bits) as usize;
            let refcount = self.refcounts.get(index).copied().unwrap_or(0);
            (fits || can_spill) && refcount < u16::MAX
        });
        if !reusable {
            self.close_open_cluster()?;
        }
        let next_cluster = self.end;
        let open = self.open.get_or_insert_with(|| OpenCluster {
            host_offset: next_cluster,
            buf: vec![0; cluster_size],
            fill: 0,
            placed: false,
        });
        let at = open.host_offset.checked_add(open.fill as u64).ok_or(
            Qcow2Error::HostOffsetTooLarge {
                host_offset: open.host_offset,
                what: "compressed cluster",
            },
        )?;
        let free = &mut open.buf[open.fill..];
        let first_part = blob.len().min(free.len());
        free[..first_part].copy_from_slice(&blob[..first_part]);
        #[allow(clippy::arithmetic_side_effects)] // first_part <= free.len() = buf.len() - fill
        let fill = open.fill + first_part;
        open.fill = fill;
        self.add_refcount(at >> self.cluster_bits)?;
        if first_part < blob.len() {
            // Spill: the full open cluster is written out, the rest of the
            // blob opens the next cluster right behind it.
            self.close_open_cluster()?;
            let mut buf = vec![0; cluster_size];
            let rest = &blob[first_part..];
            buf[..rest.len()].copy_from_slice(rest);
            self.open = Some(OpenCluster {
                host_offset: self.end,
                buf,
                fill: rest.len(),
                placed: false,
            });
            self.add_refcount(self.end >> self.cluster_bits)?;
        }
        Ok(at)
    }

    /// Writes the open compressed cluster as a placeholder so that the
    /// file can grow behind it.
    fn place_open_cluster(&mut self) -> Result<(), Qcow2Error> {
        if let Some(mut open) = self.open.take() {
            if !open.placed {
                debug_assert_eq!(open.host_offset, self.end);
                self.write_end(&open.buf, "writing compressed clusters")?;
                open.placed = true;
            }
            self.open = Some(open);
        }
        Ok(())
    }

    /// Writes the open compressed cluster in its final state.
    fn close_open_cluster(&mut self) -> Result<(), Qcow2Error> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        if !open.placed {
            return self.write_end(&open.buf, "writing compressed clusters");
        }
        let end = self.end;
        seek_to(&mut self.out, open.host_offset)?;
        write_bytes(
            &mut self.out,
            open.host_offset,
            &open.buf,
            "rewriting compressed clusters",
        )?;
        seek_to(&mut self.out, end)
    }

    fn add_refcount(&mut self, cluster: u64) -> Result<(), Qcow2Error> {
        let too_large = || Qcow2Error::HostOffsetTooLarge {
            host_offset: cluster << self.cluster_bits,
            what: "refcount table",
        };
        let index = usize::try_from(cluster).map_err(|_| too_large())?;
        if self.refcounts.len() <= index {
            self.refcounts
                .resize(index.checked_add(1).ok_or_else(too_large)?, 0);
        }
        let slot = &mut self.refcounts[index];
        *slot = slot.checked_add(1).ok_or(Qcow2Error::RefcountOverflow {
            host_offset: cluster << self.cluster_bits,
        })?;
        Ok(())
    }

    fn write_end(&mut self, bytes: &[u8], action: &'static str) -> Result<(), Qcow2Error> {
        let end =
            self.end
                .checked_add(bytes.len() as u64)
                .ok_or(Qcow2Error::HostOffsetTooLarge {
                    host_offset: self.end,
                    what: "image file",
                })?;
        write_bytes(&mut self.out, self.end, bytes, action)?;
        self.end = end;
        Ok(())
    }

    /// Closes the open cluster and writes the refcount blocks, the
    /// refcount table and the L1 table (unpadded, it ends the file).
    /// Returns the tail layout; the header is still to be written.
    pub fn finish_tail(&mut self, l1: &[u64]) -> Result<Tail, Qcow2Error> {
        self.close_open_cluster()?;
        let cluster_size = self.cluster_size();
        debug_assert!(self.end.trailing_zeros() >= self.cluster_bits);
        let l1_bytes = encode_u64s(l1);
        let l1_clusters = (l1_bytes.len() as u64).div_ceil(cluster_size);
        let data_end = self.end;
        let too_large = || Qcow2Error::HostOffsetTooLarge {
            host_offset: data_end,
            what: "image file with its refcount and L1 tables",
        };
        // Clusters in bytes, and sums of cluster counts, checked alike.
        let bytes = |clusters: u64| clusters.checked_mul(cluster_size).ok_or_else(too_large);
        let data_clusters = self.end >> self.cluster_bits;
        let (blocks, table_clusters) = data_clusters
            .checked_add(l1_clusters)
            .and_then(|other| size_refcount_structures(other, cluster_size))
            .ok_or_else(too_large)?;
        let blocks_start = self.end;
        let add = |a: u64, b: u64| a.checked_add(b).ok_or_else(too_large);
        let refcount_table_offset = add(blocks_start, bytes(blocks)?)?;
        let tail = Tail {
            refcount_table_offset,
            refcount_table_clusters: table_clusters,
            l1_offset: add(refcount_table_offset, bytes(table_clusters)?)?,
        };
        let total = add(
            add(data_clusters, blocks)?,
            add(table_clusters, l1_clusters)?,
        )?;
        self.refcounts
            .resize(usize::try_from(total).map_err(|_| too_large())?, 1);

        let mut table = Vec::with_capacity(usize::try_from(blocks).unwrap_or(0));
        let refcounts = std::mem::take(&mut self.refcounts);
        for chunk in refcounts.chunks((cluster_size / 2) as usize) {
            let mut block = vec![0u8; cluster_size as usize];
            for (slot, refcount) in block.chunks_exact_mut(2).zip(chunk) {
                slot.copy_from_slice(&refcount.to_be_bytes());
            }
            table.push(self.end);
            self.write_end(&block, "writing a refcount block")?;
        }
        let mut table_bytes = encode_u64s(&table);
        let table_len = usize::try_from(bytes(table_clusters)?).map_err(|_| too_large())?;
        table_bytes.resize(table_len, 0);
        self.write_end(&table_bytes, "writing the refcount table")?;
        debug_assert_eq!(self.end, tail.l1_offset);
        self.write_end(&l1_bytes, "writing the L1 table")?;
        Ok(tail)
    }

    /// Writes the header at offset 0 and returns the sink at the end.
    pub fn finish_header(mut self, header: &[u8]) -> Result<W, Qcow2Error> {
        seek_to(&mut self.out, 0)?;
        write_bytes(&mut self.out, 0, header, "writing the header")?;
        seek_to(&mut self.out, self.end)?;
        self.out.flush().map_err(|source| Qcow2Error::Io {
            action: "flushing the image",
            host_offset: self.end,
            source,
        })?;
        Ok(self.out)
    }
}

/// Where `finish_tail` put the tables.
pub(crate) struct Tail {
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u64,
    pub l1_offset: u64,
}

/// How many refcount blocks and refcount-table clusters cover
/// `other_clusters` plus themselves (the blocks count the table and the
/// blocks too, hence the small fixpoint). `None` when the counts pass 2^64.
pub(crate) fn size_refcount_structures(
    other_clusters: u64,
    cluster_size: u64,
) -> Option<(u64, u64)> {
    // 16-bit refcounts; a zero cluster size has no answer.
    let per_block = NonZeroU64::new(cluster_size / 2)?;
    let (mut blocks, mut table) = (1u64, 1u64);
    loop {
        let total = other_clusters.checked_add(blocks)?.checked_add(table)?;
        let need_blocks = total.div_ceil(per_block.get());
        let need_table = need_blocks.checked_mul(8)?.div_ceil(cluster_size);
        if need_blocks <= blocks && need_table <= table {
            return Some((blocks, table));
        }
        blocks = need_blocks.max(blocks);
        table = need_table.max(table);
    }
}

pub(crate) fn encode_u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn write_bytes<W: Write>(
    out: &mut W,
    host_offset: u64,
    bytes: &[u8],
    action: &'static str,
) -> Result<(), Qcow2Error> {
    out.write_all(bytes).map_err(|source| Qcow2Error::Io {
        action,
        host_offset,
        source,
    })
}

fn seek_to<W: Seek>(out: &mut W, host_offset: u64) -> Result<(), Qcow2Error> {
    out.seek(SeekFrom::Start(host_offset))
        .map(|_| ())
        .map_err(|source| Qcow2Error::Io {
            action: "seeking",
            host_offset,
            source,
        })
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod unit {
    use super::size_refcount_structures;

    #[test]
    fn refcount_fixpoint_covers_itself() {
        // 64 KiB clusters: one block covers 32768 clusters.
        assert_eq!(size_refcount_structures(10, 65536), Some((1, 1)));
        assert_eq!(size_refcount_structures(32766, 65536), Some((1, 1)));
        assert_eq!(size_refcount_structures(32767, 65536), Some((2, 1)));
        assert_eq!(size_refcount_structures(u64::MAX - 1, 65536), None);
        // 512-byte clusters: 256 per block, 64 block pointers per table cluster.
        for n in [100, 16_000, 100_000] {
            let (blocks, table) = size_refcount_structures(n, 512).unwrap();
            assert!(blocks * 256 >= n + blocks + table, "{n}");
            assert!(table * 64 >= blocks, "{n}");
            assert!((blocks - 1) * 256 < n + blocks + table, "{n}: not minimal");
        }
    }
}
