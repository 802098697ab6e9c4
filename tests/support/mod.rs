//! What the integration tests (each `tests/*.rs` its own crate) share: the
//! rule for a missing tool or privilege ([`tools`], also the library's unit
//! tests' `crate::test_tools`), the `mkimg` binary with a clean environment
//! ([`run`]), small crafted rootfs tarballs ([`tarball`]), small
//! boards to build them with ([`board`]), one `mkimg build` of them and
//! the readers of its outputs ([`build`]), and openEuler- and Fedora-layout
//! rootfs tarballs made from the Debian one ([`layouts`]), the Debian
//! rootfs of a stock board itself ([`rootfs`]), and what a filesystem
//! image holds, read with the reference tools ([`fsimage`]).
//!
//! Each test crate declares `mod support;` and uses a part of it; the rest
//! is dead code in that crate, hence the `allow` below.

#![allow(dead_code)]

pub mod board;
pub mod build;
pub mod fsimage;
pub mod layouts;
pub mod rootfs;
pub mod run;
pub mod tarball;
pub mod tools;
