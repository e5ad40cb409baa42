//! The one place that parses YAML. Everything else sees a [`Node`] tree in which every key and
//! value carries its source position, so that later stages can point at the exact text.
//!
//! The parser (yaml-rust2's event parser) sits behind this module only; swapping it for another
//! maintained parser means rewriting this file and nothing else. Scalars are resolved with the
//! YAML 1.2 core schema (`yes`/`no`/`on`/`off` stay strings). The tree builder is iterative and
//! bounded: depth, node count (which stops alias bombs) and document count are limited, so a
//! hostile document ends in a diagnostic, never a stack overflow, a hang or a panic.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diag::{Code, Diagnostic, Span};

/// Mappings and lists may nest this deep; missions need a handful of levels.
pub const MAX_DEPTH: usize = 64;
/// At most this many nodes after alias expansion.
pub const MAX_NODES: usize = 250_000;

/// How a scalar was written, which decides where its characters sit in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
    /// Mappings and lists.
    Collection,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// Byte offset of the node's first character in the source.
    pub offset: usize,
    pub style: Style,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// The outcome of parsing: the tree when there is one, and every problem found on the way.
#[derive(Debug, Default)]
pub struct Parsed {
    pub root: Option<Node>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse one YAML document. `file` is the display name used in diagnostics.
pub fn parse(text: &str, file: &str) -> Parsed {
    let mut builder = Builder::new(text, file);
    match builder.run() {
        Ok(()) => {}
        Err(diagnostic) => {
            builder.diagnostics.push(*diagnostic);
            builder.root = None;
        }
    }
    Parsed {
        root: builder.root,
        diagnostics: builder.diagnostics,
    }
}

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        node: Node,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Span)>,
    },
}

struct Builder<'a> {
    text: &'a str,
    file: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    documents: usize,
    root: Option<Node>,
    diagnostics: Vec<Diagnostic>,
    /// The number of lines and the width of the last one, to keep spans inside the text.
    end: (usize, usize),
}

type Fatal = Box<Diagnostic>;

impl<'a> Builder<'a> {
    fn new(text: &'a str, file: &'a str) -> Builder<'a> {
        Builder {
            text,
            file,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            documents: 0,
            root: None,
            diagnostics: Vec::new(),
            end: (
                text.lines().count(),
                text.lines().last().unwrap_or("").chars().count(),
            ),
        }
    }

    /// The span of a parser mark, kept inside the text: the parser reports the end of input
    /// (an error there, or an empty value) as the line after the last one, which a reader
    /// cannot see; point just after the last character instead.
    fn span_at(&self, mark: &Marker, len: usize) -> Span {
        let span = Span::new(mark.line() as u32, mark.col() as u32 + 1, len as u32);
        let (lines, last_width) = self.end;
        if (span.line as usize) <= lines || lines == 0 {
            return span;
        }
        Span::new(lines as u32, last_width as u32 + 1, 1)
    }

    fn fatal(&self, code: Code, mark: &Marker, message: String) -> Fatal {
        Box::new(Diagnostic::new(code, message).at(self.file, Some(self.span_at(mark, 1)), ""))
    }

    fn run(&mut self) -> Result<(), Fatal> {
        let mut parser = Parser::new_from_str(self.text);
        loop {
            let (event, mark) = parser.next_token().map_err(|e| {
                let info = e.info().to_string();
                if info.contains("recursion limit exceeded") {
                    // The scanner's own nesting limit (flow collections) can come first.
                    return Box::new(
                        Diagnostic::new(
                            Code::TooDeep,
                            format!("the document nests deeper than {MAX_DEPTH} levels"),
                        )
                        .at(self.file, Some(self.span_at(e.marker(), 1)), "")
                        .label("nesting too deep here")
                        .help("flatten the structure; missions never need that much nesting"),
                    );
                }
                let span = self.span_at(e.marker(), 1);
                let help = match self.unclosed_flow(span.line) {
                    Some((open, line)) => format!(
                        "the `{open}` on line {line} is never closed; close it with `{}` before this point",
                        if open == '[' { ']' } else { '}' }
                    ),
                    None => "check indentation, quotes and `:` separators around this point".into(),
                };
                Box::new(
                    Diagnostic::new(Code::YamlSyntax, format!("invalid YAML: {info}"))
                        .at(self.file, Some(span), "")
                        .label("the parser stopped here")
                        .help(help),
                )
            })?;
            match event {
                Event::StreamEnd => return Ok(()),
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::DocumentStart => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(Box::new(
                            (*self.fatal(
                                Code::MultipleDocuments,
                                &mark,
                                "the file holds more than one YAML document".into(),
                            ))
                            .label("a second document starts here")
                            .help("keep one mission per file; remove the `---` and what follows, or move it into its own file"),
                        ));
                    }
                }
                Event::Alias(id) => {
                    let Some((node, size)) = self.anchors.get(&id).cloned() else {
                        return Err(self.fatal(
                            Code::YamlSyntax,
                            &mark,
                            "invalid YAML: alias to an unknown anchor".into(),
                        ));
                    };
                    self.count(size, &mark)?;
                    self.complete(node, 0, size)?;
                }
                Event::Scalar(value, style, anchor, tag) => {
                    self.count(1, &mark)?;
                    let as_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                    let node = self.scalar(value, style, tag, &mark, as_key);
                    self.complete(node, anchor, 1)?;
                }
                Event::SequenceStart(anchor, _) => {
                    self.count(1, &mark)?;
                    self.open(&mark)?;
                    let node = self.collection(&mark, Value::Seq(Vec::new()));
                    self.stack.push(Frame::Seq {
                        node,
                        anchor,
                        items: Vec::new(),
                    });
                }
                Event::MappingStart(anchor, _) => {
                    self.count(1, &mark)?;
                    self.open(&mark)?;
                    let node = self.collection(&mark, Value::Map(Vec::new()));
                    self.stack.push(Frame::Map {
                        node,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(frame) = self.stack.pop() else {
                        return Err(self.fatal(
                            Code::YamlSyntax,
                            &mark,
                            "invalid YAML: unbalanced collection".into(),
                        ));
                    };
                    let (node, anchor) = match frame {
                        Frame::Seq {
                            mut node,
                            anchor,
                            items,
                        } => {
                            node.value = Value::Seq(items);
                            (node, anchor)
                        }
                        Frame::Map {
                            mut node,
                            anchor,
                            entries,
                            ..
                        } => {
                            // The parser marks a block mapping where it recognised it (after
                            // its first key); a reader sees it start at that key.
                            if let Some(first) = entries.first() {
                                let key = first.key_span;
                                if (key.line, key.col) < (node.span.line, node.span.col) {
                                    node.span = Span::new(key.line, key.col, 1);
                                }
                            }
                            node.value = Value::Map(entries);
                            (node, anchor)
                        }
                    };
                    let size = node_count(&node);
                    self.complete(node, anchor, size)?;
                }
            }
        }
    }

    /// The innermost flow collection (`[` or `{`) still open that began on an earlier line
    /// than `line`: the usual cause of a syntax error further down.
    fn unclosed_flow(&self, line: u32) -> Option<(char, u32)> {
        self.stack.iter().rev().find_map(|frame| {
            let node = match frame {
                Frame::Seq { node, .. } | Frame::Map { node, .. } => node,
            };
            let open = self.text.get(node.offset..)?.chars().next()?;
            (matches!(open, '[' | '{') && node.span.line < line).then_some((open, node.span.line))
        })
    }

    fn count(&mut self, n: usize, mark: &Marker) -> Result<(), Fatal> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Box::new(
                (*self.fatal(
                    Code::AliasExpansion,
                    mark,
                    format!("the document expands to more than {MAX_NODES} nodes"),
                ))
                .label("the limit is reached here")
                .help("anchors and aliases (`&a`, `*a`) nest too much; write the repeated structure out once"),
            ));
        }
        Ok(())
    }

    fn open(&self, mark: &Marker) -> Result<(), Fatal> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Box::new(
                (*self.fatal(
                    Code::TooDeep,
                    mark,
                    format!("the document nests deeper than {MAX_DEPTH} levels"),
                ))
                .label(format!("level {} starts here", MAX_DEPTH + 1))
                .help("flatten the structure; missions never need that much nesting"),
            ));
        }
        Ok(())
    }

    fn collection(&self, mark: &Marker, value: Value) -> Node {
        Node {
            value,
            span: self.span_at(mark, 1),
            offset: mark.index(),
            style: Style::Collection,
        }
    }

    fn scalar(
        &self,
        value: String,
        style: TScalarStyle,
        tag: Option<Tag>,
        mark: &Marker,
        as_key: bool,
    ) -> Node {
        let style = match style {
            TScalarStyle::Plain => Style::Plain,
            TScalarStyle::SingleQuoted => Style::SingleQuoted,
            TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            TScalarStyle::Literal => Style::Literal,
            TScalarStyle::Folded => Style::Folded,
        };
        let len = scalar_width(self.text, mark.index(), style, &value);
        let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
        let resolved = if style == Style::Plain && !as_key && !forced_string {
            resolve_plain(&value)
        } else {
            Value::Str(value)
        };
        Node {
            value: resolved,
            span: self.span_at(mark, len),
            offset: mark.index(),
            style,
        }
    }

    /// Attach a finished node to its parent (or make it the root).
    fn complete(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), Fatal> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let file = self.file;
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let name = match &node.value {
                        Value::Str(s) => s.clone(),
                        Value::Seq(_) | Value::Map(_) => {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::WrongType,
                                    "mapping keys must be plain strings, not lists or mappings",
                                )
                                .at(file, Some(node.span), "")
                                .help("write the key as a plain word, like `name:`"),
                            );
                            String::from("<complex key>")
                        }
                        other => scalar_text(other),
                    };
                    *key = Some((name, node.span));
                }
                Some((name, key_span)) => {
                    if let Some(first) = entries.iter().find(|e| e.key == name) {
                        let first_line = first.key_span.line;
                        self.diagnostics.push(
                            Diagnostic::new(Code::DuplicateKey, format!("duplicate key `{name}`"))
                                .at(file, Some(key_span), "")
                                .label(format!("`{name}` is already defined on line {first_line}"))
                                .help(
                                    "YAML keeps only one of two equal keys; remove or rename one",
                                ),
                        );
                    } else {
                        entries.push(Entry {
                            key: name,
                            key_span,
                            value: node,
                        });
                    }
                }
            },
        }
        Ok(())
    }
}

fn node_count(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| 1 + node_count(&e.value))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        Value::Seq(_) | Value::Map(_) => String::new(),
    }
}

/// How many characters of the first source line a scalar occupies (for carets).
fn scalar_width(text: &str, offset: usize, style: Style, value: &str) -> usize {
    let rest = text.get(offset..).unwrap_or("");
    let line = rest.lines().next().unwrap_or("");
    match style {
        Style::Plain => value.lines().next().unwrap_or("").chars().count().max(1),
        Style::SingleQuoted | Style::DoubleQuoted => {
            let quote = if style == Style::SingleQuoted {
                '\''
            } else {
                '"'
            };
            let mut escaped = false;
            for (i, c) in line.char_indices().skip(1) {
                if style == Style::DoubleQuoted && c == '\\' && !escaped {
                    escaped = true;
                    continue;
                }
                if c == quote && !escaped {
                    return line[..=i].chars().count();
                }
                escaped = false;
            }
            line.chars().count().max(1)
        }
        Style::Literal | Style::Folded | Style::Collection => 1,
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => s
                .parse::<f64>()
                .map(Value::Float)
                .unwrap_or_else(|_| Value::Str(s.into())),
        };
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if looks_float {
        if let Ok(f) = s.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(s.to_string())
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    /// A short name for the node's type, as used in messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node as JSON (for schema validation and typed decoding). Non-finite floats, which
    /// JSON cannot hold, become strings so that the schema reports them as wrong types.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The source position of the character at (`line`, `col`) (0-based, in characters) of this
    /// scalar's value, for pointing inside an expression or an inline template. Exact for plain
    /// and quoted single-line scalars and for literal blocks; a close approximation otherwise.
    pub fn position_in_scalar(&self, text: &str, line: usize, col: usize, len: usize) -> Span {
        let span = self.position_in_scalar_unclamped(text, line, col, len);
        // An empty block scalar at the end of the file has no line of its own.
        let lines = text.lines().count();
        if lines > 0 && span.line as usize > lines {
            let width = text.lines().last().unwrap_or("").chars().count();
            return Span::new(lines as u32, width as u32 + 1, 1);
        }
        span
    }

    fn position_in_scalar_unclamped(
        &self,
        text: &str,
        line: usize,
        col: usize,
        len: usize,
    ) -> Span {
        let len = len.max(1) as u32;
        match self.style {
            Style::Plain | Style::SingleQuoted | Style::DoubleQuoted | Style::Collection => {
                let quote = u32::from(matches!(
                    self.style,
                    Style::SingleQuoted | Style::DoubleQuoted
                ));
                if line == 0 {
                    Span::new(self.span.line, self.span.col + quote + col as u32, len)
                } else {
                    // Continuation lines of a flow scalar: point at the line, after its indent.
                    let target = self.span.line as usize + line;
                    let indent = line_indent(text, target);
                    Span::new(target as u32, (indent + col + 1) as u32, len)
                }
            }
            Style::Literal | Style::Folded => {
                // The parser marks either the `|`/`>` indicator or the first content line.
                let at_indicator = text
                    .get(self.offset..)
                    .is_some_and(|t| t.starts_with(['|', '>']));
                let first = self.span.line as usize + usize::from(at_indicator);
                let indent = (first..first + 64)
                    .find_map(|l| {
                        let t = text.lines().nth(l.checked_sub(1)?)?;
                        (!t.trim().is_empty()).then(|| t.len() - t.trim_start().len())
                    })
                    .unwrap_or(0);
                Span::new((first + line) as u32, (indent + col + 1) as u32, len)
            }
        }
    }
}

fn line_indent(text: &str, line: usize) -> usize {
    line.checked_sub(1)
        .and_then(|l| text.lines().nth(l))
        .map(|t| t.len() - t.trim_start().len())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let parsed = parse(text, "t.yaml");
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        parsed.root.unwrap()
    }

    #[test]
    fn positions_are_one_based_and_point_at_keys_and_values() {
        let node = root("a: 1\nphases:\n  build:\n    run: [cargo, \"test\"]\n");
        let phases = node.entry("phases").unwrap();
        assert_eq!(phases.key_span, Span::new(2, 1, 6));
        let build = phases.value.entry("build").unwrap();
        assert_eq!(build.key_span, Span::new(3, 3, 5));
        let run = build.value.get("run").unwrap();
        assert_eq!(run.items()[0].span, Span::new(4, 11, 5));
        assert_eq!(run.items()[1].span, Span::new(4, 18, 6));
    }

    #[test]
    fn core_schema_resolution() {
        let node = root("a: yes\nb: 12\nc: 1.5\nd: ~\ne: true\nf: '12'\ng: 0x10\nh: 1e3\n");
        let v = node.to_json();
        assert_eq!(v["a"], "yes");
        assert_eq!(v["b"], 12);
        assert_eq!(v["c"], 1.5);
        assert!(v["d"].is_null());
        assert_eq!(v["e"], true);
        assert_eq!(v["f"], "12");
        assert_eq!(v["g"], 16);
        assert_eq!(v["h"], 1000.0);
    }

    #[test]
    fn duplicate_keys_are_reported_and_first_kept() {
        let parsed = parse("a: 1\nb: 2\na: 3\n", "t.yaml");
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(parsed.diagnostics[0].code, Code::DuplicateKey);
        assert_eq!(parsed.diagnostics[0].span, Some(Span::new(3, 1, 1)));
        assert_eq!(parsed.root.unwrap().to_json()["a"], 1);
    }

    #[test]
    fn aliases_expand_but_bombs_stop() {
        let node = root("x: &a [1, 2]\ny: *a\n");
        assert_eq!(node.to_json()["y"], serde_json::json!([1, 2]));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let parsed = parse(&bomb, "t.yaml");
        assert!(parsed.root.is_none());
        assert_eq!(parsed.diagnostics[0].code, Code::AliasExpansion);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let parsed = parse(&text, "t.yaml");
        assert!(parsed.root.is_none());
        assert!(matches!(
            parsed.diagnostics[0].code,
            Code::TooDeep | Code::YamlSyntax
        ));
    }

    #[test]
    fn positions_inside_scalars() {
        let text = "if: 'a && b'\nx: |\n  line one\n  line two\n";
        let node = root(text);
        let cond = node.get("if").unwrap();
        assert_eq!(cond.position_in_scalar(text, 0, 2, 2), Span::new(1, 8, 2));
        let block = node.get("x").unwrap();
        assert_eq!(block.position_in_scalar(text, 1, 5, 3), Span::new(4, 8, 3));
    }
}
