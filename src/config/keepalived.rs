//! keepalived.conf → vipkeeper TOML: the engine of `vipkeeper import-keepalived`.
//!
//! Owns reading a keepalived configuration (the main file and its `include`s, with globs
//! resolved relative to the including file and a bounded depth), its block syntax (words,
//! quoted strings, `{ }`, `#`/`!` comments, `$NAME=value` definitions) and the mapping of
//! the VRRP keywords to vipkeeper's keys. The result is annotated TOML plus a list of
//! [`Note`]s, one per keyword that could not be converted exactly, each with the
//! keepalived `file:line` and the reason.
//!
//! It must not run anything, touch the network or write files: it reads the files it is
//! given and returns text. It must never panic on input: keepalived configurations in the
//! wild are messy, so anything odd becomes a Note (the keyword is dropped) or, when no
//! sensible TOML can come out (an unclosed block, an include loop, no convertible
//! instance), an [`ImportError`] naming the `file:line`.
//!
//! Semantics that differ are written out rather than left to defaults: `version` is always
//! written (keepalived's default is 2, vipkeeper's 3), and so is `priority` (keepalived's
//! default is 255 with `state MASTER`, else 100). The output is checked with
//! [`super::parse`]; whatever `vipkeeper check` would still refuse (typically a script
//! that does not exist on this machine) is reported as a Note, never as an error, because
//! the configuration may be converted on a different machine than the one it runs on.
//!
//! The keyword-by-keyword mapping is documented in `docs/migration-from-keepalived.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// How deep `include` may nest. keepalived has no limit; a loop would never end.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// The longest a line may become through `$NAME` substitution; real ones are far shorter.
const MAX_EXPANDED_LINE: usize = 64 * 1024;
/// How deep `{ }` blocks may nest (keepalived's deepest is 3).
const MAX_BLOCK_DEPTH: usize = 16;
/// The file name shown for [`import_text`], which has no path.
pub const TEXT_NAME: &str = "keepalived.conf";

/// The converted configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// vipkeeper's TOML, annotated with comments naming the keepalived source.
    pub toml: String,
    /// What could not be converted exactly, in source order (then output checks).
    pub notes: Vec<Note>,
}

/// One thing that was not converted exactly, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The keepalived file as given or resolved (`converted.toml` for problems that
    /// `vipkeeper check` finds in the output).
    pub file: String,
    /// 1-based line in `file`.
    pub line: usize,
    /// The keepalived keyword concerned.
    pub keyword: String,
    /// What happened to it and why.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: `{}`: {}",
            self.file, self.line, self.keyword, self.message
        )
    }
}

/// Why no TOML could be produced at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: include nested more than {MAX_INCLUDE_DEPTH} deep (an include loop?)")]
    IncludeDepth { file: String, line: usize },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: no vrrp_instance could be converted (see the notes){notes}")]
    NoInstance { file: String, notes: String },
}

/// Convert the keepalived configuration at `path`, following its includes.
pub fn import(path: &Path) -> Result<Import, ImportError> {
    let name = path.display().to_string();
    let text = read_text(path, &name)?;
    let base = path.parent().unwrap_or(Path::new("."));
    convert_source(&text.0, &name, base, text.1)
}

/// Convert `text` (shown as `keepalived.conf` in notes); relative includes are resolved
/// from `base_dir`.
pub fn import_text(text: &str, base_dir: &Path) -> Result<Import, ImportError> {
    convert_source(text, TEXT_NAME, base_dir, false)
}

fn convert_source(text: &str, name: &str, base: &Path, lossy: bool) -> Result<Import, ImportError> {
    let mut lexer = Lexer::default();
    if lossy {
        lexer.note(name, 1, "(file)", "not valid UTF-8; invalid bytes replaced");
    }
    lexer.lex(text, name, base, 0)?;
    let mut pos = 0;
    let tree = parse_items(&lexer.tokens, &mut pos, None, 0, &mut lexer.notes)?;
    let mut converter = Converter {
        notes: lexer.notes,
        ..Converter::default()
    };
    let toml =
        comments_without_control_characters(&converter.convert(&tree, name, &lexer.files)?);
    let mut notes = converter.notes;
    notes.extend(check_output(&toml));
    Ok(Import { toml, notes })
}

/// The text of a file; `true` when invalid UTF-8 had to be replaced.
fn read_text(path: &Path, name: &str) -> Result<(String, bool), ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: name.to_owned(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    })
}

/// What `vipkeeper check` would still refuse in the output, as notes.
fn check_output(toml: &str) -> Vec<Note> {
    match super::parse_with_hostname(toml, "converted.toml", || Some("imported".into())) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|error| {
                let (line, keyword, message) = match error {
                    super::ConfigError::Invalid { at, key, problem } => {
                        (at.line, key.clone(), problem.to_string())
                    }
                    other => (1, "(file)".to_owned(), other.to_string()),
                };
                Note {
                    file: "converted.toml".to_owned(),
                    line,
                    keyword,
                    message: format!("`vipkeeper check` refuses this on this machine: {message}"),
                }
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Lexing: words, quoted strings, braces, comments, includes, $variables.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    file: String,
    line: usize,
}

impl Loc {
    /// `file:line` with the file's base name, for comments in the output (notes and the
    /// header carry the full path).
    fn short(&self) -> String {
        let base = self.file.rsplit('/').next().unwrap_or(&self.file);
        format!("{base}:{}", self.line)
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Word(String, Loc),
    Open(Loc),
    Close(Loc),
    /// End of a line: a statement ends here.
    Eol,
}

#[derive(Default)]
struct Lexer {
    tokens: Vec<Tok>,
    notes: Vec<Note>,
    /// Every file read, in order, for the header.
    files: Vec<String>,
    /// `$NAME=value` definitions.
    vars: HashMap<String, String>,
}

impl Lexer {
    fn note(&mut self, file: &str, line: usize, keyword: &str, message: impl Into<String>) {
        self.notes.push(Note {
            file: file.to_owned(),
            line,
            keyword: keyword.to_owned(),
            message: message.into(),
        });
    }

    fn lex(
        &mut self,
        text: &str,
        file: &str,
        base: &Path,
        depth: usize,
    ) -> Result<(), ImportError> {
        self.files.push(file.to_owned());
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim_start();
            if trimmed.starts_with('@') {
                // `@id` / `@^id` conditional lines depend on keepalived's `-i`.
                let word = trimmed.split_whitespace().next().unwrap_or("@");
                self.note(
                    file,
                    line,
                    word,
                    "conditional configuration line dropped (vipkeeper has one file per \
                     node: resolve it by hand)",
                );
                continue;
            }
            if let Some(definition) = trimmed.strip_prefix('$') {
                if let Some((name, value)) = definition.split_once('=') {
                    let name = name.trim();
                    if !name.is_empty() && !name.contains(char::is_whitespace) {
                        if value.trim_end().ends_with('\\') {
                            self.note(
                                file,
                                line,
                                &format!("${name}"),
                                "multi-line definition not supported; its first line only",
                            );
                        }
                        let value = value.trim().trim_end_matches('\\');
                        let value = self.substitute(value, file, line)?;
                        self.vars.insert(name.to_owned(), value);
                        continue;
                    }
                }
            }
            let expanded = self.substitute(raw, file, line)?;
            let words = self.split_line(&expanded, file, line);
            if words.first().map(|w| w.0.as_str()) == Some("include") {
                self.include(&words, file, line, base, depth)?;
                continue;
            }
            for (word, quoted) in words {
                let loc = Loc {
                    file: file.to_owned(),
                    line,
                };
                self.tokens.push(match (word.as_str(), quoted) {
                    ("{", false) => Tok::Open(loc),
                    ("}", false) => Tok::Close(loc),
                    _ => Tok::Word(word, loc),
                });
            }
            self.tokens.push(Tok::Eol);
        }
        Ok(())
    }

    /// `${NAME}` and `$NAME` for defined names, a few rounds for nested definitions.
    ///
    /// A line may grow to [`MAX_EXPANDED_LINE`] bytes and no further: definitions that use
    /// each other (`$A=$A$A`, repeated) grow exponentially, and would otherwise take all
    /// the memory there is before the first note is written.
    fn substitute(&self, text: &str, file: &str, line: usize) -> Result<String, ImportError> {
        let mut text = text.to_owned();
        if self.vars.is_empty() {
            return Ok(text);
        }
        // Longest names first, so `$AB` is not taken for `$A` followed by `B`.
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort_by_key(|name| std::cmp::Reverse(name.len()));
        for _ in 0..8 {
            let before = text.clone();
            for name in &names {
                let value = &self.vars[*name];
                for pattern in [format!("${{{name}}}"), format!("${name}")] {
                    let count = text.matches(&pattern).count();
                    if count == 0 {
                        continue;
                    }
                    let grown = (text.len() - count * pattern.len())
                        .saturating_add(count.saturating_mul(value.len()));
                    if grown > MAX_EXPANDED_LINE {
                        return Err(ImportError::Syntax {
                            file: file.to_owned(),
                            line,
                            message: format!(
                                "`$` definitions expand this line past {MAX_EXPANDED_LINE} \
                                 bytes (a definition that uses itself?)"
                            ),
                        });
                    }
                    text = text.replace(&pattern, value);
                }
            }
            if text == before {
                break;
            }
        }
        Ok(text)
    }

    /// Words of one line; braces are words of their own, `#` and `!` outside quotes start
    /// a comment, `"..."` is one word without its quotes.
    fn split_line(&mut self, line: &str, file: &str, number: usize) -> Vec<(String, bool)> {
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        let mut current = String::new();
        let flush = |current: &mut String, words: &mut Vec<(String, bool)>| {
            if !current.is_empty() {
                words.push((std::mem::take(current), false));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' | '!' => break,
                '"' => {
                    flush(&mut current, &mut words);
                    let mut quoted = String::new();
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == '"' {
                            closed = true;
                            break;
                        }
                        quoted.push(q);
                    }
                    if !closed {
                        self.note(
                            file,
                            number,
                            "\"",
                            "unterminated quote: the rest of the line taken as one word",
                        );
                    }
                    words.push((quoted, true));
                }
                '{' | '}' => {
                    flush(&mut current, &mut words);
                    words.push((c.to_string(), false));
                }
                c if c.is_whitespace() => flush(&mut current, &mut words),
                c => current.push(c),
            }
        }
        flush(&mut current, &mut words);
        words
    }

    fn include(
        &mut self,
        words: &[(String, bool)],
        file: &str,
        line: usize,
        base: &Path,
        depth: usize,
    ) -> Result<(), ImportError> {
        let Some((pattern, _)) = words.get(1) else {
            self.note(file, line, "include", "no file named; ignored");
            return Ok(());
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(ImportError::IncludeDepth {
                file: file.to_owned(),
                line,
            });
        }
        if pattern.contains('{') {
            self.note(
                file,
                line,
                "include",
                "csh brace patterns are not supported; list the files one by one",
            );
            return Ok(());
        }
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let matches = glob(&full);
        if matches.is_empty() {
            self.note(
                file,
                line,
                "include",
                format!("{} matches no file; skipped", full.display()),
            );
        }
        for path in matches {
            let name = path.display().to_string();
            let (text, lossy) = read_text(&path, &name)?;
            if lossy {
                self.note(
                    &name,
                    1,
                    "(file)",
                    "not valid UTF-8; invalid bytes replaced",
                );
            }
            let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            self.lex(&text, &name, &base, depth + 1)?;
        }
        Ok(())
    }
}

/// The files matching `pattern` (`*`, `?` and `[...]` in any component), sorted, as
/// keepalived's glob(3) gives them. A pattern without wildcards matches itself if it exists.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        let wild = text.contains(['*', '?', '[']);
        let mut next = Vec::new();
        for dir in &current {
            if !wild {
                next.push(dir.join(component.as_os_str()));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    // As in glob(3), wildcards do not match a leading dot.
                    let hidden = name.starts_with('.') && !text.starts_with('.');
                    (!hidden && wildcard(&text, &name)).then(|| dir.join(name))
                })
                .collect();
            found.sort();
            next.extend(found);
        }
        current = next;
    }
    current.retain(|path| path.is_file());
    current
}

/// Shell wildcard match of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear memory, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, n[ni]),
            Some(&c) if c == n[ni] => Some(pi + 1),
            _ => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[...]` class at `start`: the index after it when `c` matches.
fn class(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let first = i;
    while i < p.len() && (p[i] != ']' || i == first) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            matched |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    if i >= p.len() {
        // No closing bracket: a literal `[`.
        return (c == '[').then_some(start + 1);
    }
    (matched != negate).then_some(i + 1)
}

// ---------------------------------------------------------------------------------------
// Parsing: statements and blocks.

#[derive(Debug, Clone)]
struct Node {
    key: String,
    args: Vec<String>,
    block: Option<Vec<Node>>,
    loc: Loc,
}

impl Node {
    /// The keyword and its arguments, then the same for every statement of the block:
    /// for lists written on one line (`unicast_peer { 192.0.2.1 192.0.2.2 }`).
    fn words(&self) -> Vec<(String, Loc)> {
        let mut out = Vec::new();
        for node in self.block.iter().flatten() {
            out.push((node.key.clone(), node.loc.clone()));
            out.extend(node.args.iter().map(|a| (a.clone(), node.loc.clone())));
        }
        out
    }
}

fn parse_items(
    tokens: &[Tok],
    pos: &mut usize,
    opened: Option<&Loc>,
    depth: usize,
    notes: &mut Vec<Note>,
) -> Result<Vec<Node>, ImportError> {
    if depth > MAX_BLOCK_DEPTH {
        let loc = opened.cloned().unwrap_or(Loc {
            file: TEXT_NAME.into(),
            line: 1,
        });
        return Err(ImportError::Syntax {
            file: loc.file,
            line: loc.line,
            message: format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"),
        });
    }
    let mut items = Vec::new();
    loop {
        match tokens.get(*pos) {
            None => {
                return match opened {
                    Some(loc) => Err(ImportError::Syntax {
                        file: loc.file.clone(),
                        line: loc.line,
                        message: "this `{` is never closed".into(),
                    }),
                    None => Ok(items),
                }
            }
            Some(Tok::Eol) => *pos += 1,
            Some(Tok::Close(loc)) => {
                *pos += 1;
                if opened.is_some() {
                    return Ok(items);
                }
                notes.push(Note {
                    file: loc.file.clone(),
                    line: loc.line,
                    keyword: "}".into(),
                    message: "closes no block; ignored".into(),
                });
            }
            Some(Tok::Open(loc)) => {
                let loc = loc.clone();
                *pos += 1;
                parse_items(tokens, pos, Some(&loc), depth + 1, notes)?;
                notes.push(Note {
                    file: loc.file.clone(),
                    line: loc.line,
                    keyword: "{".into(),
                    message: "a block without a keyword; dropped".into(),
                });
            }
            Some(Tok::Word(key, loc)) => {
                let (key, loc) = (key.clone(), loc.clone());
                *pos += 1;
                let mut args = Vec::new();
                while let Some(Tok::Word(word, _)) = tokens.get(*pos) {
                    args.push(word.clone());
                    *pos += 1;
                }
                // `keyword` alone on its line followed by `{` on the next one.
                let mut look = *pos;
                while matches!(tokens.get(look), Some(Tok::Eol)) {
                    look += 1;
                }
                let block = match tokens.get(look) {
                    Some(Tok::Open(open)) => {
                        let open = open.clone();
                        *pos = look + 1;
                        Some(parse_items(tokens, pos, Some(&open), depth + 1, notes)?)
                    }
                    _ => None,
                };
                items.push(Node {
                    key,
                    args,
                    block,
                    loc,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conversion.

/// A vipkeeper check being built, from a `vrrp_script`, `vrrp_track_process`,
/// `track_file` or a `track_interface` line.
#[derive(Debug, Clone)]
struct CheckOut {
    /// The TOML lines of the table body (after the header), comments included.
    lines: Vec<String>,
    /// keepalived's weight on the definition (tracks may override it).
    weight: i64,
    reverse: bool,
    kind: CheckKind,
    /// Where it was defined, for notes.
    origin: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckKind {
    Script,
    Process,
    File,
    Interface,
}

impl CheckKind {
    /// keepalived's weight range for this tracker.
    fn weight_limit(self) -> i64 {
        match self {
            CheckKind::File => 254,
            _ => 253,
        }
    }
}

#[derive(Debug, Clone)]
struct TrackOut {
    check: String,
    weight: i64,
    reverse: bool,
    comment: String,
}

#[derive(Debug, Clone, Default)]
struct HooksOut {
    master: Option<String>,
    backup: Option<String>,
    fault: Option<String>,
    stop: Option<String>,
    any: Option<String>,
}

#[derive(Debug, Default)]
struct Globals {
    node_name: Option<String>,
    version: Option<(i64, Loc)>,
    garp: Vec<String>,
}

#[derive(Default)]
struct Converter {
    notes: Vec<Note>,
    globals: Globals,
    checks: BTreeMap<String, CheckOut>,
    /// keepalived name → vipkeeper check name.
    check_names: HashMap<String, String>,
    /// Checks some instance or group tracks.
    tracked: std::collections::BTreeSet<String>,
    /// keepalived instance name → vipkeeper name, for groups.
    instance_names: HashMap<String, String>,
    /// Instances that are members of a group without `sync_group_tracking_weight`.
    unweighted_members: std::collections::HashSet<String>,
}

impl Converter {
    fn note(&mut self, loc: &Loc, keyword: &str, message: impl Into<String>) {
        self.notes.push(Note {
            file: loc.file.clone(),
            line: loc.line,
            keyword: keyword.to_owned(),
            message: message.into(),
        });
    }

    fn convert(
        &mut self,
        tree: &[Node],
        main: &str,
        files: &[String],
    ) -> Result<String, ImportError> {
        // Definitions first: instances refer to scripts and groups to instances, and
        // keepalived allows either order.
        for node in tree {
            match node.key.as_str() {
                "global_defs" => self.global_defs(node),
                "vrrp_script" => self.vrrp_script(node),
                "vrrp_track_process" => self.track_process_def(node),
                "track_file" | "vrrp_track_file" => self.track_file_def(node),
                _ => {}
            }
        }
        // Which instances are in a group without tracking weights, before converting them.
        for node in tree.iter().filter(|n| n.key == "vrrp_sync_group") {
            let weighted = node
                .block
                .iter()
                .flatten()
                .any(|n| n.key == "sync_group_tracking_weight");
            if !weighted {
                for member in node.block.iter().flatten().filter(|n| n.key == "group") {
                    for (name, _) in member.words() {
                        self.unweighted_members.insert(name);
                    }
                }
            }
        }
        let mut instances = Vec::new();
        for node in tree.iter().filter(|n| n.key == "vrrp_instance") {
            if let Some(text) = self.instance(node) {
                instances.push(text);
            }
        }
        let mut groups = Vec::new();
        for node in tree.iter().filter(|n| n.key == "vrrp_sync_group") {
            if let Some(text) = self.group(node) {
                groups.push(text);
            }
        }
        for node in tree {
            match node.key.as_str() {
                "global_defs" | "vrrp_script" | "vrrp_track_process" | "track_file"
                | "vrrp_track_file" | "vrrp_instance" | "vrrp_sync_group" => {}
                "virtual_server" | "virtual_server_group" | "real_server" => self.note(
                    &node.loc,
                    &node.key,
                    "LVS/IPVS load balancing is not part of vipkeeper (HAProxy balances); \
                     dropped",
                ),
                "static_ipaddress" | "static_routes" | "static_rules" => self.note(
                    &node.loc,
                    &node.key,
                    "static addresses and routes are not managed by vipkeeper (use the \
                     distribution's network configuration); dropped",
                ),
                "bfd_instance" => self.note(
                    &node.loc,
                    &node.key,
                    "BFD is not supported; dropped (track a `tcp` or `process` check instead)",
                ),
                "garp_group" => self.note(
                    &node.loc,
                    &node.key,
                    "GARP pacing groups are not supported; dropped",
                ),
                other => self.note(&node.loc, other, "unknown top-level keyword; dropped"),
            }
        }
        if instances.is_empty() {
            let notes: String = self.notes.iter().map(|n| format!("\n  {n}")).collect();
            return Err(ImportError::NoInstance {
                file: main.to_owned(),
                notes,
            });
        }
        for (name, check) in &self.checks {
            if !self.tracked.contains(name) {
                let message = "defined but tracked by no instance or group; dropped \
                               (keepalived never runs it either)";
                self.notes.push(Note {
                    file: check.origin.file.clone(),
                    line: check.origin.line,
                    keyword: name.clone(),
                    message: message.into(),
                });
            }
        }
        Ok(self.emit(main, files, &instances, &groups))
    }

    fn emit(
        &self,
        main: &str,
        files: &[String],
        instances: &[String],
        groups: &[String],
    ) -> String {
        let mut out = String::new();
        out.push_str("# vipkeeper configuration imported from keepalived by\n");
        out.push_str("# `vipkeeper import-keepalived`.\n");
        out.push_str(&format!("# Source: {main}\n"));
        for file in files.iter().skip(1) {
            out.push_str(&format!("#   included: {file}\n"));
        }
        out.push_str(
            "# Review it, then run `vipkeeper check -c FILE`. Comments name the keepalived\n\
             # keyword and file:line each setting comes from.\n",
        );
        if !self.notes.is_empty() {
            out.push_str("#\n# Not converted exactly (the importer's notes):\n");
            for note in &self.notes {
                out.push_str(&format!("#   {}\n", one_line(&note.to_string())));
            }
        }
        out.push('\n');
        if self.globals.node_name.is_some() || !self.globals.garp.is_empty() {
            out.push_str("[global]\n");
            if let Some(name) = &self.globals.node_name {
                out.push_str(&format!("node_name = {}  # router_id\n", quote(name)));
            }
            for line in &self.globals.garp {
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        for instance in instances {
            out.push_str(instance);
            out.push('\n');
        }
        for group in groups {
            out.push_str(group);
            out.push('\n');
        }
        for (name, check) in &self.checks {
            if !self.tracked.contains(name) {
                continue;
            }
            out.push_str(&format!("[check.{}]\n", table_key(name)));
            for line in &check.lines {
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }

    fn global_defs(&mut self, node: &Node) {
        for item in node.block.iter().flatten() {
            let arg = item.args.first().map(String::as_str);
            let loc = &item.loc;
            match item.key.as_str() {
                "router_id" => match arg {
                    Some(name) if valid_node_name(name) => {
                        self.globals.node_name = Some(name.to_owned())
                    }
                    _ => self.note(loc, "router_id", "not a valid node_name; dropped"),
                },
                "vrrp_version" => match arg.and_then(parse_int) {
                    Some(v @ (2 | 3)) => self.globals.version = Some((v, loc.clone())),
                    _ => self.note(loc, "vrrp_version", "not 2 or 3; dropped"),
                },
                "vrrp_garp_master_repeat"
                | "vrrp_garp_master_delay"
                | "vrrp_garp_master_refresh"
                | "vrrp_garp_lower_prio_repeat" => {
                    let key = item.key.trim_start_matches("vrrp_");
                    if let Some(line) = self.garp(key, arg, loc) {
                        let mut garp = std::mem::take(&mut self.globals.garp);
                        self.set_line(&mut garp, key, loc, line);
                        self.globals.garp = garp;
                    }
                }
                "enable_script_security" => {}
                "script_user" => self.note(
                    loc,
                    "script_user",
                    "dropped: checks and hooks run as vipkeeper's user; as root, script \
                     security is always on",
                ),
                "vrrp_strict" => self.note(
                    loc,
                    "vrrp_strict",
                    "dropped: vipkeeper has no strict mode (its VIPs always accept traffic, \
                     as keepalived's `accept`)",
                ),
                "vrrp_mcast_group4" | "vrrp_mcast_group6" => self.note(
                    loc,
                    &item.key,
                    "dropped: vipkeeper uses the RFC groups 224.0.0.18 / ff02::12",
                ),
                "notification_email"
                | "notification_email_from"
                | "smtp_server"
                | "smtp_connect_timeout"
                | "smtp_helo_name"
                | "no_email_faults" => self.note(
                    loc,
                    &item.key,
                    "e-mail alerts are not supported; dropped (use a notify hook)",
                ),
                "vrrp_skip_check_adv_addr" | "vrrp_check_unicast_src" => self.note(
                    loc,
                    &item.key,
                    "dropped: vipkeeper's own behaviour applies (see the migration guide)",
                ),
                other => self.note(loc, other, "not converted; dropped"),
            }
        }
    }

    /// A garp key (without `vrrp_`) as a TOML line, or a note.
    fn garp(&mut self, key: &str, arg: Option<&str>, loc: &Loc) -> Option<String> {
        let comment = format!("  # {key} ({})", loc.short());
        match key {
            "garp_master_repeat" | "garp_lower_prio_repeat" => match arg.and_then(parse_int) {
                Some(n @ 0..=100) => Some(format!("{key} = {n}{comment}")),
                _ => {
                    self.note(loc, key, "not 0..100; dropped");
                    None
                }
            },
            "garp_master_delay" => match arg.and_then(parse_millis) {
                Some(ms) if ms <= 1_000_000 => Some(format!("{key} = {}{comment}", duration(ms))),
                _ => {
                    self.note(loc, key, "not 0..1000 seconds; dropped");
                    None
                }
            },
            "garp_master_refresh" => match arg.and_then(parse_millis) {
                Some(0) => Some(format!("{key} = \"0s\"{comment}")),
                Some(ms) if (1000..=86_400_000).contains(&ms) => {
                    Some(format!("{key} = {}{comment}", duration(ms)))
                }
                _ => {
                    self.note(loc, key, "not 0 or 1s..24h; dropped");
                    None
                }
            },
            _ => None,
        }
    }

    /// A unique vipkeeper check name for a keepalived tracker name.
    fn check_name(&mut self, wanted: &str, loc: &Loc) -> String {
        let mut name = sanitize(wanted);
        if name != wanted {
            self.note(
                loc,
                wanted,
                format!("renamed `{name}`: check names are letters, digits, `-`, `_`, `.`"),
            );
        }
        let base = name.clone();
        let mut n = 2;
        while self.checks.contains_key(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    }

    fn vrrp_script(&mut self, node: &Node) {
        let Some(raw_name) = node.args.first() else {
            self.note(&node.loc, "vrrp_script", "no name; dropped");
            return;
        };
        let origin = node.loc.short();
        let mut lines = vec![
            format!("# keepalived: vrrp_script {raw_name} ({origin})"),
            "type = \"exec\"".to_owned(),
        ];
        let (mut weight, mut reverse) = (0, false);
        let mut script = None;
        for item in node.block.iter().flatten() {
            let arg = item.args.first().map(String::as_str);
            let loc = &item.loc;
            match item.key.as_str() {
                "script" => script = arg.map(|s| (s.to_owned(), loc.clone())),
                "interval" | "timeout" => match arg.and_then(parse_millis) {
                    Some(ms) => {
                        let clamped = ms.clamp(10, 3_600_000);
                        if clamped != ms {
                            self.note(loc, &item.key, "outside 10ms..1h; clamped");
                        }
                        let line = format!("{} = {}", item.key, duration(clamped));
                        self.set_line(&mut lines, &item.key, loc, line);
                    }
                    None => self.note(loc, &item.key, "not a number of seconds; dropped"),
                },
                "rise" | "fall" => match arg.and_then(parse_int) {
                    Some(n) => {
                        let clamped = n.clamp(1, 100);
                        if clamped != n {
                            self.note(loc, &item.key, "outside 1..100; clamped");
                        }
                        let line = format!("{} = {clamped}", item.key);
                        self.set_line(&mut lines, &item.key, loc, line);
                    }
                    None => self.note(loc, &item.key, "not a number; dropped"),
                },
                "weight" => {
                    (weight, reverse) = self.weight(item, CheckKind::Script);
                }
                "init_fail" => {
                    self.set_line(&mut lines, "init_fail", loc, "init_fail = true".into())
                }
                "user" => self.note(
                    loc,
                    "user",
                    "dropped: the check runs as vipkeeper's user (root, with script security)",
                ),
                other => self.note(
                    loc,
                    other,
                    "not a vrrp_script keyword vipkeeper has; dropped",
                ),
            }
        }
        let Some((script, loc)) = script else {
            self.note(&node.loc, "vrrp_script", "no `script`; dropped");
            return;
        };
        let (command, shell) = command(&script);
        lines.insert(2, format!("command = {}", array(&command)));
        if shell {
            lines.insert(
                3,
                "shell = true  # keepalived runs a command that is not an executable path \
                 through a shell"
                    .into(),
            );
        }
        if let Some(process) = process_probe(&script) {
            self.note(
                &loc,
                "script",
                format!(
                    "`{script}` kept as an exec check; the better replacement is a process \
                     check: `type = \"process\"`, `name = \"{process}\"` (sees a death at \
                     once, forks nothing)"
                ),
            );
        }
        self.add_check(raw_name, node, lines, (weight, reverse), CheckKind::Script);
    }

    /// Add `line` (`key = value`) to the lines of one TOML table. keepalived lets a repeated
    /// keyword override the earlier one; TOML refuses a key twice, so the earlier line goes.
    fn set_line(&mut self, lines: &mut Vec<String>, key: &str, loc: &Loc, line: String) {
        let prefix = format!("{key} =");
        let before = lines.len();
        lines.retain(|existing| !existing.starts_with(&prefix));
        if lines.len() != before {
            self.note(loc, key, "repeated; this one counts, as in keepalived");
        }
        lines.push(line);
    }

    /// Register a converted check under a TOML-safe name derived from keepalived's.
    fn add_check(
        &mut self,
        raw_name: &str,
        node: &Node,
        lines: Vec<String>,
        (weight, reverse): (i64, bool),
        kind: CheckKind,
    ) {
        let name = self.check_name(raw_name, &node.loc);
        self.check_names.insert(raw_name.to_owned(), name.clone());
        self.checks.insert(
            name,
            CheckOut {
                lines,
                weight,
                reverse,
                kind,
                origin: node.loc.clone(),
            },
        );
    }

    fn track_process_def(&mut self, node: &Node) {
        let Some(raw_name) = node.args.first() else {
            self.note(&node.loc, &node.key, "no name; dropped");
            return;
        };
        let origin = node.loc.short();
        let (mut weight, mut reverse) = (0, false);
        let mut process = None;
        for item in node.block.iter().flatten() {
            let loc = &item.loc;
            match item.key.as_str() {
                "process" => {
                    if item.args.len() > 1 {
                        self.note(
                            loc,
                            "process",
                            "parameters are not matched by vipkeeper (it matches the name \
                             only); dropped",
                        );
                    }
                    process = item.args.first().cloned();
                }
                "weight" => (weight, reverse) = self.weight(item, CheckKind::Process),
                "quorum" => {
                    if item.args.first().and_then(|a| parse_int(a)) != Some(1) {
                        self.note(
                            loc,
                            "quorum",
                            "vipkeeper's process check is up with one process; dropped",
                        );
                    }
                }
                "delay" | "fork_delay" | "terminate_delay" => self.note(
                    loc,
                    &item.key,
                    "dropped: deaths are seen at once (pidfd); a check's `rise`/`fall` do not \
                     apply to watched checks",
                ),
                other => self.note(loc, other, "not supported by the process check; dropped"),
            }
        }
        let Some(process) = process else {
            self.note(&node.loc, &node.key, "no `process`; dropped");
            return;
        };
        // keepalived compares the kernel's comm, which is the basename cut to 15 bytes.
        let base = process.rsplit('/').next().unwrap_or(&process).to_owned();
        let mut comm = base.clone();
        while comm.len() > 15 {
            comm.pop();
        }
        if comm != process {
            self.note(
                &node.loc,
                "process",
                format!("matched by its process name `{comm}` (the kernel's comm)"),
            );
        }
        let lines = vec![
            format!("# keepalived: {} {raw_name} ({origin})", node.key),
            "type = \"process\"".to_owned(),
            format!("name = {}", quote(&comm)),
        ];
        self.add_check(raw_name, node, lines, (weight, reverse), CheckKind::Process);
    }

    fn track_file_def(&mut self, node: &Node) {
        let Some(raw_name) = node.args.first() else {
            self.note(&node.loc, &node.key, "no name; dropped");
            return;
        };
        let origin = node.loc.short();
        let (mut weight, mut reverse) = (1, false);
        let mut path = None;
        for item in node.block.iter().flatten() {
            let loc = &item.loc;
            match item.key.as_str() {
                "file" => path = item.args.first().cloned(),
                "weight" => (weight, reverse) = self.weight(item, CheckKind::File),
                "init_file" => self.note(
                    loc,
                    "init_file",
                    "dropped: vipkeeper does not create the file (a missing file counts as 0)",
                ),
                other => self.note(loc, other, "not supported by the file check; dropped"),
            }
        }
        let Some(path) = path else {
            self.note(&node.loc, &node.key, "no `file`; dropped");
            return;
        };
        if !path.starts_with('/') {
            self.note(
                &node.loc,
                "file",
                "not an absolute path; `check` will refuse it",
            );
        }
        let lines = vec![
            format!("# keepalived: {} {raw_name} ({origin})", node.key),
            "type = \"file\"".to_owned(),
            format!("path = {}", quote(&path)),
        ];
        self.add_check(raw_name, node, lines, (weight, reverse), CheckKind::File);
    }

    /// `weight W [reverse]` on a definition or a track line, clamped to keepalived's range.
    fn weight(&mut self, item: &Node, kind: CheckKind) -> (i64, bool) {
        let mut args = item.args.iter();
        let weight = args.next().and_then(|w| parse_int(w));
        let reverse = args.any(|a| a == "reverse");
        match weight {
            Some(w) => (self.clamp_weight(w, kind, &item.loc), reverse),
            None => {
                self.note(&item.loc, "weight", "not a number; weight 0 (FAULT) used");
                (0, reverse)
            }
        }
    }

    fn clamp_weight(&mut self, weight: i64, kind: CheckKind, loc: &Loc) -> i64 {
        let limit = kind.weight_limit();
        let clamped = weight.clamp(-limit, limit);
        if clamped != weight {
            self.note(
                loc,
                "weight",
                format!("{weight} is outside -{limit}..{limit}; {clamped} used (as keepalived)"),
            );
        }
        clamped
    }

    /// `track_script`, `track_process`, `track_file` and `track_interface` blocks of an
    /// instance or a group.
    fn tracks(&mut self, item: &Node, out: &mut Vec<TrackOut>) {
        for line in item.block.iter().flatten() {
            let loc = &line.loc;
            let raw = line.key.clone();
            // A `weight` given on the track line overrides the definition's.
            let mut override_weight = None;
            let mut reverse_flag = None;
            let mut args = line.args.iter();
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "weight" => override_weight = args.next().and_then(|w| parse_int(w)),
                    "reverse" => reverse_flag = Some(true),
                    "noreverse" => reverse_flag = Some(false),
                    other => self.note(loc, other, "unknown track option; dropped"),
                }
            }
            let check = if item.key == "track_interface" {
                // A space never appears in a keepalived name, so this key cannot collide.
                let key = format!("track_interface {raw}");
                let existing = self.check_names.get(&key).cloned();
                let name = match existing {
                    Some(existing) => existing,
                    None => {
                        let check = self.check_name(&format!("if_{raw}"), loc);
                        self.check_names.insert(key, check.clone());
                        self.checks.insert(
                            check.clone(),
                            CheckOut {
                                lines: vec![
                                    format!(
                                        "# keepalived: track_interface {raw} ({})",
                                        loc.short()
                                    ),
                                    "type = \"interface\"".into(),
                                    format!("interface = {}", quote(&raw)),
                                ],
                                weight: 0,
                                reverse: false,
                                kind: CheckKind::Interface,
                                origin: loc.clone(),
                            },
                        );
                        check
                    }
                };
                Some(name)
            } else {
                self.check_names.get(&raw).cloned()
            };
            let Some(check) = check else {
                self.note(
                    loc,
                    &raw,
                    format!(
                        "{}: no such tracker defined (or it was dropped); dropped",
                        item.key
                    ),
                );
                continue;
            };
            if out.iter().any(|t| t.check == check) {
                self.note(loc, &raw, "tracked twice; the second one dropped");
                continue;
            }
            let Some(def) = self.checks.get(&check).cloned() else {
                continue;
            };
            let weight = match override_weight {
                Some(w) => self.clamp_weight(w, def.kind, loc),
                None => def.weight,
            };
            let reverse = reverse_flag.unwrap_or(def.reverse);
            self.tracked.insert(check.clone());
            out.push(TrackOut {
                check,
                weight,
                reverse,
                comment: format!("{} {raw} ({})", item.key, loc.short()),
            });
        }
    }

    fn hook(&mut self, item: &Node, any: bool) -> Option<String> {
        let Some(script) = item.args.first() else {
            self.note(&item.loc, &item.key, "no command; dropped");
            return None;
        };
        if item.args.len() > 1 {
            self.note(
                &item.loc,
                &item.key,
                "the user to run it as is dropped: hooks run as vipkeeper's user",
            );
        }
        let (mut argv, shell) = command(script);
        if shell && any {
            // keepalived appends its four arguments to the command; through `sh -c` they
            // arrive as positional parameters, so pass them on.
            argv[0].push_str(" \"$@\"");
        }
        Some(if shell {
            format!(
                "[{{ command = {}, shell = true }}]  # {} ({})",
                array(&argv),
                item.key,
                item.loc.short()
            )
        } else {
            format!("{}  # {} ({})", array(&argv), item.key, item.loc.short())
        })
    }

    fn hooks_item(&mut self, item: &Node, hooks: &mut HooksOut) -> bool {
        if !matches!(
            item.key.as_str(),
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify"
        ) {
            return false;
        }
        let value = self.hook(item, item.key == "notify");
        let slot = match item.key.as_str() {
            "notify_master" => &mut hooks.master,
            "notify_backup" => &mut hooks.backup,
            "notify_fault" => &mut hooks.fault,
            "notify_stop" => &mut hooks.stop,
            _ => &mut hooks.any,
        };
        let twice = slot.is_some();
        if value.is_some() {
            *slot = value;
        }
        if twice {
            self.note(&item.loc, &item.key, "given twice; the last one kept");
        }
        true
    }

    fn instance(&mut self, node: &Node) -> Option<String> {
        let Some(raw_name) = node.args.first().cloned() else {
            self.note(&node.loc, "vrrp_instance", "no name; instance dropped");
            return None;
        };
        let mut name = sanitize(&raw_name);
        if name != raw_name {
            self.note(
                &node.loc,
                "vrrp_instance",
                format!("renamed `{name}`: instance names are letters, digits, `-`, `_`, `.`"),
            );
        }
        while self.instance_names.values().any(|n| n == &name) {
            name.push('_');
        }
        let here = |loc: &Loc| loc.short();
        let mut interface = None;
        let mut vrid = None;
        let mut priority: Option<(i64, Loc)> = None;
        let mut state: Option<(String, Loc)> = None;
        let mut version = self.globals.version.clone();
        let mut advert: Option<(f64, Loc)> = None;
        let mut nopreempt: Option<Loc> = None;
        let mut preempt_delay: Option<(u64, Loc)> = None;
        let mut source: Option<(String, Loc)> = None;
        let mut peers: Option<(Vec<String>, Loc)> = None;
        let mut vips: Vec<String> = Vec::new();
        let mut vip_lines: Vec<Loc> = Vec::new();
        let mut v6 = false;
        let mut auth: Option<(String, Loc)> = None;
        let mut tracks = Vec::new();
        let mut hooks = HooksOut::default();
        let mut extra = Vec::new();
        for item in node.block.iter().flatten() {
            let arg = item.args.first().map(String::as_str);
            let loc = &item.loc;
            if self.hooks_item(item, &mut hooks) {
                continue;
            }
            match item.key.as_str() {
                "interface" => interface = arg.map(|a| (a.to_owned(), loc.clone())),
                "virtual_router_id" => match arg.and_then(parse_int) {
                    Some(v @ 1..=255) => vrid = Some((v, loc.clone())),
                    _ => self.note(loc, "virtual_router_id", "not 1..255"),
                },
                "priority" => match arg.and_then(parse_int) {
                    Some(p @ 1..=255) => priority = Some((p, loc.clone())),
                    _ => self.note(loc, "priority", "not 1..255; keepalived's default used"),
                },
                "state" => state = arg.map(|a| (a.to_ascii_uppercase(), loc.clone())),
                "version" => match arg.and_then(parse_int) {
                    Some(v @ (2 | 3)) => version = Some((v, loc.clone())),
                    _ => self.note(loc, "version", "not 2 or 3; dropped"),
                },
                "advert_int" => match arg.and_then(|a| a.parse::<f64>().ok()) {
                    Some(s) if s.is_finite() && s > 0.0 => advert = Some((s, loc.clone())),
                    _ => self.note(loc, "advert_int", "not a positive number; 1s used"),
                },
                "nopreempt" => nopreempt = Some(loc.clone()),
                "preempt" => nopreempt = None,
                "preempt_delay" => match arg.and_then(parse_millis) {
                    Some(ms) => preempt_delay = Some((ms.min(1_000_000), loc.clone())),
                    None => self.note(loc, "preempt_delay", "not a number; dropped"),
                },
                "unicast_src_ip" | "mcast_src_ip" => {
                    source = arg.map(|a| (a.to_owned(), loc.clone()))
                }
                "unicast_peer" => {
                    let mut list = Vec::new();
                    let words = item.words();
                    let mut i = 0;
                    while i < words.len() {
                        let word = &words[i].0;
                        if word == "min_ttl" || word == "max_ttl" {
                            self.note(
                                &words[i].1,
                                word,
                                "per-peer TTL limits are not supported; dropped",
                            );
                            i += 2;
                            continue;
                        }
                        if !list.contains(word) {
                            list.push(word.clone());
                        }
                        i += 1;
                    }
                    peers = Some((list, loc.clone()));
                }
                "virtual_ipaddress" => {
                    for line in item.block.iter().flatten() {
                        if let Some(vip) = self.vip(line, interface.as_ref().map(|i| &i.0)) {
                            v6 |= vip.1;
                            vips.push(vip.0);
                            vip_lines.push(line.loc.clone());
                        }
                    }
                }
                "virtual_ipaddress_excluded" => self.note(
                    loc,
                    &item.key,
                    "excluded VIPs (not in adverts) are not supported; dropped: add them to \
                     `vips` if the peer lists them too, or configure them elsewhere",
                ),
                "authentication" => {
                    let words = item.words();
                    let mut kind = None;
                    let mut pass = None;
                    for pair in words.windows(2) {
                        match pair[0].0.as_str() {
                            "auth_type" => kind = Some(pair[1].0.to_ascii_uppercase()),
                            "auth_pass" => pass = Some(pair[1].0.clone()),
                            _ => {}
                        }
                    }
                    match (kind.as_deref(), pass) {
                        (Some("AH"), _) => self.note(
                            loc,
                            "auth_type AH",
                            "IPsec AH is not supported; dropped (the peer will refuse our \
                             adverts until it drops it too)",
                        ),
                        (_, Some(mut pass)) => {
                            if pass.len() > 8 {
                                let mut cut = 8;
                                while !pass.is_char_boundary(cut) {
                                    cut -= 1;
                                }
                                pass.truncate(cut);
                                self.note(
                                    loc,
                                    "auth_pass",
                                    "longer than 8 bytes: cut to 8, as keepalived sends it",
                                );
                            }
                            if !pass.is_empty() {
                                auth = Some((pass, loc.clone()));
                            }
                        }
                        _ => self.note(loc, "authentication", "no auth_pass; dropped"),
                    }
                }
                "track_script" | "track_interface" | "track_file" | "track_process" => {
                    self.tracks(item, &mut tracks)
                }
                "garp_master_repeat"
                | "garp_master_delay"
                | "garp_master_refresh"
                | "garp_lower_prio_repeat" => {
                    if let Some(line) = self.garp(&item.key, arg, loc) {
                        self.set_line(&mut extra, &item.key, loc, line);
                    }
                }
                "v3_checksum_as_v2" => {
                    let line = format!(
                        "v3_checksum_as_v2 = true  # v3_checksum_as_v2 ({})",
                        here(loc)
                    );
                    self.set_line(&mut extra, "v3_checksum_as_v2", loc, line);
                }
                "dont_track_primary" => self.note(
                    loc,
                    "dont_track_primary",
                    "dropped: vipkeeper always watches the instance's interface (FAULT when \
                     it is down)",
                ),
                "use_vmac" | "vmac_xmit_base" | "use_ipvlan" => self.note(
                    loc,
                    &item.key,
                    "not supported (vipkeeper moves addresses, not MACs); dropped",
                ),
                "strict_mode" | "accept" | "no_accept" => self.note(
                    loc,
                    &item.key,
                    "dropped: vipkeeper has no strict mode and its VIPs always accept \
                     traffic (keepalived's `accept`)",
                ),
                "native_ipv6" => {
                    v6 = true;
                }
                "notify_master_rx_lower_pri" | "notify_deleted" => {
                    self.note(loc, &item.key, "no such hook in vipkeeper; dropped")
                }
                "smtp_alert" => self.note(
                    loc,
                    "smtp_alert",
                    "e-mail alerts are not supported; dropped",
                ),
                "track_bfd" => self.note(loc, "track_bfd", "BFD is not supported; dropped"),
                "virtual_routes" | "virtual_rules" => self.note(
                    loc,
                    &item.key,
                    "routes and rules are not managed by vipkeeper; dropped (add them from a \
                     notify hook)",
                ),
                "unicast_fault_no_peer" => {}
                other => self.note(loc, other, "not converted; dropped"),
            }
        }
        let mut missing = Vec::new();
        if interface.is_none() {
            missing.push("interface");
        }
        if vrid.is_none() {
            missing.push("virtual_router_id");
        }
        if vips.is_empty() {
            missing.push("virtual_ipaddress");
        }
        if !missing.is_empty() {
            self.note(
                &node.loc,
                "vrrp_instance",
                format!(
                    "`{raw_name}` has no valid {}, which vipkeeper requires; instance dropped",
                    missing.join(", ")
                ),
            );
            return None;
        }
        let (interface, iface_loc) = interface?;
        let (vrid, vrid_loc) = vrid?;
        self.instance_names.insert(raw_name.clone(), name.clone());

        // keepalived: priority defaults to 255 with `state MASTER`, else 100.
        let master = state.as_ref().is_some_and(|s| s.0 == "MASTER");
        if let (true, None, Some((_, loc))) = (master, &priority, &state) {
            self.note(
                loc,
                "state MASTER",
                "no `priority`: keepalived then makes this node the address owner; \
                 priority = 255 written (set a priority below 255 for a floating VIP)",
            );
        }
        let (priority, priority_comment) = match &priority {
            Some((p, loc)) => (*p, format!("priority ({})", here(loc))),
            None if master => (
                255,
                "keepalived's default with `state MASTER` and no priority: the address owner"
                    .into(),
            ),
            None => (100, "keepalived's default".into()),
        };
        // keepalived: IPv6 instances always run v3; otherwise the default is 2.
        let (version, version_comment) = match version {
            _ if v6 => (3, "IPv6 VIPs: keepalived always uses VRRPv3".to_owned()),
            Some((v, loc)) => (v, format!("version ({})", here(&loc))),
            None => (
                2,
                "keepalived's default; vipkeeper's is 3, so it is written out".into(),
            ),
        };
        let advert_interval = self.advert(advert, version);
        let mut out = String::new();
        out.push_str(&format!(
            "# keepalived: vrrp_instance {raw_name} ({})",
            here(&node.loc)
        ));
        if let Some((state, loc)) = &state {
            out.push_str(&format!(
                "; `state {state}` ({}) has no equivalent: every node starts as Backup and \
                 the priorities decide",
                here(loc)
            ));
        }
        out.push_str("\n[[instance]]\n");
        out.push_str(&format!("name = {}\n", quote(&name)));
        out.push_str(&format!(
            "interface = {}  # interface ({})\n",
            quote(&interface),
            here(&iface_loc)
        ));
        out.push_str(&format!(
            "vrid = {vrid}  # virtual_router_id ({})\n",
            here(&vrid_loc)
        ));
        out.push_str(&format!("version = {version}  # {version_comment}\n"));
        out.push_str(&format!("priority = {priority}  # {priority_comment}\n"));
        out.push_str(&format!("advert_interval = {advert_interval}\n"));
        // keepalived refuses nopreempt/preempt_delay with `state MASTER` and nopreempt on
        // an owner; what it then does is preempt, so that is what we write.
        if let Some(loc) = nopreempt {
            if master {
                self.note(
                    &loc,
                    "nopreempt",
                    "ignored by keepalived with `state MASTER`; dropped",
                );
            } else if priority == 255 {
                self.note(
                    &loc,
                    "nopreempt",
                    "refused by keepalived with priority 255; dropped",
                );
            } else {
                out.push_str(&format!("preempt = false  # nopreempt ({})\n", here(&loc)));
            }
        }
        if let Some((ms, loc)) = preempt_delay {
            if master {
                self.note(
                    &loc,
                    "preempt_delay",
                    "ignored by keepalived with `state MASTER`; dropped",
                );
            } else if ms > 0 {
                out.push_str(&format!(
                    "preempt_delay = {}  # preempt_delay ({})\n",
                    duration(ms),
                    here(&loc)
                ));
            }
        }
        match (&peers, &source) {
            (Some((list, loc)), _) if list.is_empty() => self.note(
                loc,
                "unicast_peer",
                "empty: keepalived falls back to multicast; multicast written",
            ),
            (Some((list, loc)), source) => {
                if let Some((src, src_loc)) = source {
                    out.push_str(&format!(
                        "unicast_source = {}  # unicast_src_ip ({})\n",
                        quote(src),
                        here(src_loc)
                    ));
                }
                out.push_str(&format!(
                    "unicast_peers = {}  # unicast_peer ({})\n",
                    array(list),
                    here(loc)
                ));
            }
            (None, Some((_, loc))) => self.note(
                loc,
                "mcast_src_ip",
                "multicast adverts are sent from the interface's primary address; dropped",
            ),
            (None, None) => {}
        }
        match auth {
            Some((_, loc)) if version == 3 => self.note(
                &loc,
                "authentication",
                "keepalived ignores it under VRRPv3; dropped",
            ),
            Some((pass, loc)) => out.push_str(&format!(
                "auth_pass = {}  # authentication ({})\n",
                quote(&pass),
                here(&loc)
            )),
            None => {}
        }
        for line in extra {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("vips = [\n");
        for (vip, loc) in vips.iter().zip(&vip_lines) {
            out.push_str(&format!("    {vip},  # {}\n", here(loc)));
        }
        out.push_str("]\n");
        if self.unweighted_members.contains(&raw_name) {
            for track in tracks.iter_mut().filter(|t| t.weight != 0) {
                self.notes.push(Note {
                    file: node.loc.file.clone(),
                    line: node.loc.line,
                    keyword: track.check.clone(),
                    message: format!(
                        "weight {} on a sync-group member: keepalived ignores it without \
                         `sync_group_tracking_weight`; weight 0 (FAULT) written",
                        track.weight
                    ),
                });
                track.weight = 0;
            }
        }
        write_tracks(&mut out, &tracks);
        write_hooks(&mut out, "instance", &hooks);
        Some(out)
    }

    /// The interval as a vipkeeper duration, rounded as keepalived rounds it.
    fn advert(&mut self, advert: Option<(f64, Loc)>, version: i64) -> String {
        let Some((seconds, loc)) = advert else {
            return "\"1s\"  # keepalived's default advert_int".into();
        };
        let comment = format!("  # advert_int ({})", loc.short());
        if version == 2 {
            let whole = (seconds.round() as i64).clamp(1, 255);
            if (whole as f64 - seconds).abs() > f64::EPSILON {
                self.note(
                    &loc,
                    "advert_int",
                    format!("VRRPv2 carries whole seconds: {seconds} rounded to {whole}s, as keepalived does"),
                );
            }
            format!("\"{whole}s\"{comment}")
        } else {
            let centis = ((seconds * 100.0).round() as i64).clamp(1, 4095);
            if ((centis as f64) / 100.0 - seconds).abs() > 1e-9 {
                self.note(
                    &loc,
                    "advert_int",
                    format!(
                        "VRRPv3 carries centiseconds: {seconds} rounded to {}ms",
                        centis * 10
                    ),
                );
            }
            format!("{}{comment}", duration(centis as u64 * 10))
        }
    }

    /// One `virtual_ipaddress` line as a TOML value, and whether it is IPv6.
    fn vip(&mut self, line: &Node, interface: Option<&String>) -> Option<(String, bool)> {
        let address = &line.key;
        let host = address.split('/').next().unwrap_or(address);
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            self.note(&line.loc, address, "not an IP address; dropped");
            return None;
        };
        let mut dev = None;
        let mut label = None;
        let mut args = line.args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "dev" => dev = args.next().cloned(),
                "label" => label = args.next().cloned(),
                "no_track" => self.note(
                    &line.loc,
                    "no_track",
                    "dropped: vipkeeper restores a VIP deleted by hand and stays Master",
                ),
                "brd" | "broadcast" | "scope" | "preferred_lft" => {
                    let value = args.next().map(String::as_str).unwrap_or("");
                    self.note(
                        &line.loc,
                        arg,
                        format!("`{arg} {value}` not supported; the kernel's default used"),
                    );
                }
                other => self.note(&line.loc, other, "VIP option not supported; dropped"),
            }
        }
        if ip.is_ipv6() && label.is_some() {
            self.note(&line.loc, "label", "IPv6 addresses have no labels; dropped");
            label = None;
        }
        let dev = dev.filter(|d| Some(d) != interface);
        let value = if dev.is_none() && label.is_none() {
            quote(address)
        } else {
            let mut table = format!("{{ address = {}", quote(address));
            if let Some(dev) = dev {
                table.push_str(&format!(", dev = {}", quote(&dev)));
            }
            if let Some(label) = label {
                table.push_str(&format!(", label = {}", quote(&label)));
            }
            table.push_str(" }");
            table
        };
        Some((value, ip.is_ipv6()))
    }

    fn group(&mut self, node: &Node) -> Option<String> {
        let Some(raw_name) = node.args.first().cloned() else {
            self.note(&node.loc, "vrrp_sync_group", "no name; dropped");
            return None;
        };
        let name = sanitize(&raw_name);
        let mut members = Vec::new();
        let mut tracks = Vec::new();
        let mut hooks = HooksOut::default();
        for item in node.block.iter().flatten() {
            if self.hooks_item(item, &mut hooks) {
                continue;
            }
            match item.key.as_str() {
                "group" => {
                    for (member, loc) in item.words() {
                        match self.instance_names.get(&member) {
                            Some(converted) if !members.contains(converted) => {
                                members.push(converted.clone())
                            }
                            Some(_) => {}
                            None => self.note(
                                &loc,
                                &member,
                                "no converted vrrp_instance of that name; left out of the group",
                            ),
                        }
                    }
                }
                "track_script" | "track_interface" | "track_file" | "track_process" => {
                    self.tracks(item, &mut tracks)
                }
                "sync_group_tracking_weight" => {}
                other => self.note(&item.loc, other, "not converted; dropped"),
            }
        }
        if members.is_empty() {
            self.note(
                &node.loc,
                "vrrp_sync_group",
                "no member left; group dropped",
            );
            return None;
        }
        let mut out = format!(
            "# keepalived: vrrp_sync_group {raw_name} ({})\n[[group]]\nname = {}\ninstances = {}\n",
            node.loc.short(),
            quote(&name),
            array(&members)
        );
        write_tracks(&mut out, &tracks);
        write_hooks(&mut out, "group", &hooks);
        Some(out)
    }
}

fn write_tracks(out: &mut String, tracks: &[TrackOut]) {
    if tracks.is_empty() {
        return;
    }
    out.push_str("track = [\n");
    for track in tracks {
        out.push_str(&format!(
            "    {{ check = {}, weight = {}{} }},  # {}\n",
            quote(&track.check),
            track.weight,
            if track.reverse {
                ", reverse = true"
            } else {
                ""
            },
            track.comment
        ));
    }
    out.push_str("]\n");
}

fn write_hooks(out: &mut String, table: &str, hooks: &HooksOut) {
    let entries = [
        ("master", &hooks.master),
        ("backup", &hooks.backup),
        ("fault", &hooks.fault),
        ("stop", &hooks.stop),
        ("any", &hooks.any),
    ];
    if entries.iter().all(|(_, v)| v.is_none()) {
        return;
    }
    out.push_str(&format!(
        "\n# keepalived's notify scripts; here they run in order, each bounded by a timeout\n\
         [{table}.notify]\n"
    ));
    for (key, value) in entries {
        if let Some(value) = value {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
}

/// keepalived's command string as vipkeeper's `command`, and whether it needs a shell.
/// An absolute program with plain words runs directly; anything else (a bare program name
/// found through PATH, pipes, redirections, quotes, variables) runs through `/bin/sh -c`,
/// as keepalived's `system()` would.
fn command(script: &str) -> (Vec<String>, bool) {
    let words: Vec<String> = script.split_whitespace().map(str::to_owned).collect();
    let plain = !script.contains([
        '|', '&', ';', '<', '>', '(', ')', '$', '`', '\'', '"', '\\', '*', '?', '[', '~',
    ]);
    match words.first() {
        Some(first) if plain && first.starts_with('/') => (words, false),
        _ => (vec![script.trim().to_owned()], true),
    }
}

/// The process a `killall -0 NAME` / `pidof NAME` / `pgrep [-x] NAME` script looks for.
fn process_probe(script: &str) -> Option<String> {
    let words: Vec<&str> = script.split_whitespace().collect();
    let program = words.first()?.rsplit('/').next()?;
    let rest: Vec<&str> = words[1..]
        .iter()
        .copied()
        .filter(|w| !w.starts_with('-') && !w.starts_with('>') && *w != "0")
        .collect();
    let candidate = match program {
        "killall" | "pidof" | "pgrep" => rest.first().copied()?,
        _ => return None,
    };
    let valid = !candidate.is_empty()
        && candidate.len() <= 15
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then(|| candidate.to_owned())
}

fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A name made of letters, digits, `-`, `_`, `.`, 1..64 bytes.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn parse_int(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// keepalived's seconds, possibly fractional, as milliseconds.
fn parse_millis(text: &str) -> Option<u64> {
    let seconds: f64 = text.parse().ok()?;
    (0.0..1e9)
        .contains(&seconds)
        .then(|| (seconds * 1000.0).round() as u64)
}

/// A vipkeeper duration string: whole seconds when exact, else milliseconds.
fn duration(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("\"{}s\"", ms / 1000)
    } else {
        format!("\"{ms}ms\"")
    }
}

/// A check name as a TOML key: bare when TOML allows it, else quoted. [`sanitize`] keeps
/// `.`, which a bare key would read as a nested table.
fn table_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_owned()
    } else {
        quote(name)
    }
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn array(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", inner.join(", "))
}

/// The output's comments quote keepalived's own words (names, keywords, file names), and
/// TOML allows no control character in a comment except tab. Strings escape theirs
/// ([`quote`]), so every control character left in the text is in a comment: a space
/// takes its place there, and the line breaks that end lines stay.
fn comments_without_control_characters(toml: &str) -> String {
    toml.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Notes go into `#` comments: no line breaks.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(text: &str) -> Import {
        match import_text(text, Path::new("/nonexistent")) {
            Ok(import) => import,
            Err(error) => panic!("{error}"),
        }
    }

    const MINIMAL: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n \
                           virtual_ipaddress {\n  192.0.2.7/24\n }\n}\n";

    #[test]
    fn defaults_are_written_out() {
        let import = convert(MINIMAL);
        assert!(import.toml.contains("version = 2"), "{}", import.toml);
        assert!(import.toml.contains("priority = 100"));
        assert!(import.toml.contains("advert_interval = \"1s\""));
        assert!(import.notes.is_empty(), "{:?}", import.notes);
    }

    #[test]
    fn words_quotes_braces_and_comments() {
        let mut lexer = Lexer::default();
        let words = lexer.split_line(r#"script "killall -0 haproxy" # comment {"#, "f", 1);
        assert_eq!(
            words,
            [
                ("script".into(), false),
                ("killall -0 haproxy".into(), true)
            ]
        );
        let words = lexer.split_line("vrrp_instance VI_1{ ! x", "f", 1);
        assert_eq!(
            words,
            [
                ("vrrp_instance".into(), false),
                ("VI_1".into(), false),
                ("{".into(), false)
            ]
        );
        let words = lexer.split_line("script \"unterminated", "f", 3);
        assert_eq!(words[1], ("unterminated".into(), true));
        assert_eq!(lexer.notes[0].line, 3);
    }

    #[test]
    fn blocks_on_one_line_and_brace_on_the_next() {
        let text = "vrrp_instance VI_1\n{\n interface eth0\n virtual_router_id 7\n \
                    unicast_peer { 192.0.2.8 192.0.2.9 }\n unicast_src_ip 192.0.2.7\n \
                    virtual_ipaddress { 192.0.2.7/24 }\n}\n";
        let import = convert(text);
        assert!(
            import
                .toml
                .contains("unicast_peers = [\"192.0.2.8\", \"192.0.2.9\"]"),
            "{}",
            import.toml
        );
    }

    #[test]
    fn variables_are_substituted() {
        let text = format!("$VRID=42\n$IF=eth0\n{}", MINIMAL)
            .replace("virtual_router_id 7", "virtual_router_id ${VRID}")
            .replace("interface eth0", "interface $IF");
        let import = convert(&text);
        assert!(import.toml.contains("vrid = 42"), "{}", import.toml);
        assert!(import.toml.contains("interface = \"eth0\""));
    }

    #[test]
    fn unknown_keywords_and_stray_braces_are_notes() {
        let text = format!("}}\nfoo_bar 1\n@lb1 router_id x\n{MINIMAL}")
            .replace("interface eth0", "interface eth0\n frobnicate yes");
        let import = convert(&text);
        let notes: Vec<String> = import.notes.iter().map(ToString::to_string).collect();
        assert!(notes.contains(&"keepalived.conf:1: `}`: closes no block; ignored".into()));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("keepalived.conf:2: `foo_bar`")));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("keepalived.conf:3: `@lb1`")));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("keepalived.conf:6: `frobnicate`: not converted")));
    }

    #[test]
    fn state_master_rules() {
        let text = MINIMAL.replace(
            "interface eth0",
            "interface eth0\n state MASTER\n nopreempt\n preempt_delay 10",
        );
        let import = convert(&text);
        assert!(import.toml.contains("priority = 255"));
        assert!(!import.toml.contains("preempt = false"));
        assert!(!import.toml.contains("preempt_delay ="));
        let keywords: Vec<&str> = import.notes.iter().map(|n| n.keyword.as_str()).collect();
        assert_eq!(keywords, ["state MASTER", "nopreempt", "preempt_delay"]);
        let text = MINIMAL.replace(
            "interface eth0",
            "interface eth0\n nopreempt\n preempt_delay 2.5",
        );
        let import = convert(&text);
        assert!(import.toml.contains("preempt = false"));
        assert!(import.toml.contains("preempt_delay = \"2500ms\""));
    }

    #[test]
    fn v2_intervals_are_rounded_as_keepalived_does() {
        let import = convert(&MINIMAL.replace("interface eth0", "interface eth0\n advert_int 1.6"));
        assert!(import.toml.contains("advert_interval = \"2s\""));
        assert_eq!(import.notes[0].keyword, "advert_int");
        let import = convert(&MINIMAL.replace(
            "interface eth0",
            "interface eth0\n version 3\n advert_int 0.123",
        ));
        assert!(
            import.toml.contains("advert_interval = \"120ms\""),
            "{}",
            import.toml
        );
    }

    #[test]
    fn instances_missing_required_keys_are_dropped_with_a_note() {
        let text = format!("vrrp_instance broken {{\n interface eth0\n}}\n{MINIMAL}");
        let import = convert(&text);
        assert!(import.notes[0].message.contains("virtual_router_id"));
        assert!(!import.toml.contains("name = \"broken\""));
    }

    #[test]
    fn commands_run_directly_only_when_safe() {
        assert_eq!(
            command("/usr/bin/killall -0 haproxy"),
            (
                vec!["/usr/bin/killall".into(), "-0".into(), "haproxy".into()],
                false
            )
        );
        assert_eq!(
            command("killall -0 haproxy"),
            (vec!["killall -0 haproxy".into()], true)
        );
        assert_eq!(
            command("/bin/check | grep ok"),
            (vec!["/bin/check | grep ok".into()], true)
        );
        assert_eq!(
            process_probe("killall -0 haproxy").as_deref(),
            Some("haproxy")
        );
        assert_eq!(
            process_probe("/usr/bin/pidof haproxy").as_deref(),
            Some("haproxy")
        );
        assert_eq!(process_probe("pgrep -x nginx").as_deref(), Some("nginx"));
        assert_eq!(process_probe("/usr/local/bin/check.sh"), None);
    }

    #[test]
    fn a_generic_shell_notify_passes_keepalived_s_arguments_on() {
        let text = MINIMAL.replace(
            "interface eth0",
            "interface eth0\n notify \"logger -t vrrp\"\n notify_master /usr/bin/true",
        );
        let import = convert(&text);
        assert!(
            import
                .toml
                .contains(r#"any = [{ command = ["logger -t vrrp \"$@\""], shell = true }]"#),
            "{}",
            import.toml
        );
        assert!(import.toml.contains(r#"master = ["/usr/bin/true"]"#));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.conf", "a.conf"));
        assert!(!wildcard("*.conf", "a.conf.bak"));
        assert!(wildcard("[0-9]?-*", "10-x"));
        assert!(!wildcard("[!0-9]*", "1a"));
        assert!(wildcard("a[", "a["));
        assert!(wildcard("**", ""));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(sanitize("VI 1/x"), "VI_1_x");
        assert_eq!(duration(1500), "\"1500ms\"");
        assert_eq!(duration(2000), "\"2s\"");
    }

    /// Found by the fuzzer (integration/fuzz.rs): `track_interface { eth\x03 }` put the raw
    /// control character into the track's comment, and the output was not TOML.
    #[test]
    fn control_characters_in_names_do_not_break_the_toml() {
        let text = MINIMAL.replace(
            "virtual_ipaddress",
            "track_interface {\n  eth\u{3}\n }\n virtual_ipaddress",
        );
        let import = convert(&text);
        assert!(
            import.toml.contains("# track_interface eth "),
            "{}",
            import.toml
        );
        if let Err(error) = import.toml.parse::<toml::Table>() {
            panic!("{error}\n{}", import.toml);
        }
    }

    /// Found by the fuzzer: a keyword repeated in a vrrp_script or a vrrp_instance wrote its
    /// key twice, which TOML refuses. keepalived takes the last one, and so does the import.
    #[test]
    fn a_repeated_vrrp_script_keyword_is_written_once() {
        let text = format!(
            "vrrp_script chk {{\n script \"/usr/bin/true\"\n interval 1\n fall 2\n \
             interval 2\n init_fail\n init_fail\n}}\n{}",
            MINIMAL.replace(
                "virtual_ipaddress",
                "track_script {\n  chk\n }\n garp_master_delay 1\n garp_master_delay 2\n \
                 virtual_ipaddress"
            )
        );
        let import = convert(&text);
        if let Err(error) = import.toml.parse::<toml::Table>() {
            panic!("{error}\n{}", import.toml);
        }
        assert!(
            import.toml.contains("\ninterval = \"2s\""),
            "{}",
            import.toml
        );
        assert!(
            !import.toml.contains("\ninterval = \"1s\""),
            "{}",
            import.toml
        );
        assert!(import
            .notes
            .iter()
            .any(|n| n.keyword == "interval" && n.line == 5 && n.message.contains("repeated")));
        assert!(
            import.toml.contains("garp_master_delay = \"2s\""),
            "{}",
            import.toml
        );
        assert!(
            !import.toml.contains("garp_master_delay = \"1s\""),
            "{}",
            import.toml
        );
    }

    /// Found by the fuzzer: a tracker named `a.b` became `[check.a.b]`, a nested table.
    #[test]
    fn a_tracker_name_with_a_dot_is_a_quoted_key() {
        let text = format!(
            "vrrp_script db.primary {{\n script \"/usr/bin/true\"\n}}\n{}",
            MINIMAL.replace(
                "virtual_ipaddress",
                "track_script {\n  db.primary\n }\n virtual_ipaddress"
            )
        );
        let import = convert(&text);
        assert!(
            import.toml.contains("[check.\"db.primary\"]\n"),
            "{}",
            import.toml
        );
        if let Err(error) = super::super::parse(&import.toml, "converted.toml") {
            panic!("{error}\n{}", import.toml);
        }
    }

    /// Found by the fuzzer (the long run was killed for memory): a definition that uses
    /// itself doubles at each repetition, so 40 lines asked for a terabyte.
    #[test]
    fn self_referring_definitions_are_refused_not_expanded_without_bound() {
        let text = format!(
            "$A=x\n{}{}",
            "$A=$A$A\n".repeat(40),
            MINIMAL.replace("interface eth0", "interface $A")
        );
        match import_text(&text, Path::new("/nonexistent")) {
            Err(ImportError::Syntax { line, message, .. }) => {
                assert_eq!(line, 18, "the first line past the limit: {message}");
                assert!(message.contains("expand"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The same growth within one line, through a value that names itself.
        let text = format!("$A=$A$A\n$B=$A$A$A$A$A$A$A$A\n$C=$B$B$B$B$B$B$B$B\n{MINIMAL}");
        assert!(matches!(
            import_text(&text, Path::new("/nonexistent")),
            Err(ImportError::Syntax { .. })
        ));
    }

    /// Arbitrary bytes never panic: every prefix of a realistic file, and some garbage.
    #[test]
    fn never_panics() {
        let text = format!(
            "global_defs {{ router_id \"x y\" }}\nvrrp_script s {{ script \"a|b\" weight 999 }}\n\
             vrrp_sync_group g {{ group {{ VI_1 nope }} }}\n{MINIMAL}"
        );
        for end in 0..=text.len() {
            if text.is_char_boundary(end) {
                let _ = import_text(&text[..end], Path::new("/"));
            }
        }
        let mut seed = 7u64;
        for _ in 0..300 {
            let garbage: String = (0..200)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    {
                        let alphabet = b"{}\"#! \nab19./:$@*";
                        alphabet[(seed >> 33) as usize % alphabet.len()] as char
                    }
                })
                .collect();
            let _ = import_text(&garbage, Path::new("/"));
        }
    }
}
