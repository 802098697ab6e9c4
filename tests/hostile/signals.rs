//! SIGINT, SIGTERM and SIGHUP at named stages of a default (template) build,
//! reached by the test hook (`MKIMG_TEST_HOOKS=1 MKIMG_TEST_PAUSE_AT=STAGE`,
//! see `host::interrupt::pause_at`), never by sleeping: exit 128+signo, the
//! message says so, the earlier output is byte-identical, no work or staging
//! directory and no child process is left. SIGKILL: children die with
//! mkimg, and the next run sweeps what it left — but not a directory whose
//! lock a live process holds, nor one kept with --keep-workdir.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::lifecycle::{
    build_tools_available, descendants, du, entries_with_prefix, signal, snapshot, still_alive,
    Case, Proc,
};

/// Build once so there is an output to keep intact.
fn case_with_output(default_work_root: bool) -> Option<Case> {
    if !build_tools_available() {
        return None;
    }
    let mut case = Case::new();
    case.default_work_root = default_work_root;
    let (status, err) = case.build(&case.out());
    assert!(status.success(), "{err}");
    Some(case)
}

/// What a paused build had made, for the report.
fn footprint(case: &Case, pid: u32) -> String {
    let work = entries_with_prefix(&case.work_root(), &format!("mkimg-work-{pid}-"));
    let staging = entries_with_prefix(case.dir.path(), &format!(".out.staging-{pid}"));
    let bytes: u64 = work
        .iter()
        .map(|w| du(&case.work_root().join(w)))
        .sum::<u64>()
        + staging
            .iter()
            .map(|s| du(&case.dir.path().join(s)))
            .sum::<u64>();
    format!("{work:?} {staging:?} {} KiB", bytes >> 10)
}

fn assert_left_nothing(case: &Case, pid: u32, procs: &[Proc]) {
    // By pid: other builds on this machine may have theirs in /dev/shm.
    for root in [case.work_root(), Path::new("/dev/shm").to_path_buf()] {
        assert_eq!(
            entries_with_prefix(&root, &format!("mkimg-work-{pid}-")),
            Vec::<String>::new()
        );
    }
    assert_eq!(
        entries_with_prefix(case.dir.path(), ".out.staging-"),
        Vec::<String>::new()
    );
    assert_eq!(
        still_alive(procs),
        Vec::<Proc>::new(),
        "children survived mkimg"
    );
}

/// Pause at `stage`, deliver `sig`, check the outcome.
fn interrupt_at(stage: &str, sig: Signal, name: &str, expect_child: bool) {
    interrupt_in(false, stage, sig, name, expect_child);
}

fn interrupt_in(default_root: bool, stage: &str, sig: Signal, name: &str, expect_child: bool) {
    let Some(case) = case_with_output(default_root) else {
        return;
    };
    interrupt_case(case, stage, sig, name, expect_child);
}

fn interrupt_case(case: Case, stage: &str, sig: Signal, name: &str, expect_child: bool) {
    let before = snapshot(&case.out());
    let paused = case.paused(stage);
    let pid = paused.pid();
    let procs = descendants(pid);
    if expect_child {
        let child = paused.child_pid.expect("program stage names its child");
        assert!(
            procs.iter().any(|p| p.pid == child && p.state != 'Z'),
            "{stage} is running: {procs:?}"
        );
    }
    let made = footprint(&case, pid);
    if let Some(child) = paused.child_pid {
        // Stopped, it cannot finish on its own: mkimg must kill it.
        signal(child, Signal::STOP);
    }
    let started = Instant::now();
    signal(pid, sig);
    let (status, err) = paused.finish();
    let took = started.elapsed();
    eprintln!(
        "REPORT {stage} {name}: before signal {made}, children {:?}; exit {:?} after {took:?}; \
         after: {}",
        procs.iter().map(|p| &p.comm).collect::<Vec<_>>(),
        status.code(),
        footprint(&case, pid)
    );
    assert_eq!(
        status.code(),
        Some(128 + sig.as_raw()),
        "stderr after the pause:\n{err}"
    );
    assert!(
        err.contains(&format!("mkimg: interrupted by {name}: stopped")),
        "{err}"
    );
    assert!(err.contains("nothing published"), "{err}");
    assert_eq!(snapshot(&case.out()), before, "earlier output changed");
    assert_left_nothing(&case, pid, &procs);
}

#[test]
fn sigint_in_the_rootfs_pass() {
    interrupt_at("rootfs-pass", Signal::INT, "SIGINT", false);
}

#[test]
fn sigterm_while_mke2fs_runs_with_the_work_dir_in_dev_shm() {
    // The first mke2fs is `mke2fs -V`, the version probe. The work dir goes
    // to /dev/shm when it has room (the RAM the issue saw leak).
    interrupt_in(true, "mke2fs#2", Signal::TERM, "SIGTERM", true);
}

#[test]
fn sighup_while_e2fsck_runs() {
    let Some(case) = case_with_output(false) else {
        return;
    };
    // e2fsck runs only for a directory of more than one block.
    fs::write(&case.rootfs, crate::lifecycle::rootfs_tar_with_big_dir()).unwrap();
    interrupt_case(case, "e2fsck", Signal::HUP, "SIGHUP", true);
}

#[test]
fn sigterm_while_writing_the_qcow2() {
    interrupt_at("disk-write", Signal::TERM, "SIGTERM", false);
}

#[test]
fn sigint_just_before_publish() {
    interrupt_at("publish", Signal::INT, "SIGINT", false);
}

#[test]
fn sigint_inside_a_large_member_stops_mid_member() {
    if !build_tools_available() {
        return;
    }
    let case = Case::new();
    // 16 MiB of data in the very first member.
    let big: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let tar = crate::lifecycle::rootfs_tar_led_by(Some(("big.bin", &big)), 0);
    fs::write(&case.rootfs, tar).unwrap();
    let mut cmd = case.command(&case.out());
    cmd.arg("--keep-workdir")
        .env("MKIMG_TEST_HOOKS", "1")
        .env("MKIMG_TEST_PAUSE_AT", "member-data");
    let paused = crate::lifecycle::Paused::spawn(cmd, "member-data");
    let pid = paused.pid();
    signal(pid, Signal::INT);
    let (status, err) = paused.finish();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("mkimg: interrupted by SIGINT: stopped"),
        "{err}"
    );
    assert!(!case.out().exists(), "nothing published");
    // Kept on purpose, so what the pass had written can be looked at: the
    // root partition's tar stopped inside big.bin, not after it.
    let kept = entries_with_prefix(&case.work_root(), &format!("mkimg-work-{pid}-"));
    assert_eq!(kept.len(), 1, "{err}");
    let tar = case.work_root().join(&kept[0]).join("rootfs.tar");
    let len = fs::metadata(&tar).map(|m| m.len()).unwrap_or(0);
    eprintln!("REPORT SIGINT inside a 16 MiB member: rootfs.tar holds {len} bytes");
    assert!(
        len < 8 << 20,
        "the whole member was copied first: {len} bytes"
    );
}

/// Wait (bounded) until none of `procs` is alive: a SIGKILLed parent's
/// children get their death signal as it exits, and die when next scheduled.
fn wait_all_dead(procs: &[Proc]) -> Vec<Proc> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alive = still_alive(procs);
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::yield_now();
    }
}

/// SIGKILL at `stage`; then a second run must sweep the leftovers.
fn sigkill_then_sweep(stage: &str, expect_staging: bool) {
    let Some(case) = case_with_output(false) else {
        return;
    };
    let before = snapshot(&case.out());
    let paused = case.paused(stage);
    let pid = paused.pid();
    let procs = descendants(pid);
    if let Some(child) = paused.child_pid {
        // Stopped, it cannot finish on its own: only the parent-death
        // signal (SIGKILL reaches stopped processes) can end it.
        signal(child, Signal::STOP);
    }
    signal(pid, Signal::KILL);
    let (status, _) = paused.finish();
    assert_eq!(status.code(), None, "killed");
    let survivors = wait_all_dead(&procs);
    for p in &survivors {
        signal(p.pid, Signal::KILL);
    }
    assert_eq!(survivors, Vec::<Proc>::new(), "children outlived SIGKILL");
    let work = entries_with_prefix(&case.work_root(), &format!("mkimg-work-{pid}-"));
    let staging = entries_with_prefix(case.dir.path(), &format!(".out.staging-{pid}"));
    eprintln!("REPORT SIGKILL at {stage}: left {}", footprint(&case, pid));
    assert_eq!(work.len(), 1, "SIGKILL leaves the work dir: {work:?}");
    assert_eq!(staging.len(), usize::from(expect_staging), "{staging:?}");
    assert_eq!(snapshot(&case.out()), before, "earlier output changed");

    let started = Instant::now();
    let (status, err) = case.build(&case.out());
    assert!(status.success(), "{err}");
    eprintln!(
        "REPORT second run after SIGKILL at {stage}: {:?}",
        started.elapsed()
    );
    for gone in work.iter().map(|w| case.work_root().join(w)) {
        assert!(
            err.contains(&format!("removed {}", gone.display())),
            "{err}"
        );
    }
    for gone in staging.iter().map(|s| case.dir.path().join(s)) {
        assert!(
            err.contains(&format!("removed {}", gone.display())),
            "{err}"
        );
    }
    assert_left_nothing(&case, pid, &procs);
}

#[test]
fn sigkill_while_mke2fs_runs_kills_it_and_the_next_run_sweeps() {
    sigkill_then_sweep("mke2fs#2", false);
}

#[test]
fn sigkill_before_publish_leaves_what_the_next_run_sweeps() {
    sigkill_then_sweep("publish", true);
}

fn lock(dir: &Path) -> OwnedFd {
    use rustix::fs::{flock, open, FlockOperation, Mode, OFlags};
    let fd = open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    flock(&fd, FlockOperation::NonBlockingLockExclusive).unwrap();
    fd
}

#[test]
fn sweep_spares_held_kept_and_foreign_directories() {
    if !build_tools_available() {
        return;
    }
    let case = Case::new();
    let root = case.work_root();
    // Pid 1 is alive, so "pid not running" would not catch this one: only
    // the free lock proves it stale.
    let stale = root.join("mkimg-work-1-abc123");
    fs::create_dir_all(stale.join("deep")).unwrap();
    fs::write(stale.join("deep/root.tar"), b"x").unwrap();
    let stale_staging = case.dir.path().join(".out.staging-1");
    fs::create_dir(&stale_staging).unwrap();
    // Held by a live process (this test): must stay.
    let held = root.join("mkimg-work-1-held00");
    fs::create_dir(&held).unwrap();
    let _lock = lock(&held);
    let held_staging = case.dir.path().join(".out.staging-2");
    fs::create_dir(&held_staging).unwrap();
    let _lock2 = lock(&held_staging);
    // Not mkimg's naming, or not a directory: must stay.
    let foreign = [
        root.join("mkimg-work-notapid"),
        root.join("mkimg-work-"),
        case.dir.path().join(".out.staging-x1"),
        case.dir.path().join(".other.staging-1"),
    ];
    for dir in &foreign {
        fs::create_dir(dir).unwrap();
    }
    fs::write(root.join("mkimg-work-3-file"), b"").unwrap();

    // A build with --keep-workdir: its work dir is marked and stays.
    let out = case
        .command(&case.out())
        .arg("--keep-workdir")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let kept = entries_with_prefix(&root, &format!("mkimg-work-{}-", out_pid(&err)));
    assert_eq!(kept.len(), 1, "{err}");
    assert!(root.join(&kept[0]).join(".mkimg-keep").is_file());
    assert!(
        err.contains(&format!("removed {}", stale.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("removed {}", stale_staging.display())),
        "{err}"
    );
    assert!(!stale.exists() && !stale_staging.exists());

    // A second build sweeps again: the kept, held and foreign ones stay.
    let (status, err) = case.build(&case.out());
    assert!(status.success(), "{err}");
    // (Other runs' stale directories in /tmp or /dev/shm may be removed.)
    assert!(
        !err.contains(&format!("removed {}", case.dir.path().display())),
        "{err}"
    );
    assert!(root.join(&kept[0]).is_dir(), "kept work dir swept");
    assert!(held.is_dir() && held_staging.is_dir(), "held dir swept");
    for dir in &foreign {
        assert!(dir.is_dir(), "{} swept", dir.display());
    }
    assert!(root.join("mkimg-work-3-file").is_file());
}

/// The pid in "work directory kept at …/mkimg-work-PID-…".
fn out_pid(err: &str) -> String {
    let line = err
        .lines()
        .find(|l| l.contains("work directory kept at"))
        .unwrap_or_else(|| panic!("{err}"));
    let name = line.rsplit('/').next().unwrap();
    name.trim_start_matches("mkimg-work-")
        .split('-')
        .next()
        .unwrap()
        .to_string()
}

/// `--verify-repro`: SIGTERM while the second build (a child mkimg) runs.
/// The child is stopped first, so it cannot finish on its own: the parent
/// must kill it, remove the second build's directory (output, TMPDIR, raw
/// copies) and its own, and leave the first build published.
#[test]
fn sigterm_during_the_second_build_of_verify_repro() {
    if !build_tools_available() {
        return;
    }
    let case = Case::new();
    let mut cmd = case.command(&case.out());
    cmd.arg("--verify-repro")
        .env("MKIMG_TEST_HOOKS", "1")
        .env("MKIMG_TEST_PAUSE_AT", "mkimg");
    let paused = crate::lifecycle::Paused::spawn(cmd, "mkimg");
    let pid = paused.pid();
    let child = paused.child_pid.expect("the second build's pid");
    let procs = descendants(pid);
    assert!(
        procs.iter().any(|p| p.pid == child && p.state != 'Z'),
        "the second build is running: {procs:?}"
    );
    let made = entries_with_prefix(&case.work_root(), "mkimg-work-");
    assert!(!made.is_empty(), "the second build's directory exists");
    signal(child, Signal::STOP);
    signal(pid, Signal::TERM);
    let (status, err) = paused.finish();
    assert_eq!(status.code(), Some(128 + Signal::TERM.as_raw()), "{err}");
    assert!(
        err.contains("mkimg: interrupted by SIGTERM: stopped")
            && err.contains("the first build stays"),
        "{err}"
    );
    assert!(
        case.out().join("qemu-riscv64.qcow2").is_file(),
        "first build published"
    );
    assert_eq!(
        entries_with_prefix(&case.work_root(), "mkimg-work-"),
        Vec::<String>::new(),
        "{made:?} left behind"
    );
    assert_left_nothing(&case, pid, &procs);
}
