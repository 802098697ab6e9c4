//! `manifest.json`: what was built, from what, and the checksums of every
//! output — the record a user or CI compares between two builds.
//!
//! Flows in: the plan, SOURCE_DATE_EPOCH, and the outputs' sizes and SHA-256
//! (the build hashes the files; nothing here reads them). Flows out: pretty
//! JSON with a trailing newline. Pure: no I/O, no clock — the only time in
//! the manifest is SOURCE_DATE_EPOCH, so two builds of the same inputs give
//! the same bytes.
//!
//! Key order is the struct field order (serde_json writes struct fields in
//! declaration order), so the text is deterministic without sorting.
//! Absent values are `null`, never omitted: the schema is the same for
//! every board.

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::board::schema::TableKind;
use crate::plan::{Plan, PlannedFs};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub mkimg_version: String,
    pub board: ManifestBoard,
    pub seed: String,
    pub source_date_epoch: u64,
    pub layout: ManifestLayout,
    pub outputs: Vec<OutputFile>,
    pub rootfs: RootfsInput,
    /// How grub.cfg was made by the distro's grub-mkconfig (`--grub
    /// mkconfig`); null for every other boot configuration.
    pub grub_mkconfig: Option<ManifestMkconfig>,
}

/// Which grub-mkconfig ran, and over what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestMkconfig {
    /// The program in the rootfs, e.g. `/usr/sbin/grub-mkconfig`.
    pub program: String,
    /// `tree` (over the subtree captured during the rootfs pass, rootless)
    /// or `mount` (over the root filesystem on a loop device).
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestBoard {
    pub name: String,
    pub arch: Arch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLayout {
    pub table: TableKind,
    pub sector_size: u64,
    pub disk_size: u64,
    /// GPT disk GUID.
    pub disk_guid: Option<String>,
    /// MBR disk signature, `0x` and 8 hex digits.
    pub mbr_signature: Option<String>,
    pub partitions: Vec<ManifestPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPartition {
    pub number: u32,
    pub name: String,
    /// Bytes from the start of the disk.
    pub start: u64,
    pub size: u64,
    pub type_guid: Option<String>,
    /// MBR type byte, `0x` and 2 hex digits.
    pub mbr_type: Option<String>,
    /// GPT partition GUID.
    pub uuid: Option<String>,
    /// `vfat`, `ext4`, `raw` or `none`.
    pub filesystem: String,
    /// What fstab and the boot loader name it by (`UUID=`).
    pub fs_uuid: Option<String>,
    pub label: Option<String>,
    pub mount: Option<String>,
}

/// One file in the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Name relative to the output directory.
    pub file: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// The rootfs tarball the image was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsInput {
    /// File name (not the full path: the manifest must not depend on where
    /// the build ran); a directory's name for `--rootfs DIR`, "-" for stdin.
    pub file: String,
    /// Of the bytes read: the tarball as given, or for a directory the
    /// canonical tar stream mkimg generated of it (not of any file).
    pub sha256: String,
}

/// The manifest for `plan`. `outputs` are listed in the order given;
/// `grub_mkconfig` is null (the build sets it when grub-mkconfig ran).
pub fn manifest_from_plan(
    plan: &Plan,
    source_date_epoch: u64,
    outputs: Vec<OutputFile>,
    rootfs: RootfsInput,
) -> Manifest {
    let layout = &plan.layout;
    let partitions = layout
        .partitions
        .iter()
        .map(|p| ManifestPartition {
            number: p.number,
            name: p.name.clone(),
            start: p.start,
            size: p.size,
            type_guid: p.part_type.gpt.map(|g| g.to_string()),
            mbr_type: p.part_type.mbr.map(|t| format!("{t:#04x}")),
            uuid: p.uuid.map(|u| u.to_string()),
            filesystem: match p.filesystem {
                PlannedFs::Vfat { .. } => "vfat",
                PlannedFs::Ext4 { .. } => "ext4",
                PlannedFs::Raw { .. } => "raw",
                PlannedFs::None => "none",
            }
            .to_string(),
            fs_uuid: p.filesystem.fs_uuid_text(),
            label: p.filesystem.label().map(str::to_string),
            mount: p.mount.as_ref().map(|m| m.path.clone()),
        })
        .collect();
    Manifest {
        mkimg_version: env!("CARGO_PKG_VERSION").to_string(),
        board: ManifestBoard {
            name: plan.board.name.to_string(),
            arch: plan.board.arch,
        },
        seed: plan.seed.clone(),
        source_date_epoch,
        layout: ManifestLayout {
            table: layout.table,
            sector_size: layout.sector_size,
            disk_size: layout.disk_size,
            disk_guid: layout.gpt.as_ref().map(|g| g.disk_guid.to_string()),
            mbr_signature: layout.mbr_signature.map(|s| format!("{s:#010x}")),
            partitions,
        },
        outputs,
        rootfs,
        grub_mkconfig: None,
    }
}

/// Pretty JSON (two-space indent) with a trailing newline.
pub fn render_manifest(manifest: &Manifest) -> String {
    // Plain structs of strings and integers: serialization cannot fail.
    let mut text = serde_json::to_string_pretty(manifest).expect("manifest serializes");
    text.push('\n');
    text
}

/// The name of the manifest in an output directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The checksum file beside it: every other file of the output directory
/// in `sha256sum`'s format (manifest.json included).
pub const SHA256SUMS_FILE: &str = "SHA256SUMS";

/// The digest `SHA256SUMS` text lists for `name` (`sha256sum`'s lines:
/// 64 hex digits, two spaces or ` *`, the name), lower-cased; `None` when
/// the name is not listed or its line is not of that form. Lines with an
/// escaped name (a leading `\\`) never match: mkimg writes none.
pub fn listed_sha256(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (digest, rest) = line.split_at_checked(64)?;
        let listed = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))?;
        (listed == name && digest.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| digest.to_ascii_lowercase())
    })
}

/// Why a manifest.json found in an output directory is not one mkimg wrote.
#[derive(Debug, thiserror::Error)]
pub enum ListedFilesError {
    #[error("it is not a manifest.json mkimg wrote: {0}")]
    Json(#[from] serde_json::Error),
    #[error("it lists {0:?}, which is not a plain file name")]
    NotPlainName(String),
}

/// The files an existing manifest.json says its build made (`outputs[].file`),
/// each checked to be a plain file name (no `/`, not `.`/`..`/empty, not
/// manifest.json itself) — the only names mkimg may replace in an output
/// directory. Other keys are not checked: an older mkimg's manifest counts.
pub fn listed_files(text: &str) -> Result<Vec<String>, ListedFilesError> {
    #[derive(Deserialize)]
    struct Listed {
        outputs: Vec<ListedFile>,
    }
    #[derive(Deserialize)]
    struct ListedFile {
        file: String,
    }
    let listed: Listed = serde_json::from_str(text)?;
    listed
        .outputs
        .into_iter()
        .map(|o| {
            let plain = !o.file.is_empty()
                && o.file != "."
                && o.file != ".."
                && o.file != MANIFEST_FILE
                && !o.file.contains(['/', '\0']);
            if plain {
                Ok(o.file)
            } else {
                Err(ListedFilesError::NotPlainName(o.file))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
