//! The settings around the disk: the firmware `start_vm.sh` loads, the
//! QEMU machine, and the edits applied to the rootfs stream — with their
//! defaults, and every host path kept where the board may name files
//! (`board::paths`). Pure apart from that path check.

use toml::Spanned;

use crate::board::paths::{resolve_board_path, Allowed};
use crate::board::Board;
use crate::plan::layout::Problem;
use crate::plan::{EditsPlan, FirmwareLoad, FirmwarePlan, QemuPlan};

/// `[firmware]`: UEFI code (and vars) on pflash, or an image for `-bios`.
pub fn plan_firmware(board: &Board, problems: &mut Vec<Problem>) -> Option<FirmwarePlan> {
    let spanned = board.file.firmware.as_ref()?;
    let f = spanned.get_ref();
    let (code, load) = match (&f.code, &f.bios) {
        (Some(code), None) => (code, FirmwareLoad::Pflash),
        (None, Some(bios)) if f.vars.is_none() => (bios, FirmwareLoad::Bios),
        _ => {
            problems.push(
                Problem::error(
                    "[firmware] needs exactly one of code (UEFI on pflash, with optional \
                     vars) and bios (an image for -bios, without vars)",
                )
                .at(board.locate(spanned.span()))
                .with_fix("code = \"/usr/share/AAVMF/AAVMF_CODE.fd\" or bios = \"/usr/lib/u-boot/qemu_arm64/u-boot.bin\""),
            );
            return None;
        }
    };
    let mut firmware_path = |key: &str, field: &Spanned<String>| {
        resolve_board_path(&board.dir, field.get_ref(), Allowed::BoardDirOrFirmware)
            .map_err(|err| {
                problems.push(
                    Problem::error(format!("[firmware] {key}: {err}"))
                        .at(board.locate(field.span()))
                        .with_fix(
                            "name the distribution's firmware file (e.g. \
                             /usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd) or one in the board \
                             directory",
                        ),
                );
            })
            .ok()
    };
    let key = match load {
        FirmwareLoad::Pflash => "code",
        FirmwareLoad::Bios => "bios",
    };
    let code = firmware_path(key, code);
    let vars = match &f.vars {
        Some(v) => Some(firmware_path("vars", v)?),
        None => None,
    };
    Some(FirmwarePlan {
        code: code?,
        vars,
        package: f.package.clone(),
        load,
    })
}

/// `[qemu]` with its defaults.
pub fn plan_qemu(board: &Board) -> Option<QemuPlan> {
    board.file.qemu.as_ref().map(|q| QemuPlan {
        machine: q.machine.clone(),
        cpu: q.cpu.clone(),
        memory: q.memory.clone().unwrap_or_else(|| "2G".to_string()),
        smp: q.smp.unwrap_or(2),
        ssh_port: q.ssh_port.unwrap_or(2222),
        extra: q.extra.clone(),
    })
}

/// `[edits]` with its defaults; the overlay stays inside the board directory.
pub fn plan_edits(board: &Board, problems: &mut Vec<Problem>) -> EditsPlan {
    let edits_section = board.file.edits.as_ref();
    EditsPlan {
        remove: edits_section
            .and_then(|e| e.remove.clone())
            .unwrap_or_else(|| vec!["/.dockerenv".to_string(), "/etc/resolv.conf".to_string()]),
        overlay: edits_section
            .and_then(|e| e.overlay.as_ref())
            .and_then(|o| {
                resolve_board_path(&board.dir, o.get_ref(), Allowed::BoardDir)
                    .map_err(|err| {
                        problems.push(
                            Problem::error(format!("[edits] overlay: {err}"))
                                .at(board.locate(o.span()))
                                .with_fix("keep the overlay tree inside the board directory"),
                        );
                    })
                    .ok()
            }),
    }
}
