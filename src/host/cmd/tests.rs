use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Cmd, CmdError};

#[test]
fn argv_is_quoted_in_full() {
    let cmd = Cmd::new("making fs", "mke2fs").args(["-t", "ext4", "a b"]);
    assert_eq!(cmd.argv_text(), r#""mke2fs" "-t" "ext4" "a b""#);
}

#[test]
fn failure_reports_status_and_stderr_tail() {
    let long = "x".repeat(3000);
    let cmd = Cmd::new("testing failure", "sh").args([
        "-c",
        &format!("echo {long} >&2; echo last-line >&2; exit 3"),
    ]);
    let err = cmd.run().unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(r#"testing failure: "sh" "-c""#), "{text}");
    assert!(text.contains("exited with 3"), "{text}");
    assert!(text.contains("last-line"), "{text}");
    assert!(
        text.len() < 1500 + cmd.argv_text().len(),
        "stderr not trimmed: {}",
        text.len()
    );
}

/// A distro script's stderr is its only account of a failure, wherever
/// in it the reason is: `whole_stderr` keeps the first line too.
#[test]
fn whole_stderr_keeps_every_line() {
    let script = "echo 'Generating grub configuration file ...' >&2; \
        echo 'first: the reason' >&2; \
        for i in $(seq 1 300); do echo \"noise $i\" >&2; done; exit 1";
    let err = Cmd::new("running grub-mkconfig", "sh")
        .args(["-c", script])
        .whole_stderr()
        .run()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exited with 1"), "{text}");
    assert!(
        text.contains(
            "; stderr:\nGenerating grub configuration file ...\nfirst: the reason\nnoise 1\n"
        ),
        "{text}"
    );
    assert!(text.contains("noise 300"), "{text}");
    assert!(!text.contains("bytes before"), "{text}");
    // Streamed the same way.
    let err = Cmd::new("streaming", "sh")
        .args(["-c", script])
        .whole_stderr()
        .run_with_stderr_lines(|_| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("first: the reason\nnoise 1\n"),
        "{err}"
    );
    // The default keeps only the end.
    let err = Cmd::new("tail", "sh")
        .args(["-c", script])
        .run()
        .unwrap_err();
    assert!(!err.to_string().contains("\nfirst: the reason\n"), "{err}");
}

#[test]
fn missing_program_names_setup_script() {
    let err = Cmd::new("probing", "mkimg-no-such-tool").run().unwrap_err();
    assert!(matches!(err, CmdError::Spawn { .. }));
    assert!(err.to_string().contains("setup-debian.sh"), "{err}");
}

#[test]
fn stderr_lines_stream_to_the_callback() {
    let cmd = Cmd::new("streaming", "sh").args([
        "-c",
        "echo out; echo 'I: one' >&2; printf 'I: two\\r\\n' >&2; printf 'no newline' >&2",
    ]);
    let mut lines = Vec::new();
    let stdout = cmd
        .run_with_stderr_lines(|l| lines.push(l.to_string()))
        .unwrap();
    assert_eq!(stdout, b"out\n");
    assert_eq!(lines, ["I: one", "I: two", "no newline"]);
}

#[test]
fn streamed_failure_keeps_the_stderr_tail() {
    let cmd = Cmd::new("streaming failure", "sh").args([
        "-c",
        "for i in $(seq 1 500); do echo \"line $i\" >&2; done; exit 4",
    ]);
    let mut count = 0;
    let err = cmd.run_with_stderr_lines(|_| count += 1).unwrap_err();
    assert_eq!(count, 500);
    let text = err.to_string();
    assert!(text.contains("exited with 4"), "{text}");
    assert!(text.contains("line 500"), "{text}");
    assert!(!text.contains("line 1\n"), "tail not trimmed: {text}");
}

#[test]
fn streamed_missing_program_names_setup_script() {
    let err = Cmd::new("probing", "mkimg-no-such-tool")
        .run_with_stderr_lines(|_| {})
        .unwrap_err();
    assert!(err.to_string().contains("setup-debian.sh"), "{err}");
}

#[test]
fn interruptible_runs_to_completion() {
    let flag = AtomicBool::new(false);
    let out = Cmd::new("echoing", "sh")
        .args(["-c", "echo out; echo err >&2"])
        .output_interruptible(&flag)
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    let err = Cmd::new("failing", "sh")
        .args(["-c", "echo why >&2; exit 5"])
        .output_interruptible(&flag)
        .unwrap_err();
    assert!(err.to_string().contains("exited with 5"), "{err}");
    assert!(err.to_string().contains("why"), "{err}");
}

#[test]
fn interruption_kills_the_whole_group() {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = Arc::clone(&flag);
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        setter.store(true, Ordering::SeqCst);
    });
    let started = Instant::now();
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let err = Cmd::new("sleeping", "sh")
        .args(["-c", &script])
        .output_interruptible(&flag)
        .unwrap_err();
    assert!(matches!(err, CmdError::Interrupted { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    // The grandchild (same group) is gone too, or at most a zombie. It
    // was sent SIGKILL but is not our child, so nothing can wait for
    // it: on a loaded machine it may still be on its way out (state R
    // with the signal pending), hence the bounded poll.
    let dead = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        stat.as_deref().map_or(true, |s| s.contains(") Z ")) || stat.is_err()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dead() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    assert!(dead(), "grandchild {pid} survived: {stat:?}");
}

#[test]
fn children_lead_their_own_process_group() {
    // /proc/PID/stat: pid (comm) state ppid pgrp …
    let out = Cmd::new("reading its group", "sh")
        .args(["-c", "echo $$; cut -d' ' -f5 /proc/$$/stat"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], lines[1], "pid is the pgid: {text}");
    assert_ne!(
        lines[1],
        rustix::process::getpgrp().as_raw_nonzero().to_string()
    );
}

#[test]
fn stdin_is_null() {
    let out = Cmd::new("reading stdin", "cat").output().unwrap();
    assert!(out.stdout.is_empty());
}

/// A program that prints without end keeps only the first bytes in the
/// result, and is not blocked by the rest: it runs to its end.
#[test]
fn output_is_kept_up_to_the_limit_and_the_rest_drained() {
    let mut kept = Vec::new();
    super::running::read_bounded(&[7u8; 10_000][..], &mut kept, 4096).unwrap();
    assert_eq!(kept, vec![7u8; 4096]);
    let limit = super::running::OUTPUT_LIMIT;
    let out = Cmd::new("printing a lot", "sh")
        .args([
            "-c",
            "head -c $(( $1 + 1048576 )) /dev/zero; echo done >&2",
            "sh",
        ])
        .arg(limit.to_string())
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), limit);
    assert_eq!(out.stderr, b"done\n");
}
