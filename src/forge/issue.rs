//! Issue references (`github:owner/repo#123`, `gitlab:group/sub/project#45`) and an issue as
//! a spec: its title, labels, body and comments written as one Markdown file, cleaned and
//! bounded, that a run takes as its `spec` input like any spec file.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{clean, clean_line, Kind};
use crate::spec::complexity::LABELS_PREFIX;

/// The most comments of an issue read into its spec.
pub const MAX_COMMENTS: usize = 100;
/// The most labels kept.
pub const MAX_LABELS: usize = 50;
/// The most bytes of a title, a label or an author's name.
const MAX_LINE: usize = 256;

/// An issue on a forge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRef {
    pub kind: Kind,
    /// `owner/repo` (GitHub) or `group/sub/project` (GitLab).
    pub project: String,
    pub number: u64,
}

impl std::fmt::Display for IssueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}#{}", self.kind.name(), self.project, self.number)
    }
}

/// Why a reference is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not an issue reference: {why}\n  help: write `github:owner/repo#123` or `gitlab:group/project#45` (nested groups too: `gitlab:group/sub/project#45`)")]
pub struct BadRef {
    pub reference: String,
    pub why: String,
}

impl IssueRef {
    /// Does `target` look like an issue reference (`github:` or `gitlab:`)? Then it is one, or
    /// an error saying why not.
    pub fn parse(target: &str) -> Option<Result<IssueRef, BadRef>> {
        let (kind, rest) = if let Some(rest) = target.strip_prefix("github:") {
            (Kind::Github, rest)
        } else if let Some(rest) = target.strip_prefix("gitlab:") {
            (Kind::Gitlab, rest)
        } else {
            return None;
        };
        let bad = |why: &str| BadRef {
            reference: clean_line(target, MAX_LINE),
            why: why.to_string(),
        };
        Some((|| {
            let (project, number) = rest
                .rsplit_once('#')
                .ok_or_else(|| bad("no `#<number>` after the project"))?;
            let number: u64 = number
                .parse()
                .ok()
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .ok_or_else(|| bad("the issue number is not a positive number"))?;
            let segments: Vec<&str> = project.split('/').collect();
            let (min, max) = match kind {
                Kind::Github => (2, 2),
                Kind::Gitlab => (2, 20),
            };
            if segments.len() < min || segments.len() > max {
                return Err(bad(match kind {
                    Kind::Github => "a GitHub project is `owner/repo`",
                    Kind::Gitlab => "a GitLab project is `group/project` (at most 20 levels)",
                }));
            }
            for s in &segments {
                let ok = !s.is_empty()
                    && s.len() <= 100
                    && *s != "."
                    && *s != ".."
                    && !s.starts_with('.')
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    return Err(bad(&format!(
                        "`{}` is not a project name (letters, digits, `-`, `_` and `.`)",
                        clean_line(s, MAX_LINE)
                    )));
                }
            }
            Ok(IssueRef {
                kind,
                project: project.to_string(),
                number,
            })
        })())
    }

    /// The path segments of the spec file written for this issue, below the store's
    /// `issues/` folder: `github/owner/repo/123.md`.
    pub fn file_parts(&self) -> Vec<String> {
        let mut parts = vec![self.kind.name().to_string()];
        parts.extend(self.project.split('/').map(str::to_string));
        parts.push(format!("{}.md", self.number));
        parts
    }

    /// How a change in `project` closes this issue (`Closes #123`, or `Closes owner/repo#123`
    /// from another project).
    pub fn closes(&self, project: &str) -> String {
        if project == self.project {
            format!("Closes #{}", self.number)
        } else {
            format!("Closes {}#{}", self.project, self.number)
        }
    }
}

/// An issue as fetched, already cleaned and bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Issue {
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub comments: Vec<Comment>,
    /// The issue's page.
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comment {
    pub author: String,
    pub body: String,
}

impl Issue {
    /// An issue from what a forge answered (cleaned and bounded here, whatever the forge).
    pub fn new(
        title: &str,
        body: &str,
        labels: Vec<String>,
        comments: Vec<Comment>,
        url: &str,
    ) -> Issue {
        let labels = labels
            .iter()
            .take(MAX_LABELS)
            .map(|l| clean_line(l, MAX_LINE))
            .filter(|l| !l.is_empty())
            .collect();
        let comments = comments
            .into_iter()
            .take(MAX_COMMENTS)
            .map(|c| Comment {
                author: clean_line(&c.author, MAX_LINE),
                body: clean(&c.body.replace("\r\n", "\n"), crate::spec::MAX_SPEC_BYTES),
            })
            .collect();
        Issue {
            title: clean_line(title, MAX_LINE),
            body: clean(&body.replace("\r\n", "\n"), crate::spec::MAX_SPEC_BYTES),
            labels,
            comments,
            url: clean_line(url, 2048),
        }
    }

    /// The issue as a spec: the title as its heading, the labels (hints to the analysis:
    /// `complexity:high`), the body, then each comment under a heading of its own.
    pub fn to_spec(&self, reference: &IssueRef) -> String {
        let mut out = String::new();
        let title = if self.title.is_empty() {
            reference.to_string()
        } else {
            self.title.clone()
        };
        let _ = writeln!(out, "# {title}\n");
        let _ = writeln!(out, "Issue: {reference}");
        if !self.url.is_empty() {
            let _ = writeln!(out, "URL: <{}>", self.url.replace(['<', '>'], ""));
        }
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|l| format!("`{}`", l.replace('`', "'")))
                .collect();
            let _ = writeln!(out, "{LABELS_PREFIX}{}", labels.join(", "));
        }
        let _ = writeln!(out);
        let body = self.body.trim();
        if !body.is_empty() {
            let _ = writeln!(out, "{body}\n");
        }
        if !self.comments.is_empty() {
            let _ = writeln!(out, "## Comments\n");
            for c in &self.comments {
                let _ = writeln!(out, "### Comment by {}\n", c.author.replace('#', ""));
                let _ = writeln!(out, "{}\n", c.body.trim());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<IssueRef, BadRef> {
        IssueRef::parse(s).expect("a reference")
    }

    #[test]
    fn references_parse_with_nested_groups() {
        let r = parse("github:octo/hello.rs#123").unwrap();
        assert_eq!(
            (r.kind, r.project.as_str(), r.number),
            (Kind::Github, "octo/hello.rs", 123)
        );
        let r = parse("gitlab:group/sub/project#45").unwrap();
        assert_eq!(r.project, "group/sub/project");
        assert_eq!(r.to_string(), "gitlab:group/sub/project#45");
        assert!(IssueRef::parse("spec.md").is_none());
    }

    #[test]
    fn bad_references_say_why() {
        let e = parse("github:octo#1").unwrap_err();
        assert!(e.to_string().contains("`owner/repo`"), "{e}");
        assert!(parse("github:octo/repo")
            .unwrap_err()
            .why
            .contains("#<number>"));
        assert!(parse("github:octo/repo#0").is_err());
        assert!(parse("github:octo/repo#-1").is_err());
        assert!(parse("github:../repo#1").is_err());
        assert!(parse("gitlab:a/..#1").is_err());
        assert!(parse("gitlab:a/b c#1").is_err());
        assert!(parse("github:a/b/c#1").is_err());
    }

    #[test]
    fn an_issue_becomes_a_spec_with_its_labels_and_comments() {
        let issue = Issue::new(
            "Greet\npeople\u{1b}[2J",
            "Body\r\n- FR-001: greet",
            vec!["complexity:high".into(), "bug".into()],
            vec![Comment {
                author: "ada".into(),
                body: "Also wave.".into(),
            }],
            "https://example.com/i/1",
        );
        let r = parse("github:o/r#1").unwrap();
        let spec = issue.to_spec(&r);
        assert!(spec.starts_with("# Greet people[2J\n"), "{spec}");
        assert!(
            spec.contains("Labels: `complexity:high`, `bug`\n"),
            "{spec}"
        );
        assert!(spec.contains("Body\n- FR-001: greet\n"), "{spec}");
        assert!(
            spec.contains("### Comment by ada\n\nAlso wave.\n"),
            "{spec}"
        );
        let (label, tier) = crate::spec::complexity::complexity_hint(&spec).unwrap();
        assert_eq!(label, "complexity:high");
        assert_eq!(tier, crate::spec::complexity::Tier::Complex);
        assert_eq!(r.closes("o/r"), "Closes #1");
        assert_eq!(r.closes("x/y"), "Closes o/r#1");
    }
}
