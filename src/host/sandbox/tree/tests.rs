//! The rootless sandbox from the inside, over a tree whose only program is
//! Debian's static busybox: the hostile script of `host::sandbox`'s tests
//! (every way out it can think of), handed-back files, exit statuses, a
//! foreign-architecture program through binfmt, and a killed parent.
//! As root the sandbox maps to `SANDBOX_ID`; [`hostile_script_as_an_unprivileged_user`]
//! runs the same script from a user without any privilege.

use std::fs;
use std::io::{BufRead, ErrorKind};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use super::super::tests::{field, riscv64_exit, sandboxed_processes, tag_for, HOSTILE, TAG};
use super::{parse_handed_back, HostFile, Tmpfs, TreeSandbox, ROOT};
use crate::host::cmd::{Cmd, CmdError};
use crate::host::sandbox::{Sandbox, HOSTNAME};
use crate::host::test_support::static_busybox;
use crate::host::treedir::TreeDir;
use crate::test_tools::{require_root, skip_or_fail};

const APPLETS: [&str; 22] = [
    "sh", "id", "hostname", "cat", "echo", "ls", "grep", "kill", "mount", "umount", "mknod",
    "mkdir", "touch", "chroot", "tail", "cut", "tr", "nc", "setsid", "sleep", "ln", "unshare",
];
const UUID: &str = "6d6b696d-672d-7465-7374-2d726f6f7421";

/// A stage under `dir` whose tree holds busybox and its applets, and the
/// sandbox over it: a tmpfs /boot/efi, the root's by-uuid link to a
/// stand-in node.
fn busybox_sandbox(dir: &Path, busybox: &[u8], extra: &[(&str, &[u8])]) -> TreeSandbox {
    let stage = dir.join("stage");
    TreeSandbox::create_stage(&stage).unwrap();
    let tree = TreeDir::create(&stage.join(ROOT), TreeSandbox::host_ids()).unwrap();
    for d in [
        "usr", "usr/bin", "dev", "proc", "tmp", "etc", "boot", "boot/efi",
    ] {
        tree.make_dir(d, 0o755).unwrap();
    }
    tree.write_file("usr/bin/busybox", busybox, 0o755).unwrap();
    for applet in APPLETS {
        tree.symlink(&format!("usr/bin/{applet}"), "busybox")
            .unwrap();
    }
    tree.symlink("bin", "usr/bin").unwrap();
    for (path, data) in extra {
        tree.write_file(path, data, 0o755).unwrap();
    }
    TreeSandbox {
        tmpfs: vec![Tmpfs {
            path: "/boot/efi".into(),
            options: "mode=0700,size=1m".into(),
        }],
        dev_links: vec![(format!("disk/by-uuid/{UUID}"), "../../mkimg-root".into())],
        dev_stand_ins: vec!["mkimg-root".into()],
        ..TreeSandbox::new(&stage)
    }
}

fn sh(purpose: &str, script: &str, sandbox: &TreeSandbox) -> Cmd {
    Cmd::new(purpose, "sh")
        .args(["-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .sandboxed(Sandbox::Tree(sandbox.clone()))
}

/// Every file under `dir`, with its size: the tree before and after.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            out.push((name, meta.len()));
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The hostile script, and every check of the prepared-root test that
/// applies; `Err` text for a run as another user (see below).
fn run_hostile(dir: &Path, busybox: &[u8]) -> Result<(), String> {
    let decoy_dir = dir.join("decoy");
    fs::create_dir(&decoy_dir).unwrap();
    let decoy = decoy_dir.join("decoy");
    fs::write(&decoy, b"untouched\n").unwrap();
    // A world-writable host directory, open without close-on-exec, as a
    // careless parent of mkimg might leave one.
    let open_dir = dir.join("open");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let open_decoy = open_dir.join("decoy");
    fs::write(&open_decoy, b"untouched\n").unwrap();
    fs::set_permissions(&open_decoy, fs::Permissions::from_mode(0o666)).unwrap();
    let leaked = rustix::fs::open(
        &open_dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut victim = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let result = hostile_run(
        dir,
        busybox,
        &decoy,
        &open_decoy,
        &leaked,
        &mut victim,
        &listener,
    );
    drop(leaked);
    victim.kill().unwrap();
    victim.wait().unwrap();
    result
}

/// The part of [`run_hostile`] between starting the victim and ending it.
fn hostile_run(
    dir: &Path,
    busybox: &[u8],
    decoy: &Path,
    open_decoy: &Path,
    leaked: &std::os::fd::OwnedFd,
    victim: &mut std::process::Child,
    listener: &TcpListener,
) -> Result<(), String> {
    let leaked_fd = leaked.as_raw_fd().to_string();
    let port = listener.local_addr().unwrap().port().to_string();
    let sandbox = busybox_sandbox(dir, busybox, &[]);
    let tree = sandbox.stage.join(ROOT);
    let before = snapshot(&tree);
    let hostpid = std::process::id().to_string();
    let tag = tag_for("tree-hostile");
    let victim_pid = victim.id().to_string();
    let decoy_text = decoy.display().to_string();
    let out = sh("running a hostile /etc/grub.d script", HOSTILE, &sandbox)
        .env("DECOY", &decoy_text)
        .env("HOSTPID", &hostpid)
        .env("VICTIM", &victim_pid)
        .env("PORT", &port)
        .env(TAG, &tag)
        .env("LEAKFD", &leaked_fd)
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8(out.stdout).unwrap();
    let check = |ok: bool, what: &str| match ok {
        true => Ok(()),
        false => Err(format!("{what}\n{out}")),
    };
    check(out.ends_with("DONE\n"), "no DONE")?;
    let escapes: Vec<&str> = out.lines().filter(|l| l.contains("ESCAPE")).collect();
    check(escapes.is_empty(), &format!("{escapes:#?}"))?;
    check(
        out.contains(&format!("id=0:0 hostname={HOSTNAME} pid=1\n")),
        "not root, PID 1 of its own namespace",
    )?;
    let procs: Vec<u32> = field(&out, "procs=")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    check(
        procs.contains(&1) && procs.len() < 10,
        "its /proc shows more",
    )?;
    check(!procs.contains(&std::process::id()), "it sees the host")?;
    check(field(&out, "netdevs=") == "lo,", "network devices")?;
    check(
        field(&out, "mounts=")
            == "/,/dev,/dev/null,/dev/zero,/dev/full,/dev/random,/dev/urandom,/dev/tty,/tmp,\
                /boot/efi,/proc,",
        "its mounts",
    )?;
    check(fs::read(decoy).unwrap() == b"untouched\n", "decoy")?;
    check(
        fs::read(open_decoy).unwrap() == b"untouched\n",
        "open decoy",
    )?;
    check(victim.try_wait().unwrap().is_none(), "victim was killed")?;
    check(
        listener.accept().map(|_| ()).unwrap_err().kind() == ErrorKind::WouldBlock,
        "it connected to the host",
    )?;
    check(snapshot(&tree) == before, "the tree changed")?;
    // The setsid'd sleep died with the sandbox's PID 1.
    let (uid, _) = TreeSandbox::host_ids();
    check(sandboxed_processes(&tag, uid).is_empty(), "processes left")
}

#[test]
fn hostile_script_cannot_reach_the_host_from_a_tree() {
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    run_hostile(dir.path(), &busybox).unwrap();
}

/// The variable that makes [`hostile_script_body`] run (the directory it
/// works in).
const BODY_DIR: &str = "MKIMG_TEST_TREE_SANDBOX_DIR";

/// Not a test of its own: [`hostile_script_as_an_unprivileged_user`]'s body,
/// run as `nobody` in a process of its own. Without the variable it does
/// nothing.
#[test]
fn hostile_script_body() {
    let Some(dir) = std::env::var_os(BODY_DIR) else {
        return;
    };
    let busybox = fs::read("/bin/busybox").unwrap();
    match run_hostile(Path::new(&dir), &busybox) {
        Ok(()) => println!("HOSTILE-OK"),
        Err(err) => println!("HOSTILE-FAILED: {err}"),
    }
}

/// The same script from a user without any privilege (uid/gid 65534, no
/// groups, no capabilities): the sandbox maps that user to 0.
#[test]
fn hostile_script_as_an_unprivileged_user() {
    if !require_root("hostile_script_as_an_unprivileged_user") {
        return;
    }
    if static_busybox().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    rustix::fs::chown(
        &work,
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
    )
    .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host::sandbox::tree::tests::hostile_script_body",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(BODY_DIR, &work)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("HOSTILE-OK"),
        "{stdout}\n{stderr}\n(the test binary must be readable by nobody)"
    );
}

/// Files of the sandbox's /tmp come back framed on stdout, the program's
/// own stdout goes to stderr; a missing file and a symlink come back as
/// absent; the exit status is the program's.
#[test]
fn files_are_handed_back_and_the_status_kept() {
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox = busybox_sandbox(dir.path(), &busybox, &[]);
    sandbox.hand_back = vec![
        "out".into(),
        "missing".into(),
        "link".into(),
        "empty".into(),
    ];
    let script = "printf 'cfg\\n\\0bin' > /tmp/out; : > /tmp/empty; \
                  ln -s /etc/passwd /tmp/link; echo to-stdout; exit 3";
    let (status, out) = sh("handing back", script, &sandbox)
        .output_unchecked_interruptible(&AtomicBool::new(false))
        .unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stdout\n");
    let files = parse_handed_back(&out.stdout).unwrap();
    assert_eq!(
        files,
        vec![
            ("out".to_string(), Some(b"cfg\n\0bin".to_vec())),
            ("missing".to_string(), None),
            ("link".to_string(), None),
            ("empty".to_string(), Some(Vec::new())),
        ]
    );
    // PID 1 ignores its own namespace's signals; the status is its exit.
    let (status, _) = sh("signals", "kill -9 $$; exit 4", &sandbox)
        .output_unchecked_interruptible(&AtomicBool::new(false))
        .unwrap();
    assert_eq!((status.code(), status.signal()), (Some(4), None));
    assert!(parse_handed_back(b"out 5\nabc").is_err(), "cut short");
    assert!(parse_handed_back(b"out\nabc").is_err(), "no size");
}

/// A mount point that is a symlink in the tree is refused before the fork,
/// naming it; a failing step inside names the step.
#[test]
fn bad_trees_are_refused_with_the_reason() {
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sandbox = busybox_sandbox(dir.path(), &busybox, &[]);
    let tree = TreeDir::open(&sandbox.stage.join(ROOT), TreeSandbox::host_ids()).unwrap();
    fs::remove_dir(sandbox.stage.join(ROOT).join("boot/efi")).unwrap();
    tree.symlink("boot/efi", "/etc").unwrap();
    let err = sh("probing", "true", &sandbox).run().unwrap_err();
    assert!(
        err.to_string()
            .contains("/boot/efi is not a plain directory"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut sandbox = busybox_sandbox(dir.path(), &busybox, &[]);
    sandbox.tmpfs[0].options = "mode=0700,size=1m,nonsense".into();
    let err = sh("probing", "true", &sandbox).run().unwrap_err();
    assert!(matches!(err, CmdError::Sandbox { .. }), "{err}");
    assert!(
        err.to_string().contains("mounting the sandbox's tmpfs"),
        "{err}"
    );
    assert!(err.to_string().contains("[rootless sandbox:"), "{err}");
}

/// Host files (native tools) are bound read-only over files of the tree:
/// the sandbox reads the host's bytes and cannot write them, nor the tree
/// file under them; a target reached through a symlink of the tree, a
/// missing target and a host path that is not a regular file are refused
/// before the fork, naming the path.
#[test]
fn host_files_are_bound_read_only_over_tree_files() {
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host-file");
    fs::write(&host, b"the host's bytes\n").unwrap();
    // Writable by anyone: only the read-only bind keeps the sandbox out.
    fs::set_permissions(&host, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut sandbox = busybox_sandbox(dir.path(), &busybox, &[("etc/tool", b"tree bytes\n")]);
    sandbox.host_files = vec![HostFile {
        host: host.clone(),
        inside: "/etc/tool".into(),
    }];
    let script = "cat /etc/tool; echo x >> /etc/tool && echo WROTE; \
                  grep -c ' /etc/tool ' /proc/self/mountinfo";
    let (status, out) = sh("reading a host file", script, &sandbox)
        .output_unchecked_interruptible(&AtomicBool::new(false))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "the host's bytes\n1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&host).unwrap(), b"the host's bytes\n");
    let tree_file = sandbox.stage.join(ROOT).join("etc/tool");
    assert_eq!(fs::read(&tree_file).unwrap(), b"tree bytes\n");

    let refused = |sandbox: &TreeSandbox, expected: &str| {
        let err = sh("probing", "true", sandbox).run().unwrap_err();
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    };
    let tree = TreeDir::open(&sandbox.stage.join(ROOT), TreeSandbox::host_ids()).unwrap();
    tree.symlink("lib", "etc").unwrap();
    let mut through_link = sandbox.clone();
    through_link.host_files[0].inside = "/lib/tool".into();
    refused(
        &through_link,
        "/lib/tool is not a regular file of the sandbox's tree",
    );
    let mut missing = sandbox.clone();
    missing.host_files[0].inside = "/etc/none".into();
    refused(&missing, "/etc/none is not a regular file");
    let mut host_dir = sandbox.clone();
    host_dir.host_files[0].host = dir.path().to_path_buf();
    refused(&host_dir, "not a regular host file");
}

/// A foreign-architecture program runs in the tree sandbox through the
/// host's binfmt_misc registration (qemu-user, `F` flag), as the riscv64
/// grub-mkconfig does.
#[test]
fn foreign_program_runs_in_a_tree_through_binfmt() {
    if let Err(err) = crate::host::binfmt::preflight_host(crate::arch::Arch::Riscv64) {
        skip_or_fail(format_args!("riscv64 binfmt is not usable: {err}"));
        return;
    }
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let program = riscv64_exit(42);
    let sandbox = busybox_sandbox(dir.path(), &busybox, &[("usr/bin/exit42", &program)]);
    let out = sh(
        "running a riscv64 program",
        "exit42; echo status=$?",
        &sandbox,
    )
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "status=42\n");
}

const HOLD_DIR: &str = "MKIMG_TEST_TREE_HOLD_DIR";
const HOLD_TAG: &str = "MKIMG_TEST_TREE_HOLD_TAG";

/// Not a test of its own: the process [`killed_parent_takes_the_sandbox_with_it`]
/// kills, holding a tree sandbox whose program never ends.
#[test]
fn hold_a_tree_sandbox_until_killed() {
    let (Some(dir), Ok(tag)) = (std::env::var_os(HOLD_DIR), std::env::var(HOLD_TAG)) else {
        return;
    };
    let busybox = fs::read("/bin/busybox").unwrap();
    let sandbox = busybox_sandbox(Path::new(&dir), &busybox, &[]);
    // READY once a second process, in a session of its own, runs beside
    // PID 1 (both carry the tag from the first instruction on).
    sh(
        "holding",
        "setsid sh -c 'echo READY >&2; exec sleep 1000' & exec sleep 1000",
        &sandbox,
    )
    .env(TAG, &tag)
    .run_with_stderr_lines(|line| {
        if line == "READY" {
            println!("SANDBOX-READY");
        }
    })
    .unwrap();
    panic!("the sandboxed sleep ended before the parent killed this process");
}

/// SIGKILL of mkimg while a program runs in the tree sandbox: the keeper
/// and PID 1 die with it, and every process of the sandbox with them.
#[test]
fn killed_parent_takes_the_sandbox_with_it() {
    if static_busybox().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = tag_for("tree-killed");
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host::sandbox::tree::tests::hold_a_tree_sandbox_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_DIR, dir.path())
        .env(HOLD_TAG, &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = std::io::BufReader::new(holder.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("SANDBOX-READY"));
    assert!(ready, "the holder ended before its sandbox ran");
    let (uid, _) = TreeSandbox::host_ids();
    let sandboxed = sandboxed_processes(&tag, uid);
    let pidfds: Vec<_> = sandboxed
        .iter()
        .filter_map(|&pid| {
            let pid = rustix::process::Pid::from_raw(pid as i32)?;
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        })
        .collect();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(sandboxed.len() >= 2, "{sandboxed:?}");
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
        assert_eq!(ready, 1, "a sandboxed process outlived its parent");
    }
    assert_eq!(sandboxed_processes(&tag, uid), Vec::<u32>::new());
}
