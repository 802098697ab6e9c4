//! Filesystem images for partitions: vfat through a FAT library (this kernel
//! cannot mount vfat), ext4 through mke2fs; and the filesystem images of a
//! genimage.cfg ([`from_genimage`]) through the same writers.

pub mod ext4;
pub mod from_genimage;
pub mod images;
pub mod vfat;
