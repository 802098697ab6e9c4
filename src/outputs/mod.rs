//! What lands in the output directory besides the image: firmware,
//! `start_vm.sh`, `manifest.json`, and the atomic publish.
//!
//! - [`start_vm`]: the QEMU launch script (pure text generator);
//! - [`manifest`]: manifest.json (pure text generator);
//! - [`firmware`]: firmware files copied next to the image;
//! - [`write`]: the stage itself: firmware, start_vm.sh and manifest.json
//!   into the staging directory, each hashed as it is written;
//! - [`publish`]: the atomic publish of the output directory.

pub mod firmware;
pub mod manifest;
pub mod publish;
pub mod start_vm;
pub mod write;
