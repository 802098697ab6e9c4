//! The command line, as clap derive structs. Their doc comments are the
//! `--help` text; every subcommand's help ends with an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arch::Arch;

/// Build bootable, reproducible disk images for boards and virtual machines.
#[derive(Debug, Parser)]
#[command(name = "mkimg", version, propagate_version = true)]
pub struct Cli {
    /// Print every external command before it runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the known boards with a one-line description.
    ///
    /// Boards are looked up in $MKIMG_BOARDS (colon-separated), then
    /// ~/.config/mkimg/boards, then the built-in boards/ directory.
    ///
    /// Example:
    ///   mkimg boards
    #[command(verbatim_doc_comment)]
    Boards(BoardsArgs),

    /// Show the resolved disk layout of a board: every region with its start
    /// and end in bytes and sectors, size, type, UUIDs and label.
    ///
    /// Example:
    ///   mkimg plan --board qemu-riscv64
    ///   mkimg plan --board ./my-board/board.toml --json | jq .layout.partitions
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),

    /// Read the partition table (MBR, GPT, hybrid) of an image back and print
    /// the same table as `mkimg plan`.
    ///
    /// Example:
    ///   mkimg inspect output/qemu-riscv64/qemu-riscv64.raw
    ///   mkimg inspect disk.img --sector-size 4096 --json
    #[command(verbatim_doc_comment)]
    Inspect(InspectArgs),

    /// Show, register or unregister the binfmt_misc entries (qemu-user-static)
    /// that let programs of another architecture run in a chroot.
    ///
    /// Example:
    ///   mkimg binfmt status riscv64 aarch64
    ///   sudo mkimg binfmt register riscv64
    #[command(verbatim_doc_comment)]
    Binfmt(BinfmtArgs),
}

#[derive(Debug, Args)]
pub struct BinfmtArgs {
    #[command(subcommand)]
    pub action: BinfmtAction,
}

#[derive(Debug, Subcommand)]
pub enum BinfmtAction {
    /// Whether each architecture can run target programs in a chroot; exits
    /// non-zero if an architecture asked for cannot.
    ///
    /// Example:
    ///   mkimg binfmt status riscv64 --json
    #[command(verbatim_doc_comment)]
    Status {
        /// Architectures to check (default: all known, exit status 0).
        arches: Vec<Arch>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register qemu-user-static for architectures, with the F flag (needs root).
    ///
    /// Example:
    ///   sudo mkimg binfmt register riscv64 aarch64
    #[command(verbatim_doc_comment)]
    Register {
        #[arg(required = true)]
        arches: Vec<Arch>,
        /// Interpreter to register (default: Debian's qemu-user-static).
        #[arg(long)]
        interpreter: Option<PathBuf>,
        /// Replace an existing entry with another interpreter or without F.
        #[arg(long)]
        force: bool,
    },
    /// Remove the entries of architectures (needs root).
    ///
    /// Example:
    ///   sudo mkimg binfmt unregister s390x
    #[command(verbatim_doc_comment)]
    Unregister {
        #[arg(required = true)]
        arches: Vec<Arch>,
    },
}

#[derive(Debug, Args)]
pub struct BoardsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Board name (see `mkimg boards`) or path to a board.toml.
    #[arg(long, short)]
    pub board: String,

    /// Seed for identities the board does not fix (partition GUIDs, disk GUID…).
    #[arg(long, default_value = crate::plan::identity::DEFAULT_SEED)]
    pub seed: String,

    /// Print the plan as JSON (every number in bytes).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Disk image (raw) to read.
    pub image: PathBuf,

    /// Logical sector size the image was written with.
    #[arg(long, default_value_t = 512)]
    pub sector_size: u64,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
