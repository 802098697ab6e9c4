//! Bootstrapping a bootable root filesystem tarball for a target
//! architecture, from a distribution's package repositories.
//!
//! This module *produces* a tarball; [`crate::rootfs`] *consumes* one (any
//! tarball, bootstrapped here or not). The two share no code: the only thing
//! passed between them is the cached tarball's path.
//!
//! In: a [`RootfsRecipe`] (from a board's `[rootfs]` table or the `mkimg
//! rootfs` command line), the target [`Arch`] and [`BootstrapOptions`] (cache
//! directory, `--refresh`, SOURCE_DATE_EPOCH, progress style).
//! Out: the path of a cached tarball, `<cache>/<key>.tar`, where the key is
//! the SHA-256 of the canonical recipe ([`cache`]). A cached tarball is
//! returned at once without running anything.
//!
//! Two routes:
//! - Debian family: `mmdebstrap` under binfmt_misc, one command, hooks set the
//!   root password and the serial getty ([`debian`]).
//! - RPM family (openEuler, Fedora): `dnf --forcearch --installroot`, then the
//!   same edits made from the host, then `tar` ([`rpm`]).
//!
//! Every program runs through [`Cmd`]; the argv of each route comes from a
//! pure builder that the unit tests pin. Preflight checks (binfmt F flag,
//! tools installed) run before anything slow ([`preflight`]). This module
//! does not read the clock for content: SOURCE_DATE_EPOCH is a parameter;
//! `Instant` only times the run for the record and the progress line.

mod cache;
mod debian;
mod inspect;
mod preflight;
mod progress;
mod rpm;
mod shadow;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::arch::Arch;
use crate::board::recipe::{Distro, RootfsRecipe};
use crate::host::cmd::Cmd;
use anyhow::{bail, Context};

pub use cache::{cache_key, default_cache_dir, publish_copy, CacheRecord};
pub use debian::{debian_arch, mmdebstrap_cmd, DebianArch};
pub use inspect::{inspect_tarball, TarballSummary};
pub use preflight::Mode;
pub use progress::ProgressStyle;
pub use rpm::{customize_root, dnf_install_cmd, rpm_packages, tar_root_cmd};
pub use shadow::{sha512_crypt, CryptSalt};

/// The root password when a recipe sets none: `root`. Fine for a board on a
/// desk or a VM; set `root_password` (or `--root-password`) for anything else.
pub const DEFAULT_ROOT_PASSWORD: &str = "root";

/// SOURCE_DATE_EPOCH when the environment sets none: 2025-01-01T00:00:00Z.
/// Fixed so the cache key is stable; not 0, since a last password change on
/// day 0 would force a password change at the first login.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 1_735_689_600;

/// Debian's mirror when a recipe names none.
pub const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// How to run a bootstrap. `mkimg build` passes its build context's values.
#[derive(Clone, Debug)]
pub struct BootstrapOptions {
    /// Where tarballs are cached (see [`default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// Rebuild even when the cache holds the tarball.
    pub refresh: bool,
    /// Timestamps in the tarball (passed to mmdebstrap, tar, chpasswd).
    pub source_date_epoch: u64,
    pub progress: ProgressStyle,
}

/// A recipe with its defaults filled in and its text checked, for one arch.
/// Everything downstream (cache key, command builders) reads only this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRecipe {
    pub distro: Distro,
    pub suite: String,
    pub arch: Arch,
    /// Debian: the mirror. RPM: empty (folded into `repos`).
    pub mirror: String,
    /// The user's extra packages, sorted, without duplicates.
    pub packages: Vec<String>,
    pub console: Option<String>,
    /// The root password as given, or a crypt hash (see [`RootfsRecipe`]).
    pub root_password: String,
    pub repos: Vec<String>,
}

impl ResolvedRecipe {
    pub fn new(recipe: &RootfsRecipe, arch: Arch) -> anyhow::Result<Self> {
        check_word("suite", &recipe.suite, |c| {
            c.is_ascii_alphanumeric() || "._-".contains(c)
        })?;
        let mut packages = recipe.packages.clone();
        packages.sort();
        packages.dedup();
        for name in &packages {
            check_word("package", name, |c| {
                c.is_ascii_alphanumeric() || ".+-:=~_".contains(c)
            })?;
        }
        if let Some(console) = &recipe.console {
            check_word("console", console, |c| {
                c.is_ascii_alphanumeric() || c == '_'
            })?;
        }
        let root_password = recipe
            .root_password
            .clone()
            .unwrap_or_else(|| DEFAULT_ROOT_PASSWORD.to_string());
        if root_password.contains(['\n', ':']) {
            bail!("root password must not contain ':' or a newline");
        }
        if root_password.starts_with("$6$") {
            check_word("root password hash", &root_password, |c| {
                c.is_ascii_alphanumeric() || "./$".contains(c)
            })?;
        }
        let (mirror, repos) = if recipe.distro.is_rpm() {
            let repos: Vec<String> = recipe.mirror.iter().chain(&recipe.repos).cloned().collect();
            if repos.is_empty() {
                bail!(
                    "{} needs at least one repository: pass --repo URL (or set `repos` in the \
                     board's [rootfs] table)",
                    recipe.distro.as_str()
                );
            }
            (String::new(), repos)
        } else {
            if !recipe.repos.is_empty() {
                bail!("`repos` is for the RPM route; Debian takes one `mirror`");
            }
            let mirror = recipe
                .mirror
                .clone()
                .unwrap_or_else(|| DEFAULT_DEBIAN_MIRROR.into());
            (mirror, Vec::new())
        };
        for url in std::iter::once(&mirror)
            .chain(&repos)
            .filter(|u| !u.is_empty())
        {
            check_word("repository URL", url, |c| {
                c.is_ascii_graphic() && !"'\"\\,".contains(c)
            })?;
        }
        Ok(ResolvedRecipe {
            distro: recipe.distro,
            suite: recipe.suite.clone(),
            arch,
            mirror,
            packages,
            console: recipe.console.clone(),
            root_password,
            repos,
        })
    }

    /// The crypt hash written to /etc/shadow for root. The salt is derived
    /// from the recipe so the same recipe gives the same tarball bytes.
    pub fn root_hash(&self) -> String {
        if self.root_password.starts_with("$6$") {
            return self.root_password.clone();
        }
        let salt = CryptSalt::derive(&[
            self.distro.as_str(),
            &self.suite,
            self.arch.as_str(),
            &self.root_password,
        ]);
        sha512_crypt(self.root_password.as_bytes(), &salt)
    }
}

/// Text that goes into argv and shell hooks: non-empty, from a small alphabet.
fn check_word(what: &str, value: &str, allowed: impl Fn(char) -> bool) -> anyhow::Result<()> {
    if value.is_empty() || value.starts_with('-') || !value.chars().all(allowed) {
        bail!("invalid {what} {value:?}");
    }
    Ok(())
}

/// Bootstrap `recipe` for `arch`, or find it in the cache. Returns the cached
/// tarball's path.
pub fn bootstrap(
    recipe: &RootfsRecipe,
    arch: Arch,
    opts: &BootstrapOptions,
) -> anyhow::Result<PathBuf> {
    let resolved = ResolvedRecipe::new(recipe, arch)?;
    let key = cache_key(&resolved, opts.source_date_epoch);
    let tarball = opts.cache_dir.join(format!("{key}.tar"));
    if tarball.is_file() && !opts.refresh {
        return Ok(tarball);
    }
    let mode = preflight::check_host(&resolved)?;
    std::fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating cache directory {}", opts.cache_dir.display()))?;
    let temp = cache::TempPath::new(&opts.cache_dir, &key)?;
    let started = Instant::now();
    let mut progress = progress::Progress::start(
        opts.progress,
        &format!(
            "bootstrapping {} {} for {}",
            resolved.distro.as_str(),
            resolved.suite,
            arch
        ),
    );
    let result = build_tarball(&resolved, mode, temp.path(), opts, &mut progress);
    let elapsed = started.elapsed();
    progress.finish(result.is_ok(), elapsed);
    let tool = result?;
    let summary = inspect_tarball(temp.path())?;
    summary.check_bootable(&resolved).with_context(|| {
        format!(
            "the bootstrapped tarball {} is not bootable",
            temp.path().display()
        )
    })?;
    let size = std::fs::metadata(temp.path())?.len();
    temp.persist(&tarball)?;
    let record = CacheRecord::new(&resolved, &key, opts.source_date_epoch, tool, elapsed, size);
    cache::write_record(&opts.cache_dir, &key, &record)?;
    Ok(tarball)
}

/// Run the route for the recipe's distro, writing the tarball to `out`.
/// Returns the bootstrapping tool's version line, for the record.
fn build_tarball(
    recipe: &ResolvedRecipe,
    mode: Mode,
    out: &Path,
    opts: &BootstrapOptions,
    progress: &mut progress::Progress,
) -> anyhow::Result<String> {
    if recipe.distro.is_rpm() {
        return rpm::bootstrap_rpm(recipe, out, opts.source_date_epoch, progress);
    }
    let version = tool_version("mmdebstrap")?;
    let cmd = mmdebstrap_cmd(recipe, mode, out, opts.source_date_epoch)?;
    cmd.run_with_stderr_lines(|line| progress.line(line))?;
    Ok(version)
}

/// The first line of `PROGRAM --version`.
fn tool_version(program: &str) -> anyhow::Result<String> {
    let out = Cmd::new(format!("asking {program} its version"), program)
        .arg("--version")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}
