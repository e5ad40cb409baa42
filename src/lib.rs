//! Spectacular: an embedded workflow engine for spec-driven AI coding.
//!
//! A mission (`mission.yaml`) flows through the stages `load → validate → plan`, each in its
//! own module; the command line (`cli`) sits on top. The small public API:
//!
//! ```no_run
//! let cwd = std::env::current_dir().unwrap();
//! let located = spectacular::load::locate("software-dev", &cwd).unwrap();
//! let loaded = spectacular::load::load(located).unwrap();
//! let validated = spectacular::validate::validate(&loaded, &cwd);
//! if let Some(mission) = validated.mission {
//!     let plan = spectacular::plan::plan(mission);
//!     println!("{} phases in {} layers", plan.len(), plan.layers().len());
//! }
//! ```

pub mod agents;
pub mod check;
pub mod cli;
pub mod config;
pub mod conform;
pub mod dashboard;
pub mod diag;
pub mod execute;
pub mod expr;
pub mod forge;
pub mod git;
pub mod knowledge;
pub mod load;
pub mod mcp;
pub mod model;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod project;
pub mod prompt;
pub mod query;
pub mod record;
pub mod schedule;
pub mod serve;
pub mod spec;
pub mod sync;
pub mod tasks;
pub mod validate;
