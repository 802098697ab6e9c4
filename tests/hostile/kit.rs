//! Shared by the hostile tests: small crafted rootfs tarballs, test boards
//! of chosen sizes, and a runner that measures the mkimg process: its peak
//! RSS (`/usr/bin/time -f %M`, i.e. wait4's ru_maxrss) and the bytes it and
//! its children wrote (`wchar` of /proc/<pid>/io of the `time` process,
//! read after it exited but before it is reaped: it then holds the totals
//! of every descendant it reaped).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};

pub const MIB: u64 = 1 << 20;

pub use super::lifecycle::tool_available;

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(path).unwrap();
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A small riscv64-looking rootfs, member by member.
pub struct Rootfs {
    pub bytes: Vec<u8>,
}

impl Rootfs {
    /// What the stock qemu-riscv64 board needs: an ELF /usr/bin/dash, a
    /// kernel and initrd, Debian's grub EFI binary, /boot/efi.
    pub fn minimal() -> Self {
        let mut r = Rootfs { bytes: Vec::new() };
        for dir in [
            "etc",
            "usr",
            "usr/bin",
            "boot",
            "boot/efi",
            "usr/lib",
            "usr/lib/grub",
            "usr/lib/grub/riscv64-efi",
            "usr/lib/grub/riscv64-efi/monolithic",
        ] {
            r.dir(dir);
        }
        let elf =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elf/dash-riscv64.elfhdr");
        let mut dash = fs::read(elf).unwrap();
        dash.resize(4096, 0);
        r.file("usr/bin/dash", &dash);
        r.file("boot/vmlinux-6.12.1-riscv64", b"kernel");
        r.file("boot/initrd.img-6.12.1-riscv64", b"initrd");
        r.file(
            "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi",
            b"MZ grub",
        );
        r.file("etc/hosts", b"127.0.0.1\tlocalhost\n");
        r
    }

    fn push(&mut self, h: &mut tar::Header, data: &[u8]) {
        h.set_cksum();
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.push(&mut header(path, tar::EntryType::Directory, 0o755, 0), b"");
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.push(
            &mut header(path, tar::EntryType::Regular, 0o644, data.len() as u64),
            data,
        );
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(path, tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(target).unwrap();
        self.push(&mut h, b"");
        self
    }

    /// A GNU sparse member `real` bytes long that stores one 512-byte
    /// chunk of 'x' at offset 0: a 2 GiB file in 1 KiB of tar.
    pub fn sparse(&mut self, path: &str, real: u64) -> &mut Self {
        let mut h = header(path, tar::EntryType::GNUSparse, 0o644, 512);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(0);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size(real);
        self.push(&mut h, &[b'x'; 512]);
        self
    }

    /// A raw header for a path name of any length (GNU long name).
    pub fn long_name_file(&mut self, path: &str) -> &mut Self {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header("placeholder", tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, path, &b"x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        self.bytes.extend_from_slice(&bytes[..bytes.len() - 1024]);
        self
    }

    /// The archive with its end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    /// The member headers so far plus a plain header for `path` of `size`
    /// zero bytes, compressed with zstd as it streams: a zstd bomb.
    pub fn zstd_with_zeros(&self, path: &str, size: u64) -> Vec<u8> {
        use std::io::Write;
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        enc.write_all(&self.bytes).unwrap();
        let mut h = header(path, tar::EntryType::Regular, 0o644, size);
        h.set_cksum();
        enc.write_all(h.as_bytes()).unwrap();
        let zeros = vec![0u8; MIB as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            enc.write_all(&zeros[..n as usize]).unwrap();
            left -= n;
        }
        enc.write_all(&[0u8; 1024]).unwrap();
        enc.finish().unwrap()
    }
}

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
