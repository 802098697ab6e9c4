//! The hostile suite: crafted tarballs, board files and command lines, as an
//! attacker or a careless user would write them, against the real `mkimg`
//! binary. Each case asserts the exit status, that the message names the
//! problem, that decoy host files are untouched and that nothing is left
//! behind (output, staging or work directories, child processes). Signals
//! and crashes are sent at named stages (`MKIMG_TEST_PAUSE_AT`, see
//! `host::interrupt`), never after a sleep.
//!
//! One file per kind of input under `tests/hostile/`.

#[path = "hostile/boards.rs"]
mod boards;
#[path = "hostile/budgets.rs"]
mod budgets;
#[path = "hostile/kit.rs"]
mod kit;
#[path = "hostile/lifecycle.rs"]
mod lifecycle;
#[path = "hostile/messages.rs"]
mod messages;
#[path = "hostile/mkconfig.rs"]
mod mkconfig;
#[path = "hostile/output_dir.rs"]
mod output_dir;
#[path = "hostile/signals.rs"]
mod signals;
#[path = "hostile/tarball_xattrs.rs"]
mod tarball_xattrs;

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::run::mkimg_command;
use support::tarball::Tarball;

/// `mkimg ARGS` with a clean environment: no user boards, no user config,
/// the work directory under `work` (so leftovers can be checked).
pub fn mkimg_in(work: &Path, args: &[&str]) -> Output {
    mkimg_command(args)
        .env("MKIMG_WORKDIR", work)
        .env("TMPDIR", work)
        .output()
        .expect("run mkimg")
}

pub use support::run::stderr;

/// Asserts a failure whose message holds every one of `needles`.
pub fn assert_refused(out: &Output, needles: &[&str]) {
    let text = stderr(out);
    assert!(!out.status.success(), "expected a failure:\n{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "message lacks {needle:?}:\n{text}");
    }
}

/// The entries of `dir` (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(list) => list.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A one-file tar: enough to get past `--rootfs` checks; cases here fail
/// before the rootfs is read.
pub fn tiny_tar(path: &Path) {
    let tar = Tarball::new().file("etc/motd", b"hi\n").finish();
    std::fs::write(path, tar).unwrap();
}
