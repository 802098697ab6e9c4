//! The generated board.toml as it is written: lines of text, each
//! remembering the genimage.cfg `file:line` it came from, so a problem the
//! planner finds on a board line is cited where the user wrote it. Pure
//! text; no I/O.

use crate::genimage::Origin;

/// A board.toml under construction: its lines and their origins.
pub struct Toml {
    pub text: String,
    pub origins: Vec<Origin>,
    pub fallback: Origin,
}

impl Toml {
    pub fn line(&mut self, text: &str, at: Option<&Origin>) {
        self.text.push_str(text);
        self.text.push('\n');
        self.origins
            .push(at.cloned().unwrap_or_else(|| self.fallback.clone()));
    }
    pub fn key(&mut self, key: &str, value: &str, at: Option<&Origin>) {
        self.line(&format!("{key} = {}", quote(value)), at);
    }
    pub fn comment(&mut self, text: &str) {
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.line(&format!("# {clean}"), None);
    }
}

/// A TOML basic string holding `text`.
pub fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
