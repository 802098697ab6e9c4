//! Filesystem images for partitions: vfat through a FAT library (this kernel
//! cannot mount vfat), ext4 through mke2fs. Empty until the build stage lands.

pub mod ext4;
pub mod images;
pub mod vfat;
