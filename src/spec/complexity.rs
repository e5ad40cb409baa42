//! Complexity in five weighted dimensions (scope, dependencies, ambiguity, technical risk,
//! integration), each a number in 0..1 with the signals behind it, and the tier of the
//! weighted sum.
//!
//! Every count becomes a share of its dimension through a saturating curve,
//! `sat(x, k) = 1 - e^(-x/k)` (`k` is the count that gives 0.63), and the parts of a dimension
//! are combined as independent chances, `1 - Π(1 - wᵢ·partᵢ)`: each part can raise the
//! dimension, none can lower what another found, and the dimension stays below 1.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use indexmap::IndexMap;
use regex::Regex;
use serde::Serialize;

use super::config::{AnalysisConfig, DIMENSIONS};
use super::model::{RequirementKind, Spec};
use super::repo::RepoFacts;
use super::text::plural;

/// The tier of a complexity score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Simple,
    Medium,
    Complex,
    Critical,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Simple => "simple",
            Tier::Medium => "medium",
            Tier::Complex => "complex",
            Tier::Critical => "critical",
        }
    }
}

/// One dimension: its score, its weight and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dimension {
    pub score: f64,
    pub weight: f64,
    pub signals: Vec<String>,
}

/// The weighted score, its tier and every dimension (keyed by name, in the order of
/// [`DIMENSIONS`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Complexity {
    pub score: f64,
    pub tier: Tier,
    pub dimensions: IndexMap<String, Dimension>,
    /// The risk areas the spec touches (`auth`, `payments`…).
    pub risk_areas: Vec<String>,
}

/// What the checks found that the ambiguity dimension counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Findings {
    pub vague_terms: usize,
    pub uncovered: usize,
}

fn sat(x: f64, k: f64) -> f64 {
    1.0 - (-x / k).exp()
}

fn any_of(parts: &[(f64, f64)]) -> f64 {
    1.0 - parts
        .iter()
        .map(|(w, p)| 1.0 - (w * p).clamp(0.0, 1.0))
        .product::<f64>()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Third-party services and platforms a spec can name.
const SERVICES: &[&str] = &[
    "stripe",
    "paypal",
    "braintree",
    "adyen",
    "square",
    "twilio",
    "sendgrid",
    "mailgun",
    "mailchimp",
    "postmark",
    "amazon s3",
    "s3",
    "aws",
    "lambda",
    "sqs",
    "sns",
    "dynamodb",
    "gcp",
    "google cloud",
    "bigquery",
    "azure",
    "firebase",
    "supabase",
    "auth0",
    "okta",
    "keycloak",
    "cognito",
    "github",
    "gitlab",
    "bitbucket",
    "slack",
    "discord",
    "microsoft teams",
    "jira",
    "zendesk",
    "intercom",
    "salesforce",
    "hubspot",
    "shopify",
    "kafka",
    "rabbitmq",
    "nats",
    "redis",
    "memcached",
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "elasticsearch",
    "opensearch",
    "algolia",
    "openai",
    "anthropic",
    "google maps",
    "mapbox",
    "segment",
    "mixpanel",
    "google analytics",
    "sentry",
    "datadog",
    "pagerduty",
    "cloudflare",
    "vercel",
    "heroku",
    "ldap",
    "active directory",
    "smtp",
    "xero",
    "quickbooks",
    "docusign",
    "plaid",
    "zoom",
    "google calendar",
    "outlook",
    "dropbox",
    "google drive",
    "snowflake",
    "confluent",
    "opentelemetry",
    "schema registry",
    "kms",
    "vault",
    "azure ad",
    "zapier",
    "figma",
    "cloudinary",
    "launchdarkly",
    "pusher",
];

/// Risk areas and the words that reveal them. The first four are the critical ones.
const RISKS: &[(&str, &[&str])] = &[
    (
        "auth",
        &[
            "authentication",
            "authorization",
            "authorisation",
            "login",
            "log in",
            "sign in",
            "sign-in",
            "password",
            "passwords",
            "oauth",
            "sso",
            "saml",
            "jwt",
            "2fa",
            "mfa",
            "permission",
            "permissions",
            "rbac",
            "role-based",
            "access control",
            "session token",
        ],
    ),
    (
        "payments",
        &[
            "payment",
            "payments",
            "billing",
            "invoice",
            "invoices",
            "checkout",
            "refund",
            "refunds",
            "subscription",
            "subscriptions",
            "credit card",
            "pci",
            "stripe",
            "paypal",
        ],
    ),
    (
        "security",
        &[
            "encryption",
            "encrypt",
            "encrypted",
            "cryptographic",
            "secrets",
            "vulnerability",
            "xss",
            "csrf",
            "sql injection",
            "tls",
            "certificate",
            "certificates",
            "signature",
            "signed url",
        ],
    ),
    (
        "privacy",
        &[
            "gdpr",
            "hipaa",
            "pii",
            "personal data",
            "compliance",
            "audit log",
            "audit trail",
            "retention",
            "consent",
            "ccpa",
            "soc 2",
        ],
    ),
    (
        "data migration",
        &[
            "migration",
            "migrations",
            "migrate",
            "backfill",
            "schema change",
            "data import",
        ],
    ),
    (
        "concurrency",
        &[
            "concurrent",
            "concurrency",
            "race condition",
            "locking",
            "distributed",
            "consensus",
            "transactions",
            "transactional",
            "idempotent",
            "exactly-once",
            "exactly once",
            "at least once",
            "at-least-once",
            "eventual consistency",
            "saga",
            "sagas",
            "outbox",
            "dead-letter",
            "crdt",
            "crdts",
        ],
    ),
    (
        "real-time",
        &[
            "real-time",
            "realtime",
            "websocket",
            "websockets",
            "streaming",
            "live updates",
            "push notifications",
        ],
    ),
    (
        "performance",
        &[
            "latency",
            "throughput",
            "p95",
            "p99",
            "requests per second",
            "concurrent users",
            "under load",
        ],
    ),
    (
        "data loss",
        &[
            "backup",
            "backups",
            "restore",
            "durability",
            "data loss",
            "disaster recovery",
        ],
    ),
    (
        "infrastructure",
        &[
            "kubernetes",
            "terraform",
            "failover",
            "multi-region",
            "load balancer",
            "autoscaling",
            "deployment pipeline",
        ],
    ),
];

/// Words that say the work meets other systems.
const INTEGRATION: &[&str] = &[
    "api",
    "apis",
    "endpoint",
    "endpoints",
    "webhook",
    "webhooks",
    "rest",
    "graphql",
    "grpc",
    "integrate",
    "integration",
    "integrations",
    "existing",
    "legacy",
    "sdk",
    "plugin",
    "plugins",
    "callback",
    "queue",
    "event bus",
    "third-party",
    "third party",
    "import",
    "export",
    "sync",
    "synchronise",
    "synchronize",
    "upstream",
    "downstream",
    "microservice",
    "microservices",
];

/// Phrases that say one thing waits for another.
const DEPENDS: &[&str] = &[
    "depends on",
    "dependent on",
    "requires",
    "prerequisite",
    "blocked by",
    "after the",
    "once the",
    "builds on",
    "relies on",
];

fn automaton(words: impl IntoIterator<Item = &'static str>) -> AhoCorasick {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(words)
        .expect("valid patterns")
}

static SERVICE_AC: LazyLock<AhoCorasick> = LazyLock::new(|| automaton(SERVICES.iter().copied()));
static RISK_AC: LazyLock<(AhoCorasick, Vec<usize>)> = LazyLock::new(|| {
    let mut words = Vec::new();
    let mut area = Vec::new();
    for (i, (_, ws)) in RISKS.iter().enumerate() {
        for w in *ws {
            words.push(*w);
            area.push(i);
        }
    }
    (automaton(words), area)
});
static INTEGRATION_AC: LazyLock<AhoCorasick> =
    LazyLock::new(|| automaton(INTEGRATION.iter().copied()));
static DEPENDS_AC: LazyLock<AhoCorasick> = LazyLock::new(|| automaton(DEPENDS.iter().copied()));
static MILLIS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d+\s?(?:ms|milliseconds)\b").expect("valid regex"));
static REQ_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:FR|NFR|REQ|R|US|SC)-?\d+(?:\.\d+)?\b").expect("valid regex")
});

/// The distinct patterns of `ac` found as whole words in the lowercased `hay`.
fn distinct(ac: &AhoCorasick, hay: &str) -> Vec<usize> {
    let bytes = hay.as_bytes();
    let mut found: Vec<usize> = ac
        .find_iter(bytes)
        .filter(|m| super::text::whole_word(bytes, m.start(), m.len()))
        .map(|m| m.pattern().as_usize())
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

fn and_list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// Score `spec` (whose text is `text`), with what the repository walk found, if any.
pub fn score(
    spec: &Spec,
    text: &str,
    repo: Option<&RepoFacts>,
    findings: Findings,
    config: &AnalysisConfig,
) -> Complexity {
    let lower = text.to_ascii_lowercase();
    let requirements = spec
        .requirements
        .iter()
        .filter(|r| r.kind != RequirementKind::Constraint)
        .count();
    let constraints = spec.requirements.len() - requirements;
    let words = f64::from(spec.words);

    // Scope: how much is asked, and how much of the repository it touches.
    let mut scope_signals = vec![
        plural(requirements, "requirement", "requirements"),
        format!("{} words", spec.words),
    ];
    if !spec.stories.is_empty() {
        scope_signals.push(plural(spec.stories.len(), "user story", "user stories"));
    }
    if constraints > 0 {
        scope_signals.push(plural(constraints, "constraint", "constraints"));
    }
    let spec_scope = any_of(&[
        (0.85, sat(requirements as f64, 8.0)),
        (0.6, sat(words, 600.0)),
        (0.3, sat(spec.stories.len() as f64, 3.0)),
    ]);
    let mut scope = spec_scope;
    if let Some(repo) = repo.filter(|r| !r.identifiers.is_empty()) {
        let lines: usize = repo.modules.iter().map(|m| m.lines).sum();
        scope_signals.push(format!(
            "{} in the repository match identifiers from the spec",
            plural(repo.matched.len(), "file", "files")
        ));
        if lines > 0 {
            scope_signals.push(format!("the matched files hold {lines} lines"));
        }
        let repo_part =
            0.6 * sat(repo.matched.len() as f64, 15.0) + 0.4 * sat(lines as f64, 4000.0);
        scope = any_of(&[(1.0, spec_scope), (0.5, repo_part)]);
    }

    // Dependencies: services outside the project, requirements waiting for others, the
    // project's own dependencies named.
    let services: Vec<String> = distinct(&SERVICE_AC, &lower)
        .into_iter()
        .map(|i| SERVICES[i].to_string())
        .collect();
    let cross = spec
        .requirements
        .iter()
        .filter(|r| {
            let l = r.text.to_ascii_lowercase();
            REQ_REF.find_iter(&r.text).any(|m| m.as_str() != r.id)
                || !distinct(&DEPENDS_AC, &l).is_empty()
        })
        .count();
    let mut dep_signals = Vec::new();
    dep_signals.push(if services.is_empty() {
        "no external service named".to_string()
    } else {
        format!(
            "{} named: {}",
            plural(services.len(), "external service", "external services"),
            services.join(", ")
        )
    });
    if cross > 0 {
        dep_signals.push(format!(
            "{} refer to other requirements or prerequisites",
            plural(cross, "requirement", "requirements")
        ));
    }
    let mut named_deps: Vec<String> = Vec::new();
    if let Some(repo) = repo {
        let words: std::collections::HashSet<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
            .filter(|w| w.len() >= 3)
            .collect();
        named_deps = repo
            .dependencies
            .iter()
            .filter(|d| d.len() >= 3 && words.contains(d.to_ascii_lowercase().as_str()))
            .take(20)
            .cloned()
            .collect();
        if !named_deps.is_empty() {
            dep_signals.push(format!(
                "the spec names {} of the project: {}",
                plural(named_deps.len(), "dependency", "dependencies"),
                named_deps.join(", ")
            ));
        }
    }
    let dependencies = any_of(&[
        (0.9, sat(services.len() as f64, 1.5)),
        (0.5, sat(cross as f64, 4.0)),
        (0.4, sat(named_deps.len() as f64, 3.0)),
    ]);

    // Ambiguity: vague terms, open questions, what nothing checks, a spec too short to say
    // much.
    let checkable = (spec.requirements.len() + spec.criteria.len()).max(1) as f64;
    let markers = spec.clarifications.len();
    let mut amb_signals = Vec::new();
    if findings.vague_terms > 0 {
        amb_signals.push(plural(findings.vague_terms, "vague term", "vague terms"));
    }
    if markers > 0 {
        amb_signals.push(plural(
            markers,
            "clarification marker or open question",
            "clarification markers or open questions",
        ));
    }
    let no_criteria = spec.criteria.is_empty() && requirements > 0;
    if no_criteria {
        amb_signals.push("no acceptance criteria".into());
    } else if findings.uncovered > 0 {
        amb_signals.push(format!(
            "{} of {} requirements covered by no criterion",
            findings.uncovered, requirements
        ));
    }
    if spec.requirements.iter().all(|r| !r.explicit_id) && !spec.requirements.is_empty() {
        amb_signals.push("requirements have no ids".into());
    }
    // A short spec leaves much unsaid, and a missing criterion matters more the more is
    // asked: both count in proportion to the number of requirements.
    let asked = sat(requirements as f64, 3.0);
    let brevity = if words < 150.0 {
        (1.0 - words / 150.0) * asked
    } else {
        0.0
    };
    if brevity > 0.0 {
        amb_signals.push(format!("the spec is only {} words long", spec.words));
    }
    if requirements == 0 {
        amb_signals.push("no requirements".into());
    }
    if amb_signals.is_empty() {
        amb_signals.push("no vague terms, no open questions, every requirement covered".into());
    }
    let uncovered_share = if requirements > 0 {
        findings.uncovered as f64 / requirements as f64
    } else {
        0.0
    };
    let ambiguity = any_of(&[
        (0.6, sat(findings.vague_terms as f64 / checkable, 0.2)),
        (0.3, sat(findings.vague_terms as f64, 6.0)),
        (0.8, sat(markers as f64, 1.5)),
        (0.4, uncovered_share),
        (0.5, if no_criteria { asked } else { 0.0 }),
        (0.4, brevity),
        (0.5, if requirements == 0 { 1.0 } else { 0.0 }),
    ]);

    // Technical risk: the sensitive areas the spec touches.
    let (ac, area_of) = &*RISK_AC;
    let mut areas: Vec<usize> = distinct(ac, &lower)
        .into_iter()
        .map(|p| area_of[p])
        .collect();
    if MILLIS.is_match(&lower) {
        areas.push(7);
    }
    areas.sort_unstable();
    areas.dedup();
    let risk_areas: Vec<String> = areas.iter().map(|&a| RISKS[a].0.to_string()).collect();
    let critical = areas.iter().filter(|&&a| a < 4).count();
    let risk = sat(areas.len() as f64 + 0.5 * critical as f64, 2.0);
    let risk_signals = vec![if risk_areas.is_empty() {
        "no sensitive area (auth, payments, security, privacy, migrations, concurrency…)".into()
    } else {
        format!("touches {}", and_list(&risk_areas))
    }];

    // Integration: the systems and code the work meets.
    let phrases: Vec<String> = distinct(&INTEGRATION_AC, &lower)
        .into_iter()
        .map(|i| INTEGRATION[i].to_string())
        .collect();
    let mut int_signals = vec![if phrases.is_empty() {
        "no API, endpoint or existing system mentioned".into()
    } else {
        format!("mentions {}", phrases.join(", "))
    }];
    let mut parts = vec![(0.7, sat(phrases.len() as f64, 4.0))];
    if let Some(repo) = repo {
        if !repo.ecosystems.is_empty() {
            int_signals.push(format!(
                "{} in the repository ({})",
                plural(repo.manifests.len(), "manifest", "manifests"),
                repo.ecosystems.join(", ")
            ));
        }
        parts.push((
            0.3,
            sat(repo.ecosystems.len().saturating_sub(1) as f64, 1.5),
        ));
        if !repo.identifiers.is_empty() {
            int_signals.push(format!(
                "{} of {} identifiers of the spec found in the repository",
                repo.found.len(),
                repo.identifiers.len()
            ));
            parts.push((0.4, sat(repo.found.len() as f64, 8.0)));
        }
        if !repo.modules.is_empty() {
            let names: Vec<String> = repo
                .modules
                .iter()
                .take(5)
                .map(|m| {
                    format!(
                        "{} ({}, {} lines)",
                        m.name,
                        plural(m.files, "file", "files"),
                        m.lines
                    )
                })
                .collect();
            int_signals.push(format!(
                "{} involved: {}{}",
                plural(repo.modules.len(), "module", "modules"),
                names.join(", "),
                if repo.modules.len() > 5 { ", …" } else { "" }
            ));
            parts.push((0.5, sat(repo.modules.len() as f64, 3.0)));
        }
        if let Some(stopped) = &repo.stopped {
            int_signals.push(format!("repository walk {stopped}"));
        }
    }
    let integration = any_of(&parts);

    let scores = [scope, dependencies, ambiguity, risk, integration];
    let signals = [
        scope_signals,
        dep_signals,
        amb_signals,
        risk_signals,
        int_signals,
    ];
    let mut dimensions = IndexMap::new();
    let mut total = 0.0;
    for (i, (score, signals)) in scores.into_iter().zip(signals).enumerate() {
        let score = round2(score.clamp(0.0, 1.0));
        total += config.weights[i] * score;
        dimensions.insert(
            DIMENSIONS[i].to_string(),
            Dimension {
                score,
                weight: (config.weights[i] * 1000.0).round() / 1000.0,
                signals,
            },
        );
    }
    let score = round2(total.clamp(0.0, 1.0));
    Complexity {
        score,
        tier: config.tier(score),
        dimensions,
        risk_areas,
    }
}

/// The line of an issue's spec that lists its labels.
pub const LABELS_PREFIX: &str = "Labels: ";

/// The tier an issue's `complexity:<tier>` label asks for, read from the labels line of a
/// spec written by `forge::Issue::to_spec` (in its first lines): `simple`/`low`, `medium`,
/// `complex`/`high`, `critical`.
pub fn complexity_hint(spec_text: &str) -> Option<(String, crate::spec::complexity::Tier)> {
    let line = spec_text
        .lines()
        .take(8)
        .find_map(|l| l.strip_prefix(LABELS_PREFIX))?;
    line.split(", ").find_map(|label| {
        let label = label.trim_matches('`');
        let tier = match label
            .strip_prefix("complexity:")?
            .to_ascii_lowercase()
            .as_str()
        {
            "simple" | "low" | "trivial" => Tier::Simple,
            "medium" => Tier::Medium,
            "complex" | "high" => Tier::Complex,
            "critical" => Tier::Critical,
            _ => return None,
        };
        Some((label.to_string(), tier))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_combine_as_independent_chances() {
        assert_eq!(any_of(&[]), 0.0);
        assert!((any_of(&[(1.0, 0.5), (1.0, 0.5)]) - 0.75).abs() < 1e-9);
        assert!(any_of(&[(1.0, 1.0), (0.3, 1.0)]) <= 1.0);
    }
}
