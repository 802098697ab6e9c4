//! The `mkimg` binary: parse the command line, call the library, print the
//! error chain (one cause per line), map the exit code: 1 for an error,
//! 128 + the signal number after SIGINT/SIGTERM/SIGHUP (130/143/129).

use std::process::ExitCode;

use clap::Parser;
use mkimg::cli::{Cli, Command};
use mkimg::commands;
use mkimg::host::interrupt::{self, Interrupted};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mkimg::host::cmd::set_verbose(cli.verbose);
    let result = match (cli.command, cli.build) {
        // Not a clap conflict: clap would then refuse a global `-v` before
        // the subcommand (`mkimg -v build …`).
        (Some(_), Some(_)) => Err(anyhow::anyhow!(
            "build options go after the subcommand (`mkimg build --board NAME …`) or stand alone (`mkimg --board NAME …`)"
        )),
        (Some(Command::Build(args)), _) | (None, Some(args)) if args.genimage.is_some() => {
            commands::genimage::build(&args)
        }
        (Some(Command::Build(args)), _) | (None, Some(args)) => commands::build::run(&args),
        (None, None) => Err(anyhow::anyhow!(
            "nothing to do: give --board NAME (see `mkimg --help`)"
        )),
        (Some(Command::Boards(args)), _) => commands::boards::run(&args),
        (Some(Command::Plan(args)), _) if args.genimage.is_some() => {
            commands::genimage::plan(&args)
        }
        (Some(Command::Plan(args)), _) => commands::plan::run(&args),
        (Some(Command::ImportGenimage(args)), _) => commands::genimage::import(&args),
        (Some(Command::Inspect(args)), _) => commands::inspect::run(&args),
        (Some(Command::Binfmt(args)), _) => commands::binfmt::run(&args),
        (Some(Command::Rootfs(args)), _) => commands::rootfs::run(&args),
        (Some(Command::Boot(args)), _) => commands::boot::run(&args),
        (Some(Command::Flash(args)), _) => commands::flash::run(&args),
        (Some(Command::Completions(args)), _) => commands::completions::run(&args),
        (Some(Command::Manpage(args)), _) => commands::manpage::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let interrupted = err
                .chain()
                .find_map(|c| c.downcast_ref::<Interrupted>().copied())
                .or_else(interrupt::received);
            if let Some(interrupted) = interrupted {
                // What the stage was doing when it stopped is noise here.
                let published = if mkimg::outputs::publish::published_any() {
                    "nothing more published (--verify-repro: the first build stays)"
                } else {
                    "nothing published"
                };
                eprintln!(
                    "mkimg: {interrupted}: stopped; child processes killed, temporary \
                     directories removed, {published}"
                );
                return ExitCode::from(interrupted.exit_code());
            }
            eprintln!("mkimg: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
