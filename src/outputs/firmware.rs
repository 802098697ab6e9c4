//! Firmware files named by the board, copied next to the image so
//! `start_vm.sh` is self-contained.

use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::board::paths::open_resolved;
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
        // Resolved by the planner; a symlink planted since is not followed.
        let mut from = open_resolved(source)
            .with_context(|| format!("opening firmware {}", source.display()))?;
        let mut to = File::create(dir.join(&name))
            .with_context(|| format!("creating {name} in {}", dir.display()))?;
        io::copy(&mut from, &mut to)
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
