//! The one error type of the GPT module. Every variant names what it is
//! about: a partition by number (1-based, as Linux counts) and name, a
//! table structure by name, and the LBAs involved.

/// Everything that can go wrong describing, writing or reading a GPT.
#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("sector size {0} is not supported (use 512 or 4096)")]
    UnsupportedSectorSize(u64),
    #[error("entry count {0} is not supported: the array must hold 1..=33554431 entries")]
    BadEntryCount(u32),
    #[error("disk of {disk_sectors} sectors is too small for a GPT with {array_sectors}-sector entry arrays")]
    DiskTooSmall {
        disk_sectors: u64,
        array_sectors: u64,
    },
    #[error("primary GPT entries at LBA {first}..={last} must lie after the primary header (LBA 1) and before the first usable LBA {first_usable}")]
    PrimaryArrayMisplaced {
        first: u64,
        last: u64,
        first_usable: u64,
    },
    #[error("usable range LBA {first_usable}..={last_usable} is empty or reaches the backup GPT entries at LBA {backup_entries_lba}")]
    BadUsableRange {
        first_usable: u64,
        last_usable: u64,
        backup_entries_lba: u64,
    },
    #[error("{count} partitions do not fit in a table of {entry_count} entries")]
    TooManyPartitions { count: usize, entry_count: u32 },
    #[error("partition {number} name {name:?} is {units} UTF-16 code units long; GPT allows 36")]
    NameTooLong {
        number: usize,
        name: String,
        units: usize,
    },
    #[error("partition {number} name {name:?} contains a NUL character")]
    NameContainsNul { number: usize, name: String },
    #[error("partition {number} ({name:?}) has the nil type GUID, which marks an unused entry")]
    NilTypeGuid { number: usize, name: String },
    #[error(
        "partition {number} ({name:?}) ends at LBA {last_lba}, before its start LBA {first_lba}"
    )]
    EmptyPartition {
        number: usize,
        name: String,
        first_lba: u64,
        last_lba: u64,
    },
    #[error("partition {number} ({name:?}, LBA {first_lba}..={last_lba}) overlaps the {region} (LBA {region_first}..={region_last})")]
    OverlapsTable {
        number: usize,
        name: String,
        first_lba: u64,
        last_lba: u64,
        region: &'static str,
        region_first: u64,
        region_last: u64,
    },
    #[error("partition {number} ({name:?}, LBA {first_lba}..={last_lba}) lies outside the usable range LBA {first_usable}..={last_usable}")]
    OutsideUsable {
        number: usize,
        name: String,
        first_lba: u64,
        last_lba: u64,
        first_usable: u64,
        last_usable: u64,
    },
    #[error("partition {a} ({a_name:?}, LBA {a_first}..={a_last}) overlaps partition {b} ({b_name:?}, LBA {b_first}..={b_last})")]
    PartitionsOverlap {
        a: usize,
        a_name: String,
        a_first: u64,
        a_last: u64,
        b: usize,
        b_name: String,
        b_first: u64,
        b_last: u64,
    },
    #[error("{action} at LBA {lba}")]
    Io {
        action: &'static str,
        lba: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("no GPT signature in the {which} header at LBA {lba}")]
    BadSignature { which: &'static str, lba: u64 },
    #[error("{which} GPT header at LBA {lba}: CRC32 is {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        which: &'static str,
        lba: u64,
        stored: u32,
        computed: u32,
    },
    #[error("{which} GPT header at LBA {lba}: unsupported {field} {value}")]
    UnsupportedHeader {
        which: &'static str,
        lba: u64,
        field: &'static str,
        value: u64,
    },
    #[error(
        "{which} GPT entries at LBA {lba}: CRC32 is {stored:#010x}, computed {computed:#010x}"
    )]
    EntriesCrc {
        which: &'static str,
        lba: u64,
        stored: u32,
        computed: u32,
    },
    #[error("primary and backup GPT disagree on {field}: primary {primary}, backup {backup}")]
    BackupMismatch {
        field: &'static str,
        primary: String,
        backup: String,
    },
    #[error("backup GPT header is at LBA {backup_lba} but the disk has {disk_sectors} sectors (it must be the last)")]
    BackupNotLast { backup_lba: u64, disk_sectors: u64 },
    #[error("GPT entry {number} is unused but a later entry is used; gaps are not supported")]
    EntryGap { number: usize },
    #[error("GPT entry {number} has a name that is not valid UTF-16")]
    InvalidName { number: usize },
    #[error("{what} at LBA {lba} is past the 64-bit byte range with {sector_size}-byte sectors")]
    AddressOverflow {
        what: &'static str,
        lba: u64,
        sector_size: u64,
    },
    #[error("{what} of {bytes} bytes does not fit in memory")]
    TooLarge { what: &'static str, bytes: u64 },
    #[error("GPT entry {number} ({name:?}) spans LBA {first_lba}..={last_lba}, which is empty or past the last LBA of a {disk_sectors}-sector disk")]
    EntryOutOfRange {
        number: usize,
        name: String,
        first_lba: u64,
        last_lba: u64,
        disk_sectors: u64,
    },
}
