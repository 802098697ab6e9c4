//! The outputs stage: what goes into the staging directory besides the disk
//! image — firmware, `start_vm.sh`, then `manifest.json` listing every file
//! with its size and SHA-256.
//!
//! Every digest is taken from the bytes as they are written (the firmware
//! through a hashing copy, the script from its text; the disk's come from
//! its sinks, see `disk::sink`), so no output is read back. Flows in: the
//! plan, the staging directory, the disk files' [`OutputFile`]s. Flows out:
//! the files, nothing published (that is `publish`'s job).
//! [`write_side_files`] does not need the disk, so the build runs it while
//! the disk is written; [`write_manifest`] comes last.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::digest::sha256_hex;
use crate::outputs::firmware::copy_firmware;
use crate::outputs::manifest::{
    manifest_from_plan, render_manifest, ManifestMkconfig, OutputFile, RootfsInput, MANIFEST_FILE,
    SHA256SUMS_FILE,
};
use crate::outputs::start_vm::{render_start_vm, start_vm_from_plan, ImageFormat};
use crate::plan::Plan;

/// The script's name in the output directory.
pub const START_VM_FILE: &str = "start_vm.sh";

/// Firmware copies and `start_vm.sh` (when the board has firmware and a
/// `[qemu]` section), written into `staging`; `vm_format` is the image
/// format start_vm.sh boots, None when no format QEMU opens directly
/// (qcow2, raw) was asked for: then there is no start_vm.sh.
pub fn write_side_files(
    plan: &Plan,
    staging: &Path,
    vm_format: Option<ImageFormat>,
) -> Result<Vec<OutputFile>> {
    let mut files = Vec::new();
    if let Some(firmware) = &plan.firmware {
        files.extend(copy_firmware(firmware, staging)?);
    }
    if let (Some(vm_format), true) = (vm_format, plan.qemu.is_some() && plan.firmware.is_some()) {
        let script = render_start_vm(&start_vm_from_plan(plan, vm_format)?)?;
        let path = staging.join(START_VM_FILE);
        fs::write(&path, &script).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
        files.push(OutputFile {
            file: START_VM_FILE.to_string(),
            size: script.len() as u64,
            sha256: sha256_hex(script.as_bytes()),
        });
    }
    Ok(files)
}

/// `manifest.json` in `staging`, listing `files` (every other file of the
/// output directory) by name, and which grub-mkconfig ran if one did; its
/// own entry for `SHA256SUMS`.
pub fn write_manifest(
    plan: &Plan,
    staging: &Path,
    source_date_epoch: u64,
    mut files: Vec<OutputFile>,
    rootfs: RootfsInput,
    grub_mkconfig: Option<ManifestMkconfig>,
) -> Result<OutputFile> {
    files.sort_by(|a, b| a.file.cmp(&b.file));
    let mut manifest = manifest_from_plan(plan, source_date_epoch, files, rootfs);
    manifest.grub_mkconfig = grub_mkconfig;
    let path = staging.join(MANIFEST_FILE);
    let text = render_manifest(&manifest);
    fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(OutputFile {
        file: MANIFEST_FILE.to_string(),
        size: text.len() as u64,
        sha256: sha256_hex(text.as_bytes()),
    })
}

/// `SHA256SUMS` in `staging`: every other file of the output directory, in
/// `sha256sum`'s format (`sha256sum -c SHA256SUMS` checks them), sorted by
/// name, from the digests taken while each file was written.
pub fn write_sha256sums(staging: &Path, files: &[OutputFile]) -> Result<()> {
    if let Some(f) = files.iter().find(|f| f.file.contains(['\n', '\r', '\\'])) {
        anyhow::bail!(
            "output file name {:?} cannot be listed in {SHA256SUMS_FILE} (a line break or backslash)",
            f.file
        );
    }
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.file))
        .collect();
    lines.sort_by(|a, b| a.get(66..).cmp(&b.get(66..)));
    lines.dedup();
    let path = staging.join(SHA256SUMS_FILE);
    fs::write(&path, lines.concat()).with_context(|| format!("writing {}", path.display()))
}
