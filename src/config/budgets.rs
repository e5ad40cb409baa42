//! Spending limits beyond one run (`budgets.yaml`): per day and per month, for the project
//! (`.spectacular/budgets.yaml`, counting the runs of its store) and for the user
//! (`<config dir>/budgets.yaml`, counting every run the user records in its spend ledger).

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::Diagnostics;

/// A `budgets.yaml` file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Spectacular budgets (budgets.yaml)")]
pub struct BudgetsFile {
    /// Dollars that agent calls may cost per calendar day (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub day_usd: Option<f64>,
    /// Dollars that agent calls may cost per calendar month (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub month_usd: Option<f64>,
}

/// The JSON Schema of `budgets.yaml`, compiled once per process (files are checked with it).
pub static BUDGETS_SCHEMA: crate::conform::Schema = crate::conform::Schema::new(budgets_schema);

/// The JSON Schema of `budgets.yaml`, generated from its types.
pub fn budgets_schema() -> Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<BudgetsFile>()
        .to_value()
}

/// Read `budgets.yaml` in `dir`, if there is one.
pub fn load(dir: &Path) -> (Option<BudgetsFile>, Diagnostics) {
    let path = dir.join("budgets.yaml");
    match std::fs::read_to_string(&path) {
        Ok(text) => super::check_file(&text, &path.display().to_string(), &BUDGETS_SCHEMA),
        Err(_) => (None, Diagnostics::new()),
    }
}
