//! The integration tests: one binary, shared helpers in `support`.

mod events;
mod record;
#[allow(dead_code)] // not every helper is used by every build of the tests
mod support;
