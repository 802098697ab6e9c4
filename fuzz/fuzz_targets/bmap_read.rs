//! `.bmap` bytes → `parse_bmap`, as is and with `BmapFileChecksum` made
//! right again (a mutated file almost never keeps a valid checksum, and
//! the range checks come after it). An accepted map must hold what the
//! parser promises `mkimg flash`: ranges in order, inside the image, with
//! byte ranges that do not overflow, and it writes back to the same map.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimg::digest::sha256_hex;
use mkimg::disk::bmap::read::parse_bmap;

const OPEN: &str = "<BmapFileChecksum>";
const CLOSE: &str = "</BmapFileChecksum>";

/// The text with its file checksum recomputed, bmaptool's way.
fn resum(text: &str) -> Option<String> {
    let start = text.find(OPEN)? + OPEN.len();
    let end = start + text[start..].find(CLOSE)?;
    let zeros = "0".repeat(64);
    let zeroed = format!("{}{}{}", &text[..start], zeros, &text[end..]);
    let sum = sha256_hex(zeroed.as_bytes());
    Some(zeroed.replacen(&zeros, &sum, 1))
}

fn check(data: &[u8]) {
    let Ok(bmap) = parse_bmap(data) else {
        return;
    };
    let mut previous: Option<u64> = None;
    let mut blocks = 0u64;
    for range in &bmap.ranges {
        assert!(range.first <= range.last);
        assert!(previous.is_none_or(|p| p < range.first));
        assert!(range.last < bmap.blocks_count);
        let (start, end) = bmap.byte_range(range).expect("a range inside the image");
        assert!(start < end && end <= bmap.image_size);
        assert_eq!(range.sha256.len(), 64);
        previous = Some(range.last);
        blocks += range.last - range.first + 1;
    }
    assert_eq!(blocks, bmap.mapped_blocks);
    assert!(bmap.mapped_bytes() <= bmap.image_size);
    assert_eq!(parse_bmap(bmap.to_xml().as_bytes()).as_ref(), Ok(&bmap));
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = std::str::from_utf8(data).ok().and_then(resum) {
        check(fixed.as_bytes());
    }
});
