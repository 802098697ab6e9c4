//! The single streaming pass: route, edit, check and emit every entry.
//!
//! Owns: the split by mount point (deepest wins; a mount point itself stays
//! in its parent partition as a directory), replacements, rewrites and
//! removals, hard link and parent checks, implicit parent directories, per-output
//! statistics and budgets (checked before an entry reaches its sink), the
//! refusal of a path given twice as different kinds and of names no
//! filesystem holds (a component over 255 bytes, a symlink target over
//! 4095), and calling the capture hooks.
//! Must not: buffer file data (only /etc/hosts, rewritten files, captures
//! and sinks that choose to), follow a symlink, or write anything but the sinks.
//! In: members from [`TarWalker`]. Out: sink calls and a [`RootfsSummary`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Cursor, Read};

use crate::board::names::Hostname;
use crate::board::paths::open_resolved;
use crate::rootfs::budget::{Budget, Overrun, Usage};
use crate::rootfs::capture::{matches_pattern, CaptureState, Tee};
use crate::rootfs::edits::{render_hosts, OverlayEntry, OverlayKind, Rewrite};
use crate::rootfs::entry::{join_path, normalise_path, Entry, EntryKind, NodeType};
use crate::rootfs::error::{RootfsError, SinkError};
use crate::rootfs::member::entry_from_member;
use crate::rootfs::reader::{MemberData, RawMember, TarWalker};
use crate::rootfs::sink::EntrySink;
use crate::rootfs::stats::OutputStats;
use crate::rootfs::RootfsJob;

const HOSTS_LIMIT: u64 = 1 << 20;
/// Longest file name (one path component) ext4 and FAT hold, in bytes.
const NAME_MAX: usize = 255;
/// Longest symlink target ext4 holds.
const SYMLINK_MAX: usize = 4095;

enum Replacement {
    Content(Vec<u8>),
    Hosts(Hostname),
    Overlay(OverlayEntry),
}

/// Which input an emitted entry came from, for error messages.
pub struct Ctx {
    pub name: String,
    pub index: u64,
    pub offset: u64,
}

struct Output<'s> {
    mount: String,
    sink: &'s mut dyn EntrySink,
    stats: OutputStats,
    budget: Option<Budget>,
    used: Usage,
}

pub struct Pass<'s> {
    epoch: u64,
    outputs: Vec<Output<'s>>,
    deepest_first: Vec<usize>,
    seen: HashMap<String, (usize, NodeType)>,
    replacements: BTreeMap<String, Replacement>,
    /// [`crate::rootfs::Edits::rewrites`], by normalised path.
    rewrites: BTreeMap<String, Rewrite>,
    /// Those of them whose key has a `*`: the pattern's components.
    rewrite_patterns: Vec<(Vec<String>, Rewrite)>,
    done: HashSet<String>,
    remove: Vec<String>,
    pub removed: Vec<String>,
    pub captures: CaptureState,
    /// The test hook [`crate::rootfs::Edits::perturb`], normalised, and
    /// whether it found its file.
    perturb: Option<(String, bool)>,
}

impl<'s> Pass<'s> {
    /// The rewrite of the normalised `path`: its own, else the first
    /// pattern it matches.
    fn rewrite_for(&self, path: &str) -> Option<&Rewrite> {
        self.rewrites.get(path).or_else(|| {
            self.rewrite_patterns
                .iter()
                .find(|(pattern, _)| matches_pattern(pattern, path))
                .map(|(_, rewrite)| rewrite)
        })
    }

    pub fn new(job: RootfsJob<'s>) -> Result<Self, RootfsError> {
        let edits = job.edits;
        let mut outputs = vec![Output {
            mount: String::new(),
            sink: job.root,
            stats: OutputStats::new("/"),
            budget: job.root_budget,
            used: Usage::default(),
        }];
        for t in job.split {
            let bad = || RootfsError::InvalidMountPoint {
                mount_point: t.mount_point.clone(),
            };
            let mount = normalise_path(&t.mount_point)
                .filter(|m| !m.is_empty())
                .ok_or_else(bad)?;
            if outputs.iter().any(|o| o.mount == mount) {
                return Err(bad());
            }
            outputs.push(Output {
                stats: OutputStats::new(&format!("/{mount}")),
                mount,
                sink: t.sink,
                budget: t.budget,
                used: Usage::default(),
            });
        }
        let mut deepest_first: Vec<usize> = (1..outputs.len()).collect();
        deepest_first.sort_by_key(|&i| std::cmp::Reverse(outputs[i].mount.matches('/').count()));
        let mut replacements = BTreeMap::new();
        let norm = |p: &str| normalise_path(p).filter(|n| !n.is_empty());
        if let Some(h) = &edits.hosts_hostname {
            replacements.insert("etc/hosts".to_owned(), Replacement::Hosts(h.clone()));
        }
        for (p, content) in &edits.files {
            let path = norm(p).ok_or_else(|| RootfsError::InvalidEditPath { path: p.clone() })?;
            replacements.insert(path, Replacement::Content(content.clone()));
        }
        for o in &edits.overlay {
            let path = norm(&o.path).ok_or_else(|| RootfsError::InvalidEditPath {
                path: o.path.clone(),
            })?;
            replacements.insert(path, Replacement::Overlay(o.clone()));
        }
        let mut rewrites = BTreeMap::new();
        let mut rewrite_patterns = Vec::new();
        for (p, rewrite) in &edits.rewrites {
            let path = norm(p).ok_or_else(|| RootfsError::InvalidEditPath { path: p.clone() })?;
            if path.contains('*') {
                let parts = path.split('/').map(str::to_string).collect();
                rewrite_patterns.push((parts, rewrite.clone()));
            } else {
                rewrites.insert(path, rewrite.clone());
            }
        }
        let perturb = match &edits.perturb {
            Some(p) => Some((
                norm(p).ok_or_else(|| RootfsError::InvalidEditPath { path: p.clone() })?,
                false,
            )),
            None => None,
        };
        Ok(Self {
            perturb,
            epoch: edits.source_date_epoch,
            outputs,
            deepest_first,
            seen: HashMap::new(),
            replacements,
            rewrites,
            rewrite_patterns,
            done: HashSet::new(),
            remove: edits.remove.iter().filter_map(|p| norm(p)).collect(),
            removed: Vec::new(),
            captures: CaptureState::new(&job.captures),
        })
    }

    /// The output owning `path` and the path relative to its root. A mount
    /// point itself belongs to the partition that contains it.
    fn route(&self, path: &str) -> (usize, String) {
        for &i in &self.deepest_first {
            let m = &self.outputs[i].mount;
            if let Some(rest) = path
                .strip_prefix(m.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                return (i, rest.to_owned());
            }
        }
        (0, path.to_owned())
    }

    fn is_removed(&self, path: &str) -> bool {
        self.remove.iter().any(|r| {
            path == r
                || path
                    .strip_prefix(r.as_str())
                    .is_some_and(|x| x.starts_with('/'))
        })
    }

    pub fn process_member<R: Read>(
        &mut self,
        m: &RawMember,
        walker: &mut TarWalker<R>,
    ) -> Result<(), RootfsError> {
        let (mut entry, name) = entry_from_member(m)?;
        let ctx = Ctx {
            name,
            index: m.index,
            offset: m.offset,
        };
        check_names(&entry, &ctx)?;
        entry.mtime = entry.mtime.min(self.epoch);
        let path = entry.path.clone();
        let unsupported = |kind: &str| RootfsError::UnsupportedMember {
            name: ctx.name.clone(),
            kind: kind.into(),
            index: ctx.index,
            offset: ctx.offset,
        };
        if path.is_empty() {
            if entry.kind != EntryKind::Dir {
                return Err(unsupported("root entry that is not a directory"));
            }
            return self.emit(0, &path, entry, Some(&mut io::empty()), &ctx);
        }
        if let Some(rep) = self.replacements.get(&path) {
            let both_dirs = matches!(
                rep,
                Replacement::Overlay(OverlayEntry {
                    kind: OverlayKind::Dir,
                    ..
                })
            ) && entry.kind == EntryKind::Dir;
            if !both_dirs {
                if entry.kind == EntryKind::Dir {
                    return Err(RootfsError::EditedPathIsDirectory {
                        name: ctx.name,
                        index: ctx.index,
                        offset: ctx.offset,
                    });
                }
                if !self.done.insert(path.clone()) {
                    return Ok(());
                }
                let original = match (&self.replacements[&path], &entry.kind) {
                    (Replacement::Hosts(_), EntryKind::File { .. }) => {
                        Some(read_hosts(m, walker, &ctx)?)
                    }
                    _ => None,
                };
                return self.emit_replacement(&path, original.as_deref(), &ctx);
            }
            self.done.insert(path.clone());
        }
        if self.is_removed(&path) {
            self.removed.push(format!("/{path}"));
            return Ok(());
        }
        let (out, rel) = self.route(&path);
        if let EntryKind::HardLink { target } = &entry.kind {
            let missing = || RootfsError::HardLinkTargetMissing {
                name: ctx.name.clone(),
                target: target.clone(),
                index: ctx.index,
                offset: ctx.offset,
            };
            let &(t_out, t_kind) = self.seen.get(target).ok_or_else(missing)?;
            if t_kind == NodeType::Dir {
                return Err(missing());
            }
            if t_out != out {
                return Err(RootfsError::HardLinkAcrossPartitions {
                    name: ctx.name.clone(),
                    target: target.clone(),
                    index: ctx.index,
                    offset: ctx.offset,
                });
            }
            let (_, t_rel) = self.route(target);
            entry.kind = EntryKind::HardLink { target: t_rel };
        }
        if self.outputs.iter().any(|o| o.mount == path) && entry.kind != EntryKind::Dir {
            return Err(RootfsError::MountPointNotDirectory {
                mount_point: format!("/{path}"),
                kind: format!("{:?}", entry.kind.node_type()),
            });
        }
        entry.path = rel;
        let mut data = MemberData { walker };
        if let Some(rewrite) = self.rewrite_for(&path) {
            if let EntryKind::File { size } = entry.kind {
                let text = rewritten(rewrite, size, &mut data, &ctx)?;
                entry.kind = EntryKind::File {
                    size: text.len() as u64,
                };
                entry.mtime = self.epoch;
                return self.emit(out, &path, entry, Some(&mut Cursor::new(text)), &ctx);
            }
        }
        if let Some((target, found)) = &mut self.perturb {
            if let (true, EntryKind::File { size }) = (*target == path, &mut entry.kind) {
                // The test hook (see `Edits::perturb`): one byte more, streamed.
                *size = size.checked_add(1).ok_or(RootfsError::PerturbMissing {
                    path: format!("/{path}"),
                })?;
                *found = true;
                let mut longer = data.chain(&b"#"[..]);
                return self.emit(out, &path, entry, Some(&mut longer), &ctx);
            }
        }
        self.emit(out, &path, entry, Some(&mut data), &ctx)
    }

    fn emit_replacement(
        &mut self,
        path: &str,
        original_hosts: Option<&str>,
        ctx: &Ctx,
    ) -> Result<(), RootfsError> {
        let (out, rel) = self.route(path);
        let epoch = self.epoch;
        let (mut entry, mut data): (Entry, Box<dyn Read>) = match &self.replacements[path] {
            Replacement::Content(bytes) => (
                Entry::root_owned(
                    &rel,
                    EntryKind::File {
                        size: bytes.len() as u64,
                    },
                    0o644,
                    epoch,
                ),
                Box::new(Cursor::new(bytes.clone())),
            ),
            Replacement::Hosts(h) => {
                let text = render_hosts(original_hosts, h).into_bytes();
                (
                    Entry::root_owned(
                        &rel,
                        EntryKind::File {
                            size: text.len() as u64,
                        },
                        0o644,
                        epoch,
                    ),
                    Box::new(Cursor::new(text)),
                )
            }
            Replacement::Overlay(o) => {
                let mtime = o.mtime.min(epoch);
                match &o.kind {
                    OverlayKind::Dir => (
                        Entry::root_owned(&rel, EntryKind::Dir, o.mode, mtime),
                        Box::new(io::empty()),
                    ),
                    OverlayKind::Symlink { target } => (
                        Entry::root_owned(
                            &rel,
                            EntryKind::Symlink {
                                target: target.clone(),
                            },
                            o.mode,
                            mtime,
                        ),
                        Box::new(io::empty()),
                    ),
                    OverlayKind::File { source, size } => {
                        let file =
                            open_resolved(source).map_err(|source| RootfsError::Overlay {
                                path: o.path.clone(),
                                source,
                            })?;
                        (
                            Entry::root_owned(&rel, EntryKind::File { size: *size }, o.mode, mtime),
                            Box::new(file),
                        )
                    }
                }
            }
        };
        let overlay = matches!(self.replacements[path], Replacement::Overlay(_));
        let changed = |e| match e {
            RootfsError::TruncatedMember { .. } if overlay => RootfsError::OverlayChanged {
                path: format!("/{path}"),
            },
            e => e,
        };
        // An overlay file is the image's file there: a rewrite applies to
        // it as to the tarball's (e.g. a board's own /etc/default/grub).
        let rewrite = match (&entry.kind, overlay) {
            (EntryKind::File { size }, true) => self.rewrite_for(path).map(|r| (r.clone(), *size)),
            _ => None,
        };
        if let Some((rewrite, size)) = rewrite {
            let text = rewritten(&rewrite, size, &mut *data, ctx).map_err(changed)?;
            entry.kind = EntryKind::File {
                size: text.len() as u64,
            };
            entry.mtime = epoch;
            return self
                .emit(out, path, entry, Some(&mut Cursor::new(text)), ctx)
                .map_err(changed);
        }
        self.emit(out, path, entry, Some(&mut *data), ctx)
            .map_err(changed)
    }

    /// Creates missing parents of `rel` in output `out` as 0755 root dirs.
    fn ensure_parents(&mut self, out: usize, rel: &str, ctx: &Ctx) -> Result<(), RootfsError> {
        let mut prefix = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix = join_path(&prefix, part);
            let rootfs = join_path(&self.outputs[out].mount, &prefix);
            match self.seen.get(&rootfs) {
                Some((_, NodeType::Dir)) => {}
                Some(_) => {
                    return Err(RootfsError::ParentNotDirectory {
                        name: ctx.name.clone(),
                        parent: format!("/{rootfs}"),
                        index: ctx.index,
                        offset: ctx.offset,
                    })
                }
                None => {
                    let dir = Entry::root_owned(&prefix, EntryKind::Dir, 0o755, self.epoch);
                    self.write(out, &rootfs, dir, None, ctx)?;
                }
            }
        }
        Ok(())
    }

    fn emit(
        &mut self,
        out: usize,
        path: &str,
        entry: Entry,
        data: Option<&mut dyn Read>,
        ctx: &Ctx,
    ) -> Result<(), RootfsError> {
        self.ensure_parents(out, &entry.path, ctx)?;
        self.write(out, path, entry, data, ctx)
    }

    fn write(
        &mut self,
        out: usize,
        path: &str,
        entry: Entry,
        data: Option<&mut dyn Read>,
        ctx: &Ctx,
    ) -> Result<(), RootfsError> {
        self.check_duplicate(path, &entry, ctx)?;
        let plan = self.captures.plan(path, &entry)?;
        let output = &mut self.outputs[out];
        if let Some(budget) = &output.budget {
            budget
                .charge(&mut output.used, &entry)
                .map_err(|overrun| over_budget(budget, &output.stats.mount_point, path, overrun))?;
        }
        let label = output.stats.mount_point.clone();
        let sink_err = |source| RootfsError::Sink {
            output: label,
            path: format!("/{path}"),
            source,
        };
        let mut tee = None;
        match (&entry.kind, data) {
            (EntryKind::File { size }, Some(data)) => {
                let t = tee.insert(Tee::new(data, *size, plan));
                let result = output
                    .sink
                    .write_entry(&entry, t)
                    .and_then(|()| t.drain().map_err(SinkError::Io));
                if t.ended_early {
                    return Err(RootfsError::TruncatedMember {
                        name: ctx.name.clone(),
                        index: ctx.index,
                        offset: ctx.offset,
                        got: t.count,
                        expected: *size,
                    });
                }
                match result {
                    Err(SinkError::Io(source)) if t.inner_failed => {
                        return Err(RootfsError::Input {
                            offset: ctx.offset,
                            source,
                        })
                    }
                    other => other.map_err(sink_err)?,
                }
            }
            _ => output
                .sink
                .write_entry(&entry, &mut io::empty())
                .map_err(sink_err)?,
        }
        output.stats.add(&entry);
        self.seen
            .insert(path.to_owned(), (out, entry.kind.node_type()));
        self.captures.record(path, &entry, tee);
        Ok(())
    }

    /// A path seen before as another kind of node (a file then a directory
    /// of the same name, a directory then a symlink) is refused here, with
    /// both kinds, instead of deep inside mke2fs. A path repeated as the
    /// same kind is fine (tar semantics, which mke2fs follows: the later
    /// one wins).
    fn check_duplicate(&self, path: &str, entry: &Entry, ctx: &Ctx) -> Result<(), RootfsError> {
        let Some(&(_, first)) = self.seen.get(path) else {
            return Ok(());
        };
        let second = entry.kind.node_type();
        if first == second {
            return Ok(());
        }
        Err(RootfsError::DuplicateEntry {
            name: ctx.name.clone(),
            path: format!("/{path}"),
            first: kind_name(first).into(),
            second: kind_name(second).into(),
            index: ctx.index,
            offset: ctx.offset,
        })
    }

    /// Adds what the tarball lacked (edited files, overlay, mount points),
    /// then finishes every sink.
    pub fn finish(
        mut self,
        members: u64,
        offset: u64,
    ) -> Result<(Vec<OutputStats>, Vec<String>, CaptureState), RootfsError> {
        if let Some((path, false)) = &self.perturb {
            return Err(RootfsError::PerturbMissing {
                path: format!("/{path}"),
            });
        }
        let pending: Vec<String> = self
            .replacements
            .keys()
            .filter(|p| !self.done.contains(*p))
            .cloned()
            .collect();
        for path in pending {
            let ctx = Ctx {
                name: format!("(added) /{path}"),
                index: members,
                offset,
            };
            if let Some((_, NodeType::Dir)) = self.seen.get(&path) {
                if matches!(
                    self.replacements[&path],
                    Replacement::Overlay(OverlayEntry {
                        kind: OverlayKind::Dir,
                        ..
                    })
                ) {
                    continue;
                }
            }
            self.emit_replacement(&path, None, &ctx)?;
        }
        let mut mounts: Vec<String> = self.outputs[1..].iter().map(|o| o.mount.clone()).collect();
        mounts.sort();
        for mount in mounts {
            if !self.seen.contains_key(&mount) {
                let ctx = Ctx {
                    name: format!("(mount point) /{mount}"),
                    index: members,
                    offset,
                };
                let (out, rel) = self.route(&mount);
                let dir = Entry::root_owned(&rel, EntryKind::Dir, 0o755, self.epoch);
                self.emit(out, &mount, dir, None, &ctx)?;
            }
        }
        for o in &mut self.outputs {
            let label = o.stats.mount_point.clone();
            o.sink.finish().map_err(|source| RootfsError::Sink {
                output: label,
                path: String::new(),
                source,
            })?;
        }
        let stats = self.outputs.into_iter().map(|o| o.stats).collect();
        Ok((stats, self.removed, self.captures))
    }
}

fn read_hosts<R: Read>(
    m: &RawMember,
    walker: &mut TarWalker<R>,
    ctx: &Ctx,
) -> Result<String, RootfsError> {
    if m.size > HOSTS_LIMIT {
        return Err(RootfsError::HostsTooLarge { limit: HOSTS_LIMIT });
    }
    let mut buf = Vec::new();
    MemberData { walker }
        .read_to_end(&mut buf)
        .map_err(|_| RootfsError::TruncatedMember {
            name: ctx.name.clone(),
            index: ctx.index,
            offset: ctx.offset,
            got: buf.len() as u64,
            expected: m.size,
        })?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The `size` bytes of a member, read whole and handed to `rewrite`. A
/// member over the limit is refused before any of it is read.
fn rewritten(
    rewrite: &Rewrite,
    size: u64,
    data: &mut dyn Read,
    ctx: &Ctx,
) -> Result<Vec<u8>, RootfsError> {
    if size > rewrite.limit {
        return Err(RootfsError::RewriteTooLarge {
            name: ctx.name.clone(),
            size,
            limit: rewrite.limit,
            index: ctx.index,
            offset: ctx.offset,
        });
    }
    let mut buf = Vec::new();
    let truncated = |got: usize| RootfsError::TruncatedMember {
        name: ctx.name.clone(),
        index: ctx.index,
        offset: ctx.offset,
        got: got as u64,
        expected: size,
    };
    // As the tee of the other members: an early end is a truncated member;
    // any other error (a corrupt stream, an interruption) keeps its source.
    if let Err(source) = data.take(size).read_to_end(&mut buf) {
        return Err(match source.kind() {
            io::ErrorKind::UnexpectedEof => truncated(buf.len()),
            _ => RootfsError::Input {
                offset: ctx.offset,
                source,
            },
        });
    }
    if (buf.len() as u64) < size {
        return Err(truncated(buf.len()));
    }
    (rewrite.edit)(&buf).map_err(|message| RootfsError::Rewrite {
        name: ctx.name.clone(),
        message,
        index: ctx.index,
        offset: ctx.offset,
    })
}

fn kind_name(kind: NodeType) -> &'static str {
    match kind {
        NodeType::Dir => "directory",
        NodeType::File => "file",
        NodeType::Symlink => "symlink",
        NodeType::HardLink => "hard link",
        NodeType::CharDev => "character device",
        NodeType::BlockDev => "block device",
        NodeType::Fifo => "FIFO",
    }
}

fn over_budget(budget: &Budget, mount_point: &str, path: &str, overrun: Overrun) -> RootfsError {
    let (partition, size) = (budget.partition.clone(), budget.size);
    let (mount_point, path) = (mount_point.to_owned(), format!("/{path}"));
    match overrun {
        Overrun::Bytes { needed, left } => RootfsError::OverBudget {
            partition,
            mount_point,
            size,
            path,
            needed,
            left,
            usable: budget.data_bytes,
        },
        Overrun::Inodes { inodes } => RootfsError::OutOfInodes {
            partition,
            mount_point,
            size,
            path,
            inodes,
        },
    }
}

/// Names no filesystem mkimg makes can hold, refused with the member.
fn check_names(entry: &Entry, ctx: &Ctx) -> Result<(), RootfsError> {
    if let Some(long) = entry.path.split('/').find(|c| c.len() > NAME_MAX) {
        let shown: String = long.chars().take(64).collect();
        return Err(RootfsError::NameTooLong {
            name: ctx.name.clone(),
            component: format!("{shown}…"),
            len: long.len(),
            index: ctx.index,
            offset: ctx.offset,
        });
    }
    if let EntryKind::Symlink { target } = &entry.kind {
        if target.len() > SYMLINK_MAX {
            return Err(RootfsError::SymlinkTooLong {
                name: ctx.name.clone(),
                len: target.len(),
                index: ctx.index,
                offset: ctx.offset,
            });
        }
    }
    Ok(())
}
