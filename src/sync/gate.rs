//! The fleet budget gate: with `sync.enforce_budget`, each agent attempt asks the control
//! plane first whether the project is over its budget for the month, and is refused (an
//! `attempt.failed` of kind `budget`) when it is.

use std::time::Duration;

use super::{Client, Settings};

/// How long an attempt waits for the control plane's answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The question an agent attempt asks before it starts.
#[derive(Clone, Debug)]
pub struct Gate {
    settings: Settings,
}

/// The project is over its fleet budget for the month.
#[derive(Debug, thiserror::Error)]
#[error("fleet budget: project `{project}` has spent ${spent_usd:.4} of its ${limit_usd:.2} for {month} across the fleet (control plane {url})\n  help: raise it on the control plane (`spectacular serve --budget {project}=USD`) or wait for next month")]
pub struct OverBudget {
    pub project: String,
    pub spent_usd: f64,
    pub limit_usd: f64,
    pub month: String,
    pub url: String,
}

impl Gate {
    /// The gate of the project's `sync:` settings, when they ask for one.
    pub fn of(settings: Option<Settings>) -> Option<Gate> {
        settings
            .filter(|s| s.enforce_budget)
            .map(|settings| Gate { settings })
    }

    /// `Err(why)` when the project is over its fleet budget for the month. A control plane
    /// that cannot be asked does not stop the attempt (sync never blocks a run); the problem
    /// is logged and `spectacular sync diagnose` shows the last one.
    pub fn check(&self) -> Result<(), OverBudget> {
        let answer =
            Client::of(&self.settings, TIMEOUT).and_then(|c| c.budget(&self.settings.project));
        match answer {
            Ok(a) if a.over => Err(OverBudget {
                project: self.settings.project.clone(),
                spent_usd: a.spent_usd,
                limit_usd: a.limit_usd.unwrap_or(0.0),
                month: a.month,
                url: self.settings.url.clone(),
            }),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!("fleet budget not checked: {e}");
                Ok(())
            }
        }
    }
}
