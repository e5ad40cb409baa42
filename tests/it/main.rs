//! The integration tests: one binary, shared helpers in `support`.

mod runtime;
mod support;
