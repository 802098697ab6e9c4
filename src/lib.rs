//! mkimg builds bootable disk images for boards and virtual machines from a
//! board definition and a rootfs tarball, without root where no emulation is
//! needed, byte-reproducibly.
//!
//! # Pipeline
//!
//! Each stage takes the previous stage's type; the folder names read in the
//! order the data flows:
//!
//! ```text
//! board/        board.toml as typed (serde, deny_unknown_fields)      -> Board
//! genimage/     a genimage.cfg, parsed and typed (beside board/)       -> genimage::Config
//! plan/         resolved offsets, sizes, identities; validated         -> Plan
//! rootfs/       the tarball as one stream: checks, edits, the split    -> per-partition contents
//! bootloader/   grub.cfg / extlinux.conf generators
//! filesystems/  vfat (library), ext4 (mke2fs)                          -> partition images
//! disk/         partition tables (pure writers), assembly, sinks       -> raw / qcow2
//!               (qcow2 itself: the workspace crate crates/qcow2)
//! outputs/      firmware, start_vm.sh, manifest.json, atomic publish
//! host/         the only code that spawns processes or touches kernel objects
//! templates     the embedded templates (grub.cfg, extlinux.conf, start_vm.sh,
//!               mke2fs.conf) and their renderer, shared by bootloader/ and outputs/
//! commands/     one file per subcommand; `build` is the chain of stages
//! repro/        `build --verify-repro`: two builds' outputs compared, each
//!               difference traced to a partition and a file or structure
//! ```
//!
//! Before the pipeline, when no `--rootfs` is given: `bootstrap/` makes the
//! tarball from the board's `[rootfs]` recipe (mmdebstrap or dnf under
//! qemu-user, cached by recipe) — `rootfs/` consumes a tarball, `bootstrap/`
//! produces one. `mkimg rootfs` runs only that step.
//!
//! After it, `mkimg flash` takes a build's output to a card:
//! `disk::bmap::read` parses the block map (hostile input), `host::busy`
//! and `host::target` refuse and open the device, `disk::flash` writes the
//! mapped ranges and reads them back.
//!
//! Beside them, used by several stages: `digest` (SHA-256 as recorded, and
//! the hashers that digest outputs while they are written), `arch`, `elf`,
//! `context` (the clock and the seed).
//!
//! Stages call downward only. Format writers do I/O only through their
//! `Read + Write + Seek` argument.

pub mod arch;
pub mod board;
pub mod bootloader;
pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod context;
pub mod digest;
pub mod disk;
pub mod elf;
pub mod filesystems;
pub mod genimage;
pub mod host;
pub mod outputs;
pub mod plan;
pub mod repro;
pub mod rootfs;
pub mod templates;

/// The one meaning of `MKIMG_REQUIRE_TOOLS` (skip or fail when a test's
/// tool, file or privilege is missing), shared with the integration tests:
/// see the file's own doc for why it is included rather than a module here.
#[cfg(test)]
#[path = "../tests/support/tools.rs"]
pub(crate) mod test_tools;
