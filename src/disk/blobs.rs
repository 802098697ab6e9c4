//! The bytes of every planned blob, found and checked before assembly.
//!
//! A blob comes from a host file (next to the board, or `--blob NAME=PATH`)
//! or from the rootfs (`rootfs:/usr/lib/u-boot/<board>/u-boot-rockchip.bin`,
//! captured during the single rootfs pass). Each is checked against the
//! room the plan gives it and against its magic bytes, so a wrong or
//! missing file fails with its name, where it usually comes from, and how
//! to supply it — before any byte of the image is written.
//!
//! Reads host files (heads and sizes only; the assembler streams them);
//! spawns nothing.

use std::io::Read;

use crate::board::paths::open_resolved;
use anyhow::{bail, Context, Result};

use crate::disk::assemble::Content;
use crate::plan::{BlobSource, Plan, PlannedBlob};
use crate::rootfs::{CaptureResults, Captured};

/// A blob ready for the assembler.
#[derive(Debug, Clone)]
pub struct LoadedBlob {
    pub name: String,
    pub content: Content,
}

/// The rootfs paths the rootfs pass must capture for `rootfs:` blobs.
pub fn rootfs_blob_paths(plan: &Plan) -> Vec<String> {
    plan.layout
        .blobs
        .iter()
        .filter_map(|b| match &b.source {
            BlobSource::Rootfs(path) => Some(path.clone()),
            BlobSource::File(_) | BlobSource::Reserved => None,
        })
        .collect()
}

/// Check the host-file blobs (exist, fit, magic); run before the rootfs
/// pass so a missing boot loader fails in a second, not after minutes.
pub fn check_blob_files(plan: &Plan) -> Result<()> {
    for blob in &plan.layout.blobs {
        if let BlobSource::File(_) = blob.source {
            load_blob(blob, None)?;
        }
    }
    Ok(())
}

/// Every blob of the plan; `captures` holds the `rootfs:` ones.
pub fn load_blobs(plan: &Plan, captures: &CaptureResults) -> Result<Vec<LoadedBlob>> {
    plan.layout
        .blobs
        .iter()
        .map(|blob| load_blob(blob, Some(captures)))
        .collect()
}

fn load_blob(blob: &PlannedBlob, captures: Option<&CaptureResults>) -> Result<LoadedBlob> {
    let who = format!("blob '{}'", blob.name);
    let usually = blob
        .hint
        .as_deref()
        .map(|h| format!(" It usually comes from {h}."))
        .unwrap_or_default();
    let (content, len, head) = match &blob.source {
        // A region kept free: nothing to write.
        BlobSource::Reserved => (Content::Bytes(Vec::new()), 0, Vec::new()),
        BlobSource::File(path) => {
            // Resolved by the planner; a symlink planted since is not followed.
            let mut file = match open_resolved(path) {
                Ok(file) => file,
                Err(err) => bail!(
                    "{who}: {} not found ({err}).{usually} Put it next to board.toml or pass \
                     --blob {}=PATH.",
                    path.display(),
                    blob.name
                ),
            };
            let len = file
                .metadata()
                .with_context(|| format!("{who}: reading {}", path.display()))?
                .len();
            let mut head = Vec::new();
            file.by_ref()
                .take(4096)
                .read_to_end(&mut head)
                .with_context(|| format!("{who}: reading {}", path.display()))?;
            (Content::File(path.clone()), len, head)
        }
        BlobSource::Rootfs(path) => {
            let Some(captures) = captures else {
                bail!("{who}: rootfs:{path} is read during the rootfs pass");
            };
            let data = match captures.files.get(path) {
                Some(Captured::File(data)) => data.clone(),
                Some(Captured::Symlink(target)) => bail!(
                    "{who}: rootfs:{path} is a symlink to {target}; point the blob's source at \
                     the real file"
                ),
                Some(other) => bail!("{who}: rootfs:{path} is not a regular file ({other:?})"),
                None => bail!(
                    "{who}: rootfs:{path} is not in the rootfs.{usually} Install it in the \
                     rootfs, or pass --blob {}=PATH.",
                    blob.name
                ),
            };
            let len = data.len() as u64;
            let head = data[..data.len().min(4096)].to_vec();
            (Content::Bytes(data), len, head)
        }
    };
    if let Some(over) = len.checked_sub(blob.size).filter(|&over| over > 0) {
        bail!(
            "{who}: {} is {len} bytes, more than the {} bytes of room the board reserves at \
             {:#x} (over by {over})",
            blob.source,
            blob.size,
            blob.offset,
        );
    }
    if let Some((at, magic)) = &blob.magic {
        // Only the first 4 KiB are read: a magic beyond them (or beyond the
        // address space) is simply not there.
        let found = usize::try_from(*at)
            .ok()
            .and_then(|at| head.get(at..)?.get(..magic.len()));
        if found != Some(magic.as_slice()) {
            bail!(
                "{who}: {} lacks the magic {} at byte {at}; is it the right file?{usually}",
                blob.source,
                describe_magic(magic)
            );
        }
    }
    Ok(LoadedBlob {
        name: blob.name.clone(),
        content,
    })
}

fn describe_magic(magic: &[u8]) -> String {
    if magic.iter().all(|b| b.is_ascii_graphic()) {
        format!("{:?}", String::from_utf8_lossy(magic))
    } else {
        let hex: String = magic.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn blob(source: BlobSource, size: u64) -> PlannedBlob {
        PlannedBlob {
            name: "boot0".into(),
            source,
            offset: 8192,
            size,
            hint: Some("the Allwinner BSP (boot0_sdcard.fex)".into()),
            magic: Some((4, b"eGON.BT0".to_vec())),
            holes: Vec::new(),
        }
    }

    fn captures(path: &str, data: &[u8]) -> CaptureResults {
        let mut c = CaptureResults::default();
        c.files
            .insert(path.to_string(), Captured::File(data.to_vec()));
        c
    }

    #[test]
    fn missing_file_names_it_and_where_it_comes_from() {
        let b = blob(
            BlobSource::File(PathBuf::from("/nonexistent/boot0.bin")),
            1 << 20,
        );
        let err = format!("{:#}", load_blob(&b, None).unwrap_err());
        assert!(err.contains("/nonexistent/boot0.bin not found"), "{err}");
        assert!(
            err.contains("usually comes from the Allwinner BSP"),
            "{err}"
        );
        assert!(err.contains("--blob boot0=PATH"), "{err}");
    }

    /// Before: `at + magic.len()` overflowed (a panic; in release, a
    /// wrapped range that happened to be refused).
    #[test]
    fn magic_offset_near_2_pow_64_is_not_there() {
        let path = "/usr/lib/u-boot/nezha/boot0.bin";
        let mut b = blob(BlobSource::Rootfs(path.into()), 64);
        b.magic = Some((u64::MAX - 2, b"eGON.BT0".to_vec()));
        let err = format!(
            "{:#}",
            load_blob(&b, Some(&captures(path, &[0; 64]))).unwrap_err()
        );
        assert!(
            err.contains("lacks the magic \"eGON.BT0\" at byte 18446744073709551613"),
            "{err}"
        );
    }

    #[test]
    fn rootfs_blob_checks_presence_room_and_magic() {
        let path = "/usr/lib/u-boot/nezha/boot0.bin";
        let b = blob(BlobSource::Rootfs(path.into()), 64);
        let mut good = vec![0u8; 64];
        good[4..12].copy_from_slice(b"eGON.BT0");
        let loaded = load_blob(&b, Some(&captures(path, &good))).unwrap();
        assert!(matches!(loaded.content, Content::Bytes(ref d) if *d == good));

        let err = format!(
            "{:#}",
            load_blob(&b, Some(&CaptureResults::default())).unwrap_err()
        );
        assert!(
            err.contains("rootfs:/usr/lib/u-boot/nezha/boot0.bin is not in the rootfs"),
            "{err}"
        );

        let err = format!(
            "{:#}",
            load_blob(&b, Some(&captures(path, &[0; 65]))).unwrap_err()
        );
        assert!(
            err.contains("65 bytes, more than the 64 bytes of room"),
            "{err}"
        );

        let err = format!(
            "{:#}",
            load_blob(&b, Some(&captures(path, &[0; 64]))).unwrap_err()
        );
        assert!(
            err.contains("lacks the magic \"eGON.BT0\" at byte 4"),
            "{err}"
        );
    }
}
