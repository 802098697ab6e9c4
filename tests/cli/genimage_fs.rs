//! genimage.cfg filesystem images (vfat, ext2/3/4, squashfs) built by
//! `mkimg::filesystems::from_genimage::build_fs_image` and by genimage 16
//! from the same config, root tree and input files, then compared through
//! the reference tools: the file tree (paths, modes, owners, sizes,
//! contents, symlink targets) read with debugfs, `unsquashfs -lls` or the
//! FAT reader, the label and ext feature line from dumpe2fs, and
//! `fsck.fat -n` / `e2fsck -fn` clean on mkimg's image. Then configs both
//! tools refuse, and what only mkimg refuses (reads outside the input
//! path). Library-level: `mkimg build --genimage` is the command glue's.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mkimg::filesystems::from_genimage::{build_fs_image, FsEnv};
use mkimg::filesystems::vfat::{read_vfat_info, FatType};
use mkimg::genimage::{load_config_str, ImageKind, ParseOptions};

use crate::support::fsimage::{
    debugfs, ext_header, ext_tree, fat_label, fat_tree, sha, squash_list,
};
use crate::support::run::run_tool;
use crate::support::tools::{have_tools, is_root, require};

const EPOCH: i64 = 1_700_000_000;

/// A root tree, an input directory and output directories for both tools.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let fx = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        let root = fx.root();
        for d in ["boot/sub", "boot/efi/EFI", "etc/deep", "data", "empty"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("boot/kernel"), b"kernel image").unwrap();
        fs::write(root.join("boot/sub/x.txt"), b"sub file").unwrap();
        fs::write(root.join("boot/.hidden"), b"top-level dot file").unwrap();
        fs::write(root.join("boot/sub/.keep"), b"nested dot file").unwrap();
        symlink("kernel", root.join("boot/vmlinuz")).unwrap();
        fs::write(root.join("boot/efi/EFI/boot.efi"), vec![7u8; 70_000]).unwrap();
        fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(root.join("etc/deep/conf"), b"a=b\n").unwrap();
        symlink("../etc/passwd", root.join("data/link")).unwrap();
        symlink("/nonexistent/abs", root.join("data/abs")).unwrap();
        fs::write(root.join("data/big"), vec![0x5au8; 1_500_000]).unwrap();
        fs::write(root.join("data/script"), b"#!/bin/sh\n").unwrap();
        set_mode(&root.join("data/script"), 0o755);
        set_mode(&root.join("boot"), 0o750);
        if is_root() {
            std::os::unix::fs::chown(root.join("data/script"), Some(12), Some(34)).unwrap();
        }
        let input = fx.input();
        fs::create_dir_all(input.join("dir/nested")).unwrap();
        fs::create_dir_all(input.join("src/d")).unwrap();
        fs::write(input.join("a.bin"), vec![1u8; 3000]).unwrap();
        fs::write(input.join("dir/f"), b"f in dir").unwrap();
        fs::write(input.join("dir/nested/g"), b"g nested").unwrap();
        fs::write(input.join("dir/.dot"), b"dot in dir").unwrap();
        fs::write(input.join("src/one"), b"one").unwrap();
        fs::write(input.join("src/d/two"), b"two").unwrap();
        fs::write(input.join("big.bin"), vec![9u8; 3 << 20]).unwrap();
        fs::write(
            input.join("my-mke2fs.conf"),
            "[defaults]\n\tbase_features = sparse_super,filetype,dir_index,ext_attr\n\tblocksize = 4096\n\tinode_size = 256\n\tinode_ratio = 8192\n[fs_types]\n\text4 = {\n\t\tfeatures = has_journal,extent,flex_bg\n\t}\n\ttiny = {\n\t\tinode_ratio = 4096\n\t}\n",
        )
        .unwrap();
        fs::write(fx.dir.path().join("secret"), b"outside the input path").unwrap();
        symlink("../secret", input.join("escape")).unwrap();
        fx
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn input(&self) -> PathBuf {
        self.dir.path().join("input")
    }
    fn out(&self, tool: &str) -> PathBuf {
        self.dir.path().join(format!("out-{tool}"))
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// genimage 16 on `cfg` (run from the input path, so a relative `srcpath`
/// means the same to both tools); Err(stderr) when it fails. Some of its
/// refusals (srcpath with mountpoint) print `ERROR:` and still exit 0.
fn genimage(fx: &Fixture, cfg: &str) -> Result<PathBuf, String> {
    let work = fx.dir.path().join("genimage");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let config = work.join("genimage.cfg");
    fs::write(&config, cfg).unwrap();
    let out = fx.out("genimage");
    let _ = fs::remove_dir_all(&out);
    let arg = |p: &Path| p.to_str().unwrap().to_owned();
    let result = Command::new("genimage")
        .current_dir(fx.input())
        .args(["--config", &arg(&config)])
        .args(["--rootpath", &arg(&fx.root())])
        .args(["--inputpath", &arg(&fx.input())])
        .args(["--outputpath", &arg(&out)])
        .args(["--tmppath", &arg(&work.join("tmp"))])
        .stdin(Stdio::null())
        .output()
        .expect("running genimage");
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    if result.status.success() && !stderr.contains("ERROR:") {
        Ok(out)
    } else {
        Err(stderr)
    }
}

/// mkimg's builder on every filesystem image of `cfg`, in order.
fn mkimg(fx: &Fixture, cfg: &str, rootpath: Option<&Path>) -> anyhow::Result<PathBuf> {
    let config = load_config_str(cfg, "genimage.cfg", &ParseOptions::default())?;
    let out = fx.out("mkimg");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let tmp = fx.dir.path().join("mkimg-tmp");
    fs::create_dir_all(&tmp).unwrap();
    let root = fx.root();
    let mut built = BTreeMap::new();
    for image in &config.images {
        if matches!(image.kind, ImageKind::File(_) | ImageKind::Hdimage(_)) {
            continue;
        }
        let env = FsEnv {
            config: &config,
            inputpath: &fx.input(),
            rootpath: Some(rootpath.unwrap_or(&root)),
            tmppath: &tmp,
            built: &built,
            source_date_epoch: EPOCH,
            seed: "test",
        };
        let path = out.join(&image.file.value);
        build_fs_image(image, &env, &path)?;
        built.insert(image.file.value.clone(), path);
    }
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "scratch left in tmppath"
    );
    Ok(out)
}

/// Both tools on `cfg`; the output directories (genimage, mkimg).
fn both(fx: &Fixture, cfg: &str) -> (PathBuf, PathBuf) {
    let g = genimage(fx, cfg).unwrap_or_else(|e| panic!("genimage failed:\n{e}"));
    let m = mkimg(fx, cfg, None).unwrap_or_else(|e| panic!("mkimg failed: {e:#}"));
    (g, m)
}

// ---------------------------------------------------------------- vfat

fn check_vfat(g: &Path, m: &Path, name: &str) -> BTreeMap<String, Vec<u8>> {
    let (gi, mi) = (g.join(name), m.join(name));
    run_tool("fsck.fat", &["-n", mi.to_str().unwrap()]);
    let tree = fat_tree(&mi);
    assert_eq!(fat_tree(&gi), tree, "{name}: file trees differ");
    assert_eq!(fat_label(&gi), fat_label(&mi), "{name}: labels differ");
    assert_eq!(
        fs::metadata(&gi).unwrap().len(),
        fs::metadata(&mi).unwrap().len()
    );
    tree
}

fn vfat_tools() -> bool {
    have_tools(&["genimage", "mkdosfs", "mcopy", "fsck.fat"])
}

#[test]
fn vfat_mountpoint_tree_label_and_links() {
    if !vfat_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image efi.vfat {
  vfat { }
  size = 2M
  mountpoint = "/boot/efi"
}
image boot.vfat {
  vfat { label = "BOOT" }
  size = 4M
  mountpoint = "/boot"
}
"#;
    let (g, m) = both(&fx, cfg);
    let tree = check_vfat(&g, &m, "boot.vfat");
    // The shell glob of genimage's mcopy skips the top-level dot file, not
    // the nested one; the symlink is copied as the file it points to; the
    // nested mount point stays as an empty directory.
    assert!(!tree.contains_key(".hidden"), "{tree:?}");
    assert_eq!(tree["sub/.keep"], b"nested dot file");
    assert_eq!(tree["vmlinuz"], b"kernel image");
    assert_eq!(tree["efi"], b"<dir>");
    assert!(!tree.contains_key("efi/efi"), "{tree:?}");
    assert_eq!(fat_label(&m.join("boot.vfat")), "BOOT");
    let efi = check_vfat(&g, &m, "efi.vfat");
    assert_eq!(efi["efi/boot.efi"], vec![7u8; 70_000]);
}

#[test]
fn vfat_files_file_sections_and_directories() {
    if !vfat_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image files.vfat {
  vfat {
    label = "FILES"
    files = { "a.bin", "dir" }
    file sub/x/y.bin { image = "a.bin" }
    file renamed { image = "dir" }
  }
  size = 2M
}
"#;
    let (g, m) = both(&fx, cfg);
    let tree = check_vfat(&g, &m, "files.vfat");
    assert_eq!(tree["sub/x/y.bin"], vec![1u8; 3000]);
    assert_eq!(tree["dir/nested/g"], b"g nested");
    assert_eq!(tree["dir/.dot"], b"dot in dir");
    assert_eq!(tree["renamed/f"], b"f in dir");
}

#[test]
fn vfat_holds_an_image_of_the_config_and_maps_extraargs() {
    if !vfat_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image inner.vfat {
  vfat { files = { "a.bin" } }
  size = 1M
}
image outer.vfat {
  vfat {
    extraargs = "-F 16 -i 1234abcd -n OLD"
    files = { "inner.vfat" }
  }
  size = 16M
}
"#;
    let (g, m) = both(&fx, cfg);
    check_vfat(&g, &m, "inner.vfat");
    // The copied image's bytes are each tool's own: compare what it holds.
    let (gt, mt) = (
        fat_tree(&g.join("outer.vfat")),
        fat_tree(&m.join("outer.vfat")),
    );
    assert_eq!(gt.keys().collect::<Vec<_>>(), ["inner.vfat"]);
    assert_eq!(mt.keys().collect::<Vec<_>>(), ["inner.vfat"]);
    assert_eq!(mt["inner.vfat"].len(), 1 << 20);
    let inner = fx.dir.path().join("inner-copy");
    fs::write(&inner, &mt["inner.vfat"]).unwrap();
    assert_eq!(fat_tree(&inner), fat_tree(&m.join("inner.vfat")));
    run_tool("fsck.fat", &["-n", m.join("outer.vfat").to_str().unwrap()]);
    assert_eq!(fat_label(&g.join("outer.vfat")), "OLD");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.join("outer.vfat"))
        .unwrap();
    let info = read_vfat_info(file).unwrap();
    assert_eq!(
        (info.fat_type, info.volume_id, info.label.as_str()),
        (FatType::Fat16, 0x1234_abcd, "OLD")
    );
}

#[test]
fn vfat_empty_is_ignored_and_srcpath_is_copied() {
    if !vfat_tools() {
        return;
    }
    let fx = Fixture::new();
    // data/abs points outside: genimage's mcopy fails on it, so the root
    // tree here is srcpath's.
    let cfg = r#"
image empty.vfat {
  vfat { files = { "a.bin" } }
  size = 1M
  empty = true
}
image empty.ext4 {
  ext4 { use-mke2fs = true }
  size = 2M
  empty = true
}
image src.vfat {
  vfat { }
  size = 1M
  srcpath = "src"
}
"#;
    let (g, m) = both(&fx, cfg);
    // genimage 16 ignores `empty` for vfat: the files are copied.
    assert_eq!(check_vfat(&g, &m, "empty.vfat").len(), 1);
    if ext_tools() {
        assert!(check_ext(&g, &m, "empty.ext4").is_empty());
    }
    let tree = check_vfat(&g, &m, "src.vfat");
    assert_eq!(tree["d/two"], b"two");
}

// ---------------------------------------------------------------- ext

fn check_ext(g: &Path, m: &Path, name: &str) -> Vec<String> {
    let (gi, mi) = (g.join(name), m.join(name));
    run_tool("e2fsck", &["-fn", mi.to_str().unwrap()]);
    assert_eq!(ext_header(&gi), ext_header(&mi), "{name}: dumpe2fs -h");
    let tree = ext_tree(&mi);
    assert_eq!(ext_tree(&gi), tree, "{name}: file trees differ");
    assert_eq!(
        fs::metadata(&gi).unwrap().len(),
        fs::metadata(&mi).unwrap().len()
    );
    tree
}

fn ext_tools() -> bool {
    have_tools(&[
        "genimage",
        "genext2fs",
        "mke2fs",
        "e2fsck",
        "debugfs",
        "dumpe2fs",
    ]) && require(is_root(), "genimage keeps owners only as root")
}

fn has(tree: &[String], prefix: &str) -> bool {
    tree.iter().any(|l| l.starts_with(prefix))
}

#[test]
fn ext_genext2fs_defaults_root_minus_mountpoints() {
    if !ext_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image root.ext2 { ext2 { label = "rootfs" } size = 8M }
image root.ext3 { ext3 { } size = 8M }
image root.ext4 { ext4 { } size = 8M }
image boot.vfat { vfat { } size = 4M mountpoint = "/boot" }
"#;
    // data/abs is dangling for mcopy: drop it for this run.
    fs::remove_file(fx.root().join("data/abs")).unwrap();
    let (g, m) = both(&fx, cfg);
    let tree = check_ext(&g, &m, "root.ext2");
    check_ext(&g, &m, "root.ext3");
    check_ext(&g, &m, "root.ext4");
    // /boot stays, empty, with its own mode.
    assert!(has(&tree, "/boot 40750 0:0 dir"), "{tree:#?}");
    assert!(!has(&tree, "/boot/"), "{tree:#?}");
    assert!(
        has(&tree, "/data/link 120777 0:0 -> ../etc/passwd"),
        "{tree:#?}"
    );
    assert!(has(&tree, "/data/script 100755 12:34 10 "), "{tree:#?}");
    assert!(ext_header(&m.join("root.ext4"))
        .contains(&"Filesystem features: has_journal dir_index extent uninit_bg".to_string()));
}

#[test]
fn ext4_genext2fs_features_and_srcpath() {
    if !ext_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image src.ext4 {
  ext4 { label = "src" features = "extent,dir_index,has_journal,filetype,sparse_super" }
  size = 4M
  srcpath = "src"
}
image empty.ext2 { ext2 { } size = 2M empty = true }
"#;
    let (g, m) = both(&fx, cfg);
    let tree = check_ext(&g, &m, "src.ext4");
    assert!(has(&tree, "/d/two 100644 0:0 3 "), "{tree:#?}");
    assert!(check_ext(&g, &m, "empty.ext2").is_empty());
}

#[test]
fn ext4_mke2fs_mountpoint_owner_and_extraargs() {
    if !ext_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image deep.ext3 {
  ext3 { use-mke2fs = true features = "^resize_inode" }
  size = 8M
  mountpoint = "/etc/deep"
}
image etc.ext4 {
  ext4 {
    use-mke2fs = true
    label = "etc"
    root-owner = "5:6"
    extraargs = "-b 4096 -N 256 -m 1"
  }
  size = 16M
  mountpoint = "/etc"
}
image root.ext2 { ext2 { use-mke2fs = true } size = 8M }
"#;
    fs::remove_file(fx.root().join("data/abs")).unwrap();
    let (g, m) = both(&fx, cfg);
    let tree = check_ext(&g, &m, "etc.ext4");
    assert_eq!(
        tree,
        [
            "/deep 40755 0:0 dir",
            &format!(
                "/passwd 100644 0:0 26 {}",
                sha(b"root:x:0:0::/root:/bin/sh\n")
            )
        ]
    );
    let root = debugfs(m.join("etc.ext4").to_str().unwrap(), "stat /");
    assert!(root.contains("User:     5   Group:     6"), "{root}");
    check_ext(&g, &m, "deep.ext3");
    let tree = check_ext(&g, &m, "root.ext2");
    assert!(has(&tree, "/etc 40755 0:0 dir"), "{tree:#?}");
    assert!(!has(&tree, "/etc/"), "{tree:#?}");
    assert!(
        has(&tree, "/boot/efi/EFI/boot.efi 100644 0:0 70000 "),
        "{tree:#?}"
    );
}

#[test]
fn ext4_mke2fs_conf_usage_type_and_fs_timestamp() {
    if !ext_tools() {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image conf.ext4 {
  ext4 {
    use-mke2fs = true
    mke2fs-conf = "my-mke2fs.conf"
    usage-type = "tiny"
    fs-timestamp = "20200102030405"
  }
  size = 8M
  srcpath = "src"
}
"#;
    let (g, m) = both(&fx, cfg);
    check_ext(&g, &m, "conf.ext4");
    let created = |dir: &Path| {
        let text = Command::new("dumpe2fs")
            .args(["-h", dir.join("conf.ext4").to_str().unwrap()])
            .env("TZ", "UTC")
            .output()
            .unwrap();
        String::from_utf8_lossy(&text.stdout)
            .lines()
            .filter(|l| l.starts_with("Filesystem created:") || l.starts_with("Last checked:"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let want = created(&g);
    assert!(want[0].contains("Thu Jan  2 03:04:05 2020"), "{want:?}");
    assert_eq!(created(&m), want);
}

/// The root path as a tarball (mkimg's extension) gives the tree genimage
/// makes from the directory.
#[test]
fn ext_from_a_rootfs_tarball_matches_the_directory() {
    if !ext_tools() || !have_tools(&["tar"]) {
        return;
    }
    let fx = Fixture::new();
    fs::remove_file(fx.root().join("data/abs")).unwrap();
    let tarball = fx.dir.path().join("root.tar");
    run_tool(
        "tar",
        &[
            "-C",
            fx.root().to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    let cfg = r#"
image root.ext4 { ext4 { use-mke2fs = true } size = 8M }
image boot.ext4 { ext4 { use-mke2fs = true } size = 4M mountpoint = "/boot" }
"#;
    let g = genimage(&fx, cfg).unwrap();
    let m = mkimg(&fx, cfg, Some(&tarball)).unwrap();
    check_ext(&g, &m, "root.ext4");
    check_ext(&g, &m, "boot.ext4");
}

/// Same inputs, same bytes: every identity and time is fixed.
#[test]
fn images_are_reproducible() {
    if !ext_tools() || !vfat_tools() {
        return;
    }
    let fx = Fixture::new();
    fs::remove_file(fx.root().join("data/abs")).unwrap();
    let cfg = r#"
image a.ext4 { ext4 { use-mke2fs = true } size = 8M }
image b.ext4 { ext4 { } size = 8M }
image c.vfat { vfat { } size = 4M mountpoint = "/boot" }
"#;
    let first = mkimg(&fx, cfg, None).unwrap();
    let kept = fx.dir.path().join("first");
    fs::rename(&first, &kept).unwrap();
    let second = mkimg(&fx, cfg, None).unwrap();
    for name in ["a.ext4", "b.ext4", "c.vfat"] {
        assert!(
            fs::read(kept.join(name)).unwrap() == fs::read(second.join(name)).unwrap(),
            "{name} differs between two builds"
        );
    }
}

// ---------------------------------------------------------------- squashfs

#[test]
fn squashfs_mountpoint_and_srcpath() {
    if !have_tools(&["genimage", "mksquashfs", "unsquashfs"]) {
        return;
    }
    let fx = Fixture::new();
    let cfg = r#"
image etc.squashfs { squashfs { compression = "xz" block-size = 64k } mountpoint = "/etc" }
image src.squashfs { squashfs { compression = "none" } srcpath = "src" size = 1M }
"#;
    let (g, m) = both(&fx, cfg);
    for name in ["etc.squashfs", "src.squashfs"] {
        let list = squash_list(&m.join(name));
        assert_eq!(squash_list(&g.join(name)), list, "{name}");
        assert!(list.len() >= 3, "{list:?}");
    }
    let sb = run_tool(
        "unsquashfs",
        &["-s", m.join("etc.squashfs").to_str().unwrap()],
    );
    assert!(
        sb.contains("Block size 65536") && sb.contains("Compression xz"),
        "{sb}"
    );
}

// ---------------------------------------------------------------- failures

/// Both tools refuse `cfg`; mkimg's message has `want`.
fn both_fail(fx: &Fixture, cfg: &str, want: &str) {
    assert!(genimage(fx, cfg).is_err(), "genimage accepted:\n{cfg}");
    let err = format!("{:#}", mkimg(fx, cfg, None).expect_err(cfg));
    assert!(err.contains(want), "{err}");
}

#[test]
fn configs_both_tools_refuse() {
    if !vfat_tools() || !ext_tools() {
        return;
    }
    let fx = Fixture::new();
    both_fail(
        &fx,
        "image a.vfat {\n vfat { files = { \"big.bin\" } }\n size = 1M\n}\n",
        "not enough space",
    );
    // Past the size itself: the pass stops at the member.
    both_fail(
        &fx,
        "image a.ext4 {\n ext4 { use-mke2fs = true }\n size = 1M\n mountpoint = \"/data\"\n}\n",
        "genimage.cfg:3: image 'a.ext4': its content does not fit in size 1048576 bytes: /data/big needs 1500160 bytes",
    );
    // Below the size, but not with the journal: mke2fs fails.
    both_fail(
        &fx,
        "image a.ext4 {\n ext4 { use-mke2fs = true }\n size = 2M\n mountpoint = \"/data\"\n}\n",
        "genimage.cfg:3: image 'a.ext4': the content does not fit in size 2097152 bytes",
    );
    both_fail(
        &fx,
        "image a.vfat {\n vfat { files = { \"nope.bin\" } }\n size = 1M\n}\n",
        "genimage.cfg:2: input 'nope.bin'",
    );
    both_fail(
        &fx,
        "image a.ext4 {\n ext4 { features = \"extent,bogus_feature\" }\n size = 4M\n srcpath = \"src\"\n}\n",
        "genimage.cfg:2: features: 'bogus_feature' is not an ext2/3/4 feature",
    );
    both_fail(
        &fx,
        "image a.ext4 {\n ext4 { }\n size = 4M\n mountpoint = \"/no/such/dir\"\n}\n",
        "mountpoint '/no/such/dir' is not a directory of the root tree",
    );
    both_fail(
        &fx,
        "image a.vfat {\n vfat { }\n srcpath = \"src\"\n}\n",
        "image 'a.vfat': no size given",
    );
    both_fail(
        &fx,
        "image a.vfat {\n vfat { }\n size = 1M\n srcpath = \"src\"\n mountpoint = \"/boot\"\n}\n",
        "srcpath and mountpoint cannot both be set",
    );
}

/// What genimage reads (it follows any symlink, takes any path) and mkimg
/// refuses: nothing outside the input path or the copied tree is read.
#[test]
fn reads_outside_the_inputs_are_refused() {
    let fx = Fixture::new();
    let fails = |cfg: &str, want: &str| {
        let err = format!("{:#}", mkimg(&fx, cfg, None).expect_err(cfg));
        assert!(err.contains(want), "{err}");
    };
    fails(
        "image a.vfat {\n vfat { files = { \"escape\" } }\n size = 1M\n}\n",
        "outside the input path",
    );
    fails(
        "image a.vfat {\n vfat { files = { \"../secret\" } }\n size = 1M\n}\n",
        "'..' is refused",
    );
    fails(
        "image a.ext4 {\n ext4 { }\n size = 4M\n srcpath = \"/etc\"\n}\n",
        "an absolute path is refused",
    );
    // A symlink in the copied tree that points out of it.
    fails(
        "image a.vfat {\n vfat { }\n size = 4M\n mountpoint = \"/data\"\n}\n",
        "/abs is a symlink to /nonexistent/abs, which leaves the copied tree",
    );
    fails(
        "image a.ext4 {\n ext4 { use-mke2fs = true mke2fs-conf = \"escape\" }\n size = 4M\n empty = true\n}\n",
        "outside the input path",
    );
    fails(
        "image a.vfat {\n vfat { extraargs = \"-s 8\" }\n size = 1M\n empty = true\n}\n",
        "extraargs '-s 8' is refused",
    );
}
