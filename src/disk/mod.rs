//! Disk assembly: partition tables (pure writers over `Write + Seek`),
//! regions and sinks.
//!
//! `qcow2` is the workspace crate `mkimg-qcow2` (crates/qcow2), re-exported
//! under its old path.
//!
//! `gpt` and `mbr` are the on-disk formats (written here because no crate
//! places the entry arrays the way boot ROMs need: `gpt` always puts the
//! array at LBA 2; `gptman` puts the backup array at LBA 2 when the primary
//! is moved); `tables` converts a plan's layout into them.
//!
//! Arithmetic: offsets and sizes here come from boards and, in the readers,
//! from crafted images, so nothing in `disk/` may wrap or panic on them.
//! The lint below makes every `+ - * / %` visible: each is a `checked_*`
//! that ends in a typed error, is restructured away (iterators instead of
//! index math, masks and shifts on validated cluster sizes), or carries a
//! one-line proof next to its `#[allow]`.

#![deny(clippy::arithmetic_side_effects)]

pub mod assemble;
pub mod blobs;
pub mod blocks;
pub mod bmap;
pub mod flash;
pub mod gpt;
pub mod mbr;
pub mod simg;
pub mod sink;
pub mod tables;
pub mod write;

/// The qcow2 format lives in its own crate (`crates/qcow2`); this keeps its
/// path `disk::qcow2`.
pub use mkimg_qcow2 as qcow2;

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod crafted_tests;

/// `a * b` of two 32-bit values, which always fits 64 bits.
pub(crate) fn widening_mul(a: u32, b: u32) -> u64 {
    #[allow(clippy::arithmetic_side_effects)] // (2^32 - 1)^2 < 2^64
    let product = u64::from(a) * u64::from(b);
    product
}

/// `a + b` of two 32-bit values, which always fits 64 bits.
pub(crate) fn widening_add(a: u32, b: u32) -> u64 {
    #[allow(clippy::arithmetic_side_effects)] // 2 * (2^32 - 1) < 2^64
    let sum = u64::from(a) + u64::from(b);
    sum
}
