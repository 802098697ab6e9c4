//! The pass itself: formats, fields, safety checks, edits, split, captures.

use std::io::Read;

use tar::{Archive, EntryType};

use super::fixture::{
    acl, every_kind, image_edits, run, Fx, Member, CAP_NET_RAW, EPOCH, LONG, OLD,
};
use super::{gzip, xz, zstd};
use crate::rootfs::{Captured, Captures, Compression, Edits, MemKind, NodeType, RootfsError};
use crate::test_tools::have_tool;

/// One member of an output tar, as the `tar` crate reads it.
#[derive(Debug, Clone)]
pub(super) struct Out {
    pub(super) path: String,
    pub(super) kind: EntryType,
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) uname: String,
    pub(super) gname: String,
    pub(super) mtime: u64,
    pub(super) link: Option<String>,
    pub(super) dev: (Option<u32>, Option<u32>),
    pub(super) data: Vec<u8>,
    pub(super) xattrs: Vec<(String, Vec<u8>)>,
}

pub(super) fn read_back(tar: &[u8]) -> Vec<Out> {
    let mut archive = Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for p in pax {
                let p = p.unwrap();
                if let Some(name) = p.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), p.value_bytes().to_vec()));
                }
            }
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Out {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            uname: h.username().unwrap().unwrap_or_default().to_owned(),
            gname: h.groupname().unwrap().unwrap_or_default().to_owned(),
            mtime: h.mtime().unwrap(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            dev: (h.device_major().unwrap(), h.device_minor().unwrap()),
            data,
            xattrs,
        });
    }
    out
}

pub(super) fn find<'a>(out: &'a [Out], path: &str) -> &'a Out {
    out.iter()
        .rfind(|o| o.path == path)
        .unwrap_or_else(|| panic!("{path} missing from output"))
}

fn default_run(input: &[u8]) -> super::fixture::Run {
    run(input, &image_edits(), &["/boot/efi"], Captures::default()).unwrap()
}

#[test]
fn every_kind_round_trips_each_compression() {
    let plain = every_kind();
    let cases = [
        (Compression::None, plain.clone()),
        (Compression::Gzip, gzip(&plain)),
        (Compression::Xz, xz(&plain)),
        (Compression::Zstd, zstd(&plain)),
    ];
    let mut first: Option<Vec<u8>> = None;
    for (compression, input) in cases {
        let r = default_run(&input);
        assert_eq!(r.summary.compression, compression);
        assert_eq!(
            *first.get_or_insert(r.root_tar.clone()),
            r.root_tar,
            "{compression:?} output differs"
        );
        let out = read_back(&r.root_tar);
        assert_eq!(out[0].path, "./");
        assert_eq!(out[0].kind, EntryType::Directory);

        let null = find(&out, "dev/null");
        assert_eq!(
            (null.kind, null.mode, null.dev),
            (EntryType::Char, 0o666, (Some(1), Some(3)))
        );
        let sda = find(&out, "dev/sda");
        assert_eq!(
            (sda.kind, sda.mode, sda.gid, sda.gname.as_str(), sda.dev),
            (EntryType::Block, 0o660, 6, "disk", (Some(8), Some(0)))
        );
        assert_eq!(
            (
                find(&out, "run/initctl").kind,
                find(&out, "run/initctl").mode
            ),
            (EntryType::Fifo, 0o600)
        );
        assert_eq!(find(&out, "tmp").mode, 0o1777);

        let sudo = find(&out, "usr/bin/sudo");
        assert_eq!(
            (sudo.kind, sudo.mode, sudo.data.len()),
            (EntryType::Regular, 0o4755, 83)
        );
        let ping = find(&out, "usr/bin/ping");
        assert_eq!(
            ping.xattrs,
            vec![("security.capability".to_owned(), CAP_NET_RAW.to_vec())]
        );
        let ping4 = find(&out, "usr/bin/ping4");
        assert_eq!(
            (ping4.kind, ping4.link.as_deref()),
            (EntryType::Link, Some("usr/bin/ping"))
        );
        let so = find(&out, "usr/lib/libx.so");
        assert_eq!(
            (so.kind, so.link.as_deref()),
            (EntryType::Symlink, Some("libx.so.1"))
        );
        assert_eq!(
            find(&out, "etc/mtab").link.as_deref(),
            Some("/proc/self/mounts")
        );

        let home = find(&out, "home/user");
        assert_eq!(
            (
                home.mode,
                home.uid,
                home.gid,
                home.uname.as_str(),
                home.gname.as_str()
            ),
            (0o750, 1000, 1000, "user", "user")
        );
        let notes = find(&out, "home/user/notes");
        assert_eq!(notes.data, b"notes\n");
        assert_eq!(notes.mtime, EPOCH, "future mtime is clamped");
        assert_eq!(
            notes.xattrs,
            vec![
                ("system.posix_acl_access".to_owned(), acl(1000)),
                ("user.comment".to_owned(), b"hello".to_vec())
            ]
        );
        assert_eq!(find(&out, LONG).data, b"long\n");
        assert_eq!(find(&out, "etc/shadow").mtime, OLD, "old mtime kept");

        let recorded: Vec<(&str, &str)> = r
            .xattrs
            .iter()
            .map(|x| (x.path.as_str(), x.name.as_str()))
            .collect();
        assert_eq!(
            recorded,
            [
                ("usr/bin/ping", "security.capability"),
                ("home/user/notes", "system.posix_acl_access"),
                ("home/user/notes", "user.comment")
            ]
        );
        assert!(out.iter().all(|o| o.mtime <= EPOCH));
    }
}

#[test]
fn output_is_deterministic() {
    let input = zstd(&every_kind());
    let a = default_run(&input);
    let b = default_run(&input);
    assert_eq!(a.root_tar, b.root_tar);
    assert_eq!(a.splits[0].entries(), b.splits[0].entries());
    assert_eq!(a.summary, b.summary);
}

fn expect_truncated(input: &[u8], what: &str) {
    match run(input, &Edits::new(EPOCH), &[], Captures::default()) {
        Err(
            e @ (RootfsError::TruncatedMember { .. }
            | RootfsError::TruncatedArchive { .. }
            | RootfsError::Input { .. }),
        ) => {
            let cause = std::error::Error::source(&e).map(|c| c.to_string());
            eprintln!("{what}: {e} ({cause:?})");
        }
        Err(other) => panic!("{what}: unexpected error {other}"),
        Ok(r) => panic!(
            "{what}: truncated input accepted ({} members)",
            r.summary.members
        ),
    }
}

#[test]
fn truncated_inputs_are_errors() {
    let plain = every_kind();
    // Inside a member's data, and exactly at a header boundary.
    let cut = plain.len() / 2;
    expect_truncated(&plain[..cut], "plain tar cut in the middle");
    let no_end = &plain[..plain.len() - 1024]; // every member complete, no end blocks
    let err = run(no_end, &Edits::new(EPOCH), &[], Captures::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, RootfsError::TruncatedArchive { members: 37, .. }),
        "{err}"
    );
    let boundary = plain.len() - 1024 - 512; // drop end blocks and the last data block
    expect_truncated(&plain[..boundary], "plain tar cut at a block boundary");
    let err = run(
        &plain[..boundary],
        &Edits::new(EPOCH),
        &[],
        Captures::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
    for (what, packed) in [
        ("zstd", zstd(&plain)),
        ("gzip", gzip(&plain)),
        ("xz", xz(&plain)),
    ] {
        expect_truncated(&packed[..packed.len() * 2 / 3], what);
        expect_truncated(
            &packed[..packed.len() - 4],
            &format!("{what} without its last 4 bytes"),
        );
    }
}

#[test]
fn truncated_member_error_names_the_member() {
    let plain = Fx::new()
        .dir("./", 0o755)
        .file("./big", &vec![7u8; 100_000])
        .finish();
    let err = run(
        &plain[..50_000],
        &Edits::new(EPOCH),
        &[],
        Captures::default(),
    )
    .err()
    .unwrap();
    match err {
        RootfsError::TruncatedMember {
            name,
            index,
            expected,
            ..
        } => {
            assert_eq!((name.as_str(), index, expected), ("./big", 1, 100_000));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn unknown_magic_names_the_first_bytes() {
    let err = run(
        b"BZh91AY&SY not supported",
        &Edits::new(EPOCH),
        &[],
        Captures::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("42 5a 68 39"), "{err}");
    assert!(matches!(
        run(b"", &Edits::new(EPOCH), &[], Captures::default()),
        Err(RootfsError::EmptyInput)
    ));
}

#[test]
fn dotdot_entry_is_rejected_with_its_name() {
    let input = Fx::new()
        .dir("./", 0o755)
        .file("../../tmp/x", b"evil")
        .finish();
    let err = run(&input, &Edits::new(EPOCH), &[], Captures::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, RootfsError::PathEscapes { name, index: 1, .. } if name == "../../tmp/x"),
        "{err}"
    );
    assert!(err.to_string().contains("../../tmp/x"));
    let inner = Fx::new()
        .dir("./", 0o755)
        .dir("a", 0o755)
        .file("a/../../x", b"")
        .finish();
    assert!(matches!(
        run(&inner, &Edits::new(EPOCH), &[], Captures::default()),
        Err(RootfsError::PathEscapes { .. })
    ));
}

#[test]
fn escaping_or_dangling_hardlinks_are_rejected() {
    let escape = Fx::new()
        .dir("./", 0o755)
        .dir("a", 0o755)
        .hardlink("a/shadow", "a/../../etc/shadow")
        .finish();
    let err = run(&escape, &Edits::new(EPOCH), &[], Captures::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, RootfsError::HardLinkEscapes { name, .. } if name == "a/shadow"),
        "{err}"
    );
    let forward = Fx::new()
        .dir("./", 0o755)
        .hardlink("b", "c")
        .file("c", b"x")
        .finish();
    let err = run(&forward, &Edits::new(EPOCH), &[], Captures::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, RootfsError::HardLinkTargetMissing { name, target, .. } if name == "b" && target == "c"),
        "{err}"
    );
    // Resolving `..` inside the root is fine.
    let inside = Fx::new()
        .dir("./", 0o755)
        .dir("a", 0o755)
        .file("c", b"x")
        .hardlink("a/b", "a/../c")
        .finish();
    let r = run(&inside, &Edits::new(EPOCH), &[], Captures::default()).unwrap();
    assert_eq!(
        find(&read_back(&r.root_tar), "a/b").link.as_deref(),
        Some("c")
    );
    // Across partitions is impossible.
    let across = Fx::new()
        .dir("./", 0o755)
        .dir("boot", 0o755)
        .file("boot/k", b"k")
        .hardlink("k2", "boot/k")
        .finish();
    let mut edits = Edits::new(EPOCH);
    edits.remove.clear();
    let err = run(&across, &edits, &["/boot"], Captures::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, RootfsError::HardLinkAcrossPartitions { .. }),
        "{err}"
    );
}

#[test]
fn edited_symlink_is_replaced_not_followed() {
    let r = default_run(&every_kind());
    let out = read_back(&r.root_tar);
    let hostnames: Vec<&Out> = out.iter().filter(|o| o.path == "etc/hostname").collect();
    assert_eq!(hostnames.len(), 1);
    let h = hostnames[0];
    assert_eq!(
        (h.kind, h.mode, h.uid, h.gid, h.link.as_deref()),
        (EntryType::Regular, 0o644, 0, 0, None)
    );
    assert_eq!(h.data, b"board\n");
    assert_eq!(h.mtime, EPOCH);
    let shadow = find(&out, "etc/shadow");
    assert_eq!(
        (shadow.data.as_slice(), shadow.mode, shadow.gid),
        (&b"root:*:19000::::::\n"[..], 0o640, 42)
    );
    assert_eq!(
        find(&out, "etc/fstab").data,
        b"LABEL=rootfs / ext4 defaults 0 1\n",
        "absent file added"
    );
}

#[test]
fn hosts_line_is_rewritten_or_created() {
    let out = read_back(&default_run(&every_kind()).root_tar);
    assert_eq!(
        String::from_utf8(find(&out, "etc/hosts").data.clone()).unwrap(),
        "127.0.0.1\tlocalhost\n127.0.1.1\tboard\n::1\tlocalhost ip6-localhost\n"
    );
    let bare = Fx::new()
        .dir("./", 0o755)
        .dir("etc", 0o755)
        .file("etc/hosts", b"# none\n10.1.1.1 a\n")
        .finish();
    let out = read_back(
        &run(&bare, &image_edits(), &[], Captures::default())
            .unwrap()
            .root_tar,
    );
    assert_eq!(
        find(&out, "etc/hosts").data,
        b"127.0.1.1\tboard\n# none\n10.1.1.1 a\n"
    );
    let none = Fx::new().dir("./", 0o755).finish();
    let out = read_back(
        &run(&none, &image_edits(), &[], Captures::default())
            .unwrap()
            .root_tar,
    );
    let hosts = String::from_utf8(find(&out, "etc/hosts").data.clone()).unwrap();
    assert!(
        hosts.starts_with("127.0.0.1\tlocalhost\n127.0.1.1\tboard\n"),
        "{hosts}"
    );
    let etc = find(&out, "etc");
    assert_eq!(
        (etc.kind, etc.mode, etc.uid),
        (EntryType::Directory, 0o755, 0),
        "implicit parent"
    );
}

#[test]
fn removal_list_drops_paths_and_subtrees() {
    let r = default_run(&every_kind());
    let paths: Vec<String> = read_back(&r.root_tar).into_iter().map(|o| o.path).collect();
    assert!(
        !paths
            .iter()
            .any(|p| p == "etc/resolv.conf" || p == ".dockerenv"),
        "{paths:?}"
    );
    assert_eq!(r.summary.removed, ["/etc/resolv.conf", "/.dockerenv"]);
    let mut edits = Edits::new(EPOCH);
    edits.remove.push("/usr/lib".into());
    let r = run(&every_kind(), &edits, &[], Captures::default()).unwrap();
    let paths: Vec<String> = read_back(&r.root_tar).into_iter().map(|o| o.path).collect();
    assert!(!paths.iter().any(|p| p.starts_with("usr/lib")), "{paths:?}");
    assert!(paths.iter().any(|p| p == "usr/bin/ping"));
}

#[test]
fn split_sends_esp_to_memory_and_keeps_an_empty_mount_point() {
    let r = default_run(&every_kind());
    let out = read_back(&r.root_tar);
    let mount = find(&out, "boot/efi");
    assert_eq!(
        (mount.kind, mount.mode, mount.mtime),
        (EntryType::Directory, 0o700, OLD + 7)
    );
    assert!(!out.iter().any(|o| o.path.starts_with("boot/efi/")));
    let esp = r.splits[0].entries();
    let listing: Vec<(&str, &MemKind, u32)> = esp
        .iter()
        .map(|e| (e.path.as_str(), &e.kind, e.mode))
        .collect();
    assert_eq!(
        listing,
        [
            ("EFI", &MemKind::Dir, 0o700),
            ("EFI/debian", &MemKind::Dir, 0o700),
            (
                "EFI/debian/grubriscv64.efi",
                &MemKind::File(b"MZ-efi-binary".to_vec()),
                0o644
            )
        ]
    );
    assert_eq!(r.summary.outputs[1].mount_point, "/boot/efi");
    assert_eq!(r.summary.outputs[1].file_bytes, 13);

    // Missing mount points are created (0755 root), nested splits route deepest-first.
    let bare = Fx::new()
        .dir("./", 0o755)
        .file("boot/vmlinuz", b"k")
        .finish();
    let r = run(
        &bare,
        &Edits::new(EPOCH),
        &["/boot", "/boot/efi"],
        Captures::default(),
    )
    .unwrap();
    let out = read_back(&r.root_tar);
    let boot = find(&out, "boot");
    assert_eq!(
        (boot.kind, boot.mode, boot.uid),
        (EntryType::Directory, 0o755, 0)
    );
    let in_boot: Vec<&str> = r.splits[0]
        .entries()
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(in_boot, ["vmlinuz", "efi"]);
    assert!(r.splits[1].entries().is_empty());
}

#[test]
fn symlink_under_vfat_mount_point_is_an_error() {
    let input = Fx::new()
        .dir("./", 0o755)
        .dir("boot", 0o755)
        .dir("boot/efi", 0o755)
        .symlink("boot/efi/x", "y")
        .finish();
    let err = run(
        &input,
        &Edits::new(EPOCH),
        &["/boot/efi"],
        Captures::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("/boot/efi/x"), "{err}");
    let mount_file = Fx::new()
        .dir("./", 0o755)
        .file("boot", b"not a dir")
        .finish();
    assert!(matches!(
        run(
            &mount_file,
            &Edits::new(EPOCH),
            &["/boot"],
            Captures::default()
        ),
        Err(RootfsError::MountPointNotDirectory { .. })
    ));
}

#[test]
fn captures_collect_files_dirs_and_elf_heads() {
    let captures = Captures {
        files: vec![
            "/etc/default/grub".into(),
            "/vmlinuz".into(),
            "/etc/hostname".into(),
            "/usr/bin/ping4".into(),
            "/nope".into(),
        ],
        dirs: vec!["/boot".into(), "/".into()],
        ..Captures::default()
    };
    let r = run(&every_kind(), &image_edits(), &["/boot/efi"], captures).unwrap();
    let c = &r.summary.captures;
    assert_eq!(
        c.files["/etc/default/grub"],
        Captured::File(b"GRUB_TIMEOUT=5\n".to_vec())
    );
    assert_eq!(
        c.files["/vmlinuz"],
        Captured::Symlink("boot/vmlinuz-6.1.0-riscv64".into())
    );
    assert_eq!(
        c.files["/etc/hostname"],
        Captured::File(b"board\n".to_vec()),
        "captured after edits"
    );
    assert_eq!(
        c.files["/usr/bin/ping4"],
        Captured::HardLink("/usr/bin/ping".into())
    );
    assert!(!c.files.contains_key("/nope"));
    let boot: Vec<(&str, NodeType)> = c.dirs["/boot"]
        .iter()
        .map(|d| (d.name.as_str(), d.node))
        .collect();
    assert_eq!(
        boot,
        [
            ("vmlinuz-6.1.0-riscv64", NodeType::File),
            ("initrd.img-6.1.0-riscv64", NodeType::File),
            ("efi", NodeType::Dir)
        ]
    );
    assert!(c.dirs["/"].iter().any(|d| d.name == "vmlinuz"
        && d.symlink_target.as_deref() == Some("boot/vmlinuz-6.1.0-riscv64")));
    let elf: Vec<&str> = c.elf_heads.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        elf,
        ["/usr/bin/ping", "/usr/bin/sudo"],
        "only regular files under bin dirs"
    );
    assert_eq!(c.elf_heads[0].head.len(), 64);
    assert_eq!(c.elf_heads[0].head[18], 0xf3);
}

#[test]
fn summary_counts_and_estimates() {
    let r = default_run(&every_kind());
    let s = &r.summary;
    assert_eq!(s.members, 37);
    let root = &s.outputs[0];
    assert_eq!(s.entries(), root.entries + s.outputs[1].entries);
    assert_eq!(root.inodes + 1, root.entries, "one hard link");
    assert!(root.ext4_estimate_bytes() >= root.file_bytes + root.inodes * 256);
    assert_eq!(root.ext4_estimate_bytes() % 256, 0);
}

#[test]
fn xattr_values_containing_newlines_survive() {
    // uid 10 puts a 0x0a byte into the ACL; `tar::Archive` cannot read that
    // back, so Python's tarfile is the oracle here.
    let value = acl(10);
    assert!(value.contains(&b'\n'));
    let input = Fx::new()
        .dir("./", 0o755)
        .add(Member {
            pax: vec![("SCHILY.xattr.system.posix_acl_access", value.clone())],
            ..Member::new("f", EntryType::Regular)
        })
        .file("g", b"after")
        .finish();
    let r = run(&input, &Edits::new(EPOCH), &[], Captures::default()).unwrap();
    assert_eq!(r.xattrs[0].value, value);
    if !have_tool("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    std::fs::write(&path, &r.root_tar).unwrap();
    let script = "import sys,tarfile\nfor m in tarfile.open(sys.argv[1]):\n  for k,v in sorted(m.pax_headers.items()):\n    print(m.name, k, v.encode('utf-8','surrogateescape').hex())\n  print(m.name, m.size)";
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        text.contains(&format!("f SCHILY.xattr.system.posix_acl_access {hex}")),
        "{text}"
    );
    assert!(text.contains("g 5"), "{text}");
}

#[test]
fn overlay_adds_and_replaces_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
    std::fs::write(root.join("etc/shadow"), b"overlay shadow\n").unwrap();
    std::fs::write(root.join("etc/ssh/banner"), b"hi\n").unwrap();
    std::os::unix::fs::symlink("/etc/ssh/banner", root.join("etc/issue")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(root.join("etc/ssh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut edits = image_edits();
    edits.overlay = crate::rootfs::scan_overlay(root).unwrap();
    let r = run(&every_kind(), &edits, &[], Captures::default()).unwrap();
    let out = read_back(&r.root_tar);
    let shadow = find(&out, "etc/shadow");
    assert_eq!(
        (
            shadow.data.as_slice(),
            shadow.mode,
            shadow.gid,
            shadow.mtime
        ),
        (&b"overlay shadow\n"[..], 0o600, 0, EPOCH)
    );
    let ssh = find(&out, "etc/ssh");
    assert_eq!((ssh.kind, ssh.mode), (EntryType::Directory, 0o700));
    assert_eq!(find(&out, "etc/ssh/banner").data, b"hi\n");
    assert_eq!(
        find(&out, "etc/issue").link.as_deref(),
        Some("/etc/ssh/banner")
    );
    assert_eq!(find(&out, "etc").mode, 0o755, "tarball dir metadata kept");
    assert_eq!(out.iter().filter(|o| o.path == "etc").count(), 1);
}

#[test]
fn gnu_sparse_member_is_expanded() {
    if !have_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("sparse.img")).unwrap();
    f.set_len(8 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    // Six data islands: more than the 4 map slots of the GNU header, so an
    // extended sparse header follows.
    for i in 0..6u64 {
        f.write_all_at(format!("island {i}").as_bytes(), i * (1 << 20) + 4096)
            .unwrap();
    }
    drop(f);
    let tarball = dir.path().join("in.tar");
    let st = std::process::Command::new("tar")
        .args(["--format=gnu", "--sparse", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let raw = std::fs::read(&tarball).unwrap();
    let typeflags: Vec<u8> = raw.chunks(512).map(|b| b[156]).collect();
    assert!(typeflags.contains(&b'S'), "GNU tar wrote no sparse member");
    let r = run(&raw, &Edits::new(EPOCH), &[], Captures::default()).unwrap();
    let img = find(&read_back(&r.root_tar), "sparse.img").data.clone();
    assert_eq!(img.len(), 8 << 20);
    for i in 0..6u64 {
        let at = (i * (1 << 20) + 4096) as usize;
        assert_eq!(&img[at..at + 8], format!("island {i}").as_bytes());
    }
    assert_eq!(img.iter().filter(|b| **b != 0).count(), 6 * 8);
}

#[test]
fn render_hosts_keeps_one_line_in_place() {
    let text = "127.0.0.1 localhost\n127.0.1.1 a a.lan\n# c\n127.0.1.1 b\n";
    assert_eq!(
        crate::rootfs::render_hosts(Some(text), &"board".parse().unwrap()),
        "127.0.0.1 localhost\n127.0.1.1\tboard\n# c\n"
    );
}

/// A tree with grub binaries at several depths and BLS entries.
/// `symlink` adds one in the ESP (which a vfat split refuses).
fn pattern_tree(entry_bytes: usize, entries: usize, symlink: bool) -> Vec<u8> {
    let mut fx = Fx::new();
    fx.dir("./", 0o755)
        .dir("boot/", 0o755)
        .dir("boot/efi/", 0o755)
        .dir("boot/efi/EFI/", 0o755)
        .dir("boot/efi/EFI/fedora/", 0o755)
        .file("boot/efi/EFI/fedora/grubx64.efi", b"fedora grub")
        .file("boot/efi/EFI/fedora/grubx64.efi.bak", b"not me")
        .dir("boot/efi/EFI/a/", 0o755)
        .dir("boot/efi/EFI/a/b/", 0o755)
        .file("boot/efi/EFI/a/b/grubx64.efi", b"too deep");
    if symlink {
        fx.symlink("boot/efi/EFI/grubx64.efi", "fedora/grubx64.efi");
    }
    fx.dir("boot/loader/", 0o755)
        .dir("boot/loader/entries/", 0o755)
        .dir("boot/loader/entries/dir.conf/", 0o755)
        .file("boot/loader/entries/notes.txt", b"not an entry");
    let body = vec![b'#'; entry_bytes];
    for i in 0..entries {
        fx.file(&format!("boot/loader/entries/e{i}.conf"), &body);
    }
    fx.finish()
}

#[test]
fn patterns_match_one_component_per_star() {
    let captures = Captures {
        patterns: vec![
            "/boot/efi/EFI/*/grubx64.efi".into(),
            "/boot/loader/entries/*.conf".into(),
        ],
        ..Captures::default()
    };
    // /boot/efi is split to the ESP's sink: captured all the same.
    let r = run(
        &pattern_tree(10, 2, false),
        &image_edits(),
        &["/boot/efi"],
        captures,
    )
    .unwrap();
    let keys: Vec<&str> = r
        .summary
        .captures
        .files
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "/boot/efi/EFI/fedora/grubx64.efi",
            "/boot/loader/entries/dir.conf",
            "/boot/loader/entries/e0.conf",
            "/boot/loader/entries/e1.conf",
        ]
    );
    let files = &r.summary.captures.files;
    assert_eq!(
        files["/boot/efi/EFI/fedora/grubx64.efi"],
        Captured::File(b"fedora grub".to_vec())
    );
    assert_eq!(
        files["/boot/loader/entries/dir.conf"],
        Captured::Other(NodeType::Dir)
    );
    assert_eq!(
        files["/boot/loader/entries/e1.conf"],
        Captured::File(vec![b'#'; 10])
    );
    // A pattern in the middle of a path, and a component without a star.
    let captures = Captures {
        patterns: vec![
            "/boot/*/EFI/*/grubx64.efi".into(),
            "/boot/efi/EFI/grub*".into(),
        ],
        ..Captures::default()
    };
    let r = run(&pattern_tree(0, 0, true), &image_edits(), &[], captures).unwrap();
    let keys: Vec<&str> = r
        .summary
        .captures
        .files
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "/boot/efi/EFI/fedora/grubx64.efi",
            "/boot/efi/EFI/grubx64.efi",
        ]
    );
    assert_eq!(
        r.summary.captures.files["/boot/efi/EFI/grubx64.efi"],
        Captured::Symlink("fedora/grubx64.efi".into())
    );
}

#[test]
fn total_capture_limit_counts_every_file() {
    let patterns = vec!["/boot/loader/entries/*.conf".to_string()];
    // Five entries of 100 bytes: 500 bytes in all.
    let input = pattern_tree(100, 5, false);
    let limited = |total: u64| Captures {
        patterns: patterns.clone(),
        max_file_bytes: 100,
        max_total_bytes: total,
        ..Captures::default()
    };
    let r = run(&input, &Edits::new(EPOCH), &[], limited(500)).unwrap();
    assert_eq!(r.summary.captures.files.len(), 6, "five files and dir.conf");
    match run(&input, &Edits::new(EPOCH), &[], limited(499)) {
        Err(RootfsError::CaptureTooLarge { path, limit }) => {
            assert_eq!(limit, 499);
            assert!(path.starts_with("boot/loader/entries/e4.conf"), "{path}");
            assert!(path.contains("with the files captured before it"), "{path}");
        }
        other => panic!("expected CaptureTooLarge, got {other:?}"),
    }
    // One file over max_file_bytes names that file alone.
    match run(
        &input,
        &Edits::new(EPOCH),
        &[],
        Captures {
            max_file_bytes: 99,
            ..limited(1000)
        },
    ) {
        Err(RootfsError::CaptureTooLarge { path, limit }) => {
            assert_eq!((path.as_str(), limit), ("boot/loader/entries/e0.conf", 99));
        }
        other => panic!("expected CaptureTooLarge, got {other:?}"),
    }
}

/// The --verify-repro test hook appends one byte to exactly the file it
/// names and keeps its mode; a path the tarball has no file at fails the
/// pass instead of perturbing nothing.
#[test]
fn perturb_appends_one_byte_to_the_named_file_only() {
    let plain = every_kind();
    let before = read_back(&default_run(&plain).root_tar);
    let mut edits = image_edits();
    edits.perturb = Some("/usr/bin/sudo".into());
    let r = run(&plain, &edits, &["/boot/efi"], Captures::default()).unwrap();
    let after = read_back(&r.root_tar);
    let (old, new) = (find(&before, "usr/bin/sudo"), find(&after, "usr/bin/sudo"));
    assert_eq!(new.data, [old.data.as_slice(), b"#"].concat());
    assert_eq!(
        (new.mode, new.uid, new.mtime),
        (old.mode, old.uid, old.mtime)
    );
    let others = |out: &[Out]| -> Vec<(String, Vec<u8>)> {
        out.iter()
            .filter(|o| o.path != "usr/bin/sudo")
            .map(|o| (o.path.clone(), o.data.clone()))
            .collect()
    };
    assert_eq!(others(&before), others(&after));

    edits.perturb = Some("/usr/bin/no-such-file".into());
    let err = run(&plain, &edits, &["/boot/efi"], Captures::default()).unwrap_err();
    assert!(
        matches!(&err, RootfsError::PerturbMissing { path } if path == "/usr/bin/no-such-file"),
        "{err}"
    );
}
