//! What lands in the output directory besides the image: firmware,
//! `start_vm.sh`, `manifest.json`, and the atomic publish.

pub mod firmware;
pub mod publish;
