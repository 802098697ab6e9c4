//! The rootfs tarball as one stream: decompression, safety checks, edits and
//! the split by mount point. Empty until the build stage lands.

pub mod fstab;
