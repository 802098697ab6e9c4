//! Restoring the xattrs `mke2fs -d tar` drops: its libarchive reader keeps
//! only `security.capability` (and `gnu.translator`), so ACLs and `user.*`
//! attributes are set afterwards with ONE `debugfs -w -f script` run of
//! `ea_set -f VALUEFILE PATH NAME` lines, then checked with one read-only
//! `debugfs -f script` run of `ea_get -f OUTFILE PATH NAME`.
//!
//! Why the read-back: debugfs exits 0 when a command fails, and some of its
//! messages ("Insufficient space to store extended attribute data") do not
//! name the file, so its stderr cannot say which record failed. Reading every
//! value back names exactly the path and xattr that are missing or wrong.
//!
//! ACLs: the ext4 on-disk ACL format (version 1, short entries without an id
//! for USER_OBJ, GROUP_OBJ, MASK, OTHER) differs from the Linux xattr wire
//! format (version 2, 8-byte entries). debugfs 1.47 converts both ways: it
//! takes `system.posix_acl_*` values in the wire format, stores the ext4
//! format, and reads back the wire format with id 0 instead of
//! ACL_UNDEFINED_ID (0xffffffff) in the short entries; the comparison
//! ignores that id. The kernel (getfacl on a loop mount) shows the same ACL.
//!
//! Must not: run anything except through [`Cmd`]. In: the records (paths
//! absolute, or relative to the partition root as the rootfs stage writes
//! them). Out: the xattrs in the image, or an error naming path and xattr.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{resolve_sbin, Ext4Error, Ext4Params};
use crate::host::cmd::Cmd;

/// The rootfs stage's side list of xattrs that mke2fs's tar reader drops;
/// paths may be `/var/log/journal` or `var/log/journal` ("" is the root).
pub use crate::rootfs::XattrRecord;

const ACL_ACCESS: &str = "system.posix_acl_access";
const ACL_DEFAULT: &str = "system.posix_acl_default";
/// Namespaces the kernel's ext4 driver stores (besides the two ACL names).
const PREFIXES: [&str; 3] = ["user.", "trusted.", "security."];
const ACL_WIRE_VERSION: u32 = 2;
const ACL_UNDEFINED_ID: u32 = u32::MAX;
/// ACL entry tags that carry no id: USER_OBJ, GROUP_OBJ, MASK, OTHER.
const TAGS_WITHOUT_ID: [u16; 4] = [0x01, 0x04, 0x10, 0x20];

/// `/path` as debugfs resolves it from the root.
pub fn fs_path(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_matches('/');
    format!("/{trimmed}")
}

/// Rejects what ext4 cannot store or a debugfs script cannot express.
pub fn check_record(record: &XattrRecord) -> Result<(), Ext4Error> {
    let bad = |reason: &str| Ext4Error::BadXattr {
        path: record.path.clone(),
        name: record.name.clone(),
        reason: reason.to_string(),
    };
    let known = record.name == ACL_ACCESS
        || record.name == ACL_DEFAULT
        || PREFIXES
            .iter()
            .any(|p| record.name.len() > p.len() && record.name.starts_with(p));
    if !known {
        return Err(bad(
            "ext4 stores only user.*, trusted.*, security.* and POSIX ACLs",
        ));
    }
    let printable = |s: &str| !s.chars().any(|c| c.is_control());
    if !printable(&record.path) || !printable(&record.name) {
        return Err(bad(
            "control characters cannot be written in a debugfs script",
        ));
    }
    Ok(())
}

/// One debugfs argument, quoted the way its command parser (libss) unquotes:
/// inside double quotes, `""` is a literal quote.
pub fn quote(arg: &str) -> String {
    format!("\"{}\"", arg.replace('"', "\"\""))
}

/// `ea_set -f VALUEFILE PATH NAME`, one line per record.
pub fn render_set_script(records: &[XattrRecord], value_files: &[PathBuf]) -> String {
    records
        .iter()
        .zip(value_files)
        .map(|(r, file)| {
            let file = file.to_string_lossy();
            format!(
                "ea_set -f {} {} {}\n",
                quote(&file),
                quote(&fs_path(&r.path)),
                quote(&r.name)
            )
        })
        .collect()
}

/// `ea_get -f OUTFILE PATH NAME`, one line per record.
pub fn render_get_script(records: &[XattrRecord], out_files: &[PathBuf]) -> String {
    records
        .iter()
        .zip(out_files)
        .map(|(r, file)| {
            let file = file.to_string_lossy();
            format!(
                "ea_get -f {} {} {}\n",
                quote(&file),
                quote(&fs_path(&r.path)),
                quote(&r.name)
            )
        })
        .collect()
}

/// `debugfs -w -f script image`, with the build's clock.
pub fn debugfs_write_cmd(script: &Path, image: &Path, params: &Ext4Params) -> Cmd {
    let epoch = params.source_date_epoch.to_string();
    Cmd::new(
        format!("restoring xattrs in partition '{}'", params.partition),
        "debugfs",
    )
    .arg("-w")
    .arg("-f")
    .arg(script)
    .arg(image)
    .env("SOURCE_DATE_EPOCH", &epoch)
    .env("E2FSPROGS_FAKE_TIME", &epoch)
}

/// `debugfs -f script image`, read-only.
pub fn debugfs_read_cmd(script: &Path, image: &Path, partition: &str) -> Cmd {
    Cmd::new(
        format!("checking xattrs in partition '{partition}'"),
        "debugfs",
    )
    .arg("-f")
    .arg(script)
    .arg(image)
}

/// The stderr lines that are not debugfs' version banner
/// (`debugfs 1.47.2 (1-Jan-2025)`). Commands echo on stdout, not here.
pub fn complaints(stderr: &str) -> Vec<String> {
    let banner = |l: &str| {
        l.strip_prefix("debugfs ")
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    };
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !banner(l))
        .map(str::to_string)
        .collect()
}

/// The wire-format ACL with every id-less entry's id set to
/// ACL_UNDEFINED_ID; `None` if `value` is not a wire-format ACL.
fn canonical_acl(value: &[u8]) -> Option<Vec<u8>> {
    let (version, entries) = value.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != ACL_WIRE_VERSION || entries.len() % 8 != 0 {
        return None;
    }
    let mut out = value.to_vec();
    for (i, entry) in entries.chunks_exact(8).enumerate() {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        if TAGS_WITHOUT_ID.contains(&tag) {
            let at = 4 + i * 8 + 4;
            out[at..at + 4].copy_from_slice(&ACL_UNDEFINED_ID.to_le_bytes());
        }
    }
    Some(out)
}

/// Whether debugfs' read-back `got` is the value that was set.
pub fn same_value(name: &str, wanted: &[u8], got: &[u8]) -> bool {
    if name == ACL_ACCESS || name == ACL_DEFAULT {
        if let (Some(a), Some(b)) = (canonical_acl(wanted), canonical_acl(got)) {
            return a == b;
        }
    }
    wanted == got
}

/// Sets every record with one debugfs run, reads them back with another,
/// and fails naming each path and xattr that did not stick.
pub fn restore_xattrs(
    image: &Path,
    records: &[XattrRecord],
    scratch: &Path,
    params: &Ext4Params,
) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let dir = scratch.join("xattrs");
    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let value_files: Vec<PathBuf> = (0..records.len())
        .map(|i| dir.join(format!("value-{i:06}")))
        .collect();
    let out_files: Vec<PathBuf> = (0..records.len())
        .map(|i| dir.join(format!("readback-{i:06}")))
        .collect();
    for (record, file) in records.iter().zip(&value_files) {
        fs::write(file, &record.value).with_context(|| format!("writing {}", file.display()))?;
    }
    let set_script = dir.join("set.debugfs");
    fs::write(&set_script, render_set_script(records, &value_files))
        .with_context(|| format!("writing {}", set_script.display()))?;
    let get_script = dir.join("get.debugfs");
    fs::write(&get_script, render_get_script(records, &out_files))
        .with_context(|| format!("writing {}", get_script.display()))?;

    let out = resolve_sbin(debugfs_write_cmd(&set_script, image, params)).output()?;
    let debugfs_said = complaints(&String::from_utf8_lossy(&out.stderr));
    resolve_sbin(debugfs_read_cmd(&get_script, image, &params.partition)).output()?;

    let mut missing = Vec::new();
    for (record, file) in records.iter().zip(&out_files) {
        let got = fs::read(file).ok();
        if !got.is_some_and(|got| same_value(&record.name, &record.value, &got)) {
            missing.push(format!("{} on {}", record.name, fs_path(&record.path)));
        }
    }
    let partition = params.partition.clone();
    if !missing.is_empty() {
        return Err(Ext4Error::XattrsNotSet {
            partition,
            missing,
            debugfs_said,
        }
        .into());
    }
    if !debugfs_said.is_empty() {
        return Err(Ext4Error::DebugfsComplained {
            partition,
            debugfs_said,
        }
        .into());
    }
    Ok(())
}
