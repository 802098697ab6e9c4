//! The loop driver's ioctls (`linux/loop.h`): the kernel structures, one
//! conversion from [`LoopOptions`], and the four calls mkimg makes. All the
//! unsafe code of `host::loopdev` is here, each call with its `SAFETY`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use rustix::ioctl::{ioctl, Getter, Ioctl, IoctlOutput, NoArg, Opcode, Setter};

use super::LoopOptions;

const LOOP_CLR_FD: Opcode = 0x4C01;
const LOOP_GET_STATUS64: Opcode = 0x4C05;
const LOOP_CONFIGURE: Opcode = 0x4C0A;
const LOOP_CTL_GET_FREE: Opcode = 0x4C82;

pub(super) const LO_FLAGS_READ_ONLY: u32 = 1;
/// Detach when the last opener closes the device: held by the guard's fd,
/// so a killed mkimg leaves nothing attached.
pub(super) const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct LoopInfo64 {
    pub lo_device: u64,
    pub lo_inode: u64,
    pub lo_rdevice: u64,
    pub lo_offset: u64,
    pub lo_sizelimit: u64,
    pub lo_number: u32,
    pub lo_encrypt_type: u32,
    pub lo_encrypt_key_size: u32,
    pub lo_flags: u32,
    pub lo_file_name: [u8; 64],
    pub lo_crypt_name: [u8; 64],
    pub lo_encrypt_key: [u8; 32],
    pub lo_init: [u64; 2],
}

/// `struct loop_config` (LOOP_CONFIGURE, Linux 5.8).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct LoopConfig {
    pub fd: u32,
    pub block_size: u32,
    pub info: LoopInfo64,
    pub reserved: [u64; 8],
}

/// The configuration that attaches the open file `backing` (named `file`,
/// for `losetup -a`) as `opts` say, always with autoclear.
pub(super) fn loop_config(backing: BorrowedFd<'_>, file: &Path, opts: &LoopOptions) -> LoopConfig {
    let mut name = [0u8; 64];
    let bytes = file.as_os_str().as_encoded_bytes();
    // The kernel keeps 63 bytes and a NUL; sysfs shows the real path anyway.
    let kept = bytes.len().min(name.len() - 1);
    name[..kept].copy_from_slice(&bytes[..kept]);
    let mut flags = LO_FLAGS_AUTOCLEAR;
    if opts.read_only {
        flags |= LO_FLAGS_READ_ONLY;
    }
    LoopConfig {
        fd: u32::try_from(backing.as_raw_fd()).unwrap_or(u32::MAX),
        block_size: opts.block_size,
        info: LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: opts.offset,
            lo_sizelimit: opts.size_limit,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: flags,
            lo_file_name: name,
            lo_crypt_name: [0; 64],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        },
        reserved: [0; 8],
    }
}

/// LOOP_CTL_GET_FREE: its result is the ioctl's return value.
struct GetFree;

#[allow(unsafe_code)]
// SAFETY: LOOP_CTL_GET_FREE takes no argument (null pointer), writes no
// user memory, and returns the device number as the ioctl's result.
unsafe impl Ioctl for GetFree {
    type Output = u32;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<u32> {
        u32::try_from(out).map_err(|_| rustix::io::Errno::RANGE)
    }
}

/// The number of a free loop device (made if need be), from /dev/loop-control.
pub(super) fn get_free(control: impl AsFd) -> rustix::io::Result<u32> {
    #[allow(unsafe_code)]
    // SAFETY: `GetFree` describes LOOP_CTL_GET_FREE exactly (above).
    unsafe {
        ioctl(control, GetFree)
    }
}

/// LOOP_CONFIGURE on an open, unbound loop device.
pub(super) fn configure(device: impl AsFd, config: LoopConfig) -> rustix::io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: LOOP_CONFIGURE reads a `struct loop_config`, which `LoopConfig`
    // mirrors field for field (`#[repr(C)]`, 304 bytes, checked in tests).
    unsafe {
        ioctl(device, Setter::<LOOP_CONFIGURE, LoopConfig>::new(config))
    }
}

/// LOOP_CLR_FD: detach now, or (another opener, e.g. a mount) at its last close.
pub(super) fn clear(device: impl AsFd) -> rustix::io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: LOOP_CLR_FD takes no argument.
    unsafe {
        ioctl(device, NoArg::<LOOP_CLR_FD>::new())
    }
}

/// LOOP_GET_STATUS64: the device's configuration; ENXIO when unbound.
pub(super) fn status(device: impl AsFd) -> rustix::io::Result<LoopInfo64> {
    #[allow(unsafe_code)]
    // SAFETY: LOOP_GET_STATUS64 writes a `struct loop_info64`, which
    // `LoopInfo64` mirrors (`#[repr(C)]`, 232 bytes, checked in tests).
    unsafe {
        ioctl(device, Getter::<LOOP_GET_STATUS64, LoopInfo64>::new())
    }
}
