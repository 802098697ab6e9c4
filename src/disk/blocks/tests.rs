#![allow(clippy::arithmetic_side_effects)]

use super::*;

/// Every event as (mapped?, first, count, bytes of the mapped block).
fn run(
    size: u64,
    forced: &[(u64, u64)],
    writes: &[(u64, Vec<u8>)],
) -> Vec<(bool, u64, u64, Vec<u8>)> {
    let mut blocks = Blocks::new(size, 512, forced).unwrap();
    let mut out = Vec::new();
    let mut emit = |e: BlockEvent<'_>| match e {
        BlockEvent::Mapped { index, data } => out.push((true, index, 1, data.to_vec())),
        BlockEvent::Unmapped { first, count } => out.push((false, first, count, Vec::new())),
    };
    for (offset, data) in writes {
        blocks.write_at(*offset, data, &mut emit).unwrap();
    }
    blocks.finish(&mut emit);
    out
}

/// Expand events to one bool per block, checking they cover each block once, in order.
fn map_of(events: &[(bool, u64, u64, Vec<u8>)], count: u64) -> Vec<bool> {
    let mut map = Vec::new();
    for (mapped, first, n, _) in events {
        assert_eq!(
            *first,
            map.len() as u64,
            "events in order, no gap: {events:?}"
        );
        for _ in 0..*n {
            map.push(*mapped);
        }
    }
    assert_eq!(map.len() as u64, count);
    map
}

#[test]
fn holes_zeros_and_data() {
    let mut data = vec![0u8; 1024];
    data[700] = 1; // block 1 of this write: absolute block 3
    let ev = run(8 * 512, &[], &[(1024, data)]);
    assert_eq!(
        map_of(&ev, 8),
        [false, false, false, true, false, false, false, false]
    );
    let block3 = &ev.iter().find(|e| e.0).unwrap().3;
    assert_eq!(block3.len(), 512);
    assert_eq!(block3[700 - 512], 1);
}

#[test]
fn a_block_filled_by_several_writes_is_one_block() {
    let ev = run(
        4 * 512,
        &[],
        &[(600, vec![7; 10]), (700, vec![0; 5]), (1000, vec![9; 24])],
    );
    assert_eq!(map_of(&ev, 4), [false, true, false, false]);
    let b = &ev[1].3;
    assert_eq!(&b[600 - 512..610 - 512], &[7; 10]);
    assert_eq!(b[699 - 512], 0);
    assert_eq!(&b[1000 - 512..], &[9; 24]);
}

#[test]
fn forced_ranges_are_mapped_zeros() {
    // Bytes 1000..2100 forced: blocks 1..=4.
    let ev = run(8 * 512, &[(1000, 2100)], &[(3584, vec![1; 512])]);
    assert_eq!(
        map_of(&ev, 8),
        [false, true, true, true, true, false, false, true]
    );
    for e in ev.iter().filter(|e| e.0 && e.1 < 5) {
        assert_eq!(e.3, vec![0; 512]);
    }
}

#[test]
fn forced_zero_written_block_is_mapped() {
    let ev = run(2 * 512, &[(0, 512)], &[(0, vec![0; 1024])]);
    assert_eq!(map_of(&ev, 2), [true, false]);
}

#[test]
fn short_tail_block() {
    let ev = run(1000, &[], &[(900, vec![5; 100])]);
    assert_eq!(map_of(&ev, 2), [false, true]);
    assert_eq!(ev[1].3.len(), 1000 - 512);
}

#[test]
fn refuses_backwards_and_past_end() {
    let mut b = Blocks::new(4096, 512, &[]).unwrap();
    let mut emit = |_: BlockEvent<'_>| {};
    b.write_at(1024, &[1; 10], &mut emit).unwrap();
    assert!(matches!(
        b.write_at(1000, &[1], &mut emit),
        Err(BlockError::Backwards { .. })
    ));
    assert!(matches!(
        b.write_at(4090, &[1; 7], &mut emit),
        Err(BlockError::PastEnd { .. })
    ));
    assert!(matches!(
        b.write_at(u64::MAX, &[1; 2], &mut emit),
        Err(BlockError::PastEnd { .. })
    ));
    assert!(Blocks::new(4096, 1000, &[]).is_err());
    assert!(Blocks::new(4096, 256, &[]).is_err());
}
