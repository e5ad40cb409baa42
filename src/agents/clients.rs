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
            Arg::Model("--model"),
            Arg::Args,
            Arg::Prompt,
        ],
        base_url_model_prefix: None,
        base_url_env: Some("OPENAI_BASE_URL"),
        fixed_env: &[],
        key_env: &["OPENAI_API_KEY", "CODEX_API_KEY"],
        version_args: &["--version"],
        parse: codex::parse,
        classify: classify_text,
    },
    AdapterSpec {
        name: "aider",
        program: "aider",
        argv: &[
            Arg::Lit("--message"),
            Arg::Prompt,
            Arg::Lit("--yes-always"),
            Arg::Lit("--no-stream"),
            Arg::Model("--model"),
            Arg::Args,
        ],
        base_url_model_prefix: Some("openai/"),
        base_url_env: Some("OPENAI_API_BASE"),
        fixed_env: &[],
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
            Arg::Args,
        ],
        base_url_model_prefix: None,
        base_url_env: Some("GOOGLE_GEMINI_BASE_URL"),
        fixed_env: &[],
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
        // OpenCode takes its endpoint from a provider block in `opencode.json`.
        base_url_env: None,
        fixed_env: &[],
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
    has_base_url: bool,
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
            has_base_url: config.base_url.is_some(),
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
        let mut argv = vec![self.binary.clone()];
        for arg in self.spec.argv {
            match *arg {
                Arg::Lit(text) => argv.push(text.to_string()),
                Arg::Prompt => argv.push(request.prompt.clone()),
                Arg::Model(flag) => {
                    if let Some(model) = request.model.as_ref().or(self.model.as_ref()) {
                        let model = match self.spec.base_url_model_prefix {
                            Some(prefix) if self.has_base_url && !model.contains('/') => {
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
                    if let Some(budget) = request.max_budget_usd {
                        argv.extend([flag.to_string(), format!("{budget}")]);
                    }
                }
                Arg::PermissionMode(flag, default) => match self.permission_mode.as_deref() {
                    None => argv.extend([flag.to_string(), default.to_string()]),
                    Some("") => {}
                    Some(mode) => argv.extend([flag.to_string(), mode.to_string()]),
                },
                Arg::Args => argv.extend(self.args.iter().cloned()),
            }
        }
        Invocation {
            argv,
            stdin: None,
            env: self.env.clone(),
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
                client.argv.iter().filter(|a| **a == Arg::Prompt).count(),
                1,
                "{}: the prompt is one argument",
                client.name
            );
        }
    }
}
