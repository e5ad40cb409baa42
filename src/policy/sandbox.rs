//! The sandbox policy scripts run in: one engine builder with every limit set, the helper
//! functions scripts may call, and the translation of Rhai's errors into messages that name
//! the limit that was hit.

use std::time::Duration;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, INT};

use super::context::{Frozen, FIELDS};

/// A hook call is aborted after this much wall-clock time.
pub const WALL_CLOCK_LIMIT: Duration = crate::expr::DEADLINE;
/// Expression nesting allowed in policy scripts (global level, inside functions).
pub const MAX_EXPR_DEPTH: (usize, usize) = (64, 64);

/// The engine for policy packs: the bounded engine of [`crate::expr::script`] (operations
/// counted inside closures, data sizes checked before native calls allocate, the deadline and
/// the interrupt, no `eval`, no clock, no modules) with declared variables, deeper functions,
/// and the decision helpers registered. No function that touches files, the network or the
/// environment is registered.
pub fn policy_engine() -> Engine {
    let mut engine = crate::expr::script::engine();
    engine
        .set_max_expr_depths(MAX_EXPR_DEPTH.0, MAX_EXPR_DEPTH.1)
        .set_strict_variables(true);
    register_context(&mut engine);
    register_helpers(&mut engine);
    engine
}

/// The read-only context type: a getter per known field, an indexer for the rest, and the
/// read-only parts of the map API.
fn register_context(engine: &mut Engine) {
    engine.register_type_with_name::<Frozen>("ReadOnlyMap");
    for field in FIELDS {
        engine.register_get(*field, move |f: &mut Frozen| f.get(field));
    }
    engine.register_indexer_get(|f: &mut Frozen, key: &str| f.get(key));
    engine.register_fn("keys", |f: &mut Frozen| -> Array {
        f.map()
            .keys()
            .map(|k| Dynamic::from(k.to_string()))
            .collect()
    });
    engine.register_fn("values", |f: &mut Frozen| -> Array {
        f.map().values().cloned().collect()
    });
    engine.register_fn("len", |f: &mut Frozen| f.map().len() as INT);
    engine.register_fn("contains", |f: &mut Frozen, key: &str| {
        f.map().contains_key(key)
    });
    engine.register_fn("to_map", |f: &mut Frozen| f.map().clone());
    engine.register_fn("to_string", |f: &mut Frozen| {
        Dynamic::from_map(f.map().clone()).to_string()
    });
    engine.register_fn("to_debug", |f: &mut Frozen| {
        format!("{:?}", Dynamic::from_map(f.map().clone()))
    });
}

/// The value of `key` in a map or a read-only map.
fn field(value: &Dynamic, key: &str) -> Option<Dynamic> {
    if let Ok(map) = value.as_map_ref() {
        return map.get(key).cloned();
    }
    value.read_lock::<Frozen>().map(|f| f.get(key))
}

fn field_str(value: &Dynamic, key: &str) -> Option<String> {
    field(value, key).and_then(|v| v.into_string().ok())
}

/// Run `call` as one bounded evaluation ([`crate::expr::bounded`]).
pub fn guarded<T>(call: impl FnOnce() -> T) -> T {
    crate::expr::bounded(call)
}

/// Run `call` as one bounded evaluation with `limit` of wall-clock time.
pub fn guarded_for<T>(limit: Duration, call: impl FnOnce() -> T) -> T {
    crate::expr::bounded_for(limit, call)
}

fn map(pairs: &[(&str, Dynamic)]) -> Dynamic {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).into(), v.clone());
    }
    Dynamic::from_map(m)
}

fn s(text: &str) -> Dynamic {
    Dynamic::from(text.to_string())
}

/// Model tiers, cheapest first.
pub const TIERS: [&str; 3] = ["cheap", "standard", "strong"];

/// The rank of a tier (0 = cheap … 2 = strong); unknown tiers count as `standard`.
fn tier_rank(tier: &str) -> INT {
    TIERS.iter().position(|t| *t == tier).unwrap_or(1) as INT
}

fn number(value: &Dynamic, key: &str) -> f64 {
    field(value, key).map_or(0.0, |v| {
        v.as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .unwrap_or(0.0)
    })
}

/// The cheapest model (input + output price) of `tier` in `models` whose context window holds
/// `tokens` (a window of 0 is unknown and accepted); `()` when there is none.
fn cheapest(models: &Array, tier: &str, tokens: INT) -> Dynamic {
    let mut best: Option<(f64, &Dynamic)> = None;
    for model in models {
        let window = number(model, "context_window");
        let fits = window == 0.0 || window >= tokens as f64;
        let same_tier = field_str(model, "tier").is_some_and(|t| t == tier);
        if !same_tier || !fits {
            continue;
        }
        let price = number(model, "input_per_mtok") + number(model, "output_per_mtok");
        if best.is_none_or(|(p, _)| price < p) {
            best = Some((price, model));
        }
    }
    best.map_or(Dynamic::UNIT, |(_, m)| m.clone())
}

/// The cheapest model of `from` whose window holds `tokens`, else of the next stronger tier,
/// up to `to` (`from` is lowered to `to` when it is stronger); `()` when no tier in that range
/// has one.
fn first_fit(models: &Array, from: &str, to: &str, tokens: INT) -> Dynamic {
    let to = tier_rank(to);
    (tier_rank(from).min(to)..=to)
        .map(|rank| cheapest(models, TIERS[rank as usize], tokens))
        .find(|model| !model.is_unit())
        .unwrap_or(Dynamic::UNIT)
}

/// Dollars for people: two decimals from a dollar up (`$3.20`), more below so that a small
/// spend is not shown as `$0.00` (`$0.0047`); see [`crate::record::usage::usd`].
fn usd(amount: f64) -> String {
    crate::record::usage::usd(amount)
}

/// The words of `words` that occur in any of `texts`, case-insensitively, in `words` order.
fn find_words(words: &Array, texts: &Array) -> Array {
    let lowered: Vec<String> = texts
        .iter()
        .filter_map(|t| t.as_immutable_string_ref().ok().map(|s| s.to_lowercase()))
        .collect();
    let mut found = Array::new();
    for word in words {
        let Ok(w) = word.as_immutable_string_ref() else {
            continue;
        };
        let w = w.to_lowercase();
        if lowered.iter().any(|t| t.contains(&w)) && !found.iter().any(|f| f.to_string() == w) {
            found.push(Dynamic::from(w));
        }
    }
    found
}

/// The decision helpers — `allow()`, `allow(reason)`, `deny(reason)`,
/// `require_approval(reason)`, `route(agent, model, reason)`, `downgrade(model, reason)`,
/// `alert(level, message)`, `abstain()` — and the model and text helpers: `tier_rank(tier)`,
/// `tier_name(rank)`, `models.cheapest(tier, tokens)`, `models.first_fit(from, to, tokens)`,
/// `models.find_model(name)`, `words.find_words(texts)`, `list.join(separator)`, `usd(amount)`.
fn register_helpers(engine: &mut Engine) {
    engine.register_fn("tier_rank", |tier: &str| tier_rank(tier));
    engine.register_fn("tier_name", |rank: INT| {
        TIERS[rank.clamp(0, TIERS.len() as INT - 1) as usize].to_string()
    });
    engine.register_fn("cheapest", |models: &mut Array, tier: &str, tokens: INT| {
        cheapest(models, tier, tokens)
    });
    engine.register_fn(
        "first_fit",
        |models: &mut Array, from: &str, to: &str, tokens: INT| first_fit(models, from, to, tokens),
    );
    engine.register_fn("usd", usd);
    engine.register_fn("usd", |amount: INT| usd(amount as f64));
    engine.register_fn("find_model", |models: &mut Array, name: &str| {
        models
            .iter()
            .find(|m| field_str(m, "name").is_some_and(|n| n == name))
            .cloned()
            .unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn("find_words", |words: &mut Array, texts: Array| {
        find_words(words, &texts)
    });
    engine.register_fn("join", |list: &mut Array, separator: &str| {
        list.iter()
            .map(|item| item.to_string())
            .collect::<Vec<_>>()
            .join(separator)
    });
    engine.register_fn("allow", || map(&[("decision", s("allow"))]));
    engine.register_fn("allow", |reason: &str| {
        map(&[("decision", s("allow")), ("reason", s(reason))])
    });
    engine.register_fn("deny", |reason: &str| {
        map(&[("decision", s("deny")), ("reason", s(reason))])
    });
    engine.register_fn("require_approval", |reason: &str| {
        map(&[("decision", s("require_approval")), ("reason", s(reason))])
    });
    engine.register_fn("route", |agent: &str, model: &str, reason: &str| {
        map(&[
            ("agent", s(agent)),
            ("model", s(model)),
            ("reason", s(reason)),
        ])
    });
    engine.register_fn("downgrade", |model: &str, reason: &str| {
        map(&[
            ("decision", s("downgrade")),
            ("model", s(model)),
            ("message", s(reason)),
        ])
    });
    engine.register_fn("alert", |level: &str, message: &str| {
        map(&[
            ("decision", s("alert")),
            ("level", s(level)),
            ("message", s(message)),
        ])
    });
    engine.register_fn("abstain", || Dynamic::UNIT);
}

/// A script failure, for people: which limit was hit, or what went wrong and where.
pub fn describe_error(error: &EvalAltResult) -> String {
    crate::expr::script::describe_error(error)
}

/// Which limit an error hit, if any: `operations`, `call-depth`, `size`, `wall-clock`,
/// `interrupted`.
pub fn limit_kind(error: &EvalAltResult) -> Option<&'static str> {
    crate::expr::script::limit_kind(error)
}
