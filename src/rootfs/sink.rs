//! Where entries go: the sink trait, and the in-memory sink for small vfat
//! partitions.
//!
//! Owns: the `EntrySink` contract and `MemorySink`. A `MemorySink` keeps
//! small files in memory; given a spill file, it writes files of
//! [`SPILL_MIN`] bytes or more there instead (zero runs as holes), so a
//! 512 MiB file under /boot/efi costs no RAM.
//! Must not: open host paths (the spill file is handed in open); a sink
//! only sees entries with paths relative to its own partition root.
//! In: [`Entry`] + its data as `Read`. Out: whatever the sink builds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::rootfs::entry::{Entry, EntryKind};
use crate::rootfs::error::SinkError;

/// Receives the entries of one partition, in archive order, parents first.
pub trait EntrySink {
    /// `data` yields exactly `size` bytes for [`EntryKind::File`] and nothing
    /// otherwise. A sink may leave data unread; the pass drains it.
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError>;
    /// Called once after the last entry.
    fn finish(&mut self) -> Result<(), SinkError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemKind {
    Dir,
    File(Vec<u8>),
    /// A file written to the spill file: `len` bytes at `offset`.
    Spilled(Spilled),
    Symlink(String),
}

/// Files at least this large go to the spill file, when there is one.
pub const SPILL_MIN: u64 = 1 << 20;
const SPILL_CHUNK: usize = 1 << 16;
static ZEROS: [u8; SPILL_CHUNK] = [0; SPILL_CHUNK];

/// Where a spilled file's bytes are.
#[derive(Debug, Clone)]
pub struct Spilled {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl PartialEq for Spilled {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for Spilled {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemEntry {
    pub path: String,
    pub kind: MemKind,
    pub mode: u32,
    pub mtime: u64,
}

/// What a [`MemorySink`] accepts besides directories and regular files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemPolicy {
    /// FAT: symlinks, devices and FIFOs are errors; a hard link becomes a
    /// copy of its target's bytes.
    Vfat,
    /// Symlinks kept; devices and FIFOs are still errors.
    KeepSymlinks,
}

/// Collects a small partition (e.g. the ESP) in memory.
#[derive(Debug)]
pub struct MemorySink {
    policy: MemPolicy,
    entries: Vec<MemEntry>,
    index: HashMap<String, usize>,
    spill: Option<(Arc<File>, u64)>,
}

impl MemorySink {
    pub fn new(policy: MemPolicy) -> Self {
        Self {
            policy,
            entries: Vec::new(),
            index: HashMap::new(),
            spill: None,
        }
    }

    /// Large files go to `file` (opened read-write, empty) instead of RAM.
    pub fn with_spill(mut self, file: File) -> Self {
        self.spill = Some((Arc::new(file), 0));
        self
    }

    /// Copies `data` to the end of the spill file, leaving all-zero chunks
    /// as holes.
    fn spill(&mut self, data: &mut dyn Read) -> io::Result<Option<Spilled>> {
        let Some((file, end)) = &mut self.spill else {
            return Ok(None);
        };
        let offset = *end;
        let mut buf = vec![0u8; SPILL_CHUNK];
        loop {
            let mut got = 0;
            while got < buf.len() {
                match data.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if got == 0 {
                break;
            }
            // A slice compare is a memcmp, fast in debug builds too.
            if buf[..got] != ZEROS[..got] {
                file.write_all_at(&buf[..got], *end)?;
            }
            *end += got as u64;
        }
        if file.metadata()?.len() < *end {
            file.set_len(*end)?;
        }
        Ok(Some(Spilled {
            file: Arc::clone(file),
            offset,
            len: *end - offset,
        }))
    }

    pub fn entries(&self) -> &[MemEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<MemEntry> {
        self.entries
    }

    fn unsupported(&self, entry: &Entry) -> SinkError {
        let fs = match self.policy {
            MemPolicy::Vfat => "vfat",
            MemPolicy::KeepSymlinks => "the in-memory partition",
        };
        SinkError::Unsupported {
            path: entry.path.clone(),
            kind: entry.kind.node_type(),
            fs,
        }
    }
}

impl EntrySink for MemorySink {
    fn write_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), SinkError> {
        let kind = match &entry.kind {
            // The partition root has no metadata of its own on FAT.
            EntryKind::Dir if entry.path.is_empty() => return Ok(()),
            EntryKind::Dir => MemKind::Dir,
            EntryKind::File { size } if *size >= SPILL_MIN && self.spill.is_some() => {
                MemKind::Spilled(self.spill(data)?.expect("spill file checked above"))
            }
            EntryKind::File { size } => {
                let mut bytes =
                    Vec::with_capacity(usize::try_from(*size).unwrap_or(0).min(1 << 24));
                data.read_to_end(&mut bytes)?;
                MemKind::File(bytes)
            }
            EntryKind::Symlink { target } if self.policy == MemPolicy::KeepSymlinks => {
                MemKind::Symlink(target.clone())
            }
            EntryKind::HardLink { target } => {
                let source = self.index.get(target).map(|&at| &self.entries[at]);
                match source.map(|e| &e.kind) {
                    Some(MemKind::File(bytes)) => MemKind::File(bytes.clone()),
                    Some(MemKind::Spilled(spilled)) => MemKind::Spilled(spilled.clone()),
                    _ => return Err(self.unsupported(entry)),
                }
            }
            _ => return Err(self.unsupported(entry)),
        };
        let new = MemEntry {
            path: entry.path.clone(),
            kind,
            mode: entry.mode,
            mtime: entry.mtime,
        };
        // A repeated path replaces the earlier entry in place (tar semantics),
        // so parents stay ahead of their children.
        match self.index.get(&entry.path) {
            Some(&at) => self.entries[at] = new,
            None => {
                self.index.insert(entry.path.clone(), self.entries.len());
                self.entries.push(new);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, MetadataExt};

    use super::{EntrySink, MemKind, MemPolicy, MemorySink, SPILL_MIN};
    use crate::rootfs::entry::{Entry, EntryKind};

    fn file(path: &str, size: u64) -> Entry {
        Entry::root_owned(path, EntryKind::File { size }, 0o644, 0)
    }

    /// A large file goes to the spill file, its zero run as a hole; a
    /// small one and a hard link to the large one stay cheap in memory.
    #[test]
    fn large_files_spill_sparse() {
        let spill = tempfile::tempfile().unwrap();
        let probe = spill.try_clone().unwrap();
        let mut sink = MemorySink::new(MemPolicy::Vfat).with_spill(spill);
        let big = 64 * SPILL_MIN;
        let mut data = vec![0u8; big as usize - 3];
        data.extend_from_slice(b"end");
        sink.write_entry(&file("small", 2), &mut &b"hi"[..])
            .unwrap();
        sink.write_entry(&file("big", big), &mut &data[..]).unwrap();
        let link = Entry {
            kind: EntryKind::HardLink {
                target: "big".into(),
            },
            ..file("link", 0)
        };
        sink.write_entry(&link, &mut std::io::empty()).unwrap();
        let entries = sink.into_entries();
        assert_eq!(entries[0].kind, MemKind::File(b"hi".to_vec()));
        let MemKind::Spilled(spilled) = &entries[1].kind else {
            panic!("{:?}", entries[1].kind);
        };
        assert_eq!((spilled.offset, spilled.len), (0, big));
        assert_eq!(entries[2].kind, entries[1].kind);
        let mut tail = [0u8; 3];
        probe.read_exact_at(&mut tail, big - 3).unwrap();
        assert_eq!(&tail, b"end");
        let meta = probe.metadata().unwrap();
        assert_eq!(meta.len(), big);
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
    }
}
