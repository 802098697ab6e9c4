use std::time::Duration;

use super::{
    find_bytes, select_markers, Action, AnsiStripper, Console, ConsoleError, Dialogue,
    DialogueError, Login, Script, DEFAULT_REQUIRED, TAIL_LINES,
};

const GRUB_LINUX: &[u8] = include_bytes!("../../../tests/fixtures/console/grub-linux-riscv64.log");
const EDK2_SHELL: &[u8] = include_bytes!("../../../tests/fixtures/console/edk2-aarch64-shell.log");
const UBOOT: &[u8] = include_bytes!("../../../tests/fixtures/console/uboot-riscv64-nodisk.log");
const SYSTEMD_LOGIN: &[u8] =
    include_bytes!("../../../tests/fixtures/console/systemd-login-riscv64.log");
const INITRAMFS: &[u8] =
    include_bytes!("../../../tests/fixtures/console/linux-initramfs-riscv64.log");

fn strip_all(input: &[u8]) -> String {
    let mut out = Vec::new();
    AnsiStripper::default().strip(input, &mut out);
    String::from_utf8(out).unwrap()
}

fn default_console() -> Console {
    let required: Vec<String> = DEFAULT_REQUIRED.iter().map(|s| s.to_string()).collect();
    Console::new(select_markers(&required, &[]).unwrap())
}

/// Feed `log` in chunks of `size`, chunk i at i seconds; (marker, second) in
/// the order reached.
fn reached_in_chunks(console: &mut Console, log: &[u8], size: usize) -> Vec<(String, u64)> {
    let mut reached = Vec::new();
    for (i, chunk) in log.chunks(size).enumerate() {
        let fed = console.feed(chunk, Duration::from_secs(i as u64));
        for index in fed.reached {
            reached.push((console.markers()[index].name.clone(), i as u64));
        }
    }
    reached
}

fn names(reached: &[(String, u64)]) -> Vec<&str> {
    reached.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn strip_removes_csi_osc_charset_single_escapes_and_cr() {
    let input = b"\x1b[2J\x1b[01;01H\x1b[=3hA\x1b]0;title\x07B\x1b]8;;x\x1b\\C\x1b(BD\x1b7E\x1b8\r\nF\x08\x00G\t\xe2\x94\x80";
    assert_eq!(strip_all(input), "ABCDE\nFG\t\u{2500}");
}

#[test]
fn strip_carries_state_across_chunks() {
    let whole = strip_all(GRUB_LINUX);
    let mut stripper = AnsiStripper::default();
    let mut out = Vec::new();
    for byte in GRUB_LINUX {
        stripper.strip(std::slice::from_ref(byte), &mut out);
    }
    assert_eq!(String::from_utf8(out).unwrap(), whole);
    assert!(!whole.contains('\x1b') && !whole.contains('\r'), "{whole}");
}

#[test]
fn unterminated_escape_does_not_swallow_the_console() {
    let mut input = b"\x1b]".to_vec();
    input.extend(std::iter::repeat_n(b'x', 300));
    input.extend(b"\nLinux version 6.12\n");
    assert!(strip_all(&input).ends_with("\nLinux version 6.12\n"));
}

#[test]
fn grub_linux_log_reaches_every_marker_whatever_the_read_size() {
    let raw = String::from_utf8_lossy(GRUB_LINUX);
    // The systemd line only matches once the colour codes are stripped.
    assert!(!raw.contains("Reached target multi-user.target"));
    for size in [1, 3, 7, 64, 4096] {
        let mut console = default_console();
        let reached = reached_in_chunks(&mut console, GRUB_LINUX, size);
        assert_eq!(
            names(&reached),
            ["firmware", "grub", "kernel", "root", "multi-user", "login"],
            "read size {size}"
        );
        assert!(console.all_required_reached(), "read size {size}");
        // Reached in boot order, each at the read that completed it.
        assert!(reached.windows(2).all(|w| w[0].1 <= w[1].1), "{reached:?}");
    }
}

#[test]
fn marker_time_is_the_read_that_completes_it() {
    let mut console = default_console();
    assert!(console
        .feed(b"[ 0.0] Linux ver", Duration::from_secs(1))
        .reached
        .is_empty());
    let fed = console.feed(b"sion 6.12\r\n", Duration::from_secs(2));
    assert_eq!(fed.reached.len(), 1);
    let kernel = console
        .markers()
        .iter()
        .position(|m| m.name == "kernel")
        .unwrap();
    assert_eq!(console.reached_at(kernel), Some(Duration::from_secs(2)));
    assert!(!console.all_required_reached());
}

#[test]
fn edk2_shell_log_reaches_firmware_only() {
    let mut console = default_console();
    let reached = reached_in_chunks(&mut console, EDK2_SHELL, 100);
    assert_eq!(names(&reached), ["firmware"]);
    let report = console.report();
    let missed: Vec<&str> = report
        .iter()
        .filter(|m| m.reached.is_none())
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(missed, ["kernel", "root", "login"]);
    assert!(
        console.tail().last().unwrap().ends_with("Shell> "),
        "{:?}",
        console.tail()
    );
}

#[test]
fn uboot_log_reaches_sbi_and_firmware_without_grub() {
    let mut console = default_console();
    let reached = reached_in_chunks(&mut console, UBOOT, 512);
    assert_eq!(names(&reached), ["sbi", "firmware"]);
    assert!(console
        .tail()
        .iter()
        .any(|l| l.contains("Hit any key to stop autoboot:  2  1  0")));
}

#[test]
fn expect_text_is_a_required_literal_marker() {
    let markers = select_markers(&["kernel".into()], &["(initramfs) *".into()]).unwrap();
    let mut console = Console::new(markers);
    console.feed(b"Linux version 6.12\n(initramfs) ", Duration::ZERO);
    assert!(
        !console.all_required_reached(),
        "'*' must be literal in --expect"
    );
    console.feed(b"*", Duration::ZERO);
    assert!(console.all_required_reached());
}

#[test]
fn unknown_marker_name_is_refused_with_the_known_ones() {
    let err = select_markers(&["kernal".into()], &[]).unwrap_err();
    let ConsoleError::UnknownMarker { name, known } = &err;
    assert_eq!(name, "kernal");
    assert!(
        known.contains("kernel") && known.contains("multi-user"),
        "{err}"
    );
}

#[test]
fn tail_keeps_the_last_lines_and_the_partial_one() {
    let mut console = default_console();
    for i in 0..100 {
        console.feed(format!("line {i}\r\n").as_bytes(), Duration::ZERO);
    }
    console.feed(b"debian login: ", Duration::ZERO);
    let tail = console.tail();
    assert_eq!(tail.len(), TAIL_LINES);
    assert_eq!(tail[0], "line 61");
    assert_eq!(tail.last().unwrap(), "debian login: ");
}

fn sent(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Feed, with the tty echoing every line typed back first, as a serial
/// console does.
fn feed_echoed(dialogue: &mut Dialogue, text: &str, at: u64) -> Vec<Action> {
    let actions = dialogue.feed(text.as_bytes(), secs(at), true).unwrap();
    let echo = sent(&actions);
    let mut all = actions;
    if !echo.is_empty() {
        all.extend(dialogue.feed(echo.as_bytes(), secs(at), true).unwrap());
    }
    all
}

#[test]
fn login_then_run_then_poweroff() {
    let mut dialogue = Dialogue::new(Script {
        login: Some("root:secret".parse().unwrap()),
        run: Some("uname -m".into()),
        nonce: 1000,
    });
    assert_eq!(
        sent(&feed_echoed(
            &mut dialogue,
            "Debian GNU/Linux 13 debian ttyS0\n\ndebian log",
            1
        )),
        ""
    );
    assert_eq!(sent(&feed_echoed(&mut dialogue, "in: ", 2)), "root\n");
    assert_eq!(
        sent(&feed_echoed(&mut dialogue, "Password: ", 3)),
        "secret\n"
    );
    let probe = sent(&feed_echoed(
        &mut dialogue,
        "\nLinux debian 6.12\nroot@debian:~# ",
        4,
    ));
    assert_eq!(probe, "echo MKIMG-READY-$((1000+1))\n");
    // The echoed probe alone must not count as the answer.
    let run = sent(&feed_echoed(
        &mut dialogue,
        "MKIMG-READY-1001\nroot@debian:~# ",
        5,
    ));
    assert_eq!(
        run,
        "echo MKIMG-BEGIN-$((1000+2)); uname -m; echo MKIMG-END-$?-$((1000+2))\n"
    );
    let actions = feed_echoed(&mut dialogue, "MKIMG-BEGIN-1002\nriscv64\nMKIMG-END-", 6);
    assert!(actions.is_empty(), "{actions:?}");
    let actions = feed_echoed(&mut dialogue, "0-1002\nroot@debian:~# ", 7);
    assert_eq!(
        actions,
        [
            Action::Output(b"riscv64\n".to_vec()),
            Action::Send(b"poweroff\n".to_vec()),
            Action::Finished {
                run_status: Some(0),
                powering_off: true
            }
        ]
    );
}

#[test]
fn failing_command_reports_its_status() {
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: Some("false".into()),
        nonce: 7,
    });
    assert_eq!(
        sent(&feed_echoed(&mut dialogue, "(initramfs) ", 1)),
        "echo MKIMG-READY-$((7+1))\n"
    );
    feed_echoed(&mut dialogue, "MKIMG-READY-8\n(initramfs) ", 2);
    let actions = feed_echoed(&mut dialogue, "MKIMG-BEGIN-9\nMKIMG-END-1-9\n", 3);
    assert!(actions.contains(&Action::Output(Vec::new())), "{actions:?}");
    assert!(actions.contains(&Action::Finished {
        run_status: Some(1),
        powering_off: true
    }));
}

#[test]
fn run_waits_for_the_required_markers() {
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: Some("true".into()),
        nonce: 1,
    });
    assert!(dialogue
        .feed(b"(initramfs) ", secs(1), false)
        .unwrap()
        .is_empty());
    let actions = dialogue.feed(b"", secs(2), true).unwrap();
    assert_eq!(sent(&actions), "echo MKIMG-READY-$((1+1))\n");
}

#[test]
fn no_login_no_run_finishes_when_the_markers_are_reached() {
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: None,
        nonce: 1,
    });
    assert!(dialogue.feed(b"x", secs(1), false).unwrap().is_empty());
    assert_eq!(
        dialogue.feed(b"", secs(2), true).unwrap(),
        [Action::Finished {
            run_status: None,
            powering_off: false
        }]
    );
}

#[test]
fn unanswered_probe_is_typed_again_and_silent_prompt_is_probed() {
    let mut dialogue = Dialogue::new(Script {
        login: Some(Login {
            user: "u".into(),
            password: "p".into(),
        }),
        run: None,
        nonce: 5,
    });
    dialogue.feed(b"login: ", secs(0), true).unwrap();
    dialogue.feed(b"Password: ", secs(1), true).unwrap();
    // No prompt recognised: probe after a while anyway.
    assert_eq!(
        sent(&dialogue.feed(b"motd\n>>> ", secs(2), true).unwrap()),
        ""
    );
    assert_eq!(
        sent(&dialogue.feed(b"", secs(4), true).unwrap()),
        "echo MKIMG-READY-$((5+1))\n"
    );
    assert_eq!(sent(&dialogue.feed(b"", secs(10), true).unwrap()), "");
    assert_eq!(
        sent(&dialogue.feed(b"", secs(14), true).unwrap()),
        "echo MKIMG-READY-$((5+1))\n"
    );
    assert_eq!(
        sent(&dialogue.feed(b"MKIMG-READY-6\n", secs(15), true).unwrap()),
        "poweroff\n"
    );
}

#[test]
fn wrong_password_is_an_error() {
    let mut dialogue = Dialogue::new(Script {
        login: Some("root:wrong".parse().unwrap()),
        run: None,
        nonce: 1,
    });
    dialogue.feed(b"debian login: ", secs(0), true).unwrap();
    dialogue.feed(b"root\nPassword: ", secs(1), true).unwrap();
    let err = dialogue
        .feed(b"\n\nLogin incorrect\ndebian login: ", secs(3), true)
        .unwrap_err();
    assert_eq!(
        err,
        DialogueError::LoginIncorrect {
            user: "root".into()
        }
    );
}

#[test]
fn login_argument_needs_user_and_colon() {
    let login: Login = "root:a:b".parse().unwrap();
    assert_eq!(
        (login.user.as_str(), login.password.as_str()),
        ("root", "a:b")
    );
    assert!("root".parse::<Login>().is_err());
    assert!(":pw".parse::<Login>().is_err());
}

#[test]
fn recorded_initramfs_session_replays_to_the_same_dialogue() {
    let markers = select_markers(&["sbi".into(), "kernel".into()], &["(initramfs) ".into()]);
    let mut console = Console::new(markers.unwrap());
    let mut dialogue = Dialogue::new(Script {
        login: None,
        run: Some("uname -m; cat /proc/cmdline".into()),
        // The nonce of the recording.
        nonce: 19423,
    });
    let mut actions = Vec::new();
    for (i, line) in INITRAMFS.split_inclusive(|&b| b == b'\n').enumerate() {
        let fed = console.feed(line, secs(i as u64));
        let ready = console.all_required_reached();
        actions.extend(dialogue.feed(&fed.text, secs(i as u64), ready).unwrap());
    }
    let typed = sent(&actions);
    let recorded = strip_all(INITRAMFS);
    for line in typed.lines() {
        assert!(
            recorded.contains(&format!("{line}\n")),
            "{line:?} not in the recording"
        );
    }
    assert!(actions.contains(&Action::Output(
        b"riscv64\nconsole=ttyS0 break=top\n".to_vec()
    )));
    assert_eq!(
        actions.last(),
        Some(&Action::Finished {
            run_status: Some(0),
            powering_off: true
        })
    );
}

#[test]
fn recorded_systemd_login_replays_to_the_same_dialogue() {
    let mut console = default_console();
    let mut dialogue = Dialogue::new(Script {
        login: Some("root:pw".parse().unwrap()),
        run: Some("uname -m; systemctl is-system-running; id -un".into()),
        nonce: 4037,
    });
    let mut actions = Vec::new();
    for (i, line) in SYSTEMD_LOGIN.split_inclusive(|&b| b == b'\n').enumerate() {
        let fed = console.feed(line, secs(i as u64));
        // The earlier markers are not in this excerpt.
        actions.extend(dialogue.feed(&fed.text, secs(i as u64), true).unwrap());
    }
    let typed: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        typed,
        [
            "root\n",
            "pw\n",
            "echo MKIMG-READY-$((4037+1))\n",
            "echo MKIMG-BEGIN-$((4037+2)); uname -m; systemctl is-system-running; id -un; echo MKIMG-END-$?-$((4037+2))\n",
            "poweroff\n",
        ]
    );
    assert!(actions.contains(&Action::Output(b"riscv64\nrunning\nroot\n".to_vec())));
    let reached: Vec<String> = console
        .report()
        .into_iter()
        .filter(|m| m.reached.is_some())
        .map(|m| m.name)
        .collect();
    assert_eq!(reached, ["multi-user", "login"]);
}

/// A `quiet` kernel command line (Debian's GRUB_CMDLINE_LINUX_DEFAULT)
/// prints neither the kernel's nor the root mount's line. Once the login
/// prompt is there they cannot come any more: they are passed unseen, and
/// the boot is complete, not waited on until the timeout.
#[test]
fn quiet_boot_passes_the_kernel_and_root_markers_unseen() {
    let hidden = ["Linux version", "EXT4-fs", "Mounted root", "Reached target"];
    let quiet: Vec<u8> = GRUB_LINUX
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| {
            !hidden
                .iter()
                .any(|h| find_bytes(line, h.as_bytes()).is_some())
        })
        .flatten()
        .copied()
        .collect();
    let login = find_bytes(&quiet, b"login:").expect("the fixture reaches a login prompt");

    // Up to the prompt: kernel and root are missing, not yet passed.
    let mut console = default_console();
    console.feed(&quiet[..login], Duration::from_secs(1));
    assert!(!console.all_required_reached());
    assert!(console.report().iter().all(|m| !m.passed_unseen));

    console.feed(&quiet[login..], Duration::from_secs(2));
    assert!(console.all_required_reached());
    let unseen: Vec<String> = console
        .report()
        .into_iter()
        .filter(|m| m.passed_unseen)
        .map(|m| m.name)
        .collect();
    assert_eq!(unseen, ["kernel", "root"]);
}

/// Only the markers a quiet kernel hides are passed: a boot that reaches
/// GRUB but no firmware line still misses `firmware`, and an `--expect`
/// text is never passed.
#[test]
fn only_quiet_hidden_markers_are_passed_unseen() {
    let required: Vec<String> = ["firmware", "login"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut console = Console::new(select_markers(&required, &["never printed".into()]).unwrap());
    console.feed(b"Welcome to GRUB\nhost login: ", Duration::from_secs(1));
    assert!(!console.all_required_reached());
    let missed: Vec<String> = console
        .report()
        .into_iter()
        .filter(|m| m.reached.is_none() && !m.passed_unseen)
        .map(|m| m.name)
        .collect();
    assert_eq!(missed, ["firmware", "never printed"]);
}
