//! Board → Plan, as a chain: blobs, disk geometry, partitions, layout
//! checks, boot and the other settings; then every problem at once.
//!
//! Each step lives in its own file and adds what it finds to one list of
//! problems instead of stopping at the first, so the user sees them all
//! together with the disk map. Only a value beyond the disk
//! (`bounds::check_bounds`) stops planning at once: the arithmetic after
//! it relies on every value being in range.

use crate::board::Board;
use crate::plan::blobs::{plan_blobs, plan_unlisted};
use crate::plan::boot::{check_boot_loader, plan_boot};
use crate::plan::bounds::check_bounds;
use crate::plan::checks::check_layout;
use crate::plan::geometry::plan_geometry;
use crate::plan::identity::IdentitySource;
use crate::plan::layout::{render_map, Problem, Severity};
use crate::plan::partitions::plan_partitions;
use crate::plan::settings::{plan_edits, plan_firmware, plan_qemu};
use crate::plan::{BoardInfo, Plan};

/// The board could not be planned; `Display` lists every problem and the map.
#[derive(Debug, thiserror::Error)]
#[error("board {board}: {count} problem(s):\n{details}")]
pub struct PlanError {
    pub board: String,
    pub count: usize,
    pub details: String,
    pub problems: Vec<Problem>,
    /// The disk map under the problems (empty when planning stopped
    /// before a layout).
    pub map: String,
}

impl PlanError {
    /// The error for `errors` of the thing named `board`, numbered, with
    /// `map` under them: how a caller that rewrites the problems' locations
    /// (`from_genimage`) rebuilds it.
    pub fn new(board: String, errors: Vec<Problem>, map: String) -> PlanError {
        let mut details = String::new();
        for (i, problem) in errors.iter().enumerate() {
            details.push_str(&format!(
                "  {}. {}\n",
                i.saturating_add(1),
                problem.to_string().replace('\n', "\n  ")
            ));
        }
        details.push_str(&map);
        PlanError {
            board,
            count: errors.len(),
            details,
            problems: errors,
            map,
        }
    }
}

/// Resolve and validate a board.
pub fn plan_board(board: &Board, seed: &str) -> Result<Plan, PlanError> {
    let out_of_range = check_bounds(board);
    if !out_of_range.is_empty() {
        return Err(plan_error(board, out_of_range, String::new()));
    }
    let ids = IdentitySource::new(seed, &board.file.board.name);
    let mut problems = Vec::new();
    let mut blobs = plan_blobs(board, &mut problems);
    blobs.extend(plan_unlisted(board, &mut problems));
    let (mut layout, usable) = plan_geometry(board, &ids, blobs, &mut problems);
    (layout.partitions, layout.extended) =
        plan_partitions(board, &layout, usable, &ids, &mut problems);
    check_layout(board, &layout, usable, &mut problems);
    let boot = plan_boot(board, &mut problems);
    check_boot_loader(board, &boot, &layout.partitions, &mut problems);
    let firmware = plan_firmware(board, &mut problems);
    let qemu = plan_qemu(board);
    let edits = plan_edits(board, &mut problems);

    let (errors, warnings): (Vec<Problem>, Vec<Problem>) = problems
        .into_iter()
        .partition(|p| p.severity == Severity::Error);
    if !errors.is_empty() {
        let map = render_map(&layout.regions(), &errors, layout.sector_size);
        return Err(plan_error(board, errors, map));
    }
    Ok(Plan {
        board: board_info(board),
        seed: seed.to_string(),
        layout,
        boot,
        firmware,
        qemu,
        edits,
        warnings: warnings.iter().map(Problem::to_string).collect(),
    })
}

/// The board identity carried into outputs.
fn board_info(board: &Board) -> BoardInfo {
    let info = &board.file.board;
    BoardInfo {
        name: info.name.clone(),
        description: info.description.clone(),
        arch: info.arch,
        hostname: info.hostname.clone(),
        image: info.image.clone(),
        console: info.console.as_ref().map(|c| c.get_ref().clone()),
        dir: board.dir.clone(),
    }
}

/// The error for `errors`, numbered, followed by `map` (the disk map, or
/// nothing when planning stopped before a layout).
fn plan_error(board: &Board, errors: Vec<Problem>, map: String) -> PlanError {
    PlanError::new(board.path.display().to_string(), errors, map)
}
