//! The usage of one agent attempt (tokens, dollars and where the dollars came from), as the
//! events record it. Adapters fill it in; the event model owns its shape.

use serde::{Deserialize, Serialize};

/// Where a dollar figure came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The client reported it (Claude Code, Aider, OpenCode).
    Reported,
    /// Spectacular priced the reported tokens from the model catalog.
    Priced,
    /// Nothing was reported (a client stopped at its timeout before it said what it used):
    /// the tokens and dollars are the engine's estimate of the attempt, the same one its
    /// budget reservation is made of.
    Estimated,
}

/// Tokens and dollars of one attempt.
///
/// `input_tokens` counts uncached input only: where a client reports cached input as part of
/// its input (OpenAI, Codex, Gemini), the cached part is moved to `cache_read_tokens`, so that
/// the four token fields never overlap and can be priced independently.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<CostSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
}

impl Usage {
    /// All tokens, cached or not.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Record a dollar figure the client reported.
    pub fn reported_cost(&mut self, cost: f64) {
        self.cost_usd = Some(cost);
        self.cost_source = Some(CostSource::Reported);
    }
}

/// Dollars for people, with enough digits to tell small amounts apart: two decimals from a
/// dollar up, four from a hundredth of a cent, six below; `$0.00` for nothing; never `-0`.
pub fn usd(value: f64) -> String {
    let abs = value.abs();
    let digits = if abs >= 1.0 {
        2
    } else if abs >= 0.0001 {
        4
    } else {
        6
    };
    let text = format!("{abs:.digits$}");
    if text.chars().all(|c| c == '0' || c == '.') {
        return "$0.00".into();
    }
    if value < 0.0 {
        format!("-${text}")
    } else {
        format!("${text}")
    }
}
