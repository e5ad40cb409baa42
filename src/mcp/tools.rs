//! The tools: their names, descriptions and input schemas, and how each call becomes the
//! argv of the CLI command that does the same thing.

use serde_json::{json, Map, Value};

use super::Error;

/// How a tool is carried out.
#[derive(Debug, PartialEq, Eq)]
pub enum Call {
    /// A command whose `--json` output is the result.
    Json(Vec<String>),
    /// `validate --format json`: diagnostics; errors make the call an error.
    Validate(Vec<String>),
    /// A command that records something (approve, answer, cancel): what it printed. With
    /// `resume`, a run that no engine runs is resumed once nothing is left to wait on.
    Act {
        args: Vec<String>,
        run: String,
        resume: bool,
        after_answer: bool,
    },
    /// `spectacular run`, answered with the run id as soon as there is one.
    Start(Vec<String>),
    /// What a run waits for from a person: its gates and their numbered questions, read from
    /// its log (the dashboard's read side; `spectacular answer <run>` prints the same as text).
    Waiting(String),
}

/// One tool of the server.
pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    pub read_only: bool,
    /// (name, JSON type, description, required)
    pub params: &'static [(&'static str, &'static str, &'static str, bool)],
}

const RUN: (&str, &str, &str, bool) = (
    "run",
    "string",
    "The run id, a unique prefix of it, or `last` (the default).",
    false,
);
const RUN_REQUIRED: (&str, &str, &str, bool) = (
    "run",
    "string",
    "The run id, a unique prefix of it, or `last`.",
    true,
);

pub const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "validate_mission",
        description: "Check a mission (a path or a name) and return every diagnostic with its file:line:col and a fix. Invalid missions are an error carrying the diagnostics.",
        read_only: true,
        params: &[("mission", "string", "A mission file or directory, or a mission name.", true)],
    },
    ToolDef {
        name: "analyse_spec",
        description: "Analyse a spec: structure, problems, complexity with its signals, questions.",
        read_only: true,
        params: &[
            ("spec", "string", "The spec file (Markdown), relative to the project.", true),
            ("repo", "string", "The repository the spec is about (default: the project).", false),
            ("no_repo", "boolean", "Analyse the spec alone.", false),
        ],
    },
    ToolDef {
        name: "start_run",
        description: "Start a run of a mission (a path, a name, or a spec's Markdown file) and return its id at once; the run goes on in the background and each of its events is sent as a log notification. Follow it with run_status and board.",
        read_only: false,
        params: &[
            ("mission", "string", "A mission file or directory, a mission name, or a spec file.", true),
            ("inputs", "object", "The mission's inputs, name to value (strings; lists as `a,b` or a JSON array).", false),
            ("max_parallel", "integer", "At most this many attempts at once (default 4).", false),
        ],
    },
    ToolDef {
        name: "run_status",
        description: "The phases of a run: state, attempts, durations, why each waits.",
        read_only: true,
        params: &[RUN],
    },
    ToolDef {
        name: "list_runs",
        description: "The runs in the store, newest first, with their status.",
        read_only: true,
        params: &[],
    },
    ToolDef {
        name: "answer",
        description: "The questions a run asks about its spec; with `question` and `answer`, answer one. With `resume` (the default) a stopped run goes on once every question is answered.",
        read_only: false,
        params: &[
            RUN_REQUIRED,
            ("question", "integer", "The question's number.", false),
            ("answer", "string", "The answer.", false),
            ("phase", "string", "The phase that asks, when several do.", false),
            ("resume", "boolean", "Resume a stopped run once nothing is left to answer (default true).", false),
        ],
    },
    ToolDef {
        name: "approve",
        description: "Approve (or reject) an approval gate of a run. With `resume` (the default) a stopped run goes on.",
        read_only: false,
        params: &[
            RUN_REQUIRED,
            ("phase", "string", "The gate's phase.", true),
            ("reject", "boolean", "Reject instead of approving.", false),
            ("comment", "string", "Why.", false),
            ("resume", "boolean", "Resume a stopped run (default true).", false),
        ],
    },
    ToolDef {
        name: "cancel",
        description: "Cancel a run: its attempts are stopped; it can be resumed later.",
        read_only: false,
        params: &[RUN_REQUIRED],
    },
    ToolDef {
        name: "explain_decisions",
        description: "Why each phase of a run went to the agent and model it did: the policy decisions recorded.",
        read_only: true,
        params: &[RUN, ("phase", "string", "Only this phase.", false)],
    },
    ToolDef {
        name: "cost_report",
        description: "What agent calls cost, of one run or of all, grouped by agent, model, phase, mission or day.",
        read_only: true,
        params: &[
            ("run", "string", "One run (id, prefix or `last`); all runs when absent.", false),
            ("by", "string", "agent, model, phase, mission or day.", false),
            ("since", "string", "Only calls this recent, e.g. `7d`.", false),
        ],
    },
    ToolDef {
        name: "board",
        description: "The work packages of a run and their state: planned, doing, review, done.",
        read_only: true,
        params: &[RUN],
    },
    ToolDef {
        name: "plan",
        description: "The checked plan of a run: work packages, dependencies, files, coverage, lanes, cost.",
        read_only: true,
        params: &[RUN, ("model", "string", "Price the plan with this model.", false)],
    },
];

impl ToolDef {
    /// The JSON Schema of the tool's arguments.
    pub fn input_schema(&self) -> Map<String, Value> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, kind, description, needed) in self.params {
            let mut property = json!({ "type": kind, "description": description });
            if *kind == "object" {
                property["additionalProperties"] = json!({ "type": "string" });
            }
            if *name == "by" {
                property["enum"] = json!(["agent", "model", "phase", "mission", "day"]);
            }
            properties.insert((*name).into(), property);
            if *needed {
                required.push(json!(name));
            }
        }
        let schema = json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        match schema {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// The arguments of one call, checked against the tool's parameters.
pub struct Args<'a> {
    tool: &'static ToolDef,
    map: &'a Map<String, Value>,
}

/// The longest text argument taken (a mission path, an answer).
const TEXT_CAP: usize = 64 * 1024;

impl<'a> Args<'a> {
    pub fn new(tool: &'static ToolDef, map: &'a Map<String, Value>) -> Result<Args<'a>, Error> {
        for (key, value) in map {
            let Some((_, kind, _, _)) = tool.params.iter().find(|(n, ..)| n == key) else {
                return Err(bad(tool, key, "is not an argument of this tool"));
            };
            let fits = match *kind {
                "string" => value.as_str().is_some_and(|s| s.len() <= TEXT_CAP),
                "boolean" => value.is_boolean(),
                "integer" => value.as_u64().is_some_and(|n| n <= u32::MAX as u64),
                "object" => value.as_object().is_some_and(|o| {
                    o.len() <= 256
                        && o.values()
                            .all(|v| v.as_str().is_some_and(|s| s.len() <= TEXT_CAP))
                }),
                _ => false,
            };
            if !fits {
                return Err(bad(
                    tool,
                    key,
                    &format!("must be a {kind} (texts up to 64 KiB)"),
                ));
            }
        }
        for (name, _, _, needed) in tool.params {
            if *needed && !map.contains_key(*name) {
                return Err(bad(tool, name, "is required"));
            }
        }
        Ok(Args { tool, map })
    }

    fn text(&self, name: &str) -> Option<String> {
        self.map
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn flag(&self, name: &str) -> Option<bool> {
        self.map.get(name).and_then(Value::as_bool)
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.map.get(name).and_then(Value::as_u64)
    }

    fn run(&self) -> String {
        self.text("run").unwrap_or_else(|| "last".into())
    }
}

fn bad(tool: &ToolDef, key: &str, what: &str) -> Error {
    Error::Argument {
        tool: tool.name,
        argument: key.to_string(),
        problem: what.to_string(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The command a call runs. Options come first with their values attached (`--x=value`),
/// then `--`, then the positional values: nothing a client sends is read as an option.
pub fn call(args: &Args<'_>) -> Result<Call, Error> {
    let tool = args.tool;
    let mut argv: Vec<String>;
    let call = match tool.name {
        "validate_mission" => {
            argv = strings(&["validate", "--format=json", "--"]);
            argv.push(args.text("mission").unwrap_or_default());
            Call::Validate(argv)
        }
        "analyse_spec" => {
            argv = strings(&["analyse", "--json"]);
            if args.flag("no_repo") == Some(true) {
                argv.push("--no-repo".into());
            }
            if let Some(repo) = args.text("repo") {
                argv.push(format!("--repo={repo}"));
            }
            argv.push("--".into());
            argv.push(args.text("spec").unwrap_or_default());
            Call::Json(argv)
        }
        "start_run" => Call::Start(start_argv(args)?),
        "run_status" => Call::Json(with_run(&["status", "--json"], args)),
        "list_runs" => Call::Json(strings(&["runs", "--json"])),
        "board" => Call::Json(with_run(&["board", "--json"], args)),
        "plan" => {
            argv = strings(&["plan", "--json"]);
            if let Some(model) = args.text("model") {
                argv.push(format!("--model={model}"));
            }
            argv.extend(["--".into(), args.run()]);
            Call::Json(argv)
        }
        "explain_decisions" => {
            argv = strings(&["policy", "explain", "--json", "--"]);
            argv.push(args.run());
            if let Some(phase) = args.text("phase") {
                argv.push(phase);
            }
            Call::Json(argv)
        }
        "cost_report" => {
            argv = strings(&["cost", "--json"]);
            if let Some(by) = args.text("by") {
                argv.push(format!("--by={by}"));
            }
            if let Some(since) = args.text("since") {
                argv.push(format!("--since={since}"));
            }
            if let Some(run) = args.text("run") {
                argv.extend(["--".into(), run]);
            }
            Call::Json(argv)
        }
        "answer" => answer_call(args)?,
        "approve" => {
            argv = strings(&["approve"]);
            if args.flag("reject") == Some(true) {
                argv.push("--reject".into());
            }
            if let Some(comment) = args.text("comment").filter(|c| !c.trim().is_empty()) {
                argv.push(format!("--comment={comment}"));
            }
            argv.extend([
                "--".into(),
                args.run(),
                args.text("phase").unwrap_or_default(),
            ]);
            Call::Act {
                args: argv,
                run: args.run(),
                resume: args.flag("resume").unwrap_or(true),
                after_answer: false,
            }
        }
        "cancel" => Call::Act {
            args: vec!["cancel".into(), "--".into(), args.run()],
            run: args.run(),
            resume: false,
            after_answer: false,
        },
        other => return Err(Error::UnknownTool(other.to_string())),
    };
    Ok(call)
}

fn with_run(head: &[&str], args: &Args<'_>) -> Vec<String> {
    let mut argv = strings(head);
    argv.extend(["--".into(), args.run()]);
    argv
}

fn start_argv(args: &Args<'_>) -> Result<Vec<String>, Error> {
    let mut argv = strings(&["run"]);
    if let Some(n) = args.number("max_parallel") {
        argv.push(format!("--max-parallel={n}"));
    }
    if let Some(inputs) = args.map.get("inputs").and_then(Value::as_object) {
        for (name, value) in inputs {
            if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
                return Err(bad(
                    args.tool,
                    "inputs",
                    &format!("has a bad input name {name:?}"),
                ));
            }
            argv.push(format!(
                "--input={name}={}",
                value.as_str().unwrap_or_default()
            ));
        }
    }
    argv.extend(["--".into(), args.text("mission").unwrap_or_default()]);
    Ok(argv)
}

fn answer_call(args: &Args<'_>) -> Result<Call, Error> {
    let run = args.run();
    let mut argv = strings(&["answer"]);
    if let Some(phase) = args.text("phase") {
        argv.push(format!("--phase={phase}"));
    }
    match (args.number("question"), args.text("answer")) {
        (None, None) => Ok(Call::Waiting(run)),
        (Some(n), Some(text)) => {
            argv.extend(["--".into(), run.clone(), n.to_string(), text]);
            Ok(Call::Act {
                args: argv,
                run,
                resume: args.flag("resume").unwrap_or(true),
                after_answer: true,
            })
        }
        _ => Err(bad(
            args.tool,
            "answer",
            "goes with `question` (both, or neither to list the questions)",
        )),
    }
}

/// The tool of this name.
pub fn find(name: &str) -> Option<&'static ToolDef> {
    TOOLS.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(tool: &str, args: Value) -> Result<Call, Error> {
        let map = args.as_object().cloned().unwrap_or_default();
        let tool = find(tool).unwrap();
        call(&Args::new(tool, &map)?)
    }

    #[test]
    fn client_text_never_becomes_an_option() {
        let got = argv(
            "approve",
            json!({ "run": "--all", "phase": "-x", "comment": "--reject" }),
        );
        let Ok(Call::Act { args, .. }) = got else {
            panic!("{got:?}")
        };
        assert_eq!(args, ["approve", "--comment=--reject", "--", "--all", "-x"]);
        let Ok(Call::Start(args)) = argv(
            "start_run",
            json!({ "mission": "-m", "inputs": { "spec": "--x" } }),
        ) else {
            panic!()
        };
        assert_eq!(args, ["run", "--input=spec=--x", "--", "-m"]);
    }

    #[test]
    fn arguments_are_checked_against_the_tool() {
        let err = |tool, args| argv(tool, args).unwrap_err().to_string();
        assert!(err("board", json!({ "rn": "x" })).contains("`rn` is not an argument"));
        assert!(err("validate_mission", json!({})).contains("`mission` is required"));
        assert!(err("answer", json!({ "run": "x", "question": 1 })).contains("goes with"));
        assert!(err(
            "start_run",
            json!({ "mission": "m", "inputs": { "a=b": "c" } })
        )
        .contains("bad input name"));
    }
}
