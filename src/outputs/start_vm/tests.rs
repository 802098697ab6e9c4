//! start_vm.sh: golden text for both QEMU boards; `bash -n`, `sh -n` and
//! `shellcheck` clean; and a real smoke test per architecture: the rendered
//! script, run from another directory against the real EDK2 firmware and an
//! empty 64 MiB raw disk with `-snapshot`, must bring up the firmware (its
//! banner or BdsDxe on the serial console) and the ssh port forward.
//! That proves the pflash wiring, the relative paths, the comma escaping
//! (the output directory's name holds a comma and a space) and the
//! MKIMG_VARS / MKIMG_SSH_PORT overrides.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use super::{render_start_vm, start_vm_from_plan, ImageFormat, PflashWiring, StartVm};
use crate::bootloader::golden::{assert_golden, builtin_plan};
use crate::disk::gpt::test_tools::run_tool;
use crate::host::cmd::Cmd;
use crate::host::vm::free_tcp_port;
use crate::host::vm::watch::watch;
use crate::test_tools::{find_tool, have_file};

/// EDK2's banners (RISC-V, ArmVirt): the code flash was found.
const BANNERS: &[&str] = &["EDK2 firmware", "UEFI firmware"];
/// The boot manager reporting on boot options: EDK2 got through DXE with
/// its variable store, i.e. the vars flash is wired too.
const BOOT_MANAGER: &[&str] = &["BdsDxe"];

fn rendered(board: &str, format: ImageFormat) -> (StartVm, String) {
    let vm = start_vm_from_plan(&builtin_plan(board), format).unwrap();
    let text = render_start_vm(&vm).unwrap();
    (vm, text)
}

/// The golden files must not change with every release.
fn unversioned(text: &str) -> String {
    let stamp = format!("mkimg {}.", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&stamp), "{text}");
    text.replace(&stamp, "mkimg VERSION.")
}

#[test]
fn qemu_riscv64_script() {
    let (vm, text) = rendered("qemu-riscv64", ImageFormat::Qcow2);
    assert_eq!(vm.qemu_binary, "qemu-system-riscv64");
    assert_eq!(vm.pflash, PflashWiring::Blockdev);
    assert_eq!(vm.image_file, "qemu-riscv64.qcow2");
    assert_golden("start_vm.sh.qemu-riscv64", &unversioned(&text));
    assert!(text.contains("-M virt,acpi=off,pflash0=pflash0,pflash1=pflash1 \\\n"));
    assert!(text.ends_with("    \"$@\"\n"), "\"$@\" comes last");
}

#[test]
fn qemu_aarch64_script() {
    let (vm, text) = rendered("qemu-aarch64", ImageFormat::Qcow2);
    assert_eq!(vm.qemu_binary, "qemu-system-aarch64");
    assert_eq!(vm.pflash, PflashWiring::Drive);
    assert_golden("start_vm.sh.qemu-aarch64", &unversioned(&text));
    assert!(text.contains("-drive if=pflash,format=raw,readonly=on,"));
}

#[test]
fn shell_checks_are_clean() {
    let mut vm = start_vm_from_plan(&builtin_plan("qemu-riscv64"), ImageFormat::Raw).unwrap();
    vm.extra = vec![
        "-device".into(),
        "virtio-keyboard-pci".into(),
        "a b'c".into(),
    ];
    vm.cpu = Some("rv64,v=true".into());
    let cases = [
        rendered("qemu-riscv64", ImageFormat::Qcow2).1,
        rendered("qemu-aarch64", ImageFormat::Raw).1,
        render_start_vm(&vm).unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in cases.iter().enumerate() {
        let file = dir.path().join(format!("start_vm{i}.sh"));
        std::fs::write(&file, text).unwrap();
        let file = file.to_str().unwrap();
        for shell in ["bash", "sh"] {
            if let Some(tool) = find_tool(shell) {
                run_tool(&tool, &["-n", file]);
            }
        }
        if let Some(shellcheck) = find_tool("shellcheck") {
            run_tool(&shellcheck, &[file]);
        }
    }
    assert!(cases[2].contains("    -device \\\n    virtio-keyboard-pci \\\n    'a b'\\''c' \\\n"));
    assert!(cases[2].contains("-cpu rv64,v=true \\\n"));
}

/// The shellcheck oracle is not vacuous: an unquoted `$@` is reported.
#[test]
fn shellcheck_flags_unquoted_args() {
    let Some(shellcheck) = find_tool("shellcheck") else {
        return;
    };
    let text = rendered("qemu-riscv64", ImageFormat::Qcow2)
        .1
        .replace("\"$@\"", "$@");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.sh");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(shellcheck).arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SC2068"));
}

#[test]
fn unsafe_file_names_are_refused() {
    let (mut vm, _) = rendered("qemu-riscv64", ImageFormat::Qcow2);
    vm.image_file = "my \"disk\".qcow2".into();
    let err = render_start_vm(&vm).unwrap_err().to_string();
    assert!(err.contains("image file name"), "{err}");
}

/// Lay out an output directory like the build does (script, firmware,
/// image), run the script from `/` with -snapshot, and wait for EDK2.
fn smoke(board: &str) {
    let plan = builtin_plan(board);
    let (vm, text) = rendered(board, ImageFormat::Raw);
    if find_tool(&vm.qemu_binary).is_none() {
        return;
    }
    let firmware = plan.firmware.as_ref().unwrap();
    let vars_src = firmware.vars.as_ref().unwrap();
    for path in [&firmware.code, vars_src] {
        if !have_file(path, "qemu-efi-riscv64 or qemu-efi-aarch64") {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out dir,1");
    std::fs::create_dir(&out).unwrap();
    let script = out.join("start_vm.sh");
    std::fs::write(&script, &text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&firmware.code, out.join(&vm.firmware_code)).unwrap();
    // The pristine store stays untouched: the run gets a copy via MKIMG_VARS.
    std::os::unix::fs::symlink(vars_src, out.join(vm.firmware_vars.as_ref().unwrap())).unwrap();
    let vars_copy = tmp.path().join("vars, copy.fd");
    std::fs::copy(vars_src, &vars_copy).unwrap();
    let image = std::fs::File::create(out.join(&vm.image_file)).unwrap();
    image.set_len(64 << 20).unwrap();
    drop(image);

    let port = free_tcp_port().expect("a free TCP port");
    let cmd = Cmd::new("running start_vm.sh", &script)
        .args(["-snapshot", "-m", "1G"])
        .cwd("/")
        .env("MKIMG_VARS", &vars_copy)
        .env("MKIMG_SSH_PORT", port.to_string());
    // Checked while QEMU runs: when the boot manager shows up.
    let mut listening = None;
    let watched = watch(
        cmd,
        &[("EDK2 banner", BANNERS), ("boot manager", BOOT_MANAGER)],
        Duration::from_secs(240),
        &mut |marker| {
            if marker == "boot manager" {
                listening = Some(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
            }
        },
    );
    let text = &watched.text;
    assert!(
        watched.finished(),
        "{board}: EDK2 banner and boot manager within 240 s; reached {:?}, {:?}:\n{text}",
        watched.reached,
        watched.ending
    );
    assert_eq!(
        listening,
        Some(true),
        "{board}: nothing listens on the forwarded ssh port {port}:\n{text}"
    );
    eprintln!("{board}: saw {:?}", watched.reached);
}

#[test]
fn riscv64_script_boots_edk2() {
    smoke("qemu-riscv64");
}

#[test]
fn aarch64_script_boots_edk2() {
    smoke("qemu-aarch64");
}

#[test]
fn u_boot_board_loads_the_bios_image() {
    let (vm, text) = rendered("qemu-aarch64-uboot", ImageFormat::Qcow2);
    assert_eq!(vm.pflash, PflashWiring::Bios);
    assert_eq!(vm.firmware_code, "u-boot.bin");
    assert_eq!(vm.firmware_vars, None);
    assert!(
        text.contains("    -bios \"$here/u-boot.bin\" \\\n"),
        "{text}"
    );
    assert!(!text.contains("pflash"), "{text}");
    assert!(!text.contains("VARS"), "{text}");
}
