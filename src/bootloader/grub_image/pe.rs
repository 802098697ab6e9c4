//! The PE/COFF headers a GRUB image needs read: DOS stub → `PE\0\0` →
//! COFF header (machine, section count) → optional header magic (PE32 or
//! PE32+, which tells the module-info width) → the section named `mods`.
//! Offsets from the PE/COFF specification ("File Headers", "Section Table").

use super::{le_u16, le_u32, slice, GrubImageError};

/// Where the `mods` section's bytes are in the file.
pub(super) struct Section {
    pub offset: u64,
    pub size: u64,
}

pub(super) struct Pe {
    pub machine: u16,
    /// 8 for PE32+ (64-bit targets), 4 for PE32.
    pub pointer_size: u64,
    pub mods: Option<Section>,
}

const SECTION_HEADER_LEN: u64 = 40;
const PE32_MAGIC: u16 = 0x10b;
const PE32_PLUS_MAGIC: u16 = 0x20b;

pub(super) fn read_pe(b: &[u8]) -> Result<Pe, GrubImageError> {
    let not_pe = GrubImageError::NotPe;
    if slice(b, 0, 2) != Some(b"MZ".as_slice()) {
        return Err(not_pe("no MZ signature at offset 0"));
    }
    let pe = u64::from(le_u32(b, 0x3c).ok_or(not_pe("file ends inside the DOS header"))?);
    if slice(b, pe, 4) != Some(b"PE\0\0".as_slice()) {
        return Err(not_pe("no PE signature where the DOS header points"));
    }
    let coff = pe + 4;
    let short = not_pe("file ends inside the COFF header");
    let machine = le_u16(b, coff).ok_or(short.clone())?;
    let count = le_u16(b, coff + 2).ok_or(short.clone())?;
    let optional_len = u64::from(le_u16(b, coff + 16).ok_or(short)?);
    let optional = coff + 20;
    let pointer_size = match le_u16(b, optional) {
        Some(PE32_PLUS_MAGIC) => 8,
        Some(PE32_MAGIC) => 4,
        _ => return Err(not_pe("no PE32 or PE32+ optional header")),
    };
    let table = optional + optional_len;
    let headers = slice(b, table, u64::from(count) * SECTION_HEADER_LEN).ok_or(
        GrubImageError::SectionTable {
            offset: table,
            count,
            len: b.len(),
        },
    )?;
    let mods = headers
        .chunks_exact(SECTION_HEADER_LEN as usize)
        .find(|h| &h[..8] == b"mods\0\0\0\0")
        .map(|h| Section {
            // Both reads are inside the 40-byte header.
            size: u64::from(le_u32(h, 16).unwrap_or(0)),
            offset: u64::from(le_u32(h, 20).unwrap_or(0)),
        });
    Ok(Pe {
        machine,
        pointer_size,
        mods,
    })
}
