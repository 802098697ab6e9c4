//! Checks made before a bootstrap starts, so a missing piece fails in a
//! second rather than minutes in: binfmt_misc registered with the F flag for
//! a foreign arch, the route's tools installed, and how mmdebstrap may run
//! (as root, or in a user namespace).
//!
//! The binfmt check is `host::binfmt::preflight_host`, the one every command
//! that runs target code uses.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::bail;

use crate::arch::Arch;
use crate::host::binfmt::preflight_host;
use crate::host::cmd::Cmd;

use super::ResolvedRecipe;

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

/// The architecture this process runs on, if mkimg knows it.
pub fn host_arch() -> Option<Arch> {
    std::env::consts::ARCH.parse().ok()
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
    preflight_host(recipe.arch)?;
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
    use super::has_subid_range;

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
}
