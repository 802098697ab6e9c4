//! `start_vm.sh`: the script next to the image that boots it in QEMU,
//! rendered from `templates/start_vm.sh.j2`.
//!
//! Flows in: a [`StartVm`], usually from [`start_vm_from_plan`]. Flows out:
//! the script text; the build writes it (mode 0755) beside the image and
//! copies the firmware files next to it. Pure: no I/O.
//!
//! Contract (`mkimg boot` relies on it; keep it stable):
//! - works from any directory: files are found relative to the script's own
//!   directory (`here=$(cd "$(dirname "$0")" && pwd)`);
//! - UEFI firmware on pflash: riscv64 `virt` takes `-blockdev` nodes named
//!   `pflash0`/`pflash1` via `-M virt,pflash0=pflash0,pflash1=pflash1`,
//!   aarch64 takes `-drive if=pflash`; the code image is read-only;
//!   `[firmware] bios` (U-Boot) is loaded with `-bios` instead;
//! - `VARS=${MKIMG_VARS:-$here/<vars file>}`: a caller can substitute a
//!   throw-away copy. On riscv64 (`-blockdev`) `-snapshot` does not protect
//!   the variable store, so pass MKIMG_VARS for a pristine run;
//! - disk as virtio-blk-pci (both `virt` machines have PCIe and EDK2 drives
//!   it), virtio-rng-pci, user networking with `hostfwd=tcp::<port>-:22`,
//!   the port overridable with MKIMG_SSH_PORT;
//! - `-nographic`: the serial console on stdio;
//! - `"$@"` last, so extra QEMU arguments (e.g. `-snapshot`) pass through;
//! - `exec`, so signals reach QEMU.
//!
//! `romfile=` on virtio-net: EDK2 has its own virtio-net driver, and the
//! iPXE option ROM (`efi-virtio.rom`, package ipxe-qemu) is not installed on
//! a `--no-install-recommends` host; QEMU refuses to start without it.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::arch::Arch;
use crate::plan::{FirmwareLoad, Plan};
use crate::templates::render_template;

const TEMPLATE: &str = crate::templates::START_VM_SH;

/// The disk image format QEMU is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Qcow2,
    Raw,
}

impl ImageFormat {
    /// File extension and QEMU `format=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Raw => "raw",
        }
    }
}

/// How the firmware is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PflashWiring {
    /// `-blockdev node-name=pflash0…` + `-M …,pflash0=pflash0` (riscv64 virt).
    Blockdev,
    /// `-drive if=pflash` (aarch64 virt).
    Drive,
    /// `-bios FILE`: no flash, e.g. U-Boot on aarch64 `virt` (`[firmware] bios`).
    Bios,
}

/// Everything start_vm.sh says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartVm {
    /// Board name, for the header comment.
    pub board: String,
    /// e.g. `qemu-system-riscv64`.
    pub qemu_binary: String,
    /// `-M` value as the board gives it (pflash properties are added).
    pub machine: String,
    pub cpu: Option<String>,
    pub memory: String,
    pub smp: u32,
    /// Image file name next to the script, e.g. `qemu-riscv64.qcow2`.
    pub image_file: String,
    pub image_format: ImageFormat,
    /// Firmware code file name next to the script.
    pub firmware_code: String,
    /// Variable store file name next to the script.
    pub firmware_vars: Option<String>,
    pub pflash: PflashWiring,
    pub ssh_port: u16,
    /// Extra QEMU arguments from the board, each one shell word.
    pub extra: Vec<String>,
}

#[derive(Serialize)]
struct StartVmContext<'a> {
    board: &'a str,
    mkimg_version: &'a str,
    qemu_binary: &'a str,
    machine: String,
    cpu: Option<&'a str>,
    memory: &'a str,
    smp: u32,
    pflash: PflashWiring,
    code: &'a str,
    vars: Option<&'a str>,
    image: &'a str,
    format: &'a str,
    ssh_port: u16,
    extra: &'a [String],
}

/// Render start_vm.sh.
pub fn render_start_vm(vm: &StartVm) -> Result<String> {
    let mut files = vec![
        ("image", &vm.image_file),
        ("firmware code", &vm.firmware_code),
    ];
    files.extend(vm.firmware_vars.as_ref().map(|v| ("firmware vars", v)));
    for (what, name) in files {
        check_file_name(what, name)?;
    }
    let mut machine = vm.machine.clone();
    if vm.pflash == PflashWiring::Blockdev {
        machine.push_str(",pflash0=pflash0");
        if vm.firmware_vars.is_some() {
            machine.push_str(",pflash1=pflash1");
        }
    }
    let ctx = StartVmContext {
        board: &vm.board,
        mkimg_version: env!("CARGO_PKG_VERSION"),
        qemu_binary: &vm.qemu_binary,
        machine,
        cpu: vm.cpu.as_deref(),
        memory: &vm.memory,
        smp: vm.smp,
        pflash: vm.pflash,
        code: &vm.firmware_code,
        vars: vm.firmware_vars.as_deref(),
        image: &vm.image_file,
        format: vm.image_format.as_str(),
        ssh_port: vm.ssh_port,
        extra: &vm.extra,
    };
    Ok(render_template("start_vm.sh.j2", TEMPLATE, &ctx)?)
}

/// The script for `plan`'s `[qemu]` and `[firmware]`, booting
/// `<board.image>.<format>`.
pub fn start_vm_from_plan(plan: &Plan, image_format: ImageFormat) -> Result<StartVm> {
    let board = &plan.board.name;
    let qemu = plan
        .qemu
        .as_ref()
        .with_context(|| format!("board {board} has no [qemu] section; no start_vm.sh"))?;
    let firmware = plan.firmware.as_ref().with_context(|| {
        format!("board {board} has no [firmware] section; start_vm.sh needs UEFI firmware")
    })?;
    let file_name = |path: &std::path::Path| -> Result<String> {
        path.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .with_context(|| format!("firmware path {} has no file name", path.display()))
    };
    Ok(StartVm {
        board: board.to_string(),
        qemu_binary: format!("qemu-system-{}", plan.board.arch.qemu_name()),
        machine: qemu.machine.clone(),
        cpu: qemu.cpu.clone(),
        memory: qemu.memory.clone(),
        smp: qemu.smp,
        image_file: format!("{}.{}", plan.board.image, image_format.as_str()),
        image_format,
        firmware_code: file_name(&firmware.code)?,
        firmware_vars: firmware.vars.as_deref().map(file_name).transpose()?,
        pflash: match (firmware.load, plan.board.arch) {
            (FirmwareLoad::Bios, _) => PflashWiring::Bios,
            (FirmwareLoad::Pflash, Arch::Riscv64) => PflashWiring::Blockdev,
            (FirmwareLoad::Pflash, _) => PflashWiring::Drive,
        },
        ssh_port: qemu.ssh_port,
        extra: qemu.extra.clone(),
    })
}

/// File names are pasted inside `"$here/…"`: only characters that need no
/// quoting there are allowed.
fn check_file_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if !ok {
        bail!(
            "start_vm.sh: {what} file name {name:?} must be letters, digits, '.', '_', '+', '-' \
             (it is written into the script unquoted)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
