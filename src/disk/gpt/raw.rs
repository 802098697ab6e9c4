//! On-disk GPT structures, byte for byte (UEFI 2.10 §5.3.2 header, §5.3.3
//! partition entry). Everything here is little-endian; GUIDs use the mixed
//! "EFI" byte order that `Uuid::to_bytes_le` produces.
//!
//! Owns: encoding and decoding of the 92-byte header and the 128-byte entry,
//! including the header CRC32. Does no I/O and knows nothing about layout
//! rules; `gpt.rs` converts between these and the domain structs.

use uuid::Uuid;

/// "EFI PART".
pub(super) const SIGNATURE: [u8; 8] = *b"EFI PART";
/// Revision 1.0, the only one defined.
pub(super) const REVISION: u32 = 0x0001_0000;
/// Size of the header fields we write (the rest of the sector is zero).
pub(super) const HEADER_SIZE: u32 = 92;
/// Size of one partition entry; the only size we write or accept.
pub(super) const ENTRY_SIZE: u32 = 128;
/// UTF-16 code units available for a partition name.
pub(super) const NAME_UNITS: usize = 36;

/// Why a header sector could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderDefect {
    Signature,
    Crc { stored: u32, computed: u32 },
    Field { field: &'static str, value: u64 },
}

/// The GPT header as stored (offsets in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawHeader {
    pub(super) revision: u32,         // 8
    pub(super) header_size: u32,      // 12
    pub(super) my_lba: u64,           // 24
    pub(super) alternate_lba: u64,    // 32
    pub(super) first_usable_lba: u64, // 40
    pub(super) last_usable_lba: u64,  // 48
    pub(super) disk_guid: Uuid,       // 56, mixed endian
    pub(super) entries_lba: u64,      // 72
    pub(super) entry_count: u32,      // 80
    pub(super) entry_size: u32,       // 84
    pub(super) entries_crc32: u32,    // 88
}

impl RawHeader {
    /// Encodes the header and fills in its CRC32 (offset 16), computed over
    /// the first `HEADER_SIZE` bytes with the CRC field zero.
    pub(super) fn encode(&self) -> [u8; HEADER_SIZE as usize] {
        let mut b = [0u8; HEADER_SIZE as usize];
        b[0..8].copy_from_slice(&SIGNATURE);
        b[8..12].copy_from_slice(&self.revision.to_le_bytes());
        b[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        // 16..20 CRC, 20..24 reserved: zero for now.
        b[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        b[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        b[56..72].copy_from_slice(&self.disk_guid.to_bytes_le());
        b[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        b[80..84].copy_from_slice(&self.entry_count.to_le_bytes());
        b[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        b[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a whole header sector: checks the signature, the header size
    /// (92..=sector size) and the header CRC32.
    pub(super) fn decode(sector: &[u8]) -> Result<Self, HeaderDefect> {
        if sector[0..8] != SIGNATURE {
            return Err(HeaderDefect::Signature);
        }
        let header_size = le_u32(sector, 12);
        if header_size < HEADER_SIZE || header_size as usize > sector.len() {
            return Err(HeaderDefect::Field {
                field: "header size",
                value: header_size.into(),
            });
        }
        let stored = le_u32(sector, 16);
        let mut covered = sector[..header_size as usize].to_vec();
        covered[16..20].fill(0);
        let computed = crc32fast::hash(&covered);
        if stored != computed {
            return Err(HeaderDefect::Crc { stored, computed });
        }
        let guid = bytes_at(sector, 56);
        Ok(RawHeader {
            revision: le_u32(sector, 8),
            header_size,
            my_lba: le_u64(sector, 24),
            alternate_lba: le_u64(sector, 32),
            first_usable_lba: le_u64(sector, 40),
            last_usable_lba: le_u64(sector, 48),
            disk_guid: Uuid::from_bytes_le(guid),
            entries_lba: le_u64(sector, 72),
            entry_count: le_u32(sector, 80),
            entry_size: le_u32(sector, 84),
            entries_crc32: le_u32(sector, 88),
        })
    }
}

/// One partition entry as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawEntry {
    pub(super) type_guid: Uuid,         // 0
    pub(super) part_guid: Uuid,         // 16
    pub(super) first_lba: u64,          // 32
    pub(super) last_lba: u64,           // 40
    pub(super) attributes: u64,         // 48
    pub(super) name: [u16; NAME_UNITS], // 56, UTF-16LE, NUL padded
}

impl RawEntry {
    pub(super) fn encode(&self) -> [u8; ENTRY_SIZE as usize] {
        let mut b = [0u8; ENTRY_SIZE as usize];
        b[0..16].copy_from_slice(&self.type_guid.to_bytes_le());
        b[16..32].copy_from_slice(&self.part_guid.to_bytes_le());
        b[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (slot, unit) in b[56..].chunks_exact_mut(2).zip(self.name) {
            slot.copy_from_slice(&unit.to_le_bytes());
        }
        b
    }

    pub(super) fn decode(b: &[u8]) -> Self {
        let guid = |at: usize| Uuid::from_bytes_le(bytes_at(b, at));
        let mut name = [0u16; NAME_UNITS];
        for (unit, pair) in name.iter_mut().zip(b[56..].chunks_exact(2)) {
            *unit = u16::from_le_bytes([pair[0], pair[1]]);
        }
        RawEntry {
            type_guid: guid(0),
            part_guid: guid(16),
            first_lba: le_u64(b, 32),
            last_lba: le_u64(b, 40),
            attributes: le_u64(b, 48),
            name,
        }
    }
}

/// The `N` bytes at `at` (the structures are fixed size, so a short
/// slice is a bug and panics on the slice bound, never wraps).
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut x = [0u8; N];
    x.copy_from_slice(&b[at..][..N]);
    x
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes_at(b, at))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes_at(b, at))
}
