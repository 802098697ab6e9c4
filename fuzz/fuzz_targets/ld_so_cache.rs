//! A rootfs's /etc/ld.so.cache → `ld_cache::host_entry` with the x86_64 and
//! aarch64 loaders' flags: what native tools read before laying the host's
//! loader into the root (`host::native_tools`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimg::host::native_tools::ld_cache::host_entry;

fuzz_target!(|data: &[u8]| {
    for flags in [0x0303, 0x0a03] {
        if let Ok(Some(name)) = host_entry(data, flags) {
            assert!(!name.contains('\0'));
        }
    }
});
