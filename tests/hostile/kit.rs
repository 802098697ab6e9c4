//! Shared by the hostile tests (their crafted tarballs come from
//! `support::tarball`): test boards of chosen sizes, and a runner that
//! measures the mkimg process: its peak RSS (`/usr/bin/time -f %M`, i.e. wait4's ru_maxrss) and the bytes it and
//! its children wrote (`wchar` of /proc/<pid>/io of the `time` process,
//! read after it exited but before it is reaped: it then holds the totals
//! of every descendant it reaped).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};

/// The stock qemu-riscv64 board with another disk and ESP size and without
/// firmware (so the build needs nothing from the host), written to
/// `dir/board/board.toml`. `edit` may change the text further.
pub fn board(dir: &Path, disk: &str, esp: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-riscv64/board.toml");
    let text = fs::read_to_string(src)
        .unwrap()
        .replace("size = \"1G\"", &format!("size = \"{esp}\""))
        .replace("size = \"10G\"", &format!("size = \"{disk}\""));
    let text =
        text.split("[firmware]").next().unwrap().to_string() + "\n[qemu]\nmachine = \"virt\"\n";
    let board = dir.join("board");
    fs::create_dir_all(&board).unwrap();
    fs::write(board.join("board.toml"), edit(text)).unwrap();
    board.join("board.toml")
}

/// What one measured run of mkimg did.
pub struct Run {
    pub status: ExitStatus,
    pub stderr: String,
    /// Peak RSS of mkimg (and any child), KiB.
    pub max_rss_kib: u64,
    /// Bytes written by mkimg and its children (write/pwrite calls).
    pub wchar: u64,
}

/// Runs mkimg under `/usr/bin/time` with `MKIMG_WORKDIR=workdir` and the
/// given standard input.
pub fn run_measured(args: &[&str], workdir: &Path, stdin: Option<File>) -> Run {
    let rss_file = workdir.with_extension("rss");
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_mkimg"))
        .args(args)
        .env("MKIMG_WORKDIR", workdir)
        .env_remove("MKIMG_BOARDS")
        .env("HOME", "/nonexistent")
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/time mkimg");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    )
    .unwrap();
    let io = fs::read_to_string(format!("/proc/{}/io", child.id())).unwrap();
    let wchar = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar in /proc/PID/io");
    let status = child.wait().unwrap();
    let rss = fs::read_to_string(&rss_file).unwrap();
    let max_rss_kib = rss
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no RSS in {rss:?}"));
    Run {
        status,
        stderr,
        max_rss_kib,
        wchar,
    }
}

/// No `mkimg-work-*` directory is left in `workdir`.
pub fn assert_no_workdir_left(workdir: &Path) {
    let left: Vec<String> = fs::read_dir(workdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mkimg-work-"))
        .collect();
    assert!(left.is_empty(), "work directories left: {left:?}");
}

/// A temp dir with `work/` for MKIMG_WORKDIR and `out` for the output.
pub struct Case {
    pub dir: tempfile::TempDir,
}

impl Case {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        Case { dir }
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    /// `mkimg build --board BOARD --rootfs ROOTFS --format raw -o out`, measured.
    pub fn build(&self, board: &str, rootfs: &str, stdin: Option<File>) -> Run {
        let out = self.out();
        run_measured(
            &[
                "build",
                "--board",
                board,
                "--rootfs",
                rootfs,
                "--format",
                "raw",
                "-o",
                out.to_str().unwrap(),
            ],
            &self.work(),
            stdin,
        )
    }
}
