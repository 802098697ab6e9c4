//! Everything that touches the host: the one command runner, and (later)
//! loop devices, mounts, chroot and binfmt. No other module spawns
//! processes or calls mount/ioctl.

pub mod binfmt;
pub mod cmd;
pub mod console;
pub mod vm;
