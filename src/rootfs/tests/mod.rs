//! Tests of the rootfs pass. Inputs are built here with the `tar` crate
//! (and GNU tar for sparse members); outputs are read back with the `tar`
//! crate, Python's `tarfile`, and the real `mke2fs`/`e2fsck`/`debugfs`.

mod fixture;
mod limits;
mod oracle;
mod stream;

use std::io::Write;
use std::process::Command;

/// True when `tool` runs; otherwise prints a skip note, or panics when
/// MKIMG_REQUIRE_TOOLS=1 (CI).
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "command -v {tool} || test -x /usr/sbin/{tool} || test -x /sbin/{tool}"
        ))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("MKIMG_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "required tool {tool} is missing"
        );
        eprintln!("SKIP: {tool} not installed");
    }
    found
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}
