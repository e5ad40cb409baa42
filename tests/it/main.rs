//! The integration tests: one binary, shared helpers in `support`.

mod agents;
mod book;
mod budget;
mod cli;
mod completions;
mod diagnostics;
mod docs;
mod durability;
mod events;
mod expressions;
mod fake_llm;
mod fuzz;
mod hostile;
mod init;
mod missions;
mod policy;
mod read_side;
mod real_clients;
mod record;
mod replay;
mod runtime;
mod secrets;
mod spec;
mod support;
mod tasks;
mod whatif;
