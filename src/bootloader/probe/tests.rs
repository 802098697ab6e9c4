//! The answers file from plans (hostile values included), and the shim
//! itself run the way grub-mkconfig runs it: by a real POSIX sh (Debian's
//! static busybox, `sh` and `realpath`) in the rootless sandbox over a
//! tree, asked the questions Debian trixie's grub-mkconfig asked the real
//! grub-probe in the mount path — same answers — and some it must not
//! answer.

use std::sync::atomic::AtomicBool;

use super::{unanswered_questions, ProbeAnswers, ANSWERS, SHIM, UNANSWERED};
use crate::bootloader::golden::{builtin_plan, plan_from_toml};
use crate::host::cmd::Cmd;
use crate::host::sandbox::{parse_handed_back, Sandbox, Tmpfs, TreeSandbox};
use crate::host::test_support::static_busybox;
use crate::host::treedir::TreeDir;

const ROOT_UUID: &str = "78662d6f-706f-6570-6f72-742d726f6f74";

#[test]
fn answers_come_from_the_plan() {
    let answers = ProbeAnswers::from_plan(&builtin_plan("qemu-riscv64")).unwrap();
    assert_eq!(
        answers.render(),
        format!(
            "# mkimg: grub-probe's answers from the build plan (src/bootloader/probe.rs)\n\
             device /dev/mkimg-root\n\
             elsewhere /dev\nelsewhere /proc\nelsewhere /tmp\nelsewhere /boot/efi\n\
             target fs ext2\ntarget fs_uuid {ROOT_UUID}\ntarget fs_label rootfs\n\
             target partuuid\ntarget partmap\ntarget abstraction\ntarget cryptodisk_uuid\n\
             target compatibility_hint\ntarget hints_string\n"
        )
    );
}

const BOARD: &str = r#"
[board]
name = "t"
description = "test: mount points and labels for the grub-probe answers"
arch = "riscv64"
hostname = "t"
image = "t"

[disk]
table = "gpt"
size = "2G"

[[partition]]
name = "esp"
type = "esp"
size = "64M"
filesystem = "vfat"
mount = "MOUNT"

[[partition]]
name = "rootfs"
type = "linux"
size = "rest"
filesystem = "ext4"
label = "LABEL"
mount = "/"
"#;

/// A label the answers could not carry exactly is left out (a question
/// about it is unanswered, never answered wrong); a mount point that
/// could not be read back is refused.
#[test]
fn hostile_labels_and_mount_points_never_reach_the_answers() {
    let board = |mount: &str, label: &str| BOARD.replace("MOUNT", mount).replace("LABEL", label);
    let plan = plan_from_toml(&board("/boot/efi", "root fs"));
    let answers = ProbeAnswers::from_plan(&plan).unwrap();
    assert_eq!(answers.fs_label, None);
    assert!(!answers.render().contains("fs_label"));
    // The planner refuses such mount points already; the answers do not
    // rely on it.
    for mount in [
        "/boot/e\nfi",
        "/boot/efi/../x",
        "boot/efi",
        "/boot/efi/",
        "/b\\x",
    ] {
        let mut plan = plan_from_toml(&board("/boot/efi", "rootfs"));
        let esp = &mut plan.layout.partitions[0];
        esp.mount.as_mut().unwrap().path = mount.to_string();
        let err = ProbeAnswers::from_plan(&plan).unwrap_err();
        assert!(err.to_string().contains("cannot hold"), "{mount:?}: {err}");
    }
}

/// (question, answer, exit status) as the real grub-probe gave them in the
/// mount path (grub-mkconfig's calls, logged there), then questions the
/// shim must refuse.
const ASKED: &str = r#"
ask() {
    out=$("$@" 2>/dev/null); rc=$?
    printf '%s => [%s] %s\n' "$*" "$out" "$rc"
}
ask grub-probe --target=device /
ask grub-probe --device /dev/mkimg-root --target=fs_uuid
ask grub-probe --device /dev/mkimg-root --target=partuuid
ask grub-probe --target=device /boot
ask grub-probe --device /dev/mkimg-root --target=fs
ask grub-probe -t fs /usr/share/grub/unicode.pf2
ask grub-probe -t abstraction /usr/share/grub/unicode.pf2
ask grub-probe --target=device /usr/share/grub/unicode.pf2
ask grub-probe --device /dev/mkimg-root --target=partmap
ask grub-probe --device /dev/mkimg-root --target=abstraction
ask grub-probe --device /dev/mkimg-root --target=compatibility_hint
ask grub-probe --device /dev/mkimg-root --target=hints_string
ask grub-mkrelpath /usr/share/grub/unicode.pf2
ask grub-mkrelpath /boot
ask grub2-probe --target fs_label /
ask grub-mkrelpath /bin/sh
cd /boot && ask grub-probe --target=device . && cd /
ask grub-probe --target=fs_uuid /nonexistent
ask grub-probe --target=drive /
ask grub-probe --device /dev/sda --target=fs
ask grub-probe --target=device /boot/efi
ask grub-probe -t device /tmp
ask grub-probe -0 --target=fs /
ask grub-mkrelpath -r /boot
"#;

#[test]
fn the_shim_answers_what_grub_probe_answered_and_logs_the_rest() {
    let Some(busybox) = static_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    TreeSandbox::create_stage(&stage).unwrap();
    let tree = TreeDir::create(&stage.join("root"), TreeSandbox::host_ids()).unwrap();
    for d in [
        "usr",
        "usr/bin",
        "usr/sbin",
        "usr/share",
        "usr/share/grub",
        "dev",
        "proc",
        "tmp",
        "run",
        "run/mkimg",
        "boot",
        "boot/efi",
    ] {
        tree.make_dir(d, 0o755).unwrap();
    }
    tree.write_file("usr/bin/busybox", &busybox, 0o755).unwrap();
    for applet in ["sh", "realpath", "cat"] {
        tree.symlink(&format!("usr/bin/{applet}"), "busybox")
            .unwrap();
    }
    tree.symlink("bin", "usr/bin").unwrap();
    tree.write_file("usr/share/grub/unicode.pf2", b"font", 0o644)
        .unwrap();
    for program in [
        "usr/sbin/grub-probe",
        "usr/sbin/grub2-probe",
        "usr/bin/grub-mkrelpath",
    ] {
        tree.write_file(program, SHIM.as_bytes(), 0o755).unwrap();
    }
    let answers = ProbeAnswers::from_plan(&builtin_plan("qemu-riscv64")).unwrap();
    tree.write_file(ANSWERS, answers.render().as_bytes(), 0o644)
        .unwrap();
    let sandbox = TreeSandbox {
        tmpfs: vec![Tmpfs {
            path: "/boot/efi".into(),
            options: "mode=0700,size=1m".into(),
        }],
        hand_back: vec![UNANSWERED.into()],
        ..TreeSandbox::new(&stage)
    };
    let (status, out) = Cmd::new("asking the shim", "sh")
        .args(["-c", ASKED])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin")
        .sandboxed(Sandbox::Tree(sandbox))
        .output_unchecked_interruptible(&AtomicBool::new(false))
        .unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8(out.stderr).unwrap();
    let expected = format!(
        "grub-probe --target=device / => [/dev/mkimg-root] 0\n\
         grub-probe --device /dev/mkimg-root --target=fs_uuid => [{ROOT_UUID}] 0\n\
         grub-probe --device /dev/mkimg-root --target=partuuid => [] 0\n\
         grub-probe --target=device /boot => [/dev/mkimg-root] 0\n\
         grub-probe --device /dev/mkimg-root --target=fs => [ext2] 0\n\
         grub-probe -t fs /usr/share/grub/unicode.pf2 => [ext2] 0\n\
         grub-probe -t abstraction /usr/share/grub/unicode.pf2 => [] 0\n\
         grub-probe --target=device /usr/share/grub/unicode.pf2 => [/dev/mkimg-root] 0\n\
         grub-probe --device /dev/mkimg-root --target=partmap => [] 0\n\
         grub-probe --device /dev/mkimg-root --target=abstraction => [] 0\n\
         grub-probe --device /dev/mkimg-root --target=compatibility_hint => [] 0\n\
         grub-probe --device /dev/mkimg-root --target=hints_string => [] 0\n\
         grub-mkrelpath /usr/share/grub/unicode.pf2 => [/usr/share/grub/unicode.pf2] 0\n\
         grub-mkrelpath /boot => [/boot] 0\n\
         grub2-probe --target fs_label / => [rootfs] 0\n\
         grub-mkrelpath /bin/sh => [/usr/bin/busybox] 0\n\
         grub-probe --target=device . => [/dev/mkimg-root] 0\n\
         grub-probe --target=fs_uuid /nonexistent => [] 1\n\
         grub-probe --target=drive / => [] 1\n\
         grub-probe --device /dev/sda --target=fs => [] 1\n\
         grub-probe --target=device /boot/efi => [] 1\n\
         grub-probe -t device /tmp => [] 1\n\
         grub-probe -0 --target=fs / => [] 1\n\
         grub-mkrelpath -r /boot => [] 1\n"
    );
    let handed = parse_handed_back(&out.stdout).unwrap();
    let log = handed[0].1.clone().unwrap_or_default();
    assert_eq!(
        unanswered_questions(&log),
        [
            "grub-probe --target=drive /",
            "grub-probe --device /dev/sda --target=fs",
            "grub-probe --target=device /boot/efi",
            "grub-probe -t device /tmp",
            "grub-probe -0 --target=fs /",
            "grub-mkrelpath -r /boot",
        ]
    );
    assert_eq!(said, expected);
}
