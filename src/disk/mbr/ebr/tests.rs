//! EBR chain: write → read round trip, and crafted chains (loops, pointers
//! past the disk, too many links) that must end in an error.

use std::io::Cursor;

use super::{
    read_ebr_chain, write_ebr_chain, EbrError, ExtendedChain, LogicalPartition, MAX_LOGICAL,
};

const DISK: u64 = 4096;

fn logical(ebr_lba: u64, start_lba: u64, sectors: u32) -> LogicalPartition {
    LogicalPartition {
        ebr_lba,
        bootable: false,
        type_byte: 0x83,
        start_lba,
        sectors,
    }
}

fn chain() -> ExtendedChain {
    ExtendedChain {
        start_lba: 100,
        sectors: 3996,
        bootable: false,
        logicals: vec![
            logical(100, 101, 50),
            logical(200, 208, 8),
            logical(300, 301, 10),
        ],
    }
}

fn disk() -> Cursor<Vec<u8>> {
    Cursor::new(vec![0u8; (DISK * 512) as usize])
}

fn put(d: &mut [u8], lba: u64, slot: usize, type_byte: u8, start: u32, sectors: u32) {
    let at = (lba * 512) as usize;
    let e = &mut d[at + 446 + 16 * slot..at + 462 + 16 * slot];
    e[4] = type_byte;
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    d[at + 510] = 0x55;
    d[at + 511] = 0xAA;
}

#[test]
fn round_trip_and_link_encoding() {
    let mut d = disk();
    write_ebr_chain(&chain(), DISK, 512, &mut d).unwrap();
    let bytes = d.get_ref();
    // The link in EBR 1: next EBR relative to the extended start (100),
    // size from that EBR to the end of the next partition.
    let link = &bytes[100 * 512 + 462..100 * 512 + 478];
    assert_eq!(link[4], 0x0F);
    assert_eq!(u32::from_le_bytes(link[8..12].try_into().unwrap()), 100);
    assert_eq!(u32::from_le_bytes(link[12..16].try_into().unwrap()), 16);
    let read = read_ebr_chain(&mut d, 512, 100, 3996, DISK).unwrap();
    assert_eq!(read, chain().logicals);
}

#[test]
fn writer_refuses_descending_chain() {
    let mut c = chain();
    c.logicals.swap(0, 1);
    let err = write_ebr_chain(&c, DISK, 512, &mut disk()).unwrap_err();
    assert!(matches!(err, EbrError::Logical { number: 6, .. }), "{err}");
}

#[test]
fn loop_is_an_error() {
    let mut d = disk();
    let b = d.get_mut();
    put(b, 100, 0, 0x83, 1, 10);
    put(b, 100, 1, 0x05, 100, 20); // to LBA 200
    put(b, 200, 0, 0x83, 1, 10);
    put(b, 200, 1, 0x05, 0, 20); // back to LBA 100
    let err = read_ebr_chain(&mut d, 512, 100, 3996, DISK).unwrap_err();
    assert!(err.to_string().contains("a loop"), "{err}");
}

#[test]
fn pointers_past_the_disk_are_errors() {
    let mut d = disk();
    put(d.get_mut(), 100, 0, 0x83, 1, 10);
    put(d.get_mut(), 100, 1, 0x0F, u32::MAX, 20);
    let err = read_ebr_chain(&mut d, 512, 100, 3996, DISK).unwrap_err();
    assert!(
        err.to_string().contains("outside the extended partition"),
        "{err}"
    );
    // A logical partition ending past the container.
    let mut d = disk();
    put(d.get_mut(), 100, 0, 0x83, 1, u32::MAX);
    let err = read_ebr_chain(&mut d, 512, 100, 3996, DISK).unwrap_err();
    assert!(
        err.to_string().contains("ends past the extended partition"),
        "{err}"
    );
    // The container itself past the disk.
    let err = read_ebr_chain(&mut disk(), 512, 100, u32::MAX, DISK).unwrap_err();
    assert!(matches!(err, EbrError::ContainerPastEnd { .. }), "{err}");
}

#[test]
fn too_many_links_stop_at_the_cap() {
    let mut d = disk();
    // EBRs at 100, 101, 102, …: each links to the next sector, forever.
    for lba in 100..(100 + MAX_LOGICAL as u64 + 10) {
        put(d.get_mut(), lba, 1, 0x05, (lba - 100 + 1) as u32, 1);
    }
    let err = read_ebr_chain(&mut d, 512, 100, 3996, DISK).unwrap_err();
    assert!(
        matches!(err, EbrError::Count(n) if n == MAX_LOGICAL + 1),
        "{err}"
    );
}

#[test]
fn missing_signature_is_an_error() {
    let err = read_ebr_chain(&mut disk(), 512, 100, 3996, DISK).unwrap_err();
    assert!(
        matches!(err, EbrError::NoSignature { lba: 100, .. }),
        "{err}"
    );
}
