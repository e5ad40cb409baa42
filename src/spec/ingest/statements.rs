//! Reading statements: EARS (English, Japanese and Chinese), settled questions, and
//! clarification markers as questions.

use super::*;

/// An open question marked as settled: ticked, struck through, or answered in place.
pub(super) fn resolved(ticked: bool, text: &str) -> bool {
    let lower = text.to_lowercase();
    ticked
        || text.starts_with("~~")
        || text.contains('✅')
        || lower.starts_with("resolved")
        || lower.contains("(resolved")
        || lower.contains("→ a:")
        || lower.contains("answer:")
}

/// The EARS parts of a statement, when it is one.
pub(super) fn ears(text: &str) -> Option<Ears> {
    let lower = text.to_lowercase();
    if !lower.contains("shall") {
        return cjk_ears(text);
    }
    if let Some(c) = EARS.captures(text) {
        let kw = c.name("kw").map_or("", |m| m.as_str()).to_lowercase();
        let pattern = match kw.as_str() {
            "when" => "event",
            "while" => "state",
            "if" => "unwanted",
            _ => "optional",
        };
        return Some(Ears {
            pattern: pattern.into(),
            condition: c.name("cond").map(|m| m.as_str().trim().to_string()),
            response: c.name("resp").map_or("", |m| m.as_str()).trim().to_string(),
        });
    }
    Some(Ears {
        pattern: "ubiquitous".into(),
        condition: None,
        response: text.trim().to_string(),
    })
}

/// EARS written in Japanese or Chinese: the English keywords (`WHEN … THEN`, `IF`, `WHILE`,
/// `WHERE`) around a response that says it must (`しなければならない`, `必须`…).
pub(super) fn cjk_ears(text: &str) -> Option<Ears> {
    const MODALS: &[&str] = &[
        "なければならない",
        "ものとする",
        "必须",
        "应当",
        "應當",
        "必須",
    ];
    let t = text.trim();
    let mut said = t.trim_end_matches(['。', '.']);
    // A closing aside (`…取得すること（k値は設定可能）`) is not the statement's end.
    if said.ends_with('）') {
        if let Some(open) = said.rfind('（') {
            said = said[..open].trim_end();
        }
    }
    if !MODALS.iter().any(|m| t.contains(m)) && !said.ends_with("こと") {
        return None;
    }
    let upper = t.to_uppercase();
    let pattern = ["WHEN", "WHILE", "IF", "WHERE"]
        .iter()
        .find(|k| upper.starts_with(*k))
        .map(|k| match *k {
            "WHEN" => "event",
            "WHILE" => "state",
            "IF" => "unwanted",
            _ => "optional",
        });
    let Some(pattern) = pattern else {
        // Japanese EARS without the English keywords: `…時、` (event), `…場合、` (unwanted),
        // `…間、` (state).
        for (mark, pattern) in [
            ("時、", "event"),
            ("とき、", "event"),
            ("場合、", "unwanted"),
            ("間、", "state"),
        ] {
            if let Some(at) = t.find(mark) {
                return Some(Ears {
                    pattern: pattern.into(),
                    condition: Some(t[..at].to_string()),
                    response: t[at + mark.len()..].trim().to_string(),
                });
            }
        }
        return Some(Ears {
            pattern: "ubiquitous".into(),
            condition: None,
            response: t.to_string(),
        });
    };
    let start = t.find(char::is_whitespace).unwrap_or(t.len());
    let (condition, response) = match upper.find("THEN").or_else(|| upper.find("THE ")) {
        Some(at) if at >= start && t.is_char_boundary(at) => {
            let cond = t[start..at].trim();
            let resp = t[at..]
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .trim();
            (Some(cond.to_string()), resp.to_string())
        }
        _ => (None, t[start..].trim().to_string()),
    };
    Some(Ears {
        pattern: pattern.into(),
        condition,
        response,
    })
}

/// A clarification marker's text as a question for the author.
pub(crate) fn question(marker: &str) -> String {
    static UNSAID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(?P<subject>.*?)\s+(?:is\s+|are\s+)?(?:not\s+specified|unspecified|not\s+defined|undefined|unclear|unknown|tbd|to\s+be\s+decided)\s*(?:[-–—:,]\s*(?P<options>.*))?$")
            .expect("valid regex")
    });
    let marker = marker.trim().trim_end_matches('.');
    if marker.is_empty() {
        return "What is meant here?".into();
    }
    if let Some(c) = UNSAID.captures(marker) {
        let subject = c.name("subject").map_or("", |m| m.as_str()).trim();
        let options = c
            .name("options")
            .map_or("", |m| m.as_str())
            .trim()
            .trim_end_matches('?')
            .trim();
        if !subject.is_empty() {
            let subject = subject.strip_prefix("the ").unwrap_or(subject);
            return if options.is_empty() {
                format!("What is the {subject}?")
            } else {
                format!("What is the {subject} ({options})?")
            };
        }
    }
    let mut q = String::new();
    let mut chars = marker.chars();
    if let Some(first) = chars.next() {
        q.extend(first.to_uppercase());
        q.push_str(chars.as_str());
    }
    if q.ends_with('?') {
        q
    } else {
        format!("Please clarify: {q}?")
    }
}
