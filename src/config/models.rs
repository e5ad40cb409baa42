//! The model catalog (`models.yaml`): provider, tier, prices per million tokens, context
//! window and fallbacks of each model. Costs are priced from it when a client reports only
//! tokens.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::{did_you_mean, Code, Diagnostic, Diagnostics};

/// The built-in catalog's text.
pub const BUILTIN_MODELS: &str = include_str!("models.yaml");

/// A `models.yaml` file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Spectacular model catalog (models.yaml)")]
pub struct ModelsFile {
    /// Models by the name missions and policies use.
    #[serde(default)]
    pub models: IndexMap<String, ModelSpec>,
    /// What Spectacular needs to know about the providers that serve them, by provider name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub providers: IndexMap<String, ProviderSpec>,
}

/// One provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Provider")]
pub struct ProviderSpec {
    /// The environment variables holding the provider's API keys (names, never values).
    /// Their values are redacted from everything Spectacular records or prints, and only the
    /// agents that need them see them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_env: Vec<String>,
}

/// One model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Model")]
pub struct ModelSpec {
    /// Who serves it: `anthropic`, `openai`, `google`, or any name your agents understand.
    pub provider: String,
    /// The provider's model id passed to agents (default: the catalog name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The capability and price class routing policies reason with.
    pub tier: Tier,
    /// US dollars per million tokens.
    pub price: Price,
    /// The context window, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Models to try, in order, when this one is unavailable, rate-limited or overloaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
}

/// Capability and price classes, cheapest first.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Cheap,
    Standard,
    Strong,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Cheap => "cheap",
            Tier::Standard => "standard",
            Tier::Strong => "strong",
        }
    }
}

/// Prices in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[schemars(range(min = 0))]
    pub input: f64,
    #[schemars(range(min = 0))]
    pub output: f64,
    /// Reading cached input (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cache_read: Option<f64>,
    /// Writing the cache (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cache_write: Option<f64>,
}

impl Price {
    /// The cost of a call in dollars.
    pub fn cost(&self, input: u64, output: u64, cache_read: u64, cache_write: u64) -> f64 {
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per(input, self.input)
            + per(output, self.output)
            + per(cache_read, self.cache_read.unwrap_or(self.input))
            + per(cache_write, self.cache_write.unwrap_or(self.input))
    }
}

/// Where a catalog entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Builtin,
    User,
    Project,
}

/// The merged catalog: each model with the layer that defined it last.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub models: IndexMap<String, (ModelSpec, Layer)>,
    /// Providers by name; a later layer replaces a provider of the same name.
    pub providers: IndexMap<String, ProviderSpec>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.get(name).map(|(m, _)| m)
    }

    /// The cheapest model of the next lower tier from the same provider, for downgrades.
    pub fn cheaper(&self, name: &str) -> Option<&str> {
        let model = self.get(name)?;
        self.models
            .iter()
            .filter(|(_, (m, _))| m.provider == model.provider && m.tier < model.tier)
            .max_by(|a, b| {
                (a.1 .0.tier, -a.1 .0.price.output)
                    .partial_cmp(&(b.1 .0.tier, -b.1 .0.price.output))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(n, _)| n.as_str())
    }
}

/// The JSON Schema of `models.yaml`, compiled once per process (files are checked with it).
pub static MODELS_SCHEMA: crate::conform::Schema = crate::conform::Schema::new(models_schema);

/// The JSON Schema of `models.yaml`, generated from its types.
pub fn models_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<ModelsFile>();
    schema.to_value()
}

/// `models_schema()` as pretty JSON with a trailing newline (committed as
/// `schemas/models.schema.json`).
pub fn models_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&models_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Parse and check one `models.yaml` text. `name` is its display name.
pub fn parse(text: &str, name: &str) -> (Option<ModelsFile>, Diagnostics) {
    super::check_file(text, name, &MODELS_SCHEMA)
}

/// Load the catalog: built-in, then `<user dir>/models.yaml`, then `<project .spectacular>/models.yaml`.
/// A later layer replaces a model of the same name. Fallbacks must name known models.
pub fn load(project_dot_dir: &Path, user_dir: Option<&Path>) -> (Catalog, Diagnostics) {
    let mut catalog = Catalog::default();
    let mut diagnostics = Diagnostics::new();
    let mut layers: Vec<(Layer, String, String)> = vec![(
        Layer::Builtin,
        "builtin:models.yaml".into(),
        BUILTIN_MODELS.to_string(),
    )];
    let files: Vec<(Layer, PathBuf)> = [
        user_dir.map(|d| (Layer::User, d.join("models.yaml"))),
        Some((Layer::Project, project_dot_dir.join("models.yaml"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (layer, path) in files {
        if let Ok(text) = std::fs::read_to_string(&path) {
            layers.push((layer, path.display().to_string(), text));
        }
    }
    let mut origins: IndexMap<String, (String, String)> = IndexMap::new();
    for (layer, name, text) in layers {
        let (file, found) = parse(&text, &name);
        diagnostics.extend(found);
        if let Some(file) = file {
            for (model, spec) in file.models {
                origins.insert(model.clone(), (name.clone(), text.clone()));
                catalog.models.insert(model, (spec, layer.clone()));
            }
            catalog.providers.extend(file.providers);
        }
    }
    // Fallbacks name models of the merged catalog.
    let names: Vec<String> = catalog.models.keys().cloned().collect();
    for (model, (spec, _)) in &catalog.models {
        for fallback in &spec.fallbacks {
            if !catalog.models.contains_key(fallback) {
                let (file, text) = origins.get(model).cloned().unwrap_or_default();
                let span = crate::load::yaml::parse(&text, &file).root.and_then(|r| {
                    let list = r
                        .get("models")?
                        .get(model)?
                        .get("fallbacks")?
                        .items()
                        .to_vec();
                    list.into_iter()
                        .find(|n| n.as_str() == Some(fallback.as_str()))
                        .map(|n| n.span)
                });
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("model `{model}` falls back to unknown model `{fallback}`"),
                    )
                    .at(&file, span, format!("models.{model}.fallbacks"))
                    .label("not in the catalog")
                    .maybe_help(did_you_mean(fallback, names.iter().map(String::as_str))),
                );
            }
        }
    }
    (catalog, diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_is_valid_and_prices_calls() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, diagnostics) = load(dir.path(), None);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let sonnet = catalog.get("claude-sonnet").unwrap();
        let cost = sonnet.price.cost(1_000_000, 100_000, 0, 0);
        assert!((cost - 4.5).abs() < 1e-9, "{cost}");
        assert_eq!(catalog.cheaper("claude-opus"), Some("claude-sonnet"));
        assert_eq!(catalog.cheaper("claude-haiku"), None);
    }

    #[test]
    fn project_models_override_and_are_checked_with_locations() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("models.yaml"),
            "models:\n  claude-sonnet:\n    provider: anthropic\n    tier: standard\n    price: { input: 2, output: 10 }\n    fallbacks: [gtp]\n  local:\n    provider: ollama\n    tier: chaep\n    price: { input: 0, output: 0 }\n",
        )
        .unwrap();
        let (catalog, diagnostics) = load(dir.path(), None);
        let messages: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("{} {} {:?}", d.code, d.message, d.help))
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("M2005") && m.contains("chaep") && m.contains("`cheap`")),
            "{messages:?}"
        );
        let rendered = crate::diag::render_text(&diagnostics, Default::default());
        assert!(rendered.contains("models.yaml:9:11"), "{rendered}");
        assert!(
            catalog.get("local").is_none(),
            "an invalid file contributes nothing"
        );
        assert_eq!(
            catalog.get("claude-sonnet").unwrap().price.input,
            3.0,
            "the invalid override is ignored"
        );
    }

    #[test]
    fn providers_name_their_key_variables_in_layers() {
        let dir = tempfile::tempdir().unwrap();
        let (builtin, _) = load(dir.path(), None);
        assert_eq!(
            builtin.providers["anthropic"].key_env,
            ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"]
        );
        std::fs::write(
            dir.path().join("models.yaml"),
            "providers:\n  acme:\n    key_env: [ACME_CREDENTIAL]\n  openai:\n    key_env: [OPENAI_API_KEY, OPENAI_ADMIN_KEY]\n",
        )
        .unwrap();
        let (catalog, diagnostics) = load(dir.path(), None);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(catalog.providers["acme"].key_env, ["ACME_CREDENTIAL"]);
        assert_eq!(
            catalog.providers["openai"].key_env,
            ["OPENAI_API_KEY", "OPENAI_ADMIN_KEY"],
            "the project's layer replaces the built-in provider"
        );
        assert!(catalog.providers.contains_key("google"));
    }

    #[test]
    fn unknown_fallbacks_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("models.yaml"),
            "models:\n  mine:\n    provider: openai\n    tier: cheap\n    price: { input: 1, output: 2 }\n    fallbacks: [claude-sonet]\n",
        )
        .unwrap();
        let (catalog, diagnostics) = load(dir.path(), None);
        assert_eq!(catalog.get("mine").unwrap().tier, Tier::Cheap);
        let d = diagnostics.iter().next().expect("a diagnostic");
        assert_eq!(d.code, Code::InvalidValue);
        assert_eq!(d.help.as_deref(), Some("did you mean `claude-sonnet`?"));
        assert_eq!(d.span.map(|s| (s.line, s.col)), Some((6, 17)));
    }
}
