//! As root: a chroot session with native tools over an ext4 root whose
//! tools are riscv64 stand-ins (they cannot run: every tool that works
//! inside is the host's), plus Debian's static busybox for what a hostile
//! script needs beyond them. The binds must be in place and read-only (the
//! host's view of the thread's mount table), the tools must work, the
//! script must change none of the host files it sees, and nothing may be
//! left mounted, attached or changed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use sha2::{Digest, Sha256};

use super::{debian_x86_64_host, program, COREUTILS};
use crate::arch::Arch;
use crate::host::chroot::{ChrootSession, Programs, ROOT_NODE};
use crate::host::mount::in_private_namespace;
use crate::host::native_tools::Outcome;
use crate::host::test_support::{
    attach_read_only, ext4_image_with_links, host_mounts, loops_of, test_root_links,
};
use crate::test_tools::{require_root, skip_or_fail};

/// Prints `ESCAPE: …` for every attempt that works, `DONE` at the end.
/// Run by the host's dash (bound over the root's), it only tries what
/// leaves a host file as it was even if it worked: opening for append
/// without writing, `chmod` to the mode it has, `touch -c`, renaming the
/// mount point, remounting or unmounting it.
const HOSTILE: &str = r#"
exec 2>&1
echo "sed=$(echo emulated | sed s/emulated/native/)"
echo "grep=$(printf 'a\nb\n' | grep -c b) tr=$(echo abc | tr a-c A-C) cut=$(echo a:b | cut -d: -f2)"
echo "tail=$(printf '1\n2\n' | tail -n 1) base=$(basename /x/y.cfg .cfg) dir=$(dirname /x/y)"
cat /etc/marker
echo "libs=$(busybox ls /usr/lib/x86_64-linux-gnu | busybox tr '\n' ,)"
for f in $TARGETS; do
    mode=$(busybox stat -c %a "$f")
    (exec 3>>"$f") 2>/dev/null && echo "ESCAPE: opened $f for writing"
    busybox chmod "$mode" "$f" 2>/dev/null && echo "ESCAPE: chmod $f"
    busybox touch -c "$f" 2>/dev/null && echo "ESCAPE: touched $f"
    busybox mv "$f" "$f.moved" 2>/dev/null && echo "ESCAPE: renamed $f"
    busybox mount -o remount,bind,rw "$f" 2>/dev/null && echo "ESCAPE: remounted $f rw"
    busybox umount "$f" 2>/dev/null && echo "ESCAPE: unmounted $f"
    busybox umount -l "$f" 2>/dev/null && echo "ESCAPE: detached $f"
    (exec 3>>"$f") 2>/dev/null && echo "ESCAPE: opened $f for writing afterwards"
done
busybox touch /lib64/new 2>/dev/null && echo "ESCAPE: wrote /lib64"
busybox mkdir /usr/lib/x86_64-linux-gnu/new 2>/dev/null && echo "ESCAPE: wrote the library directory"
busybox mount -o remount,rw / 2>/dev/null && echo "ESCAPE: remounted / rw"
echo "mounts=$(busybox cut -d' ' -f5 /proc/self/mountinfo | busybox tr '\n' ,)"
echo DONE
"#;

/// Content hash, mode and modification time of a host file.
fn fingerprint(path: &Path) -> (String, u32, i64, i64) {
    let meta = fs::metadata(path).unwrap();
    let hash = Sha256::digest(fs::read(path).unwrap());
    (
        crate::digest::hex(&hash),
        meta.mode(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

/// The mount options (sixth field) of `target`'s line in `mountinfo`.
fn options<'a>(mountinfo: &'a str, target: &Path) -> Option<&'a str> {
    let target = target.to_str().unwrap();
    mountinfo.lines().rev().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        (fields.get(4) == Some(&target)).then(|| fields[5])
    })
}

#[test]
fn native_tools_run_read_only_and_a_hostile_script_changes_nothing() {
    let test = "native_tools_run_read_only_and_a_hostile_script_changes_nothing";
    if !require_root(test) || !debian_x86_64_host(test) {
        return;
    }
    let Ok(busybox) = fs::read("/bin/busybox") else {
        skip_or_fail("needs Debian's static /bin/busybox (apt-get install busybox-static)");
        return;
    };
    let riscv = "dash-riscv64.elfhdr";
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("usr/bin/dash".into(), program(riscv, b"dash_errno")),
        ("usr/bin/sed".into(), program(riscv, b"GNU sed")),
        ("usr/bin/grep".into(), program(riscv, b"GNU grep")),
        ("usr/bin/busybox".into(), busybox),
        ("usr/lib/os-release".into(), b"ID=test\n".to_vec()),
        ("etc/marker".into(), b"marker-read-by-native-cat\n".to_vec()),
    ];
    for tool in COREUTILS {
        files.push((format!("usr/bin/{tool}"), program(riscv, b"GNU coreutils")));
    }
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let links = [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("usr/bin/sh", "dash"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let image = ext4_image_with_links(dir.path(), &files, &links);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();

    let inside = [
        "/usr/bin/sed",
        "/usr/bin/dash",
        "/lib64/ld-linux-x86-64.so.2",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ];
    let host_files: Vec<PathBuf> = [
        "/usr/bin/sed",
        "/usr/bin/dash",
        "/lib64/ld-linux-x86-64.so.2",
    ]
    .iter()
    .chain(&["/usr/lib/x86_64-linux-gnu/libc.so.6"])
    .map(|p| fs::canonicalize(p).unwrap())
    .collect();
    let before = (
        host_mounts(),
        fingerprint(&image),
        host_files
            .iter()
            .map(|f| fingerprint(f))
            .collect::<Vec<_>>(),
    );
    let device = attach_read_only(&image);
    let targets = inside.join(" ");
    let (outcome, mountinfo, out) = in_private_namespace(|| {
        let session = ChrootSession::open_with(
            &device,
            "ext4",
            &root,
            &test_root_links(),
            Programs::NativeTools(Arch::Riscv64),
        )?;
        let mountinfo = fs::read_to_string("/proc/thread-self/mountinfo")?;
        let out = session.run(
            "running a hostile script with native tools",
            &["/bin/sh", "-c", HOSTILE],
            &[("TARGETS", targets.as_str())],
            &AtomicBool::new(false),
        )?;
        let outcome = session.native_tools().clone();
        session.close()?;
        Ok((outcome, mountinfo, String::from_utf8(out.stdout)?))
    })
    .unwrap();
    device.close().unwrap();

    let Outcome::Used(summary) = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        summary.starts_with("sh (dash), sed, grep, cat,"),
        "{summary}"
    );
    // The host's view: an overlay from the root's device, every bind read-only.
    let overlay = mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == root.to_str())
        .unwrap();
    assert!(
        overlay.contains(&format!(" - overlay /dev/{ROOT_NODE} ro,")),
        "{overlay}"
    );
    for path in inside {
        let target = root.join(path.trim_start_matches('/'));
        let options = options(&mountinfo, &target).unwrap_or_else(|| panic!("{path}: no mount"));
        assert!(options.split(',').any(|o| o == "ro"), "{path}: {options}");
    }

    assert!(out.ends_with("DONE\n"), "{out}");
    let escapes: Vec<&str> = out.lines().filter(|l| l.contains("ESCAPE")).collect();
    assert!(escapes.is_empty(), "{escapes:#?}\n{out}");
    for line in [
        "sed=native",
        "grep=1 tr=ABC cut=b",
        "tail=2 base=y dir=/x",
        "marker-read-by-native-cat",
    ] {
        assert!(out.lines().any(|l| l == line), "{line}:\n{out}");
    }
    // Only the libraries the tools load, not the host's directory.
    let libs = out.lines().find_map(|l| l.strip_prefix("libs=")).unwrap();
    assert!(
        libs.contains("libc.so.6,") && libs.contains("libpcre2-8.so.0,"),
        "{libs}"
    );
    assert!(libs.split(',').count() < 10, "{libs}");

    let after = (
        host_mounts(),
        fingerprint(&image),
        host_files
            .iter()
            .map(|f| fingerprint(f))
            .collect::<Vec<_>>(),
    );
    assert_eq!(after, before);
    assert!(loops_of(&image).is_empty());
}

#[test]
fn a_failed_mount_undoes_what_it_made() {
    let test = "a_failed_mount_undoes_what_it_made";
    if !require_root(test) || !debian_x86_64_host(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    super::debian_root(root, "dash-riscv64.elfhdr");
    let plan = super::plan(root, Arch::Riscv64).unwrap();
    let (overlay_err, mount_err, before, after) = in_private_namespace(|| {
        let before = crate::host::mount::thread_mount_points()?;
        // The scratch directory must be empty: nothing is mounted.
        fs::write(root.join("proc/stray"), b"")?;
        let overlay_err = plan
            .overlay(root, "/proc", Path::new("/dev/mkimg-root"))
            .unwrap_err();
        fs::remove_file(root.join("proc/stray"))?;
        // The loader's mount point made, the libraries' not: the tools'
        // binds succeed, the first library's fails, all are undone.
        fs::create_dir(root.join("lib64"))?;
        fs::write(root.join("lib64/ld-linux-x86-64.so.2"), b"")?;
        let mount_err = plan.mount(root).unwrap_err();
        let after = crate::host::mount::thread_mount_points()?;
        Ok((overlay_err, mount_err, before, after))
    })
    .unwrap();
    assert!(
        overlay_err
            .to_string()
            .contains("/proc of the root is not empty"),
        "{overlay_err:#}"
    );
    assert!(
        format!("{mount_err:#}").contains("/usr/lib/x86_64-linux-gnu/"),
        "{mount_err:#}"
    );
    assert_eq!(after, before);
    assert_eq!(
        fs::read(root.join("lib64/ld-linux-x86-64.so.2")).unwrap(),
        b""
    );
}

#[test]
fn the_overlay_takes_a_root_whose_path_has_option_separators() {
    let test = "the_overlay_takes_a_root_whose_path_has_option_separators";
    if !require_root(test) || !debian_x86_64_host(test) {
        return;
    }
    // `:` separates overlayfs layers and `,` mount options.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a:b,c\\d");
    super::debian_root(&root, "dash-riscv64.elfhdr");
    let plan = super::plan(&root, Arch::Riscv64).unwrap();
    let seen = in_private_namespace(|| {
        let mut mounts = plan.overlay(&root, "/proc", Path::new("/dev/mkimg-root"))?;
        mounts.extend(plan.mount(&root)?);
        let loader = root.join("lib64/ld-linux-x86-64.so.2");
        let seen = (
            fs::read(&loader)? == fs::read("/lib64/ld-linux-x86-64.so.2")?,
            fs::read(root.join("usr/bin/sed"))? == fs::read("/usr/bin/sed")?,
            root.join("usr/lib/riscv64-linux-gnu/libc.so.6").is_file(),
        );
        crate::host::native_tools::undo(mounts);
        Ok(seen)
    })
    .unwrap();
    assert_eq!(seen, (true, true, true));
    // Undone: the root is as it was.
    assert!(!root.join("lib64").exists());
    assert_eq!(fs::read_dir(root.join("proc")).unwrap().count(), 0);
}
