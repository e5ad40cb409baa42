//! The integration tests: one binary, shared helpers in `support`.

mod docs;
mod runtime;
mod support;
