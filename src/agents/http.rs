//! HTTP adapters for text roles (analyser, planner, validator): OpenAI-compatible Chat
//! Completions and Anthropic Messages, plain JSON or streamed as server-sent events. The
//! blocking client (ureq, rustls for https) runs on tokio's blocking pool; the whole call,
//! body included, is bounded by the timeout.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::{json, Value};

use super::{
    classify_status, classify_text, str_at, u64_at, AdapterConfig, AgentOutcome, FailureClass,
    Request, Usage,
};

/// The wire protocol of an HTTP agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpProtocol {
    /// `POST {base_url}/chat/completions` (base URL ends in `/v1`).
    OpenAiChat,
    /// `POST {base_url}/v1/messages`.
    AnthropicMessages,
}

impl HttpProtocol {
    /// The protocol of an `agents.yaml` adapter name (`openai-chat`, `anthropic-messages`).
    pub fn from_adapter(name: &str) -> Option<HttpProtocol> {
        match name {
            "openai-chat" => Some(HttpProtocol::OpenAiChat),
            "anthropic-messages" => Some(HttpProtocol::AnthropicMessages),
            _ => None,
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            HttpProtocol::OpenAiChat => "https://api.openai.com/v1",
            HttpProtocol::AnthropicMessages => "https://api.anthropic.com",
        }
    }

    pub fn default_key_env(self) -> &'static str {
        match self {
            HttpProtocol::OpenAiChat => "OPENAI_API_KEY",
            HttpProtocol::AnthropicMessages => "ANTHROPIC_API_KEY",
        }
    }

    fn url(self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        match self {
            HttpProtocol::OpenAiChat => format!("{base}/chat/completions"),
            HttpProtocol::AnthropicMessages if base.ends_with("/v1") => format!("{base}/messages"),
            HttpProtocol::AnthropicMessages => format!("{base}/v1/messages"),
        }
    }
}

/// Where and how to call an HTTP agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpEndpoint {
    pub base_url: String,
    /// The variable holding the API key; no credentials are sent when `None`.
    pub api_key_env: Option<String>,
    pub model: String,
    pub headers: Vec<(String, String)>,
    pub stream: bool,
    /// The most output tokens to ask for (Anthropic requires a value; default 4096).
    pub max_tokens: Option<u32>,
}

impl HttpEndpoint {
    /// The endpoint an `agents.yaml` entry describes, with the protocol's defaults for the base
    /// URL and the key variable.
    pub fn from_config(protocol: HttpProtocol, config: &AdapterConfig) -> HttpEndpoint {
        HttpEndpoint {
            base_url: config
                .base_url
                .clone()
                .unwrap_or_else(|| protocol.default_base_url().into()),
            api_key_env: Some(
                config
                    .api_key_env
                    .clone()
                    .unwrap_or_else(|| protocol.default_key_env().into()),
            ),
            model: config.model.clone().unwrap_or_default(),
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stream: config.stream,
            max_tokens: config.max_tokens,
        }
    }
}

/// Send the prompt as one user message and read the answer, with the API key read from the
/// variable the endpoint names. Never fails as a Rust error: every problem is an outcome with a
/// [`FailureClass`]. The API key never appears in the outcome.
pub async fn call_http(
    protocol: HttpProtocol,
    endpoint: &HttpEndpoint,
    request: &Request,
    timeout: Duration,
) -> AgentOutcome {
    let key = match read_key(endpoint) {
        Ok(key) => key,
        Err(reason) => {
            return AgentOutcome::failed(FailureClass::Auth, reason.to_string(), Usage::default())
        }
    };
    call_http_with_key(protocol, endpoint, request, timeout, key).await
}

/// [`call_http`] with the API key given (`None`: send no credentials).
pub async fn call_http_with_key(
    protocol: HttpProtocol,
    endpoint: &HttpEndpoint,
    request: &Request,
    timeout: Duration,
    api_key: Option<String>,
) -> AgentOutcome {
    let endpoint = endpoint.clone();
    let request = request.clone();
    let call = tokio::task::spawn_blocking(move || {
        call_http_blocking(protocol, &endpoint, &request, timeout, api_key.as_deref())
    });
    match call.await {
        Ok(outcome) => outcome,
        Err(e) => AgentOutcome::failed(
            FailureClass::Other,
            format!("the HTTP call did not finish: {e}; this is a bug in spectacular"),
            Usage::default(),
        ),
    }
}

/// The key from the variable the endpoint names; the reason when it is not set.
fn read_key(endpoint: &HttpEndpoint) -> Result<Option<String>, super::Error> {
    let Some(name) = &endpoint.api_key_env else {
        return Ok(None);
    };
    match std::env::var(name) {
        Ok(key) if !key.trim().is_empty() => Ok(Some(key)),
        _ => Err(super::Error::KeyNotSet { name: name.clone() }),
    }
}

/// One call on the calling thread (blocking), with the API key given.
pub fn call_http_blocking(
    protocol: HttpProtocol,
    endpoint: &HttpEndpoint,
    request: &Request,
    timeout: Duration,
    api_key: Option<&str>,
) -> AgentOutcome {
    let secrets: Vec<String> = api_key.iter().map(|k| k.to_string()).collect();
    call(protocol, endpoint, request, timeout, api_key).redacted(&secrets)
}

fn is_loopback(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

fn call(
    protocol: HttpProtocol,
    endpoint: &HttpEndpoint,
    request: &Request,
    timeout: Duration,
    key: Option<&str>,
) -> AgentOutcome {
    let model = request
        .model
        .clone()
        .unwrap_or_else(|| endpoint.model.clone());
    let url = protocol.url(&endpoint.base_url);
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout));
    if is_loopback(&url) {
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config.build().into();
    let body = match protocol {
        HttpProtocol::OpenAiChat => {
            let mut body = json!({
                "model": model,
                "messages": [{"role": "user", "content": request.prompt}],
            });
            if let Some(max) = endpoint.max_tokens {
                body["max_tokens"] = json!(max);
            }
            if endpoint.stream {
                body["stream"] = json!(true);
                body["stream_options"] = json!({"include_usage": true});
            }
            body
        }
        HttpProtocol::AnthropicMessages => {
            let mut body = json!({
                "model": model,
                "max_tokens": endpoint.max_tokens.unwrap_or(4096),
                "messages": [{"role": "user", "content": request.prompt}],
            });
            if endpoint.stream {
                body["stream"] = json!(true);
            }
            body
        }
    };
    let mut builder = agent
        .post(&url)
        .header("content-type", "application/json")
        .header(
            "accept",
            if endpoint.stream {
                "text/event-stream"
            } else {
                "application/json"
            },
        );
    match (protocol, key) {
        (HttpProtocol::OpenAiChat, Some(key)) => {
            builder = builder.header("authorization", &format!("Bearer {key}"));
        }
        (HttpProtocol::AnthropicMessages, Some(key)) => {
            builder = builder.header("x-api-key", key);
        }
        _ => {}
    }
    if protocol == HttpProtocol::AnthropicMessages {
        builder = builder.header("anthropic-version", "2023-06-01");
    }
    for (name, value) in &endpoint.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut response = match builder.send(body.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => return transport_failure(&e.to_string(), is_timeout(&e)),
    };
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let class = classify_status(status, &text).unwrap_or(FailureClass::Other);
        let message = error_message(&text);
        return AgentOutcome::failed(
            class,
            format!("HTTP {status} from {url}: {message}"),
            Usage::default(),
        );
    }
    let is_sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        let reader = BufReader::new(response.into_body().into_reader());
        return read_stream(protocol, reader);
    }
    let text = match response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
    {
        Ok(t) => t,
        Err(e) => return transport_failure(&e.to_string(), is_timeout(&e)),
    };
    let Ok(json) = serde_json::from_str::<Value>(&text) else {
        return AgentOutcome::failed(
            FailureClass::Other,
            format!("the response from {url} is not JSON"),
            Usage::default(),
        );
    };
    match protocol {
        HttpProtocol::OpenAiChat => openai_response(&json),
        HttpProtocol::AnthropicMessages => anthropic_response(&json),
    }
}

fn is_timeout(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}

fn transport_failure(message: &str, timeout: bool) -> AgentOutcome {
    let class = if timeout {
        FailureClass::Timeout
    } else {
        FailureClass::Unavailable
    };
    AgentOutcome::failed(
        class,
        format!("the API could not be reached: {message}"),
        Usage::default(),
    )
}

/// The human part of an error body: `error.message` (both protocols), else the body itself.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    parsed
        .as_ref()
        .and_then(|j| {
            str_at(j, "/error/message")
                .or_else(|| str_at(j, "/message"))
                .or_else(|| str_at(j, "/error"))
        })
        .unwrap_or_else(|| body.trim().chars().take(300).collect())
}

fn openai_usage(usage: &mut Usage, u: &Value) {
    let prompt = u64_at(u, "/prompt_tokens");
    let cached = u64_at(u, "/prompt_tokens_details/cached_tokens").min(prompt);
    usage.input_tokens = prompt - cached;
    usage.cache_read_tokens = cached;
    usage.output_tokens = u64_at(u, "/completion_tokens");
}

fn openai_response(json: &Value) -> AgentOutcome {
    if let Some(e) = json.get("error").filter(|e| !e.is_null()) {
        return error_object(e);
    }
    let mut usage = Usage {
        model: str_at(json, "/model"),
        session_id: str_at(json, "/id"),
        turns: Some(1),
        ..Usage::default()
    };
    if let Some(u) = json.get("usage") {
        openai_usage(&mut usage, u);
    }
    let text = str_at(json, "/choices/0/message/content");
    if json.pointer("/choices/0").is_none() {
        return AgentOutcome::failed(FailureClass::Other, "the response has no choices", usage);
    }
    AgentOutcome::success(text, usage)
}

fn anthropic_usage(usage: &mut Usage, u: &Value) {
    // Streaming reports input in `message_start` and cumulative output in `message_delta`;
    // keep the largest figure seen for each.
    usage.input_tokens = usage.input_tokens.max(u64_at(u, "/input_tokens"));
    usage.output_tokens = usage.output_tokens.max(u64_at(u, "/output_tokens"));
    usage.cache_read_tokens = usage
        .cache_read_tokens
        .max(u64_at(u, "/cache_read_input_tokens"));
    usage.cache_write_tokens = usage
        .cache_write_tokens
        .max(u64_at(u, "/cache_creation_input_tokens"));
}

fn anthropic_response(json: &Value) -> AgentOutcome {
    if json.get("type").and_then(Value::as_str) == Some("error") {
        return error_object(json.get("error").unwrap_or(json));
    }
    let mut usage = Usage {
        model: str_at(json, "/model"),
        session_id: str_at(json, "/id"),
        turns: Some(1),
        ..Usage::default()
    };
    if let Some(u) = json.get("usage") {
        anthropic_usage(&mut usage, u);
    }
    let Some(content) = json.get("content").and_then(Value::as_array) else {
        return AgentOutcome::failed(FailureClass::Other, "the response has no content", usage);
    };
    let text: String = content
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    AgentOutcome::success(Some(text), usage)
}

/// An error reported inside a 200 response or a stream: Anthropic's `{type, message}` or
/// OpenAI's `{message, type, code}`.
fn error_object(e: &Value) -> AgentOutcome {
    let kind = str_at(e, "/type").unwrap_or_default();
    let message = str_at(e, "/message").unwrap_or_else(|| e.to_string());
    let class = match kind.as_str() {
        "overloaded_error" => FailureClass::Overloaded,
        "rate_limit_error" => FailureClass::RateLimit,
        "authentication_error" | "permission_error" => FailureClass::Auth,
        "api_error" => FailureClass::ServerError,
        "timeout_error" => FailureClass::Timeout,
        _ => classify_text(&format!(
            "{kind} {message} {}",
            e.get("code").unwrap_or(&Value::Null)
        ))
        .unwrap_or(FailureClass::Other),
    };
    let reason = if kind.is_empty() {
        message
    } else {
        format!("{kind}: {message}")
    };
    AgentOutcome::failed(class, reason, Usage::default())
}

/// Read a server-sent-event stream to its end, accumulating text and usage.
fn read_stream(protocol: HttpProtocol, reader: impl BufRead) -> AgentOutcome {
    let mut usage = Usage {
        turns: Some(1),
        ..Usage::default()
    };
    let mut text = String::new();
    let mut finished = false;
    let mut data = String::new();
    let mut lines = reader.lines();
    loop {
        let line = match lines.next() {
            Some(Ok(line)) => Some(line),
            Some(Err(e)) => {
                let timeout = e.kind() == std::io::ErrorKind::TimedOut
                    || e.to_string().to_lowercase().contains("timeout");
                let mut outcome = transport_failure(&format!("the stream broke: {e}"), timeout);
                outcome.usage = usage;
                return outcome;
            }
            None => None,
        };
        let end_of_event = line.as_deref().is_none_or(str::is_empty);
        if let Some(line) = &line {
            if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
        if end_of_event && !data.is_empty() {
            let payload = std::mem::take(&mut data);
            if payload.trim() == "[DONE]" {
                finished = true;
            } else if let Ok(event) = serde_json::from_str::<Value>(&payload) {
                if let Some(failure) =
                    stream_event(protocol, &event, &mut text, &mut usage, &mut finished)
                {
                    let mut outcome = failure;
                    outcome.usage = usage;
                    return outcome;
                }
            }
        }
        if line.is_none() {
            break;
        }
    }
    if !finished {
        return AgentOutcome::failed(
            FailureClass::ServerError,
            "the stream ended before the message was complete",
            usage,
        );
    }
    AgentOutcome::success(Some(text), usage)
}

/// Apply one streamed event; a failure when the event reports an error.
fn stream_event(
    protocol: HttpProtocol,
    event: &Value,
    text: &mut String,
    usage: &mut Usage,
    finished: &mut bool,
) -> Option<AgentOutcome> {
    match protocol {
        HttpProtocol::OpenAiChat => {
            if let Some(e) = event.get("error").filter(|e| !e.is_null()) {
                return Some(error_object(e));
            }
            if usage.session_id.is_none() {
                usage.session_id = str_at(event, "/id");
            }
            if let Some(m) = str_at(event, "/model") {
                usage.model = Some(m);
            }
            if let Some(delta) = event
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                text.push_str(delta);
            }
            if event
                .pointer("/choices/0/finish_reason")
                .is_some_and(|r| !r.is_null())
            {
                *finished = true;
            }
            if let Some(u) = event.get("usage").filter(|u| !u.is_null()) {
                openai_usage(usage, u);
            }
        }
        HttpProtocol::AnthropicMessages => match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                usage.session_id = str_at(event, "/message/id");
                usage.model = str_at(event, "/message/model");
                if let Some(u) = event.pointer("/message/usage") {
                    anthropic_usage(usage, u);
                }
            }
            Some("content_block_delta") => {
                if let Some(delta) = event.pointer("/delta/text").and_then(Value::as_str) {
                    text.push_str(delta);
                }
            }
            Some("message_delta") => {
                if let Some(u) = event.get("usage") {
                    anthropic_usage(usage, u);
                }
            }
            Some("message_stop") => *finished = true,
            Some("error") => return Some(error_object(event.get("error").unwrap_or(event))),
            _ => {}
        },
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_with_crlf_comments_and_split_data_lines() {
        let stream = concat!(
            ": keep-alive\r\n\r\n",
            "event: message_start\r\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\r\n",
            "data: \"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\r\n\r\n",
            "event: content_block_delta\r\n",
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\r\n\r\n",
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\r\n\r\n",
            "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\r\n\r\n",
            "data: {\"type\":\"message_stop\"}\r\n",
        );
        let outcome = read_stream(HttpProtocol::AnthropicMessages, stream.as_bytes());
        assert!(outcome.ok, "{:?}", outcome.failure);
        assert_eq!(outcome.text.as_deref(), Some("Hello"));
        assert_eq!(outcome.usage.input_tokens, 5);
        assert_eq!(outcome.usage.output_tokens, 9);
        assert_eq!(outcome.usage.session_id.as_deref(), Some("msg_1"));
    }

    #[test]
    fn urls() {
        let a = HttpProtocol::AnthropicMessages;
        assert_eq!(
            a.url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            a.url("http://127.0.0.1:1/v1/"),
            "http://127.0.0.1:1/v1/messages"
        );
        let o = HttpProtocol::OpenAiChat;
        assert_eq!(o.url("http://h/v1"), "http://h/v1/chat/completions");
        assert!(is_loopback("http://127.0.0.1:8/v1"));
        assert!(is_loopback("http://localhost:8"));
        assert!(!is_loopback("https://api.openai.com/v1"));
    }
}
