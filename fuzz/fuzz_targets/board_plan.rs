//! board.toml text → `parse_board` → `plan_board`, as `mkimg plan` does,
//! with the board directory a path that does not exist (so blob and
//! overlay lookups fail the way a missing file does).
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use mkimg::board::{parse_board, Board};
use mkimg::commands::plan::render_plan;
use mkimg::disk::tables::{gpt_disk, mbr_table};
use mkimg::plan::plan_board;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-mkimg-fuzz/board.toml");
    let Ok(file) = parse_board(text, path) else {
        return;
    };
    let board = Board {
        file,
        path: path.to_path_buf(),
        dir: PathBuf::from("/nonexistent-mkimg-fuzz"),
    };
    if let Ok(plan) = plan_board(&board, "fuzz") {
        // What `mkimg plan` prints and `build` derives next, all in memory.
        let _ = render_plan(&plan);
        if let Some(gpt) = gpt_disk(&plan.layout) {
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
