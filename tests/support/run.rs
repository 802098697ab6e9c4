//! The `mkimg` binary under test, with an environment that does not depend
//! on the user running the tests: no `MKIMG_BOARDS`, no `~/.config/mkimg`
//! (HOME=/nonexistent), standard input from /dev/null.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `mkimg ARGS…` not yet run, with the clean environment; callers add the
/// rest (`SOURCE_DATE_EPOCH`, `MKIMG_WORKDIR`, a current directory).
pub fn mkimg_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_mkimg"));
    command
        .args(args)
        .env_remove("MKIMG_BOARDS")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null());
    command
}

/// Run `mkimg ARGS…` with the clean environment and collect its output.
pub fn mkimg(args: &[&str]) -> Output {
    mkimg_command(args).output().expect("run mkimg")
}

/// Output bytes as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

pub fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// Run an oracle tool; panics with its output when it fails to start or
/// exits non-zero. Returns its standard output.
pub fn run_tool(program: impl AsRef<Path>, args: &[&str]) -> String {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} ({}): {}{}",
        program.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
