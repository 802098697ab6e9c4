//! Boot loader configuration generators (grub.cfg, extlinux.conf): pure
//! functions from the plan and what the rootfs holds to text.
//!
//! - [`kernels`]: which kernels `/boot` holds, newest first;
//! - [`default_grub`]: `/etc/default/grub` and os-release read without
//!   running them;
//! - [`grub`], [`extlinux`]: the configs, rendered from `templates/`;
//! - [`template`]: the one minijinja set-up every generator shares.

pub mod default_grub;
pub mod esp;
pub mod extlinux;
pub mod grub;
pub mod kernels;
pub mod lint;
pub mod template;

#[cfg(test)]
pub(crate) mod golden;
