//! `mkimg boards`: the known boards, one line each.

use anyhow::Result;

use crate::board::{BoardRef, BoardSearch};
use crate::cli::BoardsArgs;

pub fn run(args: &BoardsArgs) -> Result<()> {
    let search = BoardSearch::from_env();
    let mut rows = Vec::new();
    for (name, found) in search.list() {
        let (arch, description) = match found.load() {
            Ok(board) => (
                board.file.board.arch.to_string(),
                board.file.board.description.to_string(),
            ),
            Err(err) => ("?".to_string(), format!("(unreadable: {err})")),
        };
        rows.push((name, arch, description, found));
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, arch, description, found)| {
                // A built-in board has no file: "path" is null.
                let path = match found {
                    BoardRef::File(path) => Some(path),
                    BoardRef::Builtin(_) => None,
                };
                let builtin = matches!(found, BoardRef::Builtin(_));
                serde_json::json!({"name": name, "arch": arch, "description": description, "path": path, "builtin": builtin})
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
