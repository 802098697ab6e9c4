//! Paths of a root filesystem resolved the way the kernel resolves them
//! for a process rooted there — symlinks followed, absolute targets and
//! `..` kept inside the root — without ever asking the host's kernel to
//! follow one of the root's symlinks.
//!
//! Must not: follow a symlink through the host (each component is looked
//! at with `lstat` below a prefix already known to hold none), or loop
//! (at most [`MAX_LINKS`] links, as Linux's `ELOOP`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Links followed in one resolution before giving up (Linux: 40).
const MAX_LINKS: usize = 40;

/// Where a path of the root leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The longest existing prefix, symlinks resolved: an absolute path in
    /// the root ("/usr/lib" for "/lib/x86_64-linux-gnu/libc.so.6" when
    /// `/lib` is a link to `usr/lib` and the rest is missing).
    pub found: PathBuf,
    /// The components after `found` that do not exist (empty: the whole
    /// path exists and `found` is its real location).
    pub missing: Vec<OsString>,
}

impl Resolved {
    /// Whether the whole path exists.
    pub fn exists(&self) -> bool {
        self.missing.is_empty()
    }

    /// `found` and `missing` joined: where the path would be made.
    pub fn full(&self) -> PathBuf {
        let mut out = self.found.clone();
        out.extend(&self.missing);
        out
    }
}

/// The host path of `inside` (an absolute path in the root).
pub fn host_path(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// Resolve the absolute `path` inside `root`. An error is an I/O error
/// other than "not found", a non-directory in the middle of the path, or
/// too many links.
pub fn resolve(root: &Path, path: &Path) -> io::Result<Resolved> {
    let mut found = PathBuf::from("/");
    let mut todo: VecDeque<OsString> = parts(path);
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            found.pop();
            continue;
        }
        let candidate = found.join(&part);
        let meta = match fs::symlink_metadata(host_path(root, &candidate)) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let mut missing = vec![part];
                missing.extend(todo);
                if missing.iter().any(|p| p == "..") {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{}: `..` after a missing component", path.display()),
                    ));
                }
                return Ok(Resolved { found, missing });
            }
            Err(err) => return Err(err),
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::other(format!(
                    "{}: more than {MAX_LINKS} symlinks",
                    path.display()
                )));
            }
            let target = fs::read_link(host_path(root, &candidate))?;
            if target.is_absolute() {
                found = PathBuf::from("/");
            }
            for part in parts(&target).into_iter().rev() {
                todo.push_front(part);
            }
            continue;
        }
        if !todo.is_empty() && !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!(
                    "{}: {} is not a directory",
                    path.display(),
                    candidate.display()
                ),
            ));
        }
        found = candidate;
    }
    Ok(Resolved {
        found,
        missing: Vec::new(),
    })
}

/// The components of `path` that name something: "." and "/" dropped,
/// ".." kept for [`resolve`].
fn parts(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}
