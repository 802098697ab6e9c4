//! The `[rootfs]` table of board.toml: what a board's root filesystem holds
//! when no `--rootfs` tarball is given. `mkimg rootfs` builds the same type
//! from its command line.
//!
//! Only the recipe as typed lives here; filling in defaults, checking the
//! text that reaches argv and running the bootstrap is `crate::bootstrap`'s
//! job (which imports this type: the board schema does not depend on it).

use serde::{Deserialize, Serialize};

/// How a board (or the command line) says what its root filesystem holds.
/// Embedded in board.toml as the optional `[rootfs]` table.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootfsRecipe {
    pub distro: Distro,
    /// Debian: the suite (`trixie`, `sid`). RPM: the releasever (`24.03`, `41`).
    pub suite: String,
    /// Debian: the archive URL (default `http://deb.debian.org/debian`). RPM: a
    /// repository URL used before `repos`.
    pub mirror: Option<String>,
    /// Packages on top of the base set (kernel, grub EFI, systemd, login…).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Serial console device to run a login getty on, e.g. `ttyS0`.
    pub console: Option<String>,
    /// Root's password (default `root`). A value starting
    /// with `$6$` is taken as a SHA-512 crypt hash and used as is.
    pub root_password: Option<String>,
    /// RPM: repository URLs (`dnf --repofrompath`).
    #[serde(default)]
    pub repos: Vec<String>,
}

/// The distribution family a recipe bootstraps.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    Debian,
    Openeuler,
    Fedora,
}

impl Distro {
    pub fn as_str(self) -> &'static str {
        match self {
            Distro::Debian => "debian",
            Distro::Openeuler => "openeuler",
            Distro::Fedora => "fedora",
        }
    }

    /// Bootstrapped with dnf rather than mmdebstrap.
    pub fn is_rpm(self) -> bool {
        !matches!(self, Distro::Debian)
    }
}
