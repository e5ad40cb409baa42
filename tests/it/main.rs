//! The integration tests: one binary, shared helpers in `support`.

mod cli;
mod diagnostics;
mod fuzz;
mod hostile;
mod missions;
mod support;
