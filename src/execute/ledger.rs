//! Day and month budgets shared by runs (`budgets.yaml` of the project and of the user).
//!
//! Every run that counts against such a budget keeps its reservations and its spend in a
//! ledger beside the budget: `.spectacular/spend.jsonl` for the project,
//! `<config dir>/spend.jsonl` for the user (which spans projects). One JSON object a line:
//!
//! - `{"ts", "run_id", "key", "pid", "reserve": usd}`: an agent attempt (`key` is
//!   `phase#attempt`) is about to start and may cost up to `usd`;
//! - `{"ts", "run_id", "key", "usd"}`: it ended and cost `usd` (0 releases the reservation).
//!
//! Each hop of a fallback chain reserves at its own model's price under a key of its own
//! (`phase#attempt.hop`, [`hop_key`]): the attempt's task settles the failed hop and reserves
//! the next one once `fallback.activated` (which carries both figures) is durable.
//!
//! A reservation counts until its attempt ends or its process is gone (a run killed mid-attempt
//! reserves nothing any more). Reserving reads the ledger and appends to it under an exclusive
//! lock on the file, so concurrent runs see each other's reservations: with clients that keep
//! to their ceiling, runs together never pass a shared budget.
//!
//! The run logs stay the authority for spending (`spectacular cost`); a ledger only coordinates
//! runs. Spending the logs know of but a ledger does not (runs from before the budget existed)
//! is counted as a constant read when the run starts.
//!
//! Durability: every append is one line, fsynced before the lock is released. A writer killed
//! mid-append leaves a torn last line (no trailing newline); the next writer truncates it under
//! the lock before appending, so it can never glue onto the next line. An attempt's spending
//! is settled only after the event that reports it is durable; an engine killed in between
//! leaves it to `Shared::reconcile` when the run is resumed, which appends what the log knows
//! and the ledger does not, once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::budgets::BudgetsFile;

/// The ledger's file name, in `.spectacular/` and in the user's config directory.
pub const LEDGER: &str = "spend.jsonl";

/// One line of a ledger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Line {
    ts: String,
    run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reserve: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usd: Option<f64>,
}

/// Why a reservation was refused, or a ledger could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("budget: `{phase}` would pass the {owner} {period} budget: spent ${spent:.4} + reserved by running attempts ${reserved:.4} + estimate ${estimate:.4} > ${limit:.2}")]
    Refused {
        phase: String,
        owner: String,
        period: &'static str,
        spent: f64,
        reserved: f64,
        estimate: f64,
        limit: f64,
    },
    #[error("budget: cannot use {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl Error {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// One owner's limits (the project's or the user's) and its ledger.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `project` or `user`.
    pub owner: String,
    pub ledger: PathBuf,
    pub day_usd: Option<f64>,
    pub month_usd: Option<f64>,
    /// Spending in the current day and month that the logs know of and the ledger does not.
    pub unrecorded: (f64, f64),
}

impl Limits {
    pub fn new(owner: &str, dir: &Path, file: &BudgetsFile) -> Limits {
        Limits {
            owner: owner.to_string(),
            ledger: dir.join(LEDGER),
            day_usd: file.day_usd,
            month_usd: file.month_usd,
            unrecorded: (0.0, 0.0),
        }
    }

    /// Count what the logs say was spent in the day and month of `now` beyond what the ledger
    /// holds.
    pub fn with_logged(mut self, logged: (f64, f64), now: &str) -> Limits {
        // A ledger that cannot be read counts as empty here: all that the logs know then counts
        // as unrecorded, which errs on the side of refusing. Reserving reads it again, under
        // its lock, and reports what stops it.
        let text = std::fs::read_to_string(&self.ledger).unwrap_or_default();
        let usage = Usage::of(&text, now, std::process::id());
        let recorded = (usage.day_spent, usage.month_spent);
        self.unrecorded = (
            (logged.0 - recorded.0).max(0.0),
            (logged.1 - recorded.1).max(0.0),
        );
        self
    }
}

/// What a ledger holds for the day and the month of a timestamp.
#[derive(Clone, Debug, Default, PartialEq)]
struct Usage {
    day_spent: f64,
    month_spent: f64,
    /// Reservations of attempts that have not ended, whose process is alive.
    reserved: f64,
}

impl Usage {
    fn of(text: &str, now: &str, own_pid: u32) -> Usage {
        let (day, month) = (prefix(now, 10), prefix(now, 7));
        let mut usage = Usage::default();
        let mut open: HashMap<(String, String), (f64, u32)> = HashMap::new();
        // A torn last line (a writer killed mid-append) is skipped like any unreadable one;
        // the next writer truncates it.
        for line in text.lines() {
            let Ok(line) = serde_json::from_str::<Line>(line) else {
                continue;
            };
            let key = line.key.clone().map(|k| (line.run_id.clone(), k));
            if let Some(amount) = line.reserve {
                if let (Some(key), Some(pid)) = (key, line.pid) {
                    open.insert(key, (amount, pid));
                }
                continue;
            }
            if let Some(key) = key {
                open.remove(&key);
            }
            let usd = line.usd.unwrap_or(0.0);
            if line.ts.starts_with(month) {
                usage.month_spent += usd;
                if line.ts.starts_with(day) {
                    usage.day_spent += usd;
                }
            }
        }
        usage.reserved = open
            .values()
            .filter(|(_, pid)| *pid == own_pid || alive(*pid))
            .map(|(amount, _)| amount)
            .sum();
        usage
    }
}

fn prefix(ts: &str, n: usize) -> &str {
    ts.get(..n).unwrap_or(ts)
}

/// Is process `pid` still there?
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists; no memory is involved.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The ledger file, opened for appending and locked exclusively until dropped, its torn last
/// line (if any) truncated.
struct Locked(File);

impl Locked {
    fn open(path: &Path) -> std::io::Result<Locked> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved. It waits: the
        // lock is held only while a ledger is read and one line appended.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut locked = Locked(file);
        locked.repair(path)?;
        Ok(locked)
    }

    /// Truncate a torn last line: its writer died before it ended the line, so it never
    /// counted, and the next append must start on a line of its own.
    fn repair(&mut self, path: &Path) -> std::io::Result<()> {
        let len = self.0.metadata()?.len();
        if len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        self.0.seek(std::io::SeekFrom::Start(len - 1))?;
        self.0.read_exact(&mut last)?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let text = self.text()?;
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        tracing::warn!(
            "{}: truncating a torn last line (a writer died while appending it)",
            path.display()
        );
        self.0.set_len(keep as u64)?;
        self.0.sync_data()
    }

    fn text(&mut self) -> std::io::Result<String> {
        let mut text = String::new();
        self.0.rewind()?;
        self.0.read_to_string(&mut text)?;
        Ok(text)
    }

    /// Append lines and make them durable.
    fn append(&mut self, lines: &[Line]) -> std::io::Result<()> {
        let mut text = String::new();
        for line in lines {
            text.push_str(&serde_json::to_string(line).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        #[cfg(test)]
        if std::env::var(super::crash::VAR).is_ok_and(|at| at == "ledger.append") {
            // Die in the middle of the line, as a SIGKILL during the write would.
            self.0.write_all(&text.as_bytes()[..text.len() / 2])?;
            super::crash::point("ledger.append");
        }
        self.0.write_all(text.as_bytes())?;
        self.0.sync_data()
    }
}

/// The budgets this run shares with other runs.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    limits: Vec<Limits>,
}

impl Shared {
    pub fn new(limits: Vec<Limits>) -> Shared {
        Shared { limits }
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Reserve `estimate` for attempt `key` of run `run_id` in every ledger, or refuse with the
    /// numbers of the first budget it would pass (and release what was reserved already).
    pub fn reserve(&self, run_id: &str, key: &str, estimate: f64) -> Result<(), Error> {
        let now = crate::record::now_ts();
        let pid = std::process::id();
        for (i, limits) in self.limits.iter().enumerate() {
            let reserved = reserve_in(limits, run_id, key, pid, estimate, &now);
            if let Err(e) = reserved {
                for earlier in &self.limits[..i] {
                    settle_in(earlier, run_id, key, 0.0, &now);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Attempt `key` of run `run_id` ended having cost `usd`: record it, which releases its
    /// reservation.
    pub fn settle(&self, run_id: &str, key: &str, usd: f64, ts: &str) {
        for limits in &self.limits {
            settle_in(limits, run_id, key, usd, ts);
        }
    }

    /// Settle what run `run_id`'s log says its attempts cost (`(key, usd, ts)`) and the
    /// ledgers do not hold yet: the settlements an engine killed after its commit did not
    /// write. Each is written once, whatever number of times this runs.
    pub fn reconcile(&mut self, run_id: &str, ended: &[(String, f64, String)]) {
        for limits in &mut self.limits {
            let appended = Locked::open(&limits.ledger).and_then(|mut ledger| {
                let text = ledger.text()?;
                let settled: std::collections::HashSet<String> = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Line>(l).ok())
                    .filter(|l| l.run_id == run_id && l.reserve.is_none())
                    .filter_map(|l| l.key)
                    .collect();
                let missing: Vec<Line> = ended
                    .iter()
                    .filter(|(key, usd, _)| *usd > 0.0 && !settled.contains(key))
                    .map(|(key, usd, ts)| Line {
                        ts: ts.clone(),
                        run_id: run_id.to_string(),
                        key: Some(key.clone()),
                        pid: None,
                        reserve: None,
                        usd: Some(*usd),
                    })
                    .collect();
                if !missing.is_empty() {
                    ledger.append(&missing)?;
                }
                Ok(missing)
            });
            match appended {
                Ok(lines) => {
                    // The log's spending that was counted as unrecorded is in the ledger now.
                    let now = crate::record::now_ts();
                    for line in lines {
                        let usd = line.usd.unwrap_or(0.0);
                        if line.ts.starts_with(prefix(&now, 7)) {
                            limits.unrecorded.1 = (limits.unrecorded.1 - usd).max(0.0);
                            if line.ts.starts_with(prefix(&now, 10)) {
                                limits.unrecorded.0 = (limits.unrecorded.0 - usd).max(0.0);
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    "could not reconcile spending in {}: {e}",
                    limits.ledger.display()
                ),
            }
        }
    }
}

fn reserve_in(
    limits: &Limits,
    run_id: &str,
    key: &str,
    pid: u32,
    estimate: f64,
    now: &str,
) -> Result<(), Error> {
    let path = &limits.ledger;
    let mut ledger = Locked::open(path).map_err(Error::io(path))?;
    let text = ledger.text().map_err(Error::io(path))?;
    let usage = Usage::of(&text, now, pid);
    let periods = [
        ("day", limits.day_usd, usage.day_spent + limits.unrecorded.0),
        (
            "month",
            limits.month_usd,
            usage.month_spent + limits.unrecorded.1,
        ),
    ];
    for (period, limit, spent) in periods {
        let Some(limit) = limit else { continue };
        if spent + usage.reserved + estimate > limit + 1e-9 {
            return Err(Error::Refused {
                phase: key.split('#').next().unwrap_or(key).to_string(),
                owner: limits.owner.clone(),
                period,
                spent,
                reserved: usage.reserved,
                estimate,
                limit,
            });
        }
    }
    ledger
        .append(&[Line {
            ts: now.to_string(),
            run_id: run_id.to_string(),
            key: Some(key.to_string()),
            pid: Some(pid),
            reserve: Some(estimate),
            usd: None,
        }])
        .map_err(Error::io(path))
}

fn settle_in(limits: &Limits, run_id: &str, key: &str, usd: f64, ts: &str) {
    let line = Line {
        ts: ts.to_string(),
        run_id: run_id.to_string(),
        key: Some(key.to_string()),
        pid: None,
        reserve: None,
        usd: Some(usd),
    };
    let written = Locked::open(&limits.ledger).and_then(|mut ledger| ledger.append(&[line]));
    if let Err(e) = written {
        tracing::warn!(
            "could not record spending in {}: {e}",
            limits.ledger.display()
        );
    }
}

/// The key of an attempt in a ledger.
pub fn key(phase: &str, attempt: u32) -> String {
    format!("{phase}#{attempt}")
}

/// The key of hop `hop` of an attempt's fallback chain in a ledger: the attempt's key for
/// the first candidate, `phase#attempt.hop` for the next ones. Each hop reserves and settles
/// under a key of its own, so that a hop settled before a crash is never taken for the
/// attempt's end when the run is resumed.
pub fn hop_key(phase: &str, attempt: u32, hop: u32) -> String {
    match hop {
        0 => key(phase, attempt),
        n => format!("{phase}#{attempt}.{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(dir: &Path, day: f64) -> Limits {
        Limits::new(
            "project",
            dir,
            &BudgetsFile {
                day_usd: Some(day),
                month_usd: None,
            },
        )
    }

    #[test]
    fn runs_see_each_others_reservations_until_they_settle() {
        let dir = tempfile::tempdir().unwrap();
        let a = Shared::new(vec![limits(dir.path(), 1.0)]);
        let b = Shared::new(vec![limits(dir.path(), 1.0)]);
        a.reserve("run-a", "x#1", 0.6).unwrap();
        let refused = b.reserve("run-b", "y#1", 0.6).unwrap_err().to_string();
        assert!(
            refused.contains("project day budget")
                && refused.contains("reserved by running attempts $0.6000"),
            "{refused}"
        );
        // Settling below the estimate frees the difference.
        a.settle("run-a", "x#1", 0.2, &crate::record::now_ts());
        b.reserve("run-b", "y#1", 0.6).unwrap();
        let refused = a.reserve("run-a", "x#2", 0.3).unwrap_err().to_string();
        assert!(refused.contains("spent $0.2000"), "{refused}");
    }

    #[test]
    fn reservations_of_dead_processes_and_other_days_do_not_count() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let reserved = |pid: u32| {
            format!(
                r#"{{"ts":"2026-11-21T10:00:00Z","run_id":"r1","key":"a#1","pid":{pid},"reserve":5.0}}"#
            )
        };
        // The same reservation counts while its process lives.
        let live = Usage::of(&reserved(std::process::id()), "2026-11-21T12:00:00Z", 1);
        assert_eq!(live.reserved, 5.0);
        let text = [
            // A reservation by a process that is gone.
            reserved(gone).as_str(),
            // Spent yesterday: counts for the month only.
            r#"{"ts":"2026-11-20T10:00:00Z","run_id":"r1","key":"b#1","usd":2.0}"#,
            r#"{"ts":"2026-11-21T09:00:00Z","run_id":"r2","usd":0.5}"#,
            // A torn line.
            r#"{"ts":"2026-11-21T11:00:00Z","run_id":"r3","key":"c#1","pid":1"#,
        ]
        .join("\n");
        let usage = Usage::of(&text, "2026-11-21T12:00:00Z", std::process::id());
        assert_eq!(
            usage,
            Usage {
                day_spent: 0.5,
                month_spent: 2.5,
                reserved: 0.0,
            }
        );
    }

    #[test]
    fn spending_the_logs_know_and_the_ledger_does_not_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::record::now_ts();
        let shared = Shared::new(vec![limits(dir.path(), 1.0).with_logged((0.9, 0.9), &now)]);
        let refused = shared.reserve("run", "x#1", 0.2).unwrap_err().to_string();
        assert!(refused.contains("spent $0.9000"), "{refused}");
        shared.reserve("run", "x#1", 0.1).unwrap();
    }

    #[test]
    fn what_the_ledger_holds_is_not_counted_again_from_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::record::now_ts();
        Shared::new(vec![limits(dir.path(), 10.0)]).settle("run", "a#1", 0.5, &now);
        let limits = limits(dir.path(), 10.0).with_logged((0.75, 2.0), &now);
        assert_eq!(limits.unrecorded, (0.25, 1.5));
        // The logs never count for less than the ledger holds.
        let limits = limits.with_logged((0.25, 0.25), &now);
        assert_eq!(limits.unrecorded, (0.0, 0.0));
    }

    /// A writer killed in the middle of a line leaves it torn; the next one truncates it
    /// and starts on a line of its own, the complete lines before it untouched.
    #[test]
    fn a_torn_last_line_is_truncated_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER);
        let whole = serde_json::to_string(&Line {
            ts: "2026-11-21T12:00:00Z".into(),
            run_id: "a".into(),
            usd: Some(0.5),
            ..Line::default()
        })
        .unwrap();
        std::fs::write(&path, format!("{whole}\n{{\"ts\":\"2026-11-2")).unwrap();
        let next = Line {
            ts: "2026-11-21T12:00:01Z".into(),
            run_id: "b".into(),
            usd: Some(0.25),
            ..Line::default()
        };
        Locked::open(&path)
            .unwrap()
            .append(std::slice::from_ref(&next))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("{whole}\n{}\n", serde_json::to_string(&next).unwrap())
        );
    }

    /// What reconciling counts as settled already: a settlement of this run's attempt, not
    /// its open reservation nor another run's line for the same key. What it writes stops
    /// counting as unrecorded; an attempt that cost nothing is not written.
    #[test]
    fn reconciling_writes_each_missing_settlement_and_counts_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::record::now_ts();
        let shared = Shared::new(vec![limits(dir.path(), 10.0)]);
        shared.reserve("run", "a#1", 1.0).unwrap();
        shared.settle("other", "a#1", 0.5, &now);
        let mut logged = Shared::new(vec![limits(dir.path(), 10.0).with_logged((1.0, 2.0), &now)]);
        assert_eq!(logged.limits[0].unrecorded, (0.5, 1.5));
        logged.reconcile(
            "run",
            &[
                ("a#1".to_string(), 0.25, now.clone()),
                ("b#1".to_string(), 0.0, now.clone()),
            ],
        );
        let text = std::fs::read_to_string(dir.path().join(LEDGER)).unwrap();
        let lines: Vec<Line> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let settled: Vec<(&str, &str, Option<f64>)> = lines
            .iter()
            .filter(|l| l.reserve.is_none())
            .map(|l| (l.run_id.as_str(), l.key.as_deref().unwrap_or(""), l.usd))
            .collect();
        assert_eq!(
            settled,
            [("other", "a#1", Some(0.5)), ("run", "a#1", Some(0.25))]
        );
        assert_eq!(logged.limits[0].unrecorded, (0.25, 1.25));
    }

    /// The month budget counts the month's spending, the ledger's and the logs' alike.
    #[test]
    fn a_month_budget_counts_what_the_logs_know() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::record::now_ts();
        let month = Limits::new(
            "user",
            dir.path(),
            &BudgetsFile {
                day_usd: None,
                month_usd: Some(2.0),
            },
        );
        Shared::new(vec![month.clone()]).settle("old", "x#1", 0.5, &now);
        let shared = Shared::new(vec![month.with_logged((0.0, 1.0), &now)]);
        // 0.5 in the ledger + 0.5 more in the logs + 1.25 > 2.0; 1.0 reaches it exactly.
        let refused = shared.reserve("run", "a#1", 1.25).unwrap_err().to_string();
        assert!(
            refused.contains("user month budget") && refused.contains("spent $1.0000"),
            "{refused}"
        );
        shared.reserve("run", "a#1", 1.0).unwrap();
    }

    #[test]
    fn reconciling_writes_what_the_log_knows_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut shared = Shared::new(vec![limits(dir.path(), 10.0)]);
        shared.settle("run", "a#1", 0.5, &crate::record::now_ts());
        let ended = [
            ("a#1".to_string(), 0.5, crate::record::now_ts()),
            ("b#1".to_string(), 0.25, crate::record::now_ts()),
        ];
        shared.reconcile("run", &ended);
        shared.reconcile("run", &ended);
        let text = std::fs::read_to_string(dir.path().join(LEDGER)).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let usage = Usage::of(&text, &crate::record::now_ts(), 1);
        assert!((usage.day_spent - 0.75).abs() < 1e-12, "{usage:?}");
    }
}
