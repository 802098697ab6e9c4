//! Compare a rootfs tarball with the ext4 root partition mkimg built from it,
//! entry by entry, through a read-only loop mount (root only): type, mode,
//! owner, size, content, symlink target, device numbers, hard-link identity
//! and every xattr. Edited and split paths are skipped; /boot/efi must be an
//! empty directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use mkimg::host::loopdev::{LoopDevice, LoopOptions};
use mkimg::host::mount::{in_private_namespace, Mount};
use rustix::mount::MountFlags;
use sha2::{Digest, Sha256};

/// Paths mkimg edits or removes on purpose.
const EDITED: &[&str] = &[
    "etc/fstab",
    "etc/hostname",
    "etc/hosts",
    ".dockerenv",
    "etc/resolv.conf",
];

/// Paths mkimg appends to on purpose: the distro's bytes stay first, then
/// a block that mentions mkimg and console= (the board's kernel arguments kept in
/// /etc/default/grub); everything else about them is compared.
const APPENDED: &[&str] = &["etc/default/grub"];

#[derive(Debug, Default)]
pub struct Report {
    pub compared: usize,
    pub mismatches: Vec<String>,
}

fn sha256_reader(mut r: impl Read) -> [u8; 32] {
    let mut hasher = Sha256::new();
    std::io::copy(&mut r, &mut hasher).unwrap();
    hasher.finalize().into()
}

fn normalise(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// Mount `image` read-only at `scratch/mnt` through the library's own loop
/// device and mount guards, in a private mount namespace (the host's mount
/// table never sees it), and compare `tarball` with it.
pub fn compare_tar_with_image(tarball: &Path, image: &Path, scratch: &Path) -> Report {
    let root = scratch.join("mnt");
    std::fs::create_dir_all(&root).unwrap();
    let read_only = LoopOptions {
        read_only: true,
        ..LoopOptions::default()
    };
    let device = LoopDevice::attach(image, &read_only).unwrap();
    let report = in_private_namespace(|| {
        // noload: no journal replay, so reading changes nothing.
        let mount = Mount::filesystem(device.path(), &root, "ext4", MountFlags::RDONLY, "noload")?;
        let report = compare_tree(tarball, &root);
        mount.close()?;
        Ok(report)
    })
    .unwrap();
    device.close().unwrap();
    report
}

/// The comparison itself, with the image mounted at `root`.
fn compare_tree(tarball: &Path, root: &Path) -> Report {
    let mut report = Report::default();
    let mut inodes: HashMap<String, u64> = HashMap::new();
    let mut archive = tar::Archive::new(File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = normalise(&entry.path().unwrap().to_string_lossy());
        if path.is_empty()
            || EDITED.contains(&path.as_str())
            || path == "boot/efi"
            || path.starts_with("boot/efi/")
        {
            continue;
        }
        let on_disk = root.join(&path);
        let meta = match std::fs::symlink_metadata(&on_disk) {
            Ok(meta) => meta,
            Err(err) => {
                report
                    .mismatches
                    .push(format!("{path}: missing from the image ({err})"));
                continue;
            }
        };
        let mut problems = Vec::new();
        let header = entry.header().clone();
        let kind = header.entry_type();
        let ft = meta.file_type();
        let type_ok = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => ft.is_file(),
            tar::EntryType::Directory => ft.is_dir(),
            tar::EntryType::Symlink => ft.is_symlink(),
            tar::EntryType::Char => ft.is_char_device(),
            tar::EntryType::Block => ft.is_block_device(),
            tar::EntryType::Fifo => ft.is_fifo(),
            tar::EntryType::Link => true,
            _ => true,
        };
        if !type_ok {
            problems.push(format!("type {kind:?} vs {ft:?}"));
        }
        if !ft.is_symlink() && kind != tar::EntryType::Link {
            let mode = header.mode().unwrap() & 0o7777;
            if meta.mode() & 0o7777 != mode {
                problems.push(format!("mode {:o} vs {:o}", mode, meta.mode() & 0o7777));
            }
        }
        if kind != tar::EntryType::Link {
            let (uid, gid) = (header.uid().unwrap(), header.gid().unwrap());
            if (u64::from(meta.uid()), u64::from(meta.gid())) != (uid, gid) {
                problems.push(format!(
                    "owner {uid}:{gid} vs {}:{}",
                    meta.uid(),
                    meta.gid()
                ));
            }
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous
                if APPENDED.contains(&path.as_str()) =>
            {
                let mut want = Vec::new();
                entry.read_to_end(&mut want).unwrap();
                let got = std::fs::read(&on_disk).unwrap();
                match got.strip_prefix(want.as_slice()) {
                    Some(added)
                        if String::from_utf8_lossy(added).contains("mkimg")
                            && String::from_utf8_lossy(added).contains("console=") => {}
                    Some(added) => problems.push(format!(
                        "appended {:?} without an mkimg block",
                        String::from_utf8_lossy(added)
                    )),
                    None => problems.push("the distro's bytes are not kept first".to_string()),
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if meta.len() != entry.size() {
                    problems.push(format!("size {} vs {}", entry.size(), meta.len()));
                } else {
                    let want = sha256_reader(&mut entry);
                    let got = sha256_reader(File::open(&on_disk).unwrap());
                    if want != got {
                        problems.push("content differs".to_string());
                    }
                }
            }
            tar::EntryType::Symlink => {
                let want = header.link_name().unwrap().unwrap().into_owned();
                let got = std::fs::read_link(&on_disk).unwrap();
                if want != got {
                    problems.push(format!("symlink {} vs {}", want.display(), got.display()));
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let (major, minor) = (
                    header.device_major().unwrap().unwrap(),
                    header.device_minor().unwrap().unwrap(),
                );
                let rdev = meta.rdev();
                let (got_major, got_minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
                if (got_major, got_minor) != (major, minor) {
                    problems.push(format!("device {major}:{minor} vs {got_major}:{got_minor}"));
                }
            }
            tar::EntryType::Link => {
                let target = normalise(&header.link_name().unwrap().unwrap().to_string_lossy());
                match inodes.get(&target) {
                    Some(&ino) if ino == meta.ino() => {}
                    Some(&ino) => problems.push(format!(
                        "hard link to {target}: inode {} vs {ino}",
                        meta.ino()
                    )),
                    None => problems.push(format!("hard link to unknown {target}")),
                }
            }
            _ => {}
        }
        if let Some(extensions) = entry.pax_extensions().unwrap() {
            for ext in extensions {
                let ext = ext.unwrap();
                let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                else {
                    continue;
                };
                let mut value = vec![0u8; 65536];
                match rustix::fs::lgetxattr(&on_disk, name, &mut value) {
                    Ok(n) if value[..n] == *ext.value_bytes() => {}
                    Ok(n) => problems.push(format!(
                        "xattr {name}: {:02x?} vs {:02x?}",
                        ext.value_bytes(),
                        &value[..n]
                    )),
                    Err(err) => problems.push(format!("xattr {name} missing ({err})")),
                }
            }
        }
        inodes.insert(path.clone(), meta.ino());
        report.compared += 1;
        if !problems.is_empty() {
            report
                .mismatches
                .push(format!("{path}: {}", problems.join("; ")));
        }
    }
    // /boot/efi stays as an empty directory on the root.
    let efi = root.join("boot/efi");
    match std::fs::read_dir(&efi) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                report
                    .mismatches
                    .push("boot/efi is not empty on the root partition".to_string());
            }
        }
        Err(err) => report.mismatches.push(format!("boot/efi: {err}")),
    }
    report
}
