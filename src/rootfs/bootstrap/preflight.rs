//! Checks made before a bootstrap starts, so a missing piece fails in a
//! second rather than minutes in: binfmt_misc registered with the F flag for
//! a foreign arch, the route's tools installed, and how mmdebstrap may run
//! (as root, or in a user namespace).
//!
//! The binfmt check is a minimal stand-in for the binfmt module; it reads
//! /proc/sys/fs/binfmt_misc/qemu-<arch> and nothing else.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::arch::Arch;
use crate::host::cmd::Cmd;

use super::ResolvedRecipe;

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// How mmdebstrap gets the privileges to build a chroot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Running as root.
    Root,
    /// In a user namespace (needs /etc/subuid and unprivileged userns).
    Unshare,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::Unshare => "unshare",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BinfmtError {
    #[error("no binfmt_misc handler for {arch} ({path}); run `mkimg binfmt register {arch}`")]
    Missing { arch: Arch, path: String },
    #[error("the binfmt_misc handler for {arch} is disabled; run `mkimg binfmt register {arch}`")]
    Disabled { arch: Arch },
    #[error(
        "the binfmt_misc handler for {arch} lacks the F flag (flags: {flags:?}), so it fails \
         inside a chroot; run `mkimg binfmt register {arch}`"
    )]
    NoFixBinary { arch: Arch, flags: String },
}

/// What a binfmt_misc entry file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinfmtEntry {
    pub enabled: bool,
    pub interpreter: Option<String>,
    pub flags: String,
}

/// Parse /proc/sys/fs/binfmt_misc/<name>: `enabled`, `interpreter …`, `flags: POF`.
pub fn parse_binfmt_entry(text: &str) -> BinfmtEntry {
    let mut entry = BinfmtEntry {
        enabled: false,
        interpreter: None,
        flags: String::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if line == "enabled" {
            entry.enabled = true;
        } else if let Some(rest) = line.strip_prefix("interpreter ") {
            entry.interpreter = Some(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("flags:") {
            entry.flags = rest.trim().to_string();
        }
    }
    entry
}

/// The architecture this process runs on, if mkimg knows it.
pub fn host_arch() -> Option<Arch> {
    std::env::consts::ARCH.parse().ok()
}

/// `arch` programs run here: natively, or through an enabled binfmt_misc
/// handler with the F flag (the interpreter is opened at registration, so it
/// works inside a chroot that does not contain it).
pub fn check_binfmt(arch: Arch) -> Result<(), BinfmtError> {
    if host_arch() == Some(arch) {
        return Ok(());
    }
    check_binfmt_in(Path::new(BINFMT_DIR), arch)
}

fn check_binfmt_in(dir: &Path, arch: Arch) -> Result<(), BinfmtError> {
    let path = dir.join(format!("qemu-{}", arch.as_str()));
    let text = std::fs::read_to_string(&path).map_err(|_| BinfmtError::Missing {
        arch,
        path: path.display().to_string(),
    })?;
    let entry = parse_binfmt_entry(&text);
    if !entry.enabled {
        return Err(BinfmtError::Disabled { arch });
    }
    if !entry.flags.contains('F') {
        return Err(BinfmtError::NoFixBinary {
            arch,
            flags: entry.flags,
        });
    }
    Ok(())
}

/// `program` on $PATH, or None.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

fn require_program(program: &str, package: &str) -> anyhow::Result<()> {
    if find_program(program).is_none() {
        bail!(
            "{program} is not installed (Debian package {package}; scripts/setup-debian.sh \
             installs every tool mkimg uses)"
        );
    }
    Ok(())
}

/// True when this process runs as root (the owner of /proc/self is the
/// effective uid).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Everything the recipe's route needs; returns how mmdebstrap should run.
pub fn check_host(recipe: &ResolvedRecipe) -> anyhow::Result<Mode> {
    check_binfmt(recipe.arch)?;
    if recipe.distro.is_rpm() {
        require_program("dnf", "dnf")?;
        require_program("tar", "tar")?;
        if !running_as_root() {
            bail!("the RPM route (dnf --installroot) must run as root");
        }
        return Ok(Mode::Root);
    }
    require_program("mmdebstrap", "mmdebstrap")?;
    if host_arch() != Some(recipe.arch) {
        // mmdebstrap asks arch-test whether the foreign arch can execute.
        require_program("arch-test", "arch-test")?;
    }
    if running_as_root() {
        return Ok(Mode::Root);
    }
    // Unshare mode needs newuidmap, an unprivileged user namespace and
    // subordinate ids to map the chroot's users; say so plainly rather than
    // let mmdebstrap fail later.
    require_program("newuidmap", "uidmap")?;
    Cmd::new(
        "checking unprivileged user namespaces (mmdebstrap --mode=unshare)",
        "unshare",
    )
    .args(["--user", "--map-root-user", "true"])
    .run()?;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    let user = std::env::var("USER").unwrap_or_default();
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !has_subid_range(&text, &user, uid) {
            bail!(
                "mmdebstrap --mode=unshare needs a range for {user} (uid {uid}) in {file}; \
                 add one with `usermod --add-subuids 100000-165535 --add-subgids \
                 100000-165535 {user}`, or run as root"
            );
        }
    }
    Ok(Mode::Unshare)
}

/// /etc/subuid (or subgid) has a line `user:start:count` or `uid:start:count`
/// with room for a chroot's ids (65536).
pub fn has_subid_range(text: &str, user: &str, uid: u32) -> bool {
    let uid = uid.to_string();
    text.lines().any(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next().unwrap_or_default();
        let count = fields
            .nth(1)
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        (owner == uid || (!user.is_empty() && owner == user)) && count >= 65536
    })
}

#[cfg(test)]
mod tests {
    use super::{check_binfmt_in, has_subid_range, parse_binfmt_entry, BinfmtError};
    use crate::arch::Arch;

    const REGISTERED: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/riscv64-binfmt-P\n\
        flags: POF\noffset 0\nmagic 7f454c46\nmask ffffffff\n";

    #[test]
    fn entry_fields_are_parsed() {
        let entry = parse_binfmt_entry(REGISTERED);
        assert!(entry.enabled);
        assert_eq!(entry.flags, "POF");
        assert_eq!(
            entry.interpreter.as_deref(),
            Some("/usr/libexec/qemu-binfmt/riscv64-binfmt-P")
        );
    }

    #[test]
    fn subid_ranges_are_found_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:165536:65536\nsmall:300000:10\n";
        assert!(has_subid_range(text, "alice", 1000));
        assert!(has_subid_range(text, "bob", 1001));
        assert!(
            !has_subid_range(text, "small", 1002),
            "too few ids for a chroot"
        );
        assert!(!has_subid_range(text, "", 1003));
        assert!(!has_subid_range("", "alice", 1000));
    }

    #[test]
    fn binfmt_check_wants_enabled_and_f_flag() {
        let dir = tempfile::tempdir().unwrap();
        let check = || check_binfmt_in(dir.path(), Arch::Riscv64);
        let err = check().unwrap_err();
        assert!(matches!(err, BinfmtError::Missing { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("run `mkimg binfmt register riscv64`"),
            "{err}"
        );

        let file = dir.path().join("qemu-riscv64");
        std::fs::write(&file, REGISTERED.replace("POF", "PO")).unwrap();
        let err = check().unwrap_err();
        assert_eq!(
            err,
            BinfmtError::NoFixBinary {
                arch: Arch::Riscv64,
                flags: "PO".into()
            }
        );
        assert!(
            err.to_string().contains("mkimg binfmt register riscv64"),
            "{err}"
        );

        std::fs::write(&file, REGISTERED.replace("enabled", "disabled")).unwrap();
        assert_eq!(
            check().unwrap_err(),
            BinfmtError::Disabled {
                arch: Arch::Riscv64
            }
        );

        std::fs::write(&file, REGISTERED).unwrap();
        check().unwrap();
    }
}
