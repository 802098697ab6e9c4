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
        let mut l1_bytes = vec![0u8; l1_entries as usize * 8];
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
        let within = (guest % geometry.cluster_size()) as usize;
        let l1_entry = self
            .l1
            .get((index / geometry.l2_entries()) as usize)
            .copied()
            .unwrap_or(0);
        let l2_offset = l1_entry & OFFSET_MASK;
        if l2_offset == 0 {
            buf.fill(0);
            return Ok(());
        }
        let entry = self.load_l2(l2_offset)?[(index % geometry.l2_entries()) as usize];
        if entry & FLAG_COMPRESSED != 0 {
            let cluster = self.load_compressed(entry, index << geometry.cluster_bits)?;
            buf.copy_from_slice(&cluster[within..within + buf.len()]);
            return Ok(());
        }
        let host = entry & OFFSET_MASK;
        let zero_flag = self.header.version >= 3 && entry & FLAG_ZERO != 0;
        if host == 0 || zero_flag {
            buf.fill(0);
            return Ok(());
        }
        read_exact_at(
            &mut self.inner,
            host + within as u64,
            buf,
            "reading a data cluster",
        )
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
            let shift = geometry.compressed_shift();
            let host = entry & ((1 << shift) - 1);
            let extra_sectors = (entry >> shift) & ((1 << (geometry.cluster_bits - 8)) - 1);
            let span = (extra_sectors + 1) * SECTOR_SIZE - host % SECTOR_SIZE;
            let mut compressed = vec![0u8; span as usize];
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
        let size = self.virtual_size();
        if self.position >= size || buf.is_empty() {
            return Ok(0);
        }
        let cluster_left = self.cluster_size() - self.position % self.cluster_size();
        let n = (buf.len() as u64)
            .min(size - self.position)
            .min(cluster_left) as usize;
        self.read_within_cluster(self.position, &mut buf[..n])
            .map_err(io::Error::other)?;
        self.position += n as u64;
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
    let mut got = 0;
    while got < buf.len() {
        match inner.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(got)
}
