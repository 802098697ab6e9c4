//! Everything that touches the host: the one command runner, loop devices,
//! mounts and the private mount namespace, the chroot session, binfmt,
//! signals, locked work and staging directories, the tree directories that
//! hold rootfs files (`treedir`). No other module spawns
//! processes or calls mount/ioctl.

pub mod binfmt;
pub mod busy;
pub mod chroot;
pub mod cmd;
pub mod console;
pub mod interrupt;
pub mod lockdir;
pub mod loopdev;
pub mod mount;
pub mod native_tools;
pub mod sandbox;
pub mod sparse;
pub mod target;
pub mod treedir;
pub mod vm;
pub mod workdir;

#[cfg(test)]
pub(crate) mod test_support;
