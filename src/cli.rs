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

    /// Boot a build output directory in QEMU (`DIR/start_vm.sh -snapshot`,
    /// with a throw-away copy of the UEFI variable store) and watch the serial
    /// console: print when each boot marker is reached, optionally log in and
    /// run a command, then power off. Exits 0 only if every required marker
    /// was reached in time and the command exited 0; otherwise lists the
    /// markers reached and missed and the last lines of the console.
    ///
    /// Markers: sbi (OpenSBI), firmware (EDK2, U-Boot), grub, kernel, root
    /// (ext4 root mounted), multi-user, login (the getty prompt).
    ///
    /// Example:
    ///   mkimg boot output/qemu-riscv64 --login root:root --run 'uname -a'
    ///   mkimg boot output/board --markers firmware,kernel --expect '(initramfs)' --log console.txt
    #[command(verbatim_doc_comment)]
    Boot(BootArgs),
}

#[derive(Debug, Args)]
pub struct BootArgs {
    /// Build output directory: start_vm.sh, the image, the firmware files.
    pub dir: PathBuf,

    /// Seconds from start to the end of --run before giving up.
    #[arg(long, default_value_t = 300, value_name = "S")]
    pub timeout: u64,

    /// Built-in markers that must be reached, comma-separated (others are
    /// reported when seen; empty for none).
    #[arg(long, value_delimiter = ',', default_values = crate::host::console::DEFAULT_REQUIRED)]
    pub markers: Vec<String>,

    /// Text the console must print (repeatable). Without --login, --run
    /// starts once every required marker is reached: expect the prompt.
    #[arg(long, value_name = "TEXT")]
    pub expect: Vec<String>,

    /// Log in on the console when it prints `login:`.
    #[arg(long, value_name = "USER:PASS")]
    pub login: Option<crate::host::console::Login>,

    /// Shell command to run once booted (and logged in); its output goes to
    /// stdout and its exit status decides mkimg's.
    #[arg(long, value_name = "CMD")]
    pub run: Option<String>,

    /// Which *VARS*.fd file of DIR to copy, when there are several.
    #[arg(long, value_name = "NAME")]
    pub vars: Option<String>,

    /// Write the raw console output (escapes and all) to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
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
