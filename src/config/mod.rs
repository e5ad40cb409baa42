//! Config: the layered configuration files beside missions: the model catalog (`models.yaml`)
//! and the day and month budgets (`budgets.yaml`). Layers, lowest to highest precedence:
//! built-in (compiled in), user (`<config dir>/…`), project (`.spectacular/…`). Every file is
//! checked against its JSON Schema with located diagnostics, like missions (`crate::conform`).

pub mod budgets;
pub mod mcp;
pub mod models;
pub mod notify;
pub mod project;

pub use crate::conform::check_file;
