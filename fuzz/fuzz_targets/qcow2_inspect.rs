//! qcow2 bytes → `Qcow2Reader` → the guest view read through, as
//! `mkimg inspect` does (partition tables), plus reads at a few offsets and
//! a bounded sequential read, so L1/L2 lookups and compressed clusters
//! (zlib, zstd) are decoded.
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom};

use libfuzzer_sys::fuzz_target;
use mkimg::commands::inspect::found_rows;
use mkimg::disk::qcow2::Qcow2Reader;
use mkimg::disk::tables::read_tables;

/// Guest bytes read per input at most; keeps an iteration in the
/// sub-millisecond range whatever virtual size the header claims.
const READ_BUDGET: u64 = 256 << 10;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = Qcow2Reader::new(Cursor::new(data)) else {
        return;
    };
    let size = reader.virtual_size();
    let _ = (
        reader.cluster_size(),
        reader.version(),
        reader.compression_type(),
    );
    if let Ok(found) = read_tables(&mut reader, 512) {
        let _ = found_rows(&found, 512);
    }
    let mut buf = vec![0u8; 4096];
    for at in [
        0,
        size / 2,
        size.saturating_sub(100),
        size,
        size.saturating_add(1),
    ] {
        if reader.seek(SeekFrom::Start(at)).is_ok() {
            let _ = reader.read(&mut buf);
        }
    }
    let _ = reader.seek(SeekFrom::End(-1));
    let _ = reader.seek(SeekFrom::Current(-4096));
    if reader.seek(SeekFrom::Start(0)).is_ok() {
        let _ = std::io::copy(&mut (&mut reader).take(READ_BUDGET), &mut std::io::sink());
    }
});
