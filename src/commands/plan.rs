//! `mkimg plan`: resolve a board (with `build`'s --blob, --grub and
//! --bootloader) and print its layout and how it boots; with `--rootfs`,
//! also what the rootfs says about booting it (`bootloader::detect`).

use anyhow::{Context, Result};

use crate::board::schema::{BootLoader, GrubMode};
use crate::board::schema::{PartitionFlag, TableKind};
use crate::board::size::format_bytes;
use crate::bootloader::detect::{self, RootfsBoot};
use crate::bootloader::esp::esp_boot;
use crate::cli::PlanArgs;
use crate::commands::build::check_rootfs_arg;
use crate::commands::table::{render_rows, Row};
use crate::filesystems::vfat::VfatEntry;
use crate::plan::{plan_board, BootPlan, Plan, PlannedFs, RegionKind};
use crate::rootfs::dir_source::OwnerMap;
use crate::rootfs::ingest::capture_rootfs;

pub fn run(args: &PlanArgs) -> Result<()> {
    let board_spec = args
        .board
        .as_deref()
        .context("give --board NAME or --genimage FILE.cfg")?;
    let board = super::load_board_with(board_spec, &args.overrides)?;
    let plan = plan_board(&board, &args.seed)
        .with_context(|| format!("planning board {}", board.path.display()))?;
    for warning in &plan.warnings {
        eprintln!("mkimg: warning: {warning}");
    }
    let detected = match &args.rootfs {
        Some(path) => Some(detect_in(&plan, path)?),
        None => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&plan)?;
        if let (Some(detected), Some(object)) = (&detected, value.as_object_mut()) {
            object.insert("detected".to_string(), serde_json::to_value(detected)?);
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", render_plan(&plan));
        if let Some(detected) = &detected {
            print!("{}", render_detected(detected));
        }
    }
    Ok(())
}

/// What `--rootfs` holds for booting, and what the build would put in the
/// ESP (or why it would fail).
#[derive(Debug, serde::Serialize)]
pub struct Detected {
    #[serde(flatten)]
    pub boot: RootfsBoot,
    /// The ESP's boot files and grub.cfg path, as the build will choose.
    pub esp: Result<EspSummary, String>,
}

#[derive(Debug, serde::Serialize)]
pub struct EspSummary {
    pub files: Vec<String>,
    pub grub_cfg: Option<String>,
    pub summary: String,
}

fn detect_in(plan: &Plan, path: &std::path::Path) -> Result<Detected> {
    // Owners do not matter here: nothing is written.
    let source = check_rootfs_arg(path, OwnerMap::Root)?;
    let captures = capture_rootfs(plan, &source, detect::wanted(plan))?;
    let boot = detect::detect(plan, &captures);
    let esp = esp_boot(plan, &boot, &captures)
        .map(|esp| EspSummary {
            files: esp
                .files
                .iter()
                .map(|f| match f {
                    VfatEntry::File { path, .. } => path.clone(),
                    other => format!("{other:?}"),
                })
                .collect(),
            grub_cfg: esp.grub_cfg,
            summary: esp.summary,
        })
        .map_err(|e| format!("{e:#}"));
    Ok(Detected { boot, esp })
}

/// The `detected:` block under the plan.
fn render_detected(detected: &Detected) -> String {
    let mut out = String::from("\ndetected in the rootfs:\n");
    for line in detect::describe(&detected.boot) {
        out.push_str(&format!("  {line}\n"));
    }
    match &detected.esp {
        Ok(esp) => out.push_str(&format!("  ESP: {}\n", esp.summary)),
        Err(why) => out.push_str(&format!("  ESP: the build would fail: {why}\n")),
    }
    out
}

/// The human-readable plan: a header and the region table.
pub fn render_plan(plan: &Plan) -> String {
    let layout = &plan.layout;
    let mut out = format!(
        "board {} ({}): {}\n",
        plan.board.name, plan.board.arch, plan.board.description
    );
    out.push_str(&render_disk(plan));
    out.push_str(&render_boot(&plan.boot));
    out.push('\n');
    out.push_str(&render_rows(&plan_rows(plan), layout.sector_size));
    out
}

/// The disk lines of a plan: table, size, GPT and MBR identities.
pub fn render_disk(plan: &Plan) -> String {
    let layout = &plan.layout;
    let mut out = String::new();
    out.push_str(&format!(
        "disk: {} table, {} ({} bytes, {} sectors of {} bytes), alignment {}\n",
        serde_json::to_value(layout.table)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        format_bytes(layout.disk_size),
        layout.disk_size,
        layout.disk_sectors(),
        layout.sector_size,
        format_bytes(layout.alignment)
    ));
    if let Some(gpt) = &layout.gpt {
        out.push_str(&format!(
            "gpt: disk GUID {}, {} entries at LBA {}, usable LBA {}..{}\n",
            gpt.disk_guid,
            gpt.entry_count,
            gpt.entries_lba,
            gpt.first_usable_lba,
            gpt.last_usable_lba
        ));
    }
    if let Some(sig) = layout.mbr_signature {
        out.push_str(&format!("mbr: disk signature {sig:#010x}\n"));
    }
    out
}

/// The boot line: the loader, and for GRUB how grub.cfg is made and where.
fn render_boot(boot: &BootPlan) -> String {
    let mut out = match boot.loader {
        BootLoader::Grub => {
            let mode = match boot.grub {
                GrubMode::Template => "template",
                GrubMode::Mkconfig => "mkconfig",
            };
            match &boot.grub_cfg {
                Some(cfg) => format!(
                    "boot: grub, grub.cfg by {mode} at ESP:/{}",
                    cfg.trim_start_matches('/')
                ),
                None => format!(
                    "boot: grub, grub.cfg by {mode} where the rootfs's grub looks \
                     (detected; `mkimg plan --rootfs F` shows it)"
                ),
            }
        }
        BootLoader::Extlinux => "boot: extlinux (extlinux/extlinux.conf)".to_string(),
        BootLoader::None => "boot: none (no boot loader configuration)".to_string(),
    };
    if !boot.cmdline.is_empty() {
        out.push_str(&format!(", kernel arguments {:?}", boot.cmdline));
    }
    out.push('\n');
    out
}

/// One row per region of the plan.
pub fn plan_rows(plan: &Plan) -> Vec<Row> {
    let layout = &plan.layout;
    layout
        .regions()
        .into_iter()
        .map(|region| {
            let mut row = Row {
                region: region.name.clone(),
                start: region.start,
                end: region.end,
                size: region.end - region.start,
                type_: String::new(),
                uuid: String::new(),
                label: String::new(),
            };
            match region.kind {
                RegionKind::Partition => {
                    if let Some(part) = layout.partitions.iter().find(|p| {
                        p.start == region.start
                            && format!("partition {} '{}'", p.number, p.name) == region.name
                    }) {
                        row.type_ = describe_type(part, layout.table);
                        row.uuid = part.uuid.map(|u| u.to_string()).unwrap_or_default();
                        let fs = part.filesystem.fs_uuid_text().unwrap_or_default();
                        let kind = match &part.filesystem {
                            PlannedFs::Vfat { .. } => "vfat",
                            PlannedFs::Ext4 { .. } => "ext4",
                            PlannedFs::Raw { .. } => "raw",
                            PlannedFs::None => "",
                        };
                        if !kind.is_empty() {
                            row.uuid = if row.uuid.is_empty() {
                                format!("{kind} {fs}")
                            } else {
                                format!("{} / {kind} {fs}", row.uuid)
                            };
                        }
                        row.label = part.filesystem.label().unwrap_or_default().to_string();
                        if let Some(mount) = &part.mount {
                            row.label = format!("{} {}", row.label, mount.path).trim().to_string();
                        }
                    }
                }
                RegionKind::Blob => {
                    row.type_ = "raw blob".to_string();
                    if let Some(blob) = layout.blobs.iter().find(|b| {
                        b.offset == region.start && format!("blob '{}'", b.name) == region.name
                    }) {
                        row.label = match &blob.source {
                            crate::plan::BlobSource::File(path) => path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                            source => source.to_string(),
                        };
                    }
                }
                RegionKind::Extended => {
                    row.type_ = format!("mbr {:#04x}", crate::disk::mbr::ebr::TYPE_EXTENDED);
                }
                _ => row.type_ = "table".to_string(),
            }
            row
        })
        .collect()
}

fn describe_type(part: &crate::plan::PlannedPartition, table: TableKind) -> String {
    let mut text = match (table, part.part_type.gpt, part.part_type.mbr) {
        (TableKind::Mbr, _, Some(byte)) | (_, None, Some(byte)) => {
            let active = part.flags.contains(&PartitionFlag::LegacyBiosBootable);
            format!("mbr {byte:#04x}{}", if active { " active" } else { "" })
        }
        (_, Some(guid), _) => crate::plan::parttype::describe_gpt_type(guid),
        (_, None, None) => String::new(),
    };
    if table != TableKind::Mbr && part.attributes != 0 {
        text.push_str(&format!(" attrs {:#x}", part.attributes));
    }
    text
}
