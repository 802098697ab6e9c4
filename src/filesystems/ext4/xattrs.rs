//! Restoring the xattrs `mke2fs -d tar` drops: its libarchive reader keeps
//! only `security.capability` (and `gnu.translator`), so ACLs and `user.*`,
//! `trusted.*`, `security.*` attributes are set afterwards through libext2fs
//! ([`Ext2Image`]), then read back from the closed and reopened image.
//!
//! No debugfs script: paths and values come from the tarball, and a script
//! is a command language (a path longer than debugfs' 8 KiB line buffer
//! split its line, and a tail starting with `!` ran `system()` as root).
//! Through the library a path is a NUL-terminated string and a value a byte
//! slice; any byte but NUL may be in either.
//!
//! Why the read-back: it names exactly the path and xattr that are missing
//! or wrong in what was written to the file, whatever went wrong on the way.
//!
//! ACLs: the ext4 on-disk ACL format (version 1, short entries without an id
//! for USER_OBJ, GROUP_OBJ, MASK, OTHER) differs from the Linux xattr wire
//! format (version 2, 8-byte entries). libext2fs 1.47 converts both ways
//! (as debugfs, built on it, did): it takes `system.posix_acl_*` values in
//! the wire format, stores the ext4 format, and reads back the wire format
//! with id 0 instead of ACL_UNDEFINED_ID (0xffffffff) in the short entries;
//! the comparison ignores that id. The kernel (getfacl on a loop mount)
//! shows the same ACL.
//!
//! Must not: run programs. In: the records (paths absolute, or relative to
//! the partition root as the rootfs stage writes them). Out: the xattrs in
//! the image, or an error naming path and xattr.

use std::ffi::CString;
use std::path::Path;

use anyhow::Context;

use super::libext2fs::{Access, Ext2Image};
use super::{Ext4Error, Ext4Params};

/// The rootfs stage's side list of xattrs that mke2fs's tar reader drops;
/// paths may be `/var/log/journal` or `var/log/journal` ("" is the root).
pub use crate::rootfs::XattrRecord;

#[cfg(test)]
mod tests;

/// How many failed records an error lists by name.
const NAMED_FAILURES: usize = 20;
const ACL_ACCESS: &str = "system.posix_acl_access";
const ACL_DEFAULT: &str = "system.posix_acl_default";
/// Namespaces the kernel's ext4 driver stores (besides the two ACL names).
const PREFIXES: [&str; 3] = ["user.", "trusted.", "security."];
const ACL_WIRE_VERSION: u32 = 2;
const ACL_UNDEFINED_ID: u32 = u32::MAX;
/// ACL entry tags that carry no id: USER_OBJ, GROUP_OBJ, MASK, OTHER.
const TAGS_WITHOUT_ID: [u16; 4] = [0x01, 0x04, 0x10, 0x20];

/// `/path` as resolved from the image's root.
pub fn fs_path(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_matches('/');
    format!("/{trimmed}")
}

/// `text` for a message: control characters (a tarball's path may hold
/// any byte but NUL and `/`) escaped, so they cannot drive the terminal.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// "NAME on /PATH", both [`shown`].
fn describe(record: &XattrRecord) -> String {
    format!(
        "{} on {}",
        shown(&record.name),
        shown(&fs_path(&record.path))
    )
}

fn bad_record(record: &XattrRecord, reason: &str) -> Ext4Error {
    Ext4Error::BadXattr {
        path: shown(&record.path),
        name: shown(&record.name),
        reason: reason.to_string(),
    }
}

/// Rejects what ext4 cannot store: unknown namespaces, NUL bytes.
pub fn check_record(record: &XattrRecord) -> Result<(), Ext4Error> {
    let bad = |reason: &str| bad_record(record, reason);
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
    if record.path.contains('\0') || record.name.contains('\0') {
        return Err(bad("ext4 names cannot contain a NUL byte"));
    }
    Ok(())
}

/// The record's path and name as C strings, for libext2fs.
fn c_strings(record: &XattrRecord) -> Result<(CString, CString), Ext4Error> {
    let nul = || bad_record(record, "ext4 names cannot contain a NUL byte");
    let path = CString::new(fs_path(&record.path)).map_err(|_| nul())?;
    let name = CString::new(record.name.as_str()).map_err(|_| nul())?;
    Ok((path, name))
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

/// Whether the read-back `got` is the value that was set.
pub fn same_value(name: &str, wanted: &[u8], got: &[u8]) -> bool {
    if name == ACL_ACCESS || name == ACL_DEFAULT {
        if let (Some(a), Some(b)) = (canonical_acl(wanted), canonical_acl(got)) {
            return a == b;
        }
    }
    wanted == got
}

/// Sets every record through libext2fs, closes the image, reopens it and
/// reads every record back; fails naming each path and xattr that did not
/// stick, with libext2fs's reason.
pub fn restore_xattrs(
    image: &Path,
    records: &[XattrRecord],
    params: &Ext4Params,
) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let named: Vec<(CString, CString)> = records.iter().map(c_strings).collect::<Result<_, _>>()?;
    let epoch = params.source_date_epoch;
    let opening = |access| {
        Ext2Image::open(image, access, epoch).with_context(|| {
            format!(
                "opening {} (partition '{}') with libext2fs",
                image.display(),
                params.partition
            )
        })
    };

    let mut fs = opening(Access::ReadWrite)?;
    let mut failed = Vec::new();
    for (record, (path, name)) in records.iter().zip(&named) {
        if let Err(e) = fs.set_xattr(path, name, &record.value) {
            failed.push(format!("{}: {e}", describe(record)));
        }
    }
    fs.close()
        .with_context(|| format!("writing xattrs to {}", image.display()))?;

    if failed.is_empty() {
        let mut fs = opening(Access::ReadOnly)?;
        for (record, (path, name)) in records.iter().zip(&named) {
            let why = match fs.xattr(path, name) {
                Ok(got) if same_value(&record.name, &record.value, &got) => continue,
                Ok(_) => "reads back a different value".to_string(),
                Err(e) => e.to_string(),
            };
            failed.push(format!("{}: {why}", describe(record)));
        }
        fs.close()
            .with_context(|| format!("closing {}", image.display()))?;
    }
    if failed.is_empty() {
        return Ok(());
    }
    let count = failed.len();
    if count > NAMED_FAILURES {
        failed.truncate(NAMED_FAILURES);
        failed.push(format!("and {} more", count - NAMED_FAILURES));
    }
    Err(Ext4Error::XattrsNotSet {
        partition: params.partition.clone(),
        count,
        failed,
    }
    .into())
}
