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
    pub fn check(&self) -> Result<(), String> {
        let answer =
            Client::of(&self.settings, TIMEOUT).and_then(|c| c.budget(&self.settings.project));
        match answer {
            Ok(a) if a.over => Err(format!(
                "fleet budget: project `{}` has spent ${:.4} of its ${:.2} for {} across the fleet (control plane {})\n  help: raise it on the control plane (`spectacular serve --budget {}=USD`) or wait for next month",
                self.settings.project,
                a.spent_usd,
                a.limit_usd.unwrap_or(0.0),
                a.month,
                self.settings.url,
                self.settings.project,
            )),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!("fleet budget not checked: {e}");
                Ok(())
            }
        }
    }
}
