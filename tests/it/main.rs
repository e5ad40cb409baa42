//! The integration tests: one binary, shared helpers in `support`.

mod diagnostics;
mod fuzz;
mod hostile;
mod missions;
mod support;
