//! The qcow2 header: the raw big-endian layout and the domain view.
//!
//! [`RawHeader`] mirrors bytes 0-111 of the first cluster field by field;
//! [`Header`] is what the writer and reader work with. `Header::to_raw` and
//! `Header::from_raw` are the only conversions, and `from_raw` is where
//! unsupported features (backing file, encryption, external data file,
//! extended L2 entries, unknown incompatible bits) are rejected by name.
//! No I/O here: bytes in, bytes out.

use super::{Compression, Geometry, Qcow2Error, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS};

pub(crate) const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Version 2 headers end here.
pub(crate) const V2_HEADER_LEN: usize = 72;
/// Version 3 header up to and including compression_type, padded to 8.
pub(crate) const V3_HEADER_LEN: usize = 112;
/// Offset of the compression_type byte.
const COMPRESSION_TYPE_AT: usize = 104;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

const COMPRESSION_TYPE_ZLIB: u8 = 0;
const COMPRESSION_TYPE_ZSTD: u8 = 1;

/// The on-disk header fields, big-endian on disk, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawHeader {
    pub magic: [u8; 4],
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub crypt_method: u32,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub refcount_order: u32,
    pub header_length: u32,
    pub compression_type: u8,
}

impl RawHeader {
    /// Serialises a version 3 header followed by the end-of-extensions
    /// marker (type 0, length 0).
    pub fn encode_v3(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(V3_HEADER_LEN + 8);
        b.extend_from_slice(&self.magic);
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.backing_file_offset.to_be_bytes());
        b.extend_from_slice(&self.backing_file_size.to_be_bytes());
        b.extend_from_slice(&self.cluster_bits.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.crypt_method.to_be_bytes());
        b.extend_from_slice(&self.l1_size.to_be_bytes());
        b.extend_from_slice(&self.l1_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_clusters.to_be_bytes());
        b.extend_from_slice(&self.nb_snapshots.to_be_bytes());
        b.extend_from_slice(&self.snapshots_offset.to_be_bytes());
        b.extend_from_slice(&self.incompatible_features.to_be_bytes());
        b.extend_from_slice(&self.compatible_features.to_be_bytes());
        b.extend_from_slice(&self.autoclear_features.to_be_bytes());
        b.extend_from_slice(&self.refcount_order.to_be_bytes());
        b.extend_from_slice(&self.header_length.to_be_bytes());
        b.push(self.compression_type);
        b.resize(V3_HEADER_LEN, 0); // header padding, zeroed per the spec
        b.extend_from_slice(&[0; 8]); // end of header extensions
        b
    }

    /// Parses the header from the start of the first cluster. `bytes` holds
    /// at least [`V2_HEADER_LEN`] bytes; v3 fields past its end read as 0.
    pub fn decode(bytes: &[u8]) -> Result<RawHeader, Qcow2Error> {
        if bytes.len() < V2_HEADER_LEN {
            return Err(Qcow2Error::NotQcow2 {
                reason: format!("only {} bytes, shorter than a header", bytes.len()),
            });
        }
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..][..4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..][..8].try_into().unwrap_or([0; 8]));
        let mut raw = RawHeader {
            magic: [bytes[0], bytes[1], bytes[2], bytes[3]],
            version: u32_at(4),
            backing_file_offset: u64_at(8),
            backing_file_size: u32_at(16),
            cluster_bits: u32_at(20),
            size: u64_at(24),
            crypt_method: u32_at(32),
            l1_size: u32_at(36),
            l1_table_offset: u64_at(40),
            refcount_table_offset: u64_at(48),
            refcount_table_clusters: u32_at(56),
            nb_snapshots: u32_at(60),
            snapshots_offset: u64_at(64),
            refcount_order: 4,
            header_length: V2_HEADER_LEN as u32,
            ..RawHeader::default()
        };
        if raw.magic != MAGIC {
            return Err(Qcow2Error::NotQcow2 {
                reason: format!(
                    "magic {:02x?} at offset 0, expected {MAGIC:02x?}",
                    raw.magic
                ),
            });
        }
        if raw.version >= 3 && bytes.len() >= 104 {
            raw.incompatible_features = u64_at(72);
            raw.compatible_features = u64_at(80);
            raw.autoclear_features = u64_at(88);
            raw.refcount_order = u32_at(96);
            raw.header_length = u32_at(100);
            if raw.header_length as usize > COMPRESSION_TYPE_AT && bytes.len() > COMPRESSION_TYPE_AT
            {
                raw.compression_type = bytes[COMPRESSION_TYPE_AT];
            }
        }
        Ok(raw)
    }
}

/// The header as the writer and reader use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: u32,
    pub geometry: Geometry,
    pub l1_entries: u32,
    pub l1_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub compression: Compression,
}

impl Header {
    /// The raw version 3 header: refcount_order 4, no backing file, no
    /// encryption, no extensions besides the end marker.
    pub fn to_raw(self) -> RawHeader {
        let zstd = self.compression == Compression::Zstd;
        RawHeader {
            magic: MAGIC,
            version: 3,
            cluster_bits: self.geometry.cluster_bits,
            size: self.geometry.virtual_size,
            l1_size: self.l1_entries,
            l1_table_offset: self.l1_offset,
            refcount_table_offset: self.refcount_table_offset,
            refcount_table_clusters: self.refcount_table_clusters,
            incompatible_features: if zstd { INCOMPAT_COMPRESSION } else { 0 },
            refcount_order: 4,
            header_length: V3_HEADER_LEN as u32,
            compression_type: if zstd {
                COMPRESSION_TYPE_ZSTD
            } else {
                COMPRESSION_TYPE_ZLIB
            },
            ..RawHeader::default()
        }
    }

    /// Validates a parsed header for reading, naming the first feature this
    /// implementation cannot honour.
    pub fn from_raw(raw: &RawHeader) -> Result<Header, Qcow2Error> {
        let unsupported = |what: String| Err(Qcow2Error::UnsupportedFeature(what));
        if raw.version != 2 && raw.version != 3 {
            return Err(Qcow2Error::UnsupportedVersion(raw.version));
        }
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&raw.cluster_bits) {
            return Err(Qcow2Error::ClusterBits(raw.cluster_bits));
        }
        if raw.backing_file_offset != 0 {
            return unsupported(format!(
                "backing file (name at host offset {:#x})",
                raw.backing_file_offset
            ));
        }
        match raw.crypt_method {
            0 => {}
            1 => return unsupported("encryption (AES)".into()),
            2 => return unsupported("encryption (LUKS)".into()),
            other => return unsupported(format!("encryption (method {other})")),
        }
        let incompat = raw.incompatible_features;
        if incompat & INCOMPAT_DATA_FILE != 0 {
            return unsupported("external data file (incompatible bit 2)".into());
        }
        if incompat & INCOMPAT_EXTL2 != 0 {
            return unsupported("extended L2 entries (incompatible bit 4)".into());
        }
        if incompat & INCOMPAT_CORRUPT != 0 {
            return unsupported("image marked corrupt (incompatible bit 1)".into());
        }
        if incompat & !INCOMPAT_KNOWN != 0 {
            return unsupported(format!(
                "unknown incompatible feature bits {:#x}",
                incompat & !INCOMPAT_KNOWN
            ));
        }
        let compression = match (incompat & INCOMPAT_COMPRESSION != 0, raw.compression_type) {
            (false, _) | (true, COMPRESSION_TYPE_ZLIB) => Compression::Zlib,
            (true, COMPRESSION_TYPE_ZSTD) => Compression::Zstd,
            (true, other) => return unsupported(format!("compression type {other}")),
        };
        let geometry = Geometry {
            cluster_bits: raw.cluster_bits,
            virtual_size: raw.size,
        };
        if (raw.l1_size as u64) < geometry.l1_entries() {
            return Err(Qcow2Error::Corrupt {
                what: "L1 table too small for the virtual size",
                host_offset: raw.l1_table_offset,
            });
        }
        Ok(Header {
            version: raw.version,
            geometry,
            l1_entries: raw.l1_size,
            l1_offset: raw.l1_table_offset,
            refcount_table_offset: raw.refcount_table_offset,
            refcount_table_clusters: raw.refcount_table_clusters,
            compression,
        })
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod unit {
    use super::super::{Compression, Geometry};
    use super::{Header, RawHeader, V3_HEADER_LEN};

    #[test]
    fn header_roundtrips_through_raw_bytes() {
        let header = Header {
            version: 3,
            geometry: Geometry {
                cluster_bits: 16,
                virtual_size: 10 << 20,
            },
            l1_entries: 1,
            l1_offset: 0x50000,
            refcount_table_offset: 0x40000,
            refcount_table_clusters: 1,
            compression: Compression::Zstd,
        };
        let bytes = header.to_raw().encode_v3();
        assert_eq!(bytes.len(), V3_HEADER_LEN + 8);
        assert_eq!(&bytes[..4], b"QFI\xfb");
        assert_eq!(bytes[104], 1, "compression_type zstd");
        assert_eq!(bytes[79], 1 << 3, "incompatible bit 3");
        let back = Header::from_raw(&RawHeader::decode(&bytes).unwrap()).unwrap();
        assert_eq!(back, header);
    }
}
