//! Where genimage 16 puts an hdimage's partitions, how big it makes the
//! disk and how long it writes the file: pure arithmetic over sizes the
//! caller has already found. Measured against genimage 16 (see the parent
//! module's doc for the list).

/// Bytes of the GPT entry array genimage writes (128 entries of 128 bytes).
pub const GPT_ARRAY: u64 = 128 * 128;
/// The backup GPT genimage reserves at the end: array and header.
pub const GPT_BACKUP: u64 = GPT_ARRAY + 512;
/// genimage rounds a disk whose size it derives (GPT) up to this.
pub const GPT_DISK_ROUND: u64 = 4096;

/// What the placement needs of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartIn {
    /// `offset`, when written and not 0 (genimage reads 0 as "not given").
    pub offset: Option<u64>,
    /// The partition's size: `size`, else its image's size rounded up to
    /// `align` (a partition without a table entry: not rounded). Ignored
    /// with `rest`.
    pub size: u64,
    pub align: u64,
    /// It has a table entry (`in-partition-table`, default true; every
    /// partition of a table-less image counts as one here: genimage places
    /// them all one after the other).
    pub in_table: bool,
    /// `forced-primary`: a primary entry even after the extended one.
    pub forced_primary: bool,
    /// `autoresize`: the rest of the disk (see [`Frame::rest_end`]).
    pub rest: bool,
}

/// One placed partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub offset: u64,
    pub size: u64,
    /// Logical (inside the MBR extended partition): its EBR is one
    /// hdimage alignment before it.
    pub logical: bool,
}

/// How the disk starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Where the first partition may start: 512 after an MBR, the end of
    /// the GPT entry array, 0 without a table.
    pub first: u64,
    /// The hdimage `align` (EBR gaps use it).
    pub align: u64,
    /// 1-based index, among the partitions with a table entry, of the
    /// first logical partition (0: none).
    pub extended: usize,
    /// Where an `autoresize` partition ends at most: the disk's `size`,
    /// less the backup GPT's 33 sectors with a GPT (reserved even with
    /// `gpt-no-backup`).
    pub rest_end: u64,
}

/// `value` rounded up to a multiple of `align` (align ≥ 1), saturating.
pub fn round_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align.max(1)).saturating_mul(align.max(1))
}

/// `value` rounded down to a multiple of `align` (align ≥ 1).
pub fn round_down(value: u64, align: u64) -> u64 {
    value
        .checked_rem(align.max(1))
        .map_or(value, |r| value.saturating_sub(r))
}

/// genimage's placement: each table partition without an offset starts at
/// the first multiple of its alignment after the end of everything placed
/// so far (the furthest end, not the previous one's); a logical one first
/// leaves one hdimage alignment for its EBR. A partition without a table
/// entry is where its `offset` says, 0 when absent (a boot loader), and
/// its end counts for the next one too.
pub fn place(frame: Frame, parts: &[PartIn]) -> Vec<Placed> {
    let mut now = frame.first;
    let mut out = Vec::with_capacity(parts.len());
    let mut table_index = 0usize;
    for part in parts {
        let mut logical = false;
        if part.in_table {
            table_index = table_index.saturating_add(1);
            logical = frame.extended > 0 && table_index >= frame.extended && !part.forced_primary;
        }
        if logical {
            now = round_up(now, frame.align).saturating_add(frame.align);
        }
        let offset = match part.offset {
            Some(offset) => offset,
            None if part.in_table => round_up(now, part.align),
            None => 0,
        };
        let size = if part.rest {
            round_down(frame.rest_end.saturating_sub(offset), part.align)
        } else {
            part.size
        };
        now = now.max(offset.saturating_add(size));
        out.push(Placed {
            offset,
            size,
            logical,
        });
    }
    out
}

/// The end of the last byte any partition covers.
pub fn partitions_end(placed: &[Placed]) -> u64 {
    placed
        .iter()
        .map(|p| p.offset.saturating_add(p.size))
        .max()
        .unwrap_or(0)
}

/// The disk size genimage derives without `size`: the partitions' end,
/// and with a GPT the backup GPT after it, rounded up to 4 KiB.
pub fn derived_disk_size(placed: &[Placed], gpt: bool) -> u64 {
    let end = partitions_end(placed);
    if gpt {
        round_up(end.saturating_add(GPT_BACKUP), GPT_DISK_ROUND)
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::{derived_disk_size, place, Frame, PartIn};

    fn part(offset: Option<u64>, size: u64, align: u64) -> PartIn {
        PartIn {
            offset,
            size,
            align,
            in_table: true,
            forced_primary: false,
            rest: false,
        }
    }

    #[test]
    fn mbr_default_alignment_packs_partitions_after_the_mbr() {
        // genimage 16: a 3000-byte and a 1 MiB input, align 512, no size.
        let frame = Frame {
            first: 512,
            align: 512,
            extended: 0,
            rest_end: 0,
        };
        let placed = place(frame, &[part(None, 3072, 512), part(None, 1 << 20, 512)]);
        assert_eq!(
            placed.iter().map(|p| p.offset / 512).collect::<Vec<_>>(),
            [1, 7]
        );
        assert_eq!(derived_disk_size(&placed, false), (7 + 2048) * 512);
    }

    #[test]
    fn gpt_disk_size_holds_the_backup_rounded_to_4k() {
        // genimage 16: partitions end at LBA 2082 → a 2120-sector disk.
        let frame = Frame {
            first: 1024 + 16384,
            align: 512,
            extended: 0,
            rest_end: 0,
        };
        let placed = place(frame, &[part(None, 1 << 20, 512)]);
        assert_eq!(placed[0].offset, 34 * 512);
        assert_eq!(derived_disk_size(&placed, true), 2120 * 512);
    }

    #[test]
    fn logical_partitions_leave_room_for_their_ebr() {
        let m = 1u64 << 20;
        let frame = Frame {
            first: 512,
            align: m,
            extended: 4,
            rest_end: 0,
        };
        let parts: Vec<PartIn> = (0..5).map(|_| part(None, 4 * m, m)).collect();
        let placed = place(frame, &parts);
        let starts: Vec<u64> = placed.iter().map(|p| p.offset / 512).collect();
        // As genimage 16 writes it (tests/cli/mbrext.rs measured the same).
        assert_eq!(starts, [2048, 10240, 18432, 28672, 38912]);
        assert!(!placed[2].logical && placed[3].logical);
    }

    #[test]
    fn an_explicit_offset_is_kept_and_the_next_follows_it() {
        let frame = Frame {
            first: 512,
            align: 4096,
            extended: 0,
            rest_end: 0,
        };
        let placed = place(
            frame,
            &[part(Some(1 << 20), 4096, 4096), part(None, 4096, 4096)],
        );
        assert_eq!(placed[1].offset, (1 << 20) + 4096);
    }
}

#[cfg(test)]
mod genimage16 {
    //! Placements measured with genimage 16 (see tests/cli/genimage.rs).
    use super::{place, Frame, PartIn};

    const M: u64 = 1 << 20;

    fn frame(extended: usize, rest_end: u64) -> Frame {
        Frame {
            first: 512,
            align: M,
            extended,
            rest_end,
        }
    }

    fn part(offset: Option<u64>, size: u64, align: u64, in_table: bool) -> PartIn {
        PartIn {
            offset,
            size,
            align,
            in_table,
            forced_primary: false,
            rest: false,
        }
    }

    #[test]
    fn the_next_partition_follows_the_furthest_end() {
        // 8M, then 2M, then automatic: after the one at 8M.
        let placed = place(
            frame(0, 0),
            &[
                part(Some(8 * M), M, M, true),
                part(Some(2 * M), M, M, true),
                part(None, M, M, true),
            ],
        );
        assert_eq!(placed[2].offset, 9 * M);
    }

    #[test]
    fn a_partition_without_table_entry_sits_at_its_offset_or_0() {
        // A 3000-byte boot loader without offset, then the table ones.
        let placed = place(
            Frame {
                align: 512,
                ..frame(0, 0)
            },
            &[part(None, 3000, 1, false), part(None, M, 512, true)],
        );
        assert_eq!((placed[0].offset, placed[1].offset), (0, 3072));
    }

    #[test]
    fn logical_numbering_counts_table_entries_only() {
        let mut parts = vec![part(Some(40 * M), 4096, 1, false)];
        parts.extend((0..5).map(|_| part(None, M, M, true)));
        let placed = place(frame(4, 0), &parts);
        let logical: Vec<bool> = placed.iter().map(|p| p.logical).collect();
        assert_eq!(logical, [false, false, false, false, true, true]);
    }

    #[test]
    fn a_logical_partition_with_its_own_align_keeps_the_ebr_one_hdimage_align_before() {
        // genimage 16: p3 ends at 4M; p5 (align 4M) at 8M, p6 at 16M.
        let mut parts: Vec<PartIn> = (0..3).map(|_| part(None, M, M, true)).collect();
        parts.push(part(None, 4 * M, 4 * M, true));
        parts.push(part(None, 4 * M, 4 * M, true));
        let placed = place(frame(4, 0), &parts);
        assert_eq!((placed[3].offset, placed[4].offset), (8 * M, 16 * M));
    }

    #[test]
    fn autoresize_takes_the_rest_rounded_down_to_its_align() {
        let mut rest = part(None, 0, M, true);
        rest.rest = true;
        let placed = place(frame(0, 64 * M - 33 * 512), &[part(None, M, M, true), rest]);
        assert_eq!((placed[1].offset, placed[1].size), (2 * M, 61 * M));
    }
}
