//! GRUB EFI image bytes (a rootfs's grub binary) → `read_grub_image`, then
//! the prefix split as the detection stage does; any bytes as a prefix too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkimg::bootloader::grub_image::{parse_prefix, read_grub_image};

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = read_grub_image(data) {
        if let Some(prefix) = &image.prefix {
            let split = parse_prefix(prefix);
            assert_eq!(split.to_string(), *prefix);
        }
        let _ = image.has_module("normal");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_prefix(text);
    }
});
