//! Placement and validation of every byte range on the disk: MBR, primary
//! GPT header and entry array, partitions, raw blobs, backup GPT.
//!
//! Pure arithmetic over the requests the resolver hands in; every problem is
//! collected (not just the first) with both parties, their byte ranges and a
//! suggested fix, and the whole map is printed so the user sees the conflict
//! in context. Spawns nothing, reads nothing.

use std::fmt;

use serde::Serialize;

use crate::board::schema::TableKind;
use crate::board::size::format_bytes;
use crate::board::Location;
use crate::plan::arith::{add, div, mul, sub};
use crate::plan::{ExtendedPlan, GptPlacement, PlannedBlob, PlannedPartition};

/// Size of one GPT partition entry; the UEFI spec allows larger, nobody uses them.
pub const GPT_ENTRY_SIZE: u64 = 128;
/// Longest GPT partition name, in UTF-16 code units.
pub const GPT_NAME_UNITS: usize = 36;

/// The resolved disk.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub table: TableKind,
    pub sector_size: u64,
    pub disk_size: u64,
    pub alignment: u64,
    /// MBR disk signature (MBR and hybrid tables).
    pub mbr_signature: Option<u32>,
    /// GPT geometry (GPT and hybrid tables).
    pub gpt: Option<GptPlacement>,
    pub partitions: Vec<PlannedPartition>,
    pub blobs: Vec<PlannedBlob>,
    /// The MBR extended partition, when some partitions are logical.
    pub extended: Option<ExtendedPlan>,
    /// The raw file is `disk_size` long (`disk.fill`, default); else it
    /// ends at the last byte written.
    #[serde(skip_serializing_if = "is_true")]
    pub fill: bool,
}

fn is_true(value: &bool) -> bool {
    *value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionKind {
    Mbr,
    GptHeader,
    GptEntries,
    Blob,
    Partition,
    /// An EBR sector (a table structure).
    Ebr,
    /// The MBR extended partition: a container, not data; it may overlap
    /// the logical partitions, blobs and EBRs inside it.
    Extended,
    BackupGptEntries,
    BackupGptHeader,
}

/// One byte range on the disk, `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    pub name: String,
    pub kind: RegionKind,
    pub start: u64,
    pub end: u64,
    /// Absolute `[start, end)` ranges inside this region that hold nothing
    /// (a blob's `holes`): another region may lie there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<(u64, u64)>,
}

impl Region {
    pub fn new(name: &str, kind: RegionKind, start: u64, end: u64) -> Region {
        Region {
            name: name.to_string(),
            kind,
            start,
            end,
            holes: Vec::new(),
        }
    }

    pub fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end && self.start < self.end
    }

    /// The bytes both regions claim: their overlap minus the holes of
    /// either (a hole's bytes are written by the other region or by
    /// nobody). Empty when they can share the disk.
    pub fn conflicts(&self, other: &Region) -> Vec<(u64, u64)> {
        if !self.overlaps(other) || other.start >= other.end {
            return Vec::new();
        }
        let mut left = vec![(self.start.max(other.start), self.end.min(other.end))];
        for &(hole_start, hole_end) in self.holes.iter().chain(&other.holes) {
            left = left
                .into_iter()
                .flat_map(|(start, end)| {
                    let before = (start, end.min(hole_start));
                    let after = (start.max(hole_end), end);
                    [before, after].into_iter().filter(|(s, e)| s < e)
                })
                .collect();
        }
        left
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{:#x}..{:#x})", self.name, self.start, self.end)
    }
}

impl Layout {
    pub fn disk_sectors(&self) -> u64 {
        div(self.disk_size, self.sector_size)
    }

    /// Byte ranges written whole when flashed, zeros too: the partitions
    /// marked `sparse = false`.
    pub fn dense_ranges(&self) -> Vec<(u64, u64)> {
        self.partitions
            .iter()
            .filter(|p| !p.sparse)
            .map(|p| (p.start, p.end()))
            .collect()
    }

    /// Every region, sorted by start (ties: table structures first).
    pub fn regions(&self) -> Vec<Region> {
        let ss = self.sector_size;
        let mut regions = Vec::new();
        if matches!(
            self.table,
            TableKind::Gpt | TableKind::Mbr | TableKind::Hybrid
        ) {
            // Bytes 440..512: the writer leaves the boot code area to a blob.
            regions.push(region("MBR", RegionKind::Mbr, 440, 512));
        }
        if let Some(gpt) = &self.gpt {
            regions.push(region(
                "primary GPT header",
                RegionKind::GptHeader,
                ss,
                mul(2, ss),
            ));
            let entries = mul(gpt.entries_lba, ss);
            regions.push(region(
                "primary GPT entries",
                RegionKind::GptEntries,
                entries,
                add(entries, mul(gpt.entry_array_sectors, ss)),
            ));
            let backup = mul(gpt.backup_entries_lba, ss);
            let (entries_name, header_name) = if gpt.backup {
                ("backup GPT entries", "backup GPT header")
            } else {
                (
                    "backup GPT entries (reserved, not written)",
                    "backup GPT header (reserved, not written)",
                )
            };
            regions.push(region(
                entries_name,
                RegionKind::BackupGptEntries,
                backup,
                add(backup, mul(gpt.entry_array_sectors, ss)),
            ));
            let header = mul(gpt.backup_header_lba, ss);
            regions.push(region(
                header_name,
                RegionKind::BackupGptHeader,
                header,
                add(header, ss),
            ));
        }
        if let Some(ext) = &self.extended {
            let name = format!("extended partition {}", ext.slot);
            regions.push(region(&name, RegionKind::Extended, ext.start, ext.end));
        }
        for part in &self.partitions {
            let name = format!("partition {} '{}'", part.number, part.name);
            if let Some(ebr) = part.ebr {
                let ebr_name = format!("EBR of {name}");
                regions.push(region(&ebr_name, RegionKind::Ebr, ebr, add(ebr, ss)));
            }
            regions.push(region(&name, RegionKind::Partition, part.start, part.end()));
        }
        for blob in &self.blobs {
            let name = format!("blob '{}'", blob.name);
            let mut r = region(
                &name,
                RegionKind::Blob,
                blob.offset,
                add(blob.offset, blob.size),
            );
            r.holes = blob
                .holes
                .iter()
                .map(|&(start, end)| (add(blob.offset, start), add(blob.offset, end)))
                .collect();
            regions.push(r);
        }
        regions.sort_by_key(|r| (r.start, r.end));
        regions
    }
}

fn region(name: &str, kind: RegionKind, start: u64, end: u64) -> Region {
    Region::new(name, kind, start, end)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding: what is wrong, who is involved, and how to fix it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Where in the board file the value at fault is written; absent for
    /// a value from the command line (the message names the flag).
    pub location: Option<Location>,
    pub message: String,
    pub parties: Vec<Region>,
    pub fix: Option<String>,
}

impl Problem {
    pub fn error(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            location: None,
            message: message.into(),
            parties: Vec::new(),
            fix: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            location: None,
            message: message.into(),
            parties: Vec::new(),
            fix: None,
        }
    }

    /// Cite `location` (from `Board::locate`) before the message; `None`
    /// for a value from the command line.
    pub fn at(mut self, location: impl Into<Option<Location>>) -> Self {
        self.location = location.into();
        self
    }

    pub fn with_parties(mut self, parties: Vec<Region>) -> Self {
        self.parties = parties;
        self
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{}", self.message)?;
        for party in &self.parties {
            write!(f, "\n    {party}")?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

/// Find every pair of overlapping regions.
pub fn check_overlaps(regions: &[Region]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, a) in regions.iter().enumerate() {
        for b in regions.iter().skip(i.saturating_add(1)) {
            // The extended container holds others; `checks` keeps primary
            // partitions out of it.
            if a.kind == RegionKind::Extended || b.kind == RegionKind::Extended {
                continue;
            }
            let conflicts = a.conflicts(b);
            if let (Some(&(overlap_start, _)), Some(&(_, overlap_end))) =
                (conflicts.first(), conflicts.last())
            {
                let bytes = conflicts
                    .iter()
                    .fold(0, |sum, &(start, end)| add(sum, sub(end, start)));
                let outside_holes = if a.holes.is_empty() && b.holes.is_empty() {
                    ""
                } else {
                    " outside their holes"
                };
                problems.push(
                    Problem::error(format!(
                        "{} and {} overlap by {bytes} bytes{outside_holes} at {:#x}..{:#x}",
                        a.name, b.name, overlap_start, overlap_end
                    ))
                    .with_parties(vec![a.clone(), b.clone()])
                    .with_fix(suggest_overlap_fix(a, b)),
                );
            }
        }
    }
    problems
}

fn suggest_overlap_fix(a: &Region, b: &Region) -> String {
    // `a` starts first (regions are sorted). Move whichever is movable.
    let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
    let table = |kind| {
        matches!(
            kind,
            RegionKind::Mbr
                | RegionKind::GptHeader
                | RegionKind::GptEntries
                | RegionKind::Ebr
                | RegionKind::BackupGptEntries
                | RegionKind::BackupGptHeader
        )
    };
    if let Some((blob, structure)) = match (first.kind, second.kind) {
        (RegionKind::Blob, kind) if table(kind) => Some((first, second)),
        (kind, RegionKind::Blob) if table(kind) => Some((second, first)),
        _ => None,
    } {
        if blob.start <= structure.start && structure.kind == RegionKind::GptEntries {
            // Allwinner's boot0 sits where the entry array normally goes:
            // moving the array is the usual fix, a hole the other one.
            return format!(
                "move the GPT entry array clear of the blob: disk.gpt_entries_offset = \"{}\" \
                 (or above {:#x}); or, if the file holds nothing there, declare it a hole \
                 of the blob: holes = [{{ start = \"{}\", end = \"{}\" }}]; or move the blob",
                format_bytes(align_up(blob.end, 1 << 20)),
                blob.end,
                sub(structure.start, blob.start),
                sub(structure.end.min(blob.end), blob.start)
            );
        }
        if blob.start <= structure.start {
            return format!(
                "if the file holds nothing there, declare it a hole of the blob: \
                 holes = [{{ start = \"{}\", end = \"{}\" }}]; else move the blob",
                sub(structure.start, blob.start),
                sub(structure.end.min(blob.end), blob.start)
            );
        }
    }
    match (first.kind, second.kind) {
        (RegionKind::Blob, RegionKind::GptEntries) | (RegionKind::GptEntries, RegionKind::Blob) => {
            let blob = if first.kind == RegionKind::Blob {
                first
            } else {
                second
            };
            format!(
                "move the GPT entry array clear of the blob: disk.gpt_entries_offset = \"{}\" \
                 (or above {:#x}), or move the blob",
                format_bytes(align_up(blob.end, 1 << 20)),
                blob.end
            )
        }
        (_, RegionKind::Partition) => format!(
            "move {} to offset = \"{}\" or later, or shrink {} to end by {:#x}",
            second.name,
            format_bytes(align_up(first.end, 1 << 20)),
            first.name,
            second.start
        ),
        (RegionKind::Partition, RegionKind::BackupGptEntries | RegionKind::BackupGptHeader) => {
            format!(
                "shrink {} to end by {:#x} (the backup GPT occupies the end of the disk), \
                 or grow disk.size",
                first.name, second.start
            )
        }
        _ => format!("move {} to start at {:#x} or later", second.name, first.end),
    }
}

/// Render the whole map, marking regions that take part in a problem.
pub fn render_map(regions: &[Region], problems: &[Problem], sector_size: u64) -> String {
    let mut out = String::from("  disk map:\n");
    for region in regions {
        let involved = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .any(|p| p.parties.iter().any(|q| q == region));
        out.push_str(&format!(
            "  {} {:<34} {:>#14x} .. {:>#14x}  LBA {:>10} .. {:>10}  {:>8}\n",
            if involved { "!!" } else { "  " },
            region.name,
            region.start,
            region.end,
            div(region.start, sector_size),
            region.end.div_ceil(sector_size).saturating_sub(1),
            format_bytes(region.end.saturating_sub(region.start)),
        ));
    }
    out
}

pub fn align_up(value: u64, align: u64) -> u64 {
    if align <= 1 {
        value
    } else {
        mul(value.div_ceil(align), align)
    }
}

pub fn align_down(value: u64, align: u64) -> u64 {
    if align <= 1 {
        value
    } else {
        mul(div(value, align), align)
    }
}

#[cfg(test)]
mod tests {
    use super::{suggest_overlap_fix, Region, RegionKind};

    #[test]
    fn a_blob_over_a_table_is_offered_a_hole_and_over_the_entries_a_move() {
        let blob = Region::new("boot0", RegionKind::Blob, 0xff000, 0x1fd000);
        let entries = Region::new("entries", RegionKind::GptEntries, 0x100000, 0x104000);
        let fix = suggest_overlap_fix(&blob, &entries);
        assert!(
            fix.starts_with(
                "move the GPT entry array clear of the blob: disk.gpt_entries_offset = \"2M\""
            ),
            "{fix}"
        );
        assert!(
            fix.contains("holes = [{ start = \"4096\", end = \"20480\" }]"),
            "{fix}"
        );
        let blob = Region::new("spl", RegionKind::Blob, 0, 64 << 10);
        let mbr = Region::new("MBR", RegionKind::Mbr, 440, 512);
        let fix = suggest_overlap_fix(&blob, &mbr);
        assert!(
            fix.starts_with("if the file holds nothing there, declare it a hole of the blob: holes = [{ start = \"440\", end = \"512\" }]"),
            "{fix}"
        );
        assert!(!fix.contains("gpt_entries_offset"), "{fix}");
    }

    #[test]
    fn holes_of_either_party_clear_the_overlap() {
        let mut blob = Region::new("blob", RegionKind::Blob, 0, 1 << 20);
        let mbr = Region::new("MBR", RegionKind::Mbr, 440, 512);
        let header = Region::new("header", RegionKind::GptHeader, 512, 1024);
        assert_eq!(blob.conflicts(&mbr), [(440, 512)]);
        blob.holes = vec![(440, 512)];
        assert!(blob.conflicts(&mbr).is_empty());
        assert!(mbr.conflicts(&blob).is_empty());
        assert_eq!(blob.conflicts(&header), [(512, 1024)]);
        // A hole covering part of the overlap leaves the rest.
        blob.holes = vec![(440, 600)];
        assert_eq!(blob.conflicts(&header), [(600, 1024)]);
        // Holes on both sides and disjoint regions.
        let mut other = Region::new("other", RegionKind::Blob, 900, 2 << 20);
        other.holes = vec![(900, 1 << 20)];
        assert!(blob.conflicts(&other).is_empty());
        let far = Region::new("far", RegionKind::Partition, 4 << 20, 8 << 20);
        assert!(blob.conflicts(&far).is_empty());
    }
}
