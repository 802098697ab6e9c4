//! `--persist` and "survives a reboot" against the fake binfmt_misc of
//! `binfmt::tests` (which emulates the kernel) and, read-only, the host's
//! real entries and Debian's real binfmt.d files.

use std::fs;
use std::path::Path;

use super::super::tests::{have, FakeKernel};
use super::super::{
    list_entries, register, status_in, BinfmtFs, RegisterLine, RegisterOutcome, DEBIAN_CONF_DIR,
    DEFAULT_DIR,
};
use super::{find_persistent, persist_outcome, same_registration};
use crate::arch::Arch;

const RISCV_P: &str = "/usr/libexec/qemu-binfmt/riscv64-binfmt-P";

/// The registration lines of a binfmt.d file.
fn conf_lines(path: &Path) -> Vec<RegisterLine> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| RegisterLine::parse(l).unwrap())
        .collect()
}

#[test]
fn persist_writes_what_was_registered_and_status_then_says_it_survives() {
    if !have(RISCV_P, Path::new(RISCV_P).exists()) {
        return;
    }
    let fake = FakeKernel::new();
    let sysroot = tempfile::tempdir().unwrap();
    let outcome = register(
        &fake,
        Arch::Riscv64,
        None,
        false,
        Path::new(DEBIAN_CONF_DIR),
    )
    .unwrap();
    let RegisterOutcome::Registered { line, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    let before = status_in(fake.dir(), sysroot.path(), &[Arch::Riscv64]).unwrap();
    assert_eq!(before.arches[0].persistent, None, "nothing written yet");

    let file = persist_outcome(fake.dir(), sysroot.path(), &outcome).unwrap();
    assert_eq!(file, sysroot.path().join("etc/binfmt.d/qemu-riscv64.conf"));
    // The file holds exactly the line written to `register`, and it
    // describes what the (fake) kernel now shows.
    let lines = conf_lines(&file);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].render(), *line);
    let entries = list_entries(fake.dir()).unwrap();
    let (_, shown) = entries.iter().find(|(n, _)| n == "qemu-riscv64").unwrap();
    assert!(same_registration(&lines[0], shown));
    // Atomic: no temporary file is left beside it; world-readable.
    let names: Vec<_> = fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["qemu-riscv64.conf"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );

    let after = status_in(fake.dir(), sysroot.path(), &[Arch::Riscv64]).unwrap();
    assert_eq!(after.arches[0].persistent.as_deref(), Some(file.as_path()));

    // Already registered: the file is rewritten from the kernel's entry,
    // the same line again.
    fs::remove_file(&file).unwrap();
    let again = register(
        &fake,
        Arch::Riscv64,
        None,
        false,
        Path::new(DEBIAN_CONF_DIR),
    )
    .unwrap();
    assert!(
        matches!(again, RegisterOutcome::AlreadyRegistered { .. }),
        "{again:?}"
    );
    let file = persist_outcome(fake.dir(), sysroot.path(), &again).unwrap();
    assert!(same_registration(&conf_lines(&file)[0], shown));
}

#[test]
fn etc_masks_usr_lib_run_does_not_count_and_flag_order_does_not_matter() {
    let fake = FakeKernel::new();
    let magic = b"\x7fELF\x02\x01\x01\x00";
    let mask = b"\xff\xff\xff\xff\xff\xff\xff\x00";
    fake.add("qemu-test", "/usr/bin/qemu-test", "POF", (magic, mask));
    let entries = list_entries(fake.dir()).unwrap();
    let entry = &entries[0].1;
    let sysroot = tempfile::tempdir().unwrap();
    let root = sysroot.path();
    let line = |interpreter: &str, flags: &str| {
        format!(
            ":qemu-test:M::\\x7fELF\\x02\\x01\\x01\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00:{interpreter}:{flags}\n"
        )
    };
    let put = |dir: &str, text: &str| {
        fs::create_dir_all(root.join(dir)).unwrap();
        fs::write(root.join(dir).join("qemu-test.conf"), text).unwrap();
    };
    let found = || find_persistent(root, "qemu-test", entry);

    put("run/binfmt.d", &line("/usr/bin/qemu-test", "POF"));
    assert_eq!(found(), None, "/run is empty after a reboot");

    put("usr/lib/binfmt.d", &line("/usr/bin/qemu-test", "OPF"));
    assert_eq!(found(), Some(root.join("usr/lib/binfmt.d/qemu-test.conf")));

    put("etc/binfmt.d", &line("/usr/bin/other", "POF"));
    assert_eq!(
        found(),
        None,
        "the /etc file of the same name hides /usr/lib's"
    );

    put(
        "etc/binfmt.d",
        &format!(
            "# comment\n; other comment\n{}",
            line("/usr/bin/qemu-test", "FOP")
        ),
    );
    assert_eq!(found(), Some(root.join("etc/binfmt.d/qemu-test.conf")));

    put("etc/binfmt.d", &line("/usr/bin/qemu-test", "OF"));
    assert_eq!(found(), None, "flags differ (no P)");

    // Masked with a symlink to /dev/null, as systemd documents.
    fs::remove_file(root.join("etc/binfmt.d/qemu-test.conf")).unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("etc/binfmt.d/qemu-test.conf")).unwrap();
    assert_eq!(found(), None);
}

/// scripts/setup-debian.sh registers riscv64 from Debian's own
/// /usr/lib/binfmt.d/qemu-riscv64.conf: the real files say it survives.
#[test]
fn host_entry_registered_from_debians_file_survives_a_reboot() {
    let entry = Path::new(DEFAULT_DIR).join("qemu-riscv64");
    let conf = Path::new(DEBIAN_CONF_DIR).join("qemu-riscv64.conf");
    if !have("a registered qemu-riscv64 entry", entry.exists())
        || !have("Debian's binfmt.d", conf.exists())
    {
        return;
    }
    let report = status_in(Path::new(DEFAULT_DIR), Path::new("/"), &[Arch::Riscv64]).unwrap();
    let masked = Path::new("/etc/binfmt.d/qemu-riscv64.conf").exists();
    if !masked {
        assert_eq!(
            report.arches[0].persistent.as_deref(),
            Some(conf.as_path()),
            "{report:?}"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let report = status_in(Path::new(DEFAULT_DIR), empty.path(), &[Arch::Riscv64]).unwrap();
    assert_eq!(report.arches[0].persistent, None);
}
