//! The one error type of the rootfs stage.
//!
//! Every variant that concerns an archive member names it (as written in the
//! tarball) and gives its index (0-based, counting members after GNU/PAX
//! extension headers are folded in) and the byte offset of its header in the
//! decompressed tar stream, so a user can find it with `tar -tvf`.

use std::io;

use crate::rootfs::sink::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs tarball is empty")]
    EmptyInput,
    #[error("rootfs tarball has an unknown format (first bytes: {first_bytes}); expected tar, gzip, xz or zstd")]
    UnknownFormat { first_bytes: String },
    #[error("reading the rootfs tarball at decompressed offset {offset}")]
    Input {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("rootfs tarball is truncated: member {index} {name:?} (header at offset {offset}) ends after {got} of {expected} bytes")]
    TruncatedMember {
        name: String,
        index: u64,
        offset: u64,
        got: u64,
        expected: u64,
    },
    #[error("rootfs tarball is truncated: the stream ends at offset {offset} after {members} members without the end-of-archive blocks")]
    TruncatedArchive { offset: u64, members: u64 },
    #[error("rootfs tarball member {index} (header at offset {offset}) is unreadable")]
    Member {
        index: u64,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): path escapes the root")]
    PathEscapes {
        name: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): name is not UTF-8")]
    NonUtf8Name {
        name: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): hard link target {target:?} escapes the root")]
    HardLinkEscapes {
        name: String,
        target: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): hard link target {target:?} is not an earlier non-directory member")]
    HardLinkTargetMissing {
        name: String,
        target: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): hard link target {target:?} lies on another partition")]
    HardLinkAcrossPartitions {
        name: String,
        target: String,
        index: u64,
        offset: u64,
    },
    #[error(
        "rootfs member {index} {name:?} (offset {offset}): parent {parent:?} is not a directory"
    )]
    ParentNotDirectory {
        name: String,
        parent: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): unsupported member type {kind}")]
    UnsupportedMember {
        name: String,
        kind: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}) is a directory but the image replaces it with a file")]
    EditedPathIsDirectory {
        name: String,
        index: u64,
        offset: u64,
    },
    #[error("mount point {mount_point:?} is a {kind} in the rootfs tarball, not a directory")]
    MountPointNotDirectory { mount_point: String, kind: String },
    #[error("invalid mount point {mount_point:?}")]
    InvalidMountPoint { mount_point: String },
    #[error("invalid path {path:?} in the rootfs edits")]
    InvalidEditPath { path: String },
    #[error("/etc/hosts in the rootfs is larger than {limit} bytes")]
    HostsTooLarge { limit: u64 },
    #[error("captured file {path:?} is larger than the capture limit of {limit} bytes")]
    CaptureTooLarge { path: String, limit: u64 },
    #[error("reading overlay file {path:?}")]
    Overlay {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("overlay file {path:?} changed size while it was being read")]
    OverlayChanged { path: String },
    #[error("writing {path:?} to the output of {output:?}")]
    Sink {
        output: String,
        path: String,
        #[source]
        source: SinkError,
    },
    /// SIGINT/SIGTERM/SIGHUP arrived during the pass.
    #[error(transparent)]
    Interrupted(#[from] crate::host::interrupt::Interrupted),
}
