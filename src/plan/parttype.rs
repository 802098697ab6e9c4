//! Partition type shortcuts → GPT type GUID and MBR type byte.
//!
//! GUIDs come from the UEFI spec and the UAPI Discoverable Partitions
//! Specification; `linux-root` depends on the architecture so that
//! systemd-gpt-auto-generator and friends recognise the root. Pure.

use uuid::{uuid, Uuid};

use crate::arch::Arch;

pub const ESP: Uuid = uuid!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
pub const LINUX_DATA: Uuid = uuid!("0fc63daf-8483-4772-8e79-3d69d8477de4");
pub const LINUX_SWAP: Uuid = uuid!("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f");
pub const XBOOTLDR: Uuid = uuid!("bc13c2ff-59e6-4262-a352-b275fd6f7172");
pub const BASIC_DATA: Uuid = uuid!("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7");

/// A resolved partition type: what goes in a GPT entry and/or an MBR entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PartType {
    pub gpt: Option<Uuid>,
    pub mbr: Option<u8>,
}

impl PartType {
    /// Types a FAT filesystem is expected on.
    pub fn is_fat(&self) -> bool {
        self.gpt == Some(ESP)
            || self.gpt == Some(BASIC_DATA)
            || self.gpt == Some(XBOOTLDR)
            || matches!(
                self.mbr,
                Some(0x01 | 0x04 | 0x06 | 0x0b | 0x0c | 0x0e | 0xef | 0xea)
            )
    }
}

/// A short name for a GPT type GUID: the shortcut if it is one, else the GUID.
pub fn describe_gpt_type(guid: Uuid) -> String {
    let name = match guid {
        g if g == ESP => "esp",
        g if g == LINUX_DATA => "linux",
        g if g == LINUX_SWAP => "swap",
        g if g == XBOOTLDR => "xbootldr",
        g if g == BASIC_DATA => "fat32",
        g => {
            return crate::arch::Arch::all()
                .iter()
                .find(|a| a.root_partition_type() == g)
                .map(|a| format!("linux-root-{a}"))
                .unwrap_or_else(|| g.to_string())
        }
    };
    name.to_string()
}

/// Resolve a board's `type = "..."`.
pub fn resolve_part_type(text: &str, arch: Arch) -> Result<PartType, String> {
    let known = |gpt: Uuid, mbr: u8| {
        Ok(PartType {
            gpt: Some(gpt),
            mbr: Some(mbr),
        })
    };
    match text {
        "esp" => known(ESP, 0xef),
        "linux" => known(LINUX_DATA, 0x83),
        "linux-root" => known(arch.root_partition_type(), 0x83),
        "swap" => known(LINUX_SWAP, 0x82),
        "xbootldr" => known(XBOOTLDR, 0xea),
        "fat32" | "basic-data" => known(BASIC_DATA, 0x0c),
        _ => {
            if let Some(hex) = text.strip_prefix("0x") {
                if hex.len() == 2 {
                    if let Ok(byte) = u8::from_str_radix(hex, 16) {
                        return Ok(PartType {
                            gpt: None,
                            mbr: Some(byte),
                        });
                    }
                }
                return Err(format!(
                    "partition type {text:?}: an MBR type byte is two hex digits, e.g. \"0x83\""
                ));
            }
            match Uuid::parse_str(text) {
                Ok(guid) if text.len() == 36 => Ok(PartType { gpt: Some(guid), mbr: None }),
                _ => Err(format!(
                    "unknown partition type {text:?}; use esp, linux, linux-root, swap, \
                     xbootldr, fat32, a GUID (8-4-4-4-12 hex digits) or an MBR byte such as \"0x83\""
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{resolve_part_type, ESP};
    use crate::arch::Arch;

    #[test]
    fn shortcuts_resolve_per_arch() {
        assert_eq!(
            resolve_part_type("esp", Arch::Riscv64).unwrap().gpt,
            Some(ESP)
        );
        let rv = resolve_part_type("linux-root", Arch::Riscv64).unwrap();
        let arm = resolve_part_type("linux-root", Arch::Aarch64).unwrap();
        assert_eq!(
            rv.gpt.unwrap().to_string(),
            "72ec70a6-cf74-40e6-bd49-4bda08e8f224"
        );
        assert_eq!(
            arm.gpt.unwrap().to_string(),
            "b921b045-1df0-41c3-af44-4c6f280d3fae"
        );
        assert_eq!(
            resolve_part_type("0x83", Arch::Riscv64).unwrap().mbr,
            Some(0x83)
        );
    }

    #[test]
    fn rejects_unknown_types() {
        let err = resolve_part_type("ext4", Arch::Riscv64).unwrap_err();
        assert!(err.contains("unknown partition type \"ext4\""), "{err}");
        assert!(resolve_part_type("0x8", Arch::Riscv64).is_err());
        assert!(resolve_part_type("0fc63daf84834772", Arch::Riscv64).is_err());
    }
}
