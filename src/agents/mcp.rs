//! MCP servers and their allowed tools ([`Scope`]) given to a coding-agent CLI, each in the
//! client's own format, added to the invocation its adapter built:
//!
//! - Claude Code: `--mcp-config=<attempt>/mcp.json` (`mcpServers`) with `--strict-mcp-config`
//!   (no other server is loaded) and `--allowedTools=mcp__<server>__<tool>,…` (`mcp__<server>`
//!   for every tool of a server);
//! - Codex: `-c mcp_servers.<server>.command=…` (`args`, `env`, `env_vars`, `enabled_tools`,
//!   `default_tools_approval_mode="approve"`), before its `-` (prompt on stdin);
//! - Gemini CLI: `mcpServers` (with `includeTools`) in the settings of the attempt's own HOME
//!   (`<attempt>/home/.gemini/settings.json`), merged with what its `base_url` settings wrote;
//! - OpenCode: `mcp` (`type: local`) and `tools` (`<server>_*: false`, `<server>_<tool>: true`)
//!   in its inline configuration (`OPENCODE_CONFIG_CONTENT`), merged with its provider block.
//!
//! An environment value `${NAME}` is passed by reference, in each client's own syntax (Claude
//! Code and Gemini CLI expand `${NAME}`, OpenCode `{env:NAME}`, Codex forwards the variables
//! named in `env_vars`): the value is never written into a file or an argument. Aider and the
//! `command` adapter take no MCP servers.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::Invocation;
use crate::config::mcp::{env_reference, Scope};

/// Whether a client can be given MCP servers.
pub fn supported(adapter: &str) -> bool {
    matches!(adapter, "claude-code" | "codex" | "gemini" | "opencode")
}

/// The engine's variables the scope's servers refer to (`${NAME}`): they stay in the client's
/// environment even when they hold secrets, so that the client can pass them on.
pub fn referenced_env(scope: &Scope) -> Vec<String> {
    let mut names: Vec<String> = scope
        .servers
        .values()
        .flat_map(|s| s.env.values())
        .filter_map(|v| env_reference(v).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Add `scope` to an invocation of `adapter` whose attempt directory is `attempt_dir`.
/// Nothing is added for an empty scope or a client that takes no MCP servers.
pub fn apply(adapter: &str, scope: &Scope, attempt_dir: &Path, invocation: &mut Invocation) {
    if scope.is_empty() {
        return;
    }
    match adapter {
        "claude-code" => claude(scope, attempt_dir, invocation),
        "codex" => codex(scope, invocation),
        "gemini" => gemini(scope, attempt_dir, invocation),
        "opencode" => opencode(scope, invocation),
        other => tracing::warn!(
            adapter = other,
            tools = ?scope.names(),
            "this client takes no MCP servers: the attempt runs without its MCP tools"
        ),
    }
}

/// The environment of a server for a client whose reference syntax is `reference`.
fn env_map(
    env: &std::collections::BTreeMap<String, String>,
    reference: fn(&str) -> String,
) -> Map<String, Value> {
    env.iter()
        .map(|(k, v)| {
            let value = env_reference(v).map(reference).unwrap_or_else(|| v.clone());
            (k.clone(), json!(value))
        })
        .collect()
}

fn claude(scope: &Scope, attempt_dir: &Path, invocation: &mut Invocation) {
    let servers: Map<String, Value> = scope
        .servers
        .iter()
        .map(|(name, s)| {
            let server = json!({
                "type": "stdio",
                "command": s.command,
                "args": s.args,
                "env": env_map(&s.env, |n| format!("${{{n}}}")),
            });
            (name.clone(), server)
        })
        .collect();
    let path = attempt_dir.join("mcp.json");
    let config = json!({ "mcpServers": servers });
    invocation
        .files
        .push((path.clone(), format!("{config:#}\n")));
    let allowed: Vec<String> = scope
        .allowed
        .iter()
        .map(|a| match &a.tool {
            Some(tool) => format!("mcp__{}__{tool}", a.server),
            None => format!("mcp__{}", a.server),
        })
        .collect();
    // `=` forms: both options take several values, and must not swallow what follows.
    invocation.argv.extend([
        format!("--mcp-config={}", path.display()),
        "--strict-mcp-config".to_string(),
        format!("--allowedTools={}", allowed.join(",")),
    ]);
}

/// A TOML string (a JSON string is one, with the escapes TOML reads the same).
fn toml_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn toml_array(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", items.join(","))
}

fn codex(scope: &Scope, invocation: &mut Invocation) {
    let mut args = Vec::new();
    for (name, s) in &scope.servers {
        let key = format!("mcp_servers.{name}");
        let mut set = |field: &str, value: String| {
            args.extend(["-c".to_string(), format!("{key}.{field}={value}")]);
        };
        set("command", toml_string(&s.command));
        set("args", toml_array(&s.args));
        let literal: Vec<String> = s
            .env
            .iter()
            .filter(|(_, v)| env_reference(v).is_none())
            .map(|(k, v)| format!("{}={}", toml_string(k), toml_string(v)))
            .collect();
        if !literal.is_empty() {
            set("env", format!("{{{}}}", literal.join(",")));
        }
        let forwarded: Vec<String> = s
            .env
            .iter()
            .filter_map(|(k, v)| {
                let var = env_reference(v)?;
                if var != k {
                    // Codex forwards a variable under its own name only.
                    tracing::warn!(
                        server = %name,
                        "Codex cannot pass `${{{var}}}` as `{k}`: name it `{var}: ${{{var}}}`"
                    );
                    return None;
                }
                Some(k.clone())
            })
            .collect();
        if !forwarded.is_empty() {
            set("env_vars", toml_array(&forwarded));
        }
        let tools = tools_of(scope, name);
        if let Some(tools) = tools {
            set("enabled_tools", toml_array(&tools));
        }
        // The scope's tools are the allowed ones: `codex exec` never asks, so a tool that
        // wanted approval would be refused ("requires approval, but approval policy is never").
        set("default_tools_approval_mode", toml_string("approve"));
    }
    // Before the `-` that makes Codex read the prompt on stdin.
    let at = match invocation.argv.last().map(String::as_str) {
        Some("-") => invocation.argv.len() - 1,
        _ => invocation.argv.len(),
    };
    invocation.argv.splice(at..at, args);
}

/// The tools of `server` the scope allows by name; `None` when it allows them all.
fn tools_of(scope: &Scope, server: &str) -> Option<Vec<String>> {
    let of_server: Vec<_> = scope
        .allowed
        .iter()
        .filter(|a| a.server == server)
        .collect();
    if of_server.iter().any(|a| a.tool.is_none()) {
        return None;
    }
    Some(of_server.iter().filter_map(|a| a.tool.clone()).collect())
}

fn gemini(scope: &Scope, attempt_dir: &Path, invocation: &mut Invocation) {
    let home = attempt_dir.join("home");
    let path = home.join(".gemini").join("settings.json");
    let mut settings = invocation
        .files
        .iter()
        .find(|(p, _)| *p == path)
        .and_then(|(_, text)| serde_json::from_str::<Value>(text).ok())
        .unwrap_or_else(|| {
            json!({
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": false}
            })
        });
    let servers: Map<String, Value> = scope
        .servers
        .iter()
        .map(|(name, s)| {
            let mut server = json!({
                "command": s.command,
                "args": s.args,
                "env": env_map(&s.env, |n| format!("${{{n}}}")),
            });
            if let Some(tools) = tools_of(scope, name) {
                server["includeTools"] = json!(tools);
            }
            (name.clone(), server)
        })
        .collect();
    settings["mcpServers"] = Value::Object(servers);
    invocation.files.retain(|(p, _)| *p != path);
    invocation.files.push((path, format!("{settings:#}\n")));
    if !invocation.env.iter().any(|(k, _)| k == "HOME") {
        invocation
            .env
            .push(("HOME".into(), home.display().to_string()));
    }
}

fn opencode(scope: &Scope, invocation: &mut Invocation) {
    const VAR: &str = "OPENCODE_CONFIG_CONTENT";
    let mut config = invocation
        .env
        .iter()
        .find(|(k, _)| k == VAR)
        .and_then(|(_, text)| serde_json::from_str::<Value>(text).ok())
        .unwrap_or_else(|| json!({ "$schema": "https://opencode.ai/config.json" }));
    let mut mcp = Map::new();
    let mut tools = Map::new();
    for (name, s) in &scope.servers {
        let mut command = vec![s.command.clone()];
        command.extend(s.args.iter().cloned());
        mcp.insert(
            name.clone(),
            json!({
                "type": "local",
                "command": command,
                "environment": env_map(&s.env, |n| format!("{{env:{n}}}")),
                "enabled": true,
            }),
        );
        if let Some(allowed) = tools_of(scope, name) {
            tools.insert(format!("{name}_*"), json!(false));
            for tool in allowed {
                tools.insert(format!("{name}_{tool}"), json!(true));
            }
        }
    }
    config["mcp"] = Value::Object(mcp);
    if !tools.is_empty() {
        config["tools"] = Value::Object(tools);
    }
    invocation.env.retain(|(k, _)| k != VAR);
    invocation.env.push((VAR.into(), config.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mcp::{McpServer, McpTools, ToolName};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn scope() -> Scope {
        let mut servers = BTreeMap::new();
        servers.insert(
            "github".to_string(),
            McpServer {
                command: "github-mcp-server".into(),
                args: vec!["stdio".into()],
                env: [
                    ("GITHUB_TOKEN".to_string(), "${GITHUB_TOKEN}".to_string()),
                    ("GITHUB_HOST".to_string(), "ghe.example.com".to_string()),
                ]
                .into(),
            },
        );
        servers.insert(
            "filesystem".to_string(),
            McpServer {
                command: "npx".into(),
                args: vec![
                    "-y".into(),
                    "@modelcontextprotocol/server-filesystem".into(),
                    ".".into(),
                ],
                env: BTreeMap::new(),
            },
        );
        let mut tools = McpTools::default();
        tools.roles.insert(
            "planner".into(),
            vec![
                ToolName("github.search_issues".into()),
                ToolName("filesystem.*".into()),
            ],
        );
        Scope::resolve(&servers, &tools, Some("planner"), "any")
    }

    fn invocation(argv: &[&str]) -> Invocation {
        Invocation {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Invocation::default()
        }
    }

    #[test]
    fn claude_code_gets_a_strict_config_file_and_exactly_the_allowed_tools() {
        let mut inv = invocation(&["claude", "-p", "hi"]);
        apply("claude-code", &scope(), Path::new("/a/1"), &mut inv);
        assert_eq!(
            inv.argv[3..],
            [
                "--mcp-config=/a/1/mcp.json",
                "--strict-mcp-config",
                "--allowedTools=mcp__filesystem,mcp__github__search_issues"
            ]
        );
        let (path, text) = &inv.files[0];
        assert_eq!(path, &PathBuf::from("/a/1/mcp.json"));
        let config: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            config["mcpServers"]["github"]["env"]["GITHUB_TOKEN"],
            "${GITHUB_TOKEN}"
        );
        assert_eq!(config["mcpServers"]["github"]["args"], json!(["stdio"]));
    }

    #[test]
    fn codex_gets_config_overrides_before_its_stdin_prompt() {
        let mut inv = invocation(&["codex", "exec", "--json", "-"]);
        apply("codex", &scope(), Path::new("/a/1"), &mut inv);
        assert_eq!(inv.argv.last().unwrap(), "-");
        let joined = inv.argv.join(" ");
        for expected in [
            r#"-c mcp_servers.github.command="github-mcp-server""#,
            r#"-c mcp_servers.github.args=["stdio"]"#,
            r#"-c mcp_servers.github.env={"GITHUB_HOST"="ghe.example.com"}"#,
            r#"-c mcp_servers.github.env_vars=["GITHUB_TOKEN"]"#,
            r#"-c mcp_servers.github.enabled_tools=["search_issues"]"#,
            r#"-c mcp_servers.github.default_tools_approval_mode="approve""#,
            r#"-c mcp_servers.filesystem.command="npx""#,
        ] {
            assert!(joined.contains(expected), "{expected} in {joined}");
        }
        assert!(!joined.contains("filesystem.enabled_tools"), "{joined}");
    }

    #[test]
    fn gemini_and_opencode_merge_into_their_settings() {
        let mut inv = invocation(&["gemini", "-p", "hi"]);
        apply("gemini", &scope(), Path::new("/a/1"), &mut inv);
        let (path, text) = &inv.files[0];
        assert_eq!(path, &PathBuf::from("/a/1/home/.gemini/settings.json"));
        let settings: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            settings["mcpServers"]["github"]["includeTools"],
            json!(["search_issues"])
        );
        assert!(settings["mcpServers"]["filesystem"]
            .get("includeTools")
            .is_none());
        assert_eq!(inv.env, [("HOME".to_string(), "/a/1/home".to_string())]);

        let mut inv = invocation(&["opencode", "run"]);
        inv.env.push((
            "OPENCODE_CONFIG_CONTENT".into(),
            r#"{"provider":{"x":{}}}"#.into(),
        ));
        apply("opencode", &scope(), Path::new("/a/1"), &mut inv);
        assert_eq!(inv.env.len(), 1);
        let config: Value = serde_json::from_str(&inv.env[0].1).unwrap();
        assert!(
            config["provider"]["x"].is_object(),
            "the provider block stays"
        );
        assert_eq!(
            config["mcp"]["github"]["environment"]["GITHUB_TOKEN"],
            "{env:GITHUB_TOKEN}"
        );
        assert_eq!(
            config["mcp"]["github"]["command"],
            json!(["github-mcp-server", "stdio"])
        );
        assert_eq!(
            config["tools"],
            json!({"github_*": false, "github_search_issues": true})
        );
    }

    #[test]
    fn nothing_is_added_without_tools_or_for_clients_without_mcp() {
        let mut inv = invocation(&["aider", "--message", "hi"]);
        apply("aider", &scope(), Path::new("/a/1"), &mut inv);
        assert_eq!(inv, invocation(&["aider", "--message", "hi"]));
        let mut inv = invocation(&["claude", "-p", "hi"]);
        apply(
            "claude-code",
            &Scope::default(),
            Path::new("/a/1"),
            &mut inv,
        );
        assert_eq!(inv, invocation(&["claude", "-p", "hi"]));
        assert_eq!(referenced_env(&scope()), ["GITHUB_TOKEN"]);
    }
}
