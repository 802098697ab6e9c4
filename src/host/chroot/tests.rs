//! The chroot argv, path checks and tree copy (no root), and a whole
//! session over a small ext4 root made of the host's own programs (root):
//! what the program inside sees, that the root stays read-only and
//! byte-identical, that an interruption stops it, and that nothing is left
//! mounted or attached.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{chroot_cmd, read_tree, write_tree, ChrootSession, DiskLinks, ROOT_NODE};
use crate::host::cmd::{CmdError, StderrKept};
use crate::host::loopdev::{LoopDevice, LoopOptions};
use crate::host::mount::in_private_namespace;
use crate::host::sandbox::Sandbox;
use crate::host::test_support::{
    attach_read_only, ext4_image, ext4_image_with_links, host_mounts, host_programs, loops_of,
    test_root_links, TEST_UUID,
};
use crate::test_tools::{have_file, require_root, skip_or_fail};

#[test]
fn chroot_argv_is_sandboxed_with_only_the_given_environment() {
    let cmd = chroot_cmd(
        "running grub-mkconfig",
        Path::new("/w/root"),
        &["/usr/sbin/grub-mkconfig", "-o", "/tmp/grub.cfg"],
        &[("LC_ALL", "C"), ("GRUB_DISABLE_OS_PROBER", "true")],
    );
    assert_eq!(cmd.program, "/usr/sbin/grub-mkconfig");
    assert_eq!(cmd.args, ["-o", "/tmp/grub.cfg"]);
    assert!(cmd.clear_env);
    let env: Vec<String> = cmd
        .env
        .iter()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    assert_eq!(
        env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LC_ALL=C",
            "GRUB_DISABLE_OS_PROBER=true"
        ]
    );
    assert_eq!(cmd.sandbox, Some(Sandbox::new(Path::new("/w/root"))));
    // A distro script's failure is explained anywhere in its stderr.
    assert_eq!(cmd.stderr_kept, StderrKept::Whole);
    // Every message about it says which sandbox ran it.
    let text = cmd.argv_text();
    assert!(
        text.starts_with(r#""/usr/sbin/grub-mkconfig" "-o" "/tmp/grub.cfg" [sandbox: pivot_root to /w/root, new user namespace"#),
        "{text}"
    );
}

#[test]
fn paths_inside_the_root_do_not_follow_symlinks_or_dotdot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("boot/efi")).unwrap();
    symlink("/etc", root.join("escape")).unwrap();
    let session = ChrootSession {
        root: root.to_owned(),
        mounts: Vec::new(),
        native: crate::host::native_tools::Outcome::Off,
    };
    assert_eq!(session.inside("/boot/efi").unwrap(), root.join("boot/efi"));
    let err = session.inside("/escape/default").unwrap_err().to_string();
    assert!(err.contains("is a symlink in the root"), "{err}");
    assert!(session.inside("/boot/../../etc").is_err());
    assert!(session
        .inside("/missing")
        .unwrap_err()
        .to_string()
        .contains("is missing"));
}

#[test]
fn tree_copy_keeps_files_dirs_links_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from"), dir.path().join("to"));
    fs::create_dir_all(from.join("grub.d/deeper")).unwrap();
    fs::write(from.join("grub"), b"GRUB_TIMEOUT=5\n").unwrap();
    fs::write(from.join("grub.d/deeper/x.cfg"), b"X=1\n").unwrap();
    symlink("../locale.conf", from.join("locale")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(from.join("grub.d"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir(&to).unwrap();
    write_tree(&to, &read_tree(&from).unwrap()).unwrap();
    assert_eq!(fs::read(to.join("grub")).unwrap(), b"GRUB_TIMEOUT=5\n");
    assert_eq!(fs::read(to.join("grub.d/deeper/x.cfg")).unwrap(), b"X=1\n");
    assert_eq!(
        fs::read_link(to.join("locale")).unwrap(),
        Path::new("../locale.conf")
    );
    let mode = fs::metadata(to.join("grub.d"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);
}

const SCRIPT: &str = r#"
env
echo ---
readlink /dev/disk/by-uuid/6d6b696d-672d-7465-7374-2d726f6f7421 /dev/disk/by-partuuid/0f0e0d0c-0b0a-0908-0706-050403020100
ls /dev
echo ---
cat /proc/self/mountinfo
echo ---
echo tmp-ok > /tmp/t && cat /tmp/t
touch /etc/new 2>/dev/null || echo root-read-only
touch /boot/efi/x && echo esp-writable
cat /etc/default/grub /etc/default/keep
"#;

#[test]
fn session_gives_a_private_dev_and_read_only_root() {
    if !require_root("session_gives_a_private_dev_and_read_only_root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = host_programs(&["env", "sh", "cat", "ls", "readlink", "touch", "sleep"]);
    files.push(("etc/default/keep".into(), b"KEEP=1\n".to_vec()));
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let image = ext4_image(dir.path(), &borrowed);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let before = (host_mounts(), sha256(&image));
    let device = attach_read_only(&image);
    let links = DiskLinks {
        fs_uuid: Some(TEST_UUID.to_string()),
        part_uuid: Some("0f0e0d0c-0b0a-0908-0706-050403020100".to_string()),
    };
    let never = AtomicBool::new(false);
    let out = in_private_namespace(|| {
        let mut session = ChrootSession::open(&device, "ext4", &root, &links)?;
        session.mount_tmpfs("/boot/efi", "size=1m")?;
        session.overlay_dir(
            "/etc/default",
            &[("grub".into(), b"GRUB_MADE=here\n".to_vec())],
        )?;
        let out = session.run(
            "probing the chroot",
            &["sh", "-c", SCRIPT],
            &[("MARK", "1")],
            &never,
        )?;
        session.close()?;
        Ok(String::from_utf8(out.stdout)?)
    })
    .unwrap();
    device.close().unwrap();
    let parts: Vec<&str> = out.split("---\n").collect();
    // sh adds PWD itself.
    let env: Vec<&str> = parts[0]
        .lines()
        .filter(|l| !l.starts_with("PWD="))
        .collect();
    assert_eq!(env.len(), 2, "only PATH and MARK: {env:?}");
    assert!(env.contains(&"MARK=1"));
    let listing = parts[1];
    assert!(
        listing.starts_with(&format!("../../{ROOT_NODE}\n../../{ROOT_NODE}\n")),
        "{listing}"
    );
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "disk", "fd", ROOT_NODE,
    ] {
        assert!(
            listing.lines().any(|l| l == node),
            "/dev/{node} missing: {listing}"
        );
    }
    assert!(!listing.lines().any(|l| l.starts_with("loop")), "{listing}");
    let root_line = parts[2]
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(
        root_line.contains(&format!(" - ext4 /dev/{ROOT_NODE} ro")),
        "{root_line}"
    );
    assert!(
        root_line.split(' ').nth(5).unwrap().starts_with("ro"),
        "{root_line}"
    );
    assert_eq!(
        parts[3],
        "tmp-ok\nroot-read-only\nesp-writable\nGRUB_MADE=here\nKEEP=1\n"
    );
    assert_eq!((host_mounts(), sha256(&image)), before);
    assert!(loops_of(&image).is_empty());
}

#[test]
fn interrupted_run_is_stopped_and_cleaned_up() {
    if !require_root("interrupted_run_is_stopped_and_cleaned_up") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = host_programs(&["env", "sh", "sleep"]);
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let image = ext4_image(dir.path(), &borrowed);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let before = host_mounts();
    let device = LoopDevice::attach(&image, &LoopOptions::default()).unwrap();
    let flag = AtomicBool::new(false);
    let started = Instant::now();
    let err = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
            flag.store(true, Ordering::SeqCst);
        });
        in_private_namespace(|| {
            let session = ChrootSession::open(&device, "ext4", &root, &DiskLinks::default())?;
            // Busy in /tmp: its processes must be gone before the unmount.
            session.run(
                "sleeping",
                &["sh", "-c", "cd /tmp && sleep 60 & cd /tmp && sleep 60"],
                &[],
                &flag,
            )?;
            session.close()
        })
        .unwrap_err()
    });
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        matches!(
            err.downcast_ref::<CmdError>(),
            Some(CmdError::Interrupted { .. })
        ),
        "{err:#}"
    );
    device.close().unwrap();
    assert_eq!(host_mounts(), before);
    assert!(loops_of(&image).is_empty());
}

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(fs::read(path).unwrap()).to_vec()
}

/// What grub-mkconfig and 00_header ask grub-probe about the root.
const PROBE: &str =
    "for t in device fs fs_uuid; do grub-probe --target=$t / || echo FAILED $t; done
for t in partmap abstraction drive partuuid; do
    echo \"$t=$(grub-probe --device /dev/mkimg-root --target=$t || echo FAILED)\"
done
[ -e /sys/dev ] && echo SYS; true";

/// grub-probe, the part of grub-mkconfig that reads the root device, in the
/// sandbox exactly as mkconfig sets it up — Debian's host-architecture
/// build (grub-common), so no emulation: the device from mountinfo, the
/// filesystem and its UUID read through the node, with no /sys. The
/// same grub-probe on the host, with /sys, prints the same for a node of
/// that name (checked by hand; the name is what it goes by).
#[test]
fn grub_probe_finds_the_root_in_the_sandbox() {
    if !require_root("grub_probe_finds_the_root_in_the_sandbox") {
        return;
    }
    if !have_file(Path::new("/usr/sbin/grub-probe"), "grub-common") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = host_programs(&["sh", "/usr/sbin/grub-probe"]);
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let image = ext4_image(dir.path(), &borrowed);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let device = attach_read_only(&image);
    let links = test_root_links();
    let never = AtomicBool::new(false);
    let out = in_private_namespace(|| {
        let session = ChrootSession::open(&device, "ext4", &root, &links)?;
        let out = session.run(
            "probing the root",
            &["sh", "-c", PROBE],
            &[("LC_ALL", "C")],
            &never,
        )?;
        session.close()?;
        Ok(String::from_utf8(out.stdout)?)
    })
    .unwrap();
    device.close().unwrap();
    assert_eq!(
        out,
        format!(
            "/dev/{ROOT_NODE}\next2\n{TEST_UUID}\n\
             partmap=\nabstraction=\ndrive=(hostdisk//dev/{ROOT_NODE})\npartuuid=\n"
        )
    );
}

/// Debian 12's own grub-mkconfig (2.06, host architecture: no emulation)
/// with its /etc/grub.d, run by the session exactly as the mkconfig stage
/// runs it: root inside the user namespace, output to /tmp, no /sys.
#[test]
fn host_grub_mkconfig_runs_in_the_sandbox() {
    if !require_root("host_grub_mkconfig_runs_in_the_sandbox") {
        return;
    }
    if !Path::new("/usr/sbin/grub-mkconfig").exists() || !Path::new("/etc/grub.d/10_linux").exists()
    {
        skip_or_fail("needs the host's grub-mkconfig and /etc/grub.d (grub-common, grub2-common)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = host_programs(&[
        "sh",
        "sed",
        "grep",
        "sort",
        "basename",
        "dirname",
        "readlink",
        "uname",
        "head",
        "tail",
        "tr",
        "cut",
        "cat",
        "id",
        "mkdir",
        "rm",
        "mktemp",
        "chmod",
        "printf",
        "wc",
        "stat",
        "find",
        "touch",
        "ls",
        "mawk",
        "gettext",
        "grub-editenv",
        "grub-script-check",
        "grub-mkrelpath",
        "grub-file",
        "/usr/sbin/grub-probe",
        "/usr/sbin/grub-mkconfig",
    ]);
    files.push(("usr/bin/awk".into(), fs::read("/usr/bin/mawk").unwrap()));
    // 05_debian_theme needs desktop-base; the others find nothing here.
    for name in ["00_header", "10_linux", "40_custom"] {
        let script = fs::read(format!("/etc/grub.d/{name}")).unwrap();
        files.push((format!("etc/grub.d/{name}"), script));
    }
    files.push((
        "usr/share/grub/grub-mkconfig_lib".into(),
        fs::read("/usr/share/grub/grub-mkconfig_lib").unwrap(),
    ));
    // A crafted rootfs's /etc/grub.d script: grub-mkconfig runs it like the
    // distro's own. Through every /proc/<pid>/root it can see it tries to
    // overwrite a host file; it marks grub.cfg so the test knows it ran.
    let decoy_dir = tempfile::tempdir().unwrap();
    let decoy = decoy_dir.path().join("decoy");
    fs::write(&decoy, b"untouched\n").unwrap();
    let evil = format!(
        "#!/bin/sh\n\
         for r in /proc/[0-9]*/root /proc/[0-9]*/cwd/..; do\n\
         \x20 echo pwned > \"$r{decoy}\" 2>/dev/null && echo \"# wrote through $r\"\n\
         done\n\
         echo '# 05_evil ran'\n",
        decoy = decoy.display()
    );
    files.push(("etc/grub.d/05_evil".into(), evil.into_bytes()));
    files.push(("boot/vmlinuz-6.1.0-test".into(), b"kernel".to_vec()));
    files.push(("boot/initrd.img-6.1.0-test".into(), b"initrd".to_vec()));
    files.push((
        "etc/default/grub".into(),
        b"GRUB_TIMEOUT=1\nGRUB_DISABLE_OS_PROBER=true\n".to_vec(),
    ));
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let image = ext4_image_with_links(dir.path(), &borrowed, &[("bin", "usr/bin")]);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let device = attach_read_only(&image);
    let links = test_root_links();
    let never = AtomicBool::new(false);
    let (cfg, messages) = in_private_namespace(|| {
        let mut session = ChrootSession::open(&device, "ext4", &root, &links)?;
        session.mount_tmpfs("/boot/efi", "mode=0700,size=1m")?;
        let out = session.run(
            "running grub-mkconfig",
            &["/usr/sbin/grub-mkconfig", "-o", "/tmp/grub.cfg"],
            &[
                ("LC_ALL", "C"),
                ("TMPDIR", "/tmp"),
                ("GRUB_DISABLE_OS_PROBER", "true"),
            ],
            &never,
        )?;
        let cfg = String::from_utf8(session.read("/tmp/grub.cfg")?)?;
        session.close()?;
        Ok((cfg, String::from_utf8_lossy(&out.stderr).into_owned()))
    })
    .unwrap();
    device.close().unwrap();
    assert!(
        messages.contains("Found linux image: /boot/vmlinuz-6.1.0-test"),
        "{messages}"
    );
    assert!(cfg.contains(&format!("root=UUID={TEST_UUID}")), "{cfg}");
    assert!(
        cfg.contains(&format!(
            "search --no-floppy --fs-uuid --set=root {TEST_UUID}"
        )),
        "{cfg}"
    );
    assert!(!cfg.contains(ROOT_NODE), "{cfg}");
    assert!(
        cfg.contains("# 05_evil ran"),
        "the crafted script did not run:\n{cfg}"
    );
    assert!(!cfg.contains("# wrote through"), "{cfg}");
    assert_eq!(fs::read(&decoy).unwrap(), b"untouched\n");
}

/// A work directory under /dev/shm (where a build puts it when RAM
/// allows): the session never hides the host's /dev while it reaches the
/// root (it used to cover /dev with its tmpfs and fail with ENOENT), and
/// the root is still mounted from `/dev/mkimg-root`.
#[test]
fn session_opens_with_its_root_under_dev_shm() {
    if !require_root("session_opens_with_its_root_under_dev_shm") {
        return;
    }
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        skip_or_fail("needs /dev/shm");
        return;
    }
    let dir = tempfile::tempdir_in(shm).unwrap();
    let files = host_programs(&["sh", "cat"]);
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let image = ext4_image(dir.path(), &borrowed);
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let before = host_mounts();
    let device = attach_read_only(&image);
    let never = AtomicBool::new(false);
    let out = in_private_namespace(|| {
        let session = ChrootSession::open(&device, "ext4", &root, &test_root_links())?;
        let out = session.run(
            "reading the mount table",
            &["cat", "/proc/self/mountinfo"],
            &[],
            &never,
        )?;
        session.close()?;
        Ok(String::from_utf8(out.stdout)?)
    })
    .unwrap();
    device.close().unwrap();
    let root_line = out
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(
        root_line.contains(&format!(" - ext4 /dev/{ROOT_NODE} ro")),
        "{root_line}"
    );
    assert_eq!(host_mounts(), before);
    assert!(loops_of(&image).is_empty());
}
