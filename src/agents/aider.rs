//! Aider: `aider --message <prompt> --yes-always --no-stream --model M`. The output is text; each
//! model call ends with `Tokens: 2.2k sent, 1.1k cache hit, 45 received. Cost: $0.01 message,
//! $0.02 session.` Aider exits 0 even when every API call failed, so errors are read from the
//! output: LiteLLM's exception names and Aider's explanations of them.

use std::sync::OnceLock;

use regex::Regex;

use super::clients::Parse;
use super::{tail_lines, AgentOutcome};

/// Lines by which Aider (or LiteLLM under it) reports a failed model call.
const ERROR_MARKERS: &[&str] = &[
    "litellm.",
    "AuthenticationError",
    "RateLimitError",
    "ContextWindowExceededError",
    "InternalServerError",
    "ServiceUnavailableError",
    "APIConnectionError",
    "APIError",
    "BadRequestError",
    "NotFoundError",
    "The API provider",
    "has hit a token limit",
    "exceeds the",
    "Retrying in",
];

/// Lines of Aider's start-up banner and bookkeeping, which are not part of the answer.
const BANNER: &[&str] = &[
    "Aider v",
    "Weak model:",
    "Editor model:",
    "Git repo:",
    "Repo-map:",
    "Use /help",
    "Cur working dir:",
    "Added ",
    "Applied edit to ",
    "Commit ",
];

fn part_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>[kKmM]?)\s+(?P<what>sent|received|cache write|cache hit|cache read)")
            .expect("a valid regex")
    })
}

fn cost_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"Cost:\s*\$(?P<message>\d+(?:\.\d+)?)\s+message,\s*\$(?P<session>\d+(?:\.\d+)?)\s+session")
            .expect("a valid regex")
    })
}

fn model_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:Main model|Model):\s*(?P<model>\S+)").expect("a valid regex")
    })
}

/// `2.2k` → 2200, `15k` → 15000, `1.5M` → 1500000, `45` → 45.
fn count(number: &str, unit: &str) -> u64 {
    let n: f64 = number.parse().unwrap_or(0.0);
    let scale = match unit {
        "k" | "K" => 1_000.0,
        "m" | "M" => 1_000_000.0,
        _ => 1.0,
    };
    (n * scale).round() as u64
}

/// Read `aider --message … --no-stream`.
pub(super) fn parse(
    cx: &Parse<'_>,
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
) -> AgentOutcome {
    let mut usage = cx.usage();
    let mut calls = 0u32;
    let mut session_cost = None;
    let mut last_error: Option<(usize, String)> = None;
    let mut last_report = None;
    let mut text_lines = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        if let Some(m) = model_regex().captures(line) {
            usage.model = Some(m["model"].to_string());
            continue;
        }
        if line.trim_start().starts_with("Tokens:") {
            calls += 1;
            last_report = Some(i);
            for part in part_regex().captures_iter(line) {
                let n = count(&part["n"], &part["unit"]);
                match &part["what"] {
                    "sent" => usage.input_tokens += n,
                    "received" => usage.output_tokens += n,
                    "cache write" => usage.cache_write_tokens += n,
                    _ => usage.cache_read_tokens += n,
                }
            }
            if let Some(c) = cost_regex().captures(line) {
                session_cost = c["session"].parse::<f64>().ok();
            }
            continue;
        }
        if ERROR_MARKERS.iter().any(|m| line.contains(m)) {
            last_error = Some((i, line.trim().to_string()));
            continue;
        }
        if !BANNER.iter().any(|b| line.starts_with(b)) {
            text_lines.push(line);
        }
    }
    // "sent" counts the cache writes too; keep the four fields disjoint.
    usage.input_tokens = usage.input_tokens.saturating_sub(usage.cache_write_tokens);
    if calls > 0 {
        usage.turns = Some(calls);
    }
    if let Some(cost) = session_cost {
        usage.reported_cost(cost);
    }
    let text = Some(text_lines.join("\n").trim().to_string()).filter(|t| !t.is_empty());
    // An error after the last successful call means the message was never answered.
    let unanswered = match (&last_error, last_report) {
        (Some((e, _)), Some(r)) => *e > r,
        (Some(_), None) => true,
        _ => false,
    };
    if exit_code != Some(0) {
        let mut outcome = cx.exit_failure(exit_code, stdout, stderr);
        outcome.usage = usage;
        return outcome;
    }
    if unanswered {
        let (_, line) = last_error.expect("an error was seen");
        // The explanation and the exception usually sit on neighbouring lines.
        let evidence = format!("{}\n{}", tail_lines(stdout, 6), stderr);
        let class = cx.class(&[&line, &evidence]);
        return AgentOutcome::failed(class, line, usage);
    }
    if calls == 0 {
        // No model call finished and no error was printed: nothing says it worked.
        let class = cx.class(&[stderr]);
        let detail = tail_lines(stderr, 2);
        let reason = if detail.is_empty() {
            "aider printed no token report: no model call finished".to_string()
        } else {
            format!("aider printed no token report: {detail}")
        };
        return AgentOutcome::failed(class, reason, usage);
    }
    AgentOutcome::success(text, usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts() {
        assert_eq!(count("2.2", "k"), 2200);
        assert_eq!(count("15", "k"), 15000);
        assert_eq!(count("45", ""), 45);
        assert_eq!(count("1.5", "M"), 1_500_000);
    }
}
