//! One file per subcommand. Each `run` takes its parsed arguments, calls the
//! stages in order, and prints; errors go back to `main` as `anyhow` chains.

pub mod binfmt;
pub mod boards;
pub mod boot;
pub mod build;
pub mod completions;
pub mod flash;
pub mod genimage;
pub mod inspect;
pub mod manpage;
pub mod plan;
pub mod rootfs;
pub mod table;

use anyhow::Result;

use crate::board::{load_board, Board, BoardSearch, BootOverride};
use crate::cli::BoardOverrides;

/// The board named by `spec`, with the command line's --blob, --grub and
/// --bootloader recorded on it for the planner (`build` and `plan` alike).
pub(crate) fn load_board_with(spec: &str, overrides: &BoardOverrides) -> Result<Board> {
    let mut board = load_board(spec, &BoardSearch::from_env())?;
    board.override_sources(&overrides.blobs)?;
    board.cli_boot = BootOverride {
        loader: overrides.bootloader,
        grub: overrides.grub,
    };
    Ok(board)
}
