//! Firmware files named by the board, copied next to the image so
//! `start_vm.sh` is self-contained. Each copy is hashed as it is written
//! (for manifest.json), never read back.

use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::board::paths::open_resolved;
use crate::digest::HashingWriter;
use crate::outputs::manifest::OutputFile;
use crate::plan::FirmwarePlan;

/// Copy the firmware code (and vars template) into `dir`; returns the
/// files as copied (code first), with their sizes and SHA-256.
pub fn copy_firmware(firmware: &FirmwarePlan, dir: &Path) -> Result<Vec<OutputFile>> {
    let mut copied = Vec::new();
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
        let to = File::create(dir.join(&name))
            .with_context(|| format!("creating {name} in {}", dir.display()))?;
        let mut to = HashingWriter::new(to);
        io::copy(&mut from, &mut to)
            .with_context(|| format!("copying firmware {}", source.display()))?;
        let (_, size, sha256) = to.finish();
        copied.push(OutputFile {
            file: name,
            size,
            sha256,
        });
    }
    Ok(copied)
}
