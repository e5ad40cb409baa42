//! Bounded minijinja environments: strict undefined behaviour, fuel (instructions per
//! rendering), a recursion limit, output rendered into a writer that refuses to grow past
//! [`MAX_TEMPLATE_OUTPUT`] and that stops at the deadline or on an interrupt, and the
//! `shell_quote` filter (alias `q`).

use std::io;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use super::{bounded, check, Stop, MAX_TEMPLATE_OUTPUT, TEMPLATE_FUEL, TEMPLATE_RECURSION};

/// An environment with every bound set and strict undefined behaviour: a missing variable is
/// an error, never an empty string silently sent to an agent or a shell.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION);
    env.add_filter("shell_quote", shell_quote_filter);
    env.add_filter("q", shell_quote_filter);
    env
}

/// `text` as one POSIX shell word: in single quotes, each `'` written as `'\''`. Safe for any
/// text (newlines, quotes, `$`, backslashes…) except NUL, which no shell argument can hold.
pub fn shell_quote(text: &str) -> Result<String, super::Error> {
    if text.contains('\0') {
        return Err(super::Error::NulInShellWord);
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    Ok(quoted)
}

/// The filter: a string (or a number, a boolean) becomes one quoted word; a list becomes its
/// items quoted and separated by spaces.
fn shell_quote_filter(value: &Value) -> Result<String, Error> {
    let word = |v: &Value| -> Result<String, Error> {
        let text = match v.as_str() {
            Some(s) => s.to_string(),
            None => v.to_string(),
        };
        shell_quote(&text).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    };
    if value.as_str().is_none() && value.kind() == minijinja::value::ValueKind::Seq {
        let mut words = Vec::new();
        for item in value.try_iter()? {
            words.push(word(&item)?);
        }
        return Ok(words.join(" "));
    }
    word(value)
}

/// A writer that keeps at most [`MAX_TEMPLATE_OUTPUT`] bytes and stops the rendering at the
/// deadline or on an interrupt.
struct Bounded {
    out: Vec<u8>,
    writes: u32,
    stopped: Option<Stopped>,
}

#[derive(Clone, Copy)]
enum Stopped {
    Full,
    Budget(Stop),
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > MAX_TEMPLATE_OUTPUT {
            self.stopped = Some(Stopped::Full);
            return Err(io::Error::other("template output limit"));
        }
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(64) {
            if let Err(stop) = check() {
                self.stopped = Some(Stopped::Budget(stop));
                return Err(io::Error::other("template budget"));
            }
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Render `source` against `context` within the bounds; a failure as a message for people.
pub fn render(source: &str, context: &serde_json::Value) -> Result<String, super::Error> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| super::Error::Template(describe(&e)))?;
    let mut out = Bounded {
        out: Vec::new(),
        writes: 0,
        stopped: None,
    };
    let result = bounded(|| {
        if let Err(stop) = check() {
            out.stopped = Some(Stopped::Budget(stop));
            return Err(Error::new(ErrorKind::InvalidOperation, stop.message()));
        }
        template.render_captured_to(context, &mut out).map(|_| ())
    });
    match (result, out.stopped) {
        (Ok(()), _) => String::from_utf8(out.out).map_err(|_| super::Error::NotUtf8),
        (Err(_), Some(Stopped::Full)) => Err(super::Error::OutputLimit),
        (Err(_), Some(Stopped::Budget(stop))) => Err(super::Error::Stopped(stop)),
        (Err(e), None) => Err(super::Error::Template(describe(&e))),
    }
}

/// A template error with its causes, on one line; running out of fuel names the limit.
pub fn describe(error: &Error) -> String {
    match error.kind() {
        ErrorKind::OutOfFuel => {
            return format!(
                "template limit exceeded: more than {TEMPLATE_FUEL} instructions (loops too long or nested too deep){}",
                error
                    .line()
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default()
            )
        }
        ErrorKind::InvalidOperation
            if error
                .detail()
                .is_some_and(|d| d.contains("recursion limit")) =>
        {
            return format!(
                "template limit exceeded: blocks, loops and macro calls nest deeper than {TEMPLATE_RECURSION}"
            )
        }
        _ => {}
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    message
}
