//! The `notify:` section of `.spectacular/config.yaml`: the webhooks told about runs, and the
//! checks the schema cannot make (one of `url` and `url_env`, durations, unique names), each
//! a located diagnostic.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conform::{lookup, Seg};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::load::yaml::Node;

/// The `notify` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// How long an engine that stops (the run ended, or waits for a person) still waits for
    /// deliveries in flight before it exits (default `5s`, at most `60s`). The run itself
    /// never waits for a webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_wait: Option<String>,
    /// The webhooks (at most 16).
    #[schemars(length(min = 1, max = 16))]
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A short name, recorded in each delivery's event (`team-slack`).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub name: String,
    /// The URL to POST to (`https://…` or `http://…`). Slack and Discord webhook URLs hold a
    /// secret: give those with `url_env` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// The environment variable holding the URL (never written to a log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"))]
    pub url_env: Option<String>,
    /// The body's shape: `json` (the event and a summary; the default), `slack` or `discord`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// The environment variable holding the HMAC-SHA256 key the body is signed with
    /// (`X-Spectacular-Signature`). Without it the body is not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"))]
    pub secret_env: Option<String>,
    /// What to send (default: all of them): `approval` (a gate waits for a decision),
    /// `question` (a clarification waits for answers), `failed`, `succeeded` (the run ended)
    /// and `budget` (a budget alert).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotifyKind>,
    /// Only runs of these missions (default: every mission).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missions: Vec<String>,
    /// How long one request may take (default `10s`, at most `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How many times a failed delivery is tried again (default 3, at most 10), waiting
    /// `backoff`, then twice as long each time (at most a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10))]
    pub retries: Option<u32>,
    /// The wait before the first retry (default `1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
}

/// The shape of a webhook's body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
    Discord,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
        }
    }
}

/// What a webhook can be told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A gate waits for a decision (`approval.requested` without questions).
    Approval,
    /// A clarification waits for answers (`approval.requested` with questions).
    Question,
    /// The run failed (`run.failed`).
    Failed,
    /// The run succeeded (`run.succeeded`).
    Succeeded,
    /// A budget alert (`budget.alert`).
    Budget,
}

impl NotifyKind {
    pub const ALL: [NotifyKind; 5] = [
        NotifyKind::Approval,
        NotifyKind::Question,
        NotifyKind::Failed,
        NotifyKind::Succeeded,
        NotifyKind::Budget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Approval => "approval",
            NotifyKind::Question => "question",
            NotifyKind::Failed => "failed",
            NotifyKind::Succeeded => "succeeded",
            NotifyKind::Budget => "budget",
        }
    }
}

/// The longest `timeout` and `exit_wait`.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What the schema cannot check about a `notify` section that conforms to it: pushed onto
/// `diagnostics`, located in `file`.
pub fn check(root: &Node, section: &NotifySection, file: &str, diagnostics: &mut Diagnostics) {
    let at = |path: &[Seg], code: Code, message: String, help: &str| {
        let span = lookup(root, path).map(|f| f.key_span.unwrap_or(f.node.span));
        Diagnostic::new(code, message)
            .at(file, span, crate::conform::path_text(path))
            .help(help)
    };
    let base = [Seg::Key("notify".into())];
    if let Some(wait) = &section.exit_wait {
        if let Some(problem) = duration_problem(wait) {
            let path = [base[0].clone(), Seg::Key("exit_wait".into())];
            diagnostics.push(at(
                &path,
                Code::InvalidDuration,
                format!("`exit_wait: {wait}` {problem}"),
                "write a duration such as `5s` (at most `60s`)",
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, hook) in section.webhooks.iter().enumerate() {
        let item = |key: &str| {
            let mut path = vec![base[0].clone(), Seg::Key("webhooks".into()), Seg::Index(i)];
            if !key.is_empty() {
                path.push(Seg::Key(key.into()));
            }
            path
        };
        if !names.insert(hook.name.as_str()) {
            diagnostics.push(at(
                &item("name"),
                Code::InvalidValue,
                format!("two webhooks are named `{}`", hook.name),
                "give each webhook a name of its own",
            ));
        }
        match (&hook.url, &hook.url_env) {
            (None, None) => diagnostics.push(at(
                &item(""),
                Code::MissingField,
                format!("webhook `{}` has no `url` and no `url_env`", hook.name),
                "add `url: https://…`, or `url_env: NAME` to read the URL from the environment",
            )),
            (Some(_), Some(_)) => diagnostics.push(at(
                &item("url_env"),
                Code::InvalidValue,
                format!("webhook `{}` has both `url` and `url_env`", hook.name),
                "keep one of them",
            )),
            (Some(url), None) => {
                if let Some(problem) = url_problem(url) {
                    diagnostics.push(at(
                        &item("url"),
                        Code::InvalidValue,
                        format!("the URL of webhook `{}` {problem}", hook.name),
                        "write an absolute `https://` (or `http://`) URL",
                    ));
                }
            }
            (None, Some(_)) => {}
        }
        for (key, value) in [("timeout", &hook.timeout), ("backoff", &hook.backoff)] {
            if let Some(problem) = value.as_deref().and_then(duration_problem) {
                diagnostics.push(at(
                    &item(key),
                    Code::InvalidDuration,
                    format!(
                        "`{key}: {}` of webhook `{}` {problem}",
                        value.as_deref().unwrap_or_default(),
                        hook.name
                    ),
                    "write a duration such as `10s` or `500ms` (at most `60s`)",
                ));
            }
        }
    }
}

/// Why `text` is not a duration a webhook setting takes, if it is not.
fn duration_problem(text: &str) -> Option<String> {
    match humantime::parse_duration(text.trim()) {
        Err(e) => Some(format!("is not a duration: {e}")),
        Ok(d) if d > MAX_WAIT => Some("is longer than 60s".into()),
        Ok(_) => None,
    }
}

/// Why `url` is not a URL a webhook can POST to, if it is not.
pub fn url_problem(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some("does not start with `https://` or `http://`".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Some("has no host (or has credentials before it)".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains spaces or control characters".into());
    }
    None
}
