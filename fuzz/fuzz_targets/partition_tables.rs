//! Raw disk bytes → `read_tables` (MBR, then the GPT it protects) at both
//! sector sizes, then the region rows `mkimg inspect` prints.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use mkimg::commands::inspect::found_rows;
use mkimg::disk::gpt::read_gpt;
use mkimg::disk::mbr::read_mbr;
use mkimg::disk::tables::read_tables;

fuzz_target!(|data: &[u8]| {
    for ss in [512, 4096] {
        if let Ok(found) = read_tables(&mut Cursor::new(data), ss) {
            let _ = found_rows(&found, ss);
            if let Some(gpt) = &found.gpt {
                let _ = gpt.validate();
            }
            if let Some(mbr) = &found.mbr {
                let _ = mbr.validate(data.len() as u64 / 512);
            }
        }
        // The GPT reader on its own, whatever LBA 0 holds.
        let _ = read_gpt(&mut Cursor::new(data), ss);
    }
    let _ = read_mbr(&mut Cursor::new(data));
});
