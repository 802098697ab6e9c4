#![deny(clippy::arithmetic_side_effects)]
//! What will be built: a board resolved into a [`Plan`] — absolute byte
//! offsets and sizes of every region, every identity, every filesystem's
//! parameters — validated as a whole.
//!
//! Flows in: a [`Board`](crate::board::Board) (as typed, with the command
//! line's `--blob`, `--bootloader` and `--grub` on it) and a seed. Flows
//! out: a `Plan` that later stages take by reference and never
//! second-guess, or every problem at once, each citing the
//! `board.toml:line:column` of the value to change.
//! The only I/O here is resolving the paths a board names and reading the
//! size of blob files next to it; after `plan_board` returns nothing reads
//! the board again.
//!
//! `resolve` is the chain; each step has its file: `blobs`, `geometry`
//! (`[disk]`), `partitions`, `checks` (the placed layout), `boot`,
//! `settings` (firmware, QEMU, edits), with `fields` (ids and fstab text),
//! `bounds` (values within the disk, checked arithmetic), `layout`,
//! `identity` and `parttype` beside them.

pub mod arith;
mod blobs;
mod boot;
pub mod bounds;
mod checks;
mod fields;
pub mod from_genimage;
mod geometry;
pub mod identity;
pub mod layout;
mod partitions;
pub mod parttype;
mod resolve;
mod settings;

use std::path::PathBuf;

use serde::Serialize;
use uuid::Uuid;

use crate::arch::Arch;
use crate::board::names::{Hostname, OneLine, PlainName};
use crate::board::schema::{BootLoader, GrubMode, PartitionFlag, TableKind};

pub use layout::{Layout, Problem, Region, RegionKind, Severity};
pub use parttype::PartType;
pub use resolve::{plan_board, PlanError};

/// A fully resolved build plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub board: BoardInfo,
    pub seed: String,
    pub layout: Layout,
    pub boot: BootPlan,
    pub firmware: Option<FirmwarePlan>,
    pub qemu: Option<QemuPlan>,
    pub edits: EditsPlan,
    /// Non-fatal findings (e.g. vfat on a non-FAT partition type).
    pub warnings: Vec<String>,
}

/// How the image boots.
#[derive(Debug, Clone, Serialize)]
pub struct BootPlan {
    pub loader: BootLoader,
    pub grub: GrubMode,
    /// grub.cfg path inside the ESP, when the board sets it; else it goes
    /// where the detected grub binary's prefix says (`bootloader::detect`).
    pub grub_cfg: Option<String>,
    pub mkconfig: Option<String>,
    /// Board kernel arguments (console…), appended to the distro's.
    pub cmdline: String,
    /// Rootfs path → ESP path; empty: the detected grub binary.
    pub efi_files: Vec<(String, String)>,
    /// extlinux.conf device tree directory (a rootfs path with `{version}`).
    pub fdtdir: Option<String>,
}

/// Firmware for `start_vm.sh`: `code` is the pflash code image, or the
/// `-bios` image when `load` is [`FirmwareLoad::Bios`].
#[derive(Debug, Clone, Serialize)]
pub struct FirmwarePlan {
    pub code: PathBuf,
    pub vars: Option<PathBuf>,
    pub package: Option<String>,
    pub load: FirmwareLoad,
}

/// How QEMU loads the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareLoad {
    /// UEFI code (and variable store) on pflash.
    Pflash,
    /// `-bios FILE` (U-Boot on `virt`).
    Bios,
}

#[derive(Debug, Clone, Serialize)]
pub struct QemuPlan {
    pub machine: String,
    pub cpu: Option<String>,
    pub memory: String,
    pub smp: u32,
    pub ssh_port: u16,
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditsPlan {
    pub remove: Vec<String>,
    pub overlay: Option<PathBuf>,
}

/// The board identity carried into outputs.
#[derive(Debug, Clone, Serialize)]
pub struct BoardInfo {
    pub name: PlainName,
    pub description: OneLine,
    pub arch: Arch,
    pub hostname: Hostname,
    pub image: PlainName,
    pub console: Option<String>,
    /// Directory of the board file; relative paths resolved against it.
    pub dir: PathBuf,
}

/// GPT geometry: where the headers and entry arrays live.
#[derive(Debug, Clone, Serialize)]
pub struct GptPlacement {
    pub disk_guid: Uuid,
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_array_sectors: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub backup_entries_lba: u64,
    pub backup_header_lba: u64,
    /// Whether the backup header and array are written (`disk.gpt_backup`);
    /// without them their sectors stay reserved and the primary header
    /// names itself as the alternate, as genimage's `gpt-no-backup` does.
    #[serde(skip_serializing_if = "is_true")]
    pub backup: bool,
}

fn is_true(value: &bool) -> bool {
    *value
}

/// The MBR extended partition: the container of the logical partitions,
/// from the first EBR to the end of the disk (as genimage places it).
#[derive(Debug, Clone, Serialize)]
pub struct ExtendedPlan {
    /// MBR slot (1-4) of its entry.
    pub slot: u32,
    pub start: u64,
    pub end: u64,
    /// Its MBR entry is active (`disk.extended_bootable`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bootable: bool,
}

/// A partition with its final position and identities.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPartition {
    /// 1-based table index.
    pub number: u32,
    pub name: String,
    #[serde(rename = "type")]
    pub part_type: PartType,
    /// Byte offset from the start of the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// GPT partition GUID (absent on MBR-only disks).
    pub uuid: Option<Uuid>,
    /// GPT attribute bits.
    pub attributes: u64,
    pub flags: Vec<PartitionFlag>,
    pub filesystem: PlannedFs,
    pub mount: Option<MountSpec>,
    /// Byte offset of the EBR that describes this logical partition (MBR
    /// extended partitions only; `number` is then 5 or more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ebr: Option<u64>,
    /// `sparse = false`: written whole, zeros too, when flashed (the
    /// block map maps it, the sparse image fills it).
    #[serde(skip_serializing_if = "is_true")]
    pub sparse: bool,
}

impl PlannedPartition {
    pub fn end(&self) -> u64 {
        arith::add(self.start, self.size)
    }
}

/// What a partition's contents are.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PlannedFs {
    Vfat {
        label: Option<String>,
        volume_id: u32,
    },
    Ext4 {
        label: Option<String>,
        uuid: Uuid,
        hash_seed: Uuid,
    },
    Raw {
        source: PathBuf,
    },
    None,
}

impl PlannedFs {
    pub fn label(&self) -> Option<&str> {
        match self {
            PlannedFs::Vfat { label, .. } | PlannedFs::Ext4 { label, .. } => label.as_deref(),
            PlannedFs::Raw { .. } | PlannedFs::None => None,
        }
    }

    /// The identity fstab and boot loaders use: `UUID=<this>`.
    pub fn fs_uuid_text(&self) -> Option<String> {
        match self {
            PlannedFs::Vfat { volume_id, .. } => Some(format!(
                "{:04X}-{:04X}",
                volume_id >> 16,
                volume_id & 0xffff
            )),
            PlannedFs::Ext4 { uuid, .. } => Some(uuid.to_string()),
            PlannedFs::Raw { .. } | PlannedFs::None => None,
        }
    }
}

/// Where a partition is mounted in the running system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MountSpec {
    pub path: String,
    pub options: String,
    /// fsck pass number for fstab: 1 for `/`, 2 for the rest, 0 for vfat-less raw.
    pub pass: u8,
}

/// A raw blob written outside the partition table.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedBlob {
    pub name: String,
    pub source: BlobSource,
    pub offset: u64,
    /// Its region: the room the board reserves (`size`), else the file's size.
    pub size: u64,
    /// Where the file usually comes from (for the missing-file error).
    pub hint: Option<String>,
    /// Bytes the file must hold at an offset: (offset, bytes).
    pub magic: Option<(u64, Vec<u8>)>,
    /// `[start, end)` ranges of the blob, relative to `offset`, that hold
    /// nothing: a table may lie there, and the file's bytes there are not
    /// written. Sorted, disjoint, inside `[0, size)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<(u64, u64)>,
}

/// Where a blob's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobSource {
    /// A host file (next to the board, or given with `--blob`).
    File(PathBuf),
    /// A file inside the rootfs, read during the rootfs pass.
    Rootfs(String),
    /// Nothing: a region kept free (a `[[partition]]` with
    /// `in_partition_table = false` and no contents).
    Reserved,
}

impl std::fmt::Display for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobSource::File(path) => write!(f, "{}", path.display()),
            BlobSource::Rootfs(path) => write!(f, "rootfs:{path}"),
            BlobSource::Reserved => write!(f, "reserved, nothing written"),
        }
    }
}

impl Plan {
    pub fn table(&self) -> TableKind {
        self.layout.table
    }

    /// The partition mounted at `/`.
    pub fn root_partition(&self) -> Option<&PlannedPartition> {
        self.layout
            .partitions
            .iter()
            .find(|p| p.mount.as_ref().is_some_and(|m| m.path == "/"))
    }

    /// The partition whose mount point holds `path` (deepest mount wins).
    pub fn partition_holding(&self, path: &str) -> Option<&PlannedPartition> {
        self.layout
            .partitions
            .iter()
            .filter_map(|p| p.mount.as_ref().map(|m| (p, m.path.as_str())))
            .filter(|(_, mount)| {
                *mount == "/" || path == *mount || path.starts_with(&format!("{mount}/"))
            })
            .max_by_key(|(_, mount)| mount.len())
            .map(|(p, _)| p)
    }

    /// The partition the EFI files go to: the ESP by type, else what is
    /// mounted at /boot/efi.
    pub fn esp_partition(&self) -> Option<&PlannedPartition> {
        self.layout
            .partitions
            .iter()
            .find(|p| p.part_type.gpt == Some(parttype::ESP))
            .or_else(|| {
                self.partition_holding("/boot/efi")
                    .filter(|p| p.mount.as_ref().is_some_and(|m| m.path == "/boot/efi"))
            })
    }
}

#[cfg(test)]
mod tests;
