//! Boot loader configuration (grub.cfg, extlinux.conf): pure generators
//! from the plan and what the rootfs holds to text, and the one stage that
//! asks the distro's own tool instead (`--grub mkconfig`).
//!
//! - [`detect`]: what the rootfs says about booting it (distro, grub
//!   binary and its prefix, BLS entries, kernels, grub-mkconfig), read
//!   from the captures of the one rootfs pass;
//! - [`kernels`]: which kernels `/boot` holds, newest first;
//! - [`bls`]: Boot Loader Specification entries (`/boot/loader/entries`);
//!   [`bls_options`]: the image's entries rewritten (by the rootfs pass)
//!   to boot this image: the plan's `root=`, the board's arguments;
//! - [`grub_image`]: the prefix, embedded config and modules a grub EFI
//!   binary carries, read from its bytes;
//! - [`default_grub`]: `/etc/default/grub` and os-release read without
//!   running them;
//! - [`board_args`]: the board's kernel arguments written into the
//!   image's own `/etc/default/grub` (by the rootfs pass), so the target's
//!   update-grub keeps them;
//! - [`grub_packages`]: what `--grub mkconfig` needs of the rootfs,
//!   checked right after the rootfs pass, naming the missing package;
//! - [`grub`], [`extlinux`]: the configs, rendered from `templates/`;
//! - [`mkconfig`]: grub.cfg by the distro's grub-mkconfig in a sandbox
//!   over the part of the root filesystem it reads (rootless; or, as a
//!   fallback for root, over the finished filesystem mounted from a loop
//!   device) — the one part that runs programs, through `host` — checked
//!   by [`lint`]; [`probe`]: grub-probe's questions answered from the plan
//!   there;
//! - the templates and their minijinja set-up are `crate::templates`,
//!   shared with `outputs` (start_vm.sh);
//! - [`place`]: the small writer that puts extlinux.conf on its partition.

pub mod bls;
pub mod bls_options;
pub mod board_args;
pub mod default_grub;
pub mod detect;
pub mod esp;
pub mod extlinux;
pub mod grub;
pub mod grub_image;
pub mod grub_packages;
pub mod kernels;
pub mod lint;
pub mod mkconfig;
pub mod place;
pub mod probe;

#[cfg(test)]
pub(crate) mod golden;
