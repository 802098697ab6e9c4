//! Disk assembly: partition tables (pure writers over `Write + Seek`),
//! regions and sinks.
//!
//! `gpt` and `mbr` are the on-disk formats (written here because no crate
//! places the entry arrays the way boot ROMs need: `gpt` always puts the
//! array at LBA 2; `gptman` puts the backup array at LBA 2 when the primary
//! is moved); `tables` converts a plan's layout into them.

pub mod assemble;
pub mod blobs;
pub mod gpt;
pub mod mbr;
pub mod qcow2;
pub mod sink;
pub mod tables;
pub mod write;
