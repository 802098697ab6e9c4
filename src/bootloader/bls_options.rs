//! The image's own Boot Loader Specification entries made to boot this
//! image: `root=` names the plan's root filesystem, and the board's kernel
//! arguments are in `options`.
//!
//! Why: a Fedora-family rootfs built in a container has entries in
//! `/boot/loader/entries` whose `options` kernel-install took from the
//! build machine (`/proc/cmdline` or `/etc/kernel/cmdline` there): a
//! `root=` of another filesystem, and none of the board's `console=`. A
//! grub with `blscfg` (the distro's own, and the grub.cfg its
//! grub2-mkconfig writes) boots the entries as they are, so with `--grub
//! mkconfig` such an image would look for the wrong root; template mode
//! renders the entries itself with the plan's root, but the image's files
//! still disagree with what booted. So for every grub build the pass
//! rewrites each `/boot/loader/entries/*.conf` ([`rewrite_entry`]):
//!
//! - every `options` line loses its `root=…`, `ro` and `rw` words; the
//!   other words stay, in order, `$kernelopts`-style variables included;
//! - the last `options` line (or a new one at the end, when the entry has
//!   none) ends in the board's arguments the entry's options lack, then
//!   `root=UUID=<plan> ro`: last, so a `root=` that a variable such as
//!   grubenv's `kernelopts` still holds is overridden (the kernel takes the
//!   last), and so a second rewrite changes nothing;
//! - every other line stays byte for byte, and so does an entry that is not
//!   UTF-8 or not lines of text (the BLS reader skips those with a warning).
//!
//! The rest of the system then agrees: kernel-install on the running target
//! takes `/proc/cmdline` for the next kernel's entry. Pure: bytes in, bytes
//! out; the rootfs pass applies it ([`entries_rewrite`]).

use std::sync::Arc;

use crate::board::schema::BootLoader;
use crate::bootloader::bls::ENTRIES_DIR;
use crate::bootloader::kernels::{args_missing_from, board_cmdline};
use crate::plan::Plan;
use crate::rootfs::Rewrite;

/// The largest entry changed (Fedora's are about 400 bytes); a larger one
/// is refused from its tar header, before it is read.
pub const ENTRY_LIMIT: u64 = 64 << 10;

/// The rewrite of every BLS entry for a grub build with an ext4 root (the
/// key is a pattern, `*` within one component); `None` otherwise.
pub fn entries_rewrite(plan: &Plan) -> Option<(String, Rewrite)> {
    if plan.boot.loader != BootLoader::Grub {
        return None;
    }
    let uuid = plan.root_partition()?.filesystem.fs_uuid_text()?;
    let root = format!("root=UUID={uuid}");
    let board = board_cmdline(plan);
    let edit =
        move |bytes: &[u8]| -> Result<Vec<u8>, String> { Ok(rewrite_entry(bytes, &root, &board)) };
    Some((
        format!("{ENTRIES_DIR}/*.conf"),
        Rewrite {
            limit: ENTRY_LIMIT,
            edit: Arc::new(edit),
        },
    ))
}

/// `entry` with its options made to boot this image (see the module doc):
/// `root` is `root=UUID=…`, `board` the board's arguments.
pub fn rewrite_entry(entry: &[u8], root: &str, board: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(entry) else {
        return entry.to_vec();
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return entry.to_vec();
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_options = |line: &str| line.split_whitespace().next() == Some("options");
    let last = lines.iter().rposition(|l| is_options(l));
    let mut have: Vec<&str> = Vec::new();
    for line in lines.iter().filter(|l| is_options(l)) {
        have.extend(line.split_whitespace().skip(1).filter(|w| kept(w)));
    }
    let missing = args_missing_from(board, &have.join(" "));
    let added = match missing.is_empty() {
        true => format!("{root} ro"),
        false => format!("{} {root} ro", missing.join(" ")),
    };
    let added = added.as_str();
    let mut out = String::with_capacity(text.len() + added.len() + 16);
    for (i, line) in lines.iter().enumerate() {
        if !is_options(line) {
            out.push_str(line);
            continue;
        }
        let mut words: Vec<&str> = line
            .split_whitespace()
            .skip(1)
            .filter(|w| kept(w))
            .collect();
        if Some(i) == last {
            words.push(added);
        } else if words.is_empty() {
            continue;
        }
        out.push_str("options ");
        out.push_str(&words.join(" "));
        out.push_str(line_end(line));
    }
    if last.is_none() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("options ");
        out.push_str(added);
        out.push('\n');
    }
    out.into_bytes()
}

/// An option word that stays: not the root or its mount mode.
fn kept(word: &str) -> bool {
    !word.starts_with("root=") && word != "ro" && word != "rw"
}

/// The line's own end: `\r\n`, `\n` or nothing (the last line).
fn line_end(line: &str) -> &'static str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests;
