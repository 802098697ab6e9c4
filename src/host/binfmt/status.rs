//! What binfmt_misc does for each architecture right now (`mkimg binfmt
//! status [--json]`), and the preflight check a build runs before its first
//! foreign chroot, whose errors carry the exact command that fixes them.
//!
//! Must not: write anything. Reads the entry files under the binfmt_misc
//! directory, the first few KiB of each interpreter and the binfmt.d files
//! (whether an entry survives a reboot); fast enough (well under a second)
//! to run before every build.

use std::path::{Path, PathBuf};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::{
    entry_name, is_mounted, is_static, list_entries, persist, BinfmtEntry, BinfmtError,
    INSTALL_QEMU,
};
use crate::arch::Arch;

/// What `status` found for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinfmtArchStatus {
    pub arch: Arch,
    /// The entry that runs this architecture's ELF binaries, if any.
    pub entry: Option<String>,
    pub enabled: bool,
    pub interpreter: Option<PathBuf>,
    pub flags: Option<String>,
    pub has_f: bool,
    pub interpreter_exists: bool,
    /// `None` when the interpreter is missing or not a readable ELF file.
    pub interpreter_static: Option<bool>,
    /// The binfmt.d file that registers the same entry again at boot
    /// (`persist::find_persistent`); `None`: lost on reboot.
    pub persistent: Option<PathBuf>,
}

/// binfmt_misc as a whole, for `mkimg binfmt status [--json]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BinfmtStatus {
    pub dir: PathBuf,
    /// `<dir>` holds `register` and `status`.
    pub mounted: bool,
    pub arches: Vec<BinfmtArchStatus>,
}

/// Why a build cannot chroot into a foreign root yet, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "binfmt_misc is not mounted at {dir}: run `sudo mount -t binfmt_misc binfmt_misc {dir}` \
         or `sudo mkimg binfmt register {arch}`"
    )]
    NotMounted { dir: String, arch: Arch },
    #[error(
        "no binfmt_misc entry runs {arch} binaries, so the {arch} chroot cannot start: \
         run `sudo mkimg binfmt register {arch}`"
    )]
    NoEntry { arch: Arch },
    #[error("binfmt_misc entry {entry} for {arch} is disabled: run `sudo mkimg binfmt register --force {arch}`")]
    Disabled { arch: Arch, entry: String },
    #[error(
        "run `sudo mkimg binfmt register --force {arch}` (entry {entry} has flags {flags}, \
         F missing: the interpreter would have to exist inside the chroot)"
    )]
    MissingF {
        arch: Arch,
        entry: String,
        flags: String,
    },
    #[error("binfmt_misc entry {entry} for {arch} names interpreter {interpreter}, which does not exist: {INSTALL_QEMU}")]
    InterpreterMissing {
        arch: Arch,
        entry: String,
        interpreter: String,
    },
    #[error(
        "binfmt_misc entry {entry} for {arch} uses {interpreter}, which is dynamically \
         linked and cannot start inside a chroot: {INSTALL_QEMU}, then \
         `sudo mkimg binfmt register --force {arch}`"
    )]
    InterpreterNotStatic {
        arch: Arch,
        entry: String,
        interpreter: String,
    },
    #[error("checking binfmt_misc for {arch}")]
    Status {
        arch: Arch,
        #[source]
        source: BinfmtError,
    },
}

impl BinfmtArchStatus {
    /// Whether a chroot into an `arch` root can exec its binaries right now.
    pub fn usable_in_chroot(&self) -> bool {
        self.entry.is_some()
            && self.enabled
            && self.has_f
            && self.interpreter_exists
            && self.interpreter_static == Some(true)
    }
}

impl Serialize for BinfmtArchStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("BinfmtArchStatus", 11)?;
        s.serialize_field("arch", &self.arch)?;
        s.serialize_field("entry", &self.entry)?;
        s.serialize_field("enabled", &self.enabled)?;
        s.serialize_field("interpreter", &self.interpreter)?;
        s.serialize_field("flags", &self.flags)?;
        s.serialize_field("has_f", &self.has_f)?;
        s.serialize_field("interpreter_exists", &self.interpreter_exists)?;
        s.serialize_field("interpreter_static", &self.interpreter_static)?;
        s.serialize_field("usable_in_chroot", &self.usable_in_chroot())?;
        s.serialize_field("persistent", &self.persistent)?;
        s.serialize_field("survives_reboot", &self.persistent.is_some())?;
        s.end()
    }
}

/// The entry that handles `arch`: ours by name if it matches, else the first
/// enabled match, else a disabled one (so status can say "disabled").
fn find_arch_entry(
    entries: &[(String, BinfmtEntry)],
    arch: Arch,
) -> Option<&(String, BinfmtEntry)> {
    let ours = entry_name(arch);
    let matching = || entries.iter().filter(|(_, e)| e.matches_arch(arch));
    matching()
        .find(|(n, e)| *n == ours && e.enabled)
        .or_else(|| matching().find(|(_, e)| e.enabled))
        .or_else(|| matching().next())
}

fn arch_status(
    arch: Arch,
    found: Option<&(String, BinfmtEntry)>,
    sysroot: &Path,
) -> BinfmtArchStatus {
    let Some((name, entry)) = found else {
        return BinfmtArchStatus {
            arch,
            entry: None,
            enabled: false,
            interpreter: None,
            flags: None,
            has_f: false,
            interpreter_exists: false,
            interpreter_static: None,
            persistent: None,
        };
    };
    BinfmtArchStatus {
        arch,
        entry: Some(name.clone()),
        enabled: entry.enabled,
        interpreter: Some(entry.interpreter.clone()),
        flags: Some(entry.flags.clone()),
        has_f: entry.has_flag('F'),
        interpreter_exists: entry.interpreter.exists(),
        interpreter_static: is_static(&entry.interpreter).ok(),
        persistent: persist::find_persistent(sysroot, name, entry),
    }
}

/// What binfmt_misc at `dir` does for each of `arches`, and whether the
/// binfmt.d files of this machine register it again at boot.
pub fn status(dir: &Path, arches: &[Arch]) -> Result<BinfmtStatus, BinfmtError> {
    status_in(dir, Path::new("/"), arches)
}

/// [`status`] with the binfmt.d files read under `sysroot` (tests).
pub fn status_in(dir: &Path, sysroot: &Path, arches: &[Arch]) -> Result<BinfmtStatus, BinfmtError> {
    let mounted = is_mounted(dir);
    let entries = if mounted {
        list_entries(dir)?
    } else {
        Vec::new()
    };
    Ok(BinfmtStatus {
        dir: dir.to_owned(),
        mounted,
        arches: arches
            .iter()
            .map(|&a| arch_status(a, find_arch_entry(&entries, a), sysroot))
            .collect(),
    })
}

/// Checks that a chroot into an `arch` root can run its binaries; each error
/// says the command that fixes it. Reads a few small files only.
pub fn preflight(dir: &Path, arch: Arch) -> Result<(), PreflightError> {
    let report = status(dir, &[arch]).map_err(|source| PreflightError::Status { arch, source })?;
    if !report.mounted {
        return Err(PreflightError::NotMounted {
            dir: dir.display().to_string(),
            arch,
        });
    }
    let s = &report.arches[0];
    let (Some(entry), Some(interpreter)) = (s.entry.clone(), s.interpreter.as_ref()) else {
        return Err(PreflightError::NoEntry { arch });
    };
    let interpreter = interpreter.display().to_string();
    if !s.enabled {
        Err(PreflightError::Disabled { arch, entry })
    } else if !s.has_f {
        let flags = s.flags.clone().unwrap_or_default();
        Err(PreflightError::MissingF { arch, entry, flags })
    } else if !s.interpreter_exists {
        Err(PreflightError::InterpreterMissing {
            arch,
            entry,
            interpreter,
        })
    } else if s.interpreter_static != Some(true) {
        Err(PreflightError::InterpreterNotStatic {
            arch,
            entry,
            interpreter,
        })
    } else {
        Ok(())
    }
}
