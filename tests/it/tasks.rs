//! The planning contract: the published tasks schema, and plans checked by the engine.

use crate::support::*;

#[test]
fn committed_tasks_schema_is_current() {
    let text = assert_committed_schema("tasks", "tasks.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let required = schema["$defs"]["WorkPackage"]["required"]
        .as_array()
        .expect("required keys");
    for key in [
        "id",
        "title",
        "description",
        "owned_files",
        "requirement_refs",
        "acceptance",
        "estimate",
    ] {
        assert!(required.iter().any(|r| r == key), "{key} is not required");
    }
}
