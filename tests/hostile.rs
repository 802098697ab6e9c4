//! Hostile and careless use of `mkimg build`: crafted inputs, odd `-o`
//! targets, signals and crashes at named stages. Each case asserts the exit
//! status, the message, that a previous output survives byte for byte, and
//! that no work dir, staging dir or child process is left.

#[path = "hostile/lifecycle.rs"]
mod lifecycle;
#[path = "hostile/output_dir.rs"]
mod output_dir;
#[path = "hostile/signals.rs"]
mod signals;
