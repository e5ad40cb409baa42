//! Secrets in the environment: which variables hold provider keys and other credentials, their
//! values for redaction, and which of them a child process may keep.
//!
//! A variable is a secret when it is named by `agents.yaml` (`api_key_env`), by `models.yaml`
//! (`providers.<name>.key_env`), by a client's table entry ([`super::clients::CLIENTS`]), by
//! the built-in list [`BUILTIN_SECRET_ENV`], or when its name ends in one of
//! [`SECRET_SUFFIXES`] (`_API_KEY`, `_TOKEN`, `_SECRET`…). Values shorter than
//! [`MIN_SECRET_LEN`] are never treated as secrets: they would redact ordinary words (`1`,
//! `true`) and no real key is that short.
//!
//! The engine reads the environment once ([`process_env`]), gives every `(name, value)` of
//! [`secret_values`] to the log's redactor, and starts each child without the secret variables
//! [`child_env_removals`] names: a phase keeps only its agent's own key variables and the ones
//! listed under `pass_env`.

use std::collections::BTreeSet;

use super::clients::CLIENTS;
use super::config::{AgentConfig, AgentsFile};
use super::http::HttpProtocol;
use crate::config::models::Catalog;

/// Variables that hold provider keys or credentials whatever the configuration says.
pub const BUILTIN_SECRET_ENV: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
    "OPENROUTER_API_KEY",
    "OPENCODE_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "COHERE_API_KEY",
    "PERPLEXITY_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITLAB_TOKEN",
];

/// Name endings that mark a variable as a secret (compared in upper case): `MY_SERVICE_TOKEN`,
/// `acme_api_key`, `DB_PASSWORD`.
pub const SECRET_SUFFIXES: &[&str] = &[
    "_API_KEY",
    "_APIKEY",
    "_ACCESS_KEY",
    "_SECRET_KEY",
    "_SECRET",
    "_TOKEN",
    "_PASSWORD",
];

/// Values shorter than this are never treated as secrets.
pub const MIN_SECRET_LEN: usize = 8;

/// Does this variable's name alone say it holds a secret ([`SECRET_SUFFIXES`])?
pub fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// The variables named as holding secrets: the built-in list, every client's key variables,
/// the HTTP protocols' default key variables, `api_key_env` and `pass_env` of every agent in
/// `agents`, and `key_env` of every provider in `catalog`. Variables that match [`SECRET_SUFFIXES`] are
/// secrets too, without being listed here.
pub fn secret_env_names(agents: &AgentsFile, catalog: &Catalog) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = BUILTIN_SECRET_ENV.iter().map(|s| s.to_string()).collect();
    for client in CLIENTS {
        names.extend(client.key_env.iter().map(|s| s.to_string()));
    }
    for protocol in [HttpProtocol::OpenAiChat, HttpProtocol::AnthropicMessages] {
        names.insert(protocol.default_key_env().to_string());
    }
    for agent in agents.agents.values() {
        names.extend(agent.api_key_env.iter().cloned());
        names.extend(agent.pass_env.iter().cloned());
    }
    for provider in catalog.providers.values() {
        names.extend(provider.key_env.iter().cloned());
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Is `name` a secret variable: listed in `names` or matching [`SECRET_SUFFIXES`]?
pub fn is_secret(names: &BTreeSet<String>, name: &str) -> bool {
    names.contains(name) || is_secret_env_name(name)
}

/// The `(name, value)` of every secret variable set in `env` (listed in `names` or matching
/// the suffixes) with a value of at least [`MIN_SECRET_LEN`] characters, sorted by name: what
/// the log's redactor replaces.
pub fn secret_values(names: &BTreeSet<String>, env: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = env
        .iter()
        .filter(|(name, value)| is_secret(names, name) && value.trim().len() >= MIN_SECRET_LEN)
        .cloned()
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

/// The environment of this process: every variable whose name and value are UTF-8 (the others
/// cannot be named in a configuration file, and are left as they are).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The secret variables an agent's client needs: its client's key variables (from the table),
/// the HTTP protocol's default key variable, its `api_key_env` and its `pass_env`.
pub fn agent_env_names(agent: &AgentConfig) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Some(client) = super::clients::client_spec(&agent.adapter) {
        names.extend(client.key_env.iter().map(|s| s.to_string()));
    }
    if let Some(protocol) = HttpProtocol::from_adapter(&agent.adapter) {
        names.insert(protocol.default_key_env().to_string());
    }
    names.extend(agent.api_key_env.iter().cloned());
    names.extend(agent.pass_env.iter().cloned());
    names
}

/// The secret variables of `env` that a child must not inherit: every variable that
/// [`is_secret`] (whatever its value), except those its agent needs ([`agent_env_names`], when
/// the phase runs an agent) and those in `pass_env` (what the phase passes explicitly). Sorted;
/// the engine removes each from the child's environment before it adds the invocation's own
/// variables.
pub fn child_env_removals(
    names: &BTreeSet<String>,
    agent: Option<&AgentConfig>,
    pass_env: &[String],
    env: &[(String, String)],
) -> Vec<String> {
    let keep: BTreeSet<String> = agent
        .map(agent_env_names)
        .unwrap_or_default()
        .into_iter()
        .chain(pass_env.iter().cloned())
        .collect();
    let mut removed: Vec<String> = env
        .iter()
        .map(|(name, _)| name)
        .filter(|name| is_secret(names, name) && !keep.contains(*name))
        .cloned()
        .collect();
    removed.sort();
    removed.dedup();
    removed
}

#[cfg(test)]
mod tests {
    use super::super::{cli_adapter, command, secrets_in};
    use super::*;
    use crate::config::models::ProviderSpec;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn agents(yaml: &str) -> AgentsFile {
        super::super::config::parse(yaml, "agents.yaml").unwrap()
    }

    #[test]
    fn names_come_from_agents_yaml_models_yaml_the_clients_and_the_builtin_list() {
        let file = agents(
            "agents:\n  local:\n    adapter: command\n    argv: [x]\n    api_key_env: ACME_KEY\n    pass_env: [ACME_DATABASE_URL]\n",
        );
        let mut catalog = Catalog::default();
        catalog.providers.insert(
            "acme".into(),
            ProviderSpec {
                key_env: vec!["ACME_PROVIDER_CREDENTIAL".into()],
            },
        );
        let names = secret_env_names(&file, &catalog);
        for name in [
            "ACME_KEY",
            "ACME_PROVIDER_CREDENTIAL",
            "ACME_DATABASE_URL",
            "ANTHROPIC_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "CODEX_API_KEY",
        ] {
            assert!(names.contains(name), "{name} is missing from {names:?}");
        }
        assert!(!names.contains("PATH"));
    }

    #[test]
    fn the_suffix_pattern_marks_unlisted_secrets() {
        for name in [
            "MY_SERVICE_TOKEN",
            "acme_api_key",
            "DB_PASSWORD",
            "STRIPE_SECRET_KEY",
        ] {
            assert!(is_secret_env_name(name), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "TOKENIZERS_PARALLELISM",
            "SSH_AUTH_SOCK",
            "KEYMAP",
        ] {
            assert!(!is_secret_env_name(name), "{name}");
        }
    }

    #[test]
    fn values_skip_empty_and_short_ones_and_keep_their_names() {
        let names: BTreeSet<String> = ["ACME_KEY".to_string()].into();
        let values = secret_values(
            &names,
            &env(&[
                ("ACME_KEY", "acme-0123456789"),
                ("OTHER_API_KEY", "sk-other-0123456789"),
                ("SHORT_TOKEN", "1"),
                ("EMPTY_SECRET", ""),
                ("HOME", "/home/someone-long-enough"),
            ]),
        );
        assert_eq!(
            values,
            env(&[
                ("ACME_KEY", "acme-0123456789"),
                ("OTHER_API_KEY", "sk-other-0123456789"),
            ])
        );
    }

    #[test]
    fn a_child_keeps_only_its_agents_keys_and_what_is_passed() {
        let file = agents(
            "agents:\n  claude:\n    adapter: claude-code\n  tool:\n    adapter: command\n    argv: [x]\n    api_key_env: ACME_KEY\n    pass_env: [GITHUB_TOKEN]\n",
        );
        let names = secret_env_names(&file, &Catalog::default());
        let environment = env(&[
            ("PATH", "/usr/bin"),
            ("ANTHROPIC_API_KEY", "sk-ant-0123456789"),
            ("OPENAI_API_KEY", "sk-openai-0123456789"),
            ("ACME_KEY", "acme-0123456789"),
            ("GITHUB_TOKEN", "ghp_0123456789"),
            ("MY_SERVICE_TOKEN", "x"),
        ]);
        let claude = &file.agents["claude"];
        assert_eq!(
            child_env_removals(&names, Some(claude), &[], &environment),
            [
                "ACME_KEY",
                "GITHUB_TOKEN",
                "MY_SERVICE_TOKEN",
                "OPENAI_API_KEY"
            ]
        );
        let tool = &file.agents["tool"];
        assert_eq!(
            child_env_removals(&names, Some(tool), &[], &environment),
            ["ANTHROPIC_API_KEY", "MY_SERVICE_TOKEN", "OPENAI_API_KEY"]
        );
        // A phase without an agent keeps no secret unless it passes one explicitly.
        assert_eq!(
            child_env_removals(&names, None, &["OPENAI_API_KEY".into()], &environment),
            [
                "ACME_KEY",
                "ANTHROPIC_API_KEY",
                "GITHUB_TOKEN",
                "MY_SERVICE_TOKEN"
            ]
        );
    }

    #[test]
    fn a_command_agents_output_is_redacted_of_every_secret_in_the_environment() {
        // No `api_key_env`: the agent names no key, and still must not leak one.
        let file = command::parse_agents_file(
            "agents:\n  tool:\n    adapter: command\n    argv: [tool]\n",
            "agents.yaml",
        )
        .unwrap();
        let config = &file.agents["tool"];
        let adapter = cli_adapter("command", config).unwrap();
        let env: Vec<(String, String)> = [
            ("OPENAI_API_KEY", "sk-openai-canary-0123456789"),
            ("ACME_SERVICE_TOKEN", "acme-canary-0123456789"),
            ("HOME", "/home/canary-0123456789"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let secrets = secrets_in(Some(adapter.as_ref()), config, &env);
        let outcome = adapter
            .parse(
                Some(0),
                "keys: sk-openai-canary-0123456789 acme-canary-0123456789 in /home/canary-0123456789",
                "",
            )
            .redacted(&secrets);
        assert_eq!(
            outcome.text.as_deref(),
            Some("keys: [REDACTED] [REDACTED] in /home/canary-0123456789")
        );
    }
}
