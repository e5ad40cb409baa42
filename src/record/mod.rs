//! Record: events, the append-only JSONL log per run (the authority), and the SQLite
//! projection (rebuildable from the logs at any time).

pub mod event;

pub use event::{Event, EventData};
