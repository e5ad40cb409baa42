//! The run's budget, as the engine enforces it: spending and reservations are derived from
//! events (so they survive restarts), every agent attempt reserves a conservative estimate
//! before it starts, and each hop of a fallback chain reserves again at its own model's price
//! (`fallback.activated` carries what the failed hop cost and what the next one reserves). An
//! attempt or a hop that would take the run past the hard cap is refused with the numbers. A
//! client that spends more than it reserved stops further dispatch under the cap.

use std::collections::HashMap;

use crate::agents::{Prices, Usage};
use crate::model::Budget as Limits;
use crate::record::event::{EventData, FallbackActivated};
use crate::record::usage::{usd, CostSource};

/// Output tokens assumed for an estimate: agentic clients write much more than they read
/// back, and a generous guess keeps concurrent phases from overspending.
pub const ESTIMATED_OUTPUT_TOKENS: u64 = 4096;

/// A conservative estimate of one agent attempt: the prompt (four characters a token) at the
/// input price, plus `ESTIMATED_OUTPUT_TOKENS` at the output price. Unpriced models cost 0.
pub fn estimate(prices: Option<&Prices>, prompt_chars: usize) -> f64 {
    estimated_usage(prices, prompt_chars)
        .cost_usd
        .unwrap_or(0.0)
}

/// The usage [`estimate`] is made of: the prompt's tokens (four characters a token) and
/// `ESTIMATED_OUTPUT_TOKENS`, priced when the model has prices, marked
/// [`CostSource::Estimated`]. It is what a client stopped at its timeout without reporting
/// anything is recorded as having used: the same figure its reservation held.
pub fn estimated_usage(prices: Option<&Prices>, prompt_chars: usize) -> Usage {
    let input = (prompt_chars as u64).div_ceil(4);
    let cost_usd = prices.map(|prices| {
        (input as f64 * prices.input + ESTIMATED_OUTPUT_TOKENS as f64 * prices.output) / 1_000_000.0
    });
    Usage {
        input_tokens: input,
        output_tokens: ESTIMATED_OUTPUT_TOKENS,
        cost_source: cost_usd.map(|_| CostSource::Estimated),
        cost_usd,
        ..Usage::default()
    }
}

/// What an event settles in the budgets shared with other runs: the ledger key of the
/// reservation it releases ([`super::ledger::hop_key`]) and what that hop cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Settlement {
    pub key: String,
    pub usd: f64,
}

#[derive(Clone, Debug, Default)]
pub struct Budget {
    cap: Option<f64>,
    soft: Option<f64>,
    spent: f64,
    reserved: HashMap<(String, u32), f64>,
    /// Set when a client spent more than its reservation: no more dispatch under the cap.
    overshot: Option<String>,
    /// Alerts already recorded, by level.
    alerted: Vec<String>,
    /// Agent attempts that moved along their fallback chain: the hop they are on and what
    /// their failed hops cost (counted in `spent` already).
    hops: HashMap<(String, u32), (u32, f64)>,
}

impl Budget {
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            cap: limits.max_usd,
            soft: limits.soft_usd,
            ..Budget::default()
        }
    }

    pub fn cap(&self) -> Option<f64> {
        self.cap
    }

    /// Is there a cap to reserve against? (Day and month budgets shared with other runs are
    /// the ledger's: [`super::ledger`].)
    pub fn enforced(&self) -> bool {
        self.cap.is_some()
    }

    pub fn soft(&self) -> Option<f64> {
        self.soft
    }

    pub fn spent(&self) -> f64 {
        self.spent
    }

    pub fn reserved(&self) -> f64 {
        self.reserved.values().sum()
    }

    /// Fold one event in. Returns what it settles in the shared budgets: a hop of a fallback
    /// chain (what the failed hop cost), or the end of an agent attempt (what its last hop
    /// cost: the attempt's usage less its failed hops, counted at their hop).
    pub fn apply(&mut self, data: &EventData) -> Option<Settlement> {
        match data {
            EventData::AttemptStarted(d) => {
                if let Some(amount) = d.reserved_usd {
                    self.reserved.insert((d.phase.clone(), d.attempt), amount);
                }
                None
            }
            EventData::FallbackActivated(d) => Some(self.hop(d)),
            EventData::AttemptSucceeded(d) => {
                Some(self.settle(&d.phase, d.attempt, d.usage.as_deref()))
            }
            EventData::AttemptFailed(d) => {
                Some(self.settle(&d.phase, d.attempt, d.usage.as_deref()))
            }
            EventData::BudgetAlert(d) => {
                self.alerted.push(d.level.clone());
                None
            }
            _ => None,
        }
    }

    /// A hop: the failed candidate's cost is spent, its reservation gives way to the next
    /// candidate's.
    fn hop(&mut self, d: &FallbackActivated) -> Settlement {
        let key = (d.phase.clone(), d.attempt);
        let cost = d.cost_usd.unwrap_or(0.0);
        let (hop, counted) = self.hops.entry(key.clone()).or_default();
        let settled = Settlement {
            key: super::ledger::hop_key(&d.phase, d.attempt, *hop),
            usd: cost,
        };
        *hop += 1;
        *counted += cost;
        self.spent += cost;
        let held = match d.reserved_usd {
            Some(next) => self.reserved.insert(key, next),
            None => self.reserved.remove(&key),
        };
        self.overshoot(&d.phase, d.attempt, cost, held);
        settled
    }

    fn settle(&mut self, phase: &str, attempt: u32, usage: Option<&Usage>) -> Settlement {
        let key = (phase.to_string(), attempt);
        let reserved = self.reserved.remove(&key);
        let (hop, counted) = self.hops.remove(&key).unwrap_or_default();
        let total = usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
        let actual = (total - counted).max(0.0);
        self.spent += actual;
        self.overshoot(phase, attempt, actual, reserved);
        Settlement {
            key: super::ledger::hop_key(phase, attempt, hop),
            usd: actual,
        }
    }

    fn overshoot(&mut self, phase: &str, attempt: u32, actual: f64, reserved: Option<f64>) {
        if let Some(reserved) = reserved {
            if actual > reserved + 1e-9 {
                self.overshot = Some(format!(
                    "`{phase}` attempt {attempt} cost ${actual:.4} against ${reserved:.4} reserved"
                ));
            }
        }
    }

    /// May the next candidate of a fallback chain start, reserving `hop.reserved_usd` at its
    /// own model's price, once the failed one's cost (`hop.cost_usd`) is spent and its
    /// reservation released?
    pub fn check_hop(&self, hop: &FallbackActivated) -> Result<(), Refused> {
        let (Some(cap), Some(estimate)) = (self.cap, hop.reserved_usd) else {
            return Ok(());
        };
        let key = (hop.phase.clone(), hop.attempt);
        let held = self.reserved.get(&key).copied();
        let cost = hop.cost_usd.unwrap_or(0.0);
        let overshot = self.overshot.clone().or_else(|| {
            let held = held?;
            (cost > held + 1e-9).then(|| {
                format!(
                    "`{}` attempt {} cost ${cost:.4} against ${held:.4} reserved",
                    hop.phase, hop.attempt
                )
            })
        });
        if let Some(overshot) = overshot {
            return Err(Refused::Overspent { cap, overshot });
        }
        let spent = self.spent + cost;
        let reserved = self.reserved() - held.unwrap_or(0.0);
        if spent + reserved + estimate > cap + 1e-9 {
            return Err(Refused::Hop {
                phase: hop.phase.clone(),
                to: format!(
                    "{}/{}",
                    hop.to_agent,
                    hop.to_model.as_deref().unwrap_or("-")
                ),
                spent,
                reserved,
                estimate,
                cap,
            });
        }
        Ok(())
    }

    /// An alert that is due and not recorded yet (at most one per level and run).
    pub fn due_alert(&self) -> Option<crate::record::event::BudgetAlert> {
        let recorded = |level: &str| self.alerted.iter().any(|l| l == level);
        if let (Some(overshot), false) = (&self.overshot, recorded("overshoot")) {
            return Some(crate::record::event::BudgetAlert {
                level: "overshoot".into(),
                spent_usd: self.spent,
                threshold_usd: None,
                cap_usd: self.cap,
                message: format!("a client overspent its reservation ({overshot}); no more agent work under the cap"),
            });
        }
        match self.soft {
            Some(soft) if self.spent >= soft && !recorded("soft") => {
                Some(crate::record::event::BudgetAlert {
                    level: "soft".into(),
                    spent_usd: self.spent,
                    threshold_usd: Some(soft),
                    cap_usd: self.cap,
                    message: match self.cap {
                        Some(cap) => format!(
                            "spent {} of {}: past the {} alert threshold",
                            usd(self.spent),
                            usd(cap),
                            usd(soft)
                        ),
                        None => format!(
                            "spent {}: past the {} alert threshold",
                            usd(self.spent),
                            usd(soft)
                        ),
                    },
                })
            }
            _ => None,
        }
    }

    /// May an attempt of `phase` estimated at `estimate` start?
    pub fn check(&self, phase: &str, estimate: f64) -> Result<(), Refused> {
        let (spent, reserved) = (self.spent, self.reserved());
        let Some(cap) = self.cap else { return Ok(()) };
        if let Some(overshot) = &self.overshot {
            return Err(Refused::Overspent {
                cap,
                overshot: overshot.clone(),
            });
        }
        if spent + reserved + estimate > cap + 1e-9 {
            return Err(Refused::Cap {
                phase: phase.to_string(),
                spent,
                reserved,
                estimate,
                cap,
            });
        }
        Ok(())
    }
}

/// Why the hard cap refuses an attempt; its text is the `budget` failure's message.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("budget: no more agent work under the ${cap:.2} cap after a client overspent its reservation ({overshot})")]
    Overspent { cap: f64, overshot: String },
    #[error("budget: `{phase}` would pass the hard cap: spent ${spent:.4} + reserved ${reserved:.4} + estimate ${estimate:.4} > cap {}", usd(*cap))]
    Cap {
        phase: String,
        spent: f64,
        reserved: f64,
        estimate: f64,
        cap: f64,
    },
    #[error("budget: the fallback of `{phase}` to `{to}` would pass the hard cap: spent ${spent:.4} + reserved ${reserved:.4} + estimate ${estimate:.4} > cap {}", usd(*cap))]
    Hop {
        phase: String,
        to: String,
        spent: f64,
        reserved: f64,
        estimate: f64,
        cap: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event::{AttemptStarted, AttemptSucceeded};

    fn started(phase: &str, reserved: f64) -> EventData {
        EventData::AttemptStarted(AttemptStarted {
            phase: phase.into(),
            attempt: 1,
            workdir: ".".into(),
            argv: None,
            prompt_digest: None,
            timeout_ms: None,
            reserved_usd: Some(reserved),
        })
    }

    fn succeeded(phase: &str, cost: f64) -> EventData {
        EventData::AttemptSucceeded(AttemptSucceeded {
            git: None,
            integration_head: None,
            phase: phase.into(),
            attempt: 1,
            exit_code: Some(0),
            duration_ms: 1,
            artifacts: Default::default(),
            values: Default::default(),
            agent: None,
            usage: Some(Box::new(crate::agents::Usage {
                cost_usd: Some(cost),
                ..Default::default()
            })),
            result: None,
        })
    }

    #[test]
    fn reservations_count_until_settled_by_the_actual_cost() {
        let mut b = Budget::new(&Limits {
            max_usd: Some(1.0),
            soft_usd: None,
        });
        b.apply(&started("a", 0.4));
        b.apply(&started("b", 0.4));
        assert!(b
            .check("c", 0.3)
            .unwrap_err()
            .to_string()
            .contains("reserved $0.8000"));
        b.apply(&succeeded("a", 0.1));
        assert!(b.check("c", 0.3).is_ok());
        assert!((b.spent() - 0.1).abs() < 1e-12);
        assert!((b.reserved() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn an_overshoot_stops_further_dispatch() {
        let mut b = Budget::new(&Limits {
            max_usd: Some(10.0),
            soft_usd: None,
        });
        b.apply(&started("a", 0.1));
        b.apply(&succeeded("a", 0.5));
        let denied = b.check("b", 0.01).unwrap_err().to_string();
        assert!(denied.contains("overspent"), "{denied}");
    }

    fn hop(phase: &str, cost: f64, next: f64) -> FallbackActivated {
        FallbackActivated {
            phase: phase.into(),
            attempt: 1,
            from_agent: "first".into(),
            from_model: Some("gpt-mini".into()),
            to_agent: "second".into(),
            to_model: Some("claude-sonnet".into()),
            reason: "rate_limit: 429".into(),
            cost_usd: Some(cost),
            reserved_usd: Some(next),
        }
    }

    #[test]
    fn a_hop_spends_the_failed_candidate_and_reserves_the_next_at_its_own_price() {
        let mut b = Budget::new(&Limits {
            max_usd: Some(1.0),
            soft_usd: None,
        });
        b.apply(&started("a", 0.1));
        b.apply(&started("b", 0.2));
        // 0.05 spent + 0.2 held by `b` + 0.8 > 1.0; 0.7 fits.
        assert!(matches!(
            b.check_hop(&hop("a", 0.05, 0.8)),
            Err(Refused::Hop { .. })
        ));
        b.check_hop(&hop("a", 0.05, 0.7)).unwrap();
        // A failed candidate that spent more than it reserved stops the chain.
        assert!(matches!(
            b.check_hop(&hop("a", 0.15, 0.1)),
            Err(Refused::Overspent { .. })
        ));
        let settled = b.apply(&EventData::FallbackActivated(hop("a", 0.05, 0.7)));
        assert_eq!(
            settled,
            Some(Settlement {
                key: "a#1".into(),
                usd: 0.05
            })
        );
        assert!((b.spent() - 0.05).abs() < 1e-12);
        assert!((b.reserved() - 0.9).abs() < 1e-12);
        // The attempt's usage holds both hops: only the last one is new spending.
        let settled = b.apply(&succeeded("a", 0.05 + 0.3)).unwrap();
        assert_eq!(settled.key, "a#1.1");
        assert!((settled.usd - 0.3).abs() < 1e-12, "{settled:?}");
        assert!((b.spent() - 0.35).abs() < 1e-12);
        assert!((b.reserved() - 0.2).abs() < 1e-12);
        assert!(b.due_alert().is_none());
    }

    /// The limits are inclusive: a failed candidate that spent exactly what it reserved did
    /// not overspend, and a next candidate that brings the total to the cap exactly may start.
    /// (The figures are exact in binary, so no rounding hides an off-by-one comparison.)
    #[test]
    fn a_hop_that_reaches_the_cap_exactly_may_start() {
        let mut b = Budget::new(&Limits {
            max_usd: Some(1.0),
            soft_usd: None,
        });
        b.apply(&started("a", 0.25));
        b.apply(&started("b", 0.25));
        // 0.25 spent (all `a` held) + 0.25 held by `b` + 0.5 = 1.0.
        b.check_hop(&hop("a", 0.25, 0.5)).unwrap();
        assert!(matches!(
            b.check_hop(&hop("a", 0.25, 0.5 + 1e-6)),
            Err(Refused::Hop { .. })
        ));
        assert!(matches!(
            b.check_hop(&hop("a", 0.25 + 1e-6, 0.25)),
            Err(Refused::Overspent { .. })
        ));
        // The same for a new attempt: 0.5 held + 0.5 = 1.0.
        b.check("c", 0.5).unwrap();
        assert!(matches!(b.check("c", 0.5 + 1e-6), Err(Refused::Cap { .. })));
    }

    #[test]
    fn the_soft_alert_is_due_once_spending_reaches_the_threshold() {
        let mut b = Budget::new(&Limits {
            max_usd: Some(1.0),
            soft_usd: Some(0.5),
        });
        assert_eq!(b.due_alert(), None);
        b.apply(&started("a", 0.25));
        b.apply(&succeeded("a", 0.25));
        assert_eq!(b.due_alert(), None, "below the threshold");
        b.apply(&started("b", 0.25));
        b.apply(&succeeded("b", 0.25));
        let alert = b.due_alert().expect("at the threshold");
        assert_eq!(alert.level, "soft");
        assert_eq!(alert.threshold_usd, Some(0.5));
        b.apply(&EventData::BudgetAlert(alert));
        assert_eq!(b.due_alert(), None, "once per run");
    }

    #[test]
    fn an_estimated_usage_is_the_reservation() {
        let prices = Prices {
            input: 3.0,
            output: 15.0,
            cache_read: None,
            cache_write: None,
        };
        let usage = estimated_usage(Some(&prices), 4001);
        assert_eq!((usage.input_tokens, usage.output_tokens), (1001, 4096));
        assert_eq!(usage.cost_usd, Some(estimate(Some(&prices), 4001)));
        assert_eq!(usage.cost_source, Some(CostSource::Estimated));
        let unpriced = estimated_usage(None, 4001);
        assert_eq!((unpriced.cost_usd, unpriced.cost_source), (None, None));
    }

    #[test]
    fn estimates_are_priced_from_prompt_size_and_a_generous_output() {
        let prices = Prices {
            input: 3.0,
            output: 15.0,
            cache_read: None,
            cache_write: None,
        };
        let e = estimate(Some(&prices), 4000);
        assert!((e - (1000.0 * 3.0 + 4096.0 * 15.0) / 1e6).abs() < 1e-12);
        assert_eq!(estimate(None, 4000), 0.0);
    }
}
