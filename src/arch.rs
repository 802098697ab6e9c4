//! The CPU architectures mkimg builds images for, and every per-architecture
//! constant the rest of mkimg needs: Debian and QEMU names, the removable-media
//! EFI boot file, the GRUB EFI target, the Discoverable Partitions root type
//! GUID, and the ELF identity (e_machine, class, byte order).
//!
//! Owns: the `Arch` enum and its spellings. The board file, the rootfs check
//! (`rootfs::elf`) and binfmt registration (`host::binfmt`) all take an `Arch`
//! from here, so a name is parsed once, at the edge.
//!
//! Must not: do I/O or look at the host. Everything here is a constant table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A target CPU architecture (always the Linux userland ABI Debian ships for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Riscv64,
    Aarch64,
    /// 32-bit ARM, hard-float EABI (Debian armhf).
    Arm,
    X86_64,
    Ppc64le,
    S390x,
    Loongarch64,
    Mips64el,
}

/// A name that is not one of `Arch`'s spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {name:?}: expected one of {}", VALID_NAMES)]
pub struct UnknownArch {
    pub name: String,
}

const VALID_NAMES: &str = "riscv64, aarch64 (arm64), arm (armhf), x86_64 (amd64), \
     ppc64le (ppc64el), s390x, loongarch64 (loong64), mips64el";

// ELF e_machine values (System V gABI / elf.h).
const EM_MIPS: u16 = 8;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

impl Arch {
    /// Every architecture, in declaration order.
    pub fn all() -> &'static [Arch] {
        &[
            Arch::Riscv64,
            Arch::Aarch64,
            Arch::Arm,
            Arch::X86_64,
            Arch::Ppc64le,
            Arch::S390x,
            Arch::Loongarch64,
            Arch::Mips64el,
        ]
    }

    /// The canonical name (the kernel's `uname -m` spelling, except `arm`).
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::X86_64 => "x86_64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loongarch64",
            Arch::Mips64el => "mips64el",
        }
    }

    /// The Debian architecture name (`dpkg --print-architecture`, mmdebstrap
    /// `--architectures`).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64",
            Arch::Aarch64 => "arm64",
            Arch::Arm => "armhf",
            Arch::X86_64 => "amd64",
            Arch::Ppc64le => "ppc64el",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loong64",
            Arch::Mips64el => "mips64el",
        }
    }

    /// QEMU's name: the `<x>` of `qemu-<x>-static`, of
    /// `/usr/lib/binfmt.d/qemu-<x>.conf` and of `/usr/libexec/qemu-binfmt/<x>-binfmt-P`.
    pub fn qemu_name(self) -> &'static str {
        // Identical to the canonical names today; kept apart because the two
        // answer different questions.
        match self {
            Arch::Riscv64 => "riscv64",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::X86_64 => "x86_64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loongarch64",
            Arch::Mips64el => "mips64el",
        }
    }

    /// The removable-media boot file under `EFI/BOOT/` (UEFI spec 2.10,
    /// 3.5.1.1), or `None` where UEFI defines none.
    pub fn efi_boot_file(self) -> Option<&'static str> {
        match self {
            Arch::Riscv64 => Some("BOOTRISCV64.EFI"),
            Arch::Aarch64 => Some("BOOTAA64.EFI"),
            Arch::Arm => Some("BOOTARM.EFI"),
            Arch::X86_64 => Some("BOOTX64.EFI"),
            Arch::Loongarch64 => Some("BOOTLOONGARCH64.EFI"),
            Arch::Ppc64le | Arch::S390x | Arch::Mips64el => None,
        }
    }

    /// The architecture's part of EFI file names: `BOOT<SFX>.EFI`,
    /// `grub<sfx>.efi`, `shim<sfx>.efi` (lower-case, e.g. `riscv64`, `aa64`).
    pub fn efi_suffix(self) -> Option<&'static str> {
        match self {
            Arch::Riscv64 => Some("riscv64"),
            Arch::Aarch64 => Some("aa64"),
            Arch::Arm => Some("arm"),
            Arch::X86_64 => Some("x64"),
            Arch::Loongarch64 => Some("loongarch64"),
            Arch::Ppc64le | Arch::S390x | Arch::Mips64el => None,
        }
    }

    /// The `grub-install --target` for EFI on this architecture, if GRUB has one.
    pub fn grub_efi_target(self) -> Option<&'static str> {
        match self {
            Arch::Riscv64 => Some("riscv64-efi"),
            Arch::Aarch64 => Some("arm64-efi"),
            Arch::Arm => Some("arm-efi"),
            Arch::X86_64 => Some("x86_64-efi"),
            Arch::Loongarch64 => Some("loongarch64-efi"),
            Arch::Ppc64le | Arch::S390x | Arch::Mips64el => None,
        }
    }

    /// The root partition type GUID of the UAPI Discoverable Partitions
    /// Specification (`systemd-id128 show root-<arch>` prints the same).
    pub fn root_partition_type(self) -> Uuid {
        Uuid::from_u128(match self {
            Arch::Riscv64 => 0x72ec70a6_cf74_40e6_bd49_4bda08e8f224,
            Arch::Aarch64 => 0xb921b045_1df0_41c3_af44_4c6f280d3fae,
            Arch::Arm => 0x69dad710_2ce4_4e3c_b16c_21a1d49abed3,
            Arch::X86_64 => 0x4f68bce3_e8cd_4db1_96e7_fbcaf984b709,
            Arch::Ppc64le => 0xc31c45e6_3f39_412e_80fb_4809c4980599,
            Arch::S390x => 0x5eead9a9_fe09_4a1e_a1d7_520d00531306,
            Arch::Loongarch64 => 0x77055800_792c_4f94_b39a_98c91b762bb6,
            Arch::Mips64el => 0x700bda43_7a34_4507_b179_eeb93d7a7ca3,
        })
    }

    /// The ELF `e_machine` of this architecture's binaries.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::Riscv64 => EM_RISCV,
            Arch::Aarch64 => EM_AARCH64,
            Arch::Arm => EM_ARM,
            Arch::X86_64 => EM_X86_64,
            Arch::Ppc64le => EM_PPC64,
            Arch::S390x => EM_S390,
            Arch::Loongarch64 => EM_LOONGARCH,
            Arch::Mips64el => EM_MIPS,
        }
    }

    /// Whether binaries are ELFCLASS64 (else ELFCLASS32).
    pub fn elf_class64(self) -> bool {
        !matches!(self, Arch::Arm)
    }

    /// Whether binaries are ELFDATA2MSB (else little-endian).
    pub fn elf_big_endian(self) -> bool {
        matches!(self, Arch::S390x)
    }

    /// The architecture whose binaries carry this ELF identity, if mkimg knows one.
    pub fn from_elf(machine: u16, class64: bool, big_endian: bool) -> Option<Arch> {
        Arch::all().iter().copied().find(|a| {
            a.elf_machine() == machine
                && a.elf_class64() == class64
                && a.elf_big_endian() == big_endian
        })
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "riscv64" => Arch::Riscv64,
            "aarch64" | "arm64" => Arch::Aarch64,
            "arm" | "armhf" => Arch::Arm,
            "x86_64" | "amd64" => Arch::X86_64,
            "ppc64le" | "ppc64el" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "loongarch64" | "loong64" => Arch::Loongarch64,
            "mips64el" => Arch::Mips64el,
            _ => return Err(UnknownArch { name: s.to_owned() }),
        })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Arch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
