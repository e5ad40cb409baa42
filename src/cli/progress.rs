//! What a person (or a tool) sees while a run goes: a live view on a terminal (indicatif),
//! plain timestamped lines otherwise, or the events themselves as JSON lines (`--json`).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::record::event::EventData;
use crate::record::Event;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Plain,
    Json,
}

impl Mode {
    pub fn choose(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    running: BTreeSet<String>,
    done: u32,
    failed: u32,
    color: bool,
}

impl Progress {
    pub fn new(mode: Mode, color: bool) -> Progress {
        let bar = (mode == Mode::Live).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            mode,
            bar,
            running: BTreeSet::new(),
            done: 0,
            failed: 0,
            color,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let now =
                    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
                let clock = now.get(11..23).unwrap_or(&now).to_string();
                eoutln!("{clock} {text}");
            }
        }
    }

    fn paint(&self, text: &str, color: anstyle::AnsiColor) -> String {
        if self.color {
            let style = color.on_default().bold();
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    pub fn event(&mut self, event: &Event) {
        if self.mode == Mode::Json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", event.to_json_line());
            let _ = out.flush();
            return;
        }
        match &event.data {
            EventData::AttemptStarted(d) => {
                self.running.insert(d.phase.clone());
                if self.bar.is_none() {
                    self.line(&format!("started   {} (attempt {})", d.phase, d.attempt));
                }
            }
            EventData::AttemptSucceeded(d) => {
                self.running.remove(&d.phase);
            }
            EventData::AttemptFailed(d) => {
                self.running.remove(&d.phase);
                let mark = self.paint("attempt", anstyle::AnsiColor::Yellow);
                self.line(&format!(
                    "{mark}   {} #{} failed ({}): {}",
                    d.phase,
                    d.attempt,
                    d.kind.as_str(),
                    d.message
                ));
            }
            EventData::PhaseSucceeded(d) => {
                self.done += 1;
                let mark = self.paint("ok", anstyle::AnsiColor::Green);
                let attempts = match d.attempts {
                    0 => String::new(),
                    1 => " (1 attempt)".to_string(),
                    n => format!(" ({n} attempts)"),
                };
                self.line(&format!("{mark}        {}{attempts}", d.phase));
            }
            EventData::PhaseFailed(d) => {
                self.done += 1;
                self.failed += 1;
                let mark = self.paint("failed", anstyle::AnsiColor::Red);
                self.line(&format!(
                    "{mark}    {} ({}): {}",
                    d.phase,
                    d.kind.as_str(),
                    d.message
                ));
            }
            EventData::PhaseSkipped(d) => {
                self.done += 1;
                self.line(&format!("skipped   {} ({})", d.phase, d.reason.as_str()));
            }
            EventData::LoopStarted(d) => {
                self.line(&format!(
                    "loop      {} failed: back to {} (loop {})",
                    d.from, d.goto, d.iteration
                ));
            }
            EventData::ApprovalRequested(d) => {
                let mark = self.paint("approval", anstyle::AnsiColor::Yellow);
                self.line(&format!("{mark}  {} waits: {}", d.phase, d.reason));
            }
            EventData::ApprovalDecided(d) => {
                let verdict = if d.approved { "approved" } else { "rejected" };
                self.line(&format!("{verdict:<9} {} by {}", d.phase, event.actor));
            }
            EventData::CancelRequested(_) => self.line("canceling…"),
            EventData::BudgetAlert(d) => {
                let mark = self.paint("budget", anstyle::AnsiColor::Yellow);
                self.line(&format!("{mark}    {} alert: {}", d.level, d.message));
            }
            EventData::FallbackActivated(d) => {
                let mark = self.paint("fallback", anstyle::AnsiColor::Yellow);
                self.line(&format!(
                    "{mark}  {}: {} → {} ({})",
                    d.phase, d.from_agent, d.to_agent, d.reason
                ));
            }
            EventData::RunResumed(d) if !d.interrupted.is_empty() => {
                self.line(&format!(
                    "resumed; interrupted attempts will run again: {}",
                    d.interrupted.join(", ")
                ));
            }
            _ => {}
        }
        if let Some(bar) = &self.bar {
            let running: Vec<&str> = self.running.iter().map(String::as_str).take(4).collect();
            let more = self.running.len().saturating_sub(running.len());
            let extra = if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            };
            bar.set_message(format!(
                "{} done · running: {}{extra}",
                self.done,
                running.join(", ")
            ));
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
