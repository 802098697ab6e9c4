//! grub-probe's questions answered from the plan, for the `--grub
//! mkconfig` tree path (`mkconfig::tree`): there is no device to probe
//! there, and the plan knows the answers exactly.
//!
//! Owns: the shim ([`SHIM`], `probe/grub-probe.sh`: a fixed POSIX sh
//! script that stands in for grub-probe, grub2-probe, grub-mkrelpath and
//! grub2-mkrelpath in the sandbox's tree) and the answers it reads
//! ([`ProbeAnswers`], rendered to `/run/mkimg/grub-probe.answers`). No
//! input-derived text is ever part of a script: the shim's text is a
//! constant, the answers are data it reads line by line (`read -r`,
//! compared as quoted strings), and every value in them is checked here
//! first — UUIDs are formatted from [`Uuid`], the filesystem comes from an
//! enum, a label or path that could not be read back exactly is left out
//! (a question about it is then unanswered) or refused.
//!
//! What is answered, and why each answer is what the mount path's real
//! grub-probe says (measured with Debian trixie's grub 2.12 in that path:
//! a loop device of the root filesystem image mounted from
//! `/dev/mkimg-root`), so both paths give the same grub.cfg byte for byte:
//!
//! | question | answer |
//! |---|---|
//! | `--target=device PATH` (on the root filesystem) | `/dev/mkimg-root` |
//! | `fs` | `ext2` (grub's module for ext2/3/4) |
//! | `fs_uuid` | the root filesystem's UUID |
//! | `fs_label` | its label, when it has a plain one |
//! | `partuuid`, `partmap` | empty: the mount path's device is the bare filesystem, no partition table — answering the plan's GPT would add `insmod part_gpt` and set the two paths apart (the EFI grub has part_gpt built in either way) |
//! | `abstraction`, `cryptodisk_uuid` | empty: no LVM, RAID or LUKS in a plan |
//! | `compatibility_hint`, `hints_string` | empty, as grub-probe answers for a device it has no BIOS/EFI drive mapping of |
//! | `grub-mkrelpath PATH` | PATH made canonical (the root filesystem is mounted at /) |
//!
//! A path on another partition, in the sandbox's /dev, /proc or /tmp, a
//! device other than the root's, any other target or option: unanswered —
//! logged to `/tmp/mkimg-grub-probe.unanswered`, which the tree path turns
//! into a build error naming the question.
//!
//! Must not: run anything, or put a value into the answers that a line
//! break, a NUL or a shell could misread.

use anyhow::{bail, Result};
use uuid::Uuid;

use crate::host::chroot::ROOT_NODE;
use crate::plan::{Plan, PlannedFs};

/// The shim's text (a constant: see the module doc).
pub const SHIM: &str = include_str!("probe/grub-probe.sh");

/// The programs the shim replaces, in each of [`SHIM_DIRS`] where the tree
/// has them.
pub const SHIM_NAMES: [&str; 4] = [
    "grub-probe",
    "grub2-probe",
    "grub-mkrelpath",
    "grub2-mkrelpath",
];

/// Where a rootfs keeps them (usrmerge's `/sbin` and `/bin` are symlinks:
/// their programs are replaced under `/usr`).
pub const SHIM_DIRS: [&str; 6] = [
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
    "usr/local/sbin",
    "usr/local/bin",
];

/// The answers file, relative to the tree's root.
pub const ANSWERS: &str = "run/mkimg/grub-probe.answers";

/// The log of unanswered questions, a file of the sandbox's /tmp.
pub const UNANSWERED: &str = "mkimg-grub-probe.unanswered";

/// Paths of the sandbox that are not the root filesystem.
const SANDBOX_MOUNTS: [&str; 3] = ["/dev", "/proc", "/tmp"];

/// A filesystem name as grub-probe's `--target=fs` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrubFs {
    /// ext2, ext3 and ext4 alike.
    Ext2,
}

impl GrubFs {
    pub fn name(self) -> &'static str {
        match self {
            GrubFs::Ext2 => "ext2",
        }
    }
}

/// What the shim answers (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswers {
    /// The root filesystem's device name.
    pub device: String,
    pub fs: GrubFs,
    pub fs_uuid: Uuid,
    /// Only a label of `[A-Za-z0-9._-]`.
    pub fs_label: Option<String>,
    /// Where a path is on something else than the root filesystem.
    pub elsewhere: Vec<String>,
}

impl ProbeAnswers {
    /// The answers for `plan`'s root filesystem.
    pub fn from_plan(plan: &Plan) -> Result<ProbeAnswers> {
        let Some(root) = plan.root_partition() else {
            bail!("--grub mkconfig needs a partition mounted at /");
        };
        let PlannedFs::Ext4 { uuid, label, .. } = &root.filesystem else {
            bail!(
                "--grub mkconfig answers grub-probe for an ext4 root; partition '{}' is not ext4",
                root.name
            );
        };
        let plain_label = label.as_ref().filter(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
        let mut elsewhere: Vec<String> = SANDBOX_MOUNTS.iter().map(|m| m.to_string()).collect();
        for part in &plan.layout.partitions {
            let Some(mount) = part.mount.as_ref().filter(|m| m.path != "/") else {
                continue;
            };
            let path = &mount.path;
            let plain = path.starts_with('/')
                && !path.ends_with('/')
                && !path.contains(['\n', '\r', '\0', '\\'])
                && path
                    .split('/')
                    .skip(1)
                    .all(|c| !c.is_empty() && c != "." && c != "..");
            if !plain {
                bail!(
                    "partition '{}' is mounted at {path:?}, which the grub-probe answers \
                     cannot hold; use --grub template",
                    part.name
                );
            }
            elsewhere.push(path.clone());
        }
        Ok(ProbeAnswers {
            device: format!("/dev/{ROOT_NODE}"),
            fs: GrubFs::Ext2,
            fs_uuid: *uuid,
            fs_label: plain_label.cloned(),
            elsewhere,
        })
    }

    /// The answers file: `device D`, `elsewhere PATH`, `target T VALUE`
    /// (`target T` alone: an empty answer), one per line.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# mkimg: grub-probe's answers from the build plan (src/bootloader/probe.rs)\n",
        );
        out.push_str(&format!("device {}\n", self.device));
        for path in &self.elsewhere {
            out.push_str(&format!("elsewhere {path}\n"));
        }
        let mut targets = vec![
            ("fs", self.fs.name().to_string()),
            ("fs_uuid", self.fs_uuid.to_string()),
        ];
        if let Some(label) = &self.fs_label {
            targets.push(("fs_label", label.clone()));
        }
        for empty in [
            "partuuid",
            "partmap",
            "abstraction",
            "cryptodisk_uuid",
            "compatibility_hint",
            "hints_string",
        ] {
            targets.push((empty, String::new()));
        }
        for (target, value) in targets {
            match value.is_empty() {
                true => out.push_str(&format!("target {target}\n")),
                false => out.push_str(&format!("target {target} {value}\n")),
            }
        }
        out
    }
}

/// The questions in the shim's log of unanswered ones (one per line).
pub fn unanswered_questions(log: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(log)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(200).collect())
        .collect()
}

#[cfg(test)]
mod tests;
