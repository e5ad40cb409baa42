//! The coding-agent CLIs, one table: each client's program, argv, environment (the variable that
//! takes `base_url`, fixed settings, the key variables it reads), version arguments, output
//! parser and failure classification. [`Client`] is the one [`CliAdapter`] built from an entry
//! and an `agents.yaml` agent. Adding a client is an entry here, its name in
//! [`super::ADAPTERS`], and its parser in a file of its own.

use serde_json::Value;

use super::{aider, claude, codex, gemini, opencode};
use super::{
    classify_text, find_json_object, tail_lines, AdapterConfig, AgentOutcome, CliAdapter,
    FailureClass, Invocation, Request, Usage,
};

/// One element of a client's argv template, after the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A fixed argument.
    Lit(&'static str),
    /// The rendered prompt, as one argument.
    Prompt,
    /// `flag model` when a model is asked for (the request's, else the configured one).
    Model(&'static str),
    /// `flag n` when the request caps agentic turns.
    MaxTurns(&'static str),
    /// `flag dollars` when the request carries a spending cap.
    MaxBudget(&'static str),
    /// `flag mode`: `permission_mode` from `agents.yaml`, else the default given here; an
    /// empty `permission_mode` leaves both out (the client's own default).
    PermissionMode(&'static str, &'static str),
    /// The agent's `args` from `agents.yaml`.
    Args,
    /// `flag prompt`, which a [`LargePrompt::File`] replaces whole (Aider: `--message`).
    FlagPrompt(&'static str),
    /// This argument, with the prompt on stdin (Codex: `-`, which reads the prompt from stdin).
    StdinPrompt(&'static str),
}

/// How a client takes a prompt too long for one argv element (the kernel refuses an argument
/// over 128 KiB with E2BIG): prompts over [`LARGE_PROMPT`] bytes go this way instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LargePrompt {
    /// Replace the prompt argument with these arguments (none, or a short instruction) and send
    /// the prompt on stdin.
    Stdin(&'static [&'static str]),
    /// Replace the prompt argument (and its flag: [`Arg::FlagPrompt`]) with `flag <prompt
    /// file>` (the attempt's `prompt.md`).
    File(&'static str),
}

/// Prompts longer than this (in bytes) go through stdin or a file ([`LargePrompt`]).
pub const LARGE_PROMPT: usize = 100 * 1024;

/// What a client's settings hook knows: the configured endpoint, model and key variable, and
/// the attempt's directory (where its settings files go).
pub struct Settings<'a> {
    pub base_url: Option<&'a str>,
    pub model: Option<&'a str>,
    pub api_key_env: Option<&'a str>,
    pub attempt_dir: &'a std::path::Path,
    /// Whether the working directory is a git worktree the engine made ([`Request::git_worktree`]).
    pub git_worktree: bool,
}

/// What a client's settings hook adds to an invocation.
#[derive(Default)]
pub struct Extra {
    pub env: Vec<(String, String)>,
    pub files: Vec<(std::path::PathBuf, String)>,
    /// The model argument to pass instead of the requested one.
    pub model: Option<String>,
    /// Arguments placed before the agent's own `args`.
    pub args: Vec<String>,
}

/// What is known about one coding-agent CLI.
pub struct AdapterSpec {
    /// The adapter's name in `agents.yaml`.
    pub name: &'static str,
    /// The program run when `agents.yaml` names no `binary`.
    pub program: &'static str,
    /// The arguments after the program, in order.
    pub argv: &'static [Arg],
    /// Put before a model name without a provider (no `/`) when a `base_url` is set: Aider
    /// reaches an OpenAI-compatible endpoint through LiteLLM's `openai/` provider.
    pub base_url_model_prefix: Option<&'static str>,
    /// The variable through which the client takes `base_url`; `None` when it has none.
    pub base_url_env: Option<&'static str>,
    /// Variables always set for the client (before `base_url` and the agent's `env`).
    pub fixed_env: &'static [(&'static str, &'static str)],
    /// The environment variables holding API keys the client reads (names only).
    pub key_env: &'static [&'static str],
    /// The arguments that print the client's version (`agents doctor`).
    pub version_args: &'static [&'static str],
    /// How a prompt over [`LARGE_PROMPT`] bytes is passed; `None` when the client has no
    /// other way than argv (or always reads stdin: [`Arg::StdinPrompt`]).
    pub large_prompt: Option<LargePrompt>,
    /// Settings a client needs beyond argv and fixed variables, written per attempt (Gemini's
    /// auth type for a `base_url`, OpenCode's provider block).
    pub settings: Option<fn(&Settings<'_>) -> Extra>,
    /// Read the client's output: the exit code, stdout and stderr.
    pub parse: fn(&Parse<'_>, Option<i32>, &str, &str) -> AgentOutcome,
    /// The failure class the client's words name, if any: [`classify_text`] unless the client
    /// has words of its own.
    pub classify: fn(&str) -> Option<FailureClass>,
}

/// Every coding-agent CLI Spectacular knows.
pub const CLIENTS: &[AdapterSpec] = &[
    AdapterSpec {
        name: "claude-code",
        program: "claude",
        argv: &[
            Arg::Lit("-p"),
            Arg::Prompt,
            Arg::Lit("--output-format"),
            Arg::Lit("json"),
            Arg::Model("--model"),
            Arg::MaxTurns("--max-turns"),
            Arg::PermissionMode("--permission-mode", "acceptEdits"),
            Arg::MaxBudget("--max-budget-usd"),
            Arg::Args,
        ],
        base_url_model_prefix: None,
        base_url_env: Some("ANTHROPIC_BASE_URL"),
        fixed_env: &[("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")],
        large_prompt: Some(LargePrompt::Stdin(&[])),
        settings: None,
        key_env: &[
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
        ],
        version_args: &["--version"],
        parse: claude::parse,
        classify: classify_text,
    },
    AdapterSpec {
        name: "codex",
        program: "codex",
        argv: &[
            Arg::Lit("exec"),
            Arg::Lit("--json"),
            // Attempt directories are not git repositories, nor trusted.
            Arg::Lit("--skip-git-repo-check"),
            // Without it the executor cannot write files, yet exits 0.
            Arg::Lit("--sandbox"),
            Arg::Lit("workspace-write"),
            // Shell snapshots under `~/.codex` would hold the environment, keys included.
            Arg::Lit("--disable"),
            Arg::Lit("shell_snapshot"),
            Arg::Model("--model"),
            Arg::Args,
            Arg::StdinPrompt("-"),
        ],
        base_url_model_prefix: None,
        base_url_env: None,
        fixed_env: &[],
        large_prompt: None,
        settings: Some(codex_settings),
        key_env: &["OPENAI_API_KEY", "CODEX_API_KEY"],
        version_args: &["--version"],
        parse: codex::parse,
        classify: classify_text,
    },
    AdapterSpec {
        name: "aider",
        program: "aider",
        argv: &[
            Arg::FlagPrompt("--message"),
            Arg::Lit("--yes-always"),
            Arg::Lit("--no-stream"),
            // No version check, no release notes, no analytics: nothing but the model's API.
            Arg::Lit("--no-check-update"),
            Arg::Lit("--no-show-release-notes"),
            Arg::Lit("--analytics-disable"),
            // Aider's own files stay out of the repository.
            Arg::Lit("--no-gitignore"),
            // The engine commits an attempt's work, on the work package's branch only; Aider
            // commits nothing, not even the files it finds changed.
            Arg::Lit("--no-auto-commits"),
            Arg::Lit("--no-dirty-commits"),
            Arg::Model("--model"),
            Arg::Args,
        ],
        base_url_model_prefix: Some("openai/"),
        base_url_env: Some("OPENAI_API_BASE"),
        // LiteLLM's bundled prices, not a download at every start.
        fixed_env: &[("LITELLM_LOCAL_MODEL_COST_MAP", "True")],
        large_prompt: Some(LargePrompt::File("--message-file")),
        settings: Some(aider_settings),
        key_env: &[
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GEMINI_API_KEY",
            "DEEPSEEK_API_KEY",
            "OPENROUTER_API_KEY",
        ],
        version_args: &["--version"],
        parse: aider::parse,
        classify: classify_text,
    },
    AdapterSpec {
        name: "gemini",
        program: "gemini",
        argv: &[
            Arg::Lit("-p"),
            Arg::Prompt,
            Arg::Lit("--output-format"),
            Arg::Lit("json"),
            Arg::Model("-m"),
            Arg::Lit("--approval-mode"),
            Arg::Lit("yolo"),
            // Every attempt directory is new, hence untrusted: Gemini would exit 55.
            Arg::Lit("--skip-trust"),
            Arg::Args,
        ],
        base_url_model_prefix: None,
        base_url_env: Some("GOOGLE_GEMINI_BASE_URL"),
        fixed_env: &[],
        // `-p` is appended to what stdin brings.
        large_prompt: Some(LargePrompt::Stdin(&["Carry out the task given above."])),
        settings: Some(gemini_settings),
        key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        version_args: &["--version"],
        parse: gemini::parse,
        classify: classify_text,
    },
    AdapterSpec {
        name: "opencode",
        program: "opencode",
        argv: &[
            Arg::Lit("run"),
            Arg::Lit("--format"),
            Arg::Lit("json"),
            Arg::Model("--model"),
            Arg::Args,
            Arg::Prompt,
        ],
        base_url_model_prefix: None,
        // OpenCode takes its endpoint from a provider block in its configuration.
        base_url_env: None,
        fixed_env: &[
            ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
            ("OPENCODE_DISABLE_SHARE", "1"),
        ],
        // `opencode run` appends what it reads on stdin (when stdin is not a terminal) to the
        // message of its arguments; with no message argument, stdin is the whole message.
        large_prompt: Some(LargePrompt::Stdin(&[])),
        settings: Some(opencode_settings),
        key_env: &[
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "OPENCODE_API_KEY",
            "OPENROUTER_API_KEY",
        ],
        version_args: &["--version"],
        parse: opencode::parse,
        classify: classify_text,
    },
];

/// Codex ignores `OPENAI_BASE_URL`: with a `base_url`, a model provider of its own
/// (`-c model_providers.spectacular={…}`) speaking the Responses API over HTTPS, with the key
/// from `api_key_env` (else `OPENAI_API_KEY`).
fn codex_settings(settings: &Settings<'_>) -> Extra {
    let Some(url) = settings.base_url else {
        return Extra::default();
    };
    let key = settings.api_key_env.unwrap_or("OPENAI_API_KEY");
    let mut args = Vec::new();
    for (field, value) in [
        ("name", "\"spectacular\"".to_string()),
        ("base_url", format!("{url:?}")),
        ("env_key", format!("{key:?}")),
        ("wire_api", "\"responses\"".to_string()),
        ("supports_websockets", "false".to_string()),
    ] {
        args.extend([
            "-c".to_string(),
            format!("model_providers.spectacular.{field}={value}"),
        ]);
    }
    args.extend([
        "-c".to_string(),
        "model_provider=\"spectacular\"".to_string(),
    ]);
    Extra {
        args,
        ..Extra::default()
    }
}

/// Aider's history files go into the attempt's directory, not the repository's root. Outside a
/// worktree the engine made, Aider runs without git: it would take the user's repository
/// (above an attempt directory) as its own.
///
/// In a worktree, Aider writes a placeholder `user.name` and `user.email` into the repository's
/// config when git knows no identity (a fresh HOME, a CI runner), which changes the user's
/// repository (and the engine refuses the attempt as tampered). Aider's git is given the
/// identity the engine commits with, as command-line-scope config in its environment
/// (`GIT_CONFIG_COUNT`, after any entries the user's environment already has); Aider never
/// commits with it (`--no-auto-commits`).
fn aider_settings(settings: &Settings<'_>) -> Extra {
    let dir = settings.attempt_dir.display();
    let mut env = vec![
        (
            "AIDER_CHAT_HISTORY_FILE".into(),
            format!("{dir}/aider.chat.history.md"),
        ),
        (
            "AIDER_INPUT_HISTORY_FILE".into(),
            format!("{dir}/aider.input.history"),
        ),
    ];
    let args = if settings.git_worktree {
        let first = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let identity = [
            ("user.name", crate::git::IDENTITY_NAME),
            ("user.email", crate::git::IDENTITY_EMAIL),
        ];
        for (i, (key, value)) in identity.iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{}", first + i), key.to_string()));
            env.push((format!("GIT_CONFIG_VALUE_{}", first + i), value.to_string()));
        }
        env.push((
            "GIT_CONFIG_COUNT".into(),
            (first + identity.len()).to_string(),
        ));
        Vec::new()
    } else {
        vec!["--no-git".to_string()]
    };
    Extra {
        args,
        env,
        ..Extra::default()
    }
}

/// With a `base_url`, Gemini CLI takes the endpoint as a "gateway", which it refuses to run
/// non-interactively; a settings file naming the API-key auth type keeps the key and the URL.
/// Gemini CLI loads a system settings file only when root owns it and every directory above
/// it, so the file is its user settings, in a HOME of the attempt's own
/// (`<attempt>/home/.gemini/settings.json`): the user's own settings and login are neither read
/// nor changed.
fn gemini_settings(settings: &Settings<'_>) -> Extra {
    if settings.base_url.is_none() {
        return Extra::default();
    }
    let home = settings.attempt_dir.join("home");
    let path = home.join(".gemini").join("settings.json");
    let json = serde_json::json!({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": false}
    });
    Extra {
        env: vec![("HOME".into(), home.display().to_string())],
        files: vec![(path, format!("{json:#}\n"))],
        ..Extra::default()
    }
}

/// The model OpenCode asks a `base_url` for when none is configured.
pub const OPENCODE_DEFAULT_MODEL: &str = "gpt-5";

/// OpenCode takes an endpoint only from a provider block of its configuration: with a
/// `base_url`, one OpenAI-compatible provider named `spectacular`, serving the model asked
/// for, passed inline (`OPENCODE_CONFIG_CONTENT`) and named `spectacular/<model>`.
fn opencode_settings(settings: &Settings<'_>) -> Extra {
    let Some(url) = settings.base_url else {
        return Extra::default();
    };
    let model = settings.model.unwrap_or(OPENCODE_DEFAULT_MODEL);
    let model = model.rsplit('/').next().unwrap_or(model);
    let key = settings.api_key_env.unwrap_or("OPENAI_API_KEY");
    let config = serde_json::json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "spectacular": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Spectacular base_url",
                "options": {"baseURL": url, "apiKey": format!("{{env:{key}}}")},
                "models": {model: {"name": model}}
            }
        },
        "share": "disabled",
        "autoupdate": false
    });
    Extra {
        env: vec![("OPENCODE_CONFIG_CONTENT".into(), config.to_string())],
        model: Some(format!("spectacular/{model}")),
        ..Extra::default()
    }
}

/// The table entry of the client named `name` (as in `agents.yaml`).
pub fn client_spec(name: &str) -> Option<&'static AdapterSpec> {
    CLIENTS.iter().find(|c| c.name == name)
}

/// What a parser knows besides the output: its client and the configured model.
pub struct Parse<'a> {
    pub spec: &'static AdapterSpec,
    /// The model configured in `agents.yaml`, the usage's model when the output names none.
    pub model: Option<&'a str>,
}

impl Parse<'_> {
    /// The class named by the first of `texts` whose words name one, else `Other`.
    pub fn class(&self, texts: &[&str]) -> FailureClass {
        texts
            .iter()
            .find_map(|t| (self.spec.classify)(t))
            .unwrap_or(FailureClass::Other)
    }

    /// A usage with only the configured model filled in.
    pub fn usage(&self) -> Usage {
        Usage {
            model: self.model.map(str::to_string),
            ..Usage::default()
        }
    }

    /// The one JSON object a client prints as its result (recognised by having one of `keys`),
    /// or the failure to report when there is none: the exit status and stderr tell why.
    pub fn json_result(
        &self,
        keys: &[&str],
        exit_code: Option<i32>,
        stdout: &str,
        stderr: &str,
    ) -> Result<Value, Box<AgentOutcome>> {
        match find_json_object(stdout).filter(|j| keys.iter().any(|k| j.get(k).is_some())) {
            Some(json) => Ok(json),
            None if exit_code == Some(0) => Err(Box::new(AgentOutcome::failed(
                self.class(&[stderr]),
                format!("{} printed no JSON result", self.spec.program),
                Usage::default(),
            ))),
            None => Err(Box::new(self.exit_failure(exit_code, stdout, stderr))),
        }
    }

    /// A failure for a process that exited non-zero without a machine-readable reason.
    pub fn exit_failure(&self, exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome {
        exit_failure_with(self.spec.classify, exit_code, stdout, stderr)
    }
}

/// [`super::exit_failure`] with the client's classification.
pub(crate) fn exit_failure_with(
    classify: fn(&str) -> Option<FailureClass>,
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
) -> AgentOutcome {
    let evidence = format!("{stderr}\n{stdout}");
    let class = classify(&evidence).unwrap_or(FailureClass::Other);
    let detail = tail_lines(
        if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        },
        3,
    );
    let status = match exit_code {
        Some(code) => format!("exited with code {code}"),
        None => "was killed by a signal".to_string(),
    };
    let reason = if detail.is_empty() {
        format!("the agent {status}")
    } else {
        format!("the agent {status}: {detail}")
    };
    AgentOutcome::failed(class, reason, Usage::default())
}

/// A coding-agent CLI configured by an `agents.yaml` agent.
pub struct Client {
    spec: &'static AdapterSpec,
    binary: String,
    model: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    permission_mode: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
}

impl Client {
    pub fn new(spec: &'static AdapterSpec, config: &AdapterConfig) -> Client {
        let mut env: Vec<(String, String)> = spec
            .fixed_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let (Some(var), Some(url)) = (spec.base_url_env, &config.base_url) {
            env.push((var.to_string(), url.clone()));
        }
        env.extend(config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Client {
            spec,
            binary: config
                .binary
                .clone()
                .unwrap_or_else(|| spec.program.to_string()),
            model: config.model.clone(),
            args: config.args.clone(),
            env,
            permission_mode: config.permission_mode.clone(),
            base_url: config.base_url.clone(),
            api_key_env: config.api_key_env.clone(),
        }
    }

    /// The client's table entry.
    pub fn spec(&self) -> &'static AdapterSpec {
        self.spec
    }
}

impl CliAdapter for Client {
    fn name(&self) -> &'static str {
        self.spec.name
    }

    fn binary(&self) -> &str {
        &self.binary
    }

    fn invocation(&self, request: &Request) -> Invocation {
        let model = request.model.as_ref().or(self.model.as_ref());
        let attempt_dir = request
            .prompt_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(&request.workdir);
        let extra = self
            .spec
            .settings
            .map(|settings| {
                settings(&Settings {
                    base_url: self.base_url.as_deref(),
                    model: model.map(String::as_str),
                    api_key_env: self.api_key_env.as_deref(),
                    attempt_dir,
                    git_worktree: request.git_worktree,
                })
            })
            .unwrap_or_default();
        let large = request.prompt.len() > LARGE_PROMPT;
        let mut stdin = None;
        let mut argv = vec![self.binary.clone()];
        for arg in self.spec.argv {
            match *arg {
                Arg::Lit(text) => argv.push(text.to_string()),
                Arg::Prompt => match self.spec.large_prompt {
                    Some(LargePrompt::Stdin(instead)) if large => {
                        argv.extend(instead.iter().map(|a| a.to_string()));
                        stdin = Some(request.prompt.as_bytes().to_vec());
                    }
                    Some(LargePrompt::File(flag)) if large => {
                        argv.extend([flag.to_string(), request.prompt_file.display().to_string()]);
                    }
                    _ => argv.push(request.prompt.clone()),
                },
                Arg::FlagPrompt(flag) => match self.spec.large_prompt {
                    Some(LargePrompt::File(instead)) if large => {
                        argv.extend([
                            instead.to_string(),
                            request.prompt_file.display().to_string(),
                        ]);
                    }
                    _ => argv.extend([flag.to_string(), request.prompt.clone()]),
                },
                Arg::StdinPrompt(text) => {
                    argv.push(text.to_string());
                    stdin = Some(request.prompt.as_bytes().to_vec());
                }
                Arg::Model(flag) => {
                    if let Some(model) = extra.model.as_ref().or(model) {
                        let model = match self.spec.base_url_model_prefix {
                            Some(prefix) if self.base_url.is_some() && !model.contains('/') => {
                                format!("{prefix}{model}")
                            }
                            _ => model.clone(),
                        };
                        argv.extend([flag.to_string(), model]);
                    }
                }
                Arg::MaxTurns(flag) => {
                    if let Some(turns) = request.max_turns {
                        argv.extend([flag.to_string(), turns.to_string()]);
                    }
                }
                Arg::MaxBudget(flag) => {
                    // A cap of zero is refused by the client ("must be a positive number"): an
                    // unpriced model has no cap of its own.
                    if let Some(budget) = request.max_budget_usd.filter(|b| *b > 0.0) {
                        argv.extend([flag.to_string(), format!("{budget}")]);
                    }
                }
                Arg::PermissionMode(flag, default) => match self.permission_mode.as_deref() {
                    None => argv.extend([flag.to_string(), default.to_string()]),
                    Some("") => {}
                    Some(mode) => argv.extend([flag.to_string(), mode.to_string()]),
                },
                Arg::Args => {
                    argv.extend(extra.args.iter().cloned());
                    argv.extend(self.args.iter().cloned());
                }
            }
        }
        let mut env = self.env.clone();
        // A child inherits the engine's `PWD`; OpenCode takes its project directory from it.
        if !request.workdir.as_os_str().is_empty() {
            env.push(("PWD".into(), request.workdir.display().to_string()));
        }
        env.extend(extra.env);
        Invocation {
            argv,
            stdin,
            env,
            files: extra.files,
        }
    }

    fn parse(&self, exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome {
        let cx = Parse {
            spec: self.spec,
            model: self.model.as_deref(),
        };
        (self.spec.parse)(&cx, exit_code, stdout, stderr)
    }

    fn version_args(&self) -> Vec<String> {
        self.spec
            .version_args
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn key_env(&self) -> &[&'static str] {
        self.spec.key_env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_is_a_known_adapter_with_a_program_and_keys() {
        let mut names: Vec<&str> = CLIENTS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CLIENTS.len(), "a client is listed twice");
        for client in CLIENTS {
            assert!(
                super::super::ADAPTERS.contains(&client.name),
                "{}",
                client.name
            );
            assert!(!client.program.is_empty() && !client.key_env.is_empty());
            assert_eq!(
                client
                    .argv
                    .iter()
                    .filter(|a| matches!(a, Arg::Prompt | Arg::FlagPrompt(_) | Arg::StdinPrompt(_)))
                    .count(),
                1,
                "{}: the prompt is one argument",
                client.name
            );
        }
    }
}
