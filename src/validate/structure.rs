//! The structural pass: the mission's YAML tree is checked against the generated JSON Schema
//! (compiled once), each schema error becoming a located diagnostic (`crate::conform`).

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

use super::Ctx;
use crate::diag::{Code, Diagnostic};
use crate::load::yaml::Node;
use crate::model::schema::mission_schema;

struct Compiled {
    schema: Value,
    validator: Option<Validator>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = mission_schema();
        let validator = jsonschema::validator_for(&schema).ok();
        Compiled { schema, validator }
    })
}

/// Check the document against the schema; returns whether it conforms.
pub(super) fn check(ctx: &mut Ctx<'_>, root: &Node, json: &Value) -> bool {
    let compiled = compiled();
    let Some(validator) = &compiled.validator else {
        ctx.push(Diagnostic::new(
            Code::WrongType,
            "the built-in mission schema does not compile; this is a bug in spectacular, please report it",
        ));
        return false;
    };
    crate::conform::report_errors(
        validator,
        &compiled.schema,
        root,
        json,
        ctx.file,
        &mut ctx.diagnostics,
    )
}
