//! Checked arithmetic for the planner: `+ - * / %` that panic naming the
//! broken invariant instead of wrapping. Every value they see has passed
//! `bounds::check_bounds` (at most `bounds::MAX_DISK_SIZE`), so a panic here is
//! a planner bug, which the planner fuzz target hunts for.
//! (`#![deny(clippy::arithmetic_side_effects)]` holds `plan/` to these.)
//! A module of its own so that `layout` can use them while `bounds`, which
//! reports through `layout::Problem`, stays downstream of both.

const INVARIANT: &str =
    "plan arithmetic out of range: bounds::check_bounds admits only values up to MAX_DISK_SIZE";

/// `a + b` over values `bounds::check_bounds` has admitted.
#[track_caller]
pub fn add(a: u64, b: u64) -> u64 {
    a.checked_add(b).expect(INVARIANT)
}

/// `a - b` where `b <= a` by construction.
#[track_caller]
pub fn sub(a: u64, b: u64) -> u64 {
    a.checked_sub(b).expect(INVARIANT)
}

/// `a * b` over values `bounds::check_bounds` has admitted.
#[track_caller]
pub fn mul(a: u64, b: u64) -> u64 {
    a.checked_mul(b).expect(INVARIANT)
}

/// `a / b` for a divisor that is a sector size or an alignment (never 0).
#[track_caller]
pub fn div(a: u64, b: u64) -> u64 {
    a.checked_div(b).expect(INVARIANT)
}

/// `a % b` for a divisor that is a sector size or an alignment (never 0).
#[track_caller]
pub fn rem(a: u64, b: u64) -> u64 {
    a.checked_rem(b).expect(INVARIANT)
}
