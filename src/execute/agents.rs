//! Agent configuration and the `command` invocation, as the runtime uses them. The adapters
//! themselves live in `crate::agents`; this module only re-exports what the event loop needs.

pub use crate::agents::command::{choose, load};
