//! Checks a grub.cfg made by someone else's tool (the distro's
//! grub-mkconfig in a chroot) before it goes into the image: does it boot
//! the root filesystem the layout made, and is it free of traces of the
//! build host?
//!
//! Flows in: the grub.cfg text and [`LintRules`] (the expected `root=`, the
//! architecture, the host paths that must not appear). Flows out: the
//! failing lines, each with its 1-based line number. Pure: no I/O.
//!
//! The checks: every `linux` line boots `root=UUID=<root fs uuid>` (or
//! `root=PARTUUID=<partition guid>`); nothing names a loop device
//! (`/dev/loop…`: without udev grub falls back to the build's device) or a
//! build-host path (the work directory, the chroot's device node); no
//! `linuxefi`/`initrdefi` outside x86 (they exist only in some
//! distributions' x86 builds of GRUB); at least one kernel is booted.

use std::fmt;

use crate::arch::Arch;

/// How the kernel must find its root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootBy {
    /// `root=UUID=<filesystem uuid>`.
    Uuid(String),
    /// `root=PARTUUID=<GPT partition guid>`.
    PartUuid(String),
}

impl RootBy {
    /// The exact `root=` argument.
    pub fn argument(&self) -> String {
        match self {
            RootBy::Uuid(uuid) => format!("root=UUID={uuid}"),
            RootBy::PartUuid(guid) => format!("root=PARTUUID={guid}"),
        }
    }
}

/// What a grub.cfg is checked against.
#[derive(Debug, Clone)]
pub struct LintRules {
    pub root: RootBy,
    pub arch: Arch,
    /// Host paths (work directory, chroot mount point, device nodes) that
    /// must not appear anywhere.
    pub forbidden: Vec<String>,
}

/// One failing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based; 0 when the finding is about the whole file.
    pub line: usize,
    pub text: String,
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.problem)
        } else {
            write!(
                f,
                "line {}: {}\n    {}",
                self.line,
                self.problem,
                self.text.trim()
            )
        }
    }
}

/// A grub.cfg that failed [`lint_grub_cfg`].
#[derive(Debug, thiserror::Error)]
#[error("{} fails {} check(s):\n{}", .what, .findings.len(), render(.findings))]
pub struct LintError {
    /// What was checked, e.g. `grub.cfg from grub-mkconfig`.
    pub what: String,
    pub findings: Vec<Finding>,
}

fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Commands that load a kernel, and those that exist only on x86.
const KERNEL_COMMANDS: [&str; 3] = ["linux", "linux16", "linuxefi"];
const X86_ONLY: [&str; 2] = ["linuxefi", "initrdefi"];

/// Every problem of `cfg` under `rules`, in line order.
pub fn lint_grub_cfg(cfg: &str, rules: &LintRules) -> Vec<Finding> {
    let expected = rules.root.argument();
    let mut findings = Vec::new();
    let mut kernels = 0;
    for (index, line) in cfg.lines().enumerate() {
        let mut problem = |problem: String| {
            findings.push(Finding {
                line: index + 1,
                text: line.to_string(),
                problem,
            })
        };
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or("");
        if X86_ONLY.contains(&command) && rules.arch != Arch::X86_64 {
            problem(format!(
                "`{command}` exists only in x86 builds of GRUB; {} needs `{}`",
                rules.arch,
                command.trim_end_matches("efi")
            ));
        }
        if KERNEL_COMMANDS.contains(&command) {
            kernels += 1;
            let roots: Vec<&str> = line
                .split_whitespace()
                .filter(|w| w.starts_with("root="))
                .collect();
            match roots.as_slice() {
                [] => problem(format!(
                    "boots a kernel without a root= argument; expected {expected}"
                )),
                [one] if *one == expected => {}
                _ => problem(format!(
                    "boots {}; the layout's root filesystem is {expected}",
                    roots.join(" ")
                )),
            }
        }
        if line.contains("/dev/loop") {
            problem(
                "names a loop device of the build host (no udev in the build: \
                 /dev/disk/by-uuid was missing for grub-probe)"
                    .to_string(),
            );
        }
        for path in &rules.forbidden {
            if !path.is_empty() && line.contains(path.as_str()) {
                problem(format!("names the build-host path {path}"));
            }
        }
    }
    if kernels == 0 {
        findings.push(Finding {
            line: 0,
            text: String::new(),
            problem:
                "no `linux` line: the menu boots no kernel (did grub-mkconfig find /boot/vmlinu*?)"
                    .to_string(),
        });
    }
    findings
}

/// [`lint_grub_cfg`] as a `Result`.
pub fn check_grub_cfg(what: &str, cfg: &str, rules: &LintRules) -> Result<(), LintError> {
    let findings = lint_grub_cfg(cfg, rules);
    if findings.is_empty() {
        Ok(())
    } else {
        Err(LintError {
            what: what.to_string(),
            findings,
        })
    }
}

#[cfg(test)]
mod tests;
