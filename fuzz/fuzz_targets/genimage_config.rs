//! genimage.cfg text → `load_config` (parse, includes, typed model), as
//! `mkimg plan --genimage` will read it. The include path is this crate's
//! fuzz_targets directory (it holds no .cfg, so includes fail the way a
//! missing or escaping file does, after the containment checks run); the
//! environment is a fixed map so `${VAR}` expands.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use mkimg::genimage::{load_config_str, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = ParseOptions {
        include_dirs: vec![PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz_targets"))],
        env: BTreeMap::from([
            ("SIZE".to_string(), "4M".to_string()),
            ("NAME".to_string(), "boot.vfat".to_string()),
        ]),
    };
    if let Ok(config) = load_config_str(text, "fuzz.cfg", &opts) {
        for image in &config.images {
            let _ = format!("{image:?}");
        }
    }
});
