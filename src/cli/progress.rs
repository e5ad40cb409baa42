//! What a person (or a tool) sees while a run goes: a live view on a terminal (indicatif),
//! plain timestamped lines otherwise, or the events themselves as JSON lines (`--json`).
//!
//! The engine reports events from the moment it starts or takes a run over, before the command
//! has printed its header (`run … of …`, `resuming run …`). Lines are held back, and the
//! spinner is not drawn, until the first attempt starts (or the view finishes): so the header
//! comes first, and no spinner line is left above it. The view clears its spinner when it is
//! dropped, whichever way the command ends. The spinner line is cut to the terminal's width,
//! and the terminal does not echo while it is shown (see [`EchoOff`]), so that it stays on one
//! row the view knows of; `tests/it/terminal.rs` checks the screen in tmux.

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
    /// An attempt has started (or the view finished): lines are shown as they come.
    started: bool,
    /// Lines waiting for the first attempt, with the time they were made.
    held: Vec<(String, String)>,
    running: BTreeSet<String>,
    done: u32,
    failed: u32,
    color: bool,
    /// The terminal's echo, turned off while the spinner is shown.
    echo: Option<EchoOff>,
}

impl Progress {
    pub fn new(mode: Mode, color: bool) -> Progress {
        Progress {
            mode,
            bar: None,
            started: false,
            held: Vec::new(),
            running: BTreeSet::new(),
            done: 0,
            failed: 0,
            color,
            echo: None,
        }
    }

    /// Show what was held back, and from now on show lines as they come (with the spinner on
    /// a terminal).
    fn start(&mut self, spinner: bool) {
        if self.started {
            return;
        }
        self.started = true;
        for (clock, text) in std::mem::take(&mut self.held) {
            self.show(&clock, &text);
        }
        if spinner && self.mode == Mode::Live {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
            self.echo = EchoOff::on_stderr();
        }
    }

    fn show(&self, clock: &str, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if self.mode == Mode::Live => eoutln!("{text}"),
            None => eoutln!("{clock} {text}"),
        }
    }

    fn line(&mut self, text: &str) {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let clock = now.get(11..23).unwrap_or(&now).to_string();
        if self.started {
            self.show(&clock, text);
        } else {
            self.held.push((clock, text.to_string()));
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
                self.start(true);
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
                    without_kind(d.kind.as_str(), &d.message)
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
                    without_kind(d.kind.as_str(), &d.message)
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
                if let Some(plan) = &d.plan {
                    self.line(&format!(
                        "          plan: {}",
                        crate::tasks::approval_text(plan)
                    ));
                }
                for (i, q) in d.questions.iter().enumerate() {
                    self.line(&format!("          {}. {q}", i + 1));
                }
            }
            EventData::ClarificationAnswered(d) => {
                self.line(&format!(
                    "answered  {} question {} by {}",
                    d.phase, d.question, event.actor
                ));
            }
            EventData::ApprovalDecided(d) => {
                let verdict = if d.approved { "approved" } else { "rejected" };
                self.line(&format!("{verdict:<9} {} by {}", d.phase, event.actor));
            }
            EventData::CancelRequested(_) => self.line("canceling…"),
            EventData::BudgetAlert(d) => {
                // The engine's messages carry the figures (`spent $0.0047 of $1.00: …`).
                let mark = self.paint("budget", anstyle::AnsiColor::Yellow);
                self.line(&format!("{mark}    {} alert: {}", d.level, d.message));
            }
            EventData::NotificationFailed(d) => {
                let mark = self.paint("notify", anstyle::AnsiColor::Yellow);
                self.line(&format!(
                    "{mark}    webhook `{}` was not told ({}): {}",
                    d.webhook,
                    d.kind,
                    d.error.as_deref().unwrap_or("failed")
                ));
            }
            EventData::AttemptRedelivered(d) => {
                let mark = self.paint("worker", anstyle::AnsiColor::Yellow);
                self.line(&format!(
                    "{mark}    {}: attempt {} taken again by {} (delivery {})",
                    d.phase, d.attempt, d.worker, d.delivery
                ));
            }
            EventData::AttemptRecalled(d) => {
                let mark = self.paint("worker", anstyle::AnsiColor::Yellow);
                self.line(&format!(
                    "{mark}    {}: attempt {} recalled from the workers (the previous coordinator's)",
                    d.phase, d.attempt
                ));
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
            let message = format!(
                "{} done · running: {}{extra}",
                self.done,
                running.join(", ")
            );
            bar.set_message(fit_spinner(&message));
        }
    }

    pub fn finish(&mut self) {
        self.start(false);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.echo = None;
    }
}

impl Drop for Progress {
    /// However the command ends, no spinner line is left behind and nothing held is lost.
    fn drop(&mut self) {
        self.finish();
    }
}

/// The terminal on stderr with its echo off, until dropped. The spinner line is drawn to the
/// last column (indicatif keeps the cursor there so that the next line starts below it), so
/// anything the terminal echoes, the `^C` of Ctrl-C or a key pressed, would wrap onto a new
/// row the view does not know of: the spinner would stay behind as a stray line and later
/// redraws would land one row off. Keys pressed meanwhile still reach the shell afterwards.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn on_stderr() -> Option<EchoOff> {
        // SAFETY: tcgetattr and tcsetattr read and write the `termios` given, on stderr's
        // terminal (the live view runs only when stderr is one).
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDERR_FILENO, &mut saved) != 0 {
                return None;
            }
            let mut quiet = saved;
            quiet.c_lflag &= !(libc::ECHO | libc::ECHOCTL);
            if libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &quiet) != 0 {
                return None;
            }
            Some(EchoOff { saved })
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: as in `on_stderr`: the settings read there are put back.
        unsafe {
            libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

/// What the spinner line leaves of `message` so that the whole line (`⠋  12s ` before it)
/// stays on one row of the terminal, with room to spare: a line that reached the last column
/// would wrap when the terminal echoes `^C`, and the view would lose track of its own line.
fn fit_spinner(message: &str) -> String {
    const BEFORE: usize = 7;
    const SPARE: usize = 4;
    match super::terminal_columns(libc::STDERR_FILENO) {
        Some(columns) => crate::query::cut(message, columns.saturating_sub(BEFORE + SPARE).max(10)),
        None => message.to_string(),
    }
}

/// A failure's message without the kind it may already start with (`budget: …` of a
/// `budget` failure), so that the kind is not shown twice.
fn without_kind<'a>(kind: &str, message: &'a str) -> &'a str {
    message
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message)
}
