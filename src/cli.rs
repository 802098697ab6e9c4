//! The command line, as clap derive structs. Their doc comments are the
//! `--help` text; every subcommand's help ends with an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arch::Arch;
use crate::board::recipe::Distro;

/// Build bootable, reproducible disk images for boards and virtual machines.
///
/// `mkimg --board NAME [build options]` is the same as `mkimg build --board NAME`.
///
/// Example:
///   mkimg --board qemu-riscv64
///   mkimg build --board qemu-aarch64 --rootfs rootfs-arm64.tar.zst --format raw,qcow2
#[derive(Debug, Parser)]
#[command(
    name = "mkimg",
    version,
    propagate_version = true,
    verbatim_doc_comment,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Print every external command before it runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Without a subcommand: build (`mkimg --board X` = `mkimg build --board X`).
    #[command(flatten)]
    pub build: Option<BuildArgs>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the board's image from a rootfs tarball: partitions, filesystems,
    /// boot loader configuration, qcow2/raw, firmware, start_vm.sh and
    /// manifest.json in the output directory. Rootless in template mode.
    ///
    /// Example:
    ///   mkimg build --board qemu-riscv64 --rootfs rootfs.tar
    ///   mkimg build --board qemu-aarch64 --format raw,qcow2 --output /srv/images/arm64
    #[command(verbatim_doc_comment)]
    Build(BuildArgs),

    /// List the known boards with a one-line description.
    ///
    /// Boards are looked up in $MKIMG_BOARDS (colon-separated), then
    /// ~/.config/mkimg/boards, then the boards built into mkimg (whose
    /// blobs are read from ~/.config/mkimg/boards/NAME/, or --blob).
    ///
    /// Example:
    ///   mkimg boards
    #[command(verbatim_doc_comment)]
    Boards(BoardsArgs),

    /// Show the resolved disk layout of a board: every region with its start
    /// and end in bytes and sectors, size, type, UUIDs and label, and how
    /// it boots. Takes `build`'s --grub, --bootloader and --blob, and
    /// refuses what `build` would refuse.
    ///
    /// With --genimage, each hdimage of a genimage.cfg is planned the same
    /// way (problems cite the genimage.cfg line) and its other images are
    /// listed; nothing is written.
    ///
    /// Example:
    ///   mkimg plan --board qemu-riscv64
    ///   mkimg plan --board qemu-aarch64 --bootloader extlinux
    ///   mkimg plan --board ./my-board/board.toml --json | jq .layout.partitions
    ///   mkimg plan --genimage board/genimage.cfg --inputpath images
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),

    /// Print a genimage.cfg's hdimage as a board.toml: the layout genimage
    /// derives written out, a comment for each option without a board.toml
    /// key and for each image it holds (a native board builds those from
    /// the rootfs). Refuses what `build --genimage` refuses.
    ///
    /// Example:
    ///   mkimg import-genimage board/genimage.cfg --inputpath images > board.toml
    ///   mkimg import-genimage genimage.cfg --image sdcard.img
    #[command(verbatim_doc_comment)]
    ImportGenimage(ImportGenimageArgs),

    /// Read the partition table (MBR, GPT, hybrid) of an image back and print
    /// the same table as `mkimg plan`.
    ///
    /// Example:
    ///   mkimg inspect output/qemu-riscv64/qemu-riscv64.qcow2
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

    /// Bootstrap a root filesystem tarball for a target architecture.
    ///
    /// Debian runs mmdebstrap under qemu-user binfmt; openEuler and Fedora run
    /// dnf --forcearch. Results are cached by recipe in
    /// $XDG_CACHE_HOME/mkimg/rootfs (else ~/.cache/mkimg/rootfs); a second run
    /// returns at once.
    ///
    /// Example:
    ///   mkimg rootfs --distro debian --suite trixie --arch riscv64 -o rootfs.tar
    ///   mkimg rootfs --board qemu-riscv64 --packages openssh-server,vim
    #[command(verbatim_doc_comment)]
    Rootfs(RootfsArgs),
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

    /// Write an image to a block device (an SD card, a USB stick) or a file:
    /// only the blocks its block map (IMAGE.raw.bmap) marks as data, then
    /// read them back and check them against the map's SHA-256s.
    ///
    /// The source is a build output directory (the image is picked in the
    /// order raw, raw.zst, raw.xz, raw.gz) or an image file (its .bmap is
    /// looked for as bmaptool does: IMAGE.bmap, then one extension stripped
    /// at a time; without one, --nobmap writes every block). Refuses, before writing anything: a device that is mounted,
    /// holds the running system or is swap (or has a partition that is); a
    /// target smaller than the image; the image itself.
    ///
    /// Example:
    ///   sudo mkimg flash output/rock3a /dev/sdX
    ///   mkimg flash output/rock3a/rock3a.raw.zst card.img
    #[command(verbatim_doc_comment)]
    Flash(FlashArgs),

    /// Print a shell completion script for mkimg to standard output.
    ///
    /// Example:
    ///   mkimg completions bash > ~/.local/share/bash-completion/completions/mkimg
    ///   mkimg completions zsh > ~/.zfunc/_mkimg
    ///   mkimg completions fish > ~/.config/fish/completions/mkimg.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),

    /// Print the mkimg(1) manual page, or a subcommand's mkimg-NAME(1),
    /// as roff to standard output.
    ///
    /// Example:
    ///   mkimg manpage > ~/.local/share/man/man1/mkimg.1
    ///   mkimg manpage build | man -l -
    #[command(verbatim_doc_comment)]
    Manpage(ManpageArgs),
}

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// A build output directory, or an image: .raw, .raw.zst, .raw.xz, .raw.gz.
    #[arg(value_name = "OUTPUT_DIR|IMAGE")]
    pub source: PathBuf,

    /// The block device or file to write (a file is created if missing).
    #[arg(value_name = "DEVICE")]
    pub target: PathBuf,

    /// The block map to use instead of the one found beside the image.
    #[arg(long, value_name = "FILE", conflicts_with = "nobmap")]
    pub bmap: Option<PathBuf>,

    /// Write the whole image without a block map (slower; the read-back
    /// then checks against what was read from the image).
    #[arg(long)]
    pub nobmap: bool,

    /// Do not read the written blocks back to check them.
    #[arg(long)]
    pub no_verify: bool,

    /// Tests only: the mount table to check instead of /proc/self/mountinfo.
    #[arg(
        long,
        hide = true,
        value_name = "FILE",
        default_value = "/proc/self/mountinfo"
    )]
    pub mount_table: PathBuf,

    /// Tests only: the swap table to check instead of /proc/swaps.
    #[arg(long, hide = true, value_name = "FILE", default_value = "/proc/swaps")]
    pub swaps: PathBuf,

    /// Tests only: the sysfs to read devices from instead of /sys.
    #[arg(long, hide = true, value_name = "DIR", default_value = "/sys")]
    pub sysfs: PathBuf,
}

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// A subcommand (build, plan, …): print its page instead of mkimg(1).
    pub subcommand: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
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

    /// Read and write the binfmt.d directories under this root instead of
    /// `/` (tests; the kernel's binfmt_misc is always the real one).
    #[arg(
        long,
        global = true,
        hide = true,
        default_value = "/",
        value_name = "DIR"
    )]
    pub sysroot: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum BinfmtAction {
    /// Whether each architecture can run target programs in a chroot; exits
    /// non-zero if an architecture asked for cannot. `reboot=` names the
    /// binfmt.d file that registers the same entry again at boot (/etc,
    /// /usr/local/lib or /usr/lib binfmt.d), or says `lost`.
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
    /// The kernel forgets registrations at reboot: --persist also writes
    /// /etc/binfmt.d/<entry>.conf, which systemd-binfmt loads at boot.
    ///
    /// Example:
    ///   sudo mkimg binfmt register riscv64 aarch64
    ///   sudo mkimg binfmt register --persist riscv64
    #[command(verbatim_doc_comment)]
    Register {
        #[arg(required = true)]
        arches: Vec<Arch>,
        /// Also write /etc/binfmt.d/<entry>.conf (atomically) so the entry
        /// is registered again at boot.
        #[arg(long)]
        persist: bool,
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
#[command(group(clap::ArgGroup::new("what").required(true).args(["board", "genimage"])))]
pub struct PlanArgs {
    /// Board name (see `mkimg boards`) or path to a board.toml.
    #[arg(long, short)]
    pub board: Option<String>,

    /// A genimage.cfg to plan instead of a board.
    #[arg(long, value_name = "FILE.cfg", conflicts_with_all = ["rootfs", "grub", "bootloader", "blobs"])]
    pub genimage: Option<PathBuf>,

    #[command(flatten)]
    pub paths: GenimagePaths,

    /// Seed for identities the board does not fix (partition GUIDs, disk GUID…).
    #[arg(long, default_value = crate::plan::identity::DEFAULT_SEED)]
    pub seed: String,

    /// Print the plan as JSON (every number in bytes).
    #[arg(long)]
    pub json: bool,

    /// Also read this rootfs (a tarball, a directory, or - for standard
    /// input) and show what mkimg detects in it: the distro, the grub EFI
    /// binary and where its grub.cfg goes, the kernels (BLS entries),
    /// grub-mkconfig. Read once; nothing is written.
    #[arg(long, value_name = "FILE|DIR|-")]
    pub rootfs: Option<PathBuf>,

    /// --grub, --bootloader and --blob, as `mkimg build` takes them.
    #[command(flatten)]
    pub overrides: BoardOverrides,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Disk image to read: raw, or qcow2 (read through its cluster mapping).
    pub image: PathBuf,

    /// Logical sector size the image was written with: 512 or 4096.
    #[arg(long, default_value_t = 512, value_parser = parse_sector_size)]
    pub sector_size: u64,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// genimage's path options (same names, same meaning); with --genimage
/// only. Unset, a path comes from the config's `config { }` section, else
/// genimage's default.
#[derive(Debug, Clone, Default, Args)]
pub struct GenimagePaths {
    /// Directories `include("FILE")` searches, colon-separated, before the
    /// current directory.
    #[arg(long, value_name = "DIRS", requires = "genimage")]
    pub includepath: Option<String>,

    /// Where input files are read (default ./input).
    #[arg(long, value_name = "DIR", requires = "genimage")]
    pub inputpath: Option<PathBuf>,

    /// The root filesystem tree, or (mkimg's extension) a rootfs tarball
    /// (default ./root).
    #[arg(long, value_name = "DIR|FILE", requires = "genimage")]
    pub rootpath: Option<PathBuf>,

    /// Where images are written (default ./images).
    #[arg(long, value_name = "DIR", requires = "genimage")]
    pub outputpath: Option<PathBuf>,

    /// Where temporary images are written (default ./tmp).
    #[arg(long, value_name = "DIR", requires = "genimage")]
    pub tmppath: Option<PathBuf>,
}

/// `mkimg import-genimage`.
#[derive(Debug, Args)]
pub struct ImportGenimageArgs {
    /// The genimage.cfg.
    pub config: PathBuf,

    /// Directories `include("FILE")` searches, colon-separated, before the
    /// current directory.
    #[arg(long, value_name = "DIRS")]
    pub includepath: Option<String>,

    /// Where input files are read (default ./input): partition sizes come
    /// from them.
    #[arg(long, value_name = "DIR")]
    pub inputpath: Option<PathBuf>,

    /// Which hdimage, when the config has several.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
}

/// What `build` and `plan` may change of a board on the command line; the
/// planner applies them, so `mkimg plan` shows what `mkimg build` does.
#[derive(Debug, Clone, Default, Args)]
pub struct BoardOverrides {
    /// How grub.cfg is made (default: the board's, else template).
    #[arg(long, value_enum)]
    pub grub: Option<crate::board::schema::GrubMode>,

    /// Boot loader configuration to write (default: the board's [boot] loader).
    #[arg(long, value_enum)]
    pub bootloader: Option<crate::board::schema::BootLoader>,

    /// The file for a blob or raw partition, replacing the board's source
    /// (repeatable), e.g. --blob idbloader=out/idbloader.img.
    #[arg(long = "blob", value_name = "NAME=PATH")]
    pub blobs: Vec<crate::board::BlobOverride>,
}

/// Output image formats, comma-separated on the command line; any
/// combination comes from one assembly pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum ImageFormat {
    /// `IMAGE.qcow2` (`--compress` applies).
    #[serde(rename = "qcow2")]
    Qcow2,
    /// `IMAGE.raw`, sparse.
    #[serde(rename = "raw")]
    Raw,
    /// `IMAGE.raw.zst`, zstd on every core.
    #[value(name = "raw.zst")]
    #[serde(rename = "raw.zst")]
    RawZst,
    /// `IMAGE.raw.xz`, multithreaded xz.
    #[value(name = "raw.xz")]
    #[serde(rename = "raw.xz")]
    RawXz,
    /// `IMAGE.raw.gz`.
    #[value(name = "raw.gz")]
    #[serde(rename = "raw.gz")]
    RawGz,
    /// `IMAGE.simg`, Android sparse (fastboot, vendor flash tools).
    #[serde(rename = "simg")]
    Simg,
}

impl ImageFormat {
    /// Formats whose content is the raw disk byte for byte once
    /// decompressed: `IMAGE.raw.bmap` is written beside them.
    pub fn is_raw_based(self) -> bool {
        matches!(
            self,
            ImageFormat::Raw | ImageFormat::RawZst | ImageFormat::RawXz | ImageFormat::RawGz
        )
    }
}

/// `--owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OwnerArg {
    Keep,
    Root,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["board", "genimage"])))]
pub struct BuildArgs {
    /// Board name (see `mkimg boards`) or path to a board.toml.
    #[arg(long, short)]
    pub board: Option<String>,

    /// Build every image of a genimage.cfg instead of a board: each into
    /// --outputpath (temporary ones into --tmppath) under the config's
    /// names, atomically, raw as genimage writes them; nothing else there
    /// is touched.
    #[arg(
        long,
        value_name = "FILE.cfg",
        conflicts_with_all = ["rootfs", "output", "format", "compress", "keep_workdir", "grub", "bootloader", "blobs", "owner", "verify_repro", "mkconfig_via"]
    )]
    pub genimage: Option<PathBuf>,

    #[command(flatten)]
    pub paths: GenimagePaths,

    /// Rootfs tarball (plain, gzip, xz or zstd): a file, a FIFO, or `-` to
    /// read it from standard input (`docker export C | mkimg build --board B
    /// --rootfs -`); it is read once, as a stream. Or a directory, read as
    /// the tarball of it would be (sorted; owners, modes and xattrs as on
    /// disk; symlinks never followed; a file changed while read is an
    /// error). Default: the board's rootfs recipe, bootstrapped once and
    /// cached.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,

    /// Owners of a directory --rootfs: `keep` (as on disk; refused when not
    /// running as root unless the tree is owned by root) or `root` (every
    /// uid and gid becomes 0).
    #[arg(long, value_enum, default_value = "keep")]
    pub owner: OwnerArg,

    /// Output directory (default: output/<board>).
    #[arg(long, short)]
    pub output: Option<PathBuf>,

    /// Image formats to write, comma-separated: qcow2, raw, raw.zst, raw.xz,
    /// raw.gz, simg. Raw-based formats get IMAGE.raw.bmap beside them.
    #[arg(long, value_delimiter = ',', default_value = "qcow2")]
    pub format: Vec<ImageFormat>,

    /// qcow2 compression.
    #[arg(long, value_enum, default_value = "none")]
    pub compress: Compress,

    #[command(flatten)]
    pub overrides: BoardOverrides,

    /// With --grub mkconfig, what grub-mkconfig runs over: `tree`, the part
    /// of the rootfs it reads, captured during the rootfs pass, in a
    /// rootless sandbox with grub-probe answered from the layout (no root
    /// needed); or `mount`, the finished root filesystem mounted read-only
    /// from a loop device with the distro's own grub-probe (root only).
    /// Both give the same grub.cfg; manifest.json records which ran.
    #[arg(long, value_enum, default_value = "tree", value_name = "PATH")]
    pub mkconfig_via: crate::bootloader::mkconfig::MkconfigVia,

    /// Seed for identities the board does not fix.
    #[arg(long, default_value = crate::plan::identity::DEFAULT_SEED)]
    pub seed: String,

    /// Keep the temporary work directory (for debugging a failed build).
    #[arg(long)]
    pub keep_workdir: bool,

    /// Check that the build is reproducible: after the build (published as
    /// usual), build again as a separate process in fresh directories with
    /// another TMPDIR, umask and TZ, and compare the two outputs file by
    /// file. Where they differ, say which partition and which file or
    /// filesystem structure differs; then exit non-zero (the first build
    /// stays published). Takes about twice as long as one build. The rootfs
    /// must be readable twice: not `-`, not a FIFO.
    #[arg(long)]
    pub verify_repro: bool,

    /// For --verify-repro's second build: the umask (octal) it sets before
    /// anything else; a child's umask cannot be set from outside without
    /// code between fork and exec.
    #[arg(long, hide = true, value_name = "OCTAL", value_parser = parse_umask, conflicts_with = "verify_repro")]
    pub umask: Option<u32>,

    /// For --verify-repro: also write the raw disk to FILE (outside the
    /// output directory, not listed anywhere), for the comparison when no
    /// raw format was asked for.
    #[arg(
        long,
        hide = true,
        value_name = "FILE",
        conflicts_with = "verify_repro"
    )]
    pub repro_raw: Option<PathBuf>,

    /// Test hook for --verify-repro's second build: append one byte to
    /// the data of this rootfs file (MKIMG_TEST_HOOKS=1 and
    /// MKIMG_REPRO_TEST_PERTURB=PATH on the first build set it), so the
    /// two builds differ in one known place.
    #[arg(
        long,
        hide = true,
        value_name = "PATH",
        conflicts_with = "verify_repro"
    )]
    pub repro_perturb: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compress {
    None,
    Zlib,
    Zstd,
}

#[derive(Debug, Args, Default)]
pub struct RootfsArgs {
    /// Board name or path to a board.toml; its [rootfs] table and arch are the defaults.
    #[arg(long, short)]
    pub board: Option<String>,

    /// Distribution (default: debian).
    #[arg(long, value_enum)]
    pub distro: Option<Distro>,

    /// Debian suite, or the RPM releasever (default for debian: trixie).
    #[arg(long)]
    pub suite: Option<String>,

    /// Target architecture: riscv64, aarch64 (arm64), x86_64, …
    #[arg(long)]
    pub arch: Option<Arch>,

    /// Extra packages, comma-separated (added to the board's).
    #[arg(long, value_delimiter = ',')]
    pub packages: Vec<String>,

    /// Root's password; default "root". A value starting with $6$ is used as
    /// a SHA-512 crypt hash.
    #[arg(long)]
    pub root_password: Option<String>,

    /// Serial console to run a login getty on, e.g. ttyS0.
    #[arg(long)]
    pub console: Option<String>,

    /// Debian mirror (default http://deb.debian.org/debian); for RPM, a repository.
    #[arg(long)]
    pub mirror: Option<String>,

    /// RPM repository URL (repeatable; added to the board's).
    #[arg(long = "repo")]
    pub repos: Vec<String>,

    /// Copy the tarball here (atomically) instead of only printing the cache path.
    #[arg(long, short)]
    pub output: Option<PathBuf>,

    /// Rebuild even if the cache holds this recipe.
    #[arg(long)]
    pub refresh: bool,

    /// Cache directory (default $XDG_CACHE_HOME/mkimg/rootfs or ~/.cache/mkimg/rootfs).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// `--umask`: an octal mode of at most 0777.
fn parse_umask(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!("{text:?} is not an octal umask (0 to 0777)")),
    }
}

/// `--sector-size`: the two logical sector sizes disks use.
fn parse_sector_size(text: &str) -> Result<u64, String> {
    match text {
        "512" => Ok(512),
        "4096" => Ok(4096),
        _ => Err(format!("{text:?} is not a sector size: use 512 or 4096")),
    }
}
