//! A fake LLM server on loopback (127.0.0.1, an ephemeral port) that speaks the Anthropic
//! Messages, OpenAI Chat Completions, OpenAI Responses and Gemini generateContent protocols,
//! plain JSON or server-sent events, and answers with scripted errors when told to. Every
//! request is recorded for the test to inspect.
//!
//! Replies come from a script (one per request, in order) or, for the real clients, from a
//! [`Scenario`] that looks at each conversation: "write this file" makes the client call its
//! own write-file tool and, once the tool's result comes back, answers with a final text.

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

/// What the server does with every model request once the script is empty.
#[derive(Clone, Debug)]
pub enum Scenario {
    /// Answer with a plain text (the default: "Hello from the fake LLM").
    Text(String),
    /// Ask the client to write `path` (relative to its working directory) with `content`
    /// through its own write-file tool; once the tool's result is in the conversation, answer
    /// `answer`. Aider, which has no tools, gets the file in its "whole file" edit format.
    WriteFile {
        path: String,
        content: String,
        answer: String,
    },
    /// Call the MCP tool whose name ends with `tool` (each client prefixes it its own way:
    /// `mcp__<server>__<tool>`, `<server>_<tool>`…) with `args`; once its result is in the
    /// conversation, write `path` as [`Scenario::WriteFile`] does, then answer `answer`.
    McpCall {
        tool: String,
        args: Value,
        path: String,
        content: String,
        answer: String,
    },
    /// Every request gets this HTTP status with the protocol's error body.
    Status(u16),
    /// Read every request and never answer.
    Hang,
    /// A scripted session per phase of a mission, through the client's own tools
    /// ([`crate::fake_pipeline`]).
    Pipeline(std::sync::Arc<crate::fake_pipeline::Script>),
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    scenario: Option<Scenario>,
    /// Model requests answered with a success (each with the fixed usage).
    answered: u64,
    /// Of those, the requests of the conversation a scenario drives (with tools, or Aider's
    /// edit), not the clients' side requests (titles, commit messages).
    conversation: u64,
    requests: Vec<Recorded>,
    /// The tools a scenario's answers called, in order.
    called: Vec<String>,
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

    /// Start a server that follows `scenario` for every request.
    pub fn with_scenario(scenario: Scenario) -> FakeLlm {
        let server = FakeLlm::start();
        server.state.lock().unwrap().scenario = Some(scenario);
        server
    }

    /// The root URL (no path): Gemini's `GOOGLE_GEMINI_BASE_URL`.
    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many model requests were answered with a success, each reporting the fixed usage.
    pub fn answered(&self) -> u64 {
        self.state.lock().unwrap().answered
    }

    /// The tools the scenario's answers called, in order (`Write`, `apply_patch`…).
    pub fn tools_called(&self) -> Vec<String> {
        self.state.lock().unwrap().called.clone()
    }

    /// How many requests of the conversation a scenario drives were answered (see `State`).
    pub fn conversation_requests(&self) -> u64 {
        self.state.lock().unwrap().conversation
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
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body = vec![0u8; length];
        reader.read_exact(&mut body).ok()?;
    }
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
    let protocol = Protocol::of(&request);
    let scripted = !state.lock().unwrap().script.is_empty();
    if !scripted && protocol != Protocol::Anthropic && protocol != Protocol::Chat {
        return serve_scenario(stream, state, request, protocol);
    }
    if !scripted && state.lock().unwrap().scenario.is_some() {
        return serve_scenario(stream, state, request, protocol);
    }
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
        let reply = state
            .script
            .pop_front()
            .unwrap_or_else(|| Reply::Text("Hello from the fake LLM".into()));
        if matches!(reply, Reply::Text(_)) {
            state.answered += 1;
        }
        reply
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

/// The protocol a request speaks, from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Anthropic,
    Chat,
    Responses,
    Gemini {
        streamed: bool,
    },
    /// Token counting, model lists and anything else that is not a model call.
    Other,
}

impl Protocol {
    fn of(request: &Recorded) -> Protocol {
        let path = request.path.split('?').next().unwrap_or("");
        if request.method != "POST" {
            Protocol::Other
        } else if path.ends_with("/messages") {
            Protocol::Anthropic
        } else if path.ends_with("/chat/completions") {
            Protocol::Chat
        } else if path.ends_with("/responses") {
            Protocol::Responses
        } else if path.ends_with(":streamGenerateContent") {
            Protocol::Gemini { streamed: true }
        } else if path.ends_with(":generateContent") {
            Protocol::Gemini { streamed: false }
        } else {
            Protocol::Other
        }
    }
}

/// What a scenario answers to one model request.
pub(crate) enum Action {
    Text(String),
    /// Call a tool with JSON arguments.
    Tool {
        name: String,
        args: Value,
    },
    /// Call a free-form tool (the Responses API's `custom` tools) with a text input.
    Custom {
        name: String,
        input: String,
    },
}

/// Serve a request from the scenario (or the default text when there is none).
fn serve_scenario(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    request: Recorded,
    protocol: Protocol,
) {
    let scenario = state
        .lock()
        .unwrap()
        .scenario
        .clone()
        .unwrap_or_else(|| Scenario::Text("Hello from the fake LLM".into()));
    let body = request.body.clone();
    state.lock().unwrap().requests.push(request.clone());
    if request.header("upgrade").is_some() {
        // No WebSockets here: clients that try them first fall back to HTTPS.
        let _ = stream.write_all(plain(404, &json!({"error": "no websockets"})).as_bytes());
        return;
    }
    if protocol == Protocol::Other {
        let reply = if request.path.contains("count_tokens") {
            json!({"input_tokens": INPUT_TOKENS})
        } else if request.path.contains(":countTokens") {
            json!({"totalTokens": INPUT_TOKENS})
        } else {
            json!({"object": "list", "data": [], "models": []})
        };
        let _ = stream.write_all(plain(200, &reply).as_bytes());
        return;
    }
    let action = match scenario {
        Scenario::Hang => {
            if let Ok(clone) = stream.try_clone() {
                state.lock().unwrap().hung.push(clone);
            }
            return;
        }
        Scenario::Status(status) => {
            let response = plain(status, &scenario_error(protocol, status));
            let _ = stream.write_all(response.as_bytes());
            return;
        }
        Scenario::Text(text) => Action::Text(text),
        Scenario::WriteFile {
            path,
            content,
            answer,
        } => write_file_action(protocol, &body, &path, &content, &answer),
        Scenario::McpCall {
            tool,
            args,
            path,
            content,
            answer,
        } => mcp_call_action(protocol, &body, &tool, &args, &path, &content, &answer),
        Scenario::Pipeline(script) => crate::fake_pipeline::action(protocol, &body, &script),
    };
    {
        let mut state = state.lock().unwrap();
        state.answered += 1;
        if let Action::Tool { name, .. } | Action::Custom { name, .. } = &action {
            state.called.push(name.clone());
        }
        let tools = !tool_names(protocol, &body).is_empty();
        if tools || body.to_string().contains("SEARCH/REPLACE") {
            state.conversation += 1;
        }
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .or_else(|| {
            request
                .path
                .split("/models/")
                .nth(1)
                .and_then(|m| m.split(':').next())
        })
        .unwrap_or("fake-model")
        .to_string();
    let streamed = body.get("stream").and_then(Value::as_bool) == Some(true);
    let response = match protocol {
        Protocol::Anthropic if streamed => sse(&anthropic_stream(&model, &action)),
        Protocol::Anthropic => plain(200, &anthropic_answer(&model, &action)),
        Protocol::Chat if streamed => sse(&chat_stream(&model, &action)),
        Protocol::Chat => plain(200, &chat_answer(&model, &action)),
        Protocol::Responses => sse(&responses_stream(&model, &action)),
        Protocol::Gemini { streamed: true } => sse(&[(None, gemini_answer(&model, &action))]),
        Protocol::Gemini { streamed: false } => plain(200, &gemini_answer(&model, &action)),
        Protocol::Other => unreachable!("answered above"),
    };
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

/// The names of the tools a recorded request offered the model.
pub fn offered_tools(request: &Recorded) -> Vec<String> {
    tool_names(Protocol::of(request), &request.body)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The names of the tools a request offers.
pub(crate) fn tool_names(protocol: Protocol, body: &Value) -> Vec<(String, String)> {
    let tools = body.get("tools").and_then(Value::as_array);
    let mut out = Vec::new();
    for tool in tools.into_iter().flatten() {
        match protocol {
            Protocol::Gemini { .. } => {
                for f in tool
                    .get("functionDeclarations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = f.get("name").and_then(Value::as_str) {
                        out.push((name.to_string(), "function".to_string()));
                    }
                }
            }
            // The Responses API's namespaces (Codex's MCP servers): `<namespace>/<tool>`.
            _ if tool.get("type").and_then(Value::as_str) == Some("namespace") => {
                let namespace = tool.get("name").and_then(Value::as_str).unwrap_or("");
                for inner in tool
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = inner.get("name").and_then(Value::as_str) {
                        out.push((format!("{namespace}/{name}"), "function".to_string()));
                    }
                }
            }
            _ => {
                let name = tool
                    .get("name")
                    .or_else(|| tool.pointer("/function/name"))
                    .and_then(Value::as_str);
                let kind = tool
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("function");
                if let Some(name) = name {
                    out.push((name.to_string(), kind.to_string()));
                }
            }
        }
    }
    out
}

/// The first parameter of the function tool `name` (Chat Completions or Responses shape).
pub(crate) fn tool_param(body: &Value, name: &str) -> Option<String> {
    let tool = body.get("tools")?.as_array()?.iter().find(|t| {
        t.get("name")
            .or_else(|| t.pointer("/function/name"))
            .and_then(Value::as_str)
            == Some(name)
    })?;
    let params = tool
        .get("parameters")
        .or_else(|| tool.pointer("/function/parameters"))?;
    let required = params.get("required").and_then(Value::as_array);
    required
        .and_then(|r| r.first())
        .and_then(Value::as_str)
        .or_else(|| {
            params
                .get("properties")?
                .as_object()?
                .keys()
                .next()
                .map(String::as_str)
        })
        .map(str::to_string)
}

/// Has a tool's result come back in this conversation?
fn has_tool_result(body: &Value) -> bool {
    tool_results(body) > 0
}

/// How many tools' results have come back in this conversation.
fn tool_results(body: &Value) -> usize {
    fn walk(v: &Value) -> usize {
        match v {
            Value::Object(map) => {
                let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
                if kind == "tool_result"
                    || kind.ends_with("call_output")
                    || map.get("role").and_then(Value::as_str) == Some("tool")
                    || map.contains_key("functionResponse")
                {
                    1
                } else {
                    map.values().map(walk).sum()
                }
            }
            Value::Array(items) => items.iter().map(walk).sum(),
            _ => 0,
        }
    }
    ["messages", "input", "contents"]
        .iter()
        .map(|k| body.get(*k).map_or(0, walk))
        .sum()
}

/// [`Scenario::McpCall`]: the MCP tool first, then the file, then the answer. A client that
/// defers its MCP tools (Claude Code names them in the prompt, behind its `ToolSearch`) gets
/// the tool's schema fetched first, as a model would. A request with neither (a client's side
/// request) gets a plain text.
fn mcp_call_action(
    protocol: Protocol,
    body: &Value,
    tool: &str,
    args: &Value,
    path: &str,
    content: &str,
    answer: &str,
) -> Action {
    let tools = tool_names(protocol, body);
    let callable = tools.iter().find(|(n, _)| n.ends_with(tool));
    let history = ["messages", "input", "contents"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(Value::to_string)
        .collect::<String>();
    let searched = usize::from(history.contains(r#""name":"ToolSearch""#));
    match (tool_results(body).saturating_sub(searched), callable) {
        (0, Some((name, _))) => Action::Tool {
            name: name.clone(),
            args: args.clone(),
        },
        (0, None) if searched == 0 && tools.iter().any(|(n, _)| n == "ToolSearch") => {
            match deferred_name(&history, tool) {
                Some(name) => Action::Tool {
                    name: "ToolSearch".into(),
                    args: json!({ "query": format!("select:{name}") }),
                },
                None => Action::Text(answer.to_string()),
            }
        }
        (1, _) if !tools.is_empty() => write_tool_action(protocol, body, path, content, answer),
        _ => Action::Text(answer.to_string()),
    }
}

/// The full name of a tool ending with `tool` that a conversation names (`mcp__s__tool`).
fn deferred_name(history: &str, tool: &str) -> Option<String> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    // JSON escapes (`\\n`) are not part of a name.
    let history = history.replace("\\n", " ").replace("\\t", " ");
    history.match_indices(tool).find_map(|(at, _)| {
        let end = at + tool.len();
        if history[end..].starts_with(name_char) {
            return None;
        }
        let start = history[..at]
            .rfind(|c: char| !name_char(c))
            .map_or(0, |i| i + 1);
        let name = &history[start..end];
        (name.len() > tool.len()).then(|| name.to_string())
    })
}

/// The working directory a client told the model about, to make a path absolute for the tools
/// that want one.
pub(crate) fn workdir(body: &Value) -> Option<String> {
    let text = body.to_string();
    for marker in [
        "Working directory: ",
        "<cwd>",
        "working directory: ",
        "<working_directory>",
        "Current working directory: ",
        "I'm currently working in the directory: ",
    ] {
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let end = rest
                .find(|c: char| c == '<' || c == '\\' || c == '"' || c.is_whitespace())
                .unwrap_or(rest.len());
            let dir = rest[..end].trim().to_string();
            if dir.starts_with('/') {
                return Some(dir);
            }
        }
    }
    None
}

fn write_file_action(
    protocol: Protocol,
    body: &Value,
    path: &str,
    content: &str,
    answer: &str,
) -> Action {
    if has_tool_result(body) {
        return Action::Text(answer.to_string());
    }
    write_tool_action(protocol, body, path, content, answer)
}

/// Write `path` with `content` through the client's own write-file tool (or shell).
fn write_tool_action(
    protocol: Protocol,
    body: &Value,
    path: &str,
    content: &str,
    answer: &str,
) -> Action {
    let tools = tool_names(protocol, body);
    let absolute = match workdir(body) {
        Some(dir) if !path.starts_with('/') => format!("{dir}/{path}"),
        _ => path.to_string(),
    };
    let has = |name: &str| tools.iter().find(|(n, _)| n == name);
    if let Some((name, _)) = has("Write") {
        return Action::Tool {
            name: name.clone(),
            args: json!({"file_path": absolute, "content": content}),
        };
    }
    if let Some((name, _)) = has("write_file") {
        return Action::Tool {
            name: name.clone(),
            args: json!({"file_path": absolute, "content": content}),
        };
    }
    if let Some((name, _)) = has("write") {
        return Action::Tool {
            name: name.clone(),
            args: json!({"filePath": absolute, "content": content}),
        };
    }
    let patch = format!(
        "*** Begin Patch\n*** Add File: {path}\n{}\n*** End Patch\n",
        content
            .lines()
            .map(|l| format!("+{l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    if let Some((name, kind)) = has("apply_patch") {
        return if kind == "custom" {
            Action::Custom {
                name: name.clone(),
                input: patch,
            }
        } else {
            // The patch goes into the tool's one parameter, whatever its name (`input`,
            // OpenCode's `patchText`).
            let param = tool_param(body, name).unwrap_or_else(|| "input".into());
            Action::Tool {
                name: name.clone(),
                args: json!({ param: patch }),
            }
        };
    }
    let script = format!(
        "printf '%s' '{}' > '{path}'",
        content.replace('\'', "'\\''")
    );
    if let Some((name, _)) = has("shell") {
        return Action::Tool {
            name: name.clone(),
            args: json!({"command": ["bash", "-lc", script]}),
        };
    }
    if let Some((name, _)) = has("shell_command") {
        return Action::Tool {
            name: name.clone(),
            args: json!({ "command": script }),
        };
    }
    if let Some((name, _)) = has("exec_command") {
        return Action::Tool {
            name: name.clone(),
            args: json!({ "cmd": script }),
        };
    }
    if body.to_string().contains("commit message") {
        return Action::Text("Add the requested file".into());
    }
    // No tools (Aider): a new file in the edit format the system prompt asks for (an empty
    // SEARCH/REPLACE block, or the whole file), then the answer.
    if body.to_string().contains("SEARCH/REPLACE") {
        return Action::Text(format!(
            "{path}\n```\n<<<<<<< SEARCH\n=======\n{content}\n>>>>>>> REPLACE\n```\n\n{answer}"
        ));
    }
    Action::Text(format!("{path}\n```\n{content}\n```\n\n{answer}"))
}

fn scenario_error(protocol: Protocol, status: u16) -> Value {
    let (kind, message) = match status {
        429 => ("rate_limit_error", "Rate limit reached, slow down"),
        529 => ("overloaded_error", "Overloaded"),
        401 => ("authentication_error", "invalid x-api-key"),
        _ => ("api_error", "Internal server error"),
    };
    match protocol {
        Protocol::Gemini { .. } => {
            let status_name = match status {
                429 => "RESOURCE_EXHAUSTED",
                503 | 529 => "UNAVAILABLE",
                401 => "UNAUTHENTICATED",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": message, "status": status_name}})
        }
        Protocol::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        _ => json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    }
}

fn anthropic_usage() -> Value {
    json!({"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
        "cache_read_input_tokens": CACHED_TOKENS, "cache_creation_input_tokens": 0})
}

/// A new number for the ids of one answer: clients keep the messages and tool calls of a
/// conversation by id.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn anthropic_answer(model: &str, action: &Action) -> Value {
    let n = next_id();
    let (content, stop) = match action {
        Action::Text(text) => (json!([{"type": "text", "text": text}]), "end_turn"),
        Action::Tool { name, args } => (
            json!([{"type": "tool_use", "id": format!("toolu_fake_{n}"), "name": name, "input": args}]),
            "tool_use",
        ),
        Action::Custom { name, input } => (
            json!([{"type": "tool_use", "id": format!("toolu_fake_{n}"), "name": name,
                "input": {"input": input}}]),
            "tool_use",
        ),
    };
    json!({"id": format!("msg_fake_{n}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": anthropic_usage()})
}

fn anthropic_stream(model: &str, action: &Action) -> Vec<(Option<&'static str>, Value)> {
    let n = next_id();
    let mut events = vec![(
        Some("message_start"),
        json!({"type": "message_start", "message": {"id": format!("msg_fake_{n}"), "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1,
                "cache_read_input_tokens": CACHED_TOKENS, "cache_creation_input_tokens": 0}}}),
    )];
    let stop = match action {
        Action::Text(text) => {
            events.push((
                Some("content_block_start"),
                json!({"type": "content_block_start",
                "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            events.push((
                Some("content_block_delta"),
                json!({"type": "content_block_delta",
                "index": 0, "delta": {"type": "text_delta", "text": text}}),
            ));
            "end_turn"
        }
        Action::Tool { name, args } => {
            events.push((
                Some("content_block_start"),
                json!({"type": "content_block_start",
                "index": 0, "content_block": {"type": "tool_use", "id": format!("toolu_fake_{n}"),
                "name": name, "input": {}}}),
            ));
            events.push((
                Some("content_block_delta"),
                json!({"type": "content_block_delta",
                "index": 0, "delta": {"type": "input_json_delta",
                "partial_json": args.to_string()}}),
            ));
            "tool_use"
        }
        Action::Custom { .. } => unreachable!("Anthropic has no free-form tools"),
    };
    events.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        Some("message_delta"),
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": OUTPUT_TOKENS}}),
    ));
    events.push((Some("message_stop"), json!({"type": "message_stop"})));
    events
}

fn chat_usage() -> Value {
    json!({"prompt_tokens": INPUT_TOKENS + CACHED_TOKENS, "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + CACHED_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}})
}

fn chat_answer(model: &str, action: &Action) -> Value {
    let n = next_id();
    let (message, finish) = match action {
        Action::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Action::Tool { name, args } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("call_fake_{n}"),
                "type": "function", "function": {"name": name, "arguments": args.to_string()}}]}),
            "tool_calls",
        ),
        Action::Custom { .. } => unreachable!("Chat Completions has no free-form tools"),
    };
    json!({"id": "chatcmpl-fake-01", "object": "chat.completion", "created": 1_700_000_000,
        "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": chat_usage()})
}

fn chat_stream(model: &str, action: &Action) -> Vec<(Option<&'static str>, Value)> {
    let n = next_id();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake-stream", "object": "chat.completion.chunk",
            "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![(
        None,
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    )];
    let finish = match action {
        Action::Text(text) => {
            events.push((None, chunk(json!({ "content": text }), Value::Null)));
            "stop"
        }
        Action::Tool { name, args } => {
            events.push((
                None,
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": format!("call_fake_{n}"),
                "type": "function", "function": {"name": name,
                "arguments": args.to_string()}}]}),
                    Value::Null,
                ),
            ));
            "tool_calls"
        }
        Action::Custom { .. } => unreachable!("Chat Completions has no free-form tools"),
    };
    events.push((None, chunk(json!({}), json!(finish))));
    events.push((
        None,
        json!({"id": "chatcmpl-fake-stream", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": model, "choices": [], "usage": chat_usage()}),
    ));
    events.push((None, Value::String("[DONE]".into())));
    events
}

fn responses_stream(model: &str, action: &Action) -> Vec<(Option<&'static str>, Value)> {
    let n = next_id();
    let item = match action {
        Action::Text(text) => {
            json!({"type": "message", "id": format!("msg_fake_{n}"), "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]})
        }
        Action::Tool { name, args } => {
            let mut call = json!({"type": "function_call", "id": format!("fc_fake_{n}"),
            "call_id": format!("call_fake_{n}"), "name": name, "arguments": args.to_string(),
            "status": "completed"});
            // A tool of a namespace (`<namespace>/<tool>`, see `tool_names`).
            if let Some((namespace, tool)) = name.split_once('/') {
                call["namespace"] = json!(namespace);
                call["name"] = json!(tool);
            }
            call
        }
        Action::Custom { name, input } => {
            json!({"type": "custom_tool_call", "id": format!("ctc_fake_{n}"),
            "call_id": format!("call_fake_{n}"), "name": name, "input": input, "status": "completed"})
        }
    };
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": format!("resp_fake_{n}"), "object": "response", "created_at": 1_700_000_000,
            "status": status, "model": model, "output": output, "usage": usage})
    };
    vec![
        (
            Some("response.created"),
            json!({"type": "response.created",
                "response": response("in_progress", json!([]), Value::Null)}),
        ),
        (
            Some("response.output_item.done"),
            json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        ),
        (
            Some("response.completed"),
            json!({"type": "response.completed", "response": response("completed", json!([item]),
                json!({"input_tokens": INPUT_TOKENS + CACHED_TOKENS,
                    "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
                    "output_tokens": OUTPUT_TOKENS,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": INPUT_TOKENS + CACHED_TOKENS + OUTPUT_TOKENS}))}),
        ),
    ]
}

fn gemini_answer(model: &str, action: &Action) -> Value {
    let part = match action {
        Action::Text(text) => json!({ "text": text }),
        Action::Tool { name, args } => json!({"functionCall": {"name": name, "args": args}}),
        Action::Custom { .. } => unreachable!("Gemini has no free-form tools"),
    };
    json!({"candidates": [{"content": {"role": "model", "parts": [part]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": INPUT_TOKENS + CACHED_TOKENS,
            "cachedContentTokenCount": CACHED_TOKENS,
            "candidatesTokenCount": OUTPUT_TOKENS,
            "totalTokenCount": INPUT_TOKENS + CACHED_TOKENS + OUTPUT_TOKENS},
        "modelVersion": model})
}
