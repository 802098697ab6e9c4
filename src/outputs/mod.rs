//! What lands in the output directory besides the image: firmware,
//! `start_vm.sh`, `manifest.json`, and the atomic publish.
//!
//! - [`start_vm`]: the QEMU launch script (pure text generator);
//! - [`manifest`]: manifest.json (pure text generator).

pub mod manifest;
pub mod start_vm;

#[cfg(test)]
pub(crate) mod console;
