//! `mkimg boards`: the known boards, one line each.

use anyhow::Result;

use crate::board::{load_board_file, BoardSearch};
use crate::cli::BoardsArgs;

pub fn run(args: &BoardsArgs) -> Result<()> {
    let search = BoardSearch::from_env();
    let mut rows = Vec::new();
    for (name, path) in search.list() {
        let (arch, description) = match load_board_file(&path) {
            Ok(board) => (
                board.file.board.arch.to_string(),
                board.file.board.description.to_string(),
            ),
            Err(err) => ("?".to_string(), format!("(unreadable: {err})")),
        };
        rows.push((name, arch, description, path));
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, arch, description, path)| {
                serde_json::json!({"name": name, "arch": arch, "description": description, "path": path})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4);
    for (name, arch, description, _) in &rows {
        println!("{name:<width$}  {arch:<8}  {description}");
    }
    Ok(())
}
