//! The serial console of a booting machine, read as text. Pure: it owns the
//! ANSI/VT100 stripper, the boot-marker matcher and the tail of the console;
//! `console/dialogue.rs` owns what is typed (login, the `--run` command,
//! poweroff). Nothing here spawns a process, reads a clock or touches a file:
//! raw console bytes and the elapsed time flow in, stripped text, reached
//! markers and bytes to type flow out. `host/vm.rs` feeds it from QEMU.
//!
//! Markers are matched per line (complete lines, and the line still being
//! printed, so a prompt without a newline counts), with state carried across
//! reads: a marker split over two reads is found.

mod dialogue;

use std::collections::VecDeque;
use std::time::Duration;

pub use dialogue::{Action, Dialogue, DialogueError, Login, Script};

/// Lines of console kept for error messages.
pub const TAIL_LINES: usize = 40;

/// A line this long without a newline is cut, so a console printing garbage
/// does not make each read rescan megabytes.
const MAX_LINE: usize = 16 * 1024;

/// Escape sequences longer than this are garbage, not a sequence: stop
/// swallowing text.
const MAX_SEQUENCE: usize = 256;

/// The built-in boot markers: name, then patterns (`*` matches any text within
/// one line). Order is boot order, used for the report.
pub const BUILTIN_MARKERS: &[(&str, &[&str])] = &[
    ("sbi", &["OpenSBI v"]),
    (
        "firmware",
        &[
            "EDK2 firmware",
            "UEFI firmware",
            "BdsDxe",
            "EDK II",
            "U-Boot ",
        ],
    ),
    ("grub", &["GNU GRUB", "Welcome to GRUB", "Booting `"]),
    ("kernel", &["Linux version"]),
    ("root", &["EXT4-fs (*): mounted filesystem", "Mounted root"]),
    (
        "multi-user",
        &[
            "Reached target multi-user.target",
            "Reached target Multi-User System",
        ],
    ),
    ("login", &["login:"]),
];

/// The markers a boot must reach unless told otherwise (`--markers`). GRUB is
/// left out so extlinux/U-Boot boots pass; it is reported when seen.
pub const DEFAULT_REQUIRED: &[&str] = &["firmware", "kernel", "root", "login"];

/// The markers a `quiet` kernel command line does not print (Debian's
/// default `GRUB_CMDLINE_LINUX_DEFAULT="quiet"`: the kernel logs below
/// KERN_WARNING and systemd's status lines stay off the console). Once a
/// later stage of the boot is reached they can no longer appear, so they
/// count as passed unseen instead of being waited for until the timeout.
pub const HIDDEN_BY_QUIET: &[&str] = &["kernel", "root", "multi-user"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsoleError {
    #[error("unknown boot marker {name:?}; known markers: {known}")]
    UnknownMarker { name: String, known: String },
}

/// Text to find on one line: literal pieces that must appear in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pieces: Vec<Vec<u8>>,
}

impl Pattern {
    /// `*` matches any run of characters within the line.
    pub fn glob(text: &str) -> Self {
        Pattern {
            pieces: text
                .split('*')
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().to_vec())
                .collect(),
        }
    }

    /// The text as is, `*` included.
    pub fn literal(text: &str) -> Self {
        Pattern {
            pieces: vec![text.as_bytes().to_vec()],
        }
    }

    fn matches(&self, line: &[u8]) -> bool {
        let mut rest = line;
        for piece in &self.pieces {
            match find_bytes(rest, piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// A point of the boot to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub name: String,
    pub patterns: Vec<Pattern>,
    /// The boot fails if this marker is not reached.
    pub required: bool,
    /// Where a built-in marker stands in the boot ([`BUILTIN_MARKERS`]
    /// order); `None` for an `--expect` text, which may come at any time.
    pub stage: Option<usize>,
}

/// The built-in markers, `required` naming those that must be reached, then
/// one required literal marker per `--expect` text.
pub fn select_markers(required: &[String], expect: &[String]) -> Result<Vec<Marker>, ConsoleError> {
    if let Some(name) = required
        .iter()
        .find(|name| !BUILTIN_MARKERS.iter().any(|(known, _)| known == name))
    {
        return Err(ConsoleError::UnknownMarker {
            name: name.clone(),
            known: BUILTIN_MARKERS
                .iter()
                .map(|(known, _)| *known)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let builtin = BUILTIN_MARKERS
        .iter()
        .enumerate()
        .map(|(stage, (name, patterns))| Marker {
            name: name.to_string(),
            patterns: patterns.iter().map(|p| Pattern::glob(p)).collect(),
            required: required.iter().any(|r| r == name),
            stage: Some(stage),
        });
    let expected = expect.iter().map(|text| Marker {
        name: text.clone(),
        patterns: vec![Pattern::literal(text)],
        required: true,
        stage: None,
    });
    Ok(builtin.chain(expected).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Escape {
    #[default]
    Text,
    /// After ESC.
    Esc,
    /// ESC then intermediates (`ESC ( B`, `ESC # 8`): ends at a final byte.
    Intermediate,
    /// `ESC [`: ends at a byte in 0x40..=0x7e.
    Csi,
    /// `ESC ]`, `ESC P`, `ESC _`, `ESC ^`, `ESC X`: ends at BEL or `ESC \`.
    String,
    /// ESC inside a string: `\` ends it.
    StringEsc,
}

/// Removes ANSI/VT100 escape sequences (CSI, OSC and other strings,
/// single-character ESC sequences), `\r` and other control characters except
/// `\n` and `\t`. State carries across calls.
#[derive(Debug, Default)]
pub struct AnsiStripper {
    state: Escape,
    length: usize,
}

impl AnsiStripper {
    pub fn strip(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            self.step(byte, out);
        }
    }

    fn step(&mut self, byte: u8, out: &mut Vec<u8>) {
        self.length += 1;
        if self.state != Escape::Text && self.length > MAX_SEQUENCE {
            self.state = Escape::Text;
        }
        let next = match (self.state, byte) {
            (_, 0x1b) if self.state != Escape::String => Escape::Esc,
            (Escape::Text, b'\n' | b'\t') | (Escape::Text, 0x20..=0x7e | 0x80..=0xff) => {
                out.push(byte);
                Escape::Text
            }
            (Escape::Text, _) => Escape::Text,
            (Escape::Esc, b'[') => Escape::Csi,
            (Escape::Esc, b']' | b'P' | b'_' | b'^' | b'X') => Escape::String,
            (Escape::Esc | Escape::Intermediate, 0x20..=0x2f) => Escape::Intermediate,
            (Escape::Esc | Escape::Intermediate, _) => Escape::Text,
            (Escape::Csi, 0x40..=0x7e) => Escape::Text,
            (Escape::Csi, _) => Escape::Csi,
            (Escape::String, 0x07) => Escape::Text,
            (Escape::String, 0x1b) => Escape::StringEsc,
            (Escape::String, _) => Escape::String,
            (Escape::StringEsc, b'\\') => Escape::Text,
            (Escape::StringEsc, _) => Escape::String,
        };
        if self.state == Escape::Text && next != Escape::Text {
            self.length = 0;
        }
        self.state = next;
    }
}

/// What one read of the console gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// The read with escapes stripped.
    pub text: Vec<u8>,
    /// Indexes (into [`Console::markers`]) of markers reached by this read.
    pub reached: Vec<usize>,
}

/// One marker's outcome, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerStatus {
    pub name: String,
    pub required: bool,
    pub reached: Option<Duration>,
    /// Not printed, but a later stage of the boot was reached (a `quiet`
    /// kernel command line; see [`HIDDEN_BY_QUIET`]).
    pub passed_unseen: bool,
}

/// The console of one boot: strips, finds markers, keeps the tail.
#[derive(Debug)]
pub struct Console {
    stripper: AnsiStripper,
    markers: Vec<Marker>,
    reached: Vec<Option<Duration>>,
    /// See [`MarkerStatus::passed_unseen`].
    passed: Vec<bool>,
    line: Vec<u8>,
    tail: VecDeque<String>,
}

impl Console {
    pub fn new(markers: Vec<Marker>) -> Self {
        Console {
            stripper: AnsiStripper::default(),
            reached: vec![None; markers.len()],
            passed: vec![false; markers.len()],
            markers,
            line: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES + 1),
        }
    }

    /// Take raw console bytes read `now` after the start.
    pub fn feed(&mut self, raw: &[u8], now: Duration) -> Fed {
        let mut fed = Fed::default();
        self.stripper.strip(raw, &mut fed.text);
        for &byte in &fed.text {
            if byte == b'\n' || self.line.len() >= MAX_LINE {
                self.match_line(now, &mut fed.reached);
                self.push_tail();
            }
            if byte != b'\n' {
                self.line.push(byte);
            }
        }
        self.match_line(now, &mut fed.reached);
        fed
    }

    fn match_line(&mut self, now: Duration, reached: &mut Vec<usize>) {
        for (index, marker) in self.markers.iter().enumerate() {
            if self.reached[index].is_none()
                && marker.patterns.iter().any(|p| p.matches(&self.line))
            {
                self.reached[index] = Some(now);
                reached.push(index);
            }
        }
        self.pass_hidden_stages();
    }

    /// Markers a quiet boot does not print, before the latest stage reached.
    fn pass_hidden_stages(&mut self) {
        let latest = self
            .markers
            .iter()
            .zip(&self.reached)
            .filter(|(_, reached)| reached.is_some())
            .filter_map(|(marker, _)| marker.stage)
            .max();
        let Some(latest) = latest else { return };
        for (index, marker) in self.markers.iter().enumerate() {
            let hidden = HIDDEN_BY_QUIET.contains(&marker.name.as_str());
            if hidden && marker.stage.is_some_and(|s| s < latest) && self.reached[index].is_none() {
                self.passed[index] = true;
            }
        }
    }

    fn push_tail(&mut self) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    pub fn markers(&self) -> &[Marker] {
        &self.markers
    }

    pub fn reached_at(&self, index: usize) -> Option<Duration> {
        self.reached[index]
    }

    pub fn all_required_reached(&self) -> bool {
        self.markers
            .iter()
            .zip(&self.reached)
            .zip(&self.passed)
            .all(|((marker, reached), passed)| !marker.required || reached.is_some() || *passed)
    }

    /// Every required marker, and every optional one that was reached.
    pub fn report(&self) -> Vec<MarkerStatus> {
        self.markers
            .iter()
            .zip(&self.reached)
            .zip(&self.passed)
            .filter(|((marker, reached), _)| marker.required || reached.is_some())
            .map(|((marker, reached), passed)| MarkerStatus {
                name: marker.name.clone(),
                required: marker.required,
                reached: *reached,
                passed_unseen: *passed,
            })
            .collect()
    }

    /// The last [`TAIL_LINES`] lines, the one still being printed included.
    pub fn tail(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.tail.iter().cloned().collect();
        if !self.line.is_empty() {
            lines.push(String::from_utf8_lossy(&self.line).into_owned());
        }
        let skip = lines.len().saturating_sub(TAIL_LINES);
        lines.split_off(skip)
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
