//! Config: the layered configuration files beside missions (`models.yaml` today;
//! `agents.yaml` moves here when the agent adapters land). Layers, lowest to highest
//! precedence: built-in (compiled in), user (`<config dir>/…`), project (`.spectacular/…`).
//! Every file is checked against its JSON Schema with located diagnostics, like missions.

pub mod budgets;
pub mod models;

pub use crate::conform::check_file;
