//! The text formats of binfmt_misc, and QEMU's magic table: the kernel's
//! view of an entry (`cat /proc/sys/fs/binfmt_misc/qemu-riscv64`), the
//! registration line (`:name:M:offset:magic:mask:interpreter:flags`, also the
//! format of Debian's `/usr/lib/binfmt.d/qemu-<arch>.conf`), and matching an
//! entry's magic/mask against an architecture's ELF header.
//!
//! Must not: do any I/O. Text flows in, structs flow out, and back.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::arch::Arch;

/// Why binfmt_misc text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("first line {0:?} is neither \"enabled\" nor \"disabled\"")]
    State(String),
    #[error("bad {field} {value:?}")]
    Field { field: &'static str, value: String },
    #[error("unexpected line {0:?}")]
    UnexpectedLine(String),
    #[error("no {0}")]
    Missing(&'static str),
    #[error("{found} fields after separator {separator:?}, expected 7")]
    FieldCount { found: usize, separator: char },
    #[error("type {0:?}: only magic (M) entries are supported")]
    UnsupportedType(String),
    #[error("mask is {mask} bytes but magic is {magic}")]
    MaskLength { magic: usize, mask: usize },
}

/// ELF header bytes a QEMU magic covers: e_ident, e_type, e_machine.
const MAGIC_LEN: usize = 20;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

/// One entry as the kernel shows it in `<dir>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BinfmtEntry {
    pub enabled: bool,
    pub interpreter: PathBuf,
    /// The flag letters as shown (`POF`; the kernel prints them in P, O, C, F order).
    pub flags: String,
    pub offset: u32,
    /// Empty for extension (`E`) entries.
    pub magic: Vec<u8>,
    pub mask: Option<Vec<u8>>,
    /// Only for extension (`E`) entries.
    pub extension: Option<String>,
}

/// One registration line, as written to `<dir>/register` and found in
/// binfmt.d files: `:name:M:offset:magic:mask:interpreter:flags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterLine {
    pub name: String,
    pub offset: u32,
    pub magic: Vec<u8>,
    pub mask: Option<Vec<u8>>,
    pub interpreter: PathBuf,
    pub flags: String,
}

impl BinfmtEntry {
    pub fn has_flag(&self, flag: char) -> bool {
        self.flags.contains(flag)
    }

    /// Whether the kernel would hand `header` (bytes from offset 0) to this entry.
    pub fn matches(&self, header: &[u8]) -> bool {
        if self.extension.is_some() || self.magic.is_empty() {
            return false;
        }
        let start = self.offset as usize;
        let Some(window) = header.get(start..start + self.magic.len()) else {
            return false;
        };
        window
            .iter()
            .zip(&self.magic)
            .enumerate()
            .all(|(i, (h, m))| {
                let mask = self.mask.as_ref().map_or(0xff, |mask| mask[i]);
                h & mask == m & mask
            })
    }

    /// Whether this entry runs both executables (ET_EXEC) and position-independent
    /// executables (ET_DYN, what Debian builds) of `arch`.
    pub fn matches_arch(&self, arch: Arch) -> bool {
        self.matches(&elf_header_prefix(arch, ET_EXEC))
            && self.matches(&elf_header_prefix(arch, ET_DYN))
    }
}

/// The first 20 bytes of a Linux ELF file of `arch` with this `e_type`: what
/// QEMU's magic strings describe.
pub fn elf_header_prefix(arch: Arch, e_type: u16) -> [u8; MAGIC_LEN] {
    let mut h = [0u8; MAGIC_LEN];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if arch.elf_class64() { 2 } else { 1 };
    h[5] = if arch.elf_big_endian() { 2 } else { 1 };
    h[6] = 1; // EV_CURRENT
    let (t, m) = if arch.elf_big_endian() {
        (e_type.to_be_bytes(), arch.elf_machine().to_be_bytes())
    } else {
        (e_type.to_le_bytes(), arch.elf_machine().to_le_bytes())
    };
    h[16..18].copy_from_slice(&t);
    h[18..20].copy_from_slice(&m);
    h
}

/// QEMU's magic and mask for `arch` (scripts/qemu-binfmt-conf.sh; Debian's
/// binfmt.d files carry the same), used when no binfmt.d file is installed.
/// Every mask ignores the low bit of e_type (EXEC and DYN) and byte 7
/// (EI_ABIVERSION); some ignore more (x86: class/data families; loongarch64
/// and mips64el: EI_PAD's first byte; ppc64le: the e_machine high byte).
pub fn builtin_magic(arch: Arch) -> (Vec<u8>, Vec<u8>) {
    const X: u8 = 0xff;
    let ident: [u8; 8] = match arch {
        Arch::X86_64 => [X, X, X, X, X, 0xfe, 0xfe, 0x00],
        Arch::Ppc64le | Arch::S390x | Arch::Loongarch64 => [X, X, X, X, X, X, X, 0xfc],
        Arch::Riscv64 | Arch::Aarch64 | Arch::Arm | Arch::Mips64el => [X, X, X, X, X, X, X, 0x00],
    };
    let pad: [u8; 8] = match arch {
        Arch::Loongarch64 | Arch::Mips64el => [0x00, X, X, X, X, X, X, X],
        _ => [X; 8],
    };
    let type_machine: [u8; 4] = match arch {
        Arch::Ppc64le => [0xfe, X, X, 0x00],
        Arch::S390x => [X, 0xfe, X, X],
        _ => [0xfe, X, X, X],
    };
    let mask = [&ident[..], &pad[..], &type_machine[..]].concat();
    (elf_header_prefix(arch, ET_EXEC).to_vec(), mask)
}

/// Parses the kernel's view of one entry (`cat <dir>/<name>`):
/// `enabled`, `interpreter …`, `flags: …`, `offset …`, `magic …`, `mask …`.
pub fn parse_entry(text: &str) -> Result<BinfmtEntry, FormatError> {
    let mut lines = text.lines();
    let enabled = match lines.next() {
        Some("enabled") => true,
        Some("disabled") => false,
        other => return Err(FormatError::State(other.unwrap_or_default().to_owned())),
    };
    let mut entry = BinfmtEntry {
        enabled,
        interpreter: PathBuf::new(),
        flags: String::new(),
        offset: 0,
        magic: Vec::new(),
        mask: None,
        extension: None,
    };
    for line in lines {
        if let Some(v) = line.strip_prefix("interpreter ") {
            entry.interpreter = PathBuf::from(v);
        } else if let Some(v) = line.strip_prefix("flags:") {
            entry.flags = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("offset ") {
            entry.offset = parse_offset(v.trim())?;
        } else if let Some(v) = line.strip_prefix("magic ") {
            entry.magic = decode_hex("magic", v.trim())?;
        } else if let Some(v) = line.strip_prefix("mask ") {
            entry.mask = Some(decode_hex("mask", v.trim())?);
        } else if let Some(v) = line.strip_prefix("extension .") {
            entry.extension = Some(v.to_owned());
        } else if !line.is_empty() {
            return Err(FormatError::UnexpectedLine(line.to_owned()));
        }
    }
    if entry.interpreter.as_os_str().is_empty() {
        return Err(FormatError::Missing("interpreter line"));
    }
    if entry.magic.is_empty() && entry.extension.is_none() {
        return Err(FormatError::Missing("magic or extension line"));
    }
    check_mask(&entry.magic, entry.mask.as_deref())?;
    Ok(entry)
}

fn check_mask(magic: &[u8], mask: Option<&[u8]>) -> Result<(), FormatError> {
    match mask {
        Some(mask) if mask.len() != magic.len() => Err(FormatError::MaskLength {
            magic: magic.len(),
            mask: mask.len(),
        }),
        _ => Ok(()),
    }
}

fn parse_offset(value: &str) -> Result<u32, FormatError> {
    value.parse().map_err(|_| FormatError::Field {
        field: "offset",
        value: value.to_owned(),
    })
}

fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, FormatError> {
    let bad = || FormatError::Field {
        field,
        value: text.to_owned(),
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(bad());
    }
    bytes
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// Decodes the kernel's `\xNN` escapes (one or two hex digits); every other
/// byte, backslashes included, stands for itself.
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let digits = b[i + 2..]
                .iter()
                .take(2)
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if digits > 0 {
                let hex = std::str::from_utf8(&b[i + 2..i + 2 + digits]).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2 + digits;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn escape(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "\\x{b:02x}");
        s
    })
}

impl RegisterLine {
    /// Parses one line; the first character is the field separator.
    pub fn parse(line: &str) -> Result<RegisterLine, FormatError> {
        let line = line.trim_end();
        let sep = line
            .chars()
            .next()
            .ok_or(FormatError::Missing("registration"))?;
        let fields: Vec<&str> = line[sep.len_utf8()..].split(sep).collect();
        let [name, kind, offset, magic, mask, interpreter, flags] = fields[..] else {
            return Err(FormatError::FieldCount {
                found: fields.len(),
                separator: sep,
            });
        };
        if kind != "M" {
            return Err(FormatError::UnsupportedType(kind.to_owned()));
        }
        let offset = if offset.is_empty() {
            0
        } else {
            parse_offset(offset)?
        };
        let magic = unescape(magic);
        let mask = (!mask.is_empty()).then(|| unescape(mask));
        if magic.is_empty() {
            return Err(FormatError::Missing("magic"));
        }
        check_mask(&magic, mask.as_deref())?;
        Ok(RegisterLine {
            name: name.to_owned(),
            offset,
            magic,
            mask,
            interpreter: PathBuf::from(interpreter),
            flags: flags.to_owned(),
        })
    }

    /// The line for `<dir>/register`, every magic and mask byte as `\xNN`.
    pub fn render(&self) -> String {
        let offset = if self.offset == 0 {
            String::new()
        } else {
            self.offset.to_string()
        };
        let mask = self.mask.as_deref().map(escape).unwrap_or_default();
        format!(
            ":{}:M:{offset}:{}:{mask}:{}:{}",
            self.name,
            escape(&self.magic),
            self.interpreter.display(),
            self.flags
        )
    }
}
