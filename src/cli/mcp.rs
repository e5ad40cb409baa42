//! `spectacular mcp`: serve the engine to an MCP client over stdin/stdout. Nothing else is
//! printed on stdout (it carries the protocol); logs go to stderr.

use super::{Context, Exit, Failure, Outcome};
use crate::mcp::{Cli, Server};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(context: &Context, _args: Args) -> Outcome {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("cannot find the spectacular binary: {e}")))?;
    let store = context.store();
    let server = Server::new(Cli {
        exe,
        store: store.dir.clone(),
        cwd: context.cwd.clone(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(server.serve_stdio())
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(Exit::Success)
}
