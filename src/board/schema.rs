//! The board file as the user wrote it: serde structs mirroring
//! `boards/<name>/board.toml` one to one.
//!
//! Nothing here is resolved or validated beyond types: defaults, per-arch
//! partition types, offsets and identities are the planner's job
//! (`crate::plan`). Every struct denies unknown keys so a typo is an error
//! that cites `file:line:column` instead of a silently ignored setting.
//! The values the planner may refuse, and the partition, blob, `[boot]`
//! and `[firmware]` tables, are [`Spanned`], so a plan problem cites the
//! line too (`Board::locate`).

use serde::Deserialize;
use toml::Spanned;

use crate::arch::Arch;
use crate::board::names::{Hostname, OneLine, PlainName};
use crate::board::size::{PartSize, Size};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardFile {
    pub board: BoardSection,
    pub disk: DiskSection,
    /// Spanned: the planner cites a partition's `[[partition]]` header.
    #[serde(default, rename = "partition")]
    pub partitions: Vec<Spanned<PartitionSection>>,
    #[serde(default, rename = "blob")]
    pub blobs: Vec<Spanned<BlobSection>>,
    #[serde(default)]
    pub boot: Option<Spanned<BootSection>>,
    /// Files copied from the rootfs into the ESP (e.g. the distro's grub EFI).
    #[serde(default, rename = "efi_file")]
    pub efi_files: Vec<EfiFileSection>,
    #[serde(default)]
    pub firmware: Option<Spanned<FirmwareSection>>,
    #[serde(default)]
    pub qemu: Option<QemuSection>,
    #[serde(default)]
    pub edits: Option<EditsSection>,
    /// Default rootfs recipe for `mkimg rootfs --board` and `mkimg build`.
    #[serde(default)]
    pub rootfs: Option<crate::board::recipe::RootfsRecipe>,
}

/// How the image boots.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSection {
    #[serde(default)]
    pub loader: Option<Spanned<BootLoader>>,
    /// How grub.cfg is made: rendered natively, or by the distro's grub-mkconfig.
    #[serde(default)]
    pub grub: Option<Spanned<GrubMode>>,
    /// Where the EFI image reads grub.cfg, relative to the ESP root.
    #[serde(default)]
    pub grub_cfg: Option<Spanned<String>>,
    /// grub-mkconfig program in the rootfs (default: whichever exists).
    #[serde(default)]
    pub mkconfig: Option<String>,
    /// Kernel arguments the board always needs, e.g. `console=ttyS0`.
    #[serde(default)]
    pub cmdline: Option<Spanned<String>>,
    /// extlinux.conf `fdtdir`: a rootfs path, `{version}` replaced by each
    /// kernel's version (e.g. `/boot/dtbs/{version}/`). Absent: no fdtdir
    /// line, U-Boot passes its own device tree.
    #[serde(default)]
    pub fdtdir: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BootLoader {
    /// grub.cfg on the ESP (UEFI).
    Grub,
    /// extlinux/extlinux.conf on the partition holding /boot (U-Boot distro boot).
    Extlinux,
    /// No boot loader configuration.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GrubMode {
    /// grub.cfg from templates/, no emulation, no root.
    Template,
    /// The distro's grub-mkconfig in a binfmt chroot (needs root).
    Mkconfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfiFileSection {
    /// Absolute path inside the rootfs.
    pub from: String,
    /// Path inside the ESP.
    pub to: Spanned<String>,
}

/// Firmware files copied next to the image for `start_vm.sh`: UEFI on
/// pflash (`code` + `vars`), or a boot loader QEMU loads with `-bios`
/// (e.g. U-Boot). Exactly one of `code` and `bios`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareSection {
    /// Host path of the read-only code image (pflash 0).
    #[serde(default)]
    pub code: Option<Spanned<String>>,
    /// Host path of an image for `-bios`, e.g. `/usr/lib/u-boot/qemu_arm64/u-boot.bin`.
    #[serde(default)]
    pub bios: Option<Spanned<String>>,
    /// Host path of the variable store template (pflash 1).
    #[serde(default)]
    pub vars: Option<Spanned<String>>,
    /// Where the files usually come from, for the error when they are missing.
    #[serde(default)]
    pub package: Option<String>,
}

/// The virtual machine `start_vm.sh` starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSection {
    pub machine: String,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub smp: Option<u32>,
    /// Host port forwarded to the guest's ssh port.
    #[serde(default)]
    pub ssh_port: Option<u16>,
    /// Extra QEMU arguments, one per element.
    #[serde(default)]
    pub extra: Vec<String>,
}

/// Edits applied to the rootfs stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditsSection {
    /// Paths removed from the rootfs (default: /.dockerenv, /etc/resolv.conf).
    #[serde(default)]
    pub remove: Option<Vec<String>>,
    /// Directory next to board.toml whose files are added to the rootfs.
    #[serde(default)]
    pub overlay: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSection {
    pub name: PlainName,
    pub description: OneLine,
    pub arch: Arch,
    pub hostname: Hostname,
    /// Output file stem: `<image>.qcow2`, `<image>.raw`.
    pub image: PlainName,
    /// Serial console device, e.g. `ttyS0`, `ttyAMA0`, `ttyS2,1500000`.
    #[serde(default)]
    pub console: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Gpt,
    Mbr,
    Hybrid,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSection {
    pub table: TableKind,
    #[serde(default)]
    pub sector_size: Option<Spanned<u64>>,
    pub size: Spanned<Size>,
    #[serde(default)]
    pub alignment: Option<Spanned<Size>>,
    /// GPT disk GUID; derived from the seed when absent.
    #[serde(default)]
    pub guid: Option<Spanned<String>>,
    /// MBR disk signature, e.g. `"0x12345678"`; derived when absent.
    #[serde(default)]
    pub mbr_signature: Option<Spanned<String>>,
    /// Where the primary GPT entry array starts (default: LBA 2).
    #[serde(default)]
    pub gpt_entries_offset: Option<Spanned<Size>>,
    /// Number of GPT entries (default 128).
    #[serde(default)]
    pub gpt_entries: Option<Spanned<u32>>,
    /// MBR slot (1-4) of the extended partition: partitions from this one
    /// on are logical (5, 6, …). 0 or absent: slot 4 when more than four
    /// partitions, else none (genimage's `extended-partition`).
    #[serde(default)]
    pub extended_partition: Option<Spanned<u32>>,
    /// Write the backup GPT (header and entry array at the end of the
    /// disk). `false` (genimage's `gpt-no-backup`): the primary header
    /// names itself as the alternate and the backup's sectors stay
    /// reserved but unwritten. Default `true`.
    #[serde(default)]
    pub gpt_backup: Option<Spanned<bool>>,
    /// The raw image file is `disk.size` long (sparse). `false`
    /// (genimage's default, without `fill = true`): the file ends at the
    /// last byte mkimg writes. Default `true`.
    #[serde(default)]
    pub fill: Option<Spanned<bool>>,
    /// MBR: the extended partition's own entry is marked active (0x80),
    /// as genimage 16 does when the first logical partition is
    /// `bootable`. Default `false`; needs an extended partition.
    #[serde(default)]
    pub extended_bootable: Option<Spanned<bool>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSection {
    pub name: String,
    /// `esp`, `linux`, `linux-root`, `swap`, `xbootldr`, `fat32`, a GUID, or an
    /// MBR type byte such as `"0x83"`.
    #[serde(rename = "type")]
    pub type_: Spanned<String>,
    #[serde(default)]
    pub offset: Option<Spanned<Size>>,
    pub size: Spanned<PartSize>,
    #[serde(default)]
    pub alignment: Option<Spanned<Size>>,
    #[serde(default)]
    pub filesystem: Option<FilesystemKind>,
    /// Raw contents for `filesystem = "raw"`, relative to the board file.
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    #[serde(default)]
    pub label: Option<Spanned<String>>,
    /// Filesystem UUID (ext4) or volume id such as `"0x00455350"` (vfat).
    #[serde(default)]
    pub fs_uuid: Option<Spanned<String>>,
    /// GPT partition GUID; derived from the seed when absent.
    #[serde(default)]
    pub uuid: Option<Spanned<String>>,
    #[serde(default)]
    pub mount: Option<Spanned<String>>,
    #[serde(default)]
    pub mount_options: Option<Spanned<String>>,
    #[serde(default)]
    pub flags: Vec<PartitionFlag>,
    /// `false`: the partition's bytes are placed like a blob (explicit
    /// `offset`, raw `source` or nothing) but it has no table entry and
    /// no number (genimage's `in-partition-table = false`). Default `true`.
    #[serde(default)]
    pub in_partition_table: Option<Spanned<bool>>,
    /// MBR: a partition after the logical ones that is a primary entry
    /// (MBR slot after the extended one) instead of a logical partition
    /// (genimage ≥ 17's `forced-primary`).
    #[serde(default)]
    pub forced_primary: Option<Spanned<bool>>,
    /// Byte ranges of the contents (relative to the partition's start)
    /// that hold nothing, so a partition table may lie there; only with
    /// `in_partition_table = false`.
    #[serde(default)]
    pub holes: Vec<Spanned<Hole>>,
    /// `false`: the whole partition is written when flashed, zeros too —
    /// the `.bmap` maps it and the `.simg` fills it — so whatever the card
    /// held there before is wiped (a U-Boot environment). Default `true`:
    /// only its data is. genimage's `sparse`.
    #[serde(default)]
    pub sparse: Option<bool>,
}

impl PartitionSection {
    /// Whether the partition has a table entry (`in_partition_table`,
    /// default true).
    pub fn in_table(&self) -> bool {
        self.in_partition_table
            .as_ref()
            .is_none_or(|b| *b.get_ref())
    }

    /// `forced_primary = true`.
    pub fn forced_primary(&self) -> bool {
        self.forced_primary.as_ref().is_some_and(|b| *b.get_ref())
    }
}

/// `[start, end)` bytes of a blob or non-table partition, relative to its
/// offset, that hold no data (genimage's `holes = {"(440;512)"}`): a table
/// structure may lie there and the blob's own bytes there are not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hole {
    pub start: Size,
    pub end: Size,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesystemKind {
    Vfat,
    Ext4,
    Raw,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionFlag {
    /// GPT attribute bit 2; MBR active flag (0x80).
    LegacyBiosBootable,
    /// GPT attribute bit 0.
    RequiredPartition,
    /// Discoverable Partitions Specification bit 60.
    ReadOnly,
    /// Discoverable Partitions Specification bit 63.
    NoAutomount,
    /// GPT attribute bit 62 (genimage's `hidden`; nothing in an MBR).
    Hidden,
}

/// Raw bytes at a fixed disk offset, outside any partition (boot-ROM
/// loaders such as Rockchip's idbloader.img or Allwinner's boot0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobSection {
    pub name: String,
    /// A file relative to the board file, or `rootfs:/path` inside the
    /// rootfs (read during the rootfs pass). `--blob NAME=PATH` overrides it.
    pub source: Spanned<String>,
    pub offset: Spanned<Size>,
    /// Room reserved for the blob: its region in the plan. Required for
    /// `rootfs:` sources (their size is known only at build time); the real
    /// file must fit. Absent: the file's own size.
    #[serde(default)]
    pub size: Option<Spanned<Size>>,
    /// Where the file usually comes from, for the error when it is missing.
    #[serde(default)]
    pub hint: Option<String>,
    /// Bytes the file must hold at `magic_offset`: ASCII (`"eGON.BT0"`) or
    /// hex (`"0xd00dfeed"`). Catches a wrong file before it is written.
    #[serde(default)]
    pub magic: Option<Spanned<String>>,
    #[serde(default)]
    pub magic_offset: Option<Spanned<u64>>,
    /// Ranges of the file that hold nothing, where a table may lie.
    #[serde(default)]
    pub holes: Vec<Spanned<Hole>>,
}
