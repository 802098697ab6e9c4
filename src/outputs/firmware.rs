//! Firmware files named by the board, copied next to the image so
//! `start_vm.sh` is self-contained.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::plan::FirmwarePlan;

/// Copy the firmware code (and vars template) into `dir`; returns the file
/// names as copied.
pub fn copy_firmware(firmware: &FirmwarePlan, dir: &Path) -> Result<(String, Option<String>)> {
    let mut names = Vec::new();
    for source in std::iter::once(&firmware.code).chain(firmware.vars.as_ref()) {
        if !source.is_file() {
            bail!(
                "firmware {} not found; it comes from {} (scripts/setup-debian.sh installs it)",
                source.display(),
                firmware
                    .package
                    .as_deref()
                    .unwrap_or("the board's firmware package")
            );
        }
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("firmware path has no file name")?;
        fs::copy(source, dir.join(&name))
            .with_context(|| format!("copying firmware {}", source.display()))?;
        names.push(name);
    }
    let vars = if firmware.vars.is_some() {
        names.pop()
    } else {
        None
    };
    Ok((names.remove(0), vars))
}
