//! genimage.cfg as another way to describe a layout, beside `board/`: the
//! libconfuse syntax ([`parse`]), where included and named files may be
//! read from ([`paths`]), the value syntaxes ([`values`]) and the typed,
//! checked config ([`model`]). Building is not here: the next step maps a
//! [`Config`] onto mkimg's plan, where layout conflicts are found.
//!
//! The config is untrusted input like every input: no panics, bounded
//! sizes and depths, no command it names is ever run, no file outside the
//! include path is read. Imports nothing from the rest of mkimg; reads
//! only the config files; spawns nothing.

pub mod model;
pub mod order;
pub mod parse;
pub mod paths;
pub mod values;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use model::{build_config, Config, Image, ImageKind, Located, Partition};
pub use parse::{parse_file, parse_str, Origin, ParseError, ParseOptions};

/// Reads a genimage.cfg (with its includes) into the typed model.
pub fn load_config(path: &Path, opts: &ParseOptions) -> Result<Config, ParseError> {
    build_config(&parse_file(path, opts)?)
}

/// As [`load_config`], from text shown as `name` in messages.
pub fn load_config_str(text: &str, name: &str, opts: &ParseOptions) -> Result<Config, ParseError> {
    build_config(&parse_str(text, name, opts)?)
}
