//! board.toml text → `parse_board` → `plan_board`, as `mkimg plan` does,
//! with the board directory an empty directory (so blob and overlay lookups
//! fail the way a missing file does, and the containment check runs).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mkimg::board::{parse_board, Board};
use mkimg::commands::plan::render_plan;
use mkimg::disk::tables::{gpt_disk, mbr_table};
use mkimg::plan::plan_board;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mkimg-fuzz-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz board directory");
        dir
    });
    let path = dir.join("board.toml");
    let Ok(file) = parse_board(text, &path) else {
        return;
    };
    let board = Board {
        file,
        path,
        dir: dir.clone(),
        cli_sources: Default::default(),
        text: text.to_string(),
    };
    if let Ok(plan) = plan_board(&board, "fuzz") {
        // What `mkimg plan` prints and `build` derives next, all in memory.
        let _ = render_plan(&plan);
        if let Ok(Some(gpt)) = gpt_disk(&plan.layout) {
            let _ = gpt.validate();
            let _ = gpt.regions();
        }
        let _ = mbr_table(&plan.layout);
        let _ = plan.root_partition();
        let _ = plan.partition_holding("/boot/efi/EFI");
        for p in &plan.layout.partitions {
            let _ = p.end();
            let _ = p.filesystem.fs_uuid_text();
        }
    }
});
