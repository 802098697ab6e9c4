use std::process::Command;

use super::Arch;

#[test]
fn parses_canonical_names_and_debian_aliases() {
    for &arch in Arch::all() {
        assert_eq!(arch.as_str().parse::<Arch>().unwrap(), arch);
        assert_eq!(arch.debian_arch().parse::<Arch>().unwrap(), arch);
        assert_eq!(arch.qemu_name().parse::<Arch>().unwrap(), arch);
        assert_eq!(arch.to_string(), arch.as_str());
    }
    assert_eq!("arm64".parse::<Arch>().unwrap(), Arch::Aarch64);
    assert_eq!("loong64".parse::<Arch>().unwrap(), Arch::Loongarch64);
    let err = "riscv".parse::<Arch>().unwrap_err().to_string();
    assert!(
        err.starts_with("unknown architecture \"riscv\": expected one of"),
        "{err}"
    );
    for &arch in Arch::all() {
        assert!(
            err.contains(arch.as_str()) && err.contains(arch.debian_arch()),
            "{err}"
        );
    }
}

#[test]
fn serde_uses_the_canonical_name_and_accepts_aliases() {
    let json = serde_json::to_string(&Arch::all()).unwrap();
    assert_eq!(
        json,
        r#"["riscv64","aarch64","arm","x86_64","ppc64le","s390x","loongarch64","mips64el"]"#
    );
    let back: Vec<Arch> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, Arch::all());
    let alias: Arch = serde_json::from_str(r#""ppc64el""#).unwrap();
    assert_eq!(alias, Arch::Ppc64le);
    let err = serde_json::from_str::<Arch>(r#""i386""#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown architecture \"i386\""), "{err}");
}

#[test]
fn elf_identity_maps_back_to_the_arch() {
    for &arch in Arch::all() {
        let back = Arch::from_elf(
            arch.elf_machine(),
            arch.elf_class64(),
            arch.elf_big_endian(),
        );
        assert_eq!(back, Some(arch));
    }
    // ppc64 big-endian and 32-bit MIPS are not ours.
    assert_eq!(Arch::from_elf(21, true, true), None);
    assert_eq!(Arch::from_elf(8, false, false), None);
}

#[test]
fn efi_file_and_grub_target_come_in_pairs() {
    for &arch in Arch::all() {
        assert_eq!(
            arch.efi_boot_file().is_some(),
            arch.grub_efi_target().is_some(),
            "{arch}"
        );
    }
}

/// systemd's own table (`systemd-id128 show`, systemd >= 249) is the oracle
/// for the Discoverable Partitions Specification root type GUIDs.
#[test]
fn root_partition_types_match_systemd() {
    let names = [
        (Arch::Riscv64, "root-riscv64"),
        (Arch::Aarch64, "root-arm64"),
        (Arch::Arm, "root-arm"),
        (Arch::X86_64, "root-x86-64"),
        (Arch::Ppc64le, "root-ppc64-le"),
        (Arch::S390x, "root-s390x"),
        (Arch::Loongarch64, "root-loongarch64"),
        (Arch::Mips64el, "root-mips64-le"),
    ];
    let out = match Command::new("systemd-id128")
        .args(["show", "--uuid"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap(),
        other => {
            crate::test_tools::skip_or_fail(format_args!(
                "systemd-id128 show unavailable: {other:?}"
            ));
            return;
        }
    };
    for (arch, name) in names {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("systemd-id128 show has no {name}"));
        let uuid = line.split_whitespace().nth(1).unwrap();
        assert_eq!(arch.root_partition_type().to_string(), uuid, "{arch}");
    }
}
