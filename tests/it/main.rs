//! The integration tests: one binary, shared helpers in `support`.

mod agents;
mod cli;
mod diagnostics;
mod docs;
mod events;
mod expressions;
mod fake_llm;
mod fuzz;
mod hostile;
mod missions;
mod policy;
mod record;
mod runtime;
mod support;
