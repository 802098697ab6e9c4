//! Crafted qcow2 headers and tables: huge sizes, cluster bits and offsets
//! must give an error when the image is opened or read, never a panic, a
//! wrapped offset or an allocation the file cannot back.

use std::io::{Cursor, Read, Seek, SeekFrom};

use super::header::{Header, RawHeader};
use super::{
    Compression, Geometry, Qcow2Error, Qcow2Options, Qcow2Reader, Qcow2Writer, FLAG_COMPRESSED,
    MAX_L1_ENTRIES, OFFSET_MASK,
};

const CLUSTER: usize = 1 << 16;

/// A v3 header for 64 KiB clusters and `virtual_size`, with `edit`
/// applied to the raw fields, followed by zeros up to `file_len`.
fn image(virtual_size: u64, file_len: usize, edit: impl Fn(&mut RawHeader)) -> Vec<u8> {
    let header = Header {
        version: 3,
        geometry: Geometry {
            cluster_bits: 16,
            virtual_size,
        },
        l1_entries: 1,
        l1_offset: CLUSTER as u64,
        refcount_table_offset: 0,
        refcount_table_clusters: 0,
        compression: Compression::Zlib,
    };
    let mut raw = header.to_raw();
    edit(&mut raw);
    let mut bytes = raw.encode_v3();
    bytes.resize(file_len.max(bytes.len()), 0);
    bytes
}

fn open_err(bytes: Vec<u8>) -> Qcow2Error {
    Qcow2Reader::new(Cursor::new(bytes))
        .err()
        .expect("the crafted image is refused")
}

/// An L1 table placed past the end of the file is refused before it is
/// allocated (up to 32 MiB for a header of 120 bytes). Before: the table
/// was allocated and the read failed with an I/O error.
#[test]
fn l1_table_past_the_end_of_the_file_is_corrupt() {
    let cases: [fn(&mut RawHeader); 3] = [
        |h| h.l1_size = MAX_L1_ENTRIES as u32,
        |h| h.l1_table_offset = u64::MAX - 8,
        |h| h.l1_table_offset = 2 * CLUSTER as u64 - 1,
    ];
    for edit in cases {
        let err = open_err(image(1 << 20, 2 * CLUSTER, edit));
        assert!(
            matches!(
                err,
                Qcow2Error::Corrupt {
                    what: "L1 table past the end of the file",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // The same image with its L1 table inside the file opens.
    let reader = Qcow2Reader::new(Cursor::new(image(1 << 20, 2 * CLUSTER, |_| {}))).unwrap();
    assert_eq!(reader.virtual_size(), 1 << 20);
}

/// Huge cluster bits, L1 sizes and virtual sizes are refused by name.
#[test]
fn huge_header_fields_are_refused() {
    for bits in [0, 8, 22, 63, 64, 200, u32::MAX] {
        let err = open_err(image(1 << 20, 2 * CLUSTER, |h| h.cluster_bits = bits));
        assert!(
            matches!(err, Qcow2Error::ClusterBits(b) if b == bits),
            "{bits}: {err:?}"
        );
    }
    let err = open_err(image(1 << 20, 2 * CLUSTER, |h| h.l1_size = u32::MAX));
    assert!(
        matches!(
            err,
            Qcow2Error::Corrupt {
                what: "L1 table larger than 32 MiB",
                ..
            }
        ),
        "{err:?}"
    );
    let err = open_err(image(u64::MAX, 2 * CLUSTER, |_| {}));
    assert!(
        matches!(
            err,
            Qcow2Error::Corrupt {
                what: "L1 table too small for the virtual size",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A one-cluster image whose only L2 entry is `entry`: header, L1 table
/// at cluster 1, L2 table at cluster 2.
fn image_with_l2_entry(entry: u64) -> Vec<u8> {
    let mut bytes = image(1 << 20, 3 * CLUSTER, |_| {});
    bytes[CLUSTER..CLUSTER + 8].copy_from_slice(&(2 * CLUSTER as u64).to_be_bytes());
    bytes[2 * CLUSTER..2 * CLUSTER + 8].copy_from_slice(&entry.to_be_bytes());
    bytes
}

/// L2 entries with every offset and size bit set read as an error (the
/// data is past the end of the file), not a panic or a huge buffer.
#[test]
fn l2_entries_with_maximal_offsets_are_errors() {
    let all_ones_compressed = FLAG_COMPRESSED | ((1 << 62) - 1);
    for entry in [OFFSET_MASK, all_ones_compressed] {
        let mut reader = Qcow2Reader::new(Cursor::new(image_with_l2_entry(entry))).unwrap();
        let mut buf = [0u8; 4096];
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Other, "{entry:#x}: {err}");
    }
    // Positions far past the virtual size read as end of file.
    let mut reader = Qcow2Reader::new(Cursor::new(image_with_l2_entry(0))).unwrap();
    reader.seek(SeekFrom::Start(u64::MAX)).unwrap();
    assert_eq!(reader.read(&mut [0u8; 16]).unwrap(), 0);
    assert!(reader.seek(SeekFrom::Current(1)).is_err());
}

/// The writer refuses sizes and offsets near 2^64 instead of wrapping.
#[test]
fn writer_refuses_offsets_near_2_pow_64() {
    let err = Qcow2Writer::new(Cursor::new(Vec::new()), u64::MAX, Qcow2Options::default())
        .err()
        .expect("u64::MAX virtual size is refused");
    assert!(
        matches!(err, Qcow2Error::VirtualSizeTooLarge { .. }),
        "{err:?}"
    );
    let mut writer =
        Qcow2Writer::new(Cursor::new(Vec::new()), 1 << 30, Qcow2Options::default()).unwrap();
    let err = writer.write_at(u64::MAX - 1, &[1, 2, 3]).unwrap_err();
    assert!(matches!(err, Qcow2Error::PastVirtualSize { .. }), "{err:?}");
}
