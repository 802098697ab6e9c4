//! How mkimg is installed and what it claims about itself:
//!
//! - the installed binary without the source tree: `cargo install --path .
//!   --root DIR`, then that binary run from an empty directory in a private
//!   mount namespace with a tmpfs over the checkout, so nothing the
//!   checkout holds (boards/, templates/) can be read. It must list the
//!   built-in boards, plan one and build an image `qemu-img check` accepts.
//!   Slow the first time (a release build; `scripts/test.sh` has made one
//!   already and the install reuses it) and needs root for the mount
//!   namespace: runs with MKIMG_SLOW_TESTS=1;
//! - shell completions and the man page, checked by `bash -n`, `zsh -n`,
//!   `fish -n` (when installed) and `groff -man -z -ww`;
//! - `rust-version` in Cargo.toml is at least every locked dependency's.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::run::{mkimg, stderr, stdout};
use crate::support::tarball::Tarball;
use crate::support::tools::have_tool;

/// Run `bin args…` in `cwd` in a new mount namespace where a tmpfs hides
/// `checkout`. The paths are arguments of the fixed script, never spliced
/// into it.
fn hidden_checkout_run(
    checkout: &Path,
    cwd: &Path,
    home: &Path,
    bin: &Path,
    args: &[&str],
) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && cd "$2" && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(checkout)
        .arg(cwd)
        .arg(bin)
        .args(args)
        .env_remove("MKIMG_BOARDS")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home)
        .output()
        .expect("run unshare")
}

#[test]
fn installed_binary_works_without_the_checkout() {
    if std::env::var("MKIMG_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("SKIP: set MKIMG_SLOW_TESTS=1 (a release build, root)");
        return;
    }
    assert!(
        rustix::process::geteuid().is_root(),
        "MKIMG_SLOW_TESTS=1: this test needs root (a mount namespace)"
    );
    if !have_tool("unshare") || !have_tool("qemu-img") || !have_tool("mke2fs") {
        return;
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().canonicalize().unwrap();
    assert!(
        !tmp_path.starts_with(&checkout),
        "the temporary directory {} is inside the checkout it hides",
        tmp_path.display()
    );

    // The release artifacts `cargo build --release` left are reused.
    let root = tmp_path.join("root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let install = Command::new(cargo)
        .args(["install", "--offline", "--locked", "--quiet", "--path"])
        .arg(&checkout)
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(checkout.join("target"))
        .output()
        .expect("run cargo install");
    assert!(install.status.success(), "{}", stderr(&install));
    let bin = root.join("bin/mkimg");

    let work = tmp_path.join("work");
    let home = tmp_path.join("home");
    std::fs::create_dir(&work).unwrap();
    std::fs::create_dir(&home).unwrap();
    let rootfs = tmp_path.join("rootfs.tar");
    std::fs::write(&rootfs, Tarball::minimal("dash-riscv64.elfhdr").finish()).unwrap();
    let run = |args: &[&str]| hidden_checkout_run(&checkout, &work, &home, &bin, args);

    // The tmpfs really hides the checkout.
    let ls = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && ls -A "$1""#)
        .arg("sh")
        .arg(&checkout)
        .output()
        .unwrap();
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert_eq!(stdout(&ls), "", "the checkout is not hidden");

    let boards = run(&["boards"]);
    assert!(boards.status.success(), "{}", stderr(&boards));
    let names: Vec<String> = stdout(&boards)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(
        names,
        [
            "nezha",
            "qemu-aarch64",
            "qemu-aarch64-uboot",
            "qemu-riscv64",
            "rock3a"
        ],
        "{}",
        stdout(&boards)
    );

    let plan = run(&["plan", "--board", "qemu-riscv64"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("partition 2 'rootfs'"),
        "{}",
        stdout(&plan)
    );

    let build = run(&[
        "build",
        "--board",
        "qemu-riscv64",
        "--rootfs",
        rootfs.to_str().unwrap(),
    ]);
    assert!(build.status.success(), "{}", stderr(&build));
    let image = work.join("output/qemu-riscv64/qemu-riscv64.qcow2");
    let check = Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "qemu-img check: {}{}",
        stdout(&check),
        stderr(&check)
    );
    for file in ["start_vm.sh", "manifest.json", "RISCV_VIRT_CODE.fd"] {
        assert!(
            work.join("output/qemu-riscv64").join(file).is_file(),
            "no {file}"
        );
    }
}

#[test]
fn completions_name_every_subcommand_and_bash_accepts_its_script() {
    let subcommands = [
        "build",
        "boards",
        "plan",
        "inspect",
        "binfmt",
        "rootfs",
        "boot",
        "completions",
        "manpage",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let out = mkimg(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for sub in subcommands {
            assert!(
                script.contains(sub),
                "{shell} completion lacks {sub}:\n{script}"
            );
        }
        // Each shell's own parser, where it is installed (bash always is).
        let installed = if shell == "bash" {
            have_tool("bash")
        } else {
            on_path(shell)
        };
        if !installed {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("mkimg.{shell}"));
        std::fs::write(&file, &script).unwrap();
        let check = Command::new(shell).arg("-n").arg(&file).output().unwrap();
        assert!(
            check.status.success() && check.stderr.is_empty(),
            "{shell} -n: {}",
            stderr(&check)
        );
    }
    let bad = mkimg(&["completions", "tcsh"]);
    assert!(!bad.status.success());
}

#[test]
fn man_pages_pass_groff_warnings() {
    if !have_tool("groff") {
        return;
    }
    for page in [None, Some("build"), Some("binfmt")] {
        let mut args = vec!["manpage"];
        args.extend(page);
        let out = mkimg(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let roff = stdout(&out);
        let title = match page {
            None => ".TH mkimg 1".to_string(),
            Some(p) => format!(".TH mkimg-{p} 1"),
        };
        assert!(roff.contains(&title), "no {title:?} in:\n{roff}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mkimg.1");
        std::fs::write(&file, &roff).unwrap();
        // -ww: every warning; -z: no output, only the diagnostics.
        let check = Command::new("groff")
            .args(["-man", "-z", "-ww", "-Tutf8"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success() && check.stderr.is_empty(),
            "groff: {}",
            stderr(&check)
        );
        // And what man shows mentions the subcommands / options.
        let text = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-cbou"])
            .arg(&file)
            .output()
            .unwrap();
        let text = stdout(&text);
        let want = match page {
            None => "inspect",
            Some("build") => "--board",
            Some(_) => "register",
        };
        assert!(text.contains(want), "{text}");
    }
    let bad = mkimg(&["manpage", "no-such"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("build"), "{}", stderr(&bad));
}

/// Whether `name` is on PATH, never failing: for optional oracles (zsh,
/// fish) whose absence only narrows the completion test.
fn on_path(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()));
    if !found {
        eprintln!("note: {name} not installed; its completion script is not parsed");
    }
    found
}

/// `(major, minor, patch)` of a rust-version such as `1.89` or `1.85.0`.
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap());
    (
        parts.next().unwrap(),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// Cargo.toml's rust-version is true: no locked dependency asks for a newer
/// toolchain (no older toolchain can be installed here to try it).
#[test]
fn rust_version_is_at_least_every_locked_dependencys() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = meta["resolve"]["root"].as_str().unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages.iter().find(|p| p["id"] == root).unwrap();
    let claimed = ours["rust_version"]
        .as_str()
        .expect("Cargo.toml sets rust-version");
    let (needed, by) = packages
        .iter()
        .filter(|p| p["id"] != root)
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str()?)))
        .max()
        .unwrap();
    assert!(packages.len() > 50, "the lock file's packages are listed");
    assert!(
        version(claimed) >= needed,
        "rust-version = {claimed:?} but {by} needs {needed:?}"
    );
}
