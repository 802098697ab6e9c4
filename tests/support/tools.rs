//! The one rule for a test whose prerequisite is missing: an oracle tool
//! (sgdisk, e2fsck, qemu-img…), a firmware file, root, a binfmt entry.
//!
//! **`MKIMG_REQUIRE_TOOLS`**: set to anything but the empty string or `0`,
//! a missing prerequisite fails the test (CI: `scripts/test.sh` exports
//! `MKIMG_REQUIRE_TOOLS=1`). Unset, empty or `0`, the test prints
//! `SKIP: <what>` on stderr and returns early (a laptop without the tool).
//! No other place reads the variable.
//!
//! One file, two kinds of crate: the integration tests (`tests/*.rs`, each a
//! crate of its own) reach it as `support::tools` (tests/support/mod.rs),
//! and the library's unit tests as `crate::test_tools`, through a
//! `#[cfg(test)] #[path]` include of this same file in `src/lib.rs`. A
//! `test-support` cargo feature with a self dev-dependency would also share
//! it, but it builds the library a second time with other features (and
//! puts test code into the library's API); an include keeps one copy of the
//! code with nothing else to build. So nothing here may name `crate::` or
//! `mkimg::`: only `std` and the package's own dependencies (`rustix`).
//!
//! Tools are looked up on PATH plus the sbin directories (a non-root PATH
//! often lacks them), without running anything.

use std::fmt::Display;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Whether a missing prerequisite fails the test (see the module doc).
pub fn tools_required() -> bool {
    required_by(std::env::var_os("MKIMG_REQUIRE_TOOLS").as_deref())
}

fn required_by(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// A prerequisite is missing: panic under MKIMG_REQUIRE_TOOLS, otherwise
/// print `SKIP: {what}`. The caller returns early after it.
pub fn skip_or_fail(what: impl Display) {
    assert!(
        !tools_required(),
        "{what} (MKIMG_REQUIRE_TOOLS is set: a missing prerequisite fails; \
         scripts/setup-debian.sh installs what the tests use)"
    );
    eprintln!("SKIP: {what}");
}

/// `ok`, or [`skip_or_fail`] with `what` and false.
pub fn require(ok: bool, what: impl Display) -> bool {
    if !ok {
        skip_or_fail(what);
    }
    ok
}

/// Where `name` is installed (PATH, then /usr/sbin, /sbin, /usr/bin, /bin),
/// without reporting anything when it is not.
pub fn locate_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where `name` is installed, or `None` after [`skip_or_fail`].
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let found = locate_tool(name);
    if found.is_none() {
        skip_or_fail(format_args!("{name} is not installed"));
    }
    found
}

/// Whether `name` is installed; [`skip_or_fail`] when not.
pub fn have_tool(name: &str) -> bool {
    find_tool(name).is_some()
}

/// Whether every one of `names` is installed; one [`skip_or_fail`] naming
/// all the missing ones when not.
pub fn have_tools(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| locate_tool(n).is_none())
        .collect();
    require(
        missing.is_empty(),
        format_args!("not installed: {}", missing.join(", ")),
    )
}

/// Whether `path` (a firmware image, a boot loader from a package) is a
/// file; [`skip_or_fail`] naming the package that has it when not.
pub fn have_file(path: &Path, package: &str) -> bool {
    require(
        path.is_file(),
        format_args!("{} is missing (package {package})", path.display()),
    )
}

/// Whether this process is root, as loop devices, mounts and namespaces
/// need; [`skip_or_fail`] naming `test` when not.
pub fn require_root(test: &str) -> bool {
    require(
        is_root(),
        format_args!("{test} needs root (loop devices, mounts)"),
    )
}

/// Whether the effective uid is 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod self_tests {
    use super::{locate_tool, required_by};

    #[test]
    fn require_tools_means_set_and_not_empty_or_zero() {
        for (value, required) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("1"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(
                required_by(value.map(std::ffi::OsStr::new)),
                required,
                "{value:?}"
            );
        }
    }

    #[test]
    fn finds_sh_and_not_a_made_up_name() {
        assert!(locate_tool("sh").is_some());
        assert!(locate_tool("mkimg-no-such-tool-7f3a").is_none());
    }
}
