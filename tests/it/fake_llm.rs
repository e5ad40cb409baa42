//! A fake LLM server on loopback (127.0.0.1, an ephemeral port) that speaks the Anthropic
//! Messages and OpenAI Chat Completions protocols, plain JSON or server-sent events, and answers
//! with scripted errors when told to. Every request is recorded for the test to inspect.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

/// What the server does with the next request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with this text, in the protocol and mode (plain or streamed) the request asked for.
    Text(String),
    /// An HTTP error with the protocol's error body (`kind` is Anthropic's error type).
    Error {
        status: u16,
        kind: String,
        message: String,
    },
    /// A stream that starts well and then reports an error event (Anthropic's `overloaded_error`
    /// or an OpenAI `error` chunk).
    StreamError { kind: String, message: String },
    /// A stream cut off before its final event.
    Truncated,
    /// Read the request and never answer (until the server is dropped).
    Hang,
    /// A 401 whose message quotes the API key it received, as some servers do.
    EchoKey,
}

impl Reply {
    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::Error {
            status,
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    hung: Vec<TcpStream>,
}

pub struct FakeLlm {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// The usage every successful answer reports.
pub const INPUT_TOKENS: u64 = 42;
pub const OUTPUT_TOKENS: u64 = 7;
pub const CACHED_TOKENS: u64 = 10;

impl FakeLlm {
    /// Start a server; it answers `Text("Hello from the fake LLM")` when nothing is scripted.
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let state = Arc::clone(&shared);
                thread::spawn(move || serve(stream, state));
            }
        });
        FakeLlm { port, state }
    }

    /// The base URL for the OpenAI protocol (`…/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The base URL for the Anthropic protocol (no `/v1`, like `ANTHROPIC_BASE_URL`).
    pub fn anthropic_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Script the reply to the next unanswered request.
    pub fn push(&self, reply: Reply) {
        self.state.lock().unwrap().script.push_back(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // Unblock the accept loop so that its thread ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Ok(mut state) = self.state.lock() {
            state.hung.clear();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let anthropic = request.path.ends_with("/messages");
    let streamed = request.body.get("stream").and_then(Value::as_bool) == Some(true);
    let model = request
        .body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_string();
    let key = request
        .headers
        .iter()
        .find(|(k, _)| {
            k.eq_ignore_ascii_case("x-api-key") || k.eq_ignore_ascii_case("authorization")
        })
        .map(|(_, v)| v.trim_start_matches("Bearer ").to_string())
        .unwrap_or_default();
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(request);
        state
            .script
            .pop_front()
            .unwrap_or_else(|| Reply::Text("Hello from the fake LLM".into()))
    };
    let response = match reply {
        Reply::Hang => {
            if let Ok(clone) = stream.try_clone() {
                state.lock().unwrap().hung.push(clone);
            }
            return;
        }
        Reply::Text(text) if streamed => sse(&stream_events(anthropic, &model, &text, None, true)),
        Reply::Text(text) => plain(200, &answer(anthropic, &model, &text)),
        Reply::Error {
            status,
            kind,
            message,
        } => plain(status, &error_body(anthropic, &kind, &message)),
        Reply::EchoKey => plain(
            401,
            &error_body(
                anthropic,
                "authentication_error",
                &format!("invalid api key: {key}"),
            ),
        ),
        Reply::StreamError { kind, message } => sse(&stream_events(
            anthropic,
            &model,
            "partial answer",
            Some((&kind, &message)),
            false,
        )),
        Reply::Truncated => sse(&stream_events(anthropic, &model, "cut off", None, false)),
    };
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn plain(status: u16, body: &Value) -> String {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
}

fn sse(events: &[(Option<&str>, Value)]) -> String {
    let mut out = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
    );
    for (name, data) in events {
        if let Some(name) = name {
            out.push_str(&format!("event: {name}\n"));
        }
        match data {
            Value::String(s) => out.push_str(&format!("data: {s}\n\n")),
            other => out.push_str(&format!("data: {other}\n\n")),
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Error",
    }
}

fn answer(anthropic: bool, model: &str, text: &str) -> Value {
    if anthropic {
        json!({
            "id": "msg_fake_01",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": INPUT_TOKENS,
                "output_tokens": OUTPUT_TOKENS,
                "cache_read_input_tokens": CACHED_TOKENS,
                "cache_creation_input_tokens": 0
            }
        })
    } else {
        json!({
            "id": "chatcmpl-fake-01",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": INPUT_TOKENS + CACHED_TOKENS,
                "completion_tokens": OUTPUT_TOKENS,
                "total_tokens": INPUT_TOKENS + CACHED_TOKENS + OUTPUT_TOKENS,
                "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}
            }
        })
    }
}

fn error_body(anthropic: bool, kind: &str, message: &str) -> Value {
    if anthropic {
        json!({"type": "error", "error": {"type": kind, "message": message}})
    } else {
        let code = if message.contains("context length") {
            json!("context_length_exceeded")
        } else {
            Value::Null
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
    }
}

/// The events of a streamed answer: the text in two chunks, then (when `complete`) the final
/// usage and end markers, or an error event in the middle.
fn stream_events(
    anthropic: bool,
    model: &str,
    text: &str,
    error: Option<(&str, &str)>,
    complete: bool,
) -> Vec<(Option<&'static str>, Value)> {
    let split = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let (first, second) = text.split_at(split);
    let mut events = Vec::new();
    if anthropic {
        events.push((
            Some("message_start"),
            json!({
                "type": "message_start",
                "message": {"id": "msg_fake_stream", "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null,
                    "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1,
                        "cache_read_input_tokens": CACHED_TOKENS, "cache_creation_input_tokens": 0}}
            }),
        ));
        events.push((Some("content_block_start"), json!({
            "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}
        })));
        events.push((Some("ping"), json!({"type": "ping"})));
        for chunk in [first, second] {
            events.push((
                Some("content_block_delta"),
                json!({
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": chunk}
                }),
            ));
            if let Some((kind, message)) = error {
                events.push((
                    Some("error"),
                    json!({
                        "type": "error", "error": {"type": kind, "message": message}
                    }),
                ));
                return events;
            }
        }
        if complete {
            events.push((
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": 0}),
            ));
            events.push((
                Some("message_delta"),
                json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                    "usage": {"output_tokens": OUTPUT_TOKENS}
                }),
            ));
            events.push((Some("message_stop"), json!({"type": "message_stop"})));
        }
    } else {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-fake-stream", "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
        };
        events.push((
            None,
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        ));
        for part in [first, second] {
            events.push((None, chunk(json!({"content": part}), Value::Null)));
            if let Some((kind, message)) = error {
                events.push((None, json!({"error": {"message": message, "type": kind}})));
                return events;
            }
        }
        if complete {
            events.push((None, chunk(json!({}), json!("stop"))));
            events.push((
                None,
                json!({
                    "id": "chatcmpl-fake-stream", "object": "chat.completion.chunk",
                    "created": 1_700_000_000, "model": model, "choices": [],
                    "usage": {"prompt_tokens": INPUT_TOKENS + CACHED_TOKENS,
                        "completion_tokens": OUTPUT_TOKENS,
                        "total_tokens": INPUT_TOKENS + CACHED_TOKENS + OUTPUT_TOKENS,
                        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}}
                }),
            ));
            events.push((None, Value::String("[DONE]".into())));
        }
    }
    events
}
