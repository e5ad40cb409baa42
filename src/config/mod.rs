//! Config: the layered configuration files beside missions (`models.yaml` today;
//! `agents.yaml` moves here when the agent adapters land). Layers, lowest to highest
//! precedence: built-in (compiled in), user (`<config dir>/…`), project (`.spectacular/…`).
//! Every file is checked against its JSON Schema with located diagnostics, like missions.

pub mod budgets;
pub mod models;

use serde::de::DeserializeOwned;

use crate::diag::{Code, Diagnostic, Diagnostics, SourceFile};

/// Parse a configuration file and check it against its JSON Schema: every problem located,
/// like missions. The value is `None` when the file has errors (it contributes nothing).
pub fn check_file<T: DeserializeOwned>(
    text: &str,
    name: &str,
    schema: &serde_json::Value,
) -> (Option<T>, Diagnostics) {
    let mut diagnostics = Diagnostics::new();
    diagnostics.add_source(SourceFile::new(name, text));
    let parsed = crate::load::yaml::parse(text, name);
    for d in parsed.diagnostics {
        diagnostics.push(d);
    }
    let Some(root) = parsed.root else {
        return (None, diagnostics);
    };
    diagnostics.extend(crate::validate::check_document(&root, schema, name, text));
    if diagnostics.has_errors() {
        return (None, diagnostics);
    }
    match serde_json::from_value::<T>(root.to_json()) {
        Ok(value) => (Some(value), diagnostics),
        Err(e) => {
            diagnostics.push(
                Diagnostic::new(Code::WrongType, format!("`{name}` could not be read: {e}"))
                    .at(name, None, ""),
            );
            (None, diagnostics)
        }
    }
}
