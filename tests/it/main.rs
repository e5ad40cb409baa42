//! The integration tests: one binary, shared helpers in `support`.

mod docs;
mod events;
mod record;
mod runtime;
#[allow(dead_code)] // not every helper is used by every build of the tests
mod support;
