//! binfmt_misc registrations survive a reboot only when a binfmt.d file
//! holds them: systemd-binfmt (and the distributions' equivalents) read
//! `/etc/binfmt.d/*.conf`, `/run/binfmt.d`, `/usr/local/lib/binfmt.d` and
//! `/usr/lib/binfmt.d` at boot, a file name in an earlier directory hiding
//! the same name in a later one (a symlink to /dev/null masks it). `/run`
//! is a tmpfs, empty after a reboot: a file there is not counted, neither
//! as a registration nor as a mask.
//!
//! Owns: writing `/etc/binfmt.d/<name>.conf` (`mkimg binfmt register
//! --persist`) atomically — a temporary file in the same directory, synced,
//! renamed over the old one — and finding, for a registered entry, the
//! effective binfmt.d file that would register the same thing again.
//!
//! Every path is under a `sysroot` (`/` in production) so tests write into
//! a temporary directory, never into the machine's /etc. Spawns nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{parse_entry, BinfmtEntry, BinfmtError, RegisterLine, RegisterOutcome};

/// The binfmt.d directories under the sysroot that outlive a reboot,
/// highest precedence first (`run/binfmt.d` is left out: see above).
pub const BINFMT_D_DIRS: [&str; 3] = ["etc/binfmt.d", "usr/local/lib/binfmt.d", "usr/lib/binfmt.d"];

/// `<sysroot>/etc/binfmt.d/<name>.conf`: where `--persist` writes.
pub fn persist_path(sysroot: &Path, name: &str) -> PathBuf {
    sysroot.join(BINFMT_D_DIRS[0]).join(format!("{name}.conf"))
}

/// The file's text: a comment saying who wrote it, then the line.
pub fn render_conf(line: &RegisterLine) -> String {
    format!(
        "# Written by `mkimg binfmt register --persist`; loaded at boot by systemd-binfmt.\n{}\n",
        line.render()
    )
}

/// Write `line` to `<sysroot>/etc/binfmt.d/<name>.conf` atomically (mode
/// 0644); the directory is made when missing. Returns the path.
pub fn persist(sysroot: &Path, line: &RegisterLine) -> Result<PathBuf, BinfmtError> {
    let path = persist_path(sysroot, &line.name);
    let text = render_conf(line);
    let write_err = |source: io::Error| BinfmtError::Write {
        path: path.clone(),
        value: text.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(sysroot);
    fs::create_dir_all(dir).map_err(write_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".mkimg-binfmt-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(text.as_bytes()).map_err(write_err)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    // rename(2) replaces the name, never following a symlink there.
    tmp.persist(&path).map_err(|e| write_err(e.error))?;
    if let Ok(dir) = fs::File::open(dir) {
        // The rename itself is durable once the directory is synced.
        dir.sync_all().map_err(write_err)?;
    }
    Ok(path)
}

/// The effective binfmt.d file that registers `entry` as `name` again at
/// boot (same offset, magic, mask, interpreter and flags), if any.
pub fn find_persistent(sysroot: &Path, name: &str, entry: &BinfmtEntry) -> Option<PathBuf> {
    effective_files(sysroot).into_values().find(|path| {
        fs::read_to_string(path).is_ok_and(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                .filter_map(|l| RegisterLine::parse(l).ok())
                .any(|line| line.name == name && same_registration(&line, entry))
        })
    })
}

/// `*.conf` file name → the path that wins for it (earlier directory first).
fn effective_files(sysroot: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    for dir in BINFMT_D_DIRS {
        let Ok(items) = fs::read_dir(sysroot.join(dir)) else {
            continue;
        };
        for item in items.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                files.entry(name).or_insert_with(|| item.path());
            }
        }
    }
    files
}

/// Whether `line` registers what the kernel shows as `entry`. The kernel
/// prints flags in its own order (P, O, C, F); magic bytes are compared
/// under the mask, the only bits the kernel matches.
pub fn same_registration(line: &RegisterLine, entry: &BinfmtEntry) -> bool {
    let masked = |magic: &[u8], mask: Option<&[u8]>| -> Vec<u8> {
        match mask {
            Some(mask) => magic.iter().zip(mask).map(|(b, m)| b & m).collect(),
            None => magic.to_vec(),
        }
    };
    let flag_set = |flags: &str| {
        let mut f: Vec<char> = flags.chars().collect();
        f.sort_unstable();
        f.dedup();
        f
    };
    entry.extension.is_none()
        && line.offset == entry.offset
        && line.mask == entry.mask
        && masked(&line.magic, line.mask.as_deref()) == masked(&entry.magic, entry.mask.as_deref())
        && line.interpreter == entry.interpreter
        && flag_set(&line.flags) == flag_set(&entry.flags)
}

/// The registration line that recreates `entry` as `name`.
pub fn line_of_entry(name: &str, entry: &BinfmtEntry) -> RegisterLine {
    RegisterLine {
        name: name.to_string(),
        offset: entry.offset,
        magic: entry.magic.clone(),
        mask: entry.mask.clone(),
        interpreter: entry.interpreter.clone(),
        flags: entry.flags.clone(),
    }
}

/// Persist what `register` left registered: the line it wrote, or for an
/// entry that was already there, the line that recreates it from the
/// kernel's `<dir>/<entry>`. Returns the file written.
pub fn persist_outcome(
    dir: &Path,
    sysroot: &Path,
    outcome: &RegisterOutcome,
) -> Result<PathBuf, BinfmtError> {
    let line = match outcome {
        RegisterOutcome::Registered { line, .. } => {
            RegisterLine::parse(line).map_err(|source| BinfmtError::Parse {
                path: dir.join("register"),
                line: 1,
                source,
            })?
        }
        RegisterOutcome::AlreadyRegistered { entry } => {
            let path = dir.join(entry);
            let text = fs::read_to_string(&path).map_err(|source| BinfmtError::Read {
                path: path.clone(),
                source,
            })?;
            let shown = parse_entry(&text).map_err(|source| BinfmtError::Parse {
                path,
                line: 0,
                source,
            })?;
            line_of_entry(entry, &shown)
        }
    };
    persist(sysroot, &line)
}

#[cfg(test)]
mod tests;
