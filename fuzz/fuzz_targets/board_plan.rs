//! board.toml text → `parse_board` → `plan_board`, as `mkimg plan` does,
//! with the board directory an existing directory without blobs (so blob
//! and overlay lookups fail the way a missing file does, and the
//! containment check runs).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mkimg::board::{parse_board, Board};
use mkimg::commands::plan::render_plan;
use mkimg::disk::tables::{gpt_disk, mbr_table};
use mkimg::plan::plan_board;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An existing directory that holds no blob a board could name (only
    // this crate's sources): the containment check canonicalizes it, and
    // nothing is written anywhere.
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz_targets"));
    let path = dir.join("board.toml");
    let Ok(file) = parse_board(text, &path) else {
        return;
    };
    let board = Board {
        file,
        path,
        dir: dir.to_path_buf(),
        cli_sources: Default::default(),
        text: text.to_string(),
        cli_boot: Default::default(),
        source_roots: Vec::new(),
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
