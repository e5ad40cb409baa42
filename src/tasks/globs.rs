//! Could two `owned_files` globs name the same file? Answered conservatively (a "maybe" is
//! reported), in time linear in the globs' lengths times a small constant.
//!
//! Globs are relative paths with `*` (within a segment), `**` (any number of segments), `?`,
//! and `[…]`/`{…}` (treated as "anything" here). A glob without wildcards names a file or,
//! when a glob below it exists, a directory: `src/auth` overlaps `src/auth/login.rs`.

const WILD: &[char] = &['*', '?', '[', '{'];

fn normalize(glob: &str) -> &str {
    let glob = glob.trim();
    let glob = glob.strip_prefix("./").unwrap_or(glob);
    glob.trim_end_matches('/')
}

fn literal_prefix(glob: &str) -> &str {
    glob.find(WILD).map_or(glob, |i| &glob[..i])
}

fn literal_suffix(glob: &str) -> &str {
    glob.rfind(['*', '?', ']', '}'])
        .map_or(glob, |i| &glob[i + 1..])
}

/// `a` is `b`, or a directory above it.
fn is_dir_prefix(a: &str, b: &str) -> bool {
    a.is_empty() || a == b || (b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'/'))
}

/// Steps one match may take; beyond them the answer is "maybe" (true), so a hostile glob
/// costs a bounded amount of time.
const MAX_STEPS: u32 = 1_000;

/// Does glob `pattern` (only `*`, `**` and `?`) match `path`? Iterative, with one backtrack
/// point per kind of star, and at most [`MAX_STEPS`] steps (then it answers true).
fn matches(pattern: &str, path: &str) -> bool {
    let p = pattern.as_bytes();
    let s = path.as_bytes();
    let (mut pi, mut si) = (0, 0);
    let mut steps = 0;
    // Backtrack points: (pattern index after the star, path index) for `*` and `**`.
    let mut star: Option<(usize, usize)> = None;
    let mut globstar: Option<(usize, usize)> = None;
    while si < s.len() {
        steps += 1;
        if steps > MAX_STEPS {
            return true;
        }
        if pi + 1 < p.len() && p[pi] == b'*' && p[pi + 1] == b'*' {
            let mut next = pi + 2;
            if p.get(next) == Some(&b'/') {
                next += 1;
            }
            globstar = Some((next, si));
            star = None;
            pi = next;
            continue;
        }
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, si));
            pi += 1;
            continue;
        }
        if pi < p.len() && (p[pi] == s[si] || (p[pi] == b'?' && s[si] != b'/')) {
            pi += 1;
            si += 1;
            continue;
        }
        if let Some((after, from)) = star {
            if s[from] != b'/' {
                star = Some((after, from + 1));
                pi = after;
                si = from + 1;
                continue;
            }
        }
        if let Some((after, from)) = globstar {
            globstar = Some((after, from + 1));
            star = None;
            pi = after;
            si = from + 1;
            continue;
        }
        return false;
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len() || (pi + 1 == p.len() && p[pi] == b'/')
}

/// Could globs `a` and `b` name the same file (or one a directory holding the other's)?
pub fn may_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    let (wild_a, wild_b) = (a.contains(WILD), b.contains(WILD));
    match (wild_a, wild_b) {
        (false, false) => is_dir_prefix(a, b) || is_dir_prefix(b, a),
        (true, false) | (false, true) => {
            let (glob, path) = if wild_a { (a, b) } else { (b, a) };
            if glob.contains(['[', '{']) {
                return prefixes_related(glob, path) && suffixes_related(glob, path);
            }
            // The path itself, a directory above it (`src/*` owns `src/auth/x.rs`), or a
            // directory holding the glob's files (`src/auth` and `src/auth/**`).
            matches(glob, path)
                || path
                    .match_indices('/')
                    .any(|(i, _)| matches(glob, &path[..i]))
                || is_dir_prefix(path, literal_prefix(glob))
        }
        (true, true) => prefixes_related(a, b) && suffixes_related(a, b),
    }
}

/// One glob's literal beginning is a beginning of the other's.
fn prefixes_related(a: &str, b: &str) -> bool {
    let (pa, pb) = (literal_prefix(a), literal_prefix(b));
    pa.starts_with(pb) || pb.starts_with(pa)
}

/// One glob's literal ending is an ending of the other's (`*.rs` and `src/**/*.md` cannot meet).
/// A glob ending in a directory wildcard (`**`) can end anywhere.
fn suffixes_related(a: &str, b: &str) -> bool {
    if a.ends_with("**") || b.ends_with("**") {
        return true;
    }
    let (sa, sb) = (literal_suffix(a), literal_suffix(b));
    sa.ends_with(sb) || sb.ends_with(sa)
}

/// Which files a work package's `owned_files` own, as git and the book say: `*` and `?`
/// within a segment, `**` across segments, `[…]` classes and `{a,b}` alternatives
/// (`globset`); a glob without wildcards owns that file or, as a directory, everything below
/// it (`src/auth`, `src/auth/`).
pub struct Owned {
    set: globset::GlobSet,
    /// Globs `globset` refused: matched with the conservative [`may_overlap`].
    odd: Vec<String>,
}

impl Owned {
    pub fn new(globs: &[String]) -> Owned {
        let mut builder = globset::GlobSetBuilder::new();
        let mut odd = Vec::new();
        for glob in globs {
            let glob = normalize(glob);
            if glob.is_empty() {
                continue;
            }
            let mut add = |pattern: &str| match globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                Ok(g) => {
                    builder.add(g);
                    true
                }
                Err(_) => false,
            };
            let ok = add(glob) && (glob.contains(WILD) || add(&format!("{glob}/**")));
            if !ok {
                odd.push(glob.to_string());
            }
        }
        Owned {
            set: builder
                .build()
                .unwrap_or_else(|_| globset::GlobSet::empty()),
            odd,
        }
    }

    /// Does one of the globs own `path` (relative to the project)?
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path) || self.odd.iter().any(|g| may_overlap(g, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_files_match_as_git_does() {
        let owned = Owned::new(&[
            "src/{a,b}.sh".to_string(),
            "docs/**".to_string(),
            "lib/*.rs".to_string(),
            "README.md".to_string(),
            "tools/".to_string(),
        ]);
        for yes in [
            "src/a.sh",
            "src/b.sh",
            "docs/x/y/z.md",
            "lib/m.rs",
            "README.md",
            "tools/t/u.sh",
        ] {
            assert!(owned.matches(yes), "{yes}");
        }
        for no in [
            "src/c.sh",
            "lib/sub/m.rs",
            "README.md.bak",
            "other/README.md",
            "toolsx",
        ] {
            assert!(!owned.matches(no), "{no}");
        }
    }

    #[test]
    fn matching_handles_stars_globstars_and_question_marks() {
        assert!(matches("src/*.rs", "src/main.rs"));
        assert!(!matches("src/*.rs", "src/a/main.rs"));
        assert!(matches("src/**/*.rs", "src/a/b/main.rs"));
        assert!(matches("src/**/*.rs", "src/main.rs"));
        assert!(matches("src/**", "src/a/b"));
        assert!(matches("**/*.md", "docs/a.md"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "a/c"));
        assert!(!matches("src/*.rs", "src/main.md"));
    }

    #[test]
    fn overlaps_are_found() {
        for (a, b) in [
            ("src/auth.rs", "src/auth.rs"),
            ("./src/auth.rs", "src/auth.rs"),
            ("src/auth", "src/auth/login.rs"),
            ("src/auth/", "src/auth/**"),
            ("src/**", "src/auth/login.rs"),
            ("src/*.rs", "src/lib.rs"),
            ("src/**/*.rs", "src/auth/*.rs"),
            ("**", "anything/at/all"),
            ("src/{a,b}.rs", "src/a.rs"),
        ] {
            assert!(may_overlap(a, b), "{a} / {b}");
            assert!(may_overlap(b, a), "{b} / {a}");
        }
    }

    #[test]
    fn disjoint_globs_are_not_overlaps() {
        for (a, b) in [
            ("src/auth.rs", "src/auth.rs.bak"),
            ("src/auth", "src/authz/x.rs"),
            ("src/*.rs", "src/a/lib.rs"),
            ("src/**/*.rs", "docs/**/*.rs"),
            ("src/**/*.rs", "src/**/*.md"),
            ("tests/*.rs", "src/lib.rs"),
        ] {
            assert!(!may_overlap(a, b), "{a} / {b}");
            assert!(!may_overlap(b, a), "{b} / {a}");
        }
    }

    #[test]
    fn a_hostile_glob_is_answered_quickly() {
        let glob = "*a".repeat(2_000) + "b";
        let path = "a".repeat(4_000);
        // Too much work to decide: answered "maybe", after a bounded number of steps.
        assert!(may_overlap(&glob, &path));
        assert!(!matches("*a*a*b", &"a".repeat(100)));
    }
}
