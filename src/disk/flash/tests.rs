#![allow(clippy::arithmetic_side_effects)]

use std::io::Cursor;

use super::*;
use crate::disk::bmap::BmapBuilder;

/// A 64 KiB + 100 byte image: data in blocks 0, 3-4 and the short tail.
fn image() -> (Vec<u8>, Bmap) {
    let size = 16 * 4096 + 100;
    let mut img = vec![0u8; size];
    img[10..20].fill(1);
    img[3 * 4096..5 * 4096].fill(2);
    img[16 * 4096..].fill(3);
    let mut b = BmapBuilder::new(size as u64, &[]).unwrap();
    b.write_at(0, &img).unwrap();
    (img, b.finish())
}

fn flash(
    bmap: &Bmap,
    img: &[u8],
    target: &mut Vec<u8>,
    seekable: bool,
) -> Result<Vec<[u8; 32]>, FlashError> {
    let mut t = Cursor::new(std::mem::take(target));
    let mut total = 0;
    let result = if seekable {
        write_mapped(
            bmap,
            RangeDigests::Check,
            &mut Seekable(Cursor::new(img)),
            &mut t,
            &mut |n| total += n,
        )
    } else {
        write_mapped(
            bmap,
            RangeDigests::Check,
            &mut Sequential(img),
            &mut t,
            &mut |n| total += n,
        )
    };
    *target = t.into_inner();
    if result.is_ok() {
        assert_eq!(total, bmap.mapped_bytes());
    }
    result
}

#[test]
fn only_mapped_ranges_change_and_they_verify() {
    let (img, bmap) = image();
    assert_eq!(bmap.ranges.len(), 3, "{bmap:?}");
    for seekable in [true, false] {
        let mut target = vec![0x5a; img.len() + 4096];
        let digests = flash(&bmap, &img, &mut target, seekable).unwrap();
        for (i, (&t, &s)) in target.iter().zip(&img).enumerate() {
            let block = i as u64 / 4096;
            let mapped = bmap
                .ranges
                .iter()
                .any(|r| r.first <= block && block <= r.last);
            assert_eq!(t, if mapped { s } else { 0x5a }, "byte {i}");
        }
        assert!(target[img.len()..].iter().all(|&b| b == 0x5a));
        let mut read = 0;
        verify_mapped(&bmap, &digests, &mut Cursor::new(&target), &mut |n| {
            read += n
        })
        .unwrap();
        assert_eq!(read, bmap.mapped_bytes());

        // A byte changed on the medium after the write: that range is named.
        target[3 * 4096 + 7] ^= 1;
        let err =
            verify_mapped(&bmap, &digests, &mut Cursor::new(&target), &mut |_| {}).unwrap_err();
        match err {
            FlashError::Verify { place, .. } => assert_eq!(
                place,
                Place {
                    first: 3,
                    last: 4,
                    start: 3 * 4096,
                    end: 5 * 4096
                }
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_damaged_image_range_is_named() {
    let (mut img, bmap) = image();
    img[16 * 4096 + 50] ^= 0xff;
    let mut target = vec![0; img.len()];
    let err = flash(&bmap, &img, &mut target, false).unwrap_err();
    match &err {
        FlashError::ImageRange {
            place, expected, ..
        } => {
            assert_eq!((place.first, place.last), (16, 16));
            assert_eq!((place.start, place.end), (16 * 4096, 16 * 4096 + 100));
            assert_eq!(*expected, bmap.ranges[2].sha256);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("partial image"), "{err}");
}

#[test]
fn a_short_or_long_image_is_not_the_maps() {
    let (img, bmap) = image();
    let mut target = vec![0; img.len()];
    for seekable in [true, false] {
        let err = flash(&bmap, &img[..16 * 4096 + 10], &mut target, seekable).unwrap_err();
        assert!(
            matches!(err, FlashError::Truncated { place } if place.first == 16),
            "{err:?}"
        );
        let long = [img.clone(), vec![0; 5]].concat();
        let err = flash(&bmap, &long, &mut target, seekable).unwrap_err();
        assert!(
            matches!(err, FlashError::Size { actual, expected } if actual == expected + 5),
            "{err:?}"
        );
    }
    // Cut inside a hole before a range: the skip runs out.
    let err = flash(&bmap, &img[..2 * 4096], &mut target, false).unwrap_err();
    assert!(
        matches!(err, FlashError::Truncated { place } if place.first == 3),
        "{err:?}"
    );
}

#[test]
fn the_whole_image_map_covers_every_block_once() {
    for (size, block) in [
        (0u64, 4096u64),
        (1, 4096),
        (3 << 20, 4096),
        ((3 << 20) + 1, 512),
    ] {
        let map = whole_image_map(size, block);
        let mut next = 0;
        for r in &map.ranges {
            assert_eq!(r.first, next);
            assert!(r.last - r.first < (CHUNK as u64) / block);
            next = r.last + 1;
        }
        assert_eq!(next, map.blocks_count);
        assert_eq!(map.mapped_bytes(), size);
        // Recorded, not checked: any image of that size goes through.
        let img = vec![9u8; size as usize];
        let mut t = Cursor::new(vec![0u8; size as usize]);
        let digests = write_mapped(
            &map,
            RangeDigests::Record,
            &mut Sequential(&img[..]),
            &mut t,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(t.get_ref(), &img);
        verify_mapped(&map, &digests, &mut t, &mut |_| {}).unwrap();
    }
}
