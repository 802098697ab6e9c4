//! Hostile inputs: crafted tarballs, board files and command lines that try
//! to make mkimg run host commands, write outside its output, or leak. Each
//! case lives in its own file under `tests/hostile/` and asserts the exit
//! status, the message, and that decoy host files are untouched.

#[path = "hostile/tarball_xattrs.rs"]
mod tarball_xattrs;
