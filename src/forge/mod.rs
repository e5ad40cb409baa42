//! GitHub and GitLab: issues in, pull requests out. An issue reference
//! (`github:owner/repo#123`, `gitlab:group/sub/project#45`) is fetched into a spec file
//! (`issue.rs`), the plan and the end of a run are commented on the issue, and the run's
//! integration branch is pushed and proposed as a pull or merge request whose body is the run's
//! report (`publish.rs`). `http.rs` is the one HTTP client (ureq: tokens, retries, rate
//! limits); `github.rs` and `gitlab.rs` speak each REST API; `config.rs` is the `forge:` and
//! `pull_requests:` sections of the project's `config.yaml`.
//!
//! Everything a forge answers is hostile: bounded, stripped of control characters, and a spec
//! like any other once written. Tokens are read from the environment (or `gh` / `glab`), sent
//! only in request headers, and never logged, shown or recorded.

pub mod config;
pub mod github;
pub mod gitlab;
pub mod http;
pub mod issue;
pub mod publish;

use std::fmt;

pub use config::{ForgeConfig, PullRequestConfig};
pub use issue::{Issue, IssueRef};

/// Which forge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Github,
    Gitlab,
}

impl Kind {
    /// `github` or `gitlab`, as in a reference.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Github => "github",
            Kind::Gitlab => "gitlab",
        }
    }

    /// The variables a token is read from, in order.
    pub fn token_vars(self) -> &'static [&'static str] {
        match self {
            Kind::Github => &["GITHUB_TOKEN", "GH_TOKEN"],
            Kind::Gitlab => &["GITLAB_TOKEN"],
        }
    }

    /// What a proposed change is called there.
    pub fn request_noun(self) -> &'static str {
        match self {
            Kind::Github => "pull request",
            Kind::Gitlab => "merge request",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Github => "GitHub",
            Kind::Gitlab => "GitLab",
        })
    }
}

/// A pull or merge request to open or update.
#[derive(Clone, Debug)]
pub struct Proposal {
    pub title: String,
    pub body: String,
    /// The branch with the work.
    pub head: String,
    /// The branch it asks to merge into.
    pub base: String,
    pub draft: bool,
}

/// A pull or merge request as the forge answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub number: u64,
    pub url: String,
}

/// What Spectacular asks of a forge.
pub trait Api {
    fn kind(&self) -> Kind;
    /// The issue `number` of `project`, with its labels and (the first) comments.
    fn issue(&self, project: &str, number: u64) -> Result<Issue, Error>;
    /// Comment on an issue; the comment's address, or an anchor on the issue's page (`#note_1`).
    fn comment(&self, project: &str, number: u64, body: &str) -> Result<String, Error>;
    /// The open pull request from `branch`, if there is one.
    fn find_request(&self, project: &str, branch: &str) -> Result<Option<Request>, Error>;
    fn open_request(&self, project: &str, proposal: &Proposal) -> Result<Request, Error>;
    fn update_request(
        &self,
        project: &str,
        number: u64,
        proposal: &Proposal,
    ) -> Result<Request, Error>;
}

/// A client of `kind`'s API as configured, with its token.
pub fn connect(kind: Kind, config: &ForgeConfig) -> Result<Box<dyn Api>, Error> {
    let api = config.api_url(kind)?;
    let token = http::token(kind, &http::host_of(&api))?;
    Ok(match kind {
        Kind::Github => Box::new(github::GitHub::new(api, token)),
        Kind::Gitlab => Box::new(gitlab::GitLab::new(api, token)),
    })
}

/// What went wrong talking to a forge. No variant ever holds a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no {kind} token: set `{var}`{cli}",
        var = kind.token_vars()[0],
        cli = match kind { Kind::Github => " (or log in with `gh auth login`)", Kind::Gitlab => " (or log in with `glab auth login`)" }
    )]
    NoToken { kind: Kind },
    #[error("{method} {url}: HTTP {status}: {message}{help}", help = status_help(*status))]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{method} {url}: rate limited, and the limit resets in {wait_secs} s (more than the {max_secs} s spectacular waits); try again later")]
    RateLimited {
        method: &'static str,
        url: String,
        wait_secs: u64,
        max_secs: u64,
    },
    #[error("{method} {url}: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("{method} {url}: the answer is not what the API returns ({what})")]
    Shape {
        method: &'static str,
        url: String,
        what: String,
    },
    #[error("`{url}` is not an http(s) URL for the {kind} API\n  help: set `forge.{name}.api_url` in .spectacular/config.yaml to the API's address (e.g. `{example}`)", name = kind.name(), example = match kind { Kind::Github => "https://github.example.com/api/v3", Kind::Gitlab => "https://gitlab.example.com/api/v4" })]
    BadApiUrl { kind: Kind, url: String },
}

/// An answer of the forge's API that is not what the API documents.
fn shape(method: &'static str, url: &str, what: &str) -> Error {
    Error::Shape {
        method,
        url: url.to_string(),
        what: what.to_string(),
    }
}

/// A string field of an API answer (empty when missing).
fn text<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

/// An issue's labels: names (GitLab) or objects with a `name` (GitHub).
fn labels(v: &serde_json::Value) -> Vec<String> {
    v.get("labels")
        .and_then(serde_json::Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l.as_str().or_else(|| text(l, "name").into()))
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn status_help(status: u16) -> &'static str {
    match status {
        401 => "\n  help: the token was refused; check that it is valid and not expired",
        403 => "\n  help: the token lacks a permission this needs (issues: read and write; pull requests: write; contents: write to push)",
        404 => "\n  help: check the project and number, and that the token can see the project",
        _ => "",
    }
}

/// `text` with no control characters but newlines and tabs, and at most `max` bytes (cut at
/// a character boundary, with `…` when cut).
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let keep = c == '\n' || c == '\t' || !(c.is_control() || is_invisible(c));
        if !keep {
            continue;
        }
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// One line of at most `max` bytes: line breaks and tabs become spaces.
pub fn clean_line(text: &str, max: usize) -> String {
    clean(&text.replace(['\n', '\r', '\t'], " "), max)
        .trim()
        .to_string()
}

/// Bidirectional overrides and zero-width characters, which make text read other than it is.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_control_and_invisible_characters_and_bounds() {
        assert_eq!(clean("a\u{1b}[31mb\u{202e}c\nd\r", 100), "a[31mbc\nd");
        assert_eq!(clean("éééé", 5), "éé…");
        assert_eq!(clean_line(" a\nb\tc ", 100), "a b c");
    }

    #[test]
    fn no_token_names_the_variable_to_set() {
        let e = Error::NoToken { kind: Kind::Gitlab };
        assert!(e.to_string().contains("set `GITLAB_TOKEN`"), "{e}");
        let e = Error::NoToken { kind: Kind::Github };
        assert!(e.to_string().contains("set `GITHUB_TOKEN`"), "{e}");
    }
}
