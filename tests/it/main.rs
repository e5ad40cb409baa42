//! The integration tests: one binary, shared helpers in `support`.

mod diagnostics;
mod fuzz;
mod support;
