//! `spectacular mcp`: the engine as a Model Context Protocol server over stdio (the official
//! Rust SDK, `rmcp`), for IDE agents and chat clients.
//!
//! Every tool runs the `spectacular` command a person would type, with `--json`
//! (`command.rs`): the same code paths as the CLI (`cli/`, `query/`, the inbox of a running
//! engine), and never a print on the server's own stdout, which carries the protocol. A run is
//! started in a process group of its own and outlives the server (`runs.rs`); its log is
//! followed and each event sent to the client as a notification. Resources are the store's
//! runs, their events and their reports (`resources.rs`).
//!
//! Errors are MCP errors: arguments that do not fit a tool and refusals of the CLI (an unknown
//! run, a gate that does not wait) are `invalid params` with the CLI's message; an invalid
//! mission is `invalid params` whose `data` holds the located diagnostics
//! (`{ valid, errors, warnings, diagnostics: [{ code, file, line, column, message, help }] }`).

mod command;
mod resources;
mod runs;
mod tools;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{json, Value};

pub use command::Cli;
use command::Said;
use tools::Call;

/// What can go wrong serving a call (each becomes an MCP error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{tool}`: the argument `{argument}` {problem}")]
    Argument {
        tool: &'static str,
        argument: String,
        problem: String,
    },
    #[error("no tool `{0}`: `tools/list` names the tools")]
    UnknownTool(String),
    #[error("cannot run `{}`: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("`spectacular {command}` did not end within {}s", after.as_secs())]
    Timeout { command: String, after: Duration },
    #[error("the run did not start: {said}")]
    NoRunId { said: String },
    #[error("{0}")]
    Refused(String),
    #[error("{message}")]
    Invalid { message: String, diagnostics: Value },
    #[error("{0}")]
    Internal(String),
    #[error("cannot serve MCP on stdio: {0}")]
    Serve(String),
}

impl From<Error> for McpError {
    fn from(error: Error) -> McpError {
        let message = error.to_string();
        match error {
            Error::Invalid { diagnostics, .. } => {
                McpError::invalid_params(message, Some(diagnostics))
            }
            Error::Argument { .. }
            | Error::UnknownTool(_)
            | Error::Refused(_)
            | Error::NoRunId { .. } => McpError::invalid_params(message, None),
            _ => McpError::internal_error(message, None),
        }
    }
}

impl From<crate::record::Error> for Error {
    fn from(error: crate::record::Error) -> Error {
        Error::Refused(error.to_string())
    }
}

/// The server: one store, one working directory.
#[derive(Clone)]
pub struct Server {
    cli: Cli,
}

impl Server {
    pub fn new(cli: Cli) -> Server {
        Server { cli }
    }

    /// Serve on stdin/stdout until the client closes them.
    pub async fn serve_stdio(self) -> Result<(), Error> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Error::Serve(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| Error::Serve(e.to_string()))?;
        Ok(())
    }

    fn store(&self) -> crate::record::Store {
        crate::record::Store::locate(&self.cli.cwd, Some(&self.cli.store))
    }

    async fn call(
        &self,
        call: Call,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, Error> {
        match call {
            Call::Json(args) => {
                let said = self.cli.run(&args).await?;
                if !said.success() {
                    return Err(refusal(&said));
                }
                Ok(CallToolResult::structured(as_object(parse_json(&said)?)))
            }
            Call::Validate(args) => {
                let said = self.cli.run(&args).await?;
                let report = match said.code {
                    Some(0) | Some(65) => parse_json(&said)?,
                    _ => return Err(refusal(&said)),
                };
                if said.code == Some(65) {
                    return Err(Error::Invalid {
                        message: invalid_message(&report),
                        diagnostics: report,
                    });
                }
                Ok(CallToolResult::structured(report))
            }
            Call::Act {
                args,
                run,
                resume,
                after_answer,
            } => {
                let said = self.cli.run(&args).await?;
                if !said.success() {
                    return Err(refusal(&said));
                }
                let resumed = resume && self.resume_if_stopped(&run, after_answer)?;
                if resumed {
                    // The resumed run's events from here on reach the client too.
                    let run_id = self.store().resolve_run(&run)?;
                    let log = self.store().events_path(&run_id);
                    let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
                    tokio::spawn(runs::follow(context.peer.clone(), log, run_id, from));
                }
                Ok(CallToolResult::structured(json!({
                    "message": said.stdout.trim(),
                    "resumed": resumed,
                })))
            }
            Call::Waiting(run) => {
                let store = self.store();
                let run_id = store.resolve_run(&run)?;
                let events = store.read_events(&run_id)?;
                let waiting = crate::dashboard::api::waiting(&events);
                Ok(CallToolResult::structured(json!({
                    "run_id": run_id,
                    "waiting": waiting,
                })))
            }
            Call::Start(args) => {
                let run_id = runs::start(&self.cli, &args).await?;
                let log = self.store().events_path(&run_id);
                tokio::spawn(runs::follow(context.peer.clone(), log, run_id.clone(), 0));
                Ok(CallToolResult::structured(json!({
                    "run_id": run_id,
                    "resource": format!("spectacular://runs/{run_id}"),
                    "message": format!("run {run_id} started; its events follow as notifications"),
                })))
            }
        }
    }

    /// When no engine runs `run` and it stopped to wait with nothing left to wait on (after an
    /// answer: no question of it still open), start `spectacular resume` for it, in a process
    /// group of its own. Whether it was started.
    fn resume_if_stopped(&self, run: &str, after_answer: bool) -> Result<bool, Error> {
        use crate::record::{self, RunStatus};
        let store = self.store();
        let run_id = store.resolve_run(run)?;
        if record::lock::is_locked(&store.run_dir(&run_id)) {
            return Ok(false);
        }
        let events = store.read_events(&run_id)?;
        let summary = record::fold(&events);
        if !matches!(summary.status, RunStatus::Suspended | RunStatus::Running) {
            return Ok(false);
        }
        if after_answer {
            let open = crate::dashboard::api::waiting(&events).iter().any(|w| {
                w["questions"]
                    .as_array()
                    .is_some_and(|qs| qs.iter().any(|q| q["answered"] == json!(false)))
            });
            if open {
                return Ok(false);
            }
        }
        let mut resume = std::process::Command::new(&self.cli.exe);
        resume
            .arg("--color=never")
            .arg("--store")
            .arg(&self.cli.store)
            .args(["resume", "--", &run_id])
            .current_dir(&self.cli.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut resume, 0);
        let mut child = resume.spawn().map_err(|e| Error::Spawn {
            exe: self.cli.exe.clone(),
            source: e,
        })?;
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(true)
    }
}

/// A CLI command that said no: a usage error or invalid input is the caller's to fix, anything
/// else is the server's.
fn refusal(said: &Said) -> Error {
    match said.code {
        Some(2) | Some(65) => Error::Refused(said.message()),
        _ => Error::Internal(said.message()),
    }
}

fn parse_json(said: &Said) -> Result<Value, Error> {
    serde_json::from_str(said.stdout.trim())
        .map_err(|e| Error::Internal(format!("the command's JSON did not read: {e}")))
}

/// Structured content is an object: a list is wrapped as `{ "items": [...] }`.
fn as_object(value: Value) -> Value {
    if value.is_object() {
        value
    } else {
        json!({ "items": value })
    }
}

/// "invalid mission: 2 errors" and each error as `file:line:col: code message`.
fn invalid_message(report: &Value) -> String {
    let mut message = format!(
        "the mission is invalid: {} error(s), {} warning(s)",
        report["errors"], report["warnings"]
    );
    for d in report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .take(20)
    {
        let place = match (d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64()) {
            (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
            (Some(f), _, _) => f.to_string(),
            _ => "?".into(),
        };
        message.push_str(&format!(
            "\n{place}: {} {}: {}",
            d["severity"].as_str().unwrap_or("error"),
            d["code"].as_str().unwrap_or_default(),
            d["message"].as_str().unwrap_or_default()
        ));
        if let Some(help) = d["help"].as_str() {
            message.push_str(&format!("\n  help: {help}"));
        }
    }
    message
}

impl ServerHandler for Server {
    // Logging (deprecated by SEP-2577) carries a started run's events: see `runs.rs`.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_resources()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new(
            "spectacular",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Spectacular runs spec-driven coding missions. validate_mission checks a mission; \
             start_run starts one and returns its run id at once (events follow as log \
             notifications); run_status, board, plan, cost_report and explain_decisions read a \
             run; answer, approve and cancel steer it. Resources: spectacular://runs and \
             spectacular://runs/{run}/events|report.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = tools::TOOLS
            .iter()
            .map(|t| {
                let mut annotations = ToolAnnotations::new();
                annotations.read_only_hint = Some(t.read_only);
                annotations.destructive_hint = Some(t.name == "cancel");
                annotations.open_world_hint = Some(false);
                Tool::new(t.name, t.description, t.input_schema()).annotate(annotations)
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tool = tools::find(&request.name)
            .ok_or_else(|| Error::UnknownTool(request.name.to_string()))?;
        let arguments = request.arguments.unwrap_or_default();
        let args = tools::Args::new(tool, &arguments)?;
        let call = tools::call(&args)?;
        Ok(self.call(call, &context).await?.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list(
            &self.store(),
        )?))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        Ok(resources::read(&self.cli, &request.uri).await?.into())
    }
}
