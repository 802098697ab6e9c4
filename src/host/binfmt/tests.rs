//! binfmt tests in three groups: the real kernel on this host (read-only,
//! plus one root-only register/unregister of an otherwise unused arch), the
//! real Debian binfmt.d files as the oracle for the built-in table, and a
//! fake binfmt_misc directory whose writes emulate the kernel
//! (fs/binfmt_misc.c: parse the line, refuse duplicates, open F interpreters,
//! show entries in the /proc format).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{
    builtin_magic, elf_header_prefix, parse_binfmt_conf, parse_entry, preflight, register, status,
    unregister, BinfmtEntry, BinfmtError, BinfmtFs, KernelBinfmt, PreflightError, RegisterLine,
    RegisterOutcome, DEBIAN_CONF_DIR, DEFAULT_DIR,
};
use crate::arch::Arch;
use crate::digest::hex;

const RISCV_P: &str = "/usr/libexec/qemu-binfmt/riscv64-binfmt-P";

/// `ok`, or false after `crate::test_tools::skip_or_fail` says `what` is missing.
pub(super) fn have(what: &str, ok: bool) -> bool {
    crate::test_tools::require(ok, format_args!("{what} missing"))
}

/// A binfmt_misc directory in a temp dir; writes behave like the kernel's.
pub(super) struct FakeKernel {
    dir: TempDir,
    deny_writes: bool,
}

impl FakeKernel {
    pub(super) fn new() -> FakeKernel {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("register"), "").unwrap();
        fs::write(dir.path().join("status"), "enabled\n").unwrap();
        FakeKernel {
            dir,
            deny_writes: false,
        }
    }

    pub(super) fn add(
        &self,
        name: &str,
        interpreter: &str,
        flags: &str,
        magic_mask: (&[u8], &[u8]),
    ) {
        let text = format!(
            "enabled\ninterpreter {interpreter}\nflags: {flags}\noffset 0\nmagic {}\nmask {}\n",
            hex(magic_mask.0),
            hex(magic_mask.1)
        );
        fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

/// The kernel's `\xNN` decoding, written independently of the code under test.
fn kernel_unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(h) = rest.strip_prefix("\\x") {
            out.push(u8::from_str_radix(&h[..2], 16).unwrap());
            rest = &h[2..];
        } else {
            out.push(rest.as_bytes()[0]);
            rest = &rest[1..];
        }
    }
    out
}

impl BinfmtFs for FakeKernel {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn write_register(&self, line: &str) -> io::Result<()> {
        if self.deny_writes {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        let sep = line.chars().next().ok_or_else(invalid)?;
        let f: Vec<&str> = line[1..].trim_end_matches('\n').split(sep).collect();
        if f.len() != 7 || f[0].is_empty() || f[0].contains('/') || f[1] != "M" {
            return Err(invalid());
        }
        let path = self.dir.path().join(f[0]);
        if path.exists() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if f[6].contains('F') && !Path::new(f[5]).exists() {
            return Err(io::ErrorKind::NotFound.into());
        }
        let flags: String = ['P', 'O', 'C', 'F']
            .into_iter()
            .filter(|c| f[6].contains(*c))
            .collect();
        let magic = kernel_unescape(f[3]);
        let mask = kernel_unescape(f[4]);
        self.add(f[0], f[5], &flags, (&magic, &mask));
        fs::write(&path, fs::read_to_string(&path)?)
    }

    fn write_entry(&self, name: &str, value: &str) -> io::Result<()> {
        if self.deny_writes {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let path = self.dir.path().join(name);
        let text = fs::read_to_string(&path)?;
        match value.trim() {
            "-1" => fs::remove_file(&path),
            "0" => fs::write(&path, text.replacen("enabled", "disabled", 1)),
            "1" => fs::write(&path, text.replacen("disabled", "enabled", 1)),
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }
}

fn empty_conf_dir() -> TempDir {
    tempfile::tempdir().unwrap()
}

// ---- the real host, read-only ----

#[test]
fn parses_real_host_entries() {
    for (arch, interp) in [
        (Arch::Riscv64, "riscv64-binfmt-P"),
        (Arch::Aarch64, "aarch64-binfmt-P"),
    ] {
        let path = Path::new(DEFAULT_DIR).join(format!("qemu-{arch}"));
        let Ok(text) = fs::read_to_string(&path) else {
            have(&path.display().to_string(), false);
            continue;
        };
        let entry = parse_entry(&text).unwrap();
        assert!(entry.enabled, "{text}");
        assert!(
            entry.has_flag('F') && entry.has_flag('P') && entry.has_flag('O'),
            "{text}"
        );
        assert!(entry.interpreter.ends_with(interp), "{text}");
        assert_eq!((entry.offset, entry.magic.len()), (0, 20));
        assert!(entry.matches_arch(arch));
        let other = if arch == Arch::Riscv64 {
            Arch::Aarch64
        } else {
            Arch::Riscv64
        };
        assert!(!entry.matches_arch(other));
    }
}

#[test]
fn host_riscv64_and_aarch64_are_usable() {
    let dir = Path::new(DEFAULT_DIR);
    if !have(
        "binfmt_misc qemu-riscv64 entry on the host",
        dir.join("qemu-riscv64").exists(),
    ) {
        return;
    }
    let started = std::time::Instant::now();
    preflight(dir, Arch::Riscv64).unwrap();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(1),
        "preflight took {took:?}"
    );
    eprintln!("preflight riscv64 on the host: {took:?}");
    let report = status(dir, &[Arch::Riscv64, Arch::Aarch64]).unwrap();
    assert!(report.mounted);
    for s in &report.arches {
        assert!(s.usable_in_chroot(), "{s:?}");
        assert_eq!(
            s.entry.as_deref(),
            Some(format!("qemu-{}", s.arch).as_str())
        );
        preflight(dir, s.arch).unwrap();
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["dir"], DEFAULT_DIR);
    assert_eq!(json["arches"][0]["arch"], "riscv64");
    assert_eq!(json["arches"][0]["usable_in_chroot"], true);
    assert_eq!(json["arches"][0]["interpreter"], RISCV_P);
}

// ---- formats, with Debian's binfmt.d files as the oracle ----

#[test]
fn builtin_table_equals_debian_binfmt_d() {
    let mut compared = 0;
    for &arch in Arch::all() {
        let path = Path::new(DEBIAN_CONF_DIR).join(format!("qemu-{}.conf", arch.qemu_name()));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let line = parse_binfmt_conf(&text, arch, &path)
            .unwrap()
            .expect("a qemu-<arch> line");
        let (magic, mask) = builtin_magic(arch);
        assert_eq!(line.magic, magic, "{arch} magic");
        assert_eq!(line.mask.as_deref(), Some(&mask[..]), "{arch} mask");
        assert_eq!(line.offset, 0);
        compared += 1;
    }
    // amd64 hosts ship every conf except x86_64's own.
    if have("qemu-user-static's /usr/lib/binfmt.d files", compared > 0) {
        eprintln!("compared {compared} Debian binfmt.d files");
    }
}

#[test]
fn builtin_magic_matches_real_binaries_of_its_arch_only() {
    let fixtures = [
        ("dash-riscv64.elfhdr", Arch::Riscv64),
        ("dash-arm64.elfhdr", Arch::Aarch64),
        ("dash-armhf.elfhdr", Arch::Arm),
        ("dash-s390x.elfhdr", Arch::S390x),
        ("true-amd64.elfhdr", Arch::X86_64),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elf");
    for &arch in Arch::all() {
        let (magic, mask) = builtin_magic(arch);
        let entry = BinfmtEntry {
            enabled: true,
            interpreter: PathBuf::from("/x"),
            flags: "F".into(),
            offset: 0,
            magic,
            mask: Some(mask),
            extension: None,
        };
        assert!(entry.matches_arch(arch), "{arch}");
        for (name, fixture_arch) in fixtures {
            let header = fs::read(dir.join(name)).unwrap();
            assert_eq!(
                entry.matches(&header),
                arch == fixture_arch,
                "{arch} vs {name}"
            );
        }
    }
}

#[test]
fn register_line_round_trips() {
    let debian = r":qemu-riscv64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/riscv64-binfmt-P:OPF";
    let line = RegisterLine::parse(debian).unwrap();
    assert_eq!(line.magic, elf_header_prefix(Arch::Riscv64, 2));
    assert_eq!(line.flags, "OPF");
    assert_eq!(line.render(), debian);
    assert_eq!(RegisterLine::parse(&line.render()).unwrap(), line);
    // Any separator, literal bytes in magic, and a short \x escape.
    let odd = RegisterLine::parse(",x,M,2,\\x7fELF\\x2,,/bin/q,F").unwrap();
    assert_eq!(
        (odd.offset, odd.magic.as_slice(), odd.mask.as_ref()),
        (2, &b"\x7fELF\x02"[..], None)
    );
    assert!(RegisterLine::parse(":x:E::py::/usr/bin/python3:").is_err());
    assert!(RegisterLine::parse(":x:M::\\x7f:\\xff\\xff:/bin/q:F").is_err());
}

#[test]
fn parses_disabled_and_extension_entries_and_rejects_garbage() {
    let e = parse_entry("disabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n")
        .unwrap();
    assert!(!e.enabled && e.magic.is_empty());
    assert_eq!(e.extension.as_deref(), Some("pyc"));
    assert!(!e.matches(&elf_header_prefix(Arch::Riscv64, 2)));
    assert!(parse_entry("enabled\ninterpreter /q\nflags: F\noffset 0\nmagic 7f4\n").is_err());
    assert!(parse_entry("maybe\ninterpreter /q\n").is_err());
    assert!(parse_entry("enabled\nflags: F\noffset 0\nmagic 7f\n").is_err());
}

// ---- a fake binfmt_misc directory ----

#[test]
fn fake_register_status_unregister_round_trip() {
    if !have(RISCV_P, Path::new(RISCV_P).exists()) {
        return;
    }
    let fake = FakeKernel::new();
    let conf_dir = Path::new(DEBIAN_CONF_DIR);
    let out = register(&fake, Arch::Riscv64, None, false, conf_dir).unwrap();
    let RegisterOutcome::Registered {
        entry,
        line,
        removed,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(entry, "qemu-riscv64");
    assert!(removed.is_empty());
    assert!(
        line.starts_with(":qemu-riscv64:M::\\x7f\\x45\\x4c\\x46")
            && line.ends_with(":/usr/libexec/qemu-binfmt/riscv64-binfmt-P:POF"),
        "{line}"
    );
    let s = &status(fake.dir(), &[Arch::Riscv64]).unwrap().arches[0];
    assert!(s.usable_in_chroot(), "{s:?}");
    assert_eq!(s.flags.as_deref(), Some("POF"));
    preflight(fake.dir(), Arch::Riscv64).unwrap();

    let again = register(&fake, Arch::Riscv64, None, false, conf_dir).unwrap();
    assert_eq!(
        again,
        RegisterOutcome::AlreadyRegistered {
            entry: "qemu-riscv64".into()
        }
    );

    assert!(unregister(&fake, Arch::Riscv64).unwrap());
    assert!(!fake.dir().join("qemu-riscv64").exists());
    assert!(!unregister(&fake, Arch::Riscv64).unwrap());
    assert_eq!(
        status(fake.dir(), &[Arch::Riscv64]).unwrap().arches[0].entry,
        None
    );
}

#[test]
fn register_without_binfmt_d_uses_builtin_table_and_plain_static_qemu() {
    let qemu = Path::new("/usr/bin/qemu-x86_64-static");
    if !have(&qemu.display().to_string(), qemu.exists()) {
        return;
    }
    let fake = FakeKernel::new();
    let conf_dir = empty_conf_dir();
    let out = register(&fake, Arch::X86_64, Some(qemu), false, conf_dir.path()).unwrap();
    let RegisterOutcome::Registered { line, .. } = out else {
        panic!("{out:?}")
    };
    // No P: a plain qemu-x86_64-static does not expect the preserved argv[0].
    assert!(line.ends_with(":/usr/bin/qemu-x86_64-static:OF"), "{line}");
    let entry = parse_entry(&fake.read("qemu-x86_64")).unwrap();
    assert_eq!((entry.magic, entry.mask.unwrap()), {
        let (m, k) = builtin_magic(Arch::X86_64);
        (m, k)
    });
}

#[test]
fn not_mounted_is_reported_and_never_mounted_over() {
    let empty = tempfile::tempdir().unwrap();
    let report = status(empty.path(), &[Arch::Riscv64]).unwrap();
    assert!(!report.mounted && !report.arches[0].usable_in_chroot());
    let msg = preflight(empty.path(), Arch::Riscv64)
        .unwrap_err()
        .to_string();
    let dir = empty.path().display();
    assert!(
        msg.contains(&format!("`sudo mount -t binfmt_misc binfmt_misc {dir}`")),
        "{msg}"
    );
    assert!(
        msg.contains("`sudo mkimg binfmt register riscv64`"),
        "{msg}"
    );
    let fake = FakeKernel::new();
    fs::remove_file(fake.dir().join("register")).unwrap();
    let err = register(
        &fake,
        Arch::Riscv64,
        None,
        false,
        Path::new(DEBIAN_CONF_DIR),
    )
    .unwrap_err();
    assert!(matches!(err, BinfmtError::NotMounted { .. }), "{err}");
    assert!(!fake.dir().join("register").exists());
}

#[test]
fn no_entry_preflight_says_register() {
    let fake = FakeKernel::new();
    let (m, k) = builtin_magic(Arch::Aarch64);
    fake.add("qemu-aarch64", RISCV_P, "POF", (&m, &k));
    let err = preflight(fake.dir(), Arch::Riscv64).unwrap_err();
    assert!(matches!(
        err,
        PreflightError::NoEntry {
            arch: Arch::Riscv64
        }
    ));
    assert!(
        err.to_string()
            .contains("run `sudo mkimg binfmt register riscv64`"),
        "{err}"
    );
}

#[test]
fn entry_without_f_needs_force_and_force_fixes_it() {
    if !have(RISCV_P, Path::new(RISCV_P).exists()) {
        return;
    }
    let fake = FakeKernel::new();
    let (m, k) = builtin_magic(Arch::Riscv64);
    fake.add("qemu-riscv64", RISCV_P, "PO", (&m, &k));
    let (am, ak) = builtin_magic(Arch::Aarch64);
    fake.add(
        "qemu-aarch64",
        "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
        "PO",
        (&am, &ak),
    );
    let aarch64_before = fake.read("qemu-aarch64");

    let msg = preflight(fake.dir(), Arch::Riscv64)
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "run `sudo mkimg binfmt register --force riscv64` (entry qemu-riscv64 has flags PO, F missing: \
         the interpreter would have to exist inside the chroot)"
    );
    let conf_dir = Path::new(DEBIAN_CONF_DIR);
    let err = register(&fake, Arch::Riscv64, None, false, conf_dir).unwrap_err();
    assert!(matches!(err, BinfmtError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("flags PO"), "{err}");
    let out = register(&fake, Arch::Riscv64, None, true, conf_dir).unwrap();
    assert!(
        matches!(&out, RegisterOutcome::Registered { removed, .. } if removed == &["qemu-riscv64"]),
        "{out:?}"
    );
    preflight(fake.dir(), Arch::Riscv64).unwrap();
    assert_eq!(
        fake.read("qemu-aarch64"),
        aarch64_before,
        "--force touched another arch"
    );
}

#[test]
fn different_interpreter_fails_without_force() {
    let other = "/usr/bin/qemu-riscv64-static";
    if !have(
        other,
        Path::new(other).exists() && Path::new(RISCV_P).exists(),
    ) {
        return;
    }
    let fake = FakeKernel::new();
    let (m, k) = builtin_magic(Arch::Riscv64);
    // Another tool's name for the same magic: still the riscv64 handler.
    fake.add("riscv64", other, "OCF", (&m, &k));
    let before = fake.read("riscv64");
    let err = register(
        &fake,
        Arch::Riscv64,
        None,
        false,
        Path::new(DEBIAN_CONF_DIR),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("entry riscv64 (interpreter /usr/bin/qemu-riscv64-static, flags OCF)"),
        "{msg}"
    );
    assert!(
        msg.contains("`sudo mkimg binfmt register --force riscv64`"),
        "{msg}"
    );
    assert_eq!(fake.read("riscv64"), before);
    assert!(!fake.dir().join("qemu-riscv64").exists());
    // That entry is usable as it is.
    preflight(fake.dir(), Arch::Riscv64).unwrap();
}

#[test]
fn missing_or_dynamic_interpreter_names_the_package() {
    let fake = FakeKernel::new();
    let (m, k) = builtin_magic(Arch::Riscv64);
    fake.add("qemu-riscv64", "/nonexistent/qemu-riscv64", "POF", (&m, &k));
    let err = preflight(fake.dir(), Arch::Riscv64).unwrap_err();
    assert!(
        matches!(err, PreflightError::InterpreterMissing { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("qemu-user-static") && msg.contains("bookworm-backports"),
        "{msg}"
    );

    let (am, ak) = builtin_magic(Arch::Aarch64);
    fake.add("qemu-aarch64", "/bin/true", "POF", (&am, &ak));
    let err = preflight(fake.dir(), Arch::Aarch64).unwrap_err();
    assert!(
        matches!(err, PreflightError::InterpreterNotStatic { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("/bin/true"), "{err}");

    let conf_dir = empty_conf_dir();
    let err = register(
        &fake,
        Arch::S390x,
        Some(Path::new("/bin/true")),
        false,
        conf_dir.path(),
    )
    .unwrap_err();
    assert!(
        matches!(err, BinfmtError::InterpreterNotStatic { .. }),
        "{err}"
    );
    let err = register(
        &fake,
        Arch::S390x,
        Some(Path::new("/nonexistent/q")),
        false,
        conf_dir.path(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("tried /nonexistent/q") && msg.contains("qemu-user-static"),
        "{msg}"
    );
}

#[test]
fn disabled_entry_is_reported() {
    let fake = FakeKernel::new();
    let (m, k) = builtin_magic(Arch::Riscv64);
    fake.add("qemu-riscv64", RISCV_P, "POF", (&m, &k));
    fake.write_entry("qemu-riscv64", "0").unwrap();
    let err = preflight(fake.dir(), Arch::Riscv64).unwrap_err();
    assert!(matches!(err, PreflightError::Disabled { .. }), "{err}");
}

#[test]
fn unregister_leaves_other_entries_untouched() {
    let fake = FakeKernel::new();
    for arch in [Arch::Riscv64, Arch::Aarch64, Arch::S390x] {
        let (m, k) = builtin_magic(arch);
        fake.add(&format!("qemu-{arch}"), RISCV_P, "POF", (&m, &k));
    }
    fs::write(
        fake.dir().join("python3.11"),
        "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n",
    )
    .unwrap();
    let others = ["qemu-aarch64", "qemu-s390x", "python3.11"].map(|n| (n, fake.read(n)));
    assert!(unregister(&fake, Arch::Riscv64).unwrap());
    assert!(!fake.dir().join("qemu-riscv64").exists());
    for (name, before) in others {
        assert_eq!(fake.read(name), before, "{name}");
    }
}

#[test]
fn permission_denied_says_needs_root_with_the_command() {
    if !have(RISCV_P, Path::new(RISCV_P).exists()) {
        return;
    }
    let mut fake = FakeKernel::new();
    fake.deny_writes = true;
    let msg = register(
        &fake,
        Arch::Riscv64,
        None,
        false,
        Path::new(DEBIAN_CONF_DIR),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.ends_with("needs root: run `sudo mkimg binfmt register riscv64`"),
        "{msg}"
    );
    let (m, k) = builtin_magic(Arch::Riscv64);
    fake.add("qemu-riscv64", RISCV_P, "PO", (&m, &k));
    let msg = register(&fake, Arch::Riscv64, None, true, Path::new(DEBIAN_CONF_DIR))
        .unwrap_err()
        .to_string();
    assert!(
        msg.ends_with("needs root: run `sudo mkimg binfmt register --force riscv64`"),
        "{msg}"
    );
    let msg = unregister(&fake, Arch::Riscv64).unwrap_err().to_string();
    assert!(
        msg.ends_with("needs root: run `sudo mkimg binfmt unregister riscv64`"),
        "{msg}"
    );
}

// ---- the real kernel, as root ----

/// Unregisters on drop (a no-op if nothing is registered), so a failing
/// register or assertion leaves the host as it was.
struct Registered<'a>(&'a KernelBinfmt, Arch);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let _ = unregister(self.0, self.1);
    }
}

#[test]
fn real_kernel_register_unregister_round_trip() {
    let dir = Path::new(DEFAULT_DIR);
    let is_root = rustix::process::geteuid().is_root();
    if !have("root (for a real binfmt_misc registration)", is_root)
        || !have("binfmt_misc", dir.join("register").exists())
    {
        return;
    }
    let kernel = KernelBinfmt::default();
    super::ensure_mounted(dir).unwrap();
    let before = status(dir, Arch::all()).unwrap();
    // An arch nobody on this host uses, whose Debian conf and interpreter exist.
    let candidates = [
        Arch::S390x,
        Arch::Mips64el,
        Arch::Loongarch64,
        Arch::Ppc64le,
    ];
    let Some(arch) = candidates.into_iter().find(|&a| {
        let free = before
            .arches
            .iter()
            .any(|s| s.arch == a && s.entry.is_none());
        let conf = Path::new(DEBIAN_CONF_DIR).join(format!("qemu-{}.conf", a.qemu_name()));
        free && conf.exists()
    }) else {
        have("an unregistered arch with a Debian binfmt.d file", false);
        return;
    };
    let snapshot = |name: &str| fs::read_to_string(dir.join(name)).ok();
    let untouched = ["qemu-riscv64", "qemu-aarch64"].map(|n| (n, snapshot(n)));

    let guard = Registered(&kernel, arch);
    let out = register(&kernel, arch, None, false, Path::new(DEBIAN_CONF_DIR)).unwrap();
    assert!(
        matches!(&out, RegisterOutcome::Registered { removed, .. } if removed.is_empty()),
        "{out:?}"
    );
    let s = &status(dir, &[arch]).unwrap().arches[0];
    assert!(s.usable_in_chroot(), "{s:?}");
    // The kernel's own rendering of what we wrote (it prints flags as P, O, C, F).
    assert_eq!(s.flags.as_deref(), Some("POF"), "{s:?}");
    preflight(dir, arch).unwrap();
    let again = register(&kernel, arch, None, false, Path::new(DEBIAN_CONF_DIR)).unwrap();
    assert!(
        matches!(again, RegisterOutcome::AlreadyRegistered { .. }),
        "{again:?}"
    );

    assert!(unregister(&kernel, arch).unwrap());
    std::mem::forget(guard);
    assert!(!dir.join(format!("qemu-{}", arch.qemu_name())).exists());
    assert_eq!(status(dir, &[arch]).unwrap().arches[0].entry, None);
    for (name, text) in untouched {
        assert_eq!(snapshot(name), text, "{name} changed");
    }
}

/// As a normal user the kernel refuses the write; the error must say how to
/// run it as root. (As root there is nothing to check: the round trip above runs.)
#[test]
fn real_kernel_as_non_root_says_needs_root() {
    let dir = Path::new(DEFAULT_DIR);
    if rustix::process::geteuid().is_root() || !dir.join("register").exists() {
        eprintln!("skipping: running as root or binfmt_misc not mounted");
        return;
    }
    let conf_dir = Path::new(DEBIAN_CONF_DIR);
    let kernel = KernelBinfmt::default();
    match register(&kernel, Arch::S390x, None, false, conf_dir) {
        Err(BinfmtError::NeedsRoot { command, .. }) => {
            assert_eq!(command, "sudo mkimg binfmt register s390x")
        }
        // Without qemu-user-static the interpreter lookup fails first.
        Err(BinfmtError::InterpreterNotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
}
