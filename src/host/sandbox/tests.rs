//! The sandbox from the inside. A root filesystem whose only program is
//! Debian's static busybox (package busybox-static) runs a hostile script
//! exactly the way the mkconfig stage runs grub-mkconfig: an ext4 image on
//! a read-only loop device, a [`ChrootSession`] in a private mount
//! namespace, [`ChrootSession::run`]. The script tries every way out it
//! can think of and prints a marker for each one that works; the test
//! checks the markers, the decoy host file, the victim host process, a
//! listening host socket, and that nothing (mount, loop device, process)
//! is left. Each attempt succeeds against the chroot this replaced
//! (host root, host PID namespace, host /proc), so each check can fail.

use std::fs;
use std::io::{BufRead, ErrorKind};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use super::{Sandbox, Step, HOSTNAME, SANDBOX_ID};
use crate::host::chroot::{chroot_cmd, ChrootSession, DiskLinks};
use crate::host::cmd::{Cmd, CmdError};
use crate::host::mount::in_private_namespace;
use crate::host::test_support::{
    attach_read_only, ext4_image_with_links, host_mounts, loops_of, static_busybox, test_root_links,
};
use crate::test_tools::{require_root, skip_or_fail};

#[test]
fn description_names_every_namespace_and_the_mapping() {
    let text = Sandbox::new(Path::new("/w/root")).describe();
    for part in [
        "pivot_root to /w/root",
        "user namespace",
        &format!("host {SANDBOX_ID}"),
        "pid/mount/ipc/uts/net",
        "own /proc",
        "no /sys",
        "no_new_privs",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let texts: Vec<&str> = Step::ALL.iter().map(|s| s.text()).collect();
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), texts.len(), "{texts:?}");
}

#[test]
fn failing_step_is_named_in_the_error() {
    if !require_root("failing_step_is_named_in_the_error") {
        return;
    }
    // No proc directory: the sandbox cannot mount its /proc.
    let bare = tempfile::tempdir().unwrap();
    let err = Cmd::new("probing", "/bin/true")
        .sandboxed(Sandbox::new(bare.path()))
        .run()
        .unwrap_err();
    assert!(matches!(err, CmdError::Sandbox { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("mounting a /proc"), "{text}");
    assert!(text.contains("[sandbox: pivot_root to"), "{text}");
    // A directory that is not a mount point cannot be pivoted into.
    fs::create_dir(bare.path().join("proc")).unwrap();
    let err = Cmd::new("probing", "/bin/true")
        .sandboxed(Sandbox::new(bare.path()))
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("pivot_root"), "{err}");
    // The proc mount died with the child's mount namespace.
    assert_eq!(fs::read_dir(bare.path().join("proc")).unwrap().count(), 0);
}

/// Prints `ESCAPE: …` for every attempt that works; `DONE` at the end.
/// Nothing in it may harm the host should the sandbox ever regress (no
/// `kill -1`, no hostname or sysctl writes): it touches only the test's
/// own decoy file, victim process, socket and loop device.
pub(super) const HOSTILE: &str = r#"
exec 2>&1
echo "id=$(id -u):$(id -g) hostname=$(hostname) pid=$$"
echo "procs=$(cd /proc && echo [0-9]*)"
[ -e "$DECOY" ] && echo "ESCAPE: saw $DECOY"
for p in /proc/[0-9]* /proc/1 /proc/self; do
    [ -e "$p/root$DECOY" ] && echo "ESCAPE: saw $p/root$DECOY"
    echo pwned 2>/dev/null > "$p/root$DECOY" && echo "ESCAPE: wrote $p/root$DECOY"
    echo pwned 2>/dev/null > "$p/cwd$DECOY" && echo "ESCAPE: wrote $p/cwd$DECOY"
done
[ -e "/proc/self/fd/$LEAKFD" ] && echo "ESCAPE: inherited fd $LEAKFD"
echo pwned 2>/dev/null > "/proc/self/fd/$LEAKFD/decoy" && echo "ESCAPE: wrote through fd $LEAKFD"
[ -e "/proc/$HOSTPID" ] && echo "ESCAPE: sees host pid $HOSTPID"
kill -9 "$VICTIM" 2>/dev/null && echo "ESCAPE: killed $VICTIM"
kill -0 "$HOSTPID" 2>/dev/null && echo "ESCAPE: can signal $HOSTPID"
ls /sys 2>/dev/null | grep -q . && echo "ESCAPE: /sys is there"
mount -t sysfs sysfs /sys 2>/dev/null && echo "ESCAPE: mounted sysfs"
for d in /dev/vda /dev/sda /dev/loop0 /dev/loop-control /dev/mem /dev/kmsg /dev/mkimg-root; do
    echo x 2>/dev/null > "$d" && echo "ESCAPE: wrote $d"
done
mknod /tmp/sda b 8 0 2>/dev/null && echo "ESCAPE: mknod sda"
mknod /tmp/vda b 253 0 2>/dev/null && echo "ESCAPE: mknod vda"
mknod /tmp/loop0 b 7 0 2>/dev/null && echo "ESCAPE: mknod loop0"
mknod /tmp/mem c 1 1 2>/dev/null && echo "ESCAPE: mknod mem"
mount -t proc proc /tmp 2>/dev/null && echo "ESCAPE: mounted proc"
mount -t tmpfs tmpfs /etc 2>/dev/null && echo "ESCAPE: mounted tmpfs"
mkdir -p /tmp/b && mount -o bind / /tmp/b 2>/dev/null && echo "ESCAPE: bind-mounted /"
mount -o remount,rw / 2>/dev/null && echo "ESCAPE: remounted / rw"
umount -l /proc 2>/dev/null && echo "ESCAPE: unmounted /proc"
touch /etc/pwned 2>/dev/null && echo "ESCAPE: wrote the root"
chroot /proc/1/root /usr/bin/busybox test -e "$DECOY" 2>/dev/null && echo "ESCAPE: chroot /proc/1/root"
cd /../../../.. && [ -e ".$DECOY" ] && echo "ESCAPE: .. above the root"
cd /
echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"
echo hi | nc 127.0.0.1 "$PORT" 2>/dev/null && echo "ESCAPE: connected to the host"
echo "mounts=$(cut -d' ' -f5 /proc/self/mountinfo | tr '\n' ,)"
setsid sh -c 'exec sleep 1000' </dev/null >/dev/null 2>&1 &
echo DONE
"#;

#[test]
fn hostile_rootfs_script_cannot_reach_the_host() {
    if !require_root("hostile_rootfs_script_cannot_reach_the_host") {
        return;
    }
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let decoy_dir = tempfile::tempdir().unwrap();
    let decoy = decoy_dir.path().join("decoy");
    fs::write(&decoy, b"untouched\n").unwrap();
    // A world-writable host directory, open without close-on-exec, as a
    // careless parent of mkimg might leave one.
    let open_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(open_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let open_decoy = open_dir.path().join("decoy");
    fs::write(&open_decoy, b"untouched\n").unwrap();
    fs::set_permissions(&open_decoy, fs::Permissions::from_mode(0o666)).unwrap();
    let leaked = rustix::fs::open(
        open_dir.path(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let leaked_fd = leaked.as_raw_fd().to_string();
    let mut victim = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();

    let applets = [
        "sh", "id", "hostname", "cat", "echo", "ls", "grep", "kill", "mount", "umount", "mknod",
        "mkdir", "touch", "chroot", "tail", "cut", "tr", "nc", "setsid", "sleep",
    ];
    let links: Vec<(String, &str)> = applets
        .iter()
        .map(|a| (format!("usr/bin/{a}"), "busybox"))
        .collect();
    let links: Vec<(&str, &str)> = links.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    let image = ext4_image_with_links(
        dir.path(),
        &[("usr/bin/busybox", busybox.as_slice())],
        &links,
    );
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let mounts_before = host_mounts();
    let device = attach_read_only(&image);
    let links = test_root_links();
    let hostpid = std::process::id().to_string();
    let tag = tag_for("hostile");
    let victim_pid = victim.id().to_string();
    let decoy_text = decoy.display().to_string();
    let out = in_private_namespace(|| {
        let session = ChrootSession::open(&device, "ext4", &root, &links)?;
        let out = session.run(
            "running a hostile /etc/grub.d script",
            &["sh", "-c", HOSTILE],
            &[
                ("DECOY", decoy_text.as_str()),
                ("HOSTPID", hostpid.as_str()),
                ("VICTIM", victim_pid.as_str()),
                ("PORT", port.as_str()),
                (TAG, tag.as_str()),
                ("LEAKFD", leaked_fd.as_str()),
            ],
            &AtomicBool::new(false),
        )?;
        session.close()?;
        Ok(String::from_utf8(out.stdout)?)
    })
    .unwrap();
    device.close().unwrap();

    assert!(out.ends_with("DONE\n"), "{out}");
    let escapes: Vec<&str> = out.lines().filter(|l| l.contains("ESCAPE")).collect();
    assert!(escapes.is_empty(), "{escapes:#?}\n{out}");
    assert!(
        out.contains(&format!("id=0:0 hostname={HOSTNAME} pid=1\n")),
        "{out}"
    );
    // Its /proc lists only its own few processes, none of the host's.
    let procs: Vec<u32> = field(&out, "procs=")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(procs.contains(&1) && procs.len() < 10, "{procs:?}");
    assert!(!procs.contains(&std::process::id()), "{procs:?}");
    assert_eq!(field(&out, "netdevs="), "lo,");
    assert_eq!(field(&out, "mounts="), "/,/dev,/tmp,/proc,");

    assert_eq!(fs::read(&decoy).unwrap(), b"untouched\n");
    assert_eq!(fs::read(&open_decoy).unwrap(), b"untouched\n");
    drop(leaked);
    assert!(victim.try_wait().unwrap().is_none(), "victim was killed");
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(host_mounts(), mounts_before);
    assert!(loops_of(&image).is_empty());
    // The setsid'd sleep died with the sandbox's PID 1.
    assert_eq!(sandboxed_processes(&tag, SANDBOX_ID), Vec::<u32>::new());
    victim.kill().unwrap();
    victim.wait().unwrap();
}

/// Set by [`killed_mkimg_leaves_no_sandbox_mount_or_loop_device`] for
/// the process it runs [`hold_a_sandbox_until_killed`] in: the image, and
/// the tag of its sandboxed processes.
const HOLD_IMAGE: &str = "MKIMG_TEST_SANDBOX_IMAGE";
const HOLD_TAG: &str = "MKIMG_TEST_SANDBOX_TAG";

/// Not a test of its own: the body of the process that
/// [`killed_mkimg_leaves_no_sandbox_mount_or_loop_device`] kills, doing
/// what the mkconfig stage does (read-only loop device, session in a
/// private mount namespace, a sandboxed program) with a program that
/// never ends. Without the variables it does nothing.
#[test]
fn hold_a_sandbox_until_killed() {
    let (Some(image), Ok(tag)) = (std::env::var_os(HOLD_IMAGE), std::env::var(HOLD_TAG)) else {
        return;
    };
    let device = attach_read_only(Path::new(&image));
    let root = Path::new(&image).with_file_name("root");
    let _ = in_private_namespace(|| -> anyhow::Result<()> {
        let session = ChrootSession::open(&device, "ext4", &root, &DiskLinks::default())?;
        // ChrootSession::run's command, read as it runs.
        chroot_cmd(
            "holding",
            session.root(),
            &["sh", "-c", "echo READY >&2; exec sleep 1000"],
            &[(TAG, tag.as_str())],
        )
        .run_with_stderr_lines(|line| {
            if line == "READY" {
                println!("SANDBOX-READY");
            }
        })?;
        panic!("the sandboxed sleep ended before the parent killed this process");
    });
}

/// SIGKILL of mkimg while a rootfs program runs in the sandbox (as during
/// grub-mkconfig): the sandbox's processes die with it (parent-death
/// signal, PID namespace), its mount namespaces go with them, and the
/// loop device under the mounted root is freed (autoclear). Reached
/// without sleeping: the script says READY on its stderr, which the holder
/// streams, and the sandbox's processes are waited for through pidfds.
#[test]
fn killed_mkimg_leaves_no_sandbox_mount_or_loop_device() {
    if !require_root("killed_mkimg_leaves_no_sandbox_mount_or_loop_device") {
        return;
    }
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let links = [("usr/bin/sh", "busybox"), ("usr/bin/sleep", "busybox")];
    let image = ext4_image_with_links(
        dir.path(),
        &[("usr/bin/busybox", busybox.as_slice())],
        &links,
    );
    fs::create_dir(dir.path().join("root")).unwrap();
    let mounts_before = host_mounts();
    let tag = tag_for("killed");
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host::sandbox::tests::hold_a_sandbox_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_IMAGE, &image)
        .env(HOLD_TAG, &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // libtest prints "test NAME ... " before it on the same line.
    let ready = std::io::BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("SANDBOX-READY"));
    assert!(ready, "the holder ended before its sandbox ran");
    assert_eq!(loops_of(&image).len(), 1);
    let sandboxed = sandboxed_processes(&tag, SANDBOX_ID);
    assert!(!sandboxed.is_empty());
    let pidfds: Vec<_> = sandboxed
        .iter()
        .filter_map(|&pid| {
            let pid = rustix::process::Pid::from_raw(pid as i32)?;
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        })
        .collect();
    holder.kill().unwrap();
    holder.wait().unwrap();
    for pidfd in &pidfds {
        let mut polled = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        // Bounded only so that a regression fails instead of hanging.
        let limit = rustix::event::Timespec {
            tv_sec: 60,
            tv_nsec: 0,
        };
        let ready = rustix::event::poll(&mut polled, Some(&limit)).unwrap();
        assert_eq!(ready, 1, "a sandboxed process outlived mkimg");
    }
    assert_eq!(sandboxed_processes(&tag, SANDBOX_ID), Vec::<u32>::new());
    assert!(loops_of(&image).is_empty(), "{:?}", loops_of(&image));
    assert_eq!(host_mounts(), mounts_before);
}

/// A minimal static riscv64 executable: `exit(code)` (addi a0,x0,code;
/// addi a7,x0,93; ecall) in one PT_LOAD segment at 0x10000.
pub(super) fn riscv64_exit(code: u8) -> Vec<u8> {
    const BASE: u64 = 0x10000;
    let text: Vec<u8> = [
        (u32::from(code) << 20) | (10 << 7) | 0x13, // addi a0, x0, code
        (93 << 20) | (17 << 7) | 0x13,              // addi a7, x0, 93 (exit)
        0x73,                                       // ecall
    ]
    .iter()
    .flat_map(|i| i.to_le_bytes())
    .collect();
    let size = 64 + 56 + text.len() as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&text);
    elf
}

/// A foreign-architecture program runs in the sandbox through the host's
/// binfmt_misc registration (qemu-user, `F` flag: the interpreter was
/// opened at registration, so it need not exist in the root), as the
/// riscv64 grub-mkconfig does: user namespace, pivot_root and
/// no_new_privs do not get in its way.
#[test]
fn foreign_program_runs_in_the_sandbox_through_binfmt() {
    if !require_root("foreign_program_runs_in_the_sandbox_through_binfmt") {
        return;
    }
    if let Err(err) = crate::host::binfmt::preflight_host(crate::arch::Arch::Riscv64) {
        skip_or_fail(format_args!("riscv64 binfmt is not usable: {err}"));
        return;
    }
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let program = riscv64_exit(42);
    let image = ext4_image_with_links(
        dir.path(),
        &[
            ("usr/bin/busybox", busybox.as_slice()),
            ("usr/bin/exit42", program.as_slice()),
        ],
        &[("usr/bin/sh", "busybox")],
    );
    fs::create_dir(dir.path().join("root")).unwrap();
    let device = attach_read_only(&image);
    let root = dir.path().join("root");
    let out = in_private_namespace(|| {
        let session = ChrootSession::open(&device, "ext4", &root, &DiskLinks::default())?;
        let out = session.run(
            "running a riscv64 program",
            &["sh", "-c", "exit42; echo status=$?"],
            &[],
            &AtomicBool::new(false),
        )?;
        session.close()?;
        Ok(String::from_utf8(out.stdout)?)
    })
    .unwrap();
    device.close().unwrap();
    assert_eq!(out, "status=42\n");
}

/// The text after `key` on its line.
pub(super) fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

/// The environment variable that marks a test's sandboxed processes, so
/// that tests running in parallel (each with sandboxes of the same uid)
/// look only at their own.
pub(super) const TAG: &str = "MKIMG_TEST_TAG";

/// A value for [`TAG`] unique to this test process and `test`.
pub(super) fn tag_for(test: &str) -> String {
    format!("{}-{test}", std::process::id())
}

/// Host pids running as `uid` (the sandbox's on the host) with `TAG=tag`
/// in their environment.
pub(super) fn sandboxed_processes(tag: &str, uid: u32) -> Vec<u32> {
    let marker = format!("{TAG}={tag}");
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        let tagged = fs::read(entry.path().join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()));
        if real == Some(uid) && tagged {
            pids.push(pid);
        }
    }
    pids
}
