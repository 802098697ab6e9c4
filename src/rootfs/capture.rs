//! Things the build needs later, picked up during the single pass.
//!
//! Owns: what to capture ([`Captures`]), the results ([`CaptureResults`]),
//! and the tee reader that copies file bytes aside while they stream to a
//! sink. Captures see the entries as written (after edits), keyed by their
//! rootfs path.
//! Must not: follow symlinks (a captured symlink is reported as such), or
//! keep anything not asked for.
//! In: emitted entries. Out: [`CaptureResults`].

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::rootfs::entry::{normalise_path, parent_path, Entry, EntryKind, NodeType};
use crate::rootfs::error::RootfsError;

pub const ELF_MAGIC: &[u8] = b"\x7fELF";
const ELF_HEAD_LEN: usize = 64;

/// What to capture. Paths are rootfs paths ("/etc/default/grub").
#[derive(Debug, Clone)]
pub struct Captures {
    /// Files whose content is wanted.
    pub files: Vec<String>,
    /// Files whose content is wanted, by pattern: a rootfs path in which a
    /// component may hold one `*` standing for any characters but `/`
    /// ("/boot/efi/EFI/*/grubaa64.efi", "/boot/loader/entries/*.conf").
    /// Results are keyed by the path found ("/boot/efi/EFI/fedora/grubaa64.efi").
    pub patterns: Vec<String>,
    /// Directories whose child names are wanted (e.g. "/boot").
    pub dirs: Vec<String>,
    /// Where to look for ELF files for architecture detection.
    pub elf_dirs: Vec<String>,
    /// How many ELF headers to keep.
    pub elf_count: usize,
    /// A captured file larger than this is an error.
    pub max_file_bytes: u64,
    /// All captured file bytes together larger than this is an error (a
    /// crafted tarball with many files matching a pattern).
    pub max_total_bytes: u64,
}

impl Default for Captures {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            patterns: Vec::new(),
            dirs: Vec::new(),
            elf_dirs: vec!["/usr/bin".into(), "/bin".into()],
            elf_count: 3,
            max_file_bytes: 64 << 20,
            max_total_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    File(Vec<u8>),
    /// The path is a symlink in the rootfs; its target, not followed.
    Symlink(String),
    /// The path is a hard link to this earlier rootfs path.
    HardLink(String),
    Other(NodeType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirChild {
    pub name: String,
    pub node: NodeType,
    pub symlink_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfHead {
    pub path: String,
    /// The first 64 bytes (fewer only if the file is shorter).
    pub head: Vec<u8>,
}

/// Keys are the paths exactly as given in [`Captures`]; an absent key
/// means the path does not exist in the output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureResults {
    pub files: BTreeMap<String, Captured>,
    pub dirs: BTreeMap<String, Vec<DirChild>>,
    pub elf_heads: Vec<ElfHead>,
}

pub struct CaptureState {
    files: BTreeMap<String, String>,
    /// Normalised patterns, split into components.
    patterns: Vec<Vec<String>>,
    dirs: BTreeMap<String, String>,
    elf_dirs: Vec<String>,
    elf_count: usize,
    max_file_bytes: u64,
    max_total_bytes: u64,
    /// Bytes of the files kept so far.
    kept_bytes: u64,
    pub results: CaptureResults,
}

/// What the tee must keep for one entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct TeePlan {
    pub keep_all: bool,
    pub keep_head: bool,
}

fn by_normalised(paths: &[String]) -> BTreeMap<String, String> {
    paths
        .iter()
        .filter_map(|p| normalise_path(p).map(|n| (n, p.clone())))
        .collect()
}

impl CaptureState {
    pub fn new(c: &Captures) -> Self {
        Self {
            files: by_normalised(&c.files),
            patterns: c
                .patterns
                .iter()
                .filter_map(|p| normalise_path(p))
                .map(|p| p.split('/').map(str::to_owned).collect())
                .collect(),
            dirs: by_normalised(&c.dirs),
            elf_dirs: c
                .elf_dirs
                .iter()
                .filter_map(|p| normalise_path(p))
                .collect(),
            elf_count: c.elf_count,
            max_file_bytes: c.max_file_bytes,
            max_total_bytes: c.max_total_bytes,
            kept_bytes: 0,
            results: CaptureResults::default(),
        }
    }

    /// The key `path` is captured under, if it is wanted: as given in
    /// [`Captures::files`], or `/path` when a pattern matches.
    fn key(&self, path: &str) -> Option<String> {
        if let Some(key) = self.files.get(path) {
            return Some(key.clone());
        }
        self.patterns
            .iter()
            .any(|p| matches_pattern(p, path))
            .then(|| format!("/{path}"))
    }

    /// Decides what to keep of `entry` (at rootfs path `path`).
    pub fn plan(&mut self, path: &str, entry: &Entry) -> Result<TeePlan, RootfsError> {
        let EntryKind::File { size } = entry.kind else {
            return Ok(TeePlan::default());
        };
        let keep_all = self.key(path).is_some();
        if keep_all && size > self.max_file_bytes {
            return Err(RootfsError::CaptureTooLarge {
                path: path.to_owned(),
                limit: self.max_file_bytes,
            });
        }
        if keep_all {
            self.kept_bytes = self.kept_bytes.saturating_add(size);
            if self.kept_bytes > self.max_total_bytes {
                return Err(RootfsError::CaptureTooLarge {
                    path: format!("{path} (with the files captured before it)"),
                    limit: self.max_total_bytes,
                });
            }
        }
        let keep_head = self.results.elf_heads.len() < self.elf_count
            && size >= ELF_MAGIC.len() as u64
            && self.elf_dirs.iter().any(|d| {
                path.strip_prefix(d.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            });
        Ok(TeePlan {
            keep_all,
            keep_head,
        })
    }

    /// Records an emitted entry; `tee` is the reader its data went through.
    pub fn record(&mut self, path: &str, entry: &Entry, tee: Option<Tee<'_>>) {
        if let Some(key) = self.key(path) {
            let captured = match (&entry.kind, tee) {
                (EntryKind::File { .. }, Some(t)) => Captured::File(t.full.unwrap_or_default()),
                (EntryKind::Symlink { target }, _) => Captured::Symlink(target.clone()),
                (EntryKind::HardLink { target }, _) => Captured::HardLink(format!("/{target}")),
                (kind, _) => Captured::Other(kind.node_type()),
            };
            self.results.files.insert(key, captured);
        } else if let (EntryKind::File { .. }, Some(t)) = (&entry.kind, tee) {
            if let Some(head) = t.head.filter(|h| h.starts_with(ELF_MAGIC)) {
                self.results.elf_heads.push(ElfHead {
                    path: format!("/{path}"),
                    head,
                });
            }
        }
        if entry.kind == EntryKind::Dir {
            if let Some(key) = self.dirs.get(path) {
                self.results.dirs.entry(key.clone()).or_default();
            }
        }
        if path.is_empty() {
            return;
        }
        if let Some(key) = self.dirs.get(parent_path(path)) {
            let name = path.rsplit('/').next().unwrap_or(path).to_owned();
            let symlink_target = match &entry.kind {
                EntryKind::Symlink { target } => Some(target.clone()),
                _ => None,
            };
            let children = self.results.dirs.entry(key.clone()).or_default();
            children.retain(|c| c.name != name);
            children.push(DirChild {
                name,
                node: entry.kind.node_type(),
                symlink_target,
            });
        }
    }
}

/// Whether the normalised `path` matches `pattern` (components; one `*`
/// per component matches any run of characters).
pub(super) fn matches_pattern(pattern: &[String], path: &str) -> bool {
    let mut parts = path.split('/');
    let all = pattern.iter().all(|want| {
        let Some(part) = parts.next() else {
            return false;
        };
        match want.split_once('*') {
            None => part == want,
            Some((head, tail)) => {
                part.len() >= head.len() + tail.len()
                    && part.starts_with(head)
                    && part.ends_with(tail)
            }
        }
    });
    all && parts.next().is_none()
}

/// Passes exactly `expected` bytes through, copying what the plan asks for,
/// and remembers whether the source ended early.
pub struct Tee<'a> {
    inner: &'a mut dyn Read,
    expected: u64,
    pub count: u64,
    pub ended_early: bool,
    /// The source returned an error (as opposed to the sink).
    pub inner_failed: bool,
    full: Option<Vec<u8>>,
    head: Option<Vec<u8>>,
}

impl<'a> Tee<'a> {
    pub fn new(inner: &'a mut dyn Read, expected: u64, plan: TeePlan) -> Self {
        Self {
            inner,
            expected,
            count: 0,
            ended_early: false,
            inner_failed: false,
            full: plan.keep_all.then(Vec::new),
            head: plan.keep_head.then(Vec::new),
        }
    }

    /// Reads whatever the sink left unread, so captures and the input
    /// position stay complete.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.expected - self.count;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                self.ended_early = true;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file data ends early",
                ));
            }
            Ok(n) => n,
            Err(e) => {
                self.inner_failed = true;
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    self.ended_early = true;
                }
                return Err(e);
            }
        };
        self.count += n as u64;
        if let Some(full) = self.full.as_mut() {
            full.extend_from_slice(&buf[..n]);
        }
        if let Some(head) = self.head.as_mut() {
            let room = ELF_HEAD_LEN.saturating_sub(head.len()).min(n);
            head.extend_from_slice(&buf[..room]);
        }
        Ok(n)
    }
}
