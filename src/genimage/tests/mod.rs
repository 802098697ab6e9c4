//! Tests of the genimage reader: configs written from genimage's README
//! parsed into the model ([`positive`]), every refusal with its message and
//! `file:line` ([`refusals`]), and genimage 16 itself as the oracle
//! ([`oracle`]): it must build every positive config, and reject the
//! malformed ones mkimg rejects.

mod configs;
mod oracle;
mod positive;
mod refusals;

use std::collections::BTreeMap;

use super::model::Config;
use super::parse::{ParseError, ParseOptions};
use super::{load_config_str, Image, ImageKind};

fn opts(env: &[(&str, &str)]) -> ParseOptions {
    ParseOptions {
        include_dirs: Vec::new(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn load(text: &str) -> Config {
    match load_config_str(text, "t.cfg", &opts(&[])) {
        Ok(c) => c,
        Err(e) => panic!("config refused: {e}\n{text}"),
    }
}

fn refuse(text: &str) -> ParseError {
    match load_config_str(text, "t.cfg", &opts(&[])) {
        Ok(c) => panic!("accepted: {c:?}\n{text}"),
        Err(e) => e,
    }
}

fn image<'a>(c: &'a Config, name: &str) -> &'a Image {
    c.images
        .iter()
        .find(|i| i.file.value == name)
        .unwrap_or_else(|| panic!("no image {name}"))
}

fn hd(i: &Image) -> &super::model::Hdimage {
    match &i.kind {
        ImageKind::Hdimage(h) => h,
        other => panic!("not an hdimage: {other:?}"),
    }
}
