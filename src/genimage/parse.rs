//! The libconfuse syntax of a genimage.cfg, read into an untyped tree of
//! sections and options; every value keeps its `file:line`.
//!
//! Written here rather than taken from a crate: no crate on crates.io reads
//! libconfuse's syntax (the `conf`/`config`-named crates read INI or
//! libconfig, whose lists, titles and string rules differ), and the parts
//! that matter for safety — where `include` may read from, how deep it may
//! go, what `${VAR}` expands to — must be ours to decide anyway.
//!
//! What libconfuse 3.3 (genimage 16's) does, checked against the real tool,
//! and what is kept:
//! - comments `# …`, `// …` (both to the end of the line) and `/* … */`
//!   (not nested: the first `*/` ends it);
//! - `key = value`, `key += value` (appends to a list), `key { … }`,
//!   `key TITLE { … }`; no separators between options (a `,` is an error, a
//!   `;` is part of an unquoted word);
//! - values: unquoted words (anything but blanks and `{ } ( ) = + , " ' * #`),
//!   `"double quoted"` with C escapes (`\n \t \r \b \f \\ \" \' \$`, `\NNN`
//!   octal, `\xHH`; any other `\c` is `c`) and `${VAR}` expansion,
//!   `'single quoted'` (only `\'` and `\\`, no expansion); a list
//!   `{ a, "b", }` (a trailing comma is allowed);
//! - `${NAME}` / `${NAME:-default}`: inside double quotes, or as a whole
//!   unquoted token (`size = ${SIZE}`; `1${X}` is two tokens, an error). An
//!   unset variable is the empty string, as in libconfuse; the default runs
//!   to the first `}` and is not expanded again. The environment is a
//!   parameter, never read here;
//! - `include("file")`, anywhere an option may stand: see
//!   [`super::paths::resolve_within`] for where it may read from.
//!
//! Stricter than libconfuse, on purpose: a section left open at the end of
//! the file (libconfuse accepts it), an included file that is not balanced
//! on its own, a NUL or non-UTF-8 byte in a string, `${…}` as a key or a
//! section name, include cycles (libconfuse only stops at its depth limit).
//! Bounded: a file is at most [`MAX_FILE_BYTES`], all files together
//! [`MAX_TOTAL_BYTES`], sections nest at most [`MAX_SECTION_DEPTH`] deep and
//! includes [`MAX_INCLUDE_DEPTH`] (libconfuse's own limit) deep.
//!
//! Reads only the config files named; spawns nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::paths::resolve_within;

/// The largest config (or included) file read.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// The most bytes read across a config and all its includes.
pub const MAX_TOTAL_BYTES: usize = 8 << 20;
/// How deep `include` may nest (libconfuse stops at the same depth).
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// How deep sections may nest (genimage's deepest is 3: image, vfat, file).
pub const MAX_SECTION_DEPTH: usize = 8;

/// Where a value was written: the file as found and its 1-based line.
#[derive(Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string value (a word, a quoted string, an expanded `${VAR}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub at: Origin,
}

/// An option's value: one string or a `{ … }` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    One(Scalar),
    List(Vec<Scalar>),
}

/// `=` or `+=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assign {
    Set,
    Append,
}

/// One item of a section body, includes already spliced in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Option {
        key: String,
        at: Origin,
        assign: Assign,
        value: Value,
    },
    Section {
        name: String,
        at: Origin,
        title: Option<Scalar>,
        body: Vec<Node>,
    },
}

/// A config that cannot be read: `file:line: message`, or `file: message`
/// when no line applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ParseError {
    /// `file:line` or `file`.
    pub place: String,
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(at: &Origin, message: impl Into<String>) -> Self {
        ParseError {
            place: at.to_string(),
            message: message.into(),
        }
    }
}

/// What a parse may read and expand.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// The directories `include("…")` searches, in order. genimage searches
    /// `--includepath` (colon-separated) and then the current directory:
    /// the caller passes exactly that list.
    pub include_dirs: Vec<PathBuf>,
    /// The environment `${VAR}` expands from.
    pub env: BTreeMap<String, String>,
}

/// Reads `path` (and what it includes) into a tree.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> Result<Vec<Node>, ParseError> {
    let mut state = State {
        opts,
        stack: Vec::new(),
        total: 0,
    };
    let shown: Arc<str> = Arc::from(path.display().to_string());
    let canonical = std::fs::canonicalize(path).map_err(|e| ParseError {
        place: shown.to_string(),
        message: format!("cannot read the config: {e}"),
    })?;
    state.parse_path(&canonical, shown)
}

/// Parses `text` as if read from a file shown as `name`; includes are
/// resolved as for [`parse_file`].
pub fn parse_str(text: &str, name: &str, opts: &ParseOptions) -> Result<Vec<Node>, ParseError> {
    let mut state = State {
        opts,
        stack: Vec::new(),
        total: 0,
    };
    state.parse_text(text, Arc::from(name))
}

struct State<'a> {
    opts: &'a ParseOptions,
    /// Canonical paths of the files being read, outermost first (cycles).
    stack: Vec<(PathBuf, Arc<str>)>,
    total: usize,
}

impl State<'_> {
    fn parse_path(&mut self, canonical: &Path, shown: Arc<str>) -> Result<Vec<Node>, ParseError> {
        let file_error = |message: String| ParseError {
            place: shown.to_string(),
            message,
        };
        let meta = std::fs::metadata(canonical).map_err(|e| file_error(format!("{e}")))?;
        if !meta.is_file() {
            return Err(file_error("not a regular file".into()));
        }
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(file_error(format!(
                "{} bytes: a config file may have at most {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(canonical).map_err(|e| file_error(format!("{e}")))?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(file_error("grew past the size limit while read".into()));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            file_error(format!(
                "not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        self.stack.push((canonical.to_path_buf(), shown.clone()));
        let result = self.parse_text(&text, shown);
        self.stack.pop();
        result
    }

    fn parse_text(&mut self, text: &str, file: Arc<str>) -> Result<Vec<Node>, ParseError> {
        self.total = self.total.saturating_add(text.len());
        if self.total > MAX_TOTAL_BYTES {
            return Err(ParseError {
                place: file.to_string(),
                message: format!("the config and its includes exceed {MAX_TOTAL_BYTES} bytes"),
            });
        }
        let tokens = lex(text, &file, &self.opts.env)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            file,
        };
        let body = self.parse_body(&mut parser, 0)?;
        match parser.peek() {
            Tok::Eof => Ok(body),
            _ => Err(parser.unexpected()),
        }
    }

    /// Items until `}` or the end of the file (the caller checks which).
    fn parse_body(&mut self, p: &mut Parser, depth: usize) -> Result<Vec<Node>, ParseError> {
        let mut body = Vec::new();
        loop {
            let (key, at) = match p.peek().clone() {
                Tok::Eof | Tok::RBrace => return Ok(body),
                Tok::Word(w) => (w, p.origin()),
                Tok::Env(_) => {
                    return Err(ParseError::at(
                        &p.origin(),
                        "a ${VAR} cannot stand for an option or section name",
                    ))
                }
                _ => return Err(p.unexpected()),
            };
            p.bump();
            match p.peek().clone() {
                Tok::Eq | Tok::PlusEq => {
                    let assign = if *p.peek() == Tok::Eq {
                        Assign::Set
                    } else {
                        Assign::Append
                    };
                    p.bump();
                    let value = parse_value(p, &key)?;
                    body.push(Node::Option {
                        key,
                        at,
                        assign,
                        value,
                    });
                }
                Tok::LParen => {
                    let args = parse_args(p, &key)?;
                    if key != "include" {
                        return Err(ParseError::at(
                            &at,
                            format!("no such option '{key}' (include is the only function)"),
                        ));
                    }
                    let [arg] = args.as_slice() else {
                        return Err(ParseError::at(
                            &at,
                            format!("include takes one file name, not {}", args.len()),
                        ));
                    };
                    body.extend(self.include(arg)?);
                }
                Tok::LBrace => {
                    p.bump();
                    let inner = self.section_body(p, &key, &at, depth)?;
                    body.push(Node::Section {
                        name: key,
                        at,
                        title: None,
                        body: inner,
                    });
                }
                Tok::Word(t) | Tok::Quoted(t) | Tok::Env(t) => {
                    let title = Scalar {
                        text: t,
                        at: p.origin(),
                    };
                    p.bump();
                    if *p.peek() != Tok::LBrace {
                        return Err(ParseError::at(
                            &at,
                            format!(
                                "missing opening brace for section '{key}' (or '=' for an option)"
                            ),
                        ));
                    }
                    p.bump();
                    let inner = self.section_body(p, &key, &at, depth)?;
                    body.push(Node::Section {
                        name: key,
                        at,
                        title: Some(title),
                        body: inner,
                    });
                }
                _ => {
                    return Err(ParseError::at(
                        &p.origin(),
                        format!("missing equal sign after option '{key}'"),
                    ))
                }
            }
        }
    }

    fn section_body(
        &mut self,
        p: &mut Parser,
        name: &str,
        at: &Origin,
        depth: usize,
    ) -> Result<Vec<Node>, ParseError> {
        if depth + 1 > MAX_SECTION_DEPTH {
            return Err(ParseError::at(
                at,
                format!("sections nested more than {MAX_SECTION_DEPTH} deep"),
            ));
        }
        let inner = self.parse_body(p, depth + 1)?;
        if *p.peek() != Tok::RBrace {
            return Err(ParseError::at(
                at,
                format!("section '{name}' is not closed before the end of the file"),
            ));
        }
        p.bump();
        Ok(inner)
    }

    fn include(&mut self, arg: &Scalar) -> Result<Vec<Node>, ParseError> {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(ParseError::at(
                &arg.at,
                format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        let found = resolve_within(&arg.text, &self.opts.include_dirs, "the include path")
            .map_err(|why| ParseError::at(&arg.at, format!("include(\"{}\"): {why}", arg.text)))?;
        if let Some(i) = self.stack.iter().position(|(p, _)| *p == found.canonical) {
            let mut chain: Vec<&str> = self.stack[i..].iter().map(|(_, s)| &**s).collect();
            let shown = found.shown.display().to_string();
            chain.push(&shown);
            return Err(ParseError::at(
                &arg.at,
                format!("include cycle: {}", chain.join(" -> ")),
            ));
        }
        let shown: Arc<str> = Arc::from(found.shown.display().to_string());
        self.parse_path(&found.canonical, shown)
    }
}

fn parse_value(p: &mut Parser, key: &str) -> Result<Value, ParseError> {
    match p.peek().clone() {
        Tok::Word(t) | Tok::Quoted(t) | Tok::Env(t) => {
            let at = p.origin();
            p.bump();
            Ok(Value::One(Scalar { text: t, at }))
        }
        Tok::LBrace => {
            p.bump();
            let mut items = Vec::new();
            loop {
                match p.peek().clone() {
                    Tok::RBrace => {
                        p.bump();
                        return Ok(Value::List(items));
                    }
                    Tok::Word(t) | Tok::Quoted(t) | Tok::Env(t) => {
                        items.push(Scalar {
                            text: t,
                            at: p.origin(),
                        });
                        p.bump();
                        match p.peek() {
                            Tok::Comma => p.bump(),
                            Tok::RBrace => {}
                            _ => return Err(p.unexpected()),
                        }
                    }
                    _ => return Err(p.unexpected()),
                }
            }
        }
        Tok::Eof => Err(ParseError::at(
            &p.origin(),
            format!("premature end of file after '{key} ='"),
        )),
        _ => Err(p.unexpected()),
    }
}

fn parse_args(p: &mut Parser, name: &str) -> Result<Vec<Scalar>, ParseError> {
    p.bump(); // (
    let mut args = Vec::new();
    loop {
        match p.peek().clone() {
            Tok::RParen => {
                p.bump();
                return Ok(args);
            }
            Tok::Word(t) | Tok::Quoted(t) | Tok::Env(t) => {
                args.push(Scalar {
                    text: t,
                    at: p.origin(),
                });
                p.bump();
                match p.peek() {
                    Tok::Comma => p.bump(),
                    Tok::RParen => {}
                    _ => return Err(p.unexpected()),
                }
            }
            Tok::Eof => {
                return Err(ParseError::at(
                    &p.origin(),
                    format!("missing ')' for function '{name}'"),
                ))
            }
            _ => return Err(p.unexpected()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// An unquoted word.
    Word(String),
    /// A quoted string, escapes and `${VAR}` done.
    Quoted(String),
    /// A whole-token `${VAR}`, expanded.
    Env(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Eq,
    PlusEq,
    Eof,
}

struct Parser {
    tokens: Vec<(Tok, u32)>,
    pos: usize,
    file: Arc<str>,
}

impl Parser {
    fn peek(&self) -> &Tok {
        // lex() always ends the list with Eof and bump() never passes it.
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.0)
    }
    fn bump(&mut self) {
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
    }
    fn origin(&self) -> Origin {
        let line = self
            .tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |t| t.1);
        Origin {
            file: self.file.clone(),
            line,
        }
    }
    fn unexpected(&self) -> ParseError {
        let what = match self.peek() {
            Tok::Word(w) | Tok::Quoted(w) | Tok::Env(w) => format!("'{w}'"),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Eq => "'='".into(),
            Tok::PlusEq => "'+='".into(),
            Tok::Eof => return ParseError::at(&self.origin(), "premature end of file"),
        };
        ParseError::at(&self.origin(), format!("unexpected token {what}"))
    }
}

/// Characters that end an unquoted word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || "{}()=+,\"'*#".contains(c)
}

fn lex(
    text: &str,
    file: &Arc<str>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(Tok, u32)>, ParseError> {
    let err = |line: u32, m: String| ParseError {
        place: format!("{file}:{line}"),
        message: m,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line: u32 = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => {
                line = line.saturating_add(1);
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                // libconfuse accepts a comment left open at the end.
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line = line.saturating_add(1);
                    }
                    i += 1;
                }
                i += 2;
            }
            '{' | '}' | '(' | ')' | ',' | '=' => {
                let t = match c {
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    _ => Tok::Eq,
                };
                out.push((t, line));
                i += 1;
            }
            '+' if next == Some('=') => {
                out.push((Tok::PlusEq, line));
                i += 2;
            }
            '+' | '*' => return Err(err(line, format!("unexpected character '{c}'"))),
            '"' | '\'' => {
                let start = line;
                let (s, end) = lex_quoted(&chars, i, env, &mut line).map_err(|m| err(line, m))?;
                out.push((Tok::Quoted(s), start));
                i = end;
            }
            '$' if next == Some('{') => {
                let (s, end) = lex_env(&chars, i, env)
                    .ok_or_else(|| err(line, "'${' without its closing '}'".to_string()))?;
                line = line.saturating_add(count_newlines(&chars[i..end]));
                out.push((Tok::Env(s), line));
                i = end;
            }
            _ => {
                let start = i;
                while i < chars.len() && !ends_word(chars[i]) {
                    i += 1;
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), line));
            }
        }
    }
    out.push((Tok::Eof, line));
    Ok(out)
}

fn count_newlines(s: &[char]) -> u32 {
    u32::try_from(s.iter().filter(|c| **c == '\n').count()).unwrap_or(u32::MAX)
}

/// `${NAME}` or `${NAME:-default}` at `chars[at]`: the expansion and the
/// index after the `}`, or None when there is no `}`.
fn lex_env(chars: &[char], at: usize, env: &BTreeMap<String, String>) -> Option<(String, usize)> {
    let start = at + 2;
    let close = start + chars.get(start..)?.iter().position(|c| *c == '}')?;
    let inner: String = chars[start..close].iter().collect();
    let value = match inner.split_once(":-") {
        Some((name, default)) => match env.get(name) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => default.to_string(),
        },
        None => env.get(&inner).cloned().unwrap_or_default(),
    };
    Some((value, close + 1))
}

/// A quoted string starting at `chars[at]` (the quote): its value and the
/// index after the closing quote.
fn lex_quoted(
    chars: &[char],
    at: usize,
    env: &BTreeMap<String, String>,
    line: &mut u32,
) -> Result<(String, usize), String> {
    let quote = chars[at];
    let mut bytes: Vec<u8> = Vec::new();
    let push = |bytes: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    let mut i = at + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("premature end of file in a quoted string".into());
        };
        match c {
            c if c == quote => {
                i += 1;
                break;
            }
            '\n' => {
                *line = line.saturating_add(1);
                push(&mut bytes, c);
                i += 1;
            }
            '\\' if quote == '\'' => match chars.get(i + 1) {
                Some(&e @ ('\'' | '\\')) => {
                    push(&mut bytes, e);
                    i += 2;
                }
                _ => {
                    push(&mut bytes, '\\');
                    i += 1;
                }
            },
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("premature end of file in a quoted string".into());
                };
                i += 2;
                match e {
                    'n' => bytes.push(b'\n'),
                    't' => bytes.push(b'\t'),
                    'r' => bytes.push(b'\r'),
                    'b' => bytes.push(0x08),
                    'f' => bytes.push(0x0c),
                    '0'..='7' => {
                        let mut v: u32 = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.get(i).and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        bytes.push(u8::try_from(v).map_err(|_| "octal escape above \\377")?);
                    }
                    'x' => {
                        let mut v: u32 = 0;
                        let mut n = 0;
                        while n < 2 {
                            match chars.get(i).and_then(|d| d.to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    i += 1;
                                    n += 1;
                                }
                                None => break,
                            }
                        }
                        if n == 0 {
                            return Err("\\x without hex digits".into());
                        }
                        bytes.push(v as u8);
                    }
                    '\n' => {
                        *line = line.saturating_add(1);
                        bytes.push(b'\n');
                    }
                    other => push(&mut bytes, other),
                }
            }
            '$' if quote == '"' && chars.get(i + 1) == Some(&'{') => {
                let (v, end) =
                    lex_env(chars, i, env).ok_or("'${' without its closing '}' in a string")?;
                *line = line.saturating_add(count_newlines(&chars[i..end]));
                bytes.extend_from_slice(v.as_bytes());
                i = end;
            }
            _ => {
                push(&mut bytes, c);
                i += 1;
            }
        }
    }
    if bytes.contains(&0) {
        return Err("a NUL byte in a string (genimage would cut the string there)".into());
    }
    let s = String::from_utf8(bytes).map_err(|_| "an escape makes the string invalid UTF-8")?;
    Ok((s, i))
}
