//! The module list inside the `mods` section, and the `.modname` of an ELF
//! module (its section headers, read with every offset checked).

use super::{le_u32, le_u64, slice, GrubImageError, MAX_MODULES, MODULE_HEADER_LEN};

/// One module: where its header is (file offset), its type, its data.
pub(super) struct Module<'a> {
    pub at: u64,
    pub kind: u32,
    pub data: &'a [u8],
}

/// Checks the module info header at the start of `section` (found at file
/// offset `base`) and returns an iterator over the modules it spans.
pub(super) fn walk_modules(
    section: &[u8],
    base: u64,
    pointer_size: u64,
) -> Result<Modules<'_>, GrubImageError> {
    let info_err = |what: String| GrubImageError::BadModuleInfo { at: base, what };
    let short = || info_err(format!("{}-byte mods section is too short", section.len()));
    let magic = le_u32(section, 0).ok_or_else(short)?;
    if magic != super::GRUB_MODULE_MAGIC {
        return Err(GrubImageError::BadMagic {
            offset: base,
            found: magic,
        });
    }
    let (offset, size, header_len) = if pointer_size == 8 {
        let offset = le_u64(section, 8).ok_or_else(short)?;
        (offset, le_u64(section, 16).ok_or_else(short)?, 24)
    } else {
        let offset = u64::from(le_u32(section, 4).ok_or_else(short)?);
        (offset, u64::from(le_u32(section, 8).ok_or_else(short)?), 12)
    };
    if size > section.len() as u64 {
        return Err(info_err(format!(
            "modules size {size} is larger than the {}-byte mods section",
            section.len()
        )));
    }
    if offset < header_len || offset > size {
        return Err(info_err(format!(
            "first module offset {offset} is outside {header_len}..={size}"
        )));
    }
    Ok(Modules {
        // `size` fits the section, so it fits usize.
        area: &section[..size as usize],
        base,
        pos: offset,
        align: pointer_size,
        count: 0,
        failed: false,
    })
}

/// Iterator over the modules; yields one error and then stops.
pub(super) struct Modules<'a> {
    area: &'a [u8],
    base: u64,
    pos: u64,
    align: u64,
    count: usize,
    failed: bool,
}

impl<'a> Iterator for Modules<'a> {
    type Item = Result<Module<'a>, GrubImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.area.len() as u64 {
            return None;
        }
        let item = self.step();
        self.failed = item.is_err();
        Some(item)
    }
}

impl<'a> Modules<'a> {
    fn step(&mut self) -> Result<Module<'a>, GrubImageError> {
        let at = self.base + self.pos;
        let err = |what: String| GrubImageError::BadModule { at, what };
        self.count += 1;
        if self.count > MAX_MODULES {
            return Err(GrubImageError::TooManyModules);
        }
        let (Some(kind), Some(size)) =
            (le_u32(self.area, self.pos), le_u32(self.area, self.pos + 4))
        else {
            return Err(err("module header runs past the end of the modules".into()));
        };
        let size = u64::from(size);
        if size < MODULE_HEADER_LEN {
            return Err(err(format!(
                "size {size} is smaller than the {MODULE_HEADER_LEN}-byte module header"
            )));
        }
        let data = slice(
            self.area,
            self.pos + MODULE_HEADER_LEN,
            size - MODULE_HEADER_LEN,
        )
        .ok_or_else(|| {
            err(format!(
                "size {size} runs past the end of the modules ({} bytes)",
                self.area.len()
            ))
        })?;
        // grub's FOR_MODULES: the next header is at the size rounded up to
        // the pointer size. `size` is at most u32::MAX, so no overflow.
        self.pos += size.div_ceil(self.align) * self.align;
        Ok(Module { at, kind, data })
    }
}

const SHT_NOBITS: u32 = 8;

/// The name in an ELF module's `.modname` section, or why there is none.
pub(super) fn module_name(elf: &[u8]) -> Result<String, String> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("no ELF magic".into());
    }
    let class64 = match elf.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class".into()),
    };
    let little = match elf.get(5) {
        Some(1) => true,
        Some(2) => false,
        _ => return Err("unknown ELF byte order".into()),
    };
    let r = Reader { b: elf, little };
    let short = || "ELF header is truncated".to_string();
    // System V gABI "ELF Header": e_shoff, e_shentsize, e_shnum, e_shstrndx.
    let (shoff, entsize, shnum, shstrndx) = if class64 {
        (r.u64(40), r.u16(58), r.u16(60), r.u16(62))
    } else {
        (r.u32(32).map(u64::from), r.u16(46), r.u16(48), r.u16(50))
    };
    let (Some(shoff), Some(entsize), Some(shnum), Some(shstrndx)) =
        (shoff, entsize, shnum, shstrndx)
    else {
        return Err(short());
    };
    let min_entsize = if class64 { 64 } else { 40 };
    if entsize < min_entsize {
        return Err(format!(
            "section header size {entsize} is below {min_entsize}"
        ));
    }
    // A section header: sh_name, sh_type, then sh_offset and sh_size.
    let section = |index: u16| -> Result<(u32, u32, &[u8]), String> {
        let at = shoff
            .checked_add(u64::from(index) * u64::from(entsize))
            .ok_or("section header offset overflows")?;
        let field =
            |v: Option<u64>| v.ok_or(format!("section header {index} is outside the module"));
        let name = field(r.u32(at).map(u64::from))? as u32;
        let kind = field(r.u32(at + 4).map(u64::from))? as u32;
        let (offset, size) = if class64 {
            (field(r.u64(at + 24))?, field(r.u64(at + 32))?)
        } else {
            (
                field(r.u32(at + 16).map(u64::from))?,
                field(r.u32(at + 20).map(u64::from))?,
            )
        };
        let data = if kind == SHT_NOBITS {
            &[][..]
        } else {
            slice(elf, offset, size).ok_or(format!(
                "section {index} data runs past the end of the module"
            ))?
        };
        Ok((name, kind, data))
    };
    if shstrndx >= shnum {
        return Err(format!(
            "section name table index {shstrndx} is not below {shnum}"
        ));
    }
    let (_, _, names) = section(shstrndx)?;
    for index in 0..shnum {
        let (name, _, data) = section(index)?;
        let name = usize::try_from(name).unwrap_or(usize::MAX);
        if names
            .get(name..)
            .is_some_and(|n| n.starts_with(b".modname\0"))
        {
            return Ok(super::c_string(data));
        }
    }
    Err("no .modname section".into())
}

/// Integers of one byte order at checked offsets.
struct Reader<'a> {
    b: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn u16(&self, at: u64) -> Option<u16> {
        let s: [u8; 2] = slice(self.b, at, 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        })
    }

    fn u32(&self, at: u64) -> Option<u32> {
        let s: [u8; 4] = slice(self.b, at, 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    }

    fn u64(&self, at: u64) -> Option<u64> {
        let s: [u8; 8] = slice(self.b, at, 8)?.try_into().ok()?;
        Some(if self.little {
            u64::from_le_bytes(s)
        } else {
            u64::from_be_bytes(s)
        })
    }
}
