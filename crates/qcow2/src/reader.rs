//! qcow2 reader: the guest address space of an image as `Read + Seek`.
//!
//! Reads version 2 and 3 images through the active L1 table: unallocated
//! clusters and v3 zero-flag clusters read as zeros, standard clusters are
//! read in place, compressed clusters (zlib or zstd) are decompressed one
//! cluster at a time. Refcounts are not consulted. Backing files,
//! encryption, external data files and extended L2 entries are refused when
//! the image is opened, naming the feature. Positions past the virtual size
//! read as end of file. I/O only through the `Read + Seek` it is given.

use std::io::{self, Read, Seek, SeekFrom};

use super::codec::decompress_cluster;
use super::header::{Header, RawHeader, V3_HEADER_LEN};
use super::{
    Compression, Qcow2Error, FLAG_COMPRESSED, FLAG_ZERO, MAX_L1_ENTRIES, OFFSET_MASK, SECTOR_SIZE,
};

/// Reads the guest view of a qcow2 image.
pub struct Qcow2Reader<R: Read + Seek> {
    inner: R,
    header: Header,
    l1: Vec<u64>,
    position: u64,
    /// The last L2 table read: (host offset, entries).
    l2_cache: Option<(u64, Vec<u64>)>,
    /// The last compressed cluster decompressed: (L2 entry, data).
    cluster_cache: Option<(u64, Vec<u8>)>,
}

impl<R: Read + Seek> Qcow2Reader<R> {
    /// Parses the header and loads the L1 table.
    pub fn new(mut inner: R) -> Result<Self, Qcow2Error> {
        let mut head = [0u8; V3_HEADER_LEN];
        let got = read_up_to(&mut inner, 0, &mut head, "reading the header")?;
        let raw = RawHeader::decode(&head[..got])?;
        let header = Header::from_raw(&raw)?;
        let l1_entries = u64::from(header.l1_entries);
        if l1_entries > MAX_L1_ENTRIES {
            return Err(Qcow2Error::Corrupt {
                what: "L1 table larger than 32 MiB",
                host_offset: header.l1_offset,
            });
        }
        // At most 32 MiB, and only what the file holds: no allocation for a
        // table that a crafted header places past the end of a small file.
        #[allow(clippy::arithmetic_side_effects)] // l1_entries <= MAX_L1_ENTRIES (2^22)
        let l1_len = l1_entries * 8;
        let file_len = inner
            .seek(SeekFrom::End(0))
            .map_err(|source| Qcow2Error::Io {
                action: "measuring the image",
                host_offset: 0,
                source,
            })?;
        if header
            .l1_offset
            .checked_add(l1_len)
            .is_none_or(|end| end > file_len)
        {
            return Err(Qcow2Error::Corrupt {
                what: "L1 table past the end of the file",
                host_offset: header.l1_offset,
            });
        }
        let l1_len = usize::try_from(l1_len).map_err(|_| Qcow2Error::Corrupt {
            what: "L1 table larger than memory",
            host_offset: header.l1_offset,
        })?;
        let mut l1_bytes = vec![0u8; l1_len];
        read_exact_at(
            &mut inner,
            header.l1_offset,
            &mut l1_bytes,
            "reading the L1 table",
        )?;
        Ok(Qcow2Reader {
            inner,
            header,
            l1: decode_u64s(&l1_bytes),
            position: 0,
            l2_cache: None,
            cluster_cache: None,
        })
    }

    /// Guest size in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.header.geometry.virtual_size
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.header.geometry.cluster_size()
    }

    /// Header version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// The compression type compressed clusters of this image use
    /// (zlib unless the header says otherwise).
    pub fn compression_type(&self) -> Compression {
        self.header.compression
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Fills `buf` from guest offset `guest`; `buf` stays inside one cluster.
    fn read_within_cluster(&mut self, guest: u64, buf: &mut [u8]) -> Result<(), Qcow2Error> {
        let geometry = self.header.geometry;
        let index = guest >> geometry.cluster_bits;
        let within = geometry.offset_in_cluster(guest);
        let (l1_index, l2_index) = geometry.table_indices(index);
        let l1_entry = usize::try_from(l1_index)
            .ok()
            .and_then(|i| self.l1.get(i))
            .copied()
            .unwrap_or(0);
        let l2_offset = l1_entry & OFFSET_MASK;
        if l2_offset == 0 {
            buf.fill(0);
            return Ok(());
        }
        let table = self.load_l2(l2_offset)?;
        let Some(&entry) = usize::try_from(l2_index).ok().and_then(|i| table.get(i)) else {
            return Err(Qcow2Error::Corrupt {
                what: "L2 index past the L2 table",
                host_offset: l2_offset,
            });
        };
        if entry & FLAG_COMPRESSED != 0 {
            let cluster = self.load_compressed(entry, index << geometry.cluster_bits)?;
            let part = usize::try_from(within)
                .ok()
                .and_then(|within| cluster.get(within..)?.get(..buf.len()));
            let Some(part) = part else {
                return Err(Qcow2Error::Corrupt {
                    what: "read past a decompressed cluster",
                    host_offset: entry,
                });
            };
            buf.copy_from_slice(part);
            return Ok(());
        }
        let host = entry & OFFSET_MASK;
        let zero_flag = self.header.version >= 3 && entry & FLAG_ZERO != 0;
        if host == 0 || zero_flag {
            buf.fill(0);
            return Ok(());
        }
        // host < 2^56 (OFFSET_MASK) and within < 2^21: the sum fits.
        let Some(at) = host.checked_add(within) else {
            return Err(Qcow2Error::Corrupt {
                what: "data cluster offset past 2^64",
                host_offset: host,
            });
        };
        read_exact_at(&mut self.inner, at, buf, "reading a data cluster")
    }

    fn load_l2(&mut self, l2_offset: u64) -> Result<&[u64], Qcow2Error> {
        if self
            .l2_cache
            .as_ref()
            .is_none_or(|(at, _)| *at != l2_offset)
        {
            let mut bytes = vec![0u8; self.cluster_size() as usize];
            read_exact_at(
                &mut self.inner,
                l2_offset,
                &mut bytes,
                "reading an L2 table",
            )?;
            self.l2_cache = Some((l2_offset, decode_u64s(&bytes)));
        }
        Ok(self
            .l2_cache
            .as_ref()
            .map(|(_, t)| t.as_slice())
            .unwrap_or(&[]))
    }

    /// Decompresses the cluster a compressed L2 entry describes.
    fn load_compressed(&mut self, entry: u64, guest_offset: u64) -> Result<&[u8], Qcow2Error> {
        if self.cluster_cache.as_ref().is_none_or(|(e, _)| *e != entry) {
            let geometry = self.header.geometry;
            let (shift, sectors_mask) = geometry.compressed_fields();
            let host = entry & !(u64::MAX << shift);
            let extra_sectors = (entry >> shift) & sectors_mask;
            // From `host` to the end of its sector plus `extra_sectors`
            // sectors: at most 2^13 sectors (4 MiB) whatever the entry says.
            let span = extra_sectors
                .checked_add(1)
                .and_then(|sectors| sectors.checked_mul(SECTOR_SIZE))
                .and_then(|bytes| bytes.checked_sub(host % SECTOR_SIZE))
                .and_then(|span| usize::try_from(span).ok())
                .ok_or(Qcow2Error::Corrupt {
                    what: "compressed cluster descriptor",
                    host_offset: host,
                })?;
            let mut compressed = vec![0u8; span];
            // The last sector may run past the end of the file.
            let got = read_up_to(
                &mut self.inner,
                host,
                &mut compressed,
                "reading a compressed cluster",
            )?;
            let mut cluster = vec![0u8; geometry.cluster_size() as usize];
            decompress_cluster(self.header.compression, &compressed[..got], &mut cluster).map_err(
                |reason| Qcow2Error::Decompress {
                    guest_offset,
                    host_offset: host,
                    reason,
                },
            )?;
            self.cluster_cache = Some((entry, cluster));
        }
        Ok(self
            .cluster_cache
            .as_ref()
            .map(|(_, c)| c.as_slice())
            .unwrap_or(&[]))
    }
}

impl<R: Read + Seek> Read for Qcow2Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let geometry = self.header.geometry;
        let Some(left) = geometry.virtual_size.checked_sub(self.position) else {
            return Ok(0);
        };
        #[allow(clippy::arithmetic_side_effects)] // offset_in_cluster < cluster_size
        let cluster_left = geometry.cluster_size() - geometry.offset_in_cluster(self.position);
        let n = (buf.len() as u64).min(left).min(cluster_left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.read_within_cluster(self.position, &mut buf[..n])
            .map_err(io::Error::other)?;
        #[allow(clippy::arithmetic_side_effects)] // n <= left = virtual_size - position
        let next = self.position + n as u64;
        self.position = next;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Qcow2Reader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match pos {
            SeekFrom::Start(at) => {
                self.position = at;
                return Ok(at);
            }
            SeekFrom::End(delta) => (self.virtual_size(), delta),
            SeekFrom::Current(delta) => (self.position, delta),
        };
        match base.checked_add_signed(delta) {
            Some(at) => {
                self.position = at;
                Ok(at)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("seek to {base} {delta:+} leaves the guest address space"),
            )),
        }
    }
}

fn decode_u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

fn read_exact_at<R: Read + Seek>(
    inner: &mut R,
    host_offset: u64,
    buf: &mut [u8],
    action: &'static str,
) -> Result<(), Qcow2Error> {
    let io = |source| Qcow2Error::Io {
        action,
        host_offset,
        source,
    };
    inner.seek(SeekFrom::Start(host_offset)).map_err(io)?;
    inner.read_exact(buf).map_err(io)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_up_to<R: Read + Seek>(
    inner: &mut R,
    host_offset: u64,
    buf: &mut [u8],
    action: &'static str,
) -> Result<usize, Qcow2Error> {
    let io = |source| Qcow2Error::Io {
        action,
        host_offset,
        source,
    };
    inner.seek(SeekFrom::Start(host_offset)).map_err(io)?;
    let len = buf.len();
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|rest| !rest.is_empty()) {
        match inner.read(rest) {
            Ok(0) => break,
            Ok(n) => {
                got = got
                    .checked_add(n)
                    .filter(|&got| got <= len)
                    .ok_or_else(|| io(io::Error::other("read returned more than asked")))?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(got)
}
