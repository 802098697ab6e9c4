//! grub.cfg: golden text for qemu-riscv64 (two kernels, /boot on the root
//! filesystem) and a board with a separate /boot; `grub-script-check`
//! (grub-common) as the syntax oracle; the no-kernel error.

use super::{grub_config_from_plan, render_grub_cfg};
use crate::bootloader::golden::{assert_golden, builtin_plan, plan_from_toml, SEPARATE_BOOT_BOARD};
use crate::test_tools::find_tool;

const DEFAULT_GRUB: &str = "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n\
GRUB_DISTRIBUTOR=`( . /etc/os-release; echo ${NAME:-Debian} ) 2>/dev/null || echo Debian`\n\
GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n";

const OS_RELEASE: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n";

fn riscv64_boot() -> Vec<String> {
    [
        "config-6.12.9+deb13-riscv64",
        "initrd.img-6.12.9+deb13-riscv64",
        "vmlinuz-6.12.9+deb13-riscv64",
        "System.map-6.12.9+deb13-riscv64",
        "config-6.12.48+deb13-riscv64",
        "initrd.img-6.12.48+deb13-riscv64",
        "vmlinuz-6.12.48+deb13-riscv64",
        "System.map-6.12.48+deb13-riscv64",
        "efi",
        "grub",
    ]
    .map(str::to_string)
    .to_vec()
}

/// grub-script-check's verdict on `text`: `None` when the tool is missing
/// (skip), else `Ok` or `Err(its output)`.
fn grub_script_check(text: &str) -> Option<Result<(), String>> {
    let tool = find_tool("grub-script-check")?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grub.cfg");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(tool)
        .arg(&file)
        .output()
        .unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

#[test]
fn qemu_riscv64_two_kernels() {
    let plan = builtin_plan("qemu-riscv64");
    let config =
        grub_config_from_plan(&plan, &riscv64_boot(), Some(DEFAULT_GRUB), Some(OS_RELEASE))
            .unwrap();
    assert_eq!(config.distributor, "Debian GNU/Linux");
    assert_eq!(config.boot_prefix, "/boot");
    assert_eq!(config.boot_fs_uuid, config.root_uuid);
    assert_eq!(config.cmdline, "quiet console=ttyS0");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let text = render_grub_cfg(&config).unwrap();
    assert_golden("grub.cfg.qemu-riscv64", &text);
    if let Some(verdict) = grub_script_check(&text) {
        verdict.unwrap_or_else(|e| panic!("grub-script-check rejected:\n{e}\n{text}"));
    }
}

/// The image's /etc/default/grub carries the board's arguments already
/// (board_args.rs): grub.cfg has them once, where grub-mkconfig would put
/// them; an argument the distro's GRUB_CMDLINE_LINUX gives is not repeated.
#[test]
fn board_arguments_in_default_grub_are_not_repeated() {
    let plan = builtin_plan("qemu-riscv64");
    let merged =
        crate::bootloader::board_args::merge_board_args(DEFAULT_GRUB.as_bytes(), "console=ttyS0")
            .unwrap()
            .unwrap();
    let merged = String::from_utf8(merged).unwrap();
    let config =
        grub_config_from_plan(&plan, &riscv64_boot(), Some(&merged), Some(OS_RELEASE)).unwrap();
    assert_eq!(config.cmdline, "console=ttyS0 quiet");
    let distro = "GRUB_CMDLINE_LINUX=\"console=ttyS0 rootwait\"\n";
    let config = grub_config_from_plan(&plan, &riscv64_boot(), Some(distro), None).unwrap();
    assert_eq!(config.cmdline, "console=ttyS0 rootwait");
}

#[test]
fn separate_boot_uses_boot_fs_and_no_prefix() {
    let plan = plan_from_toml(SEPARATE_BOOT_BOARD);
    let boot = ["vmlinuz-6.12.48+deb13-riscv64", "lost+found"].map(str::to_string);
    let config = grub_config_from_plan(&plan, &boot, None, None).unwrap();
    assert_eq!(config.boot_prefix, "");
    assert_eq!(config.boot_fs_uuid, "626f6f74-0000-4000-8000-000000000001");
    assert_eq!(config.root_uuid, "726f6f74-0000-4000-8000-000000000002");
    assert_eq!((config.distributor.as_str(), config.timeout), ("Debian", 5));
    let text = render_grub_cfg(&config).unwrap();
    assert_golden("grub.cfg.sep-boot", &text);
    assert!(text.contains("\tlinux\t/vmlinuz-6.12.48+deb13-riscv64 root=UUID=726f6f74-0000-4000-8000-000000000002 ro console=ttyS0\n"));
    assert!(
        !text.contains("initrd\t"),
        "no initrd in /boot, no initrd line"
    );
    if let Some(verdict) = grub_script_check(&text) {
        verdict.unwrap_or_else(|e| panic!("grub-script-check rejected:\n{e}\n{text}"));
    }
}

/// The oracle is not vacuous: an unbalanced brace is rejected.
#[test]
fn grub_script_check_rejects_broken_config() {
    let plan = builtin_plan("qemu-riscv64");
    let config = grub_config_from_plan(&plan, &riscv64_boot(), None, None).unwrap();
    let text = render_grub_cfg(&config).unwrap();
    let broken = text.replacen("\n}\n", "\n\n", 1);
    if let Some(verdict) = grub_script_check(&broken) {
        assert!(verdict.is_err(), "grub-script-check accepted:\n{broken}");
    }
}

#[test]
fn no_kernel_names_boot_and_lists_it() {
    let plan = builtin_plan("qemu-riscv64");
    let boot = ["config-6.12.48+deb13-riscv64", "grub", "efi"].map(str::to_string);
    let err = grub_config_from_plan(&plan, &boot, None, None).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("no kernel in /boot"), "{text}");
    assert!(
        text.contains("/boot holds: config-6.12.48+deb13-riscv64, efi, grub"),
        "{text}"
    );
    let err = grub_config_from_plan(&plan, &[], None, None).unwrap_err();
    assert!(format!("{err:#}").contains("/boot is empty"), "{err:#}");
}

#[test]
fn empty_menu_is_refused() {
    let plan = builtin_plan("qemu-riscv64");
    let mut config = grub_config_from_plan(&plan, &riscv64_boot(), None, None).unwrap();
    config.kernels.clear();
    assert!(render_grub_cfg(&config).is_err());
}

/// A crafted rootfs: /etc/default/grub arguments that are GRUB script, an
/// os-release NAME with a newline, and a kernel file name with a newline.
/// None of it may become a GRUB command.
#[test]
fn rootfs_text_cannot_inject_grub_commands() {
    let plan = builtin_plan("qemu-riscv64");
    let default_grub = "GRUB_DISTRIBUTOR=\"Evil\nset root=(hd9)\"\n\
        GRUB_CMDLINE_LINUX='quiet; insmod evil $x }'\n";
    let mut boot = riscv64_boot();
    boot.push("vmlinuz-6.99\nlinux /evil".to_string());
    boot.push("vmlinuz-6.98 evil".to_string());
    let config = grub_config_from_plan(&plan, &boot, Some(default_grub), None).unwrap();
    let text = render_grub_cfg(&config).unwrap();
    assert!(!text.contains("6.99") && !text.contains("6.98"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("set root=")),
        "{text}"
    );
    assert!(
        text.contains(" 'quiet;' insmod evil '$x' '}' console=ttyS0\n"),
        "{text}"
    );
    if let Some(verdict) = grub_script_check(&text) {
        verdict.unwrap_or_else(|e| panic!("grub-script-check rejected:\n{e}\n{text}"));
    }
}
