//! Reads just enough of an ELF file to say which architecture and ABI it was
//! built for, and whether it needs a program interpreter (`PT_INTERP`);
//! [`dynamic`] reads which interpreter and which libraries (`DT_NEEDED`).
//!
//! Owns: the ELF file header layout (ELF32/ELF64, both byte orders), the
//! RISC-V float-ABI and ARM hard-float `e_flags` bits, the program header
//! scan, and the rootfs-vs-board architecture check with its messages.
//!
//! Must not: open paths, spawn processes or trust the file: every offset and
//! count read from it is bounds-checked. Bytes (or `Read + Seek`) flow in; an
//! [`ElfInfo`] or a `bool` flows out. Callers: the rootfs stage (which member
//! of the tarball to read is its business) and `host::binfmt` (is the QEMU
//! interpreter static?).

use std::io::{self, Read, Seek, SeekFrom};

use serde::Serialize;

use crate::arch::Arch;

pub mod dynamic;

/// The ELF64 file header is 64 bytes; ELF32 needs 52. `detect_elf` needs no more.
pub const ELF_HEADER_LEN: usize = 64;
const ELF32_HEADER_LEN: usize = 52;

const ELFMAG: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const PT_INTERP: u32 = 3;
/// `e_phnum` value meaning "the real count is in section header 0" (never
/// seen in executables; refused rather than followed).
const PN_XNUM: u16 = 0xffff;

const EF_RISCV_FLOAT_ABI_MASK: u32 = 0x6;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

/// The RISC-V floating-point calling convention (`EF_RISCV_FLOAT_ABI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatAbi {
    /// lp64 / ilp32: floats passed in integer registers.
    Soft,
    /// lp64f.
    Single,
    /// lp64d: what Debian riscv64 ships.
    Double,
    /// lp64q.
    Quad,
}

impl FloatAbi {
    /// The 64-bit ABI name gcc and the dynamic loader use (`lp64d`, …).
    pub fn lp64_name(self) -> &'static str {
        match self {
            FloatAbi::Soft => "lp64",
            FloatAbi::Single => "lp64f",
            FloatAbi::Double => "lp64d",
            FloatAbi::Quad => "lp64q",
        }
    }
}

/// What the ELF header says about the machine a binary runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// `None` when machine, class and byte order match no [`Arch`] (riscv32, ppc64 big-endian, …).
    pub arch: Option<Arch>,
    pub machine: u16,
    pub class64: bool,
    pub little_endian: bool,
    /// Only for `EM_RISCV`.
    pub riscv_float_abi: Option<FloatAbi>,
    /// Only for `EM_ARM`: `EF_ARM_ABI_FLOAT_HARD` (armhf) set or not (armel).
    pub arm_hard_float: Option<bool>,
}

/// Why bytes could not be read as an ELF header or program header table.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file: {len} bytes, an ELF header needs {needed}")]
    TooShort { len: usize, needed: usize },
    #[error("not an ELF file: magic at offset 0 is {found:02x?}, expected 7f 45 4c 46")]
    BadMagic { found: [u8; 4] },
    #[error("unknown ELF class {0} at offset 4 (1 = 32-bit, 2 = 64-bit)")]
    BadClass(u8),
    #[error("unknown ELF data encoding {0} at offset 5 (1 = little-endian, 2 = big-endian)")]
    BadData(u8),
    #[error("program header entry size {size} at offset {offset} is smaller than {minimum}")]
    BadPhentsize {
        size: u16,
        offset: u64,
        minimum: u16,
    },
    #[error("e_phnum is PN_XNUM (0xffff): extended program header numbering is not supported")]
    ExtendedPhnum,
    #[error("reading program headers at offset {offset}")]
    ReadProgramHeaders {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("reading the ELF header")]
    ReadHeader(#[source] io::Error),
    #[error("{0} lies outside the file or is malformed")]
    BadDynamic(&'static str),
}

/// The rootfs does not match the board's architecture or ABI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchMismatch {
    #[error(
        "rootfs is {found} (from {path}) but the board is {expected}: build the rootfs \
         for {expected} (mmdebstrap --architectures={debian}) or pick a {found} board",
        debian = expected.debian_arch()
    )]
    WrongArch {
        found: Arch,
        expected: Arch,
        path: String,
    },
    #[error(
        "rootfs is for {machine} (from {path}) but the board is {expected}: build the \
         rootfs for {expected} (mmdebstrap --architectures={debian})",
        debian = expected.debian_arch()
    )]
    UnsupportedArch {
        machine: String,
        expected: Arch,
        path: String,
    },
    #[error(
        "rootfs is riscv64 but {path} uses the {abi} float ABI; riscv64 boards need lp64d \
         (double-float ABI, what Debian riscv64 ships)"
    )]
    RiscvFloatAbi { abi: &'static str, path: String },
    #[error(
        "rootfs is armel (soft-float EABI, from {path}) but arm boards need armhf \
         (hard-float): build the rootfs with mmdebstrap --architectures=armhf"
    )]
    ArmSoftFloat { path: String },
}

/// The fields of the ELF file header mkimg reads, decoded with the file's byte order.
#[derive(Debug, Clone, Copy)]
struct RawElfHeader {
    class64: bool,
    little_endian: bool,
    e_machine: u16,
    e_phoff: u64,
    e_flags: u32,
    e_phentsize: u16,
    e_phnum: u16,
}

/// Reads integers of one byte order out of a byte slice.
#[derive(Clone, Copy)]
struct Endian {
    little: bool,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    }

    fn u64(self, b: &[u8], at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        if self.little {
            u64::from_le_bytes(v)
        } else {
            u64::from_be_bytes(v)
        }
    }
}

impl RawElfHeader {
    fn parse(b: &[u8]) -> Result<RawElfHeader, ElfError> {
        if b.len() < 6 {
            return Err(ElfError::TooShort {
                len: b.len(),
                needed: ELF32_HEADER_LEN,
            });
        }
        if b[..4] != ELFMAG {
            return Err(ElfError::BadMagic {
                found: [b[0], b[1], b[2], b[3]],
            });
        }
        let class64 = match b[4] {
            ELFCLASS32 => false,
            ELFCLASS64 => true,
            other => return Err(ElfError::BadClass(other)),
        };
        let little_endian = match b[5] {
            ELFDATA2LSB => true,
            ELFDATA2MSB => false,
            other => return Err(ElfError::BadData(other)),
        };
        let needed = if class64 {
            ELF_HEADER_LEN
        } else {
            ELF32_HEADER_LEN
        };
        if b.len() < needed {
            return Err(ElfError::TooShort {
                len: b.len(),
                needed,
            });
        }
        let e = Endian {
            little: little_endian,
        };
        // Offsets from the System V gABI, "ELF Header".
        let (e_phoff, e_flags, e_phentsize, e_phnum) = if class64 {
            (e.u64(b, 32), e.u32(b, 48), e.u16(b, 54), e.u16(b, 56))
        } else {
            (
                u64::from(e.u32(b, 28)),
                e.u32(b, 36),
                e.u16(b, 42),
                e.u16(b, 44),
            )
        };
        Ok(RawElfHeader {
            class64,
            little_endian,
            e_machine: e.u16(b, 18),
            e_phoff,
            e_flags,
            e_phentsize,
            e_phnum,
        })
    }

    fn to_info(self) -> ElfInfo {
        let riscv_float_abi = (self.e_machine == Arch::Riscv64.elf_machine()).then_some(
            match (self.e_flags & EF_RISCV_FLOAT_ABI_MASK) >> 1 {
                0 => FloatAbi::Soft,
                1 => FloatAbi::Single,
                2 => FloatAbi::Double,
                _ => FloatAbi::Quad,
            },
        );
        let arm_hard_float = (self.e_machine == Arch::Arm.elf_machine())
            .then_some(self.e_flags & EF_ARM_ABI_FLOAT_HARD != 0);
        ElfInfo {
            arch: Arch::from_elf(self.e_machine, self.class64, !self.little_endian),
            machine: self.e_machine,
            class64: self.class64,
            little_endian: self.little_endian,
            riscv_float_abi,
            arm_hard_float,
        }
    }
}

/// Decodes the ELF file header at the start of `header` (the first
/// [`ELF_HEADER_LEN`] bytes of a file are enough; more are ignored).
pub fn detect_elf(header: &[u8]) -> Result<ElfInfo, ElfError> {
    RawElfHeader::parse(header).map(RawElfHeader::to_info)
}

/// Whether the ELF file has a `PT_INTERP` program header, i.e. needs a
/// dynamic loader. A static or static-pie binary has none, which is what a
/// binfmt interpreter used inside a foreign chroot must be.
pub fn has_program_interpreter<R: Read + Seek>(file: &mut R) -> Result<bool, ElfError> {
    let mut header = Vec::with_capacity(ELF_HEADER_LEN);
    file.by_ref()
        .take(ELF_HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(ElfError::ReadHeader)?;
    let raw = RawElfHeader::parse(&header)?;
    if raw.e_phnum == PN_XNUM {
        return Err(ElfError::ExtendedPhnum);
    }
    let minimum = if raw.class64 { 56 } else { 32 };
    if raw.e_phnum > 0 && raw.e_phentsize < minimum {
        return Err(ElfError::BadPhentsize {
            size: raw.e_phentsize,
            offset: if raw.class64 { 54 } else { 42 },
            minimum,
        });
    }
    let e = Endian {
        little: raw.little_endian,
    };
    // Both counts are u16, so the table is at most 4 MiB.
    let len = usize::from(raw.e_phentsize) * usize::from(raw.e_phnum);
    let mut table = vec![0u8; len];
    let read_err = |source| ElfError::ReadProgramHeaders {
        offset: raw.e_phoff,
        source,
    };
    file.seek(SeekFrom::Start(raw.e_phoff)).map_err(read_err)?;
    file.read_exact(&mut table).map_err(read_err)?;
    Ok(table
        .chunks_exact(usize::from(raw.e_phentsize))
        .any(|ph| e.u32(ph, 0) == PT_INTERP))
}

/// Checks that a rootfs binary (`path` names it in the message) fits a board
/// of architecture `expected`, including the ABI Debian ships for it.
pub fn check_rootfs_arch(expected: Arch, found: &ElfInfo, path: &str) -> Result<(), ArchMismatch> {
    match found.arch {
        Some(arch) if arch == expected => {}
        Some(arch) => {
            return Err(ArchMismatch::WrongArch {
                found: arch,
                expected,
                path: path.to_owned(),
            })
        }
        None => {
            return Err(ArchMismatch::UnsupportedArch {
                machine: describe_machine(found),
                expected,
                path: path.to_owned(),
            })
        }
    }
    match expected {
        Arch::Riscv64 => match found.riscv_float_abi {
            Some(FloatAbi::Double) => Ok(()),
            other => Err(ArchMismatch::RiscvFloatAbi {
                abi: other.unwrap_or(FloatAbi::Soft).lp64_name(),
                path: path.to_owned(),
            }),
        },
        Arch::Arm if found.arm_hard_float == Some(false) => Err(ArchMismatch::ArmSoftFloat {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Describes an ELF identity mkimg has no `Arch` for.
fn describe_machine(info: &ElfInfo) -> String {
    format!(
        "an unsupported architecture (ELF e_machine {}, {}-bit, {}-endian)",
        info.machine,
        if info.class64 { 64 } else { 32 },
        if info.little_endian { "little" } else { "big" }
    )
}

#[cfg(test)]
mod tests;
