//! The structural pass: the mission's YAML tree is checked against the generated JSON Schema
//! (compiled once), each schema error becoming a located diagnostic (`crate::conform`).

use serde_json::Value;

use super::Ctx;
use crate::conform::Schema;
use crate::load::yaml::Node;
use crate::model::schema::mission_schema;

/// The mission's JSON Schema, compiled once per process.
pub(crate) static MISSION: Schema = Schema::new(mission_schema);

/// Check the document against the schema; returns whether it conforms.
pub(super) fn check(ctx: &mut Ctx<'_>, root: &Node, json: &Value) -> bool {
    MISSION.report_errors(root, json, ctx.file, &mut ctx.diagnostics)
}
