#![allow(clippy::arithmetic_side_effects)]

use std::fs;
use std::process::Command;

use super::*;
use crate::digest::sha256_hex;
use crate::disk::bmap::BmapBuilder;
use crate::test_tools::find_tool;

/// A map with a single block, a range, and a short tail block.
fn sample() -> Bmap {
    let size = 10 * 4096 + 1536;
    let mut b = BmapBuilder::new(size, &[(6 * 4096, 8 * 4096)]).unwrap();
    b.write_at(0, &[0xaa; 512]).unwrap();
    b.write_at(3 * 4096, &[1; 8192]).unwrap();
    b.write_at(10 * 4096, &[7; 1536]).unwrap();
    b.finish()
}

/// `xml` with its BmapFileChecksum made right again after an edit.
fn resum(xml: &str) -> String {
    let start = xml.find("<BmapFileChecksum>").unwrap() + "<BmapFileChecksum>".len();
    let end = xml.find("</BmapFileChecksum>").unwrap();
    let zeroed = format!("{} {} {}", &xml[..start], "0".repeat(64), &xml[end..]);
    let sum = sha256_hex(zeroed.as_bytes());
    zeroed.replacen(&"0".repeat(64), &sum, 1)
}

/// The sample's XML with `from` replaced by `to`, checksum recomputed.
fn edited(from: &str, to: &str) -> String {
    let xml = sample().to_xml();
    assert!(xml.contains(from), "{from:?} not in\n{xml}");
    resum(&xml.replacen(from, to, 1))
}

fn refused(xml: &str) -> BmapReadError {
    parse_bmap(xml.as_bytes()).expect_err(xml)
}

#[test]
fn own_output_round_trips() {
    let bmap = sample();
    assert_eq!(bmap.ranges.len(), 4, "{bmap:?}");
    assert_eq!(parse_bmap(bmap.to_xml().as_bytes()).unwrap(), bmap);
}

#[test]
fn the_resum_helper_reproduces_the_writer() {
    let xml = sample().to_xml();
    assert_eq!(resum(&xml), xml);
}

#[test]
fn version_1_4_is_2_0_under_another_name() {
    let xml = edited("version=\"2.0\"", "version=\"1.4\"");
    assert_eq!(parse_bmap(xml.as_bytes()).unwrap(), sample());
    let xml = edited("version=\"2.0\"", "version=\"2.1\"");
    assert!(parse_bmap(xml.as_bytes()).is_ok());
}

#[test]
fn upper_case_digests_and_spaced_ranges_are_read() {
    let bmap = sample();
    let sum = &bmap.ranges[1].sha256;
    let xml = edited(sum, &sum.to_uppercase());
    let xml = resum(&xml.replacen("> 3-4 <", ">3 - 4<", 1));
    assert_eq!(parse_bmap(xml.as_bytes()).unwrap(), bmap);
}

#[test]
fn bmaptool_create_output_is_read() {
    let Some(bmaptool) = find_tool("bmaptool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("img");
    let file = fs::File::create(&image).unwrap();
    file.set_len(1 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(&[5; 10000], 8192).unwrap();
    file.write_all_at(&[6; 100], 600_000).unwrap();
    drop(file);
    let out = Command::new(bmaptool)
        .arg("create")
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bmap = parse_bmap(&out.stdout).unwrap();
    assert_eq!(bmap.image_size, 1 << 20);
    let data = fs::read(&image).unwrap();
    for range in &bmap.ranges {
        let (start, end) = bmap.byte_range(range).unwrap();
        assert_eq!(
            sha256_hex(&data[start as usize..end as usize]),
            range.sha256
        );
    }
    assert!(bmap.mapped_blocks >= 4, "{bmap:?}");
}

#[test]
fn a_changed_file_fails_its_checksum() {
    let xml = sample().to_xml().replacen("> 3-4 <", "> 3-5 <", 1);
    let xml = xml.replacen("<MappedBlocksCount> 6 ", "<MappedBlocksCount> 7 ", 1);
    assert!(
        matches!(refused(&xml), BmapReadError::FileChecksum { .. }),
        "{xml}"
    );
}

#[test]
fn each_malformed_kind_is_refused() {
    let sums: Vec<String> = sample().ranges.iter().map(|r| r.sha256.clone()).collect();
    type Case = (String, fn(&BmapReadError) -> bool);
    let cases: Vec<Case> = vec![
        (
            edited("<bmap version", "<map version").replace("</bmap>", "</map>"),
            |e| matches!(e, BmapReadError::NotBmap { .. }),
        ),
        (edited("</BlockMap>", "</BlockMap"), |e| {
            matches!(e, BmapReadError::Xml { .. })
        }),
        (edited("version=\"2.0\"", "version=\"1.3\""), |e| {
            matches!(e, BmapReadError::Version { .. })
        }),
        (edited("version=\"2.0\"", "version=\"3.0\""), |e| {
            matches!(e, BmapReadError::Version { .. })
        }),
        (edited(" version=\"2.0\"", ""), |e| {
            matches!(e, BmapReadError::Version { .. })
        }),
        (edited("<ChecksumType> sha256 </ChecksumType>", ""), |e| {
            matches!(
                e,
                BmapReadError::Missing {
                    element: "ChecksumType",
                    ..
                }
            )
        }),
        (
            edited(
                "<ChecksumType> sha256 </ChecksumType>",
                "<ChecksumType> sha256 </ChecksumType><BlockSize>4096</BlockSize>",
            ),
            |e| {
                matches!(
                    e,
                    BmapReadError::Duplicate {
                        element: "BlockSize",
                        ..
                    }
                )
            },
        ),
        (edited("<ImageSize> 42496 <", "<ImageSize> 0x10 <"), |e| {
            matches!(
                e,
                BmapReadError::Number {
                    element: "ImageSize",
                    ..
                }
            )
        }),
        (
            edited("<ImageSize> 42496 <", "<ImageSize> 99999999999999999999 <"),
            |e| matches!(e, BmapReadError::Number { .. }),
        ),
        (
            edited("<ChecksumType> sha256 <", "<ChecksumType> md5 <"),
            |e| matches!(e, BmapReadError::ChecksumType { .. }),
        ),
        (edited("<BlockSize> 4096 <", "<BlockSize> 1000 <"), |e| {
            matches!(e, BmapReadError::BlockSize { .. })
        }),
        (edited("<BlockSize> 4096 <", "<BlockSize> 0 <"), |e| {
            matches!(e, BmapReadError::BlockSize { .. })
        }),
        (edited("<BlocksCount> 11 <", "<BlocksCount> 12 <"), |e| {
            matches!(e, BmapReadError::BlocksCount { expected: 11, .. })
        }),
        (edited("> 3-4 <", "> 3-x <"), |e| {
            matches!(e, BmapReadError::RangeSyntax { .. })
        }),
        (edited("> 3-4 <", "> 3-4-5 <"), |e| {
            matches!(e, BmapReadError::RangeSyntax { .. })
        }),
        (edited("> 3-4 <", "> 4-3 <"), |e| {
            matches!(e, BmapReadError::RangeBackwards { .. })
        }),
        (edited("> 3-4 <", "> 0-2 <"), |e| {
            matches!(e, BmapReadError::RangeOrder { previous: 0, .. })
        }),
        (edited("> 6-7 <", "> 3-4 <"), |e| {
            matches!(e, BmapReadError::RangeOrder { previous: 4, .. })
        }),
        (edited("> 10 <", "> 11 <"), |e| {
            matches!(e, BmapReadError::RangeOutside { last_block: 10, .. })
        }),
        (edited(&format!("chksum=\"{}\"", sums[1]), ""), |e| {
            matches!(e, BmapReadError::RangeUnchecked { first: 3, .. })
        }),
        (edited(&sums[1], &sums[1][..63]), |e| {
            matches!(e, BmapReadError::Digest { .. })
        }),
        (edited(&sums[1], &format!("{}g", &sums[1][..63])), |e| {
            matches!(e, BmapReadError::Digest { .. })
        }),
        (
            edited("<MappedBlocksCount> 6 <", "<MappedBlocksCount> 5 <"),
            |e| {
                matches!(
                    e,
                    BmapReadError::MappedCount {
                        declared: 5,
                        counted: 6
                    }
                )
            },
        ),
    ];
    for (xml, expected) in cases {
        let err = refused(&xml);
        assert!(expected(&err), "{err:?} ({err}) for\n{xml}");
        // Every refusal names a place or says what is wrong in words.
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn line_numbers_point_at_the_element() {
    let xml = edited("> 6-7 <", "> 3-4 <");
    let err = refused(&xml);
    let line = xml.lines().position(|l| l.contains("> 3-4 <")).unwrap();
    // The first `1-2` is the original range; the edited one is the next.
    let second = xml
        .lines()
        .skip(line + 1)
        .position(|l| l.contains("> 3-4 <"))
        .unwrap();
    let expected = (line + 1 + second + 1) as u32;
    assert!(
        matches!(err, BmapReadError::RangeOrder { line, .. } if line == expected),
        "{err:?}, expected line {expected}\n{xml}"
    );
}

#[test]
fn dtd_entities_not_utf8_and_size_are_refused() {
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE bmap [<!ENTITY a \"aaaa\">]><bmap version=\"2.0\">&a;</bmap>";
    assert!(matches!(refused(bomb), BmapReadError::Xml { .. }));
    assert!(matches!(
        parse_bmap(b"<bmap \xff>"),
        Err(BmapReadError::NotUtf8 { offset: 6 })
    ));
    let big = vec![b' '; MAX_BMAP_BYTES + 1];
    assert!(matches!(
        parse_bmap(&big),
        Err(BmapReadError::TooLarge { .. })
    ));
}

#[test]
fn byte_ranges_cut_the_tail_block() {
    let bmap = sample();
    let ends: Vec<(u64, u64)> = bmap
        .ranges
        .iter()
        .map(|r| bmap.byte_range(r).unwrap())
        .collect();
    assert_eq!(
        ends,
        [
            (0, 4096),
            (3 * 4096, 5 * 4096),
            (6 * 4096, 8 * 4096),
            (10 * 4096, 10 * 4096 + 1536)
        ]
    );
}
