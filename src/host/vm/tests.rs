//! Real processes standing in for QEMU: shell scripts honouring the
//! start_vm.sh contract that print a boot log with escapes and answer on
//! stdin like a login and a shell.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{drive, find_vars, live_members, Ending, Event, Limits, Vm, VmError};
use crate::host::console::{select_markers, Console, Dialogue, Script, DEFAULT_REQUIRED};

/// A fake machine (see the script's comment).
const FAKE_BOOT: &str = include_str!("../../../tests/fixtures/console/fake-start_vm.sh");

fn fake_dir(script: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("start_vm.sh");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.path().join("RISCV_VIRT_VARS.fd"), b"vars-template").unwrap();
    fs::write(dir.path().join("RISCV_VIRT_CODE.fd"), b"code").unwrap();
    dir
}

fn console(required: &[&str]) -> Console {
    let required: Vec<String> = required.iter().map(|s| s.to_string()).collect();
    Console::new(select_markers(&required, &[]).unwrap())
}

struct Session {
    ending: Ending,
    markers: Vec<(String, Duration)>,
    output: Vec<u8>,
    raw: Vec<u8>,
    pgid: i32,
}

fn run_session(dir: &Path, console: &mut Console, script: Script, timeout: u64) -> Session {
    let interrupted = AtomicBool::new(false);
    let mut vm = Vm::start(dir, None).unwrap();
    let pgid = vm.pgid();
    let mut dialogue = Dialogue::new(script);
    let (mut markers, mut output, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    let limits = Limits {
        timeout: Duration::from_secs(timeout),
        poweroff_wait: Duration::from_secs(5),
        interrupted: &interrupted,
    };
    let ending = drive(&mut vm, console, &mut dialogue, &limits, &mut |event| {
        match event {
            Event::Raw(bytes) => raw.extend_from_slice(bytes),
            Event::Marker { name, at } => markers.push((name.to_string(), at)),
            Event::Output(bytes) => output.extend_from_slice(bytes),
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        live_members(pgid),
        Vec::<i32>::new(),
        "left behind after drive"
    );
    Session {
        ending,
        markers,
        output,
        raw,
        pgid,
    }
}

#[test]
fn fake_machine_logs_in_runs_and_powers_off() {
    let dir = fake_dir(FAKE_BOOT);
    let mut console = console(DEFAULT_REQUIRED);
    let session = run_session(
        dir.path(),
        &mut console,
        Script {
            login: Some("root:pw".parse().unwrap()),
            run: Some("echo hello from the guest; echo line two".into()),
            nonce: 4242,
        },
        20,
    );
    assert!(
        matches!(
            session.ending,
            Ending::Finished {
                run_status: Some(0)
            }
        ),
        "{:?}\n{}",
        session.ending,
        console.tail().join("\n")
    );
    let names: Vec<&str> = session.markers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["firmware", "kernel", "root", "multi-user", "login"]);
    // The kernel line was split by a 0.2 s pause: found, and after it.
    assert!(
        session.markers[1].1 >= Duration::from_millis(200),
        "{:?}",
        session.markers
    );
    assert_eq!(
        String::from_utf8_lossy(&session.output).replace('\r', ""),
        "hello from the guest\nline two\n"
    );
    assert!(session
        .raw
        .starts_with(b"UEFI firmware (version fake)\r\n\x1b[2J"));
    let args = fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(args.trim(), "-snapshot");
    // The variable store was a writable copy, gone after the session.
    let vars = fs::read_to_string(dir.path().join("vars-path")).unwrap();
    let vars = Path::new(vars.trim());
    assert!(!vars.starts_with(dir.path()), "{}", vars.display());
    assert_eq!(
        fs::read(dir.path().join("vars-content")).unwrap(),
        b"vars-template"
    );
    assert!(!vars.exists(), "{} left behind", vars.display());
}

#[test]
fn failing_run_command_and_wrong_password_are_reported() {
    let dir = fake_dir(FAKE_BOOT);
    let script = |login: &str| Script {
        login: Some(login.parse().unwrap()),
        run: Some("echo partial; false".into()),
        nonce: 1,
    };
    let session = run_session(
        dir.path(),
        &mut console(DEFAULT_REQUIRED),
        script("root:pw"),
        20,
    );
    assert!(
        matches!(
            session.ending,
            Ending::Finished {
                run_status: Some(1)
            }
        ),
        "{:?}",
        session.ending
    );
    let session = run_session(
        dir.path(),
        &mut console(DEFAULT_REQUIRED),
        script("root:bad"),
        20,
    );
    assert!(
        matches!(session.ending, Ending::LoginFailed(_)),
        "{:?}",
        session.ending
    );
}

#[test]
fn timeout_kills_a_group_that_ignores_sigterm() {
    let dir = fake_dir(
        "#!/bin/sh\ntrap '' TERM\nsh -c 'while :; do sleep 1; done' &\n\
         printf 'UEFI firmware\\r\\n[ 0.0] Linux version 6.12\\r\\n'\nwhile :; do sleep 1; done\n",
    );
    let mut console = console(DEFAULT_REQUIRED);
    let started = Instant::now();
    let session = run_session(
        dir.path(),
        &mut console,
        Script {
            login: None,
            run: None,
            nonce: 1,
        },
        1,
    );
    assert!(
        matches!(session.ending, Ending::TimedOut),
        "{:?}",
        session.ending
    );
    // SIGTERM was ignored: the kill waited for the grace period, then SIGKILL.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let missed: Vec<String> = console
        .report()
        .into_iter()
        .filter(|m| m.reached.is_none())
        .map(|m| m.name)
        .collect();
    assert_eq!(missed, ["root", "login"]);
    assert!(live_members(session.pgid).is_empty());
}

#[test]
fn machine_that_stops_early_reports_argv_status_and_console() {
    let dir = fake_dir(
        "#!/bin/sh\nprintf 'qemu-system-riscv64: -drive file=x: No such file\\n' >&2\nexit 3\n",
    );
    let mut vm = Vm::start(dir.path(), None).unwrap();
    let mut console = console(DEFAULT_REQUIRED);
    let interrupted = AtomicBool::new(false);
    let limits = Limits {
        timeout: Duration::from_secs(10),
        poweroff_wait: Duration::from_secs(1),
        interrupted: &interrupted,
    };
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: None,
        nonce: 1,
    });
    let ending = drive(&mut vm, &mut console, &mut dialogue, &limits, &mut |_| {
        Ok(())
    })
    .unwrap();
    let Ending::Exited(Some(status)) = ending else {
        panic!("{ending:?}")
    };
    let text = vm
        .exit_error(status, &console.tail().join("\n"))
        .to_string();
    assert!(
        text.contains("/start_vm.sh\" \"-snapshot\" exited with 3"),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn interrupt_stops_the_machine() {
    let dir = fake_dir("#!/bin/sh\nwhile :; do sleep 1; done\n");
    let mut vm = Vm::start(dir.path(), None).unwrap();
    let pgid = vm.pgid();
    assert!(!live_members(pgid).is_empty());
    let interrupted = AtomicBool::new(true);
    let limits = Limits {
        timeout: Duration::from_secs(10),
        poweroff_wait: Duration::from_secs(1),
        interrupted: &interrupted,
    };
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: None,
        nonce: 1,
    });
    let ending = drive(
        &mut vm,
        &mut console(&[]),
        &mut dialogue,
        &limits,
        &mut |_| Ok(()),
    )
    .unwrap();
    assert!(matches!(ending, Ending::Interrupted), "{ending:?}");
    assert!(live_members(pgid).is_empty());
}

#[test]
fn dropping_a_vm_kills_its_group() {
    let dir = fake_dir("#!/bin/sh\nsleep 100 &\nwhile :; do sleep 1; done\n");
    let vm = Vm::start(dir.path(), None).unwrap();
    let pgid = vm.pgid();
    std::thread::sleep(Duration::from_millis(200));
    assert!(live_members(pgid).len() >= 2, "{:?}", live_members(pgid));
    drop(vm);
    assert!(live_members(pgid).is_empty());
}

#[test]
fn vars_store_is_found_or_the_choice_explained() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(find_vars(dir.path(), None).unwrap(), None);
    fs::write(dir.path().join("AAVMF_VARS.fd"), b"").unwrap();
    fs::write(dir.path().join("AAVMF_CODE.fd"), b"").unwrap();
    assert_eq!(
        find_vars(dir.path(), None).unwrap(),
        Some(dir.path().join("AAVMF_VARS.fd"))
    );
    fs::write(dir.path().join("AAVMF_VARS.ms.fd"), b"").unwrap();
    let err = find_vars(dir.path(), None).unwrap_err();
    assert!(matches!(err, VmError::SeveralVars { .. }));
    assert!(
        err.to_string().contains("AAVMF_VARS.fd, AAVMF_VARS.ms.fd"),
        "{err}"
    );
    assert!(err.to_string().contains("--vars"), "{err}");
    assert_eq!(
        find_vars(dir.path(), Some("AAVMF_VARS.ms.fd")).unwrap(),
        Some(dir.path().join("AAVMF_VARS.ms.fd"))
    );
    let err = find_vars(dir.path(), Some("nope.fd")).unwrap_err();
    assert!(err.to_string().contains("nope.fd"), "{err}");
}

#[test]
fn directory_without_script_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Vm::start(dir.path(), None).unwrap_err();
    assert!(matches!(err, VmError::NoScript { .. }), "{err}");
    assert!(err.to_string().contains("start_vm.sh"), "{err}");
}
