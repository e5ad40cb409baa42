//! Cost reports: one row per agent call (an attempt with usage), grouped by agent, model,
//! phase, mission or day, with totals, averages and shares. Read from the logs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::{self, Event, EventData, Store};

/// What to group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Agent,
    Model,
    Phase,
    Mission,
    Day,
}

/// One agent call.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    pub run_id: String,
    pub mission: String,
    pub phase: String,
    pub agent: String,
    pub model: String,
    pub day: String,
    pub ts: String,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Its cost includes the engine's estimate of a client stopped at its timeout without
    /// reporting what it used (`cost_source: estimated`).
    pub estimated: bool,
}

/// One group of the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Group {
    pub key: String,
    pub calls: u64,
    pub cost_usd: f64,
    pub average_usd: f64,
    /// Its part of the cost, or of the calls when no call cost anything (`Report::share_of`).
    pub share: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub by: By,
    pub since: Option<String>,
    pub calls: u64,
    pub cost_usd: f64,
    /// What the calls whose cost includes an estimate cost (part of `cost_usd`).
    pub estimated_usd: f64,
    /// How many calls those are.
    pub estimated_calls: u64,
    /// What the shares are of: `cost`, or `calls` when no call cost anything (unpriced agents).
    pub share_of: &'static str,
    pub groups: Vec<Group>,
}

/// Every agent call recorded in the store at or after `since` (an RFC 3339 prefix).
pub fn calls(store: &Store, since: Option<&str>) -> Result<Vec<Call>, record::Error> {
    let mut calls = Vec::new();
    for run_id in store.run_ids()? {
        // One unreadable log must not hide the others' costs, but it is never left out
        // silently: the total would be wrong without a word.
        let events = match store.read_events(&run_id) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!("the costs leave out run `{run_id}`: {e}");
                continue;
            }
        };
        calls.extend(calls_of(&run_id, &events, since));
    }
    Ok(calls)
}

/// The agent calls of one run's events at or after `since` (an RFC 3339 prefix): a pure
/// function of the log, for `spectacular cost` and the run report.
pub fn calls_of(run_id: &str, events: &[Event], since: Option<&str>) -> Vec<Call> {
    let mission = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::RunStarted(s) => Some(s.mission.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut calls = Vec::new();
    for e in events {
        let (phase, agent, usage) = match &e.data {
            EventData::AttemptSucceeded(d) => (&d.phase, &d.agent, &d.usage),
            EventData::AttemptFailed(d) => (&d.phase, &d.agent, &d.usage),
            _ => continue,
        };
        let Some(usage) = usage else { continue };
        if since.is_some_and(|s| e.ts.as_str() < s) {
            continue;
        }
        calls.push(Call {
            run_id: run_id.to_string(),
            mission: mission.clone(),
            phase: record::fold::parent_of(phase).unwrap_or(phase).to_string(),
            agent: agent.clone().unwrap_or_else(|| "-".into()),
            model: usage.model.clone().unwrap_or_else(|| "-".into()),
            day: e.ts.get(..10).unwrap_or(&e.ts).to_string(),
            ts: e.ts.clone(),
            cost_usd: usage.cost_usd.unwrap_or(0.0),
            input_tokens: usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
            output_tokens: usage.output_tokens,
            estimated: usage.cost_source == Some(record::usage::CostSource::Estimated),
        });
    }
    calls
}

/// Group calls into a report, most expensive group first (days in date order).
pub fn report(calls: &[Call], by: By, since: Option<String>) -> Report {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for call in calls {
        let key = match by {
            By::Agent => &call.agent,
            By::Model => &call.model,
            By::Phase => &call.phase,
            By::Mission => &call.mission,
            By::Day => &call.day,
        };
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            key: key.clone(),
            ..Group::default()
        });
        g.calls += 1;
        g.cost_usd += call.cost_usd;
        g.input_tokens += call.input_tokens;
        g.output_tokens += call.output_tokens;
    }
    let total: f64 = groups.values().map(|g| g.cost_usd).sum();
    let all_calls = calls.len().max(1) as f64;
    let mut groups: Vec<Group> = groups
        .into_values()
        .map(|mut g| {
            g.average_usd = g.cost_usd / g.calls.max(1) as f64;
            // Free calls (unpriced agents) still have their part: of the calls.
            g.share = if total > 0.0 {
                g.cost_usd / total
            } else {
                g.calls as f64 / all_calls
            };
            g
        })
        .collect();
    if by != By::Day {
        groups.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key)));
    }
    let estimated: Vec<&Call> = calls.iter().filter(|c| c.estimated).collect();
    Report {
        by,
        since,
        calls: calls.len() as u64,
        cost_usd: total,
        estimated_usd: estimated.iter().map(|c| c.cost_usd).sum(),
        estimated_calls: estimated.len() as u64,
        share_of: if total > 0.0 { "cost" } else { "calls" },
        groups,
    }
}

/// A `--since` that is neither a date nor a duration back from now.
#[derive(Debug, thiserror::Error)]
pub enum SinceError {
    #[error("`--since {text}` is neither a date (2026-11-01) nor a duration (7d): {detail}")]
    NotADate { text: String, detail: String },
    #[error("`--since {text}` reaches before 1970")]
    BeforeEpoch { text: String },
}

/// `--since`: a date (`2026-11-01`), a timestamp, or a duration back from now (`7d`, `12h`).
pub fn parse_since(text: &str, now: std::time::SystemTime) -> Result<String, SinceError> {
    let text = text.trim();
    if text.len() >= 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-' {
        return Ok(text.to_string());
    }
    let back = crate::model::parse_duration(text).map_err(|e| SinceError::NotADate {
        text: text.to_string(),
        detail: e.to_string(),
    })?;
    let at = now
        .checked_sub(back)
        .ok_or_else(|| SinceError::BeforeEpoch {
            text: text.to_string(),
        })?;
    Ok(humantime::format_rfc3339_millis(at).to_string())
}

/// Shares as tenths of a percent that add up to exactly 100.0% (largest remainders get the
/// rounding), so that a table never shows 99.9% or 100.1% in all.
pub fn tenths(shares: &[f64]) -> Vec<u64> {
    let sum: f64 = shares.iter().sum();
    if shares.is_empty() || sum <= 0.0 {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares.iter().map(|s| s / sum * 1000.0).collect();
    let mut out: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = 1000u64.saturating_sub(out.iter().sum());
    for &i in order.iter().cycle().take(missing as usize) {
        out[i] += 1;
    }
    out
}

/// The report as a table.
pub fn text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let title = match report.by {
        By::Agent => "AGENT",
        By::Model => "MODEL",
        By::Phase => "PHASE",
        By::Mission => "MISSION",
        By::Day => "DAY",
    };
    let header = [
        title.to_string(),
        "CALLS".into(),
        "COST".into(),
        "AVERAGE".into(),
        "SHARE".into(),
        "TOKENS IN".into(),
        "TOKENS OUT".into(),
    ];
    let shares = tenths(&report.groups.iter().map(|g| g.share).collect::<Vec<_>>());
    let rows: Vec<[String; 7]> = report
        .groups
        .iter()
        .zip(&shares)
        .map(|(g, share)| {
            [
                g.key.clone(),
                g.calls.to_string(),
                super::usd(g.cost_usd),
                super::usd(g.average_usd),
                format!("{}.{}%", share / 10, share % 10),
                g.input_tokens.to_string(),
                g.output_tokens.to_string(),
            ]
        })
        .collect();
    out.push_str(&super::table(
        &header,
        &rows,
        &[false, true, true, true, true, true, true],
    ));
    let since = report
        .since
        .as_deref()
        .map(|s| format!(" since {s}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "total: {} over {} call{}{since}",
        super::usd(report.cost_usd),
        report.calls,
        if report.calls == 1 { "" } else { "s" }
    );
    if report.calls > 0 && report.share_of == "calls" {
        let _ = writeln!(
            out,
            "no call was priced (agents without prices, such as `command` agents): shares are \
             of the calls"
        );
    }
    if report.estimated_calls > 0 {
        let _ = writeln!(
            out,
            "of which {} over {} call{} estimated: a client stopped at its timeout reported nothing",
            super::usd(report.estimated_usd),
            report.estimated_calls,
            if report.estimated_calls == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(agent: &str, cost_usd: f64) -> Call {
        Call {
            run_id: "r".into(),
            mission: "m".into(),
            phase: "p".into(),
            agent: agent.into(),
            model: "-".into(),
            day: "2026-12-07".into(),
            ts: "2026-12-07T00:00:00Z".into(),
            cost_usd,
            input_tokens: 0,
            output_tokens: 0,
            estimated: false,
        }
    }

    #[test]
    fn shares_add_up_to_a_hundred_percent() {
        assert_eq!(tenths(&[1.0, 1.0, 1.0]), [334, 333, 333]);
        assert_eq!(tenths(&[0.0, 0.0]), [0, 0]);
        assert_eq!(tenths(&[]), Vec::<u64>::new());
        let calls = [call("a", 0.1), call("b", 0.1), call("c", 0.1)];
        let shown = text(&report(&calls, By::Agent, None));
        assert_eq!(shown.matches("33.3%").count(), 2, "{shown}");
        assert_eq!(shown.matches("33.4%").count(), 1, "{shown}");
    }

    #[test]
    fn free_calls_share_by_calls_and_say_so() {
        let calls = [call("shell", 0.0), call("shell", 0.0), call("other", 0.0)];
        let report = report(&calls, By::Agent, None);
        assert_eq!(report.share_of, "calls");
        let shown = text(&report);
        assert!(
            shown.contains("66.7%") && shown.contains("33.3%"),
            "{shown}"
        );
        assert!(shown.contains("shares are of the calls"), "{shown}");
        let priced = super::report(&[call("a", 0.5)], By::Agent, None);
        assert_eq!(priced.share_of, "cost");
        assert!(!text(&priced).contains("shares are of the calls"));
    }
}
