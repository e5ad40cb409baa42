//! The HTTP client of the forge APIs: a blocking ureq agent with a timeout, the token in a
//! header (never anywhere else), JSON in and out with bounded answers, and retries: a server
//! error or a broken connection is tried again after a backoff, a rate limit (403 or 429 with
//! `Retry-After`, `x-ratelimit-reset` or GitLab's `RateLimit-Reset`) after the time it names,
//! when that is short enough to wait.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{clean_line, Error, Kind};

/// The most bytes of an answer read.
pub const MAX_ANSWER: u64 = 8 << 20;
/// The most attempts of one request.
pub const MAX_ATTEMPTS: u32 = 5;
/// The longest wait for a rate limit to reset; longer is an error saying when it resets.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The first backoff after a server error; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The timeout of one request, answer included.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A token, kept out of `Debug` and `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: String) -> Token {
        Token(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The token for `kind` at `host`: the first of the kind's variables that is set
/// (`GITHUB_TOKEN`, `GH_TOKEN`; `GITLAB_TOKEN`), else what the forge's own CLI (`gh`, `glab`)
/// is logged in with, when it is installed.
pub fn token(kind: Kind, host: &str) -> Result<Token, Error> {
    for var in kind.token_vars() {
        if let Ok(value) = std::env::var(var) {
            let value = value.trim().to_string();
            if !value.is_empty() {
                return Ok(Token(value));
            }
        }
    }
    let args: Vec<&str> = match kind {
        Kind::Github => vec!["auth", "token", "--hostname", host],
        Kind::Gitlab => vec!["config", "get", "token", "--host", host],
    };
    let program = match kind {
        Kind::Github => "gh",
        Kind::Gitlab => "glab",
    };
    let output = std::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(out) = output {
        let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !value.is_empty() && !value.contains(char::is_whitespace) {
            return Ok(Token(value));
        }
    }
    Err(Error::NoToken { kind })
}

/// How the token travels.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (GitHub).
    Bearer,
    /// `PRIVATE-TOKEN: <token>` (GitLab).
    PrivateToken,
}

/// A client of one forge API.
pub struct Client {
    agent: ureq::Agent,
    token: Token,
    auth: Auth,
    /// Headers every request carries (GitHub's `Accept` and API version).
    headers: Vec<(&'static str, &'static str)>,
    /// How to wait between attempts (tests record the waits instead).
    sleep: Box<dyn Fn(Duration) + Send + Sync>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("auth", &self.auth).finish()
    }
}

/// A method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
        }
    }
}

impl Client {
    /// A client of the API at `api` (a loopback API is never reached through a proxy).
    pub fn new(
        api: &str,
        token: Token,
        auth: Auth,
        headers: Vec<(&'static str, &'static str)>,
    ) -> Client {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("spectacular/", env!("CARGO_PKG_VERSION")));
        let host = host_of(api);
        if host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]") {
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config.build().into();
        Client {
            agent,
            token,
            auth,
            headers,
            sleep: Box::new(std::thread::sleep),
        }
    }

    /// Wait with `sleep` instead of the thread's sleep.
    pub fn with_sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Client {
        self.sleep = Box::new(sleep);
        self
    }

    /// Send one request, retrying what is worth retrying, and return the answer's JSON.
    pub fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Value, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= MAX_ATTEMPTS;
            match self.once(method, url, body) {
                Ok(Answer::Ok(text)) => {
                    return serde_json::from_str(&text).map_err(|e| Error::Shape {
                        method: method.name(),
                        url: url.to_string(),
                        what: format!("not JSON: {e}"),
                    })
                }
                Ok(Answer::Failed {
                    status,
                    headers,
                    text,
                }) => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    match retry_wait(status, &headers, now, attempt) {
                        Some(wait) if wait > MAX_WAIT => {
                            return Err(Error::RateLimited {
                                method: method.name(),
                                url: url.to_string(),
                                wait_secs: wait.as_secs(),
                                max_secs: MAX_WAIT.as_secs(),
                            })
                        }
                        Some(wait) if !last => {
                            tracing::info!(status, ?wait, "{} {url}: trying again", method.name());
                            (self.sleep)(wait);
                        }
                        _ => {
                            return Err(Error::Status {
                                method: method.name(),
                                url: url.to_string(),
                                status,
                                message: error_message(&text),
                            })
                        }
                    }
                }
                // A POST that may have reached the server is not sent twice (a second comment,
                // a second pull request); one that never connected is.
                Err((message, connected)) => {
                    if last || (connected && method == Method::Post) {
                        return Err(Error::Transport {
                            method: method.name(),
                            url: url.to_string(),
                            message,
                        });
                    }
                    tracing::info!("{} {url}: {message}; trying again", method.name());
                    (self.sleep)(backoff(attempt));
                }
            }
        }
    }

    /// One request: the answer, or what went wrong and whether the request may have reached
    /// the server.
    fn once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, (String, bool)> {
        let auth = match self.auth {
            Auth::Bearer => ("authorization", format!("Bearer {}", self.token.expose())),
            Auth::PrivateToken => ("private-token", self.token.expose().to_string()),
        };
        let response = match method {
            Method::Get => {
                let mut b = self.agent.get(url).header(auth.0, &auth.1);
                for (k, v) in &self.headers {
                    b = b.header(*k, *v);
                }
                b.call()
            }
            Method::Post | Method::Patch | Method::Put => {
                let mut b = match method {
                    Method::Post => self.agent.post(url),
                    Method::Patch => self.agent.patch(url),
                    _ => self.agent.put(url),
                }
                .header(auth.0, &auth.1)
                .header("content-type", "application/json");
                for (k, v) in &self.headers {
                    b = b.header(*k, *v);
                }
                let text = body.map(Value::to_string).unwrap_or_else(|| "{}".into());
                b.send(text.as_bytes())
            }
        };
        let mut response = response.map_err(|e| {
            let connected = !match &e {
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
                ureq::Error::Io(io) => matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
                ),
                _ => false,
            };
            (e.to_string(), connected)
        })?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_lowercase(), v.to_str().ok()?.to_string())))
            .collect();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| (format!("reading the answer: {e}"), true))?;
        if (200..300).contains(&status) {
            Ok(Answer::Ok(text))
        } else {
            Ok(Answer::Failed {
                status,
                headers,
                text,
            })
        }
    }
}

enum Answer {
    Ok(String),
    Failed {
        status: u16,
        headers: Vec<(String, String)>,
        text: String,
    },
}

/// How long to wait before trying a failed request again (`attempt` is the 1-based attempt
/// that failed), or `None` when it is not worth trying again. `now` is the Unix time in
/// seconds; `headers` have lowercase names.
pub fn retry_wait(
    status: u16,
    headers: &[(String, String)],
    now: u64,
    attempt: u32,
) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let reset = header("x-ratelimit-reset")
        .or_else(|| header("ratelimit-reset"))
        .and_then(|v| v.parse::<u64>().ok());
    let exhausted =
        header("x-ratelimit-remaining") == Some("0") || header("ratelimit-remaining") == Some("0");
    let limited = status == 429 || (status == 403 && (retry_after.is_some() || exhausted));
    if limited {
        if let Some(secs) = retry_after {
            return Some(Duration::from_secs(secs));
        }
        if let Some(at) = reset {
            return Some(Duration::from_secs(at.saturating_sub(now).max(1)));
        }
        return Some(backoff(attempt).max(Duration::from_secs(1)));
    }
    matches!(status, 500 | 502 | 503 | 504).then(|| backoff(attempt))
}

/// The backoff after failed attempt `attempt` (1-based): 250 ms, doubling.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
}

/// The message of an error answer: the API's `message` (GitHub) or `message`/`error`
/// (GitLab), else the start of the text; one clean line.
fn error_message(text: &str) -> String {
    let json: Option<Value> = serde_json::from_str(text).ok();
    let message = json.as_ref().and_then(|j| {
        let m = j.get("message").or_else(|| j.get("error"))?;
        Some(match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    });
    let message = message.unwrap_or_else(|| text.to_string());
    let line = clean_line(&message, 300);
    if line.is_empty() {
        "no message".to_string()
    } else {
        line
    }
}

/// The host of an API URL, for `gh`/`glab` (`api.github.com` is `github.com`).
pub fn host_of(api_url: &str) -> String {
    let rest = api_url.split_once("://").map_or(api_url, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.rsplit('@').next().unwrap_or(host);
    if host == "api.github.com" {
        "github.com".to_string()
    } else {
        host.to_string()
    }
}

/// `segment` escaped for a URL path (`group/project` → `group%2Fproject`).
pub fn escape(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rate_limits_wait_what_the_server_says() {
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(retry_wait(429, &h(&[("retry-after", "7")]), 0, 1), s(7));
        assert_eq!(retry_wait(403, &h(&[("retry-after", "3")]), 0, 1), s(3));
        // GitHub's primary limit: remaining 0 and the reset time.
        let github = h(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1010"),
        ]);
        assert_eq!(retry_wait(403, &github, 1000, 1), s(10));
        // GitLab's.
        assert_eq!(
            retry_wait(429, &h(&[("ratelimit-reset", "1005")]), 1000, 1),
            s(5)
        );
        // A reset in the past still waits a second.
        assert_eq!(
            retry_wait(429, &h(&[("ratelimit-reset", "5")]), 1000, 1),
            s(1)
        );
        // A 403 that is not a rate limit is not retried.
        assert_eq!(retry_wait(403, &h(&[]), 0, 1), None);
        assert_eq!(retry_wait(404, &h(&[]), 0, 1), None);
    }

    #[test]
    fn server_errors_back_off_doubling() {
        assert_eq!(retry_wait(500, &[], 0, 1), Some(Duration::from_millis(250)));
        assert_eq!(retry_wait(503, &[], 0, 3), Some(Duration::from_secs(1)));
        assert_eq!(retry_wait(501, &[], 0, 1), None);
    }

    #[test]
    fn error_messages_are_one_clean_line() {
        assert_eq!(
            error_message(r#"{"message":"Bad\n\u001b[31mcreds"}"#),
            "Bad [31mcreds"
        );
        assert_eq!(
            error_message(r#"{"error":"invalid_token"}"#),
            "invalid_token"
        );
        assert_eq!(error_message(""), "no message");
    }

    /// A loopback server answering each connection with the next of `answers`.
    fn serve(answers: Vec<&'static str>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        url
    }

    fn client(waits: &std::sync::Arc<std::sync::Mutex<Vec<Duration>>>) -> Client {
        let waits = waits.clone();
        Client::new(
            "http://127.0.0.1",
            Token::new("t".into()),
            Auth::Bearer,
            Vec::new(),
        )
        .with_sleep(move |d| waits.lock().unwrap().push(d))
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\n{\"a\": 1}";
    const FAIL: &str = "HTTP/1.1 500 X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";

    #[test]
    fn server_errors_are_tried_again_after_a_backoff() {
        let waits = Default::default();
        let url = serve(vec![FAIL, FAIL, OK]);
        let answer = client(&waits).send(Method::Get, &url, None).unwrap();
        assert_eq!(answer, serde_json::json!({"a": 1}));
        let waits = waits.lock().unwrap().clone();
        assert_eq!(
            waits,
            [Duration::from_millis(250), Duration::from_millis(500)]
        );
    }

    #[test]
    fn a_long_rate_limit_is_an_error_saying_when_it_resets() {
        let waits = Default::default();
        let limited = "HTTP/1.1 429 X\r\nretry-after: 3600\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        let url = serve(vec![limited]);
        let e = client(&waits).send(Method::Post, &url, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("rate limited, and the limit resets in 3600 s"),
            "{e}"
        );
        assert!(waits.lock().unwrap().is_empty(), "nothing was waited for");
    }

    #[test]
    fn errors_that_last_stop_after_the_last_attempt() {
        let waits = Default::default();
        let url = serve(vec![FAIL; MAX_ATTEMPTS as usize]);
        let e = client(&waits).send(Method::Get, &url, None).unwrap_err();
        assert!(matches!(e, Error::Status { status: 500, .. }), "{e}");
        assert_eq!(waits.lock().unwrap().len(), MAX_ATTEMPTS as usize - 1);
    }

    #[test]
    fn a_post_that_never_connected_is_tried_again() {
        let waits = Default::default();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/x");
        let e = client(&waits).send(Method::Post, &url, None).unwrap_err();
        assert!(matches!(e, Error::Transport { .. }), "{e:?}");
        assert_eq!(
            waits.lock().unwrap().len(),
            MAX_ATTEMPTS as usize - 1,
            "{e:?}"
        );
    }

    #[test]
    fn hosts_and_escapes() {
        assert_eq!(host_of("https://api.github.com"), "github.com");
        assert_eq!(host_of("https://ghe.example.com/api/v3"), "ghe.example.com");
        assert_eq!(host_of("http://127.0.0.1:9/api/v4"), "127.0.0.1:9");
        assert_eq!(escape("a/b.c d"), "a%2Fb.c%20d");
        assert_eq!(format!("{:?}", Token::new("secret".into())), "Token(…)");
    }
}
