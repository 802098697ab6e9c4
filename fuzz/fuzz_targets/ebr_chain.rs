//! Raw disk bytes → the EBR chain behind an MBR's extended entry: through
//! `read_tables` (which follows it) at both sector sizes and the rows
//! `mkimg inspect` prints, and `read_ebr_chain` directly on the first
//! extended entry, whatever the rest of the MBR holds. A crafted chain must
//! end in an error: no hang, panic or large allocation.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use mkimg::commands::inspect::found_rows;
use mkimg::disk::mbr::ebr::{is_extended, read_ebr_chain};
use mkimg::disk::tables::read_tables;

fuzz_target!(|data: &[u8]| {
    for ss in [512, 4096] {
        if let Ok(found) = read_tables(&mut Cursor::new(data), ss) {
            let _ = found_rows(&found, ss);
        }
    }
    if data.len() < 512 {
        return;
    }
    for slot in data[446..510].chunks_exact(16) {
        if is_extended(slot[4]) {
            let start = u32::from_le_bytes([slot[8], slot[9], slot[10], slot[11]]);
            let sectors = u32::from_le_bytes([slot[12], slot[13], slot[14], slot[15]]);
            let disk_sectors = data.len() as u64 / 512;
            let _ = read_ebr_chain(&mut Cursor::new(data), 512, start, sectors, disk_sectors);
        }
    }
});
