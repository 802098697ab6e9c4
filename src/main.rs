//! The `mkimg` binary: parse the command line, call the library, print the
//! error chain (one cause per line), map the exit code.

use std::process::ExitCode;

use clap::Parser;
use mkimg::cli::{Cli, Command};
use mkimg::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose {
        std::env::set_var("MKIMG_VERBOSE", "1");
    }
    let result = match cli.command {
        Command::Boards(args) => commands::boards::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Inspect(args) => commands::inspect::run(&args),
        Command::Binfmt(args) => commands::binfmt::run(&args),
        Command::Boot(args) => commands::boot::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mkimg: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
