//! What a dynamically linked ELF file asks of the dynamic loader: its
//! program interpreter (`PT_INTERP`) and the libraries it needs
//! (`DT_NEEDED`), in file order.
//!
//! Owns: the program header walk over a whole file in memory, the
//! `PT_DYNAMIC` array, and the mapping of the string table's address to a
//! file offset through the `PT_LOAD` segments.
//!
//! Must not: open paths or trust the bytes: every offset, size and count
//! is checked against the buffer (checked arithmetic, no panics). Caller:
//! `host::native_tools`, which exposes exactly these files of the host in
//! a sandbox.

use super::{ElfError, Endian, RawElfHeader, PN_XNUM, PT_INTERP};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;

/// The loader-facing part of an ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dynamic {
    /// `PT_INTERP`: the loader the kernel starts (`/lib64/ld-linux-x86-64.so.2`).
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries: sonames (`libc.so.6`), in order.
    pub needed: Vec<String>,
}

/// One program header, widened to 64 bits.
#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Reads [`Dynamic`] from a whole ELF file. A static file gives no
/// interpreter and no libraries.
pub fn read_dynamic(file: &[u8]) -> Result<Dynamic, ElfError> {
    let raw = RawElfHeader::parse(file)?;
    let e = Endian {
        little: raw.little_endian,
    };
    let segments = segments(file, &raw, e)?;
    let mut out = Dynamic::default();
    if let Some(interp) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let bytes = slice(file, interp.offset, interp.filesz).ok_or(bad("PT_INTERP"))?;
        out.interpreter = Some(c_string(bytes).ok_or(bad("PT_INTERP"))?);
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(out);
    };
    let table = slice(file, dynamic.offset, dynamic.filesz).ok_or(bad("PT_DYNAMIC"))?;
    let entry = if raw.class64 { 16 } else { 8 };
    let mut needed = Vec::new();
    let (mut strtab, mut strsz) = (None, None);
    for chunk in table.chunks_exact(entry) {
        let (tag, value) = if raw.class64 {
            (e.u64(chunk, 0), e.u64(chunk, 8))
        } else {
            (u64::from(e.u32(chunk, 0)), u64::from(e.u32(chunk, 4)))
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(value),
            DT_STRTAB => strtab = Some(value),
            DT_STRSZ => strsz = Some(value),
            _ => {}
        }
    }
    if needed.is_empty() {
        return Ok(out);
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Err(bad("DT_NEEDED without DT_STRTAB and DT_STRSZ"));
    };
    let start = file_offset(&segments, strtab).ok_or(bad("DT_STRTAB"))?;
    let strings = slice(file, start, strsz).ok_or(bad("DT_STRTAB"))?;
    for name in needed {
        let at = usize::try_from(name).ok().filter(|&at| at < strings.len());
        let name = at
            .and_then(|at| c_string(&strings[at..]))
            .ok_or(bad("DT_NEEDED"))?;
        out.needed.push(name);
    }
    Ok(out)
}

fn bad(what: &'static str) -> ElfError {
    ElfError::BadDynamic(what)
}

/// The program header table, every entry inside the file.
fn segments(file: &[u8], raw: &RawElfHeader, e: Endian) -> Result<Vec<Segment>, ElfError> {
    if raw.e_phnum == PN_XNUM {
        return Err(ElfError::ExtendedPhnum);
    }
    let minimum: u16 = if raw.class64 { 56 } else { 32 };
    if raw.e_phnum > 0 && raw.e_phentsize < minimum {
        return Err(ElfError::BadPhentsize {
            size: raw.e_phentsize,
            offset: if raw.class64 { 54 } else { 42 },
            minimum,
        });
    }
    let len = u64::from(raw.e_phentsize) * u64::from(raw.e_phnum);
    let table = slice(file, raw.e_phoff, len).ok_or(bad("the program header table"))?;
    if raw.e_phnum == 0 {
        return Ok(Vec::new());
    }
    Ok(table
        .chunks_exact(usize::from(raw.e_phentsize))
        .map(|ph| {
            if raw.class64 {
                Segment {
                    kind: e.u32(ph, 0),
                    offset: e.u64(ph, 8),
                    vaddr: e.u64(ph, 16),
                    filesz: e.u64(ph, 32),
                }
            } else {
                Segment {
                    kind: e.u32(ph, 0),
                    offset: u64::from(e.u32(ph, 4)),
                    vaddr: u64::from(e.u32(ph, 8)),
                    filesz: u64::from(e.u32(ph, 16)),
                }
            }
        })
        .collect())
}

/// Where the address `vaddr` lies in the file, through the `PT_LOAD`
/// segment that maps it from the file.
fn file_offset(segments: &[Segment], vaddr: u64) -> Option<u64> {
    segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
        .and_then(|s| s.offset.checked_add(vaddr - s.vaddr))
}

/// `len` bytes at `offset`, if the file holds them.
fn slice(file: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    file.get(start..end)
}

/// The NUL-terminated UTF-8 string at the start of `bytes`.
fn c_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0)?;
    String::from_utf8(bytes[..end].to_vec()).ok()
}
