//! qcow2 disk images: a streaming, deterministic writer and a reader.
//!
//! Owns the qcow2 on-disk format (QEMU `docs/interop/qcow2.txt`): the header,
//! L1/L2 cluster mapping, refcount table and blocks, and compressed cluster
//! descriptors (zlib raw deflate and zstd).
//!
//! What flows in and out:
//! - [`Qcow2Writer`] takes guest data in strictly increasing, non-overlapping
//!   guest offsets (gaps read as zeros) and streams a version 3 image into any
//!   `Write + Seek`. Data clusters are appended as they complete, each L2
//!   table right after its guest range is done, and the refcount blocks,
//!   refcount table and L1 table at the end. Backwards seeks: the header
//!   rewrite in [`Qcow2Writer::finish`], and with compression, the rewrite
//!   of a host cluster of packed compressed clusters that standard clusters
//!   were appended behind. It never materialises a full-size raw file, and
//!   all-zero clusters are never allocated.
//! - [`Qcow2Reader`] presents a qcow2 image (version 2 or 3) as `Read + Seek`
//!   over the guest address space.
//!
//! What it must not do: open paths, spawn processes, read the clock or use
//! randomness. The output is a pure function of the input bytes and the
//! options: the same input gives a byte-identical file (no hash maps decide
//! any order, no timestamps, compression is single-threaded at fixed levels).
//!
//! Not supported (the reader errors naming them): backing files, encryption,
//! external data files, extended L2 entries (subclusters). Internal snapshots
//! are ignored by the reader (it reads the active L1 table) and never written.

// Offsets and sizes come from crafted images in the reader: nothing here may
// wrap or panic on them. Every `+ - * / %` is a `checked_*` ending in a typed
// error, restructured away, or carries a one-line proof by its `#[allow]`.
#![deny(clippy::arithmetic_side_effects)]

mod codec;
mod header;
mod host;
mod reader;
mod writer;

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod crafted_tests;

/// The one meaning of `MKIMG_REQUIRE_TOOLS`, the same file mkimg's own
/// unit and integration tests include (see its module doc); this crate uses
/// only part of it.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../tests/support/tools.rs"]
mod test_tools;

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;

use std::io;

pub use reader::Qcow2Reader;
pub use writer::{Qcow2Stats, Qcow2Writer};

/// How data clusters are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Every non-zero cluster is stored as is.
    #[default]
    None,
    /// Raw deflate (no zlib header, 4 KiB window), QEMU's default type.
    Zlib,
    /// zstd frames; sets the header's compression_type and incompatible bit 3.
    Zstd,
}

impl Compression {
    /// The name `qemu-img info` prints for this compression type.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Zstd => "zstd",
        }
    }
}

/// Options of the image written by [`Qcow2Writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcow2Options {
    /// log2 of the cluster size; 16 (64 KiB) by default, 9..=21 allowed.
    pub cluster_bits: u32,
    /// Compression of data clusters.
    pub compression: Compression,
}

impl Default for Qcow2Options {
    fn default() -> Self {
        Qcow2Options {
            cluster_bits: DEFAULT_CLUSTER_BITS,
            compression: Compression::None,
        }
    }
}

/// 64 KiB clusters, as `qemu-img create` uses.
pub const DEFAULT_CLUSTER_BITS: u32 = 16;
/// Smallest cluster size the format allows (512 bytes).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// Largest cluster size QEMU can open (2 MiB).
pub const MAX_CLUSTER_BITS: u32 = 21;

/// Errors of the qcow2 writer and reader; each names the offset involved.
#[derive(Debug, thiserror::Error)]
pub enum Qcow2Error {
    #[error("cluster_bits {0} is out of range {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS}")]
    ClusterBits(u32),
    #[error(
        "virtual size {virtual_size} needs an L1 table of {l1_entries} entries, \
         more than the {max} QEMU accepts"
    )]
    VirtualSizeTooLarge {
        virtual_size: u64,
        l1_entries: u64,
        max: u64,
    },
    #[error(
        "write at guest offset {offset:#x} goes backwards: \
         the previous write ended at guest offset {previous_end:#x}"
    )]
    BackwardsWrite { offset: u64, previous_end: u64 },
    #[error(
        "write of {len} bytes at guest offset {offset:#x} ends past \
         the virtual size {virtual_size:#x}"
    )]
    PastVirtualSize {
        offset: u64,
        len: u64,
        virtual_size: u64,
    },
    #[error("host offset {host_offset:#x} is beyond what a qcow2 {what} can address")]
    HostOffsetTooLarge {
        host_offset: u64,
        what: &'static str,
    },
    #[error("compressing guest cluster at offset {guest_offset:#x}: {reason}")]
    Compress { guest_offset: u64, reason: String },
    #[error(
        "decompressing guest cluster at offset {guest_offset:#x} \
         (host offset {host_offset:#x}): {reason}"
    )]
    Decompress {
        guest_offset: u64,
        host_offset: u64,
        reason: String,
    },
    #[error("not a qcow2 image: {reason}")]
    NotQcow2 { reason: String },
    #[error("unsupported qcow2 version {0} (only 2 and 3 are defined)")]
    UnsupportedVersion(u32),
    #[error("unsupported qcow2 feature: {0}")]
    UnsupportedFeature(String),
    #[error("refcount of the host cluster at offset {host_offset:#x} would overflow 16 bits")]
    RefcountOverflow { host_offset: u64 },
    #[error("corrupt qcow2 image: {what} at host offset {host_offset:#x}")]
    Corrupt {
        what: &'static str,
        host_offset: u64,
    },
    #[error("I/O error while {action} at host offset {host_offset:#x}")]
    Io {
        action: &'static str,
        host_offset: u64,
        #[source]
        source: io::Error,
    },
}

/// Sizes derived from the cluster size and the virtual size, shared by the
/// writer and the reader.
///
/// `cluster_bits` is always in `MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS` (9..=21):
/// the writer and `Header::from_raw` check it before building one. The
/// methods rely on that and use shifts and masks of powers of two, so
/// nothing here can overflow: the largest value is `l2_span` = 2^39.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub cluster_bits: u32,
    pub virtual_size: u64,
}

impl Geometry {
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Where `offset` lies within its cluster (`offset % cluster_size`).
    pub fn offset_in_cluster(&self, offset: u64) -> u64 {
        offset & !(u64::MAX << self.cluster_bits)
    }

    /// 64-bit entries in one L2 table (one cluster).
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / 8
    }

    /// Guest bytes mapped by one L2 table (entries times cluster size).
    pub fn l2_span(&self) -> u64 {
        self.l2_entries() << self.cluster_bits
    }

    /// The L1 index and the index within the L2 table of guest cluster
    /// `index` (`index / l2_entries`, `index % l2_entries`).
    pub fn table_indices(&self, index: u64) -> (u64, u64) {
        let l2_bits = self.l2_entries().trailing_zeros();
        (index >> l2_bits, index & !(u64::MAX << l2_bits))
    }

    /// Entries of the L1 table needed to map the whole virtual size.
    pub fn l1_entries(&self) -> u64 {
        self.virtual_size.div_ceil(self.l2_span())
    }

    /// Bit position of the sector-count field in a compressed descriptor
    /// (the spec's `x = 62 - (cluster_bits - 8)`), and the mask of that
    /// field (`cluster_bits - 8` bits wide).
    pub fn compressed_fields(&self) -> (u32, u64) {
        #[allow(clippy::arithmetic_side_effects)] // 9 <= cluster_bits <= 21 (see the type doc)
        let sector_bits = self.cluster_bits - 8;
        #[allow(clippy::arithmetic_side_effects)] // sector_bits <= 13 < 62
        let shift = 62 - sector_bits;
        (shift, !(u64::MAX << sector_bits))
    }
}

/// L1 and L2 entry bit 63: the cluster's refcount is exactly one.
pub(crate) const FLAG_COPIED: u64 = 1 << 63;
/// L2 entry bit 62: the cluster is compressed.
pub(crate) const FLAG_COMPRESSED: u64 = 1 << 62;
/// Standard cluster descriptor bit 0: the cluster reads as zeros (v3).
pub(crate) const FLAG_ZERO: u64 = 1;
/// Bits 9-55 of L1 entries and standard L2 descriptors: a host offset.
pub(crate) const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// QEMU refuses L1 tables larger than 32 MiB.
pub(crate) const MAX_L1_ENTRIES: u64 = 32 * 1024 * 1024 / 8;
/// Compressed data is addressed in 512-byte sectors.
pub(crate) const SECTOR_SIZE: u64 = 512;
