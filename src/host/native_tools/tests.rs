//! Planning over small roots laid out like Debian's and Fedora's foreign
//! roots (programs are an ELF header of the rootfs's architecture and the
//! implementation's name: enough to be recognised, never run), with the
//! host's real programs and libraries (Debian 12 x86_64) and `ldd` as the
//! oracle for the libraries; `ldconfig -p` for the cache reader; and, as
//! root, a whole session: the binds in place and read-only, the programs
//! running natively, a hostile script unable to change them.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::in_root::{resolve, Resolved};
use super::{ld_cache, Bind, NativeTools, Refusal};
use crate::arch::Arch;
use crate::host::chroot::CHROOT_PATH;
use crate::test_tools::{require, skip_or_fail};

mod session;

/// A 64-byte ELF header from a Debian package (tests/fixtures/elf).
fn elf_header(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elf")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A stand-in program: `header`, then `marker` among other strings.
fn program(header: &str, marker: &[u8]) -> Vec<u8> {
    let mut bytes = elf_header(header);
    bytes.extend_from_slice(b"\0usage: %s\0");
    bytes.extend_from_slice(marker);
    bytes.push(0);
    bytes
}

fn put(root: &Path, path: &str, bytes: &[u8]) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn link(root: &Path, path: &str, target: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

const COREUTILS: [&str; 7] = ["cat", "tr", "cut", "basename", "dirname", "rm", "tail"];

/// A merged-/usr Debian root of `header`'s architecture with every tool.
fn debian_root(root: &Path, header: &str) {
    put(root, "usr/bin/dash", &program(header, b"dash_errno"));
    link(root, "usr/bin/sh", "dash");
    put(root, "usr/bin/sed", &program(header, b"GNU sed"));
    put(root, "usr/bin/grep", &program(header, b"GNU grep"));
    for tool in COREUTILS {
        put(
            root,
            &format!("usr/bin/{tool}"),
            &program(header, b"GNU coreutils"),
        );
    }
    put(
        root,
        "usr/lib/riscv64-linux-gnu/libc.so.6",
        &elf_header(header),
    );
    fs::create_dir_all(root.join("usr/sbin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("proc")).unwrap();
    for (name, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        link(root, name, target);
    }
}

/// The planning tests read the host's programs: Debian 12 x86_64's.
fn debian_x86_64_host(test: &str) -> bool {
    require(
        std::env::consts::ARCH == "x86_64"
            && Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6").is_file(),
        format_args!("{test}: needs a Debian x86_64 host"),
    )
}

fn plan(root: &Path, arch: Arch) -> Result<NativeTools, Refusal> {
    NativeTools::plan(root, arch, CHROOT_PATH)
}

/// Sonames `ldd` lists for `programs`, the loader left out.
fn ldd_sonames(programs: &[&str]) -> BTreeSet<String> {
    let out = Command::new("ldd").args(programs).output().unwrap();
    assert!(out.status.success(), "ldd {programs:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(" => ")
                .map(|(name, _)| name.trim().to_string())
        })
        .collect()
}

fn binds_under<'a>(plan: &'a NativeTools, dir: &str) -> Vec<&'a Bind> {
    plan.binds()
        .iter()
        .filter(|b| b.inside.starts_with(dir))
        .collect()
}

#[test]
fn plans_every_tool_over_a_debian_riscv64_root() {
    if !debian_x86_64_host("plans_every_tool_over_a_debian_riscv64_root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    debian_root(dir.path(), "dash-riscv64.elfhdr");
    let plan = plan(dir.path(), Arch::Riscv64).unwrap();
    assert_eq!(
        plan.tools(),
        [
            "sh (dash)",
            "sed",
            "grep",
            "cat",
            "tr",
            "cut",
            "basename",
            "dirname",
            "rm",
            "tail"
        ]
    );
    assert_eq!(plan.skipped(), [] as [String; 0]);
    // Each tool's one file (/bin and /usr/bin/sh lead there), covered by
    // the host's program of the same name.
    let tools = binds_under(&plan, "/usr/bin");
    assert_eq!(tools.len(), 10, "{tools:?}");
    for bind in &tools {
        assert!(!bind.create, "{bind:?}");
        assert_eq!(bind.host.file_name(), bind.inside.file_name(), "{bind:?}");
        assert!(bind.host.starts_with("/usr/bin"), "{bind:?}");
    }
    // The loader at its PT_INTERP path, a mount point to make.
    let loader = binds_under(&plan, "/lib64");
    assert_eq!(loader.len(), 1, "{:?}", plan.binds());
    assert_eq!(loader[0].inside, Path::new("/lib64/ld-linux-x86-64.so.2"));
    assert_eq!(
        loader[0].host,
        fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap()
    );
    assert!(loader[0].create);
    // The libraries: exactly what ldd says the host's programs load.
    let libs = binds_under(&plan, "/usr/lib/x86_64-linux-gnu");
    let planned: BTreeSet<String> = libs
        .iter()
        .map(|b| b.inside.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut programs = vec!["/usr/bin/dash", "/usr/bin/sed", "/usr/bin/grep"];
    let coreutils: Vec<String> = COREUTILS.iter().map(|t| format!("/usr/bin/{t}")).collect();
    programs.extend(coreutils.iter().map(String::as_str));
    assert_eq!(planned, ldd_sonames(&programs));
    assert!(planned.contains("libc.so.6") && planned.contains("libpcre2-8.so.0"));
    // Nothing else, and only regular host files of the system.
    assert_eq!(tools.len() + loader.len() + libs.len(), plan.binds().len());
    for bind in plan.binds() {
        assert!(bind.host.is_file(), "{bind:?}");
        assert!(
            bind.host.starts_with("/usr/") || bind.host.starts_with("/lib"),
            "{bind:?}"
        );
    }
}

#[test]
fn the_host_architecture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Ok(host) = std::env::consts::ARCH.parse::<Arch>() else {
        skip_or_fail("the host's architecture is not one mkimg knows");
        return;
    };
    debian_root(dir.path(), "true-amd64.elfhdr");
    let refusal = plan(dir.path(), host).unwrap_err();
    match host {
        Arch::X86_64 | Arch::Aarch64 => {
            assert!(
                matches!(refusal, Refusal::HostArch(a) if a == host),
                "{refusal}"
            );
            assert!(
                refusal
                    .to_string()
                    .ends_with("the host's own architecture: nothing is emulated"),
                "{refusal}"
            );
        }
        _ => assert!(matches!(refusal, Refusal::UnknownHost(_)), "{refusal}"),
    }
}

/// A cache of glibc's current layout with (flags, name) entries.
fn ld_so_cache(entries: &[(i32, &str)]) -> Vec<u8> {
    let mut strings = Vec::new();
    let mut keys = Vec::new();
    let strings_at = 48 + 24 * entries.len();
    for (_, name) in entries {
        keys.push((strings_at + strings.len()) as u32);
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
    }
    let mut out = b"glibc-ld.so.cache1.1".to_vec();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.resize(48, 0);
    for ((flags, _), key) in entries.iter().zip(keys) {
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&[0; 12]);
    }
    out.extend_from_slice(&strings);
    out
}

#[test]
fn paths_and_files_the_host_loader_would_use_are_refused() {
    if !debian_x86_64_host("paths_and_files_the_host_loader_would_use_are_refused") {
        return;
    }
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 6] = [
        (
            "the rootfs has amd64 multiarch libraries",
            |r| put(r, "usr/lib/x86_64-linux-gnu/libc.so.6", b"x"),
            // Through the rootfs's /lib -> usr/lib, the first place the loader looks.
            "/lib/x86_64-linux-gnu exists in the rootfs",
        ),
        (
            "the rootfs has an x86_64 loader",
            |r| put(r, "lib64/ld-linux-x86-64.so.2", b"x"),
            "/lib64/ld-linux-x86-64.so.2 exists in the rootfs",
        ),
        (
            "a /lib that is not merged into /usr holds them",
            |r| {
                fs::remove_file(r.join("lib")).unwrap();
                put(r, "lib/x86_64-linux-gnu/libc.so.6", b"x");
            },
            "/lib/x86_64-linux-gnu exists in the rootfs",
        ),
        (
            "a preload list",
            |r| put(r, "etc/ld.so.preload", b"/usr/lib/libhook.so\n"),
            "/etc/ld.so.preload",
        ),
        (
            "a cache entry of the host's architecture",
            |r| {
                let cache = ld_so_cache(&[(0x1003, "libm.so.6"), (0x0303, "libevil.so.1")]);
                put(r, "etc/ld.so.cache", &cache);
            },
            "lists libevil.so.1, a library of the host's architecture",
        ),
        (
            "a cache whose entries run past its end",
            |r| {
                let mut cache = ld_so_cache(&[(0x1003, "libm.so.6")]);
                cache[20] = 200;
                cache.truncate(60);
                put(r, "etc/ld.so.cache", &cache);
            },
            "cannot be read as glibc writes it (200 entries",
        ),
    ];
    for (what, spoil, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        debian_root(dir.path(), "dash-riscv64.elfhdr");
        plan(dir.path(), Arch::Riscv64).unwrap_or_else(|e| panic!("{what}: {e}"));
        spoil(dir.path());
        let refusal = plan(dir.path(), Arch::Riscv64).unwrap_err().to_string();
        assert!(refusal.contains(expected), "{what}: {refusal}");
    }
}

#[test]
fn a_fedora_lib64_link_gets_only_the_loader() {
    if !debian_x86_64_host("a_fedora_lib64_link_gets_only_the_loader") {
        return;
    }
    // Fedora/openEuler aarch64: /lib64 -> usr/lib64, which holds aarch64
    // libraries, listed in the cache with aarch64 flags.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    debian_root(root, "dash-arm64.elfhdr");
    put(
        root,
        "usr/lib64/libc.so.6",
        &elf_header("dash-arm64.elfhdr"),
    );
    put(
        root,
        "usr/lib64/libpcre2-8.so.0",
        &elf_header("dash-arm64.elfhdr"),
    );
    link(root, "lib64", "usr/lib64");
    let cache = ld_so_cache(&[(0x0a03, "libc.so.6"), (0x0a03, "libpcre2-8.so.0")]);
    put(root, "etc/ld.so.cache", &cache);
    let plan = plan(root, Arch::Aarch64).unwrap();
    assert_eq!(plan.tools().len(), 10, "{:?}", plan.skipped());
    let lib64 = binds_under(&plan, "/usr/lib64");
    assert_eq!(lib64.len(), 1, "{:?}", plan.binds());
    assert_eq!(
        lib64[0].inside,
        Path::new("/usr/lib64/ld-linux-x86-64.so.2")
    );
    assert!(
        binds_under(&plan, "/lib64").is_empty(),
        "the link is followed"
    );
    assert!(plan
        .binds()
        .iter()
        .filter(|b| b.create)
        .all(|b| b.inside.starts_with("/usr/lib/x86_64-linux-gnu") || b.inside == lib64[0].inside));
}

#[test]
fn other_implementations_stay_emulated() {
    if !debian_x86_64_host("other_implementations_stay_emulated") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    debian_root(root, "dash-riscv64.elfhdr");
    let riscv = "dash-riscv64.elfhdr";
    // Fedora's sh, busybox's sed, an aarch64 grep, a script for cat, a tr
    // of another implementation, and a cut that PATH finds in /usr/local.
    fs::remove_file(root.join("usr/bin/sh")).unwrap();
    put(root, "usr/bin/bash", &program(riscv, b"GNU bash"));
    link(root, "usr/bin/sh", "bash");
    put(root, "usr/bin/busybox", &program(riscv, b"BusyBox v1.36"));
    fs::remove_file(root.join("usr/bin/sed")).unwrap();
    link(root, "usr/bin/sed", "/usr/bin/busybox");
    put(
        root,
        "usr/bin/grep",
        &program("dash-arm64.elfhdr", b"GNU grep"),
    );
    put(root, "usr/bin/cat", b"#!/bin/sh\nexec busybox cat \"$@\"\n");
    put(root, "usr/bin/tr", &program(riscv, b"uutils coreutils"));
    put(root, "usr/local/bin/cut", b"#!/bin/sh\n");
    let plan = plan(root, Arch::Riscv64).unwrap();
    assert_eq!(plan.tools(), ["basename", "dirname", "rm", "tail"]);
    let skipped = plan.skipped().join("\n");
    for reason in [
        "sh: /usr/bin/bash is bash, not dash",
        "sed: /usr/bin/busybox is busybox, not sed",
        "grep: /usr/bin/grep is not a riscv64 program",
        "cat: /usr/bin/cat: not an ELF file",
        "tr: /usr/bin/tr is not GNU coreutils",
        "cut: /usr/local/bin/cut: not an ELF file",
    ] {
        assert!(skipped.contains(reason), "{reason}:\n{skipped}");
    }
    // No bind of a skipped tool.
    for bind in plan.binds() {
        let name = bind.inside.file_name().unwrap().to_string_lossy();
        assert!(!["bash", "busybox", "sed", "grep", "cat", "tr", "cut"].contains(&&*name));
    }
}

#[test]
fn a_root_without_the_tools_is_refused() {
    if !debian_x86_64_host("a_root_without_the_tools_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
    let refusal = plan(dir.path(), Arch::Riscv64).unwrap_err().to_string();
    assert!(
        refusal.starts_with("no tool qualifies (sh: not in the rootfs; sed: not in the rootfs"),
        "{refusal}"
    );
}

#[test]
fn resolution_follows_links_without_leaving_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(root, "usr/lib/libx.so", b"x");
    link(root, "lib", "usr/lib");
    link(root, "etc-of-host", "/etc");
    link(root, "up", "../../../..");
    link(root, "usr/bin/abs", "/usr/lib/libx.so");
    link(root, "loop-a", "loop-b");
    link(root, "loop-b", "loop-a");
    let found = |path: &str| resolve(root, Path::new(path)).unwrap();
    assert_eq!(
        found("/lib/libx.so"),
        Resolved {
            found: "/usr/lib/libx.so".into(),
            missing: vec![]
        }
    );
    assert_eq!(found("/usr/bin/abs").found, Path::new("/usr/lib/libx.so"));
    // The host's /etc/passwd is never reached: /etc is the root's (absent).
    let passwd = found("/etc-of-host/passwd");
    assert_eq!(passwd.found, Path::new("/"));
    assert_eq!(passwd.missing, ["etc", "passwd"]);
    assert_eq!(found("/up/usr/lib").found, Path::new("/usr/lib"));
    assert_eq!(
        found("/lib/x86_64-linux-gnu/libc.so.6").full(),
        Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6")
    );
    assert!(resolve(root, Path::new("/loop-a/x")).is_err());
    assert!(resolve(root, Path::new("/usr/lib/libx.so/x")).is_err());
    assert!(resolve(root, Path::new("/missing/../etc")).is_err());
}

#[test]
fn cache_reader_agrees_with_ldconfig_on_the_host_cache() {
    let Ok(cache) = fs::read("/etc/ld.so.cache") else {
        skip_or_fail("the host has no /etc/ld.so.cache");
        return;
    };
    if std::env::consts::ARCH != "x86_64" {
        skip_or_fail("the host is not x86_64");
        return;
    }
    let out = Command::new("ldconfig").arg("-p").output();
    let Ok(out) = out else {
        skip_or_fail("ldconfig is not installed");
        return;
    };
    let listing = String::from_utf8_lossy(&out.stdout);
    // "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6"
    let x86_64: BTreeSet<&str> = listing
        .lines()
        .filter(|l| l.contains("(libc6,x86-64"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let found = ld_cache::host_entry(&cache, 0x0303).unwrap().unwrap();
    assert!(
        x86_64.contains(found.as_str()),
        "{found} not in ldconfig -p"
    );
    assert_eq!(ld_cache::host_entry(&cache, 0x0a03).unwrap(), None);
}

#[test]
fn cache_reader_reads_both_layouts_and_checks_counts() {
    let new = ld_so_cache(&[(0x0a03, "libc.so.6"), (0x0303, "libz.so.1")]);
    assert_eq!(
        ld_cache::host_entry(&new, 0x0303).unwrap().as_deref(),
        Some("libz.so.1")
    );
    assert_eq!(ld_cache::host_entry(&new, 0x0803).unwrap(), None);
    // The old layout alone: entries, then their strings.
    let mut old = b"ld.so-1.7.0\0".to_vec();
    old.extend_from_slice(&1u32.to_le_bytes());
    old.extend_from_slice(&0x0303i32.to_le_bytes());
    old.extend_from_slice(&0u32.to_le_bytes());
    old.extend_from_slice(&0u32.to_le_bytes());
    old.extend_from_slice(b"libold.so.1\0");
    assert_eq!(
        ld_cache::host_entry(&old, 0x0303).unwrap().as_deref(),
        Some("libold.so.1")
    );
    // Old entries of another architecture, then (ldconfig's "compat"
    // layout) the new header and entries, 8-byte aligned, and the strings.
    let mut compat = old[..28].to_vec();
    compat[16..20].copy_from_slice(&0x1003i32.to_le_bytes());
    compat.resize(32, 0);
    compat.extend_from_slice(&new);
    assert_eq!(
        ld_cache::host_entry(&compat, 0x0303).unwrap().as_deref(),
        Some("libz.so.1")
    );
    // Counts past the end, a truncated header, something else entirely.
    let mut long = new.clone();
    long[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(ld_cache::host_entry(&long, 0x0303).is_err());
    assert!(ld_cache::host_entry(&new[..22], 0x0303).is_err());
    assert_eq!(ld_cache::host_entry(b"\x7fELF", 0x0303).unwrap(), None);
}

#[test]
fn mount_points_copy_the_roots_directories() {
    if !debian_x86_64_host("mount_points_copy_the_roots_directories") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, tree) = (dir.path().join("root"), dir.path().join("tree"));
    debian_root(&root, "dash-riscv64.elfhdr");
    fs::set_permissions(root.join("usr/lib"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o711)).unwrap();
    fs::create_dir(&tree).unwrap();
    let plan = plan(&root, Arch::Riscv64).unwrap();
    plan.create_mount_points(&tree, &root).unwrap();
    let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(tree.clone()), 0o711);
    assert_eq!(mode(tree.join("usr/lib")), 0o750);
    assert_eq!(mode(tree.join("usr/lib/x86_64-linux-gnu")), 0o755);
    assert_eq!(mode(tree.join("lib64")), 0o755);
    let mtime = |p: PathBuf| fs::metadata(p).unwrap().modified().unwrap();
    assert_eq!(mtime(tree.join("usr")), mtime(root.join("usr")));
    let mut made = Vec::new();
    for bind in plan.binds().iter().filter(|b| b.create) {
        let file = tree.join(bind.inside.strip_prefix("/").unwrap());
        assert_eq!(fs::read(&file).unwrap(), b"", "{}", file.display());
        made.push(file);
    }
    assert!(made.len() >= 3, "{made:?}");
    // Nothing of the tools: they exist in the root already.
    assert!(!tree.join("usr/bin").exists());
}
