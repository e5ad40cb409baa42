//! Small text helpers shared by ingest, checks and complexity: columns, clipping, words and
//! the crude stems the coverage rule compares.

/// A Han, kana or Hangul character: a language written without spaces between words.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// The 1-based column (in characters) of byte offset `byte` of `line`.
pub(crate) fn col(line: &str, byte: usize) -> u32 {
    let byte = floor_boundary(line, byte.min(line.len()));
    line[..byte].chars().count() as u32 + 1
}

/// The byte offset of `sub` inside `line`; `sub` must be a slice of `line` (else 0).
pub(crate) fn offset_in(line: &str, sub: &str) -> usize {
    let start = line.as_ptr() as usize;
    let at = sub.as_ptr() as usize;
    if at >= start && at + sub.len() <= start + line.len() {
        at - start
    } else {
        0
    }
}

/// The largest char boundary of `text` at or below `byte`.
pub(crate) fn floor_boundary(text: &str, byte: usize) -> usize {
    let mut byte = byte.min(text.len());
    while byte > 0 && !text.is_char_boundary(byte) {
        byte -= 1;
    }
    byte
}

/// `text` cut to at most `max` bytes, on a char boundary.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    &text[..floor_boundary(text, max)]
}

/// The number of characters of `text`, as a span length.
pub(crate) fn chars(text: &str) -> u32 {
    text.chars().count().min(u32::MAX as usize) as u32
}

/// Whether the ASCII-lowercased `hay` holds `needle` at byte `at` as whole words.
pub(crate) fn whole_word(hay: &[u8], at: usize, len: usize) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let before = at == 0 || !word(hay[at - 1]);
    let after = at + len >= hay.len() || !word(hay[at + len]);
    before && after
}

/// Words that say nothing about what a requirement is about.
const STOPWORDS: &[&str] = &[
    "about", "above", "after", "again", "allow", "allows", "also", "been", "being", "before",
    "both", "able", "can", "could", "does", "each", "every", "from", "given", "have", "having",
    "into", "just", "least", "make", "more", "most", "must", "need", "needs", "only", "other",
    "over", "same", "shall", "should", "some", "such", "than", "that", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "under", "until", "upon", "user",
    "users", "very", "what", "when", "where", "which", "while", "will", "with", "within",
    "without", "would", "your", "system", "feature", "ensure", "support", "provide", "able",
];

/// The content stems of `text`: lowercase words of 4 letters or more, not stopwords, cut to
/// their first 5 letters (a crude stemmer: `accounts`, `account` → `accou`; `create`,
/// `created` → `creat`).
pub(crate) fn stems(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().any(is_cjk) {
            // No spaces between Chinese or Japanese words: pairs of characters stand in.
            let han: Vec<char> = word.chars().filter(|&c| is_cjk(c)).collect();
            for pair in han.windows(2) {
                let stem: String = pair.iter().collect();
                if !out.contains(&stem) {
                    out.push(stem);
                }
            }
            continue;
        }
        if word.chars().count() < 4 {
            continue;
        }
        let lower = word.to_lowercase();
        if STOPWORDS.contains(&lower.as_str()) || lower.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let stem: String = lower.chars().take(5).collect();
        if !out.contains(&stem) {
            out.push(stem);
        }
    }
    out
}

/// Whether a heading is a Goals section (`Goals`, `Design goals`), not `Non-Goals`.
pub(crate) fn is_goals(title: &str) -> bool {
    let t = title.to_lowercase();
    t.contains("goal") && !t.contains("non-goal") && !t.contains("non goal")
}

/// Whether a heading is a list of goals by its last word (`Goals`, `Design Goals:`), not a
/// topic that starts with the word (`Goal tracking`).
pub(crate) fn names_goals(title: &str) -> bool {
    let t = title
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    is_goals(&t) && (t.ends_with("goals") || t.ends_with("goal"))
}

/// Whitespace-separated words.
pub(crate) fn word_count(text: &str) -> u32 {
    // Chinese and Japanese put no spaces between words: each of their characters counts as
    // a word (as word processors count them), the rest by whitespace.
    let mut n = 0usize;
    for word in text.split_whitespace() {
        let cjk = word.chars().filter(|&c| is_cjk(c)).count();
        let rest = word.chars().any(|c| !is_cjk(c) && c.is_alphanumeric());
        n += cjk + usize::from(rest || cjk == 0);
    }
    n.min(u32::MAX as usize) as u32
}

/// `1 item`, `2 items`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Markdown emphasis and code marks removed, for display and matching.
pub(crate) fn plain(text: &str) -> String {
    text.replace("**", "").replace("__", "").trim().to_string()
}

/// The lines outside Markdown code fences (```` ``` ```` and `~~~`), with their 0-based
/// index; the fence lines themselves are left out.
pub(crate) fn outside_fences<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> impl Iterator<Item = (usize, &'a str)> {
    let mut fence = false;
    lines.enumerate().filter(move |(_, line)| {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
            return false;
        }
        !fence
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let line = "é - FR-001";
        assert_eq!(col(line, line.find('F').unwrap()), 5);
        assert_eq!(col(line, 1), 1, "inside a character: its start");
    }

    #[test]
    fn stems_match_inflections_and_skip_filler() {
        assert_eq!(stems("Users MUST create accounts"), vec!["creat", "accou"]);
        assert_eq!(stems("an account is created"), vec!["accou", "creat"]);
    }
}
