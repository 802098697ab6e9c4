//! What a filesystem image holds, read with the reference tools, for
//! comparing mkimg's images with genimage's: a FAT tree through mkimg's
//! own reader (checked against fsck.fat elsewhere), an ext tree and
//! superblock through debugfs and dumpe2fs, a squashfs listing through
//! unsquashfs. Each takes an image file (a whole filesystem image, or one
//! cut out of a disk image).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use mkimg::filesystems::vfat::{read_vfat_info, read_vfat_tree, VfatEntry};

use super::run::run_tool;

/// Path → content ("<dir>" for directories) of a FAT image.
pub fn fat_tree(image: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    read_vfat_tree(file)
        .unwrap()
        .into_iter()
        .map(|e| match e {
            VfatEntry::Dir { path } => (path.to_lowercase(), b"<dir>".to_vec()),
            VfatEntry::File { path, data } => (path.to_lowercase(), data),
            VfatEntry::Slice { path, .. } => panic!("{path}: a slice from the reader"),
        })
        .collect()
}

pub fn fat_label(image: &Path) -> String {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    read_vfat_info(file).unwrap().label
}

/// One line per entry: path, mode, uid, gid, size (files), content or
/// symlink target; lost+found left out (genext2fs sizes it otherwise).
pub fn ext_tree(image: &Path) -> Vec<String> {
    let img = image.to_str().unwrap();
    let mut out = Vec::new();
    let mut dirs = vec![String::from("/")];
    while let Some(dir) = dirs.pop() {
        let text = debugfs(img, &format!("ls -p {dir}"));
        for line in text.lines() {
            // /ino/mode/uid/gid/name/size/
            let f: Vec<&str> = line.split('/').collect();
            if f.len() < 7 || f[5] == "." || f[5] == ".." || f[5].is_empty() {
                continue;
            }
            let path = if dir == "/" {
                format!("/{}", f[5])
            } else {
                format!("{dir}/{}", f[5])
            };
            if path == "/lost+found" {
                continue;
            }
            let mode = u32::from_str_radix(f[2], 8).unwrap();
            let what = match mode & 0o170000 {
                0o040000 => {
                    dirs.push(path.clone());
                    "dir".to_string()
                }
                0o120000 => {
                    let stat = debugfs(img, &format!("stat {path}"));
                    let target = stat
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("Fast link dest: "))
                        .unwrap_or("?")
                        .trim_matches('"')
                        .to_string();
                    format!("-> {target}")
                }
                _ => format!(
                    "{} {}",
                    f[6],
                    sha(&debugfs_raw(img, &format!("cat {path}")))
                ),
            };
            out.push(format!("{path} {mode:o} {}:{} {what}", f[3], f[4]));
        }
    }
    out.sort();
    out
}

pub fn debugfs_raw(img: &str, request: &str) -> Vec<u8> {
    let out = Command::new(super::tools::locate_tool("debugfs").unwrap())
        .args(["-R", request, img])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "debugfs -R {request} {img}");
    out.stdout
}

pub fn debugfs(img: &str, request: &str) -> String {
    String::from_utf8_lossy(&debugfs_raw(img, request)).into_owned()
}

pub fn sha(data: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The dumpe2fs -h lines both tools must agree on.
pub fn ext_header(image: &Path) -> Vec<String> {
    let text = run_tool("dumpe2fs", &["-h", image.to_str().unwrap()]);
    let keys = [
        "Filesystem volume name:",
        "Filesystem features:",
        "Default mount options:",
        "Block size:",
        "Inode size:",
        "Inode count:",
        "Reserved block count:",
        "Block count:",
    ];
    text.lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// `unsquashfs -lls` without the times.
pub fn squash_list(image: &Path) -> Vec<String> {
    run_tool("unsquashfs", &["-lls", "-d", "", image.to_str().unwrap()])
        .lines()
        .filter(|l| {
            l.len() > 10 && (l.starts_with('d') || l.starts_with('-') || l.starts_with('l'))
        })
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // perms owner size date time path [-> target]
            let mut kept = vec![f[0], f[1], f[2]];
            kept.extend(&f[5..]);
            kept.join(" ")
        })
        .collect()
}
