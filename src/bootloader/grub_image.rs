//! Reads what a GRUB EFI image made by `grub-mkimage` carries inside it:
//! the prefix it looks in for grub.cfg, an embedded config, a memdisk, and
//! the names of its built-in modules.
//!
//! In: the bytes of a PE/COFF file from the rootfs (untrusted: any offset,
//! size or count in it may be a lie). Out: a [`GrubImage`], or a
//! [`GrubImageError`] saying what is wrong and where. Must not: open
//! paths, spawn processes, panic, allocate more than the input's size, or
//! loop more than the input allows (each module takes at least 8 bytes and
//! the count is capped at [`MAX_MODULES`]).
//!
//! The layout (grub's `include/grub/kernel.h`, its `FOR_MODULES` walk;
//! checked against the host's grub-mkimage 2.06 and Debian trixie's
//! monolithic riscv64/arm64 images, made by 2.12): the PE section
//! named `mods` starts with `struct grub_module_info64 { u32 magic =
//! 0x676d696d; u32 padding; u64 offset; u64 size; }` (32-bit targets:
//! `grub_module_info32`, `u32 magic, offset, size`), where `offset` (to the
//! first module) and `size` (of all modules plus this header) count from
//! the header's start. Modules follow, each `{ u32 type; u32 size }` with
//! `size` including those 8 bytes, the next one at `size` rounded up to the
//! target's pointer size. Types 0–3 are the same in every grub:
//! ELF module (an ELF relocatable whose `.modname` section is its name),
//! memdisk, config (NUL-terminated text), prefix (NUL-terminated). Later
//! numbers differ between grub trees (upstream 2.06/2.12: 4 pubkey, 5 dtb,
//! 6 disable-shim-lock; Red Hat's rhboot/grub2, which Fedora-family and
//! openEuler grub derive from: 4 gpg pubkey, 5 x509 pubkey, 6 dtb), so
//! they are only listed by number ([`GrubImage::other_types`]), never named.
//! Where an image holds several of one kind, the one grub uses is reported:
//! the last prefix (`grub_set_prefix_and_root` in `kern/main.c` keeps
//! overwriting), the first config (`grub_load_config` stops there) and the
//! first memdisk (assumed from the memdisk module; not checked).
//!
//! Own code, not a crate: no crate reads GRUB's module format. For the PE
//! part, `object` or `goblin` would parse the headers, but mkimg needs only
//! the machine field and the section table (~60 lines of bounds-checked
//! reads here), and either crate would be a new dependency of several
//! thousand lines for that. The `.modname` lookup needs ELF section
//! headers, which `crate::elf` (file and program headers only) does not
//! read; the few reads it needs are here, in the same bounds-checked style.

use std::fmt;

/// More modules than any real image holds (Debian's monolithic image has
/// ~125, all of x86_64-efi is ~280): a crafted `mods` section of 8-byte
/// modules stops here.
pub const MAX_MODULES: usize = 4096;

const GRUB_MODULE_MAGIC: u32 = 0x676d_696d;
const OBJ_TYPE_ELF: u32 = 0;
const OBJ_TYPE_MEMDISK: u32 = 1;
const OBJ_TYPE_CONFIG: u32 = 2;
const OBJ_TYPE_PREFIX: u32 = 3;
const MODULE_HEADER_LEN: u64 = 8;

/// What a GRUB EFI image says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubImage {
    /// The PE `Machine` field (0x5064 riscv64, 0xaa64 arm64, 0x8664 x86_64, …).
    pub machine: u16,
    /// The built-in prefix, `None` when the image has no prefix module.
    pub prefix: Option<String>,
    /// The embedded config text up to its NUL; bytes that are not UTF-8
    /// become U+FFFD (lossy), as it is only shown or searched.
    pub config: Option<String>,
    /// The memdisk's size in bytes (without the module header).
    pub memdisk_bytes: Option<u64>,
    /// Names from each ELF module's `.modname`, in image order.
    pub modules: Vec<String>,
    /// Module types above 3 (public keys, device tree, shim-lock flag…),
    /// in image order; their meaning depends on the grub tree (module doc).
    pub other_types: Vec<u32>,
}

impl GrubImage {
    /// Whether the image has the module `name` built in (`normal`, `blscfg`…).
    pub fn has_module(&self, name: &str) -> bool {
        self.modules.iter().any(|m| m == name)
    }
}

/// Why bytes could not be read as a GRUB EFI image. Offsets are from the
/// start of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrubImageError {
    #[error("not a PE image: {0}")]
    NotPe(&'static str),
    #[error("PE section table at offset {offset} ({count} sections) runs past the end of the {len}-byte file")]
    SectionTable { offset: u64, count: u16, len: usize },
    #[error("no mods section: not a GRUB image (shim? systemd-boot?)")]
    NoModsSection,
    #[error(
        "mods section ({size} bytes at offset {offset}) runs past the end of the {len}-byte file"
    )]
    ModsOutside { offset: u64, size: u64, len: usize },
    #[error("mods section at offset {offset} does not start with GRUB's module magic (found {found:#010x})")]
    BadMagic { offset: u64, found: u32 },
    #[error("GRUB module info at offset {at}: {what}")]
    BadModuleInfo { at: u64, what: String },
    #[error("GRUB module at offset {at}: {what}")]
    BadModule { at: u64, what: String },
    #[error("more than {MAX_MODULES} GRUB modules: not a real image")]
    TooManyModules,
}

/// A GRUB prefix split like grub does: `(device)path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubPrefix {
    /// The device between the parentheses (`hd0,gpt1`, `$root`), `None`
    /// when the prefix names only a path (grub then uses the device it was
    /// loaded from).
    pub device: Option<String>,
    /// The path after the device (`/EFI/fedora`), possibly empty.
    pub path: String,
}

impl fmt::Display for GrubPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.device {
            Some(d) => write!(f, "({d}){}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// Splits a prefix into device and path as grub's kernel does (up to the
/// *last* `)`): `(hd0,gpt1)/EFI/x` → device `hd0,gpt1`, path `/EFI/x`;
/// `/EFI/x` → no device. A `(` without a `)` is kept as a path (grub would
/// fail to open it; the caller decides).
pub fn parse_prefix(prefix: &str) -> GrubPrefix {
    if let Some(rest) = prefix.strip_prefix('(') {
        if let Some(close) = rest.rfind(')') {
            return GrubPrefix {
                device: Some(rest[..close].to_owned()),
                path: rest[close + 1..].to_owned(),
            };
        }
    }
    GrubPrefix {
        device: None,
        path: prefix.to_owned(),
    }
}

/// Reads the prefix, embedded config, memdisk size and module names of a
/// GRUB EFI image (see the module doc for the layout).
pub fn read_grub_image(bytes: &[u8]) -> Result<GrubImage, GrubImageError> {
    let pe = read_pe(bytes)?;
    let mods = pe.mods.ok_or(GrubImageError::NoModsSection)?;
    let mut image = GrubImage {
        machine: pe.machine,
        prefix: None,
        config: None,
        memdisk_bytes: None,
        modules: Vec::new(),
        other_types: Vec::new(),
    };
    let base = mods.offset;
    let section = slice(bytes, base, mods.size).ok_or(GrubImageError::ModsOutside {
        offset: base,
        size: mods.size,
        len: bytes.len(),
    })?;
    for module in walk_modules(section, base, pe.pointer_size)? {
        let Module { at, kind, data } = module?;
        match kind {
            OBJ_TYPE_ELF => {
                image
                    .modules
                    .push(module_name(data).map_err(|what| GrubImageError::BadModule {
                        at,
                        what: format!("ELF module: {what}"),
                    })?)
            }
            OBJ_TYPE_MEMDISK => {
                image.memdisk_bytes.get_or_insert(data.len() as u64);
            }
            OBJ_TYPE_CONFIG => {
                image.config.get_or_insert_with(|| c_string(data));
            }
            OBJ_TYPE_PREFIX => image.prefix = Some(c_string(data)),
            other => image.other_types.push(other),
        }
    }
    Ok(image)
}

/// The text up to the first NUL (or the end), lossy UTF-8.
fn c_string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// `bytes[offset..offset + len]`, or `None` when any of it is outside.
fn slice(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

fn le_u16(b: &[u8], at: u64) -> Option<u16> {
    slice(b, at, 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn le_u32(b: &[u8], at: u64) -> Option<u32> {
    slice(b, at, 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le_u64(b: &[u8], at: u64) -> Option<u64> {
    let s = slice(b, at, 8)?;
    let mut v = [0u8; 8];
    v.copy_from_slice(s);
    Some(u64::from_le_bytes(v))
}

mod modules;
mod pe;

use modules::{module_name, walk_modules, Module};
use pe::read_pe;

#[cfg(test)]
mod tests;
