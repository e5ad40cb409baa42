//! MCP servers agents may be given (`mcp_servers` in `.spectacular/config.yaml`) and the
//! allow-lists of their tools (`mcp_tools`: per role, per agent), resolved into the [`Scope`]
//! one attempt gets. A policy can narrow a scope ([`Scope::narrow`]), never widen it.
//!
//! Tools are named `<server>.<tool>`; `<server>.*` is every tool of a server. An attempt gets
//! the tools its role's list and its agent's list both allow (only one list: that one; neither:
//! no MCP server at all), and only the servers those tools belong to.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One MCP server (stdio): the program and arguments that start it, and its environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    /// The program that starts the server (found on PATH, or a path).
    #[schemars(length(min = 1, max = 4096))]
    pub command: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Its environment. `${NAME}` passes the engine's variable `NAME` by reference (each client
    /// expands it itself: the value is never written into a file); anything else is literal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// `mcp_tools`: which tools of the `mcp_servers` each role and each agent may call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpTools {
    /// Role → tools (`planner: [github.search_issues, filesystem.*]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Vec<ToolName>>,
    /// Agent (as in `agents.yaml`) → tools.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, Vec<ToolName>>,
}

/// `<server>.<tool>` or `<server>.*`: letters, digits, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ToolName(
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,32}\.([A-Za-z0-9_-]{1,64}|\*)$"))] pub String,
);

/// A server's name: what tools are named after (`github` in `github.search_issues`).
pub fn is_server_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One allowed tool, or every tool of a server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allowed {
    pub server: String,
    /// `None`: every tool of the server.
    pub tool: Option<String>,
}

impl Allowed {
    pub fn parse(name: &str) -> Option<Allowed> {
        let (server, tool) = name.split_once('.')?;
        let tool_ok = tool == "*"
            || ((1..=64).contains(&tool.len())
                && tool
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        (is_server_name(server) && tool_ok).then(|| Allowed {
            server: server.to_string(),
            tool: (tool != "*").then(|| tool.to_string()),
        })
    }

    /// What both allow, if anything.
    fn meet(&self, other: &Allowed) -> Option<Allowed> {
        if self.server != other.server {
            return None;
        }
        match (&self.tool, &other.tool) {
            (None, t) | (t, None) => Some(Allowed {
                server: self.server.clone(),
                tool: t.clone(),
            }),
            (Some(a), Some(b)) if a == b => Some(self.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.server, self.tool.as_deref().unwrap_or("*"))
    }
}

/// The MCP servers and tools one attempt is given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    /// Only the servers some allowed tool belongs to.
    pub servers: BTreeMap<String, McpServer>,
    /// Sorted, without duplicates.
    pub allowed: Vec<Allowed>,
}

impl Scope {
    /// The scope of an attempt of `role` on `agent`.
    pub fn resolve(
        servers: &BTreeMap<String, McpServer>,
        tools: &McpTools,
        role: Option<&str>,
        agent: &str,
    ) -> Scope {
        let parse = |list: &Vec<ToolName>| -> Vec<Allowed> {
            list.iter().filter_map(|t| Allowed::parse(&t.0)).collect()
        };
        let by_role = role.and_then(|r| tools.roles.get(r)).map(parse);
        let by_agent = tools.agents.get(agent).map(parse);
        let allowed = match (by_role, by_agent) {
            (Some(a), Some(b)) => meet(&a, &b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Vec::new(),
        };
        Scope::of(servers, allowed)
    }

    fn of(servers: &BTreeMap<String, McpServer>, allowed: Vec<Allowed>) -> Scope {
        let mut allowed: Vec<Allowed> = allowed
            .into_iter()
            .filter(|a| servers.contains_key(&a.server))
            .collect();
        allowed.sort();
        allowed.dedup();
        // `s.*` covers `s.x`.
        let whole: Vec<String> = allowed
            .iter()
            .filter(|a| a.tool.is_none())
            .map(|a| a.server.clone())
            .collect();
        allowed.retain(|a| a.tool.is_none() || !whole.contains(&a.server));
        let servers = servers
            .iter()
            .filter(|(name, _)| allowed.iter().any(|a| &a.server == *name))
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        Scope { servers, allowed }
    }

    /// What a policy leaves of this scope: only what `to` allows too. A name `to` holds that this
    /// scope does not is ignored: a policy narrows, it never widens.
    pub fn narrow(&self, to: &[String]) -> Scope {
        let to: Vec<Allowed> = to.iter().filter_map(|t| Allowed::parse(t)).collect();
        Scope::of(&self.servers, meet(&self.allowed, &to))
    }

    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// The allowed tools as written in the configuration (`github.search_issues`).
    pub fn names(&self) -> Vec<String> {
        self.allowed.iter().map(Allowed::to_string).collect()
    }
}

fn meet(a: &[Allowed], b: &[Allowed]) -> Vec<Allowed> {
    a.iter()
        .flat_map(|x| b.iter().filter_map(move |y| x.meet(y)))
        .collect()
}

/// The servers and allow-lists of the project (`config.yaml`) and of a mission together: every
/// server of both (the project's wins a name both declare); for a role or agent both list, only
/// the tools both allow, else the one list there is.
pub fn combine(
    project: (&BTreeMap<String, McpServer>, &McpTools),
    mission: (&BTreeMap<String, McpServer>, &McpTools),
) -> (BTreeMap<String, McpServer>, McpTools) {
    let mut servers = mission.0.clone();
    servers.extend(project.0.iter().map(|(k, v)| (k.clone(), v.clone())));
    let merge = |a: &BTreeMap<String, Vec<ToolName>>, b: &BTreeMap<String, Vec<ToolName>>| {
        let mut out = a.clone();
        for (key, list) in b {
            let joined = match a.get(key) {
                Some(first) => {
                    let names =
                        |l: &Vec<ToolName>| l.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
                    meet_names(&names(first), &names(list))
                        .into_iter()
                        .map(ToolName)
                        .collect()
                }
                None => list.clone(),
            };
            out.insert(key.clone(), joined);
        }
        out
    };
    let tools = McpTools {
        roles: merge(&project.1.roles, &mission.1.roles),
        agents: merge(&project.1.agents, &mission.1.agents),
    };
    (servers, tools)
}

/// What two lists of tool names both allow, as names (malformed names allow nothing).
pub fn meet_names(a: &[String], b: &[String]) -> Vec<String> {
    let parse =
        |l: &[String]| -> Vec<Allowed> { l.iter().filter_map(|t| Allowed::parse(t)).collect() };
    meet(&parse(a), &parse(b))
        .iter()
        .map(Allowed::to_string)
        .collect()
}

/// `${NAME}`: the name of the engine's variable a value refers to.
pub fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    (!name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit()))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers() -> BTreeMap<String, McpServer> {
        ["github", "filesystem", "db"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    McpServer {
                        command: format!("{n}-server"),
                        args: Vec::new(),
                        env: BTreeMap::new(),
                    },
                )
            })
            .collect()
    }

    fn names(list: &[&str]) -> Vec<ToolName> {
        list.iter().map(|s| ToolName(s.to_string())).collect()
    }

    #[test]
    fn role_and_agent_lists_meet_and_only_their_servers_are_given() {
        let mut tools = McpTools::default();
        tools.roles.insert(
            "planner".into(),
            names(&["github.search_issues", "filesystem.*", "db.query"]),
        );
        tools.agents.insert(
            "claude".into(),
            names(&["filesystem.read_file", "github.*"]),
        );
        let scope = Scope::resolve(&servers(), &tools, Some("planner"), "claude");
        assert_eq!(
            scope.names(),
            ["filesystem.read_file", "github.search_issues"]
        );
        assert_eq!(
            scope.servers.keys().collect::<Vec<_>>(),
            ["filesystem", "github"]
        );

        // One list alone is the list; neither is nothing.
        let scope = Scope::resolve(&servers(), &tools, Some("planner"), "codex");
        assert_eq!(
            scope.names(),
            ["db.query", "filesystem.*", "github.search_issues"]
        );
        assert!(Scope::resolve(&servers(), &tools, Some("executor"), "codex").is_empty());
        assert!(Scope::resolve(&servers(), &tools, None, "codex")
            .servers
            .is_empty());
    }

    #[test]
    fn a_policy_narrows_and_never_widens() {
        let mut tools = McpTools::default();
        tools.roles.insert(
            "planner".into(),
            names(&["github.search_issues", "filesystem.*"]),
        );
        let scope = Scope::resolve(&servers(), &tools, Some("planner"), "claude");
        let narrowed = scope.narrow(&[
            "filesystem.read_file".into(),
            "github.*".into(),
            "db.query".into(),
            "bad name".into(),
        ]);
        assert_eq!(
            narrowed.names(),
            ["filesystem.read_file", "github.search_issues"]
        );
        assert!(!narrowed.servers.contains_key("db"));
        assert!(scope.narrow(&[]).is_empty());
    }

    #[test]
    fn a_mission_adds_servers_and_lists_but_cannot_widen_the_projects() {
        let mut project = McpTools::default();
        project
            .roles
            .insert("planner".into(), names(&["github.search_issues"]));
        let mut mission = McpTools::default();
        mission
            .roles
            .insert("planner".into(), names(&["github.*", "db.query"]));
        mission
            .roles
            .insert("executor".into(), names(&["db.query"]));
        let mut own = BTreeMap::new();
        own.insert(
            "github".to_string(),
            McpServer {
                command: "evil".into(),
                args: Vec::new(),
                env: BTreeMap::new(),
            },
        );
        let (servers, tools) = combine((&servers(), &project), (&own, &mission));
        assert_eq!(
            servers["github"].command, "github-server",
            "the project's server wins"
        );
        assert_eq!(tools.roles["planner"], names(&["github.search_issues"]));
        assert_eq!(tools.roles["executor"], names(&["db.query"]));
    }

    #[test]
    fn names_and_references_are_strict() {
        assert!(Allowed::parse("github.search_issues").is_some());
        assert!(Allowed::parse("github").is_none());
        assert!(Allowed::parse("../x.y").is_none());
        assert!(Allowed::parse("a.b;rm").is_none());
        assert_eq!(env_reference("${GITHUB_TOKEN}"), Some("GITHUB_TOKEN"));
        assert_eq!(env_reference("$GITHUB_TOKEN"), None);
        assert_eq!(env_reference("${A-B}"), None);
    }
}
