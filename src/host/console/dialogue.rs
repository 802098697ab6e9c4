//! What mkimg types on the console: the login, a probe that the shell
//! answers, the `--run` command with its output delimited and its exit status
//! captured, then `poweroff`. Pure: stripped console text and the elapsed
//! time flow in, [`Action`]s flow out.
//!
//! The tty echoes what is typed, so every answer waited for is one only the
//! shell can print: `echo MKIMG-READY-$((N+1))` is echoed as typed but
//! answered as `MKIMG-READY-<N+1>`, where N is a nonce from the caller.

use std::str::FromStr;
use std::time::Duration;

use super::find_bytes;

/// After the password, probe the shell this long after if no prompt is seen.
const PROBE_AFTER: Duration = Duration::from_secs(3);
/// Type the probe again this often until it is answered (a login may flush
/// typed-ahead input).
const PROBE_AGAIN: Duration = Duration::from_secs(10);
/// Outside `--run` output, keep this much text to search.
const WINDOW: usize = 4096;

/// `--login USER:PASS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl FromStr for Login {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Login {
                user: user.to_string(),
                password: password.to_string(),
            }),
            _ => Err(format!("expected USER:PASS, got {text:?}")),
        }
    }
}

/// What to do once the machine is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub login: Option<Login>,
    pub run: Option<String>,
    /// Makes the answers waited for unique to this session (the pid will do).
    pub nonce: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Type these bytes on the console.
    Send(Vec<u8>),
    /// What the `--run` command printed (stripped), once it has finished.
    Output(Vec<u8>),
    /// Nothing more to type. `powering_off`: `poweroff` was typed, so the
    /// machine should stop by itself.
    Finished {
        run_status: Option<i32>,
        powering_off: bool,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DialogueError {
    #[error("login as {user:?} failed: the console said \"Login incorrect\"")]
    LoginIncorrect { user: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No login: wait for the required markers.
    Boot,
    LoginPrompt,
    Password,
    /// Password typed, waiting for a prompt (or [`PROBE_AFTER`]).
    Shell {
        since: Duration,
    },
    Probe {
        sent: Duration,
    },
    /// The shell answered; waiting for the required markers.
    Ready,
    Running,
    Done,
}

/// The typing side of a boot session.
#[derive(Debug)]
pub struct Dialogue {
    script: Script,
    phase: Phase,
    window: Vec<u8>,
}

impl Dialogue {
    pub fn new(script: Script) -> Self {
        let phase = if script.login.is_some() {
            Phase::LoginPrompt
        } else {
            Phase::Boot
        };
        Dialogue {
            script,
            phase,
            window: Vec::new(),
        }
    }

    fn ready_token(&self) -> String {
        format!("MKIMG-READY-{}", u64::from(self.script.nonce) + 1)
    }

    fn run_token(&self) -> u64 {
        u64::from(self.script.nonce) + 2
    }

    fn probe(&self) -> Action {
        Action::Send(format!("echo MKIMG-READY-$(({}+1))\n", self.script.nonce).into_bytes())
    }

    /// Take the text the console printed `now` after the start (may be
    /// empty, to let time pass); `boot_ready`: every required marker is
    /// reached.
    pub fn feed(
        &mut self,
        text: &[u8],
        now: Duration,
        boot_ready: bool,
    ) -> Result<Vec<Action>, DialogueError> {
        self.window.extend_from_slice(text);
        let mut actions = Vec::new();
        loop {
            let before = self.phase;
            self.step(now, boot_ready, &mut actions)?;
            if self.phase == before {
                break;
            }
        }
        if self.phase != Phase::Running && self.window.len() > WINDOW {
            self.window.drain(..self.window.len() - WINDOW);
        }
        Ok(actions)
    }

    fn step(
        &mut self,
        now: Duration,
        boot_ready: bool,
        actions: &mut Vec<Action>,
    ) -> Result<(), DialogueError> {
        if matches!(self.phase, Phase::Shell { .. } | Phase::Probe { .. })
            && find_bytes(&self.window, b"Login incorrect").is_some()
        {
            let user = self.script.login.as_ref().map(|l| l.user.clone());
            return Err(DialogueError::LoginIncorrect {
                user: user.unwrap_or_default(),
            });
        }
        let phase = self.phase;
        match phase {
            Phase::Boot if boot_ready => {
                if self.script.run.is_some() {
                    actions.push(self.probe());
                    self.phase = Phase::Probe { sent: now };
                } else {
                    actions.push(Action::Finished {
                        run_status: None,
                        powering_off: false,
                    });
                    self.phase = Phase::Done;
                }
            }
            Phase::LoginPrompt if self.consume_through(b"login:") => {
                let user = &self.script.login.as_ref().expect("login phase").user;
                actions.push(Action::Send(format!("{user}\n").into_bytes()));
                self.phase = Phase::Password;
            }
            Phase::Password if self.consume_through(b"Password:") => {
                let password = &self.script.login.as_ref().expect("login phase").password;
                actions.push(Action::Send(format!("{password}\n").into_bytes()));
                self.phase = Phase::Shell { since: now };
            }
            // No password asked: the shell came straight away.
            Phase::Password if ends_with_prompt(&self.window) => {
                actions.push(self.probe());
                self.phase = Phase::Probe { sent: now };
            }
            Phase::Shell { since }
                if ends_with_prompt(&self.window) || now.saturating_sub(since) >= PROBE_AFTER =>
            {
                actions.push(self.probe());
                self.phase = Phase::Probe { sent: now };
            }
            Phase::Probe { sent } => {
                let token = self.ready_token();
                if self.consume_through(token.as_bytes()) {
                    self.phase = Phase::Ready;
                } else if now.saturating_sub(sent) >= PROBE_AGAIN {
                    actions.push(self.probe());
                    self.phase = Phase::Probe { sent: now };
                }
            }
            Phase::Ready if boot_ready => match &self.script.run {
                Some(command) => {
                    let nonce = self.script.nonce;
                    actions.push(Action::Send(
                        format!(
                            "echo MKIMG-BEGIN-$(({nonce}+2)); {command}; echo MKIMG-END-$?-$(({nonce}+2))\n"
                        )
                        .into_bytes(),
                    ));
                    self.window.clear();
                    self.phase = Phase::Running;
                }
                None => self.power_off(None, actions),
            },
            Phase::Running => {
                if let Some((output, status)) = self.parse_run_output() {
                    actions.push(Action::Output(output));
                    self.power_off(Some(status), actions);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn power_off(&mut self, run_status: Option<i32>, actions: &mut Vec<Action>) {
        actions.push(Action::Send(b"poweroff\n".to_vec()));
        actions.push(Action::Finished {
            run_status,
            powering_off: true,
        });
        self.phase = Phase::Done;
    }

    /// If `needle` is in the window, drop the window through it.
    fn consume_through(&mut self, needle: &[u8]) -> bool {
        match find_bytes(&self.window, needle) {
            Some(at) => {
                self.window.drain(..at + needle.len());
                true
            }
            None => false,
        }
    }

    /// The text between `MKIMG-BEGIN-<T>\n` and `MKIMG-END-<status>-<T>`.
    fn parse_run_output(&self) -> Option<(Vec<u8>, i32)> {
        let token = self.run_token().to_string();
        let begin = format!("MKIMG-BEGIN-{token}");
        let start = find_bytes(&self.window, begin.as_bytes())? + begin.len();
        let start = match self.window[start..].first() {
            Some(b'\n') => start + 1,
            _ => start,
        };
        let mut from = start;
        while let Some(at) = find_bytes(&self.window[from..], b"MKIMG-END-") {
            let end = from + at;
            let rest = &self.window[end + b"MKIMG-END-".len()..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let after = &rest[digits..];
            if digits > 0
                && after.first() == Some(&b'-')
                && after[1..].starts_with(token.as_bytes())
                && after[1 + token.len()..]
                    .first()
                    .is_some_and(|b| !b.is_ascii_digit())
            {
                let status = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
                return Some((self.window[start..end].to_vec(), status));
            }
            from = end + 1;
        }
        None
    }
}

/// Whether the line being printed looks like a shell prompt (`# `, `$ `).
fn ends_with_prompt(window: &[u8]) -> bool {
    let line = match window.iter().rposition(|&b| b == b'\n') {
        Some(at) => &window[at + 1..],
        None => window,
    };
    let trimmed = line.trim_ascii_end();
    trimmed.len() < line.len() && matches!(trimmed.last(), Some(b'#' | b'$'))
}
