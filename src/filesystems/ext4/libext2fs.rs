//! An unmounted ext4 image opened through libext2fs (the library under
//! e2fsprogs), for setting and reading back extended attributes. The crate
//! denies `unsafe_code`; this FFI module is allowed it, each block with a
//! `SAFETY:` comment.
//!
//! Why a library and not debugfs: a `debugfs -f` script is a command
//! language (8 KiB lines, quotes, `!` runs `system()`), and the xattrs come
//! from the tarball. Here paths, names and values travel as NUL-terminated
//! strings and byte slices with lengths; nothing parses them as commands.
//!
//! Why a C shim (`xattr_shim.c`, built by `build.rs`) and not Rust
//! declarations of libext2fs: the clock is the field `now` of libext2fs's
//! large `struct_ext2_filsys`, whose layout only the real
//! `<ext2fs/ext2fs.h>` type-checks, and no maintained crate binds
//! libext2fs. The shim's API is six functions over plain C types.
//!
//! Owns: one open filesystem handle ([`Ext2Image`]), closed by
//! [`Ext2Image::close`] or, best effort, on drop. Must not: run programs,
//! or know what the xattrs mean (that is [`super::xattrs`]).

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};

/// libext2fs's `ext2_filsys`, opaque on this side.
#[repr(C)]
struct Filsys {
    _private: [u8; 0],
}

extern "C" {
    fn mkimg_ext2_open(
        image: *const c_char,
        epoch: i64,
        writable: c_int,
        out: *mut *mut Filsys,
    ) -> c_long;
    fn mkimg_ext2_close(fs: *mut Filsys) -> c_long;
    fn mkimg_ext2_xattr_set(
        fs: *mut Filsys,
        path: *const c_char,
        name: *const c_char,
        value: *const c_void,
        len: usize,
    ) -> c_long;
    fn mkimg_ext2_xattr_get(
        fs: *mut Filsys,
        path: *const c_char,
        name: *const c_char,
        value: *mut *mut c_void,
        len: *mut usize,
    ) -> c_long;
    fn mkimg_ext2_free(value: *mut c_void);
    fn mkimg_ext2_message(err: c_long, out: *mut c_char, cap: usize);
}

/// A libext2fs (com_err) error code with its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Ext2Error {
    /// The com_err code (errno values are codes too); 0 for mkimg's own.
    pub code: c_long,
    pub message: String,
}

impl Ext2Error {
    fn from_code(code: c_long) -> Self {
        let mut text = [0 as c_char; 256];
        // SAFETY: `text` is a writable buffer of text.len() bytes that the
        // shim fills with a NUL-terminated string (truncating if need be).
        unsafe { mkimg_ext2_message(code, text.as_mut_ptr(), text.len()) };
        // c_char is i8 or u8 by platform: take the bytes as they are.
        let bytes: Vec<u8> = text
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let message = String::from_utf8_lossy(&bytes).into_owned();
        Ext2Error { code, message }
    }
}

fn check(code: c_long) -> Result<(), Ext2Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Ext2Error::from_code(code))
    }
}

/// How [`Ext2Image::open`] opens an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// An ext4 image file opened with a fixed clock.
pub struct Ext2Image {
    fs: NonNull<Filsys>,
}

impl Ext2Image {
    /// Opens `image`; whatever libext2fs stamps (the superblock's write
    /// time on close) gets `epoch`, not the wall clock.
    pub fn open(image: &Path, access: Access, epoch: i64) -> Result<Self, Ext2Error> {
        let c_image = CString::new(image.as_os_str().as_bytes()).map_err(|_| Ext2Error {
            code: 0,
            message: "image path contains a NUL byte".into(),
        })?;
        let mut fs: *mut Filsys = ptr::null_mut();
        // SAFETY: c_image is a valid NUL-terminated string that outlives the
        // call; `fs` is a valid place for the out pointer, which the shim
        // sets to an open filesystem on success and leaves NULL on error.
        let writable = c_int::from(access == Access::ReadWrite);
        check(unsafe { mkimg_ext2_open(c_image.as_ptr(), epoch, writable, &mut fs) })?;
        let fs = NonNull::new(fs).ok_or_else(|| Ext2Error {
            code: 0,
            message: "libext2fs returned no filesystem".into(),
        })?;
        Ok(Ext2Image { fs })
    }

    /// Sets xattr `name` on the inode at absolute `path` (a final symlink is
    /// not followed). ACL values are in the Linux xattr format.
    pub fn set_xattr(&mut self, path: &CStr, name: &CStr, value: &[u8]) -> Result<(), Ext2Error> {
        // SAFETY: self.fs is an open filesystem owned by self (&mut: no
        // other call on it runs); path and name are NUL-terminated and
        // borrowed for the call; value points to value.len() readable bytes
        // that libext2fs copies before returning.
        check(unsafe {
            mkimg_ext2_xattr_set(
                self.fs.as_ptr(),
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
            )
        })
    }

    /// The value of xattr `name` on the inode at `path`, ACLs in the Linux
    /// xattr format.
    pub fn xattr(&mut self, path: &CStr, name: &CStr) -> Result<Vec<u8>, Ext2Error> {
        let mut value: *mut c_void = ptr::null_mut();
        let mut len: usize = 0;
        // SAFETY: as in set_xattr; `value` and `len` are valid places for
        // the out values, which the shim sets only on success.
        check(unsafe {
            mkimg_ext2_xattr_get(
                self.fs.as_ptr(),
                path.as_ptr(),
                name.as_ptr(),
                &mut value,
                &mut len,
            )
        })?;
        if value.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: on success the shim returns a libext2fs allocation of
        // `len` bytes at `value`, owned by us: copied here, then freed once
        // with the matching deallocator and not used again.
        let copy = unsafe {
            let copy = std::slice::from_raw_parts(value.cast::<u8>(), len).to_vec();
            mkimg_ext2_free(value);
            copy
        };
        Ok(copy)
    }

    /// Writes everything back to the image (read-write) and closes it.
    pub fn close(self) -> Result<(), Ext2Error> {
        let fs = self.fs;
        // Ext2Image holds nothing else to drop.
        std::mem::forget(self);
        // SAFETY: fs is open and owned; forgetting self keeps Drop from
        // closing it a second time. The shim frees it even on error.
        check(unsafe { mkimg_ext2_close(fs.as_ptr()) })
    }
}

impl Drop for Ext2Image {
    /// Best effort: flush and free a handle that [`Ext2Image::close`] did
    /// not (an error path; the caller is already failing).
    fn drop(&mut self) {
        // SAFETY: fs is open and owned by self, and this is its last use.
        let _ = unsafe { mkimg_ext2_close(self.fs.as_ptr()) };
    }
}
