//! The block map of a raw image (`IMAGE.bmap`, bmaptool's format 2.0):
//! which 4 KiB blocks hold data, each range with its SHA-256, so
//! `bmaptool copy` (and `mkimg flash`) writes only those and checks them.
//!
//! Computed while the disk is assembled, from the same writes the raw and
//! compressed sinks get ([`crate::disk::blocks`]): nothing is read back.
//! A block is mapped when it holds a non-zero byte or lies in a partition
//! the board marks `sparse = false` (those are written even when zero, so
//! an old U-Boot environment on the card is really wiped). bmaptool's own
//! `create` maps what the file system has allocated instead; on the sparse
//! raw file mkimg writes the two agree except for all-zero blocks inside
//! written data, which mkimg leaves unmapped (they read as zeros from the
//! image either way).
//!
//! One `.bmap` serves every raw-based output of an image: `IMAGE.raw.bmap`
//! is found by `bmaptool copy` for `IMAGE.raw`, `IMAGE.raw.zst`,
//! `IMAGE.raw.xz` and `IMAGE.raw.gz` alike (it strips one extension at a
//! time looking for `.bmap`), and they all decompress to the same bytes.
//!
//! Written here rather than taken from a crate: the `bmap-parser` crate
//! reads the format but does not write it, and its builder needs the whole
//! image to compute checksums afterwards.
//!
//! [`read`] parses a `.bmap` back (from anywhere: hostile input) for
//! `mkimg flash`.

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::disk::blocks::{BlockError, BlockEvent, Blocks};

pub mod read;

/// bmaptool's default block size, and the one mkimg uses.
pub const BMAP_BLOCK: u64 = 4096;

/// One range of mapped blocks, `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmapRange {
    pub first: u64,
    pub last: u64,
    /// Hex SHA-256 of the range's bytes (the image's, up to its end).
    pub sha256: String,
}

/// A finished block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub block_size: u64,
    pub blocks_count: u64,
    pub mapped_blocks: u64,
    pub ranges: Vec<BmapRange>,
}

/// Builds a [`Bmap`] from the disk's writes (increasing offsets).
pub struct BmapBuilder {
    blocks: Blocks,
    open: Option<(u64, u64, Sha256)>,
    ranges: Vec<BmapRange>,
    mapped: u64,
}

impl BmapBuilder {
    /// `forced`: byte ranges mapped even when zero (`sparse = false`).
    pub fn new(image_size: u64, forced: &[(u64, u64)]) -> Result<BmapBuilder, BlockError> {
        Ok(BmapBuilder {
            blocks: Blocks::new(image_size, BMAP_BLOCK, forced)?,
            open: None,
            ranges: Vec::new(),
            mapped: 0,
        })
    }

    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let BmapBuilder {
            blocks,
            open,
            ranges,
            mapped,
        } = self;
        blocks.write_at(offset, data, &mut |e| on_event(e, open, ranges, mapped))
    }

    pub fn finish(self) -> Bmap {
        let BmapBuilder {
            blocks,
            mut open,
            mut ranges,
            mut mapped,
        } = self;
        let image_size = blocks.image_size();
        let blocks_count = blocks.count();
        blocks.finish(&mut |e| on_event(e, &mut open, &mut ranges, &mut mapped));
        close(&mut open, &mut ranges);
        Bmap {
            image_size,
            block_size: BMAP_BLOCK,
            blocks_count,
            mapped_blocks: mapped,
            ranges,
        }
    }
}

fn on_event(
    event: BlockEvent<'_>,
    open: &mut Option<(u64, u64, Sha256)>,
    ranges: &mut Vec<BmapRange>,
    mapped: &mut u64,
) {
    match event {
        BlockEvent::Mapped { index, data } => {
            *mapped = mapped.saturating_add(1);
            match open {
                Some((_, last, hasher)) if last.checked_add(1) == Some(index) => {
                    *last = index;
                    hasher.update(data);
                }
                _ => {
                    close(open, ranges);
                    let mut hasher = Sha256::new();
                    hasher.update(data);
                    *open = Some((index, index, hasher));
                }
            }
        }
        BlockEvent::Unmapped { .. } => close(open, ranges),
    }
}

fn close(open: &mut Option<(u64, u64, Sha256)>, ranges: &mut Vec<BmapRange>) {
    if let Some((first, last, hasher)) = open.take() {
        ranges.push(BmapRange {
            first,
            last,
            sha256: hex(&hasher.finalize()),
        });
    }
}

/// The checksum field's placeholder while the file's own checksum is taken.
const ZERO_SUM: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Bmap {
    /// The `.bmap` text, bmaptool format 2.0, with its file checksum.
    pub fn to_xml(&self) -> String {
        let with = |sum: &str| {
            let mut xml = String::new();
            xml.push_str("<?xml version=\"1.0\" ?>\n");
            xml.push_str("<!-- Block map written by mkimg: see bmaptool(1).\n");
            xml.push_str("     Mapped ranges carry the SHA-256 of their bytes. -->\n");
            xml.push_str("<bmap version=\"2.0\">\n");
            xml.push_str(&format!(
                "    <ImageSize> {} </ImageSize>\n",
                self.image_size
            ));
            xml.push_str(&format!(
                "    <BlockSize> {} </BlockSize>\n",
                self.block_size
            ));
            xml.push_str(&format!(
                "    <BlocksCount> {} </BlocksCount>\n",
                self.blocks_count
            ));
            xml.push_str(&format!(
                "    <MappedBlocksCount> {} </MappedBlocksCount>\n",
                self.mapped_blocks
            ));
            xml.push_str("    <ChecksumType> sha256 </ChecksumType>\n");
            xml.push_str(&format!(
                "    <BmapFileChecksum> {sum} </BmapFileChecksum>\n"
            ));
            xml.push_str("    <BlockMap>\n");
            for r in &self.ranges {
                if r.first == r.last {
                    xml.push_str(&format!(
                        "        <Range chksum=\"{}\"> {} </Range>\n",
                        r.sha256, r.first
                    ));
                } else {
                    xml.push_str(&format!(
                        "        <Range chksum=\"{}\"> {}-{} </Range>\n",
                        r.sha256, r.first, r.last
                    ));
                }
            }
            xml.push_str("    </BlockMap>\n");
            xml.push_str("</bmap>\n");
            xml
        };
        let sum = hex(&Sha256::digest(with(ZERO_SUM).as_bytes()));
        with(&sum)
    }

    /// The bytes `[start, end)` of `range`: whole blocks, the last one cut
    /// at the image's end. `None` when the numbers overflow (a parsed map's
    /// ranges never do: they lie inside the image).
    pub fn byte_range(&self, range: &BmapRange) -> Option<(u64, u64)> {
        let start = range.first.checked_mul(self.block_size)?;
        let end = range
            .last
            .checked_add(1)?
            .saturating_mul(self.block_size)
            .min(self.image_size);
        (start < end).then_some((start, end))
    }

    /// Bytes the mapped ranges cover (the tail block counts its real size).
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| {
                let start = r.first.saturating_mul(self.block_size);
                let end = r
                    .last
                    .saturating_add(1)
                    .saturating_mul(self.block_size)
                    .min(self.image_size);
                end.saturating_sub(start)
            })
            .fold(0, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests;
