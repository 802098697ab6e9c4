//! Reading `/etc/default/grub` and `/etc/os-release` without running them.
//!
//! Both are shell fragments. This module understands the subset they use:
//! `KEY=value` and `export KEY=value`, several per line or separated by `;`,
//! single and double quotes, backslash escapes and line continuations,
//! `# comments`, and `$VAR` / `${VAR}` / `${VAR:-word}` / `${VAR-word}`
//! expanded from earlier assignments. Anything else (`if`, function calls)
//! is skipped with a warning.
//!
//! Command substitutions (`` `…` ``, `$(…)`) are never executed. Debian's
//! `GRUB_DISTRIBUTOR=\`( . /etc/os-release; echo ${NAME:-Debian} ) 2>/dev/null || echo Debian\``
//! is answered from the os-release text when the command reads
//! `os-release` and NAME is set there; otherwise the `|| echo WORD`
//! fallback is taken; failing both, the value is empty and a warning says so.
//! The Red Hat family's `$(sed 's, release .*$,,g' /etc/system-release)`
//! is answered from that file's text the same way.
//!
//! Pure: text in, values out.

use std::collections::BTreeMap;

/// What grub.cfg needs from `/etc/default/grub`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultGrub {
    /// `GRUB_DEFAULT` as written (mkimg always boots the first entry).
    pub default: Option<String>,
    /// `GRUB_TIMEOUT` in seconds; -1 waits forever.
    pub timeout: Option<i32>,
    pub distributor: Option<String>,
    pub cmdline_linux: String,
    pub cmdline_linux_default: String,
    /// Every variable assigned, after expansion.
    pub vars: BTreeMap<String, String>,
    /// Lines that were skipped or could not be evaluated.
    pub warnings: Vec<String>,
}

/// The file is not shell this parser can read (e.g. an unterminated quote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {message}")]
pub struct ShellParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parse `/etc/default/grub`; `os_release` is the rootfs's
/// `/etc/os-release` text, used for Debian's GRUB_DISTRIBUTOR.
pub fn parse_default_grub(
    text: &str,
    os_release: Option<&str>,
) -> Result<DefaultGrub, ShellParseError> {
    parse_default_grub_with(text, os_release, None)
}

/// [`parse_default_grub`], also answering the Red Hat family's
/// `GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"`
/// from `/etc/system-release` (its first line up to " release ").
pub fn parse_default_grub_with(
    text: &str,
    os_release: Option<&str>,
    system_release: Option<&str>,
) -> Result<DefaultGrub, ShellParseError> {
    let os_vars = match os_release {
        Some(text) => Some(parse_os_release(text)?),
        None => None,
    };
    let substitute = |command: &str| -> Option<String> {
        if command.contains("os-release") {
            if let Some(name) = os_vars.as_ref().and_then(|v| v.get("NAME")) {
                return Some(name.clone());
            }
        }
        if command.contains("system-release") {
            if let Some(line) = system_release.and_then(|t| t.lines().next()) {
                let name = line.split(" release ").next().unwrap_or(line).trim();
                if !name.is_empty() {
                    return Some(name.to_string());
                }
            }
        }
        let (_, fallback) = command.rsplit_once("|| echo ")?;
        Some(fallback.trim().trim_matches(['"', '\'']).to_string())
    };
    let mut parser = ShellParser::new("/etc/default/grub", text, &substitute);
    parser.run()?;
    let vars = parser.vars;
    let mut warnings = parser.warnings;
    let timeout = vars.get("GRUB_TIMEOUT").and_then(|t| {
        let parsed = t.trim().parse::<i32>().ok();
        if parsed.is_none() {
            warnings.push(format!("GRUB_TIMEOUT={t:?} is not a number; ignored"));
        }
        parsed
    });
    Ok(DefaultGrub {
        default: vars.get("GRUB_DEFAULT").cloned(),
        timeout,
        distributor: vars.get("GRUB_DISTRIBUTOR").cloned(),
        cmdline_linux: vars.get("GRUB_CMDLINE_LINUX").cloned().unwrap_or_default(),
        cmdline_linux_default: vars
            .get("GRUB_CMDLINE_LINUX_DEFAULT")
            .cloned()
            .unwrap_or_default(),
        vars,
        warnings,
    })
}

/// Parse an os-release file (os-release(5)) into its variables.
pub fn parse_os_release(text: &str) -> Result<BTreeMap<String, String>, ShellParseError> {
    let mut parser = ShellParser::new("/etc/os-release", text, &|_| None);
    parser.run()?;
    Ok(parser.vars)
}

/// One word as read: its expanded text and, when it starts with an unquoted
/// `NAME=`, the length of that prefix.
struct Word {
    text: String,
    assign_at: Option<usize>,
}

struct ShellParser<'a> {
    file: &'static str,
    chars: Vec<char>,
    pos: usize,
    line: usize,
    substitute: &'a dyn Fn(&str) -> Option<String>,
    vars: BTreeMap<String, String>,
    warnings: Vec<String>,
}

impl<'a> ShellParser<'a> {
    fn new(file: &'static str, text: &str, substitute: &'a dyn Fn(&str) -> Option<String>) -> Self {
        ShellParser {
            file,
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            substitute,
            vars: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> ShellParseError {
        ShellParseError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn run(&mut self) -> Result<(), ShellParseError> {
        loop {
            // Skip blanks, statement separators and comments.
            while let Some(c) = self.peek() {
                match c {
                    ' ' | '\t' | '\n' | ';' => {
                        self.bump();
                    }
                    '#' => {
                        while self.peek().is_some_and(|c| c != '\n') {
                            self.bump();
                        }
                    }
                    '\\' if self.chars.get(self.pos + 1) == Some(&'\n') => {
                        self.bump();
                        self.bump();
                    }
                    _ => break,
                }
            }
            if self.peek().is_none() {
                return Ok(());
            }
            let line = self.line;
            self.read_statement(line)?;
        }
    }

    /// One statement, up to an unquoted newline, `;` or comment. Each
    /// assignment takes effect as soon as it is read, as in the shell
    /// (`A=1 B=$A` sets B to 1).
    fn read_statement(&mut self, line: usize) -> Result<(), ShellParseError> {
        // Some(true): only assignments so far, after `export`/`readonly`.
        let mut exported: Option<bool> = None;
        let mut skipped = false;
        loop {
            match self.peek() {
                None | Some('\n') | Some(';') => return Ok(()),
                Some(' ') | Some('\t') => {
                    self.bump();
                }
                Some('#') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('\\') if self.chars.get(self.pos + 1) == Some(&'\n') => {
                    self.bump();
                    self.bump();
                }
                Some(_) => {
                    let word = self.read_word()?;
                    match word.assign_at {
                        _ if skipped => {}
                        Some(at) => {
                            let name = word.text[..at - 1].to_string();
                            self.vars.insert(name, word.text[at..].to_string());
                            exported.get_or_insert(false);
                        }
                        None if exported.is_none()
                            && (word.text == "export" || word.text == "readonly") =>
                        {
                            exported = Some(true);
                        }
                        // `export NAME` of an earlier assignment: nothing to do.
                        None if exported == Some(true) => {}
                        None => {
                            self.warnings.push(format!(
                                "{} line {line}: `{}` is not an assignment; skipped",
                                self.file, word.text
                            ));
                            skipped = true;
                        }
                    }
                }
            }
        }
    }

    fn read_word(&mut self) -> Result<Word, ShellParseError> {
        let start_line = self.line;
        let mut text = String::new();
        // Unquoted literal prefix, to recognise `NAME=`.
        let mut literal = true;
        let mut assign_at = None;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' => break,
                '\'' => {
                    literal = false;
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.error(start_line, "unterminated ' quote")),
                            Some('\'') => break,
                            Some(c) => text.push(c),
                        }
                    }
                }
                '"' => {
                    literal = false;
                    self.bump();
                    self.read_double_quoted(&mut text, start_line)?;
                }
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some('\n') | None => {}
                        Some(c) => text.push(c),
                    }
                    literal = false;
                }
                '$' | '`' => {
                    literal = false;
                    self.read_expansion(&mut text, start_line)?;
                }
                '=' if literal && assign_at.is_none() && is_name(&text) => {
                    self.bump();
                    text.push('=');
                    assign_at = Some(text.len());
                }
                c => {
                    self.bump();
                    text.push(c);
                }
            }
        }
        Ok(Word { text, assign_at })
    }

    fn read_double_quoted(
        &mut self,
        text: &mut String,
        line: usize,
    ) -> Result<(), ShellParseError> {
        loop {
            match self.peek() {
                None => return Err(self.error(line, "unterminated \" quote")),
                Some('"') => {
                    self.bump();
                    return Ok(());
                }
                Some('\\') => {
                    self.bump();
                    match self.bump() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => text.push(c),
                        Some('\n') => {}
                        Some(c) => {
                            text.push('\\');
                            text.push(c);
                        }
                        None => return Err(self.error(line, "unterminated \" quote")),
                    }
                }
                Some('$') | Some('`') => self.read_expansion(text, line)?,
                Some(_) => text.push(self.bump().unwrap_or_default()),
            }
        }
    }

    /// `$NAME`, `${…}`, `$(…)` or `` `…` `` at the cursor.
    fn read_expansion(&mut self, text: &mut String, line: usize) -> Result<(), ShellParseError> {
        if self.bump() == Some('`') {
            let mut command = String::new();
            loop {
                match self.bump() {
                    None => return Err(self.error(line, "unterminated ` command substitution")),
                    Some('`') => break,
                    Some('\\') if self.peek() == Some('`') => command.push(self.bump().unwrap()),
                    Some(c) => command.push(c),
                }
            }
            return self.substitute_command(&command, text, line);
        }
        match self.peek() {
            Some('(') => {
                self.bump();
                let mut depth = 1;
                let mut command = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(self.error(line, "unterminated $( command substitution"))
                        }
                        Some('(') => depth += 1,
                        Some(')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                    }
                    command.push(self.chars[self.pos - 1]);
                }
                self.substitute_command(&command, text, line)
            }
            Some('{') => {
                self.bump();
                let mut inner = String::new();
                loop {
                    match self.bump() {
                        None => return Err(self.error(line, "unterminated ${")),
                        Some('}') => break,
                        Some(c) => inner.push(c),
                    }
                }
                // ${NAME:-word}: word when NAME is unset or empty;
                // ${NAME-word}: word only when NAME is unset;
                // ${NAME:+word}: word when NAME is set and not empty;
                // ${NAME+word}: word when NAME is set. The word is taken
                // as written (no expansion inside it).
                let name_len = inner
                    .find(|c: char| c != '_' && !c.is_ascii_alphanumeric())
                    .unwrap_or(inner.len());
                let (name, operation) = inner.split_at(name_len);
                let (colon, operation) = match operation.strip_prefix(':') {
                    Some(rest) => (true, rest),
                    None => (false, operation),
                };
                let value = self.vars.get(name).map(String::as_str);
                // What counts as set: with the colon, an empty value does not.
                let set = value.filter(|v| !(colon && v.is_empty()));
                let expanded = if let Some(word) = operation.strip_prefix('-') {
                    set.unwrap_or(word)
                } else if let Some(word) = operation.strip_prefix('+') {
                    if set.is_some() {
                        word
                    } else {
                        ""
                    }
                } else {
                    value.unwrap_or("")
                };
                text.push_str(expanded);
                Ok(())
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(c) = self
                    .peek()
                    .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
                {
                    name.push(c);
                    self.bump();
                }
                text.push_str(self.vars.get(&name).map(String::as_str).unwrap_or(""));
                Ok(())
            }
            _ => {
                text.push('$');
                Ok(())
            }
        }
    }

    fn substitute_command(
        &mut self,
        command: &str,
        text: &mut String,
        line: usize,
    ) -> Result<(), ShellParseError> {
        match (self.substitute)(command) {
            Some(value) => text.push_str(&value),
            None => self.warnings.push(format!(
                "{} line {line}: command substitution `{}` not run; its value is empty",
                self.file,
                command.trim()
            )),
        }
        Ok(())
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;
