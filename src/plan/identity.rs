//! Every identity in an image — partition GUIDs, the disk GUID, MBR disk
//! signature, filesystem UUIDs, vfat volume ids, ext4 hash seeds — either comes
//! from the board file or is derived here from `(seed, board, purpose)`.
//!
//! This is the only place mkimg makes identities, so two builds with the same
//! seed are byte-identical and different boards never collide. Derivation:
//! SHA-256 of `"mkimg-identity-v1\0" seed "\0" board "\0" purpose`, the first 16
//! bytes as an RFC 9562 version-8 (custom) UUID. Pure: no clock, no RNG.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Seed used when the user gives none (`--seed`).
pub const DEFAULT_SEED: &str = "mkimg";

/// Derives identities for one board from one seed.
#[derive(Debug, Clone)]
pub struct IdentitySource {
    seed: String,
    board: String,
}

impl IdentitySource {
    pub fn new(seed: &str, board: &str) -> Self {
        IdentitySource {
            seed: seed.to_string(),
            board: board.to_string(),
        }
    }

    fn digest(&self, purpose: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in ["mkimg-identity-v1", &self.seed, &self.board, purpose] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        hasher.finalize().into()
    }

    /// A version-8 UUID for `purpose`, e.g. `"partition:rootfs"`.
    pub fn uuid(&self, purpose: &str) -> Uuid {
        let digest = self.digest(purpose);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// A non-zero 32-bit value (MBR disk signature, vfat volume id).
    pub fn u32(&self, purpose: &str) -> u32 {
        let digest = self.digest(purpose);
        let value = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        if value == 0 {
            1
        } else {
            value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdentitySource;

    #[test]
    fn same_inputs_same_identity() {
        let a = IdentitySource::new("s", "qemu-riscv64");
        let b = IdentitySource::new("s", "qemu-riscv64");
        assert_eq!(a.uuid("partition:esp"), b.uuid("partition:esp"));
        assert_eq!(a.u32("mbr"), b.u32("mbr"));
    }

    #[test]
    fn any_input_changes_identity() {
        let base = IdentitySource::new("s", "qemu-riscv64").uuid("partition:esp");
        assert_ne!(
            base,
            IdentitySource::new("t", "qemu-riscv64").uuid("partition:esp")
        );
        assert_ne!(
            base,
            IdentitySource::new("s", "qemu-aarch64").uuid("partition:esp")
        );
        assert_ne!(
            base,
            IdentitySource::new("s", "qemu-riscv64").uuid("partition:rootfs")
        );
    }

    #[test]
    fn uuid_is_version_8_rfc_variant() {
        let id = IdentitySource::new("s", "b").uuid("x");
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
    }
}
