#![deny(clippy::arithmetic_side_effects)]
//! A disk offset → the plan's region that holds it: the MBR, a GPT header
//! or entry array, an EBR, partition N, a blob, or nothing planned.
//!
//! The regions are `Layout::regions()`, the same list the planner checked
//! for overlaps. Regions may nest (a blob with holes, a table structure in
//! such a hole, logical partitions inside the extended partition): the
//! innermost wins, the extended partition only when nothing inside it holds
//! the offset. Pure.

use crate::plan::{Region, RegionKind};

/// The region holding `offset` (see the module doc); None when no region
/// does (e.g. the MBR's boot code area of a disk without a boot blob, or
/// free space between partitions).
pub fn locate(regions: &[Region], offset: u64) -> Option<&Region> {
    let holds = |r: &&Region| {
        r.start <= offset
            && offset < r.end
            && !r.holes.iter().any(|&(s, e)| s <= offset && offset < e)
    };
    let size = |r: &&Region| r.end.saturating_sub(r.start);
    regions
        .iter()
        .filter(holds)
        .filter(|r| r.kind != RegionKind::Extended)
        .min_by_key(size)
        .or_else(|| regions.iter().filter(holds).min_by_key(size))
}

/// Differing byte runs in one region (None: in no region).
pub type Group<'r> = (Option<&'r Region>, Vec<(u64, u64)>);

/// The byte runs `runs` (ascending) cut where regions start or end, and
/// grouped by the region holding them (None: no region), groups in the
/// order of their first run.
pub fn group_by_region<'r>(regions: &'r [Region], runs: &[(u64, u64)]) -> Vec<Group<'r>> {
    let mut bounds: Vec<u64> = regions
        .iter()
        .flat_map(|r| {
            [r.start, r.end]
                .into_iter()
                .chain(r.holes.iter().flat_map(|&(s, e)| [s, e]))
        })
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut groups: Vec<Group<'r>> = Vec::new();
    for &(start, end) in runs {
        let mut at = start;
        while at < end {
            let next = bounds.iter().copied().find(|&b| b > at).unwrap_or(end);
            let piece = (at, next.min(end));
            let region = locate(regions, at);
            let same = |r: &Option<&Region>| match (r, region) {
                (Some(x), Some(y)) => std::ptr::eq(*x, y),
                (None, None) => true,
                _ => false,
            };
            match groups.iter_mut().find(|(r, _)| same(r)) {
                Some((_, pieces)) => match pieces.last_mut() {
                    Some(last) if last.1 == piece.0 => last.1 = piece.1,
                    _ => pieces.push(piece),
                },
                None => groups.push((region, vec![piece])),
            }
            at = piece.1;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::{group_by_region, locate};
    use crate::plan::{Region, RegionKind};

    const MIB: u64 = 1 << 20;

    /// A GPT disk with a boot blob from 0 to 1 MiB whose holes leave room
    /// for the MBR and the primary GPT, two partitions with a gap, and an
    /// extended container around the second.
    fn regions() -> Vec<Region> {
        let mut blob = Region::new("blob 'spl'", RegionKind::Blob, 0, MIB);
        blob.holes = vec![(440, 17408)];
        vec![
            blob,
            Region::new("MBR", RegionKind::Mbr, 440, 512),
            Region::new("primary GPT header", RegionKind::GptHeader, 512, 1024),
            Region::new("primary GPT entries", RegionKind::GptEntries, 1024, 17408),
            Region::new("partition 1 'boot'", RegionKind::Partition, MIB, 9 * MIB),
            Region::new(
                "extended partition 2",
                RegionKind::Extended,
                10 * MIB,
                40 * MIB,
            ),
            Region::new(
                "partition 5 'rootfs'",
                RegionKind::Partition,
                12 * MIB,
                40 * MIB,
            ),
        ]
    }

    fn name(regions: &[Region], offset: u64) -> Option<&str> {
        locate(regions, offset).map(|r| r.name.as_str())
    }

    #[test]
    fn an_offset_maps_to_the_innermost_region() {
        let r = regions();
        assert_eq!(name(&r, 0), Some("blob 'spl'"));
        assert_eq!(name(&r, 439), Some("blob 'spl'"));
        assert_eq!(name(&r, 446), Some("MBR"));
        assert_eq!(name(&r, 600), Some("primary GPT header"));
        assert_eq!(name(&r, 17407), Some("primary GPT entries"));
        assert_eq!(name(&r, 17408), Some("blob 'spl'"));
        assert_eq!(name(&r, MIB), Some("partition 1 'boot'"));
        assert_eq!(name(&r, 9 * MIB), None);
        assert_eq!(name(&r, 11 * MIB), Some("extended partition 2"));
        assert_eq!(name(&r, 12 * MIB), Some("partition 5 'rootfs'"));
        assert_eq!(name(&r, 40 * MIB), None);
    }

    #[test]
    fn runs_are_cut_at_region_bounds_and_grouped() {
        let r = regions();
        let runs = [
            (0, 4096),
            (MIB - 4096, MIB + 8192),
            (8 * MIB, 13 * MIB),
            (20 * MIB, 20 * MIB + 4096),
        ];
        type Named<'a> = (Option<&'a str>, Vec<(u64, u64)>);
        let groups: Vec<Named<'_>> = group_by_region(&r, &runs)
            .into_iter()
            .map(|(region, pieces)| (region.map(|x| x.name.as_str()), pieces))
            .collect();
        assert_eq!(
            groups,
            vec![
                (Some("blob 'spl'"), vec![(0, 440), (MIB - 4096, MIB)]),
                (Some("MBR"), vec![(440, 512)]),
                (Some("primary GPT header"), vec![(512, 1024)]),
                (Some("primary GPT entries"), vec![(1024, 4096)]),
                (
                    Some("partition 1 'boot'"),
                    vec![(MIB, MIB + 8192), (8 * MIB, 9 * MIB)]
                ),
                (None, vec![(9 * MIB, 10 * MIB)]),
                (Some("extended partition 2"), vec![(10 * MIB, 12 * MIB)]),
                (
                    Some("partition 5 'rootfs'"),
                    vec![(12 * MIB, 13 * MIB), (20 * MIB, 20 * MIB + 4096)]
                ),
            ]
        );
    }
}
