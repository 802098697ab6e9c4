//! The image-specific changes applied to the rootfs stream.
//!
//! Owns: [`Edits`] (replaced files, the /etc/hosts line, rewritten files,
//! the removal list, the overlay), rendering /etc/hosts, and scanning an
//! overlay directory.
//! Precedence, highest first: overlay files, `files` (fstab, hostname),
//! the /etc/hosts edit; the removal list applies to tarball entries only,
//! so an overlay may supply e.g. its own /etc/resolv.conf. A [`Rewrite`]
//! changes the regular file the image gets at its path — the tarball's or
//! an overlay file — and nothing else: a path removed or replaced by
//! `files` or /etc/hosts is not rewritten, and a rewritten path the image
//! lacks (or holds as a symlink, hard link or other kind) is left as it
//! is (never followed).
//! Must not: write to the host. `scan_overlay` is the one place that reads
//! host metadata (file contents are opened later, during the pass).
//! In: caller settings. Out: `Edits` for `process_rootfs`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::board::names::Hostname;

/// Removed unless the caller says otherwise: container leftovers and the
/// build host's resolver configuration.
pub const DEFAULT_REMOVALS: &[&str] = &["/.dockerenv", "/etc/resolv.conf"];

#[derive(Debug, Clone)]
pub struct Edits {
    /// Every mtime is clamped to this (min(mtime, epoch)); new files get it.
    pub source_date_epoch: u64,
    /// Rootfs path → content, written as a regular file 0644 root:root,
    /// replacing whatever the tarball has there (a symlink is replaced, never
    /// followed), or added when absent.
    pub files: BTreeMap<String, Vec<u8>>,
    /// When set, /etc/hosts gets `127.0.1.1\t<hostname>` (rewritten or
    /// added, other lines kept; created with localhost lines if absent).
    pub hosts_hostname: Option<Hostname>,
    /// Rootfs path → how the tarball's own file there is changed as it
    /// streams (e.g. the board's kernel arguments added to
    /// /etc/default/grub), its owner, mode and xattrs kept. A `*` in a
    /// component matches any run of characters there
    /// (`/boot/loader/entries/*.conf`); a path's own rewrite wins over a
    /// pattern's.
    pub rewrites: BTreeMap<String, Rewrite>,
    /// Rootfs paths dropped from the tarball, with everything below them.
    pub remove: Vec<String>,
    /// Host files added on top, owned root:root (see [`scan_overlay`]).
    pub overlay: Vec<OverlayEntry>,
    /// Test hook of `mkimg build --verify-repro` (its second build only,
    /// set by the hidden `--repro-perturb`): one byte is appended to the
    /// data of this regular file of the tarball, everything else about it
    /// kept, so the two builds differ in one known place. The pass fails
    /// when the tarball has no regular file there.
    pub perturb: Option<String>,
}

impl Edits {
    /// No replacements, the default removal list.
    pub fn new(source_date_epoch: u64) -> Self {
        Self {
            source_date_epoch,
            files: BTreeMap::new(),
            hosts_hostname: None,
            rewrites: BTreeMap::new(),
            remove: DEFAULT_REMOVALS.iter().map(|s| (*s).to_owned()).collect(),
            overlay: Vec::new(),
            perturb: None,
        }
    }

    /// Writes /etc/hostname and edits /etc/hosts for `hostname`.
    pub fn set_hostname(&mut self, hostname: &Hostname) {
        self.files
            .insert("/etc/hostname".into(), format!("{hostname}\n").into_bytes());
        self.hosts_hostname = Some(hostname.clone());
    }

    pub fn replace_file(&mut self, path: &str, content: impl Into<Vec<u8>>) {
        self.files.insert(path.to_owned(), content.into());
    }
}

/// The function of a [`Rewrite`]: the file's bytes in, the new bytes out,
/// or why it cannot be changed (the message names no path: the pass adds
/// it).
pub type RewriteFn = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync;

/// A small regular file of the tarball changed in the stream: the pass
/// reads it whole (refusing, from its header, one larger than `limit`
/// before reading any of it), passes the bytes to `edit` and writes what
/// comes back in its place. The entry keeps its owner, mode and xattrs;
/// its mtime becomes SOURCE_DATE_EPOCH (the build changed it), so the
/// result depends only on the input and the epoch. Captures see the new
/// bytes.
#[derive(Clone)]
pub struct Rewrite {
    pub limit: u64,
    pub edit: Arc<RewriteFn>,
}

impl fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewrite")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Rewrites (or creates) /etc/hosts so that it maps 127.0.1.1 to `hostname`.
/// Existing 127.0.1.1 lines are replaced (the first one kept in place);
/// without one, the line goes after the first 127.0.0.1 line, else first.
pub fn render_hosts(original: Option<&str>, hostname: &Hostname) -> String {
    let ours = format!("127.0.1.1\t{hostname}");
    let Some(original) = original else {
        return format!(
            "127.0.0.1\tlocalhost\n{ours}\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        );
    };
    let first_field = |l: &str| l.split_whitespace().next().map(str::to_owned);
    let mut lines: Vec<String> = Vec::new();
    let mut placed = false;
    for line in original.lines() {
        if first_field(line).as_deref() == Some("127.0.1.1") {
            if !placed {
                lines.push(ours.clone());
                placed = true;
            }
        } else {
            lines.push(line.to_owned());
        }
    }
    if !placed {
        let at = lines
            .iter()
            .position(|l| first_field(l).as_deref() == Some("127.0.0.1"))
            .map_or(0, |i| i + 1);
        lines.insert(at, ours);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayKind {
    Dir,
    /// Opened and streamed during the pass; `size` as scanned.
    File {
        source: PathBuf,
        size: u64,
    },
    Symlink {
        target: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayEntry {
    /// Rootfs path, e.g. "/etc/motd".
    pub path: String,
    pub kind: OverlayKind,
    /// Permission bits of the host file.
    pub mode: u32,
    /// The host mtime; clamped to SOURCE_DATE_EPOCH by the pass.
    pub mtime: u64,
}

/// Lists `dir` recursively in name order (parents before children).
/// Directories already present in the tarball keep the tarball's metadata.
pub fn scan_overlay(dir: &Path) -> io::Result<Vec<OverlayEntry>> {
    let mut out = Vec::new();
    scan_into(dir, "", &mut out)?;
    Ok(out)
}

fn scan_into(dir: &Path, prefix: &str, out: &mut Vec<OverlayEntry>) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let name = child.file_name().into_string().map_err(|n| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("overlay name {n:?} is not UTF-8"),
            )
        })?;
        let path = format!("{prefix}/{name}");
        let meta = fs::symlink_metadata(child.path())?;
        let kind = if meta.is_dir() {
            OverlayKind::Dir
        } else if meta.is_file() {
            OverlayKind::File {
                source: child.path(),
                size: meta.len(),
            }
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(child.path())?;
            let target = target.into_os_string().into_string().map_err(|t| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("overlay symlink target {t:?} is not UTF-8"),
                )
            })?;
            OverlayKind::Symlink { target }
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "overlay {}: only files, directories and symlinks are supported",
                    child.path().display()
                ),
            ));
        };
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        out.push(OverlayEntry {
            path: path.clone(),
            kind: kind.clone(),
            mode: meta.permissions().mode() & 0o7777,
            mtime,
        });
        if kind == OverlayKind::Dir {
            scan_into(&child.path(), &path, out)?;
        }
    }
    Ok(())
}
