//! The fake model's side of the pipeline tier: a scripted session per phase of a mission,
//! played through whichever tools the client offers. Each request is matched to its phase by
//! a text of the phase's prompt, and the session's progress is read from the conversation the
//! client sends back (how many tool results it holds; for Aider, which has no tools, how many
//! answers it gave since the prompt), so the server keeps no state between requests.
//!
//! Reading goes through the client's read tool (or its shell), and the session stops without
//! writing anything when what was read is not in the conversation: a client that cannot see
//! the repository fails its phase. Writing goes through `apply_patch` when the client offers
//! it, else its write tool, else its shell; Aider gets its edit format.

#![allow(dead_code)]

use serde_json::{json, Value};

use crate::fake_llm::{tool_names, tool_param, workdir, Action, Protocol};

/// The sessions of a mission's phases.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Matched in order: the first phase whose marker the conversation holds. A later phase's
    /// prompt may quote an earlier phase's outputs, so the phases whose prompts quote the most
    /// come first.
    pub phases: Vec<PhaseScript>,
}

/// One phase's session: its steps, one model answer each, then the final answer.
#[derive(Clone, Debug)]
pub struct PhaseScript {
    /// A text only this phase's prompt holds.
    pub marker: String,
    pub steps: Vec<Step>,
    pub answer: String,
}

#[derive(Clone, Debug)]
pub enum Step {
    /// Read a file of the working directory; the session ends, writing nothing, unless what
    /// comes back holds `expect`.
    Read { path: String, expect: String },
    /// Read a file that is not there: the tool call fails and the session goes on. Aider, which
    /// has no tools, skips it.
    ReadMissing { path: String },
    /// Write a new file (a path relative to the working directory).
    Write { path: String, content: String },
}

impl PhaseScript {
    pub fn new(marker: &str, steps: Vec<Step>, answer: &str) -> PhaseScript {
        PhaseScript {
            marker: marker.into(),
            steps,
            answer: answer.into(),
        }
    }
}

impl Step {
    pub fn read(path: &str, expect: &str) -> Step {
        Step::Read {
            path: path.into(),
            expect: expect.into(),
        }
    }

    pub fn write(path: &str, content: &str) -> Step {
        Step::Write {
            path: path.into(),
            content: content.into(),
        }
    }
}

/// What the model answers to `body`.
pub(crate) fn action(protocol: Protocol, body: &Value, script: &Script) -> Action {
    let text = body.to_string();
    let Some(phase) = script.phases.iter().find(|p| text.contains(&p.marker)) else {
        return side_answer(&text);
    };
    let tools = tool_names(protocol, body);
    if tools.is_empty() {
        return if is_aider(&text) {
            aider_action(body, &text, phase)
        } else if is_bare(body) {
            bare_action(phase)
        } else {
            side_answer(&text)
        };
    }
    let done = tool_results(body);
    if let Some(stop) = unseen(&text, phase.steps.get(done.wrapping_sub(1))) {
        return stop;
    }
    let Some(step) = phase.steps.get(done) else {
        return Action::Text(phase.answer.clone());
    };
    let has = |name: &str| tools.iter().any(|(n, _)| n == name);
    match step {
        Step::Read { path, .. } | Step::ReadMissing { path } => read_action(body, &has, path),
        Step::Write { path, content } => write_action(body, &tools, path, content),
    }
}

/// A bare request: the prompt as the one user message, no system prompt, no tools (an HTTP
/// agent of the engine).
fn is_bare(body: &Value) -> bool {
    let messages = body.get("messages").and_then(Value::as_array);
    body.get("system").is_none()
        && messages.is_some_and(|m| {
            m.len() == 1 && m[0].get("role").and_then(Value::as_str) == Some("user")
        })
}

/// A model without tools reads nothing but its prompt: it answers every file whole, a line
/// naming it then a fenced block, with its final answer.
fn bare_action(phase: &PhaseScript) -> Action {
    let files: Vec<(String, String)> = phase
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Write { path, content } => Some((path.clone(), content.clone())),
            _ => None,
        })
        .collect();
    let mut out = String::from("Here are the files.\n\n");
    for (path, content) in &files {
        out.push_str(&format!("{path}\n```\n{}\n```\n\n", content.trim_end()));
    }
    out.push_str(&phase.answer);
    Action::Text(out)
}

/// A request that is not a phase's conversation (titles, topics, commit messages, a client's
/// checks of its own): a short text.
fn side_answer(text: &str) -> Action {
    if text.contains("commit message") {
        return Action::Text("Add the work package's files".into());
    }
    Action::Text("Hello from the fake LLM".into())
}

/// Aider's system prompt (every edit format starts so).
fn is_aider(text: &str) -> bool {
    text.contains("Act as an expert")
}

/// When the step before was a read whose content is not in the conversation: the model says
/// so and stops, writing nothing.
fn unseen(text: &str, previous: Option<&Step>) -> Option<Action> {
    match previous {
        Some(Step::Read { path, expect }) if !text.contains(expect.as_str()) => {
            Some(Action::Text(format!(
                "I cannot see `{path}` in my working directory, so I cannot do this task. I wrote nothing."
            )))
        }
        _ => None,
    }
}

/// How many tool results the conversation holds (every protocol's shape).
fn tool_results(body: &Value) -> usize {
    fn count(v: &Value) -> usize {
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
                    map.values().map(count).sum()
                }
            }
            Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    ["messages", "input", "contents"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(count)
        .sum()
}

/// `path` made absolute in the working directory the client told the model about (the tools
/// that want an absolute path), else as it is.
fn absolute(body: &Value, path: &str) -> String {
    match workdir(body) {
        Some(dir) => format!("{dir}/{path}"),
        None => path.to_string(),
    }
}

fn read_action(body: &Value, has: &dyn Fn(&str) -> bool, path: &str) -> Action {
    let tool = |name: &str, args: Value| Action::Tool {
        name: name.into(),
        args,
    };
    let file = absolute(body, path);
    if has("Read") {
        return tool("Read", json!({ "file_path": file }));
    }
    if has("read_file") {
        let param = tool_param(body, "read_file").unwrap_or_else(|| "file_path".into());
        return tool("read_file", json!({ param: file }));
    }
    if has("read") {
        return tool("read", json!({ "filePath": file }));
    }
    shell_action(body, has, &format!("cat '{path}'"))
}

/// Run `script` through the client's shell tool.
fn shell_action(body: &Value, has: &dyn Fn(&str) -> bool, script: &str) -> Action {
    let tool = |name: &str, args: Value| Action::Tool {
        name: name.into(),
        args,
    };
    if has("shell") {
        return tool("shell", json!({"command": ["bash", "-lc", script]}));
    }
    if has("shell_command") {
        return tool("shell_command", json!({ "command": script }));
    }
    if has("exec_command") {
        return tool("exec_command", json!({ "cmd": script }));
    }
    if has("bash") {
        return tool(
            "bash",
            json!({"command": script, "description": "Run a command"}),
        );
    }
    if has("run_shell_command") {
        return tool("run_shell_command", json!({ "command": script }));
    }
    let _ = body;
    Action::Text(format!(
        "I have no tool to run `{script}` with; I stop here."
    ))
}

fn write_action(body: &Value, tools: &[(String, String)], path: &str, content: &str) -> Action {
    let has = |name: &str| tools.iter().any(|(n, _)| n == name);
    if let Some((name, kind)) = tools.iter().find(|(n, _)| n == "apply_patch") {
        let added: Vec<String> = content.lines().map(|l| format!("+{l}")).collect();
        let patch = format!(
            "*** Begin Patch\n*** Add File: {path}\n{}\n*** End Patch\n",
            added.join("\n")
        );
        return if kind == "custom" {
            Action::Custom {
                name: name.clone(),
                input: patch,
            }
        } else {
            let param = tool_param(body, name).unwrap_or_else(|| "input".into());
            Action::Tool {
                name: name.clone(),
                args: json!({ param: patch }),
            }
        };
    }
    let file = absolute(body, path);
    for (name, key) in [
        ("Write", "file_path"),
        ("write_file", "file_path"),
        ("write", "filePath"),
    ] {
        if has(name) {
            return Action::Tool {
                name: name.into(),
                args: json!({ key: file, "content": content }),
            };
        }
    }
    let quoted = content.replace('\'', "'\\''");
    let script =
        format!("mkdir -p \"$(dirname '{path}')\" && printf '%s\\n' '{quoted}' > '{path}'");
    shell_action(body, &has, &script)
}

/// Aider's turn, read from what the conversation holds: a read is a file named in the answer
/// (Aider adds the files an answer names to the chat and asks again) unless its content is in
/// the chat already; the writes are one answer in the edit format the system prompt asks for,
/// with the final answer after them, given again when Aider added files instead of applying
/// them (it applies no edit of an answer that names files it then adds).
fn aider_action(body: &Value, text: &str, phase: &PhaseScript) -> Action {
    let answers = answers_since(body, &phase.marker);
    for turn in aider_turns(&phase.steps) {
        match turn {
            AiderTurn::Read(step) => {
                let Step::Read { path, expect } = &step else {
                    continue;
                };
                if text.contains(expect.as_str()) {
                    continue;
                }
                let ask = format!(
                    "Before I change anything I need to read this file:\n\n{path}\n\nPlease add it to the chat."
                );
                if answers.iter().any(|a| a.contains(&ask)) {
                    return unseen(text, Some(&step)).expect("not seen");
                }
                return Action::Text(ask);
            }
            AiderTurn::Write(files) => {
                let given = answers.iter().any(|a| a.contains(&phase.answer));
                if given && !last_user(body).contains("I added these files to the chat") {
                    return Action::Text(phase.answer.clone());
                }
                return Action::Text(aider_edits(text, &files, &phase.answer));
            }
        }
    }
    Action::Text(phase.answer.clone())
}

/// New files in Aider's edit format (an empty SEARCH/REPLACE block, or the whole file).
fn aider_edits(text: &str, files: &[(String, String)], answer: &str) -> String {
    let diff = text.contains("SEARCH/REPLACE");
    let mut out = String::new();
    for (path, content) in files {
        let content = content.trim_end();
        if diff {
            out.push_str(&format!(
                "{path}\n```\n<<<<<<< SEARCH\n=======\n{content}\n>>>>>>> REPLACE\n```\n\n"
            ));
        } else {
            out.push_str(&format!("{path}\n```\n{content}\n```\n\n"));
        }
    }
    out.push_str(answer);
    out
}

enum AiderTurn {
    Read(Step),
    Write(Vec<(String, String)>),
}

fn aider_turns(steps: &[Step]) -> Vec<AiderTurn> {
    let mut turns: Vec<AiderTurn> = Vec::new();
    for step in steps {
        match step {
            Step::Read { .. } => turns.push(AiderTurn::Read(step.clone())),
            Step::ReadMissing { .. } => {}
            Step::Write { path, content } => match turns.last_mut() {
                Some(AiderTurn::Write(files)) => files.push((path.clone(), content.clone())),
                _ => turns.push(AiderTurn::Write(vec![(path.clone(), content.clone())])),
            },
        }
    }
    turns
}

/// The text of the conversation's last user message.
fn last_user(body: &Value) -> String {
    body.get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .map(|m| m.to_string())
        .unwrap_or_default()
}

/// The answers the assistant gave after the (last) message that holds `marker`.
fn answers_since(body: &Value, marker: &str) -> Vec<String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Vec::new();
    };
    let start = messages
        .iter()
        .rposition(|m| m.to_string().contains(marker))
        .unwrap_or(0);
    messages[start..]
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .map(|m| match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        })
        .collect()
}
