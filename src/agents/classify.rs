//! Failure classification from HTTP status codes and from the words clients print.

use std::sync::OnceLock;

use regex::Regex;

use super::FailureClass;

/// The class of an HTTP error status; `None` for a success status.
pub fn classify_status(status: u16, body: &str) -> Option<FailureClass> {
    let class = match status {
        200..=399 => return None,
        401 | 403 => FailureClass::Auth,
        402 => FailureClass::Auth,
        408 => FailureClass::Timeout,
        413 => FailureClass::ContextOverflow,
        429 => FailureClass::RateLimit,
        529 => FailureClass::Overloaded,
        503 => FailureClass::Overloaded,
        500..=599 => {
            if mentions_overload(&body.to_lowercase()) {
                FailureClass::Overloaded
            } else {
                FailureClass::ServerError
            }
        }
        400 | 422 => {
            if mentions_context_overflow(&body.to_lowercase()) {
                FailureClass::ContextOverflow
            } else {
                FailureClass::Other
            }
        }
        _ => FailureClass::Other,
    };
    Some(class)
}

fn mentions_context_overflow(lower: &str) -> bool {
    const WORDS: &[&str] = &[
        "context length",
        "context_length",
        "context window",
        "contextwindowexceeded",
        "maximum context",
        "prompt is too long",
        "input is too long",
        "too many tokens",
        "token limit",
        "exceeds the limit of",
        "input token count",
        "request_too_large",
    ];
    WORDS.iter().any(|w| lower.contains(w))
}

fn mentions_overload(lower: &str) -> bool {
    lower.contains("overloaded") || lower.contains("service unavailable")
}

fn status_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?i)(?:api error|status(?:[ _]?code)?|http(?:/\d(?:\.\d)?)?|error|code|statuscode)["']?\s*[:=]?\s*["']?([1-5]\d\d)\b"#,
        )
        .expect("a valid regex")
    })
}

/// The class of a failure described in a client's output, when its words say which; `None`
/// when nothing in the text is recognised.
pub fn classify_text(text: &str) -> Option<FailureClass> {
    let lower = text.to_lowercase();
    if mentions_context_overflow(&lower) {
        return Some(FailureClass::ContextOverflow);
    }
    const RATE: &[&str] = &[
        "rate limit",
        "rate_limit",
        "ratelimit",
        "rate-limit",
        "too many requests",
        "resource_exhausted",
        "resource exhausted",
        "insufficient_quota",
        "quota exceeded",
    ];
    if RATE.iter().any(|w| lower.contains(w)) {
        return Some(FailureClass::RateLimit);
    }
    const AUTH: &[&str] = &[
        "authentication",
        "authenticate",
        "unauthorized",
        "unauthenticated",
        "invalid api key",
        "invalid x-api-key",
        "incorrect api key",
        "api key not valid",
        "api_key_invalid",
        "please run /login",
        "not logged in",
        "permission_error",
        "permission denied by the api",
        "credit balance is too low",
        "billing",
    ];
    if AUTH.iter().any(|w| lower.contains(w)) {
        return Some(FailureClass::Auth);
    }
    if mentions_overload(&lower) {
        return Some(FailureClass::Overloaded);
    }
    // A status code named as such ("API Error: 429", "status code 503", "\"code\": 401").
    if let Some(class) = status_regex()
        .captures_iter(text)
        .filter_map(|c| c.get(1)?.as_str().parse::<u16>().ok())
        .filter(|s| *s >= 400)
        .filter_map(|s| classify_status(s, text))
        .last()
    {
        return Some(class);
    }
    // The clients' words for an API they could not reach at all (Claude Code: "Unable to
    // connect to API (ConnectionRefused)", Codex: "Connection failed: error sending request",
    // OpenCode: "Cannot connect to API").
    const UNREACHABLE: &[&str] = &[
        "unable to connect",
        "cannot connect",
        "could not connect",
        "connection failed",
        "error sending request",
        "connectionrefused",
        "connection refused",
        "econnrefused",
        "failed to connect",
    ];
    if UNREACHABLE.iter().any(|w| lower.contains(w)) {
        return Some(FailureClass::Unavailable);
    }
    const SERVER: &[&str] = &[
        "internal server error",
        "internalservererror",
        "internal_error",
        "bad gateway",
        "gateway timeout",
        "server error",
        "apiconnectionerror",
        "connection reset",
        "connection error",
        "econnreset",
        "fetch failed",
    ];
    if SERVER.iter().any(|w| lower.contains(w)) {
        return Some(FailureClass::ServerError);
    }
    const TIMEOUT: &[&str] = &["timed out", "timeout", "deadline exceeded"];
    if TIMEOUT.iter().any(|w| lower.contains(w)) {
        return Some(FailureClass::Timeout);
    }
    const UNAVAILABLE: &[&str] = &[
        "command not found",
        "not found on path",
        "no such file or directory",
        "could not start",
    ];
    if UNAVAILABLE.iter().any(|w| lower.contains(w)) {
        return Some(FailureClass::Unavailable);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify_status(200, ""), None);
        assert_eq!(classify_status(401, ""), Some(FailureClass::Auth));
        assert_eq!(classify_status(429, ""), Some(FailureClass::RateLimit));
        assert_eq!(classify_status(529, ""), Some(FailureClass::Overloaded));
        assert_eq!(
            classify_status(500, "boom"),
            Some(FailureClass::ServerError)
        );
        assert_eq!(
            classify_status(400, r#"{"error":{"code":"context_length_exceeded"}}"#),
            Some(FailureClass::ContextOverflow)
        );
        assert_eq!(classify_status(400, "bad field"), Some(FailureClass::Other));
    }

    #[test]
    fn words() {
        let cases = [
            (
                "API Error: 429 {\"type\":\"error\"}",
                FailureClass::RateLimit,
            ),
            ("API Error: 529 Overloaded", FailureClass::Overloaded),
            ("Invalid API key · Please run /login", FailureClass::Auth),
            ("Prompt is too long", FailureClass::ContextOverflow),
            (
                "unexpected status 500 Internal Server Error",
                FailureClass::ServerError,
            ),
            ("sh: claude: command not found", FailureClass::Unavailable),
            ("request timed out", FailureClass::Timeout),
            ("stream error: status code: 503", FailureClass::Overloaded),
            (
                "API Error: Unable to connect to API (ConnectionRefused)",
                FailureClass::Unavailable,
            ),
            (
                "Connection failed: error sending request for url (http://127.0.0.1:9/v1/responses)",
                FailureClass::Unavailable,
            ),
            ("Cannot connect to API: fetch failed", FailureClass::Unavailable),
        ];
        for (text, class) in cases {
            assert_eq!(classify_text(text), Some(class), "{text}");
        }
        assert_eq!(classify_text("wrote 500 lines, all fine"), None);
        assert_eq!(classify_text("the agent gave up"), None);
    }
}
