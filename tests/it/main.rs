//! The integration tests: one binary, shared helpers in `support`.

mod agents;
mod budget;
mod cli;
mod diagnostics;
mod docs;
mod durability;
mod events;
mod expressions;
mod fake_llm;
mod fuzz;
mod hostile;
mod missions;
mod policy;
mod real_clients;
mod record;
mod replay;
mod runtime;
mod support;
