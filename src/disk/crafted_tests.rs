//! Offsets and sizes near 2^64 reaching the assembler, the raw sink and the
//! table conversion: each is an error naming the piece, never a panic or a
//! wrapped offset (release builds do not check overflow).

use std::path::Path;

use crate::board::load_board_file;
use crate::disk::assemble::{assemble, Content, Piece};
use crate::disk::blobs::LoadedBlob;
use crate::disk::sink::{DiskSink, RawSink};
use crate::disk::tables::{gpt_disk, mbr_table, TableError};
use crate::disk::write::write_disk;
use crate::plan::{plan_board, Plan};

const TIB: u64 = 1 << 40;

/// The plan of a board under tests/boards, copied next to 64-byte stand-ins
/// for its blob files.
fn test_plan(board: &str) -> Plan {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/boards")
        .join(board)
        .join("board.toml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("board.toml");
    std::fs::copy(source, &path).unwrap();
    for blob in ["boot0.bin", "toc1.bin"] {
        std::fs::write(dir.path().join(blob), [1u8; 64]).unwrap();
    }
    plan_board(&load_board_file(&path).unwrap(), "test").unwrap()
}

/// Before: "attempt to add with overflow" in the bounds check (in release,
/// the wrapped end passed it).
#[test]
fn assemble_refuses_a_piece_ending_past_2_pow_64() {
    let piece = Piece {
        name: "blob 'evil'".into(),
        offset: u64::MAX - 10,
        room: 100,
        content: Content::Bytes(vec![1; 100]),
    };
    let err = assemble(u64::MAX, vec![piece], &mut []).unwrap_err();
    assert_eq!(
        err.to_string(),
        "blob 'evil': 100 bytes at 0xfffffffffffffff5 end past 2^64, past the end of the \
         disk (0xffffffffffffffff)"
    );
}

/// Before: the zero chunk was skipped and the next offset overflowed.
#[test]
fn raw_sink_refuses_writes_ending_past_2_pow_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    for data in [vec![0u8; 10], vec![1u8; 10]] {
        let mut sink = RawSink::create(&path, 1 << 20).unwrap();
        let err = sink.write_at(u64::MAX - 5, &data).unwrap_err();
        assert!(format!("{err:#}").contains("ends past 2^64"), "{err:#}");
    }
}

/// An MBR entry holds 32-bit LBAs. Before: a partition at 3 TiB became an
/// entry at 1 TiB (`as u32` truncation) that passed validation.
#[test]
fn mbr_partition_beyond_32_bit_lbas_is_an_error() {
    let mut plan = test_plan("mbr-four");
    let layout = &mut plan.layout;
    layout.disk_size = 4 * TIB;
    let part = layout.partitions.last_mut().unwrap();
    part.start = 3 * TIB;
    let err = mbr_table(layout).unwrap_err();
    assert!(
        matches!(
            err,
            TableError::Partition {
                number: 4,
                reason: "starts past the 32-bit LBA range of an MBR entry",
                ..
            }
        ),
        "{err}"
    );
    let part = layout.partitions.last_mut().unwrap();
    part.start = 1 << 20;
    part.size = 3 * TIB;
    let err = mbr_table(layout).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "partition 4 'rootfs' (offset 0x100000, size {:#x}) has more sectors than an MBR \
             entry can count",
            3 * TIB
        )
    );
}

/// Before: `PlannedPartition::end` overflowed inside the conversion.
#[test]
fn gpt_partition_ending_past_2_pow_64_is_an_error() {
    let mut plan = test_plan("gpt-4k");
    plan.layout.partitions[0].size = u64::MAX;
    let err = gpt_disk(&plan.layout).unwrap_err();
    assert!(
        matches!(
            err,
            TableError::Partition {
                number: 1,
                reason: "ends past 2^64 bytes",
                ..
            }
        ),
        "{err}"
    );
}

/// Before: the room up to the end of the disk underflowed.
#[test]
fn blob_past_the_end_of_the_disk_is_an_error() {
    let mut plan = test_plan("gpt-moved-array");
    let disk_size = plan.layout.disk_size;
    plan.layout.blobs[1].offset = disk_size + 4096;
    let blobs: Vec<LoadedBlob> = plan
        .layout
        .blobs
        .iter()
        .map(|b| LoadedBlob {
            name: b.name.clone(),
            content: Content::Bytes(vec![1; 16]),
        })
        .collect();
    let err = write_disk(&plan, &blobs, &[], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "blob 'toc1' ({}): starts at {:#x}, past the end of the disk ({disk_size:#x})",
            plan.layout.blobs[1].source,
            disk_size + 4096
        )
    );
}
