//! Tests of the rootfs pass. Inputs are built here with the `tar` crate
//! (and GNU tar for sparse members); outputs are read back with the `tar`
//! crate, Python's `tarfile`, and the real `mke2fs`/`e2fsck`/`debugfs`.

mod fixture;
mod limits;
mod oracle;
mod rewrite;
mod stream;
mod tree;

use std::io::Write;

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
