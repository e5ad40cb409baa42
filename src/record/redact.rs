//! Redaction: secret values (provider keys and the like) never reach the record. The engine
//! installs the secrets of a run in its log ([`RunLog::set_secrets`](super::RunLog::set_secrets));
//! every event passes through the log's [`Redactor`] before it is written, and each occurrence
//! of a secret in its text and values becomes `[redacted:<ENV_NAME>]`.
//!
//! Which variables hold secrets is decided elsewhere (agents, models, a built-in list): this
//! module only takes `(name, value)` pairs.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// Values shorter than this are not treated as secrets: they would match ordinary text.
pub const MIN_SECRET_LEN: usize = 8;

/// A set of secret values and the names they are replaced with. Cheap to clone; empty by
/// default, and then it costs nothing.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// One multi-pattern search over each string, leftmost-longest (so that a secret that
    /// contains another is replaced whole).
    automaton: AhoCorasick,
    /// `[redacted:<NAME>]`, one per pattern.
    replacements: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Redactor")
            .field("secrets", &self.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for `(name, value)` pairs. Values shorter than [`MIN_SECRET_LEN`] bytes are
    /// ignored; a value given under several names is replaced with the first name.
    pub fn new<N, V>(secrets: impl IntoIterator<Item = (N, V)>) -> Redactor
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut patterns: Vec<String> = Vec::new();
        let mut replacements = Vec::new();
        for (name, value) in secrets {
            let value = value.as_ref();
            if value.len() < MIN_SECRET_LEN || patterns.iter().any(|p| p == value) {
                continue;
            }
            patterns.push(value.to_string());
            replacements.push(format!("[redacted:{}]", name.as_ref()));
        }
        if patterns.is_empty() {
            return Redactor::default();
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns);
        match automaton {
            Ok(automaton) => Redactor {
                inner: Some(Arc::new(Inner {
                    automaton,
                    replacements,
                })),
            },
            Err(e) => {
                // Only possible with absurdly many or long secrets; redacting with a plain
                // search would be correct but slow, so fail loudly in the log instead.
                tracing::error!("this is a bug in spectacular; please report it: cannot build the redactor: {e}");
                Redactor::default()
            }
        }
    }

    /// How many secrets it replaces.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.replacements.len())
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// `text` with every secret replaced; borrowed when there was nothing to replace.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.inner {
            Some(inner) if inner.automaton.is_match(text) => {
                Cow::Owned(inner.automaton.replace_all(text, &inner.replacements))
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Replace every secret in `text`, in place.
    pub fn redact_string(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }

    /// Replace every secret in the strings of a JSON value (object keys are left as they are).
    pub fn redact_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => self.redact_string(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact_value(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_by_their_names() {
        let r = Redactor::new([
            ("OPENAI_API_KEY", "sk-abcdefgh12345678"),
            ("SHORT", "abc"),
            ("ANTHROPIC_API_KEY", "sk-ant-0123456789"),
            ("ALSO_OPENAI", "sk-abcdefgh12345678"),
            ("PREFIX", "sk-abcdefgh"),
        ]);
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.redact("key=sk-abcdefgh12345678, other sk-ant-0123456789; abc"),
            "key=[redacted:OPENAI_API_KEY], other [redacted:ANTHROPIC_API_KEY]; abc"
        );
        assert_eq!(
            r.redact("only sk-abcdefgh here"),
            "only [redacted:PREFIX] here"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        let mut v = serde_json::json!({"a": [{"b": "x sk-ant-0123456789"}], "n": 1});
        r.redact_value(&mut v);
        assert_eq!(v["a"][0]["b"], "x [redacted:ANTHROPIC_API_KEY]");
        assert!(!format!("{r:?}").contains("sk-"));
        assert!(Redactor::new([("A", "short")]).is_empty());
    }

    #[test]
    fn a_redactor_can_be_shared_with_other_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Redactor>();
    }
}
