//! Helpers for the output-directory and signal cases: a small crafted
//! riscv64 rootfs tarball, `mkimg build` of the stock qemu-riscv64 board
//! with it (optionally paused at a stage by the test hook documented in
//! `host::interrupt::pause_at`), snapshots of a directory, and the
//! processes and leftovers a build may leave.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::run::mkimg_command;
use crate::support::tarball::Tarball;
use crate::support::tools::{have_file, have_tools};

/// The tools a default (template) build of qemu-riscv64 runs.
pub fn build_tools_available() -> bool {
    let firmware = Path::new("/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd");
    have_file(firmware, "qemu-efi-riscv64") && have_tools(&["mke2fs", "e2fsck", "debugfs"])
}

/// A minimal riscv64-looking rootfs: an ELF /usr/bin/dash, a kernel and
/// initrd in /boot, Debian's grub EFI path, /boot/efi, and `filler` files
/// of 64 KiB so the rootfs pass and the disk writer have several steps.
pub fn rootfs_tar(filler: usize) -> Vec<u8> {
    rootfs_tar_led_by(None, filler)
}

/// [`rootfs_tar`] plus a directory of 300 entries (more than one ext4
/// block), so the build runs the `e2fsck -D` index pass.
pub fn rootfs_tar_with_big_dir() -> Vec<u8> {
    let mut tar = Tarball::new();
    tar.add_minimal("dash-riscv64.elfhdr")
        .dir("srv")
        .dir("usr/share");
    for i in 0..300 {
        tar.file(&format!("usr/share/entry-with-a-longish-name-{i:04}"), b"");
    }
    tar.finish()
}

/// [`rootfs_tar`] whose first member is the file `first` (path, data).
pub fn rootfs_tar_led_by(first: Option<(&str, &[u8])>, filler: usize) -> Vec<u8> {
    let mut tar = Tarball::new();
    if let Some((path, data)) = first {
        tar.file(path, data);
    }
    tar.add_minimal("dash-riscv64.elfhdr").dir("srv");
    for i in 0..filler {
        let data: Vec<u8> = (0..65536u32)
            .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i as u32) >> 11) as u8)
            .collect();
        tar.file(&format!("srv/filler-{i}"), &data);
    }
    tar.finish()
}

/// One test's directory: the tarball, the output `out`, a private work root.
pub struct Case {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    /// Leave MKIMG_WORKDIR unset: the work dir goes where mkimg picks
    /// (/dev/shm when it has room).
    pub default_work_root: bool,
}

impl Case {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs.tar");
        fs::write(&rootfs, rootfs_tar(24)).unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        Case {
            dir,
            rootfs,
            default_work_root: false,
        }
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The work root this case's builds use (`MKIMG_WORKDIR`).
    pub fn work_root(&self) -> PathBuf {
        if self.default_work_root {
            PathBuf::from("/dev/shm")
        } else {
            self.dir.path().join("work")
        }
    }

    pub fn command(&self, out: &Path) -> Command {
        let mut cmd = mkimg_command(["build", "--board", "qemu-riscv64", "--format", "qcow2"]);
        cmd.arg("--rootfs")
            .arg(&self.rootfs)
            .arg("-o")
            .arg(out)
            .env_remove("MKIMG_TEST_PAUSE_AT")
            .env("MKIMG_WORKDIR", self.work_root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if self.default_work_root {
            cmd.env_remove("MKIMG_WORKDIR");
        }
        cmd
    }

    /// Run a build to its end: (status, stderr).
    pub fn build(&self, out: &Path) -> (ExitStatus, String) {
        let output = self.command(out).output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Start a build that stops at `stage` (the test hook) and wait until it
    /// got there.
    pub fn paused(&self, stage: &str) -> Paused {
        let mut cmd = self.command(&self.out());
        cmd.env("MKIMG_TEST_HOOKS", "1")
            .env("MKIMG_TEST_PAUSE_AT", stage);
        Paused::spawn(cmd, stage)
    }
}

/// A build stopped at a stage. Dropped unfinished (a failed assertion), it
/// kills the build, which would otherwise wait for a signal for ever.
pub struct Paused {
    child: Option<Child>,
    stderr: Option<BufReader<ChildStderr>>,
    /// The spawned program the build is paused on, for program stages.
    pub child_pid: Option<u32>,
}

impl Paused {
    /// Start `cmd` (a build with the pause variables set) and wait until it
    /// reports `stage`.
    pub fn spawn(mut cmd: Command, stage: &str) -> Paused {
        // Waited for in `Paused::finish`, or killed and reaped by its Drop.
        #[allow(clippy::zombie_processes)]
        let mut child = cmd.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = stderr.read_line(&mut line).unwrap();
            seen.push_str(&line);
            if n == 0 {
                let status = child.wait().unwrap();
                panic!("mkimg never reached stage {stage} ({status}):\n{seen}");
            }
            if let Some(rest) = line.trim_end().strip_prefix("mkimg: test-pause: ") {
                assert!(rest.starts_with(stage), "{line}");
                let child_pid = rest
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("child="))
                    .map(|p| p.parse().unwrap());
                return Paused {
                    child: Some(child),
                    stderr: Some(stderr),
                    child_pid,
                };
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Wait for the end; (status, the rest of stderr). A build that has not
    /// ended within a minute (a child it waits for that nobody killed) is
    /// killed and the test fails.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let mut stderr = self.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut rest = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = std::io::Read::read_to_string(stderr, &mut rest);
            }
            rest
        });
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                if let Some(pid) = self.child_pid {
                    let _ = rustix::process::kill_process(
                        rustix::process::Pid::from_raw(pid as i32).unwrap(),
                        rustix::process::Signal::KILL,
                    );
                }
                panic!("mkimg did not end within a minute of the signal");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        (status, reader.join().unwrap())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// A process as /proc shows it: (pid, start time) is unique for the boot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
    pub comm: String,
    pub state: char,
}

fn read_proc(pid: u32) -> Option<(Proc, u32, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let comm = stat[stat.find('(')? + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After the comm: state(0) ppid(1) pgrp(2) … starttime(19).
    let proc = Proc {
        pid,
        start: fields.get(19)?.parse().ok()?,
        comm,
        state: fields.first()?.chars().next()?,
    };
    Some((
        proc,
        fields.get(1)?.parse().ok()?,
        fields.get(2)?.parse().ok()?,
    ))
}

fn all_procs() -> Vec<(Proc, u32, u32)> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_proc)
        .collect()
}

/// Every process below `root` (by parent, transitively) or in a process
/// group led by one of them.
pub fn descendants(root: u32) -> Vec<Proc> {
    let procs = all_procs();
    let mut found: Vec<u32> = vec![root];
    let mut out = Vec::new();
    let mut grew = true;
    while grew {
        grew = false;
        for (p, ppid, pgrp) in &procs {
            if !found.contains(&p.pid) && (found.contains(ppid) || found.contains(pgrp)) {
                found.push(p.pid);
                out.push(p.clone());
                grew = true;
            }
        }
    }
    out
}

/// Of `procs`, those still alive (same pid and start time, not a zombie).
pub fn still_alive(procs: &[Proc]) -> Vec<Proc> {
    procs
        .iter()
        .filter_map(|p| read_proc(p.pid).map(|(now, _, _)| (p, now)))
        .filter(|(p, now)| now.start == p.start && now.state != 'Z')
        .map(|(_, now)| now)
        .collect()
}

/// Entries of `dir` whose names start with `prefix`.
pub fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every file under `dir` with its bytes (for byte-for-byte comparison).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.is_dir() {
            for (sub, bytes) in snapshot(&entry.path()) {
                files.insert(format!("{name}/{sub}"), bytes);
            }
        } else {
            files.insert(name, fs::read(entry.path()).unwrap());
        }
    }
    files
}

/// Bytes under `dir`, following nothing.
pub fn du(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                du(&e.path())
            } else {
                std::os::unix::fs::MetadataExt::blocks(&meta) * 512
            }
        })
        .sum()
}
