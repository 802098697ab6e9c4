//! binfmt_misc: can this host run foreign-architecture binaries inside a
//! chroot, and if not, register QEMU user-mode emulation so that it can.
//!
//! Owns: listing the kernel's entries (`<dir>/<name>`), reading Debian's
//! `/usr/lib/binfmt.d/qemu-<arch>.conf`, picking the QEMU interpreter,
//! mounting binfmt_misc, register and unregister. Beside it: `format.rs`
//! (the pure text formats and QEMU's built-in magic table), `status.rs`
//! (`mkimg binfmt status` and the preflight check a build runs before its
//! first foreign chroot) and [`persist`] (the `/etc/binfmt.d` file that
//! registers an entry again at boot).
//!
//! Why the F flag matters: with `F` the kernel opens the interpreter when the
//! entry is registered, so it need not exist inside the chroot; it must then
//! also be static (no `PT_INTERP`), or its own dynamic loader would be looked
//! up inside the foreign root.
//!
//! Must not: touch an entry that does not run this architecture's ELF
//! binaries, or spawn processes. The binfmt_misc directory is a parameter
//! (default [`DEFAULT_DIR`]) so tests can point every read at a fake one;
//! writes go through [`BinfmtFs`], whose one production implementation
//! [`KernelBinfmt`] writes the kernel's control files.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::elf::{self, ElfError};

mod format;
pub mod persist;
mod status;

pub use format::{
    builtin_magic, elf_header_prefix, parse_entry, BinfmtEntry, FormatError, RegisterLine,
};
pub use status::{preflight, status, status_in, BinfmtArchStatus, BinfmtStatus, PreflightError};

/// Where the kernel's binfmt_misc filesystem is normally mounted.
pub const DEFAULT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Whether `arch` programs can run in a chroot on this host: natively, or
/// through a usable entry in the real binfmt_misc ([`preflight`]). What
/// every command that runs target code checks first.
pub fn preflight_host(arch: Arch) -> Result<(), PreflightError> {
    if std::env::consts::ARCH.parse().ok() == Some(arch) {
        return Ok(());
    }
    preflight(Path::new(DEFAULT_DIR), arch)
}
/// Where Debian's qemu-user-binfmt / qemu-user-static ship their registrations.
pub const DEBIAN_CONF_DIR: &str = "/usr/lib/binfmt.d";
/// Where Debian installs the argv0-preserving interpreter names.
const DEBIAN_INTERPRETER_DIR: &str = "/usr/libexec/qemu-binfmt";
/// Said in every message that asks for QEMU to be installed.
const INSTALL_QEMU: &str = "install qemu-user-static (on Debian bookworm from bookworm-backports: \
     `sudo apt-get install -t bookworm-backports qemu-user-static`)";

/// What `register` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A usable entry with the same interpreter was already there.
    AlreadyRegistered { entry: String },
    /// `removed` lists the entries `--force` replaced.
    Registered {
        entry: String,
        line: String,
        removed: Vec<String>,
    },
}

/// Errors of status, register and unregister.
#[derive(Debug, thiserror::Error)]
pub enum BinfmtError {
    #[error(
        "binfmt_misc is not mounted at {}: run `sudo mount -t binfmt_misc binfmt_misc {}`",
        dir.display(), dir.display()
    )]
    NotMounted { dir: PathBuf },
    #[error("{action} needs root: run `{command}`")]
    NeedsRoot { action: String, command: String },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: line {line}", path.display())]
    Parse {
        path: PathBuf,
        /// 0 for a kernel entry file (the whole file is one entry).
        line: usize,
        #[source]
        source: FormatError,
    },
    #[error("no QEMU user-mode interpreter for {arch} (tried {tried}): {INSTALL_QEMU}")]
    InterpreterNotFound { arch: Arch, tried: String },
    #[error(
        "interpreter {} is dynamically linked: inside a foreign chroot its loader cannot be \
         found; use the static one: {INSTALL_QEMU}", path.display()
    )]
    InterpreterNotStatic { path: PathBuf },
    #[error("reading interpreter {}", path.display())]
    InterpreterUnreadable {
        path: PathBuf,
        #[source]
        source: ElfError,
    },
    #[error("interpreter path {path:?} must be absolute and free of ':' and newlines")]
    BadInterpreterPath { path: PathBuf },
    #[error(
        "binfmt_misc already runs {arch} binaries with {existing}; run \
         `sudo mkimg binfmt register --force {arch}` to replace it"
    )]
    Conflict { arch: Arch, existing: String },
    #[error("writing {value:?} to {}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("registered {name} but {} shows {shown:?}", dir.display())]
    Verify {
        name: String,
        dir: PathBuf,
        shown: String,
    },
}

/// The two writes binfmt_misc accepts. [`KernelBinfmt`] is the production
/// implementation; tests provide one that emulates the kernel in a temp dir.
pub trait BinfmtFs {
    /// The directory holding `register`, `status` and one file per entry.
    fn dir(&self) -> &Path;
    /// Writes one registration line to `<dir>/register`.
    fn write_register(&self, line: &str) -> io::Result<()>;
    /// Writes `-1` (remove), `0` (disable) or `1` (enable) to `<dir>/<name>`.
    fn write_entry(&self, name: &str, value: &str) -> io::Result<()>;
}

/// The kernel's binfmt_misc filesystem mounted at `dir`.
#[derive(Debug, Clone)]
pub struct KernelBinfmt {
    dir: PathBuf,
}

impl KernelBinfmt {
    pub fn new(dir: impl Into<PathBuf>) -> KernelBinfmt {
        KernelBinfmt { dir: dir.into() }
    }
}

impl Default for KernelBinfmt {
    fn default() -> KernelBinfmt {
        KernelBinfmt::new(DEFAULT_DIR)
    }
}

/// Writes `value` with one write(2): the kernel parses each write on its own.
/// Never creates the file (an unmounted dir must stay empty).
fn write_control_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    let written = file.write(value.as_bytes())?;
    if written != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", value.len()),
        ));
    }
    Ok(())
}

impl BinfmtFs for KernelBinfmt {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_register(&self, line: &str) -> io::Result<()> {
        write_control_file(&self.dir.join("register"), line)
    }

    fn write_entry(&self, name: &str, value: &str) -> io::Result<()> {
        write_control_file(&self.dir.join(name), value)
    }
}

/// The registration for `arch` in a binfmt.d file's text (`#` and `;` start comments).
pub fn parse_binfmt_conf(
    text: &str,
    arch: Arch,
    path: &Path,
) -> Result<Option<RegisterLine>, BinfmtError> {
    let name = entry_name(arch);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let parsed = RegisterLine::parse(line).map_err(|source| BinfmtError::Parse {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?;
        if parsed.name == name {
            return Ok(Some(parsed));
        }
    }
    Ok(None)
}

/// The entry name mkimg (and Debian) registers for `arch`: `qemu-riscv64`.
pub fn entry_name(arch: Arch) -> String {
    format!("qemu-{}", arch.qemu_name())
}

/// Whether binfmt_misc is mounted at `dir`.
pub fn is_mounted(dir: &Path) -> bool {
    dir.join("register").exists() && dir.join("status").exists()
}

/// Every entry in `dir`, sorted by name.
pub fn list_entries(dir: &Path) -> Result<Vec<(String, BinfmtEntry)>, BinfmtError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| BinfmtError::Read { path, source }
    };
    let mut entries = Vec::new();
    for item in fs::read_dir(dir).map_err(read_err(dir))? {
        let item = item.map_err(read_err(dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name == "register" || name == "status" {
            continue;
        }
        let path = item.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            // Unregistered between read_dir and here.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(BinfmtError::Read { path, source }),
        };
        let entry = parse_entry(&text).map_err(|source| BinfmtError::Parse {
            path,
            line: 0,
            source,
        })?;
        entries.push((name, entry));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// Whether the file at `path` is an ELF file without `PT_INTERP`.
fn is_static(path: &Path) -> Result<bool, ElfError> {
    let mut file = File::open(path).map_err(ElfError::ReadHeader)?;
    elf::has_program_interpreter(&mut file).map(|interp| !interp)
}

/// Mounts binfmt_misc at `dir` if it is the real location and not mounted yet.
/// A fake (test) directory is never mounted over: that is an error instead.
pub fn ensure_mounted(dir: &Path) -> Result<(), BinfmtError> {
    if is_mounted(dir) {
        return Ok(());
    }
    if dir != Path::new(DEFAULT_DIR) {
        return Err(BinfmtError::NotMounted {
            dir: dir.to_owned(),
        });
    }
    // Why a syscall and not `mount` through the command runner: there is no
    // output to capture, and binfmt_misc stays mounted system-wide afterwards
    // (as systemd's proc-sys-fs-binfmt_misc.mount would leave it), so there
    // is no guard to tear it down either.
    rustix::mount::mount(
        "binfmt_misc",
        dir,
        "binfmt_misc",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|errno| {
        let source = io::Error::from(errno);
        if source.kind() == io::ErrorKind::PermissionDenied {
            BinfmtError::NeedsRoot {
                action: "mounting binfmt_misc".to_owned(),
                command: format!("sudo mount -t binfmt_misc binfmt_misc {DEFAULT_DIR}"),
            }
        } else {
            BinfmtError::Write {
                path: dir.to_owned(),
                value: "mount -t binfmt_misc".to_owned(),
                source,
            }
        }
    })
}

/// Turns a failed control-file write into "needs root: run `sudo …`" when it is one.
fn write_error(
    fs: &dyn BinfmtFs,
    file: &str,
    value: &str,
    command: &str,
) -> impl FnOnce(io::Error) -> BinfmtError {
    let path = fs.dir().join(file);
    let (value, command) = (value.to_owned(), command.to_owned());
    move |source| {
        if source.kind() == io::ErrorKind::PermissionDenied {
            BinfmtError::NeedsRoot {
                action: format!("writing {}", path.display()),
                command,
            }
        } else {
            BinfmtError::Write {
                path,
                value,
                source,
            }
        }
    }
}

/// The interpreter to register: `explicit`, else the binfmt.d file's, else
/// Debian's `/usr/libexec/qemu-binfmt/<x>-binfmt-P`, else `qemu-<x>-static` on PATH.
fn resolve_interpreter(
    arch: Arch,
    explicit: Option<&Path>,
    conf: Option<&RegisterLine>,
) -> Result<PathBuf, BinfmtError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    match explicit {
        Some(path) => candidates.push(path.to_owned()),
        None => {
            candidates.extend(conf.map(|c| c.interpreter.clone()));
            candidates.push(
                Path::new(DEBIAN_INTERPRETER_DIR).join(format!("{}-binfmt-P", arch.qemu_name())),
            );
            let exe = format!("qemu-{}-static", arch.qemu_name());
            let path_var = std::env::var_os("PATH").unwrap_or_default();
            candidates.extend(std::env::split_paths(&path_var).map(|d| d.join(&exe)));
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| BinfmtError::InterpreterNotFound {
            arch,
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// P only for Debian's `*-binfmt-P` names (QEMU then expects the preserved
/// argv[0]); O as Debian does; C if the binfmt.d file asks for it; always F.
fn register_flags(interpreter: &Path, conf: Option<&RegisterLine>) -> String {
    let preserve_argv0 = interpreter
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("-binfmt-P"));
    let credentials = conf.is_some_and(|c| c.flags.contains('C'));
    [
        (preserve_argv0, 'P'),
        (true, 'O'),
        (credentials, 'C'),
        (true, 'F'),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| f)
    .collect()
}

fn describe_entry(name: &str, entry: &BinfmtEntry) -> String {
    format!(
        "entry {name} (interpreter {}, flags {}{})",
        entry.interpreter.display(),
        if entry.flags.is_empty() {
            "none"
        } else {
            &entry.flags
        },
        if entry.enabled { "" } else { ", disabled" }
    )
}

/// The line `register` would write for `arch`: magic, mask and offset from
/// `<conf_dir>/qemu-<x>.conf` (else the built-in table), the interpreter
/// (checked to be static), and the flags. Registers nothing.
pub fn plan_registration(
    arch: Arch,
    interpreter: Option<&Path>,
    conf_dir: &Path,
) -> Result<RegisterLine, BinfmtError> {
    let conf_path = conf_dir.join(format!("qemu-{}.conf", arch.qemu_name()));
    let conf = match fs::read_to_string(&conf_path) {
        Ok(text) => parse_binfmt_conf(&text, arch, &conf_path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(BinfmtError::Read {
                path: conf_path,
                source,
            })
        }
    };
    let interp = resolve_interpreter(arch, interpreter, conf.as_ref())?;
    let text = interp.to_string_lossy();
    if !interp.is_absolute() || text.contains(':') || text.contains('\n') {
        return Err(BinfmtError::BadInterpreterPath { path: interp });
    }
    match is_static(&interp) {
        Ok(true) => {}
        Ok(false) => return Err(BinfmtError::InterpreterNotStatic { path: interp }),
        Err(source) => {
            return Err(BinfmtError::InterpreterUnreadable {
                path: interp,
                source,
            })
        }
    }
    let flags = register_flags(&interp, conf.as_ref());
    let (magic, mask, offset) = match conf {
        Some(c) => (c.magic, c.mask, c.offset),
        None => {
            let (magic, mask) = builtin_magic(arch);
            (magic, Some(mask), 0)
        }
    };
    Ok(RegisterLine {
        name: entry_name(arch),
        offset,
        magic,
        mask,
        interpreter: interp,
        flags,
    })
}

/// Registers QEMU for `arch` with the F flag. A usable entry with the same
/// interpreter is left alone; any other entry for `arch` is an error unless
/// `force`, which removes it first. Entries of other architectures are never touched.
pub fn register(
    fs: &dyn BinfmtFs,
    arch: Arch,
    interpreter: Option<&Path>,
    force: bool,
    conf_dir: &Path,
) -> Result<RegisterOutcome, BinfmtError> {
    let dir = fs.dir();
    let name = entry_name(arch);
    let command = format!(
        "sudo mkimg binfmt register {}{}{arch}",
        if force { "--force " } else { "" },
        interpreter
            .map(|p| format!("--interpreter {} ", p.display()))
            .unwrap_or_default()
    );
    ensure_mounted(dir)?;
    let line = plan_registration(arch, interpreter, conf_dir)?;
    let entries = list_entries(dir)?;
    let conflicts: Vec<&(String, BinfmtEntry)> = entries
        .iter()
        .filter(|(n, e)| *n == name || e.matches_arch(arch))
        .collect();
    let same = |e: &BinfmtEntry| e.enabled && e.has_flag('F') && e.interpreter == line.interpreter;
    if !conflicts.is_empty() && conflicts.iter().all(|(_, e)| same(e)) {
        let entry = conflicts
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or(&conflicts[0])
            .0
            .clone();
        return Ok(RegisterOutcome::AlreadyRegistered { entry });
    }
    if !conflicts.is_empty() && !force {
        let existing = conflicts
            .iter()
            .map(|(n, e)| describe_entry(n, e))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(BinfmtError::Conflict { arch, existing });
    }
    let mut removed = Vec::new();
    for (old, _) in conflicts {
        fs.write_entry(old, "-1")
            .map_err(write_error(fs, old, "-1", &command))?;
        removed.push(old.clone());
    }
    let rendered = line.render();
    fs.write_register(&rendered)
        .map_err(write_error(fs, "register", &rendered, &command))?;

    let shown_path = dir.join(&name);
    let shown = fs::read_to_string(&shown_path).map_err(|source| BinfmtError::Read {
        path: shown_path,
        source,
    })?;
    match parse_entry(&shown) {
        Ok(e)
            if e.enabled
                && e.has_flag('F')
                && e.interpreter == line.interpreter
                && e.matches_arch(arch) =>
        {
            Ok(RegisterOutcome::Registered {
                entry: name,
                line: rendered,
                removed,
            })
        }
        _ => Err(BinfmtError::Verify {
            name,
            dir: dir.to_owned(),
            shown,
        }),
    }
}

/// Removes mkimg's (and Debian's) entry `qemu-<arch>`; `false` if there was none.
pub fn unregister(fs: &dyn BinfmtFs, arch: Arch) -> Result<bool, BinfmtError> {
    let dir = fs.dir();
    if !is_mounted(dir) {
        return Err(BinfmtError::NotMounted {
            dir: dir.to_owned(),
        });
    }
    let name = entry_name(arch);
    if !dir.join(&name).exists() {
        return Ok(false);
    }
    let command = format!("sudo mkimg binfmt unregister {arch}");
    fs.write_entry(&name, "-1")
        .map_err(write_error(fs, &name, "-1", &command))?;
    Ok(true)
}

#[cfg(test)]
mod tests;
