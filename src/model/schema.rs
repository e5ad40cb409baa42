//! The JSON Schema of mission.yaml, generated from [`super::raw::RawMission`]. The committed
//! copy in `schemas/mission.schema.json` is drift-tested against this function.

use serde_json::Value;

/// The schema's `$id`.
pub const MISSION_SCHEMA_ID: &str = "https://spectacular.dev/schemas/mission.schema.json";

/// The mission JSON Schema (draft 2020-12), as pretty JSON with a trailing newline.
pub fn mission_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&mission_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The mission JSON Schema as a value.
pub fn mission_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<super::raw::RawMission>();
    let mut value = schema.to_value();
    strip_null(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), Value::String(MISSION_SCHEMA_ID.into()));
    }
    value
}

/// Optional fields are written by leaving them out, never with `null`: drop the `null`
/// alternatives schemars adds for `Option<T>`, so that editors and errors name the real type.
pub(crate) fn strip_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(options)) = map.get_mut(key) {
                    options.retain(|o| o.get("type") != Some(&Value::String("null".into())));
                    if options.len() == 1 {
                        let only = options.remove(0);
                        map.remove(key);
                        if let Value::Object(inner) = only {
                            for (k, v) in inner {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            for v in map.values_mut() {
                strip_null(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}
