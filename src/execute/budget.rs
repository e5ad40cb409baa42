//! The run's budget, as the engine enforces it: spending and reservations are derived from
//! events (so they survive restarts), every agent attempt reserves a conservative estimate
//! before it starts, and an attempt that would take the run past the hard cap is refused with
//! the numbers. A client that spends more than it reserved stops further dispatch under the
//! cap.

use std::collections::HashMap;

use crate::agents::Prices;
use crate::model::Budget as Limits;
use crate::record::event::EventData;
use crate::record::usage::usd;

/// Output tokens assumed for an estimate: agentic clients write much more than they read
/// back, and a generous guess keeps concurrent phases from overspending.
pub const ESTIMATED_OUTPUT_TOKENS: u64 = 4096;

/// A conservative estimate of one agent attempt: the prompt (four characters a token) at the
/// input price, plus `ESTIMATED_OUTPUT_TOKENS` at the output price. Unpriced models cost 0.
pub fn estimate(prices: Option<&Prices>, prompt_chars: usize) -> f64 {
    let Some(prices) = prices else { return 0.0 };
    let input = (prompt_chars as u64).div_ceil(4);
    (input as f64 * prices.input + ESTIMATED_OUTPUT_TOKENS as f64 * prices.output) / 1_000_000.0
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

    /// Fold one event in.
    pub fn apply(&mut self, data: &EventData) {
        match data {
            EventData::AttemptStarted(d) => {
                if let Some(amount) = d.reserved_usd {
                    self.reserved.insert((d.phase.clone(), d.attempt), amount);
                }
            }
            EventData::AttemptSucceeded(d) => self.settle(&d.phase, d.attempt, d.usage.as_deref()),
            EventData::AttemptFailed(d) => self.settle(&d.phase, d.attempt, d.usage.as_deref()),
            EventData::BudgetAlert(d) => self.alerted.push(d.level.clone()),
            _ => {}
        }
    }

    fn settle(&mut self, phase: &str, attempt: u32, usage: Option<&crate::agents::Usage>) {
        let reserved = self.reserved.remove(&(phase.to_string(), attempt));
        let actual = usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
        self.spent += actual;
        if let Some(reserved) = reserved {
            if actual > reserved + 1e-9 {
                self.overshot = Some(format!(
                    "`{phase}` attempt {attempt} cost ${actual:.4} against ${reserved:.4} reserved"
                ));
            }
        }
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
