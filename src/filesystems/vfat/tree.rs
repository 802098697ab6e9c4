//! Validates the requested entries and puts them in canonical order.
//!
//! Owns: path and FAT long-name rules, implicit parent directories,
//! duplicate / case / file-versus-directory clash detection, the canonical
//! order (parents before children, siblings by case-folded name), and the
//! space a tree needs in clusters. Must not touch the device. In:
//! `&[VfatEntry]`. Out: `Vec<PlannedNode>` that the writer creates in order,
//! so the same set of entries always produces the same bytes.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::{FileSlice, VfatEntry, VfatError};

/// Longest FAT long name, in UTF-16 code units.
const MAX_NAME_UNITS: usize = 255;
/// UTF-16 code units held by one long-name directory entry.
const UNITS_PER_LFN_ENTRY: usize = 13;
/// Bytes of one directory entry.
pub(super) const DIR_ENTRY_BYTES: u64 = 32;
/// FAT stores file sizes in 32 bits.
const MAX_FILE_BYTES: u64 = u32::MAX as u64;

/// One directory or file to create, in creation order.
#[derive(Debug)]
pub(super) struct PlannedNode<'a> {
    /// Path as the caller spelled it, '/'-separated, relative to the root.
    pub(super) path: String,
    pub(super) kind: PlannedKind<'a>,
}

#[derive(Debug)]
pub(super) enum PlannedKind<'a> {
    Dir,
    File(Contents<'a>),
}

/// A file's bytes: in memory, or a slice of a file the caller opened.
#[derive(Debug, Clone, Copy)]
pub(super) enum Contents<'a> {
    Bytes(&'a [u8]),
    Slice(&'a FileSlice),
}

impl Contents<'_> {
    pub(super) fn len(&self) -> u64 {
        match self {
            Contents::Bytes(data) => data.len() as u64,
            Contents::Slice(slice) => slice.len,
        }
    }
}

fn file_kind<'a>(path: &str, contents: Contents<'a>) -> Result<PlannedKind<'a>, VfatError> {
    if contents.len() > MAX_FILE_BYTES {
        return Err(VfatError::FileTooLarge {
            path: path.to_owned(),
            size: contents.len(),
        });
    }
    Ok(PlannedKind::File(contents))
}

/// Bookkeeping while planning: who made a directory exist.
struct Slot<'a> {
    node: PlannedNode<'a>,
    /// `None` if given explicitly; else the entry whose path implied it.
    implied_by: Option<String>,
}

/// The canonical sort key of a path: its components, case-folded like FAT
/// compares names. Parents sort before their children.
pub(super) fn sort_key(path: &str) -> Vec<String> {
    path.split('/').map(str::to_uppercase).collect()
}

/// Checks every entry and returns the tree in canonical creation order.
pub(super) fn plan_tree(entries: &[VfatEntry]) -> Result<Vec<PlannedNode<'_>>, VfatError> {
    // Visit in path order so that which error is reported does not depend on input order.
    let mut sorted: Vec<&VfatEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));

    let mut slots: BTreeMap<Vec<String>, Slot<'_>> = BTreeMap::new();
    for entry in sorted {
        let path = entry.path();
        let components = split_path(path)?;
        for depth in 1..components.len() {
            let parent = components[..depth].join("/");
            add_implied_dir(&mut slots, parent, path)?;
        }
        let kind = match entry {
            VfatEntry::Dir { .. } => PlannedKind::Dir,
            VfatEntry::File { data, .. } => file_kind(path, Contents::Bytes(data))?,
            VfatEntry::Slice { data, .. } => file_kind(path, Contents::Slice(data))?,
        };
        add_explicit(&mut slots, components.join("/"), kind)?;
    }
    Ok(slots.into_values().map(|slot| slot.node).collect())
}

fn add_implied_dir<'a>(
    slots: &mut BTreeMap<Vec<String>, Slot<'a>>,
    dir: String,
    child: &str,
) -> Result<(), VfatError> {
    match slots.entry(sort_key(&dir)) {
        Entry::Vacant(vacant) => {
            vacant.insert(Slot {
                node: PlannedNode {
                    path: dir,
                    kind: PlannedKind::Dir,
                },
                implied_by: Some(child.to_owned()),
            });
            Ok(())
        }
        Entry::Occupied(occupied) => {
            let existing = &occupied.get().node;
            if let PlannedKind::File(_) = existing.kind {
                return Err(VfatError::FileDirClash {
                    path: existing.path.clone(),
                    other: child.to_owned(),
                });
            }
            check_same_case(&existing.path, &dir)
        }
    }
}

fn add_explicit<'a>(
    slots: &mut BTreeMap<Vec<String>, Slot<'a>>,
    path: String,
    kind: PlannedKind<'a>,
) -> Result<(), VfatError> {
    match slots.entry(sort_key(&path)) {
        Entry::Vacant(vacant) => {
            vacant.insert(Slot {
                node: PlannedNode { path, kind },
                implied_by: None,
            });
            Ok(())
        }
        Entry::Occupied(mut occupied) => {
            let slot = occupied.get_mut();
            check_same_case(&slot.node.path, &path)?;
            match (&slot.implied_by, &kind) {
                (Some(_), PlannedKind::Dir) => {
                    slot.implied_by = None;
                    Ok(())
                }
                (Some(child), PlannedKind::File(_)) => Err(VfatError::FileDirClash {
                    path,
                    other: child.clone(),
                }),
                (None, _) => Err(VfatError::DuplicatePath { path }),
            }
        }
    }
}

fn check_same_case(existing: &str, new: &str) -> Result<(), VfatError> {
    if existing == new {
        Ok(())
    } else {
        Err(VfatError::CaseClash {
            path: new.to_owned(),
            other: existing.to_owned(),
        })
    }
}

/// Splits a relative '/'-separated path and checks each component.
fn split_path(path: &str) -> Result<Vec<&str>, VfatError> {
    let invalid = |reason: String| VfatError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.starts_with('/') {
        return Err(invalid("must be relative (no leading '/')".to_owned()));
    }
    let components: Vec<&str> = path.split('/').collect();
    for name in &components {
        check_long_name(name).map_err(invalid)?;
    }
    Ok(components)
}

/// The VFAT long-name rules (the character set lamfat accepts, which is the
/// Windows one minus code points outside UCS-2), plus the Windows rule that a
/// name may not end in '.' or ' ' (Windows and Linux would strip them).
fn check_long_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("has an empty component".to_owned());
    }
    if name == "." || name == ".." {
        return Err(format!("component {name:?} is not allowed"));
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err(format!(
            "component {name:?} is longer than {MAX_NAME_UNITS} UTF-16 units"
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !is_long_name_char(c)) {
        return Err(format!(
            "character {bad:?} is not allowed in a FAT long name"
        ));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(format!("component {name:?} ends with '.' or ' '"));
    }
    Ok(())
}

fn is_long_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || ('\u{80}'..='\u{FFFF}').contains(&c)
        || "$%'-_@~`!(){}. +,;=[]^#&".contains(c)
}

/// Directory entries a name takes: lamfat writes long-name entries for every
/// name, plus the short-name entry.
pub(super) fn entries_for_name(name: &str) -> u64 {
    let units = name.encode_utf16().count();
    (units.div_ceil(UNITS_PER_LFN_ENTRY) + 1) as u64
}

/// Directory entries in each directory of the plan, keyed by the
/// directory's sort key (the root is the empty key).
pub(super) fn count_dir_entries(nodes: &[PlannedNode<'_>]) -> BTreeMap<Vec<String>, u64> {
    let mut counts: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    counts.insert(Vec::new(), 0);
    for node in nodes {
        let mut key = sort_key(&node.path);
        key.pop();
        let name = node.path.rsplit('/').next().unwrap_or(&node.path);
        *counts.entry(key).or_insert(0) += entries_for_name(name);
        if let PlannedKind::Dir = node.kind {
            // "." and ".."
            *counts.entry(sort_key(&node.path)).or_insert(0) += 2;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::{count_dir_entries, entries_for_name, plan_tree, sort_key};
    use crate::filesystems::vfat::VfatEntry;

    #[test]
    fn long_names_take_one_entry_per_13_units_plus_the_short_entry() {
        assert_eq!(entries_for_name("a"), 2);
        assert_eq!(entries_for_name(&"x".repeat(13)), 2);
        assert_eq!(entries_for_name(&"x".repeat(14)), 3);
        assert_eq!(entries_for_name(&"x".repeat(255)), 21);
    }

    #[test]
    fn plan_puts_parents_first_and_counts_entries() {
        let entries = [
            VfatEntry::File {
                path: "b/c.txt".to_owned(),
                data: vec![1],
            },
            VfatEntry::Dir {
                path: "A".to_owned(),
            },
        ];
        let plan = plan_tree(&entries).expect("plan");
        let paths: Vec<&str> = plan.iter().map(|node| node.path.as_str()).collect();
        assert_eq!(paths, ["A", "b", "b/c.txt"]);
        let counts = count_dir_entries(&plan);
        // Root: "A" and "b" (2 each); "A": "." and ".."; "b": dots + "c.txt".
        assert_eq!(counts[&Vec::<String>::new()], 4);
        assert_eq!(counts[&sort_key("A")], 2);
        assert_eq!(counts[&sort_key("b")], 4);
    }
}
