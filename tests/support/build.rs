//! `mkimg build` of a small test image, and the readers of what it wrote
//! that more than one test needs. A [`Build`] holds the argv the tests used
//! to assemble by hand, `build --board B --rootfs R [--bootloader L]
//! [--format F] -o OUT [extra…]`, in that order, run through
//! [`super::run::mkimg_command`] (the clean environment); [`Build::run`]
//! asserts success with the argv and mkimg's whole log in the message.
//!
//! The readers parse by hand, never with mkimg's own code (which is under
//! test): a `.bmap`'s ranges line by line, a partition's place from
//! `mkimg plan --json` cut out with `dd`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::run::{mkimg, mkimg_command, stderr};
use super::tarball::Tarball;

/// One `mkimg build` not yet run; run it as often as a test needs.
pub struct Build {
    board: OsString,
    rootfs: PathBuf,
    out: PathBuf,
    /// `-o`, or `--output` where a test spells it out.
    output_flag: &'static str,
    bootloader: Option<String>,
    format: Option<String>,
    extra: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
}

impl Build {
    /// `mkimg build --board BOARD --rootfs ROOTFS -o OUT`; BOARD is a path
    /// or the name of a builtin board.
    pub fn new(board: impl AsRef<OsStr>, rootfs: impl AsRef<Path>, out: impl AsRef<Path>) -> Self {
        Build {
            board: board.as_ref().to_owned(),
            rootfs: rootfs.as_ref().to_path_buf(),
            out: out.as_ref().to_path_buf(),
            output_flag: "-o",
            bootloader: None,
            format: None,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }

    /// `board_text` written to `dir/board.toml` and the minimal riscv64
    /// rootfs ([`Tarball::minimal_riscv64`]) to `dir/rootfs.tar`, built
    /// into `dir/out`.
    pub fn minimal(dir: &Path, board_text: &str) -> Self {
        let board = dir.join("board.toml");
        fs::write(&board, board_text).unwrap();
        let rootfs = dir.join("rootfs.tar");
        fs::write(&rootfs, Tarball::minimal_riscv64().finish()).unwrap();
        Build::new(board, rootfs, dir.join("out"))
    }

    /// `--bootloader LOADER`.
    pub fn bootloader(mut self, loader: &str) -> Self {
        self.bootloader = Some(loader.to_string());
        self
    }

    /// `--format FORMATS` (comma-separated).
    pub fn format(mut self, formats: &str) -> Self {
        self.format = Some(formats.to_string());
        self
    }

    /// The output directory as `--output OUT` instead of `-o OUT`.
    pub fn long_output(mut self) -> Self {
        self.output_flag = "--output";
        self
    }

    /// More arguments, after the output directory.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(OsString::from));
        self
    }

    /// An environment variable for mkimg.
    pub fn env(mut self, key: &'static str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key, value.as_ref().to_owned()));
        self
    }

    /// The output directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The argv after the program name.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "build".into(),
            "--board".into(),
            self.board.clone(),
            "--rootfs".into(),
            self.rootfs.clone().into(),
        ];
        if let Some(loader) = &self.bootloader {
            argv.extend(["--bootloader".into(), loader.into()]);
        }
        if let Some(formats) = &self.format {
            argv.extend(["--format".into(), formats.into()]);
        }
        argv.extend([self.output_flag.into(), self.out.clone().into()]);
        argv.extend(self.extra.iter().cloned());
        argv
    }

    /// The command, not yet run, for a test that sets more (stdin).
    pub fn command(&self) -> Command {
        let mut command = mkimg_command(self.argv());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Run it, whatever the outcome.
    pub fn output(&self) -> Output {
        self.command().output().expect("run mkimg")
    }

    /// Run it; it must succeed. Returns mkimg's log (its stderr).
    pub fn run(&self) -> String {
        let output = self.output();
        let log = stderr(&output);
        assert!(
            output.status.success(),
            "mkimg {:?} ({}):\n{log}",
            self.argv(),
            output.status
        );
        log
    }
}

/// Mapped block ranges `[first, last]` of a .bmap (bmaptool's own XML),
/// read line by line.
pub fn bmap_ranges(xml: &str) -> Vec<(u64, u64)> {
    xml.lines()
        .filter(|l| l.trim_start().starts_with("<Range"))
        .map(|l| {
            let body = l
                .split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .trim();
            match body.split_once('-') {
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => (body.parse().unwrap(), body.parse().unwrap()),
            }
        })
        .collect()
}

/// Partition `index` (0-based, in `mkimg plan --board BOARD --json`) of
/// the raw disk `raw` cut out to `dest` with `dd` (whole MiB, sparse), for
/// the filesystem tools, which have no offset option.
pub fn cut_partition(board: &Path, index: usize, raw: &Path, dest: &Path) -> PathBuf {
    let plan = mkimg(&["plan", "--board", board.to_str().unwrap(), "--json"]);
    assert!(plan.status.success(), "mkimg plan: {}", stderr(&plan));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let part = &json["layout"]["partitions"][index];
    let (start, size) = (
        part["start"].as_u64().unwrap(),
        part["size"].as_u64().unwrap(),
    );
    let status = Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", dest.display()))
        .args([
            "bs=1M",
            &format!("skip={}", start >> 20),
            &format!("count={}", size >> 20),
            "status=none",
            "conv=sparse",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    dest.to_path_buf()
}
