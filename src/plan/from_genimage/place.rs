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
    /// `align`.
    pub size: u64,
    pub align: u64,
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
    /// 1-based table index of the first logical partition (0: none).
    pub extended: usize,
}

/// `value` rounded up to a multiple of `align` (align ≥ 1), saturating.
pub fn round_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align.max(1)).saturating_mul(align.max(1))
}

/// genimage's placement: each partition without an offset starts at the
/// first multiple of its alignment after the previous one; a logical one
/// first leaves one hdimage alignment for its EBR.
pub fn place(frame: Frame, parts: &[PartIn]) -> Vec<Placed> {
    let mut now = frame.first;
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let logical = frame.extended > 0 && i.saturating_add(1) >= frame.extended;
        if logical {
            now = round_up(now, frame.align).saturating_add(frame.align);
        }
        let offset = part.offset.unwrap_or_else(|| round_up(now, part.align));
        now = offset.saturating_add(part.size);
        out.push(Placed {
            offset,
            size: part.size,
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
        }
    }

    #[test]
    fn mbr_default_alignment_packs_partitions_after_the_mbr() {
        // genimage 16: a 3000-byte and a 1 MiB input, align 512, no size.
        let frame = Frame {
            first: 512,
            align: 512,
            extended: 0,
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
        };
        let placed = place(
            frame,
            &[part(Some(1 << 20), 4096, 4096), part(None, 4096, 4096)],
        );
        assert_eq!(placed[1].offset, (1 << 20) + 4096);
    }
}
