//! `mkimg rootfs`: bootstrap (or find in the cache) a root filesystem
//! tarball for an architecture, and optionally copy it to `-o FILE`.
//!
//! The recipe comes from the board's `[rootfs]` table (with `--board`) and
//! the flags: a flag replaces the board's value; `--packages` and `--repo`
//! add to the board's lists. Prints the tarball's path on stdout.

use anyhow::{bail, Context};

use crate::arch::Arch;
use crate::board::recipe::{Distro, RootfsRecipe};
use crate::board::{load_board, BoardSearch};
use crate::bootstrap::{
    bootstrap, default_cache_dir, publish_copy, BootstrapOptions, ProgressStyle,
    DEFAULT_SOURCE_DATE_EPOCH,
};
pub use crate::cli::RootfsArgs;

pub fn run(args: &RootfsArgs) -> anyhow::Result<()> {
    // mmdebstrap and the rest run in process groups of their own (host::cmd):
    // a terminal's Ctrl-C reaches only mkimg, which then kills them.
    crate::host::interrupt::install().context("catching SIGINT, SIGTERM and SIGHUP")?;
    let board = match &args.board {
        Some(name) => Some(board_recipe(name)?),
        None => None,
    };
    let (recipe, arch) = merge_recipe(args, board)?;
    let opts = BootstrapOptions {
        cache_dir: match &args.cache_dir {
            Some(dir) => dir.clone(),
            None => default_cache_dir()?,
        },
        refresh: args.refresh,
        source_date_epoch: source_date_epoch()?,
        progress: ProgressStyle::Auto,
    };
    let cached = bootstrap(&recipe, arch, &opts)?;
    match &args.output {
        Some(out) => {
            publish_copy(&cached, out)?;
            println!("{}", out.display());
        }
        None => println!("{}", cached.display()),
    }
    Ok(())
}

/// The board's `[rootfs]` recipe and arch. mkimg wires this to its board
/// loader; this scratch crate has none.
fn board_recipe(name: &str) -> anyhow::Result<(RootfsRecipe, Arch)> {
    let board = load_board(name, &BoardSearch::from_env())?;
    let Some(recipe) = board.file.rootfs.clone() else {
        bail!(
            "board {} has no [rootfs] recipe; give --distro, --suite and --arch, or add one to {}",
            board.file.board.name,
            board.path.display()
        );
    };
    Ok((recipe, board.file.board.arch))
}

/// The board's recipe (if any) with the flags applied.
pub fn merge_recipe(
    args: &RootfsArgs,
    board: Option<(RootfsRecipe, Arch)>,
) -> anyhow::Result<(RootfsRecipe, Arch)> {
    let (base, board_arch) = match board {
        Some((recipe, arch)) => (Some(recipe), Some(arch)),
        None => (None, None),
    };
    let arch = args
        .arch
        .or(board_arch)
        .context("pass --arch (or --board)")?;
    let distro = args
        .distro
        .or(base.as_ref().map(|r| r.distro))
        .unwrap_or(Distro::Debian);
    let suite = match (&args.suite, &base) {
        (Some(suite), _) => suite.clone(),
        (None, Some(base)) if base.distro == distro => base.suite.clone(),
        (None, _) if distro == Distro::Debian => "trixie".to_string(),
        (None, _) => bail!("pass --suite (the {} releasever)", distro.as_str()),
    };
    let base = base.filter(|b| b.distro == distro);
    let pick = |flag: &Option<String>, board: Option<&Option<String>>| {
        flag.clone().or_else(|| board.cloned().flatten())
    };
    let mut packages = base
        .as_ref()
        .map(|b| b.packages.clone())
        .unwrap_or_default();
    packages.extend(args.packages.iter().filter(|p| !p.is_empty()).cloned());
    let mut repos = base.as_ref().map(|b| b.repos.clone()).unwrap_or_default();
    repos.extend(args.repos.iter().cloned());
    let recipe = RootfsRecipe {
        distro,
        suite,
        mirror: pick(&args.mirror, base.as_ref().map(|b| &b.mirror)),
        packages,
        console: pick(&args.console, base.as_ref().map(|b| &b.console)),
        root_password: pick(&args.root_password, base.as_ref().map(|b| &b.root_password)),
        repos,
    };
    Ok((recipe, arch))
}

/// SOURCE_DATE_EPOCH from the environment, else mkimg's fixed default.
fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={text:?}")),
        Err(_) => Ok(DEFAULT_SOURCE_DATE_EPOCH),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{merge_recipe, RootfsArgs};
    use crate::arch::Arch;
    use crate::board::recipe::{Distro, RootfsRecipe};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RootfsArgs,
    }

    fn parse(argv: &[&str]) -> RootfsArgs {
        Cli::try_parse_from(std::iter::once("rootfs").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_alone_make_a_debian_recipe() {
        let args = parse(&[
            "--arch",
            "arm64",
            "--packages",
            "vim,curl",
            "--console",
            "ttyAMA0",
        ]);
        let (recipe, arch) = merge_recipe(&args, None).unwrap();
        assert_eq!(arch, Arch::Aarch64);
        assert_eq!(recipe.distro, Distro::Debian);
        assert_eq!(recipe.suite, "trixie");
        assert_eq!(recipe.packages, ["vim", "curl"]);
        assert_eq!(recipe.console.as_deref(), Some("ttyAMA0"));
        assert_eq!(recipe.root_password, None);
        assert!(merge_recipe(&parse(&[]), None)
            .unwrap_err()
            .to_string()
            .contains("--arch"));
        let rpm = parse(&["--arch", "riscv64", "--distro", "openeuler"]);
        assert!(merge_recipe(&rpm, None)
            .unwrap_err()
            .to_string()
            .contains("--suite"));
    }

    #[test]
    fn board_recipe_is_the_default_and_flags_win() {
        let board = RootfsRecipe {
            distro: Distro::Debian,
            suite: "sid".into(),
            mirror: Some("http://mirror.example/debian".into()),
            packages: vec!["vim".into()],
            console: Some("ttyS0".into()),
            root_password: Some("board".into()),
            repos: Vec::new(),
        };
        let args = parse(&["--packages", "curl", "--root-password", "cli"]);
        let (recipe, arch) = merge_recipe(&args, Some((board.clone(), Arch::Riscv64))).unwrap();
        assert_eq!(arch, Arch::Riscv64);
        assert_eq!(recipe.suite, "sid");
        assert_eq!(recipe.mirror, board.mirror);
        assert_eq!(recipe.packages, ["vim", "curl"]);
        assert_eq!(recipe.console.as_deref(), Some("ttyS0"));
        assert_eq!(recipe.root_password.as_deref(), Some("cli"));

        // Another distro on the command line drops the board's Debian specifics.
        let args = parse(&[
            "--distro",
            "fedora",
            "--suite",
            "41",
            "--repo",
            "http://r.example/",
        ]);
        let (recipe, _) = merge_recipe(&args, Some((board, Arch::Riscv64))).unwrap();
        assert_eq!(recipe.mirror, None);
        assert!(recipe.packages.is_empty());
        assert_eq!(recipe.repos, ["http://r.example/"]);
    }

    #[test]
    fn recipe_toml_rejects_unknown_fields() {
        let ok: RootfsRecipe =
            serde_json::from_str(r#"{"distro":"openeuler","suite":"24.03","repos":["u"]}"#)
                .unwrap();
        assert_eq!(ok.distro, Distro::Openeuler);
        assert!(ok.packages.is_empty());
        let bad =
            serde_json::from_str::<RootfsRecipe>(r#"{"distro":"debian","suite":"x","pkgs":[]}"#);
        assert!(bad.unwrap_err().to_string().contains("unknown field"));
    }
}
