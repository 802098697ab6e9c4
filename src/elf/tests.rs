//! ELF detection on real binaries: 64-byte header fixtures from Debian
//! packages (tests/fixtures/elf/README), and `readelf` as the oracle on
//! whatever ELF files this host has.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use super::{
    check_rootfs_arch, detect_elf, has_program_interpreter, ArchMismatch, ElfError, FloatAbi,
};
use crate::arch::Arch;
use crate::test_tools::skip_or_fail;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elf")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn detects_riscv64_lp64d_from_debian_dash() {
    let info = detect_elf(&fixture("dash-riscv64.elfhdr")).unwrap();
    assert_eq!(info.arch, Some(Arch::Riscv64));
    assert_eq!(info.machine, 243);
    assert!(info.class64 && info.little_endian);
    assert_eq!(info.riscv_float_abi, Some(FloatAbi::Double));
    assert_eq!(info.arm_hard_float, None);
    check_rootfs_arch(Arch::Riscv64, &info, "/usr/bin/dash").unwrap();
}

#[test]
fn detects_each_fixture_architecture() {
    let cases = [
        ("dash-arm64.elfhdr", Arch::Aarch64, 183, true, true),
        ("dash-armhf.elfhdr", Arch::Arm, 40, false, true),
        ("dash-s390x.elfhdr", Arch::S390x, 22, true, false),
        ("true-amd64.elfhdr", Arch::X86_64, 62, true, true),
    ];
    for (name, arch, machine, class64, little_endian) in cases {
        let info = detect_elf(&fixture(name)).unwrap();
        assert_eq!(info.arch, Some(arch), "{name}");
        assert_eq!(info.machine, machine, "{name}");
        assert_eq!(info.class64, class64, "{name}");
        assert_eq!(info.little_endian, little_endian, "{name}");
        assert_eq!(info.riscv_float_abi, None, "{name}");
        check_rootfs_arch(arch, &info, "/usr/bin/dash").unwrap();
    }
}

#[test]
fn arm_float_abi_comes_from_e_flags() {
    let hard = detect_elf(&fixture("dash-armhf.elfhdr")).unwrap();
    assert_eq!(hard.arm_hard_float, Some(true));
    let soft = detect_elf(&fixture("uboot-qemu_arm-softfloat.elfhdr")).unwrap();
    assert_eq!(soft.arch, Some(Arch::Arm));
    assert_eq!(soft.arm_hard_float, Some(false));
    let err = check_rootfs_arch(Arch::Arm, &soft, "/usr/bin/ls").unwrap_err();
    assert!(matches!(err, ArchMismatch::ArmSoftFloat { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("armel") && msg.contains("/usr/bin/ls") && msg.contains("armhf"),
        "{msg}"
    );
}

#[test]
fn wrong_arch_message_names_both() {
    let info = detect_elf(&fixture("dash-arm64.elfhdr")).unwrap();
    let err = check_rootfs_arch(Arch::Riscv64, &info, "/usr/bin/ls").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("rootfs is aarch64 (from /usr/bin/ls) but the board is riscv64"),
        "{msg}"
    );
    assert!(msg.contains("--architectures=riscv64"), "{msg}");
}

#[test]
fn riscv64_without_double_float_abi_is_refused() {
    // The real Debian header with EF_RISCV_FLOAT_ABI (e_flags bits 1-2, at
    // offset 48) rewritten: soft-float and single-float builds exist
    // (e.g. embedded toolchains) but cannot load Debian's lp64d libraries.
    for (bits, abi, name) in [
        (0u8, FloatAbi::Soft, "lp64"),
        (2, FloatAbi::Single, "lp64f"),
    ] {
        let mut header = fixture("dash-riscv64.elfhdr");
        header[48] = (header[48] & !0x6) | bits;
        let info = detect_elf(&header).unwrap();
        assert_eq!(info.riscv_float_abi, Some(abi));
        let msg = check_rootfs_arch(Arch::Riscv64, &info, "/usr/bin/true")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(name) && msg.contains("lp64d") && msg.contains("/usr/bin/true"),
            "{msg}"
        );
    }
}

#[test]
fn unsupported_elf_identity_has_no_arch() {
    // riscv64's header marked ELFCLASS32: riscv32, which mkimg does not build.
    let mut header = fixture("dash-riscv64.elfhdr");
    header[4] = 1;
    let info = detect_elf(&header).unwrap();
    assert_eq!(info.arch, None);
    assert_eq!(info.machine, 243);
    let msg = check_rootfs_arch(Arch::Riscv64, &info, "/bin/sh")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("e_machine 243, 32-bit, little-endian"),
        "{msg}"
    );
}

#[test]
fn malformed_headers_are_errors() {
    let header = fixture("dash-riscv64.elfhdr");
    assert!(matches!(
        detect_elf(&header[..40]),
        Err(ElfError::TooShort {
            len: 40,
            needed: 64
        })
    ));
    assert!(matches!(
        detect_elf(b"#!/bin/sh\n"),
        Err(ElfError::BadMagic { .. })
    ));
    let mut bad = header.clone();
    bad[5] = 3;
    assert!(matches!(detect_elf(&bad), Err(ElfError::BadData(3))));
    // A 52-byte ELF32 header is complete.
    assert!(detect_elf(&fixture("dash-armhf.elfhdr")[..52]).is_ok());
}

/// readelf's `Machine:` names for the e_machine values this host's files use.
fn readelf_machine(name: &str) -> Option<u16> {
    Some(match name {
        "Intel 80386" => 3,
        "MIPS R3000" => 8,
        "PowerPC" => 20,
        "PowerPC64" => 21,
        "IBM S/390" => 22,
        "ARM" => 40,
        "Advanced Micro Devices X86-64" => 62,
        "AArch64" => 183,
        "RISC-V" => 243,
        "LoongArch" => 258,
        _ => return None,
    })
}

#[test]
fn agrees_with_readelf_on_host_binaries() {
    let candidates = [
        "/bin/true",
        "/usr/bin/qemu-riscv64",
        "/usr/bin/qemu-aarch64",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/u-boot/qemu-riscv64/uboot.elf",
        "/usr/lib/u-boot/qemu_arm64/uboot.elf",
        "/usr/lib/u-boot/qemu_arm/uboot.elf",
        "/usr/lib/u-boot/qemu-x86/uboot.elf",
        "/usr/lib/u-boot/malta64el/uboot.elf",
        "/usr/lib/u-boot/qemu-ppce500/uboot.elf",
    ];
    if Command::new("readelf").arg("--version").output().is_err() {
        skip_or_fail("readelf (binutils) is not installed");
        return;
    }
    let mut compared = 0;
    for path in candidates.iter().filter(|p| Path::new(p).exists()) {
        let out = Command::new("readelf")
            .args(["-hlW", path])
            .output()
            .unwrap();
        assert!(out.status.success(), "readelf -hlW {path} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| panic!("{path}: readelf printed no {key}"))
        };
        let bytes = std::fs::read(path).unwrap();
        let info = detect_elf(&bytes[..64]).unwrap();
        assert_eq!(info.class64, field("Class:") == "ELF64", "{path}");
        assert_eq!(
            info.little_endian,
            field("Data:").contains("little endian"),
            "{path}"
        );
        if let Some(machine) = readelf_machine(&field("Machine:")) {
            assert_eq!(info.machine, machine, "{path}");
        }
        let flags = field("Flags:");
        let flags = u32::from_str_radix(
            flags.split(',').next().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        if let Some(abi) = info.riscv_float_abi {
            assert_eq!(abi == FloatAbi::Double, flags & 0x6 == 0x4, "{path}");
        }
        if let Some(hard) = info.arm_hard_float {
            assert_eq!(hard, flags & 0x400 != 0, "{path}");
        }
        let readelf_interp = text.lines().any(|l| l.trim_start().starts_with("INTERP "));
        let mut file = File::open(path).unwrap();
        assert_eq!(
            has_program_interpreter(&mut file).unwrap(),
            readelf_interp,
            "{path}"
        );
        compared += 1;
    }
    eprintln!("compared {compared} host ELF files with readelf");
    assert!(
        compared >= 2,
        "expected at least /bin/true and one more ELF file on the host"
    );
}

#[test]
fn qemu_static_has_no_interpreter_and_true_has_one() {
    let mut dynamic = File::open("/bin/true").unwrap();
    assert!(has_program_interpreter(&mut dynamic).unwrap());
    let qemu = "/usr/libexec/qemu-binfmt/riscv64-binfmt-P";
    match File::open(qemu) {
        Ok(mut file) => assert!(!has_program_interpreter(&mut file).unwrap()),
        Err(e) => {
            skip_or_fail(format_args!("{qemu}: {e} (install qemu-user-static)"));
        }
    }
}

#[test]
fn truncated_program_header_table_is_an_error() {
    // The 64-byte fixture promises program headers past its end.
    let mut cursor = std::io::Cursor::new(fixture("dash-arm64.elfhdr"));
    assert!(matches!(
        has_program_interpreter(&mut cursor),
        Err(ElfError::ReadProgramHeaders { offset: 64, .. })
    ));
}

/// `readelf -lWd`'s program interpreter and NEEDED sonames of `path`.
fn readelf_dynamic(path: &str) -> (Option<String>, Vec<String>) {
    let out = Command::new("readelf")
        .args(["-lWd", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "readelf -lWd {path} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let interp = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("[Requesting program interpreter: ")
            .and_then(|rest| rest.strip_suffix(']'))
            .map(str::to_owned)
    });
    // " 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]"
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.strip_suffix(']').map(str::to_owned))
        .collect();
    (interp, needed)
}

#[test]
fn dynamic_section_agrees_with_readelf_on_host_binaries() {
    if Command::new("readelf").arg("--version").output().is_err() {
        skip_or_fail("readelf (binutils) is not installed");
        return;
    }
    let candidates = [
        "/bin/true",
        "/usr/bin/sed",
        "/usr/bin/grep",
        "/usr/bin/dash",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libselinux.so.1",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/bin/busybox",
        "/usr/libexec/qemu-binfmt/riscv64-binfmt-P",
    ];
    let mut with_needed = 0;
    for path in candidates.iter().filter(|p| Path::new(p).exists()) {
        let real = std::fs::canonicalize(path).unwrap();
        let real = real.to_str().unwrap();
        let found = super::dynamic::read_dynamic(&std::fs::read(real).unwrap()).unwrap();
        let (interp, needed) = readelf_dynamic(real);
        assert_eq!(found.interpreter, interp, "{real}");
        assert_eq!(found.needed, needed, "{real}");
        with_needed += usize::from(!needed.is_empty());
    }
    assert!(
        with_needed >= 2,
        "expected /bin/true and one more dynamic ELF file"
    );
}

#[test]
fn dynamic_section_of_a_damaged_file_is_an_error_not_a_panic() {
    let bytes = std::fs::read("/bin/true").unwrap();
    let whole = super::dynamic::read_dynamic(&bytes).unwrap();
    assert!(
        whole.needed.iter().any(|n| n.starts_with("libc.so")),
        "{whole:?}"
    );
    // Cut anywhere: the tables, the interpreter or the strings go missing.
    let mut errors = 0;
    for len in (0..bytes.len()).step_by(97) {
        if super::dynamic::read_dynamic(&bytes[..len]).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0);
    // A header alone: its program header table lies past the end.
    assert!(matches!(
        super::dynamic::read_dynamic(&fixture("dash-arm64.elfhdr")),
        Err(ElfError::BadDynamic(_))
    ));
}
