//! Reading a `.bmap` back: the file `mkimg flash` follows, which may come
//! from anywhere (a download beside an image, another tool's output), so
//! it is parsed as hostile input into the same [`Bmap`] the writer emits.
//!
//! In: the file's bytes (at most [`MAX_BMAP_BYTES`]). Out: a [`Bmap`]
//! whose ranges are in increasing order, do not overlap, lie inside the
//! image, each carry a 64-digit lower-case SHA-256, and add up to
//! `MappedBlocksCount`; or a [`BmapReadError`] naming the line.
//!
//! Versions: 2.x, and 1.4 (bmaptool's own name for what became 2.0: the
//! same format) — what bmaptool 3.x reads with checksums. 1.0–1.3 are
//! refused: they have no checksums (or SHA-1, in 1.3), so nothing written
//! could be verified; `bmaptool create` has written 2.0 with SHA-256 for a
//! decade. Only `ChecksumType` sha256 is accepted, for the same reason.
//!
//! Stricter than bmaptool where bmaptool would misbehave on a bad file:
//! it takes ranges in any order and lets them overlap, and only notices
//! a wrong `MappedBlocksCount` after the copy; here each is refused before
//! anything is written (ranges must be in order anyway: a compressed image
//! is read front to back). The file's own checksum (`BmapFileChecksum`) is
//! verified the way bmaptool does it: the first occurrence of the stated
//! digest in the file is replaced by 64 zeros and the whole file hashed.
//!
//! XML by `roxmltree`: no DTD (so no entity expansion), a node limit.
//! Elements bmaptool ignores are ignored; a known element given twice is
//! refused (bmaptool would silently take the first).
//!
//! Must not: read files (the caller passes bytes), panic or allocate
//! beyond a small multiple of the input on any input (`fuzz/` runs it).

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::disk::bmap::{Bmap, BmapRange};

/// Largest `.bmap` accepted: a 64 GiB image with 300,000 fragments is
/// ~35 MB of ranges; mkimg's own are a few KiB.
pub const MAX_BMAP_BYTES: usize = 64 << 20;

/// XML nodes roxmltree may build: three per range line (element, text,
/// whitespace), with room to spare for MAX_BMAP_BYTES of ranges.
const MAX_NODES: u32 = 4_000_000;

/// Block sizes accepted: powers of two from one sector to 1 MiB.
const MIN_BLOCK: u64 = 512;
const MAX_BLOCK: u64 = 1 << 20;

/// Hex digits of a SHA-256.
const SHA256_HEX: usize = 64;

/// Why a `.bmap` was refused. `line` is 1-based in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmapReadError {
    #[error("{size} bytes: more than the {MAX_BMAP_BYTES} a block map may have")]
    TooLarge { size: usize },
    #[error("not UTF-8 text (byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("not well-formed XML: {message}")]
    Xml { message: String },
    #[error("line {line}: the root element is <{found}>, not <bmap>")]
    NotBmap { line: u32, found: String },
    #[error("line {line}: bmap format version {version:?} is not supported: {reason}")]
    Version {
        line: u32,
        version: String,
        reason: &'static str,
    },
    #[error("line {line}: <{element}> is missing from <{parent}>")]
    Missing {
        line: u32,
        element: &'static str,
        parent: &'static str,
    },
    #[error("line {line}: <{element}> is given twice")]
    Duplicate { line: u32, element: &'static str },
    #[error("line {line}: <{element}> {text:?} is not a decimal number below 2^64")]
    Number {
        line: u32,
        element: &'static str,
        text: String,
    },
    #[error(
        "line {line}: checksum type {found:?}: mkimg verifies sha256 only \
         (`bmaptool create` writes sha256 by default)"
    )]
    ChecksumType { line: u32, found: String },
    #[error("line {line}: block size {size}: not a power of two from 512 to 1 MiB")]
    BlockSize { line: u32, size: u64 },
    #[error(
        "line {line}: BlocksCount is {count}, but an image of {image_size} bytes has \
         {expected} blocks of {block_size} bytes"
    )]
    BlocksCount {
        line: u32,
        count: u64,
        image_size: u64,
        block_size: u64,
        expected: u64,
    },
    #[error("line {line}: range {text:?} is not FIRST-LAST or BLOCK (decimal block numbers)")]
    RangeSyntax { line: u32, text: String },
    #[error("line {line}: range {first}-{last} ends before it starts")]
    RangeBackwards { line: u32, first: u64, last: u64 },
    #[error(
        "line {line}: range {first}-{last} does not start after the previous range's \
         last block {previous}: ranges must be in increasing order and must not overlap"
    )]
    RangeOrder {
        line: u32,
        first: u64,
        last: u64,
        previous: u64,
    },
    #[error("line {line}: range {first}-{last} ends past the image's last block {last_block}")]
    RangeOutside {
        line: u32,
        first: u64,
        last: u64,
        last_block: u64,
    },
    #[error("line {line}: range {first}-{last} has no chksum attribute")]
    RangeUnchecked { line: u32, first: u64, last: u64 },
    #[error("line {line}: checksum {text:?} is not {SHA256_HEX} hex digits")]
    Digest { line: u32, text: String },
    #[error("MappedBlocksCount is {declared}, but the ranges cover {counted} blocks")]
    MappedCount { declared: u64, counted: u64 },
    #[error(
        "the file's checksum does not match: it states {stated}, its content hashes \
         to {computed} (the block map was changed or damaged)"
    )]
    FileChecksum { stated: String, computed: String },
}

/// Parse and check a `.bmap` (see the module doc for what is refused).
pub fn parse_bmap(bytes: &[u8]) -> Result<Bmap, BmapReadError> {
    if bytes.len() > MAX_BMAP_BYTES {
        return Err(BmapReadError::TooLarge { size: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| BmapReadError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(text, options).map_err(|e| BmapReadError::Xml {
            message: e.to_string(),
        })?;
    let line = |node: roxmltree::Node<'_, '_>| doc.text_pos_at(node.range().start).row;
    let root = doc.root_element();
    if root.tag_name().name() != "bmap" || root.tag_name().namespace().is_some() {
        return Err(BmapReadError::NotBmap {
            line: line(root),
            found: root.tag_name().name().to_owned(),
        });
    }
    check_version(root.attribute("version"), line(root))?;

    let field = |name: &'static str| -> Result<roxmltree::Node<'_, '_>, BmapReadError> {
        one_child(root, name, "bmap", &line)
    };
    let number = |name: &'static str| -> Result<(u64, u32), BmapReadError> {
        let node = field(name)?;
        let text = node.text().unwrap_or("");
        let value = parse_decimal(text.trim()).ok_or_else(|| BmapReadError::Number {
            line: line(node),
            element: name,
            text: text.trim().to_owned(),
        })?;
        Ok((value, line(node)))
    };
    let (image_size, _) = number("ImageSize")?;
    let (block_size, block_line) = number("BlockSize")?;
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(BmapReadError::BlockSize {
            line: block_line,
            size: block_size,
        });
    }
    let (blocks_count, count_line) = number("BlocksCount")?;
    let expected = image_size.div_ceil(block_size);
    if blocks_count != expected {
        return Err(BmapReadError::BlocksCount {
            line: count_line,
            count: blocks_count,
            image_size,
            block_size,
            expected,
        });
    }
    let (mapped_blocks, _) = number("MappedBlocksCount")?;
    let kind = field("ChecksumType")?;
    let kind_text = kind.text().unwrap_or("").trim();
    if !kind_text.eq_ignore_ascii_case("sha256") {
        return Err(BmapReadError::ChecksumType {
            line: line(kind),
            found: kind_text.to_owned(),
        });
    }
    let file_sum = field("BmapFileChecksum")?;
    let stated = file_sum.text().unwrap_or("").trim();
    let stated = parse_digest(stated).ok_or_else(|| BmapReadError::Digest {
        line: line(file_sum),
        text: stated.to_owned(),
    })?;

    let map = field("BlockMap")?;
    let mut ranges = Vec::new();
    let mut counted = 0u64;
    let mut previous: Option<u64> = None;
    for node in map.children().filter(|n| n.is_element()) {
        if node.tag_name().name() != "Range" {
            continue;
        }
        let at = line(node);
        let body = node.text().unwrap_or("").trim();
        let (first, last) = parse_range(body).ok_or_else(|| BmapReadError::RangeSyntax {
            line: at,
            text: body.to_owned(),
        })?;
        if first > last {
            return Err(BmapReadError::RangeBackwards {
                line: at,
                first,
                last,
            });
        }
        if let Some(previous) = previous.filter(|&p| first <= p) {
            return Err(BmapReadError::RangeOrder {
                line: at,
                first,
                last,
                previous,
            });
        }
        if last >= blocks_count {
            return Err(BmapReadError::RangeOutside {
                line: at,
                first,
                last,
                last_block: blocks_count.saturating_sub(1),
            });
        }
        let sum = node
            .attribute("chksum")
            .ok_or(BmapReadError::RangeUnchecked {
                line: at,
                first,
                last,
            })?;
        let sha256 = parse_digest(sum.trim()).ok_or_else(|| BmapReadError::Digest {
            line: at,
            text: sum.to_owned(),
        })?;
        // first <= last < blocks_count <= u64::MAX: no wrap, but keep the
        // sum checked anyway (the count of all ranges is what may grow).
        let length = last
            .checked_sub(first)
            .and_then(|d| d.checked_add(1))
            .unwrap_or(u64::MAX);
        counted = counted.saturating_add(length);
        previous = Some(last);
        ranges.push(BmapRange {
            first,
            last,
            sha256,
        });
    }
    if counted != mapped_blocks {
        return Err(BmapReadError::MappedCount {
            declared: mapped_blocks,
            counted,
        });
    }
    check_file_checksum(bytes, file_sum.text().unwrap_or("").trim(), &stated)?;
    Ok(Bmap {
        image_size,
        block_size,
        blocks_count,
        mapped_blocks,
        ranges,
    })
}

/// 2.x and 1.4 are read; see the module doc.
fn check_version(version: Option<&str>, line: u32) -> Result<(), BmapReadError> {
    let text = version.unwrap_or("").trim();
    let refuse = |reason| BmapReadError::Version {
        line,
        version: text.to_owned(),
        reason,
    };
    let (major, minor) = text
        .split_once('.')
        .and_then(|(a, b)| Some((parse_decimal(a)?, parse_decimal(b)?)))
        .ok_or_else(|| refuse("not MAJOR.MINOR"))?;
    match (major, minor) {
        (2, _) | (1, 4) => Ok(()),
        (0 | 1, _) => Err(refuse(
            "before 1.4 a block map has no SHA-256 checksums, so the written data could \
             not be verified; recreate it with `bmaptool create`",
        )),
        _ => Err(refuse("newer than mkimg reads (1.4 and 2.x)")),
    }
}

/// The one child element `name` of `parent`.
fn one_child<'a, 'i>(
    parent: roxmltree::Node<'a, 'i>,
    name: &'static str,
    parent_name: &'static str,
    line: &dyn Fn(roxmltree::Node<'a, 'i>) -> u32,
) -> Result<roxmltree::Node<'a, 'i>, BmapReadError> {
    let mut found = parent
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == name);
    let first = found.next().ok_or(BmapReadError::Missing {
        line: line(parent),
        element: name,
        parent: parent_name,
    })?;
    if let Some(again) = found.next() {
        return Err(BmapReadError::Duplicate {
            line: line(again),
            element: name,
        });
    }
    Ok(first)
}

/// ASCII digits only (no sign, no `_`, no hex), at most 2^64 - 1.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `FIRST-LAST` (spaces around either allowed, as bmaptool strips them)
/// or a single block `N`.
fn parse_range(body: &str) -> Option<(u64, u64)> {
    match body.split_once('-') {
        Some((a, b)) => Some((parse_decimal(a.trim())?, parse_decimal(b.trim())?)),
        None => {
            let block = parse_decimal(body)?;
            Some((block, block))
        }
    }
}

/// 64 hex digits, lower-cased.
fn parse_digest(text: &str) -> Option<String> {
    (text.len() == SHA256_HEX && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// bmaptool's rule: the first occurrence of the digest as written in the
/// file becomes 64 `0`s, and the SHA-256 of the result is the digest.
fn check_file_checksum(bytes: &[u8], as_written: &str, stated: &str) -> Result<(), BmapReadError> {
    let needle = as_written.as_bytes();
    let mut hasher = Sha256::new();
    // The digest was found in the element's text, so it is in the file;
    // `position` only misses on an escaped form (`&#48;…`), which bmaptool
    // would fail on too.
    match bytes.windows(needle.len()).position(|w| w == needle) {
        Some(at) => {
            let end = at.saturating_add(needle.len());
            hasher.update(bytes.get(..at).unwrap_or_default());
            hasher.update([b'0'; SHA256_HEX]);
            hasher.update(bytes.get(end..).unwrap_or_default());
        }
        None => hasher.update(bytes),
    }
    let computed = hex(&hasher.finalize());
    if computed != stated {
        return Err(BmapReadError::FileChecksum {
            stated: stated.to_owned(),
            computed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
