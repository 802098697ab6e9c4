//! Hostile inputs: crafted tarballs, boards and command lines, each
//! asserting the exit status, that the message names the problem, and
//! that nothing is left behind. One submodule per area.

#[path = "hostile/budgets.rs"]
mod budgets;
#[path = "hostile/kit.rs"]
mod kit;
#[path = "hostile/messages.rs"]
mod messages;
