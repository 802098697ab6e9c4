//! One file per subcommand. Each `run` takes its parsed arguments, calls the
//! stages in order, and prints; errors go back to `main` as `anyhow` chains.

pub mod binfmt;
pub mod boards;
pub mod boot;
pub mod build;
pub mod completions;
pub mod inspect;
pub mod manpage;
pub mod plan;
pub mod rootfs;
pub mod table;
