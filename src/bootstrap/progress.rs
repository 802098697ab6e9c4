//! Progress of a long bootstrap, fed with the tool's stderr lines.
//!
//! On a terminal: one spinner line with the elapsed time and the current
//! phase (mmdebstrap's `I: …` lines); warnings are printed above it (errors
//! reach the user in the command's error, with the stderr tail). Otherwise:
//! each `I:`/`W:`/`E:` line printed plainly with the elapsed time, which
//! reads well in CI logs. Writes to stderr only.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle as BarStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressStyle {
    /// A spinner when stderr is a terminal, else plain lines.
    Auto,
    /// Plain lines.
    Plain,
    /// Nothing (tests, `--quiet`).
    Quiet,
}

pub struct Progress {
    started: Instant,
    bar: Option<ProgressBar>,
    plain: bool,
}

impl Progress {
    pub fn start(style: ProgressStyle, title: &str) -> Self {
        let started = Instant::now();
        let tty = std::io::stderr().is_terminal();
        match style {
            ProgressStyle::Auto if tty => {
                let bar = ProgressBar::new_spinner();
                let template = BarStyle::with_template("{spinner} [{elapsed:>4}] {prefix}: {msg}")
                    .expect("the template is valid");
                bar.set_style(template);
                bar.set_prefix(title.to_string());
                bar.set_message("starting");
                bar.enable_steady_tick(Duration::from_millis(120));
                Progress {
                    started,
                    bar: Some(bar),
                    plain: false,
                }
            }
            ProgressStyle::Auto | ProgressStyle::Plain => {
                eprintln!("{title}");
                Progress {
                    started,
                    bar: None,
                    plain: true,
                }
            }
            ProgressStyle::Quiet => Progress {
                started,
                bar: None,
                plain: false,
            },
        }
    }

    /// One line of the tool's stderr.
    pub fn line(&mut self, line: &str) {
        let Some(kind) = line_kind(line) else { return };
        let stamp = format!("[{:>4}s]", self.started.elapsed().as_secs());
        match (&self.bar, kind) {
            (Some(bar), LineKind::Phase(phase)) => bar.set_message(phase.to_string()),
            (Some(bar), LineKind::Notice) if line.starts_with("W: ") => {
                bar.println(format!("{stamp} {line}"))
            }
            (Some(_), LineKind::Notice) => {}
            (None, _) if self.plain => eprintln!("{stamp} {line}"),
            (None, _) => {}
        }
    }

    pub fn finish(self, ok: bool, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.bar.is_some() || self.plain {
            let outcome = if ok { "done" } else { "failed" };
            eprintln!("bootstrap {outcome} after {:.0}s", elapsed.as_secs_f64());
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LineKind<'a> {
    /// `I: downloading packages with apt...` → `downloading packages with apt`.
    Phase(&'a str),
    /// A warning or error line, worth keeping on screen.
    Notice,
}

fn line_kind(line: &str) -> Option<LineKind<'_>> {
    if let Some(phase) = line.strip_prefix("I: ") {
        // `running --customize-hook in shell: sh -c '…'` names the phase
        // before the shell text.
        let phase = phase.split(" in shell: ").next().unwrap_or(phase);
        return Some(LineKind::Phase(phase.trim_end_matches('.')));
    }
    if line.starts_with("W: ") || line.starts_with("E: ") {
        return Some(LineKind::Notice);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{line_kind, LineKind};

    #[test]
    fn mmdebstrap_lines_are_classified() {
        let hook = "I: running --customize-hook in shell: sh -c 'rm -f \"$1/x\"' exec /tmp/m";
        assert_eq!(
            line_kind(hook),
            Some(LineKind::Phase("running --customize-hook"))
        );
        assert_eq!(
            line_kind("I: extracting archives..."),
            Some(LineKind::Phase("extracting archives"))
        );
        assert_eq!(
            line_kind("W: cannot read /etc/subuid"),
            Some(LineKind::Notice)
        );
        assert_eq!(
            line_kind("E: apt-get update failed"),
            Some(LineKind::Notice)
        );
        assert_eq!(line_kind("Setting up udev (257.9-1) ..."), None);
    }
}
