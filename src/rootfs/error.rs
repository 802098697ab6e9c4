//! The error types of the rootfs stage: [`RootfsError`] for the pass, and
//! [`SinkError`], what a sink returns (the pass wraps it, naming the output
//! and the path). Imports only `entry.rs` from the stage, so every other
//! file can depend on this one without a cycle.
//!
//! Every variant that concerns an archive member names it (as written in the
//! tarball) and gives its index (0-based, counting members after GNU/PAX
//! extension headers are folded in) and the byte offset of its header in the
//! decompressed tar stream, so a user can find it with `tar -tvf`.

use std::io;

use crate::rootfs::entry::NodeType;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs tarball is empty (0 bytes)")]
    EmptyInput,
    #[error("the rootfs tarball has no entries (a valid but empty archive); give a tarball of a root filesystem")]
    NoEntries,
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
    #[error("the --verify-repro test perturbation names {path:?}, but the rootfs has no regular file there (or an edit replaces it)")]
    PerturbMissing { path: String },
    #[error("/etc/hosts in the rootfs is larger than {limit} bytes")]
    HostsTooLarge { limit: u64 },
    #[error("rootfs member {index} {name:?} (offset {offset}) is {size} bytes; mkimg changes this file only up to {limit} bytes")]
    RewriteTooLarge {
        name: String,
        size: u64,
        limit: u64,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): {message}")]
    Rewrite {
        name: String,
        message: String,
        index: u64,
        offset: u64,
    },
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
    #[error(
        "the rootfs does not fit partition '{partition}' (mounted at {mount_point}, {} MiB): \
         {path:?} needs {needed} bytes ({} MiB) but only {left} bytes ({} MiB) of the ~{} MiB \
         the filesystem offers are left; grow the partition '{partition}' in board.toml or use \
         a smaller rootfs",
        mib(*.size), mib(*.needed), mib(*.left), mib(*.usable)
    )]
    OverBudget {
        partition: String,
        mount_point: String,
        size: u64,
        path: String,
        needed: u64,
        left: u64,
        usable: u64,
    },
    #[error(
        "the rootfs does not fit partition '{partition}' (mounted at {mount_point}, {} MiB): \
         {path:?} needs an inode but all {inodes} are taken (one per 16 KiB); grow the \
         partition '{partition}' in board.toml or use a smaller rootfs",
        mib(*.size)
    )]
    OutOfInodes {
        partition: String,
        mount_point: String,
        size: u64,
        path: String,
        inodes: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): {path:?} is given twice, first as a {first} and then as a {second}; remove one of them from the tarball")]
    DuplicateEntry {
        name: String,
        path: String,
        first: String,
        second: String,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): the name {component:?} is {len} bytes; a file name holds at most 255 bytes on ext4 and FAT")]
    NameTooLong {
        name: String,
        component: String,
        len: usize,
        index: u64,
        offset: u64,
    },
    #[error("rootfs member {index} {name:?} (offset {offset}): the symlink target is {len} bytes; ext4 holds at most 4095")]
    SymlinkTooLong {
        name: String,
        len: usize,
        index: u64,
        offset: u64,
    },
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

/// What writing an entry to a sink (an [`crate::rootfs::EntrySink`]) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{fs} cannot hold {kind:?} entries: {path:?}")]
    Unsupported {
        path: String,
        kind: NodeType,
        fs: &'static str,
    },
}

/// Whole MiB, rounded down, for messages.
fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

impl RootfsError {
    /// Whether the error is about the archive's bytes (truncated, corrupt,
    /// unknown format) rather than its contents or the output side.
    pub fn is_format_error(&self) -> bool {
        matches!(
            self,
            RootfsError::EmptyInput
                | RootfsError::UnknownFormat { .. }
                | RootfsError::Input { .. }
                | RootfsError::TruncatedMember { .. }
                | RootfsError::TruncatedArchive { .. }
                | RootfsError::Member { .. }
        )
    }
}
