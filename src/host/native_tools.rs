//! Host-native programs in place of a foreign-architecture rootfs's own, for
//! the generic tools a distro script run in the sandbox starts by the
//! hundred (grub-mkconfig: sed, cat, tr, …, and the shell itself).
//!
//! Why: every program of a riscv64 or aarch64 root is a qemu-user process;
//! grub-mkconfig on Debian trixie riscv64 execs 140-odd of them plus ten
//! `/bin/sh` scripts, 7 s of a 12 s build. The tools below do the same on
//! any machine, so the host's own build of the same program gives the same
//! bytes, natively (docs/performance.md has the numbers).
//!
//! What: for each [`TOOLS`] entry, every file of the root that the
//! sandbox's `PATH` finds for that name (symlinks followed inside the root)
//! is covered by a read-only bind mount of the host's program; the host's
//! dynamic loader and the libraries those programs need (`DT_NEEDED`,
//! transitively) are bound read-only, file by file, at the paths the
//! host's loader looks in: its own `PT_INTERP` path and the host's
//! multiarch directory `/usr/lib/<triplet>`. A foreign Debian root has
//! neither, so they are mount points to make ([`Bind::create`]): in a
//! writable tree directly ([`NativeTools::create_mount_points`]), over a
//! read-only root through a read-only overlay of a small tmpfs holding
//! just those mount points ([`NativeTools::overlay`]).
//!
//! A tool is taken only when both sides are the same program: the same
//! file name once symlinks are followed (`sh` must be `dash` in the root
//! and on the host: Fedora's `sh` is bash), an ELF of the expected
//! architecture, and the implementation's own name inside (`GNU sed`,
//! `GNU grep`, `GNU coreutils`; busybox, toybox or uutils never match).
//! Otherwise that tool stays emulated and the reason is logged.
//!
//! Left out on purpose, though grub-mkconfig runs them: `uname` (it
//! reports the machine: a native one says x86_64, and Debian's 10_linux
//! then looks for `vmlinuz-*` only and misses riscv64's `vmlinux-*`); `id`
//! (NSS, with the rootfs's modules); `gettext` (translates with the
//! rootfs's catalogs and, outside the C locale, its locale data); `sort`
//! (`sort -V` orders kernels and its algorithm changed between coreutils
//! releases); grub's own programs (grub-probe, grub-mkrelpath,
//! grub-script-check: distro builds reading the distro's modules).
//!
//! The precondition that makes the result the same: the C locale
//! (`LC_ALL=C`, which the mkconfig stage sets). A locale would make the
//! host's glibc read the rootfs's locale data, which another glibc release
//! may not read the same way.
//!
//! Refused — every program emulated, the reason in the log — when: the
//! rootfs is the host's architecture (nothing is emulated); the host is not
//! a Debian-multiarch x86_64 or aarch64; any path the host's loader looks
//! in exists in the root (its `PT_INTERP` path, `/lib/<triplet>`,
//! `/usr/lib/<triplet>`: the root's own host-architecture files would be
//! loaded or covered); the root's `/etc/ld.so.cache` lists a library of the
//! host's architecture (the loader reads the cache of the root it runs in
//! before its default directories; entries of other architectures it
//! skips by their flags, so Fedora's aarch64 `/usr/lib64` is never
//! looked at); the root has `/etc/ld.so.preload`; no tool qualifies.
//!
//! Must not: bind anything writable, any directory, or any host file but
//! the programs, their loader and their libraries (never the host's `/`,
//! `/proc`, `/sys`, `/home`, `/root` or the work directory); follow a
//! symlink of the root out of it (paths are resolved inside the root,
//! [`in_root`]); mount outside a private mount namespace; or make a
//! failure of its own fail the build (a plan refused or a mount that fails
//! leaves the root as it was, and the programs run emulated).
//!
//! Interface: [`NativeTools::plan`] (reads the root and the host, mounts
//! nothing), then [`NativeTools::overlay`] or
//! [`NativeTools::create_mount_points`], then [`NativeTools::mount`]; the
//! guards returned are the caller's to keep with its other mounts and to
//! drop in reverse. `MKIMG_NATIVE_TOOLS=0` ([`wanted`]) turns it off.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::elf::detect_elf;
use crate::elf::dynamic::read_dynamic;

pub mod in_root;
pub mod ld_cache;
mod mounts;

pub use mounts::undo;

use in_root::{host_path, resolve};

/// The environment variable that turns native tools off (`0`).
pub const ENV: &str = "MKIMG_NATIVE_TOOLS";

/// Programs and libraries larger than this are not read (or taken).
const MAX_FILE: u64 = 16 << 20;

/// One tool that may run natively.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The name scripts call it by.
    pub name: &'static str,
    /// The file name it has once symlinks are followed.
    pub program: &'static str,
    /// Bytes its binary holds on both sides (the implementation's name).
    pub marker: Option<&'static [u8]>,
}

const fn gnu(name: &'static str, marker: &'static [u8]) -> Tool {
    Tool {
        name,
        program: name,
        marker: Some(marker),
    }
}

/// What grub-mkconfig and Debian's /etc/grub.d exec, counted with strace on
/// Debian trixie riscv64 (execs in one run): sed 52, cat 23, tr 4, cut 4,
/// grep 3, basename 3, rm 2, dirname 2, tail 1, and `/bin/sh` for the
/// program and its ten scripts. See the module doc for what is left out.
pub const TOOLS: [Tool; 10] = [
    Tool {
        name: "sh",
        program: "dash",
        marker: None,
    },
    gnu("sed", b"GNU sed"),
    gnu("grep", b"GNU grep"),
    gnu("cat", b"GNU coreutils"),
    gnu("tr", b"GNU coreutils"),
    gnu("cut", b"GNU coreutils"),
    gnu("basename", b"GNU coreutils"),
    gnu("dirname", b"GNU coreutils"),
    gnu("rm", b"GNU coreutils"),
    gnu("tail", b"GNU coreutils"),
];

/// What the host's loader needs: Debian's multiarch layout.
#[derive(Debug, Clone, Copy)]
struct HostLayout {
    arch: Arch,
    triplet: &'static str,
    /// `FLAG_ELF_LIBC6 | FLAG_<ARCH>_LIB64` of glibc's `dl-cache.h`.
    cache_flags: i32,
}

const HOSTS: [HostLayout; 2] = [
    HostLayout {
        arch: Arch::X86_64,
        triplet: "x86_64-linux-gnu",
        cache_flags: 0x0303,
    },
    HostLayout {
        arch: Arch::Aarch64,
        triplet: "aarch64-linux-gnu",
        cache_flags: 0x0a03,
    },
];

/// Why no program runs natively.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the rootfs is {0}, the host's own architecture: nothing is emulated")]
    HostArch(Arch),
    #[error("the host is {0}: native tools know the Debian multiarch layout of x86_64 and aarch64 hosts only")]
    UnknownHost(String),
    #[error("{path} exists in the rootfs: the host's loader would load or cover the rootfs's own {what}")]
    Collision { path: String, what: &'static str },
    #[error("the rootfs's /etc/ld.so.cache lists {name}, a library of the host's architecture: the host's loader would load it")]
    CacheHasHostLibrary { name: String },
    #[error("the rootfs's /etc/ld.so.cache cannot be read as glibc writes it ({0}): the host's loader might take entries from it")]
    CacheUnreadable(String),
    #[error("the rootfs has /etc/ld.so.preload: the host's loader would preload what it names")]
    Preload,
    #[error("the rootfs's {path}: {reason}")]
    Rootfs { path: String, reason: String },
    #[error("host {what}: {reason}")]
    Host { what: String, reason: String },
    #[error("no tool qualifies ({0})")]
    NoTool(String),
}

/// One read-only bind mount: a host file over a path of the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bind {
    /// Absolute, symlinks resolved, in the root: where the host file shows.
    pub inside: PathBuf,
    /// The host file (canonical: a regular file).
    pub host: PathBuf,
    /// `inside` does not exist in the root: its mount point (an empty
    /// file, and the directories above it that are missing) must be made.
    pub create: bool,
}

/// The plan for one root: which tools run natively and every bind mount
/// that takes. Made by [`NativeTools::plan`]; mounts nothing itself.
#[derive(Debug, Clone)]
pub struct NativeTools {
    /// "sh (dash)", "sed", … in [`TOOLS`] order.
    tools: Vec<String>,
    /// "tool: why it stays emulated".
    skipped: Vec<String>,
    /// Sorted by `inside`: a parent directory's mount point before its files.
    binds: Vec<Bind>,
}

/// Whether native tools are wanted: `MKIMG_NATIVE_TOOLS` unset, or set to
/// anything but `0`.
pub fn wanted() -> bool {
    std::env::var_os(ENV).is_none_or(|v| v != "0")
}

/// What happened to native tools for one sandbox root, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not asked for (`MKIMG_NATIVE_TOOLS=0`, or a caller that runs host
    /// programs anyway).
    Off,
    /// In place; the text lists the tools.
    Used(String),
    /// Asked for and refused, or failed while mounting; everything emulated.
    Refused(String),
}

impl Outcome {
    /// One line for the build log.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Off => {
                format!("native tools off ({ENV}=0): every program of the rootfs runs emulated")
            }
            Outcome::Used(what) => format!("native tools: {what} ({ENV}=0 runs them emulated)"),
            Outcome::Refused(why) => {
                format!("native tools not used, every program of the rootfs runs emulated: {why}")
            }
        }
    }
}

impl NativeTools {
    /// Which tools of `root` (a rootfs of `arch`, its programs found
    /// through `path`, the sandbox's `PATH`) can run as the host's own, and
    /// the binds that takes. Reads the root and the host; changes nothing.
    pub fn plan(root: &Path, arch: Arch, path: &str) -> Result<NativeTools, Refusal> {
        let host = host_layout()?;
        if arch == host.arch {
            return Err(Refusal::HostArch(arch));
        }
        check_loader_inputs(root, host)?;
        let lib_dir = PathBuf::from("/usr/lib").join(host.triplet);
        for dir in [PathBuf::from("/lib").join(host.triplet), lib_dir.clone()] {
            if resolved(root, &dir)?.exists() {
                return Err(Refusal::Collision {
                    path: dir.display().to_string(),
                    what: "host-architecture libraries",
                });
            }
        }
        let mut plan = NativeTools {
            tools: Vec::new(),
            skipped: Vec::new(),
            binds: Vec::new(),
        };
        let mut interpreters = BTreeSet::new();
        let mut needed = Vec::new();
        for tool in TOOLS {
            let chosen = host_program(&tool, host.arch)
                .and_then(|host_file| Ok((host_file, root_programs(root, &tool, arch, path)?)));
            let ((host_file, dynamic), inside) = match chosen {
                Ok(chosen) => chosen,
                Err(reason) => {
                    plan.skipped.push(format!("{}: {reason}", tool.name));
                    continue;
                }
            };
            let Some(interpreter) = dynamic.interpreter else {
                plan.skipped.push(format!(
                    "{}: the host's program has no PT_INTERP",
                    tool.name
                ));
                continue;
            };
            interpreters.insert(interpreter);
            needed.extend(dynamic.needed);
            plan.binds.extend(inside.into_iter().map(|inside| Bind {
                inside,
                host: host_file.clone(),
                create: false,
            }));
            plan.tools.push(if tool.name == tool.program {
                tool.name.to_string()
            } else {
                format!("{} ({})", tool.name, tool.program)
            });
        }
        if plan.tools.is_empty() {
            return Err(Refusal::NoTool(plan.skipped.join("; ")));
        }
        let mut loaded = Vec::new();
        for interpreter in interpreters {
            let target = resolved(root, Path::new(&interpreter))?;
            if target.exists() {
                return Err(Refusal::Collision {
                    path: interpreter,
                    what: "host-architecture dynamic loader",
                });
            }
            loaded.extend(Path::new(&interpreter).file_name().map(|n| n.to_owned()));
            plan.binds.push(Bind {
                inside: target.full(),
                host: canonical_host_file(Path::new(&interpreter))?,
                create: true,
            });
        }
        let target_dir = resolved(root, &lib_dir)?;
        for (soname, host_file) in host_libraries(host, needed, &loaded)? {
            plan.binds.push(Bind {
                inside: target_dir.full().join(soname),
                host: host_file,
                create: true,
            });
        }
        plan.binds.sort();
        plan.binds.dedup();
        Ok(plan)
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// The tools that run natively: "sh (dash)", "sed", ….
    pub fn tools(&self) -> &[String] {
        &self.tools
    }

    /// "tool: reason" for each tool that stays emulated.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// One line: the tools, what else is bound, what stays emulated.
    pub fn summary(&self) -> String {
        let extra = self.binds.iter().filter(|b| b.create).count();
        let mut text = format!(
            "{} run as the host's programs ({extra} loader and library files bound read-only)",
            self.tools.join(", ")
        );
        if !self.skipped.is_empty() {
            text.push_str(&format!("; emulated: {}", self.skipped.join("; ")));
        }
        text
    }
}

fn host_layout() -> Result<HostLayout, Refusal> {
    let name = std::env::consts::ARCH;
    let arch = name.parse::<Arch>().ok();
    HOSTS
        .into_iter()
        .find(|h| Some(h.arch) == arch)
        .ok_or_else(|| Refusal::UnknownHost(name.to_string()))
}

/// `path` resolved in the root; an I/O error refuses.
fn resolved(root: &Path, path: &Path) -> Result<in_root::Resolved, Refusal> {
    resolve(root, path).map_err(|err| Refusal::Rootfs {
        path: path.display().to_string(),
        reason: err.to_string(),
    })
}

/// The root's loader inputs the host's loader would read too.
fn check_loader_inputs(root: &Path, host: HostLayout) -> Result<(), Refusal> {
    if resolved(root, Path::new("/etc/ld.so.preload"))?.exists() {
        return Err(Refusal::Preload);
    }
    let cache = resolved(root, Path::new("/etc/ld.so.cache"))?;
    if !cache.exists() {
        return Ok(());
    }
    let bytes = read_bounded(&host_path(root, &cache.found)).map_err(|reason| Refusal::Rootfs {
        path: "/etc/ld.so.cache".into(),
        reason,
    })?;
    match ld_cache::host_entry(&bytes, host.cache_flags) {
        Ok(None) => Ok(()),
        Ok(Some(name)) => Err(Refusal::CacheHasHostLibrary { name }),
        Err(err) => Err(Refusal::CacheUnreadable(err.to_string())),
    }
}

/// The host's program for `tool` (canonical path and what it needs), if
/// it is the expected program for the host's architecture.
fn host_program(
    tool: &Tool,
    arch: Arch,
) -> Result<(PathBuf, crate::elf::dynamic::Dynamic), String> {
    let candidate = ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool.name))
        .find(|p| p.exists())
        .ok_or("not installed on the host")?;
    let real = fs::canonicalize(&candidate).map_err(|e| format!("{}: {e}", candidate.display()))?;
    let bytes = read_bounded(&real)?;
    check_program(tool, &real, &bytes, arch).map_err(|e| format!("host {e}"))?;
    let dynamic = read_dynamic(&bytes).map_err(|e| format!("host {}: {e}", real.display()))?;
    Ok((real, dynamic))
}

/// The files of the root that `PATH` lookup of `tool` may run (resolved,
/// deduplicated), each the expected program for `arch`.
fn root_programs(root: &Path, tool: &Tool, arch: Arch, path: &str) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let name = Path::new(dir).join(tool.name);
        let target = resolve(root, &name).map_err(|e| format!("{}: {e}", name.display()))?;
        if target.exists() && !found.contains(&target.found) {
            found.push(target.found);
        }
    }
    if found.is_empty() {
        return Err("not in the rootfs".into());
    }
    for inside in &found {
        let file = host_path(root, inside);
        if !fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            return Err(format!("{} is not a regular file", inside.display()));
        }
        let bytes = read_bounded(&file)?;
        check_program(tool, inside, &bytes, arch)?;
    }
    Ok(found)
}

/// Whether `bytes` (the file at `path`) is `tool`'s program for `arch`.
fn check_program(tool: &Tool, path: &Path, bytes: &[u8], arch: Arch) -> Result<(), String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != tool.program {
        return Err(format!(
            "{} is {name}, not {}",
            path.display(),
            tool.program
        ));
    }
    let elf = detect_elf(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if elf.arch != Some(arch) {
        return Err(format!("{} is not a {arch} program", path.display()));
    }
    if let Some(marker) = tool.marker {
        if !bytes.windows(marker.len()).any(|w| w == marker) {
            return Err(format!(
                "{} is not {}",
                path.display(),
                String::from_utf8_lossy(marker)
            ));
        }
    }
    Ok(())
}

/// Every library the host's programs need, transitively: (soname, host
/// file), found in the host's multiarch directories. `loaded` are the
/// loaders' own names (a `DT_NEEDED` of them is the loader itself).
fn host_libraries(
    host: HostLayout,
    mut todo: Vec<String>,
    loaded: &[std::ffi::OsString],
) -> Result<BTreeMap<String, PathBuf>, Refusal> {
    let mut out = BTreeMap::new();
    while let Some(soname) = todo.pop() {
        if out.contains_key(&soname) || loaded.iter().any(|l| *l == *soname) {
            continue;
        }
        let refuse = |reason: String| Refusal::Host {
            what: format!("library {soname}"),
            reason,
        };
        if soname.contains('/') || soname.starts_with('.') {
            return Err(refuse("not a plain file name".into()));
        }
        let file = ["/lib", "/usr/lib"]
            .iter()
            .map(|dir| Path::new(dir).join(host.triplet).join(&soname))
            .find(|p| p.exists())
            .ok_or_else(|| refuse(format!("not in /lib/{0} or /usr/lib/{0}", host.triplet)))?;
        let real = canonical_host_file(&file)?;
        let bytes = read_bounded(&real).map_err(refuse)?;
        let dynamic = read_dynamic(&bytes).map_err(|e| refuse(e.to_string()))?;
        todo.extend(dynamic.needed);
        out.insert(soname, real);
    }
    Ok(out)
}

/// `path` on the host, symlinks resolved: a regular file.
fn canonical_host_file(path: &Path) -> Result<PathBuf, Refusal> {
    let refuse = |reason: String| Refusal::Host {
        what: path.display().to_string(),
        reason,
    };
    let real = fs::canonicalize(path).map_err(|e| refuse(e.to_string()))?;
    if !real.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    Ok(real)
}

/// A whole file of at most [`MAX_FILE`] bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!(
            "{} is larger than {MAX_FILE} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
