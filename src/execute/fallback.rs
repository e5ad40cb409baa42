//! Fallback chains: the candidates of an agent attempt (the chosen agent and model, then its
//! fallbacks), run in turn; a transient failure cools the candidate down and hands over to the
//! next one (`fallback.activated`). Each candidate reserves against the budgets at its own
//! model's price: a hop carries what the failed candidate cost and what the next one reserves,
//! the engine checks the hard cap before recording it, and this task then settles the failed
//! candidate and reserves the next one in the budgets shared with other runs.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::prepare::Job;
use super::*;
use crate::model::FailureKind;
use crate::record::event::*;

/// The agent side of an attempt: the chain of candidates to try (the chosen agent and model,
/// then its fallbacks), the engine's cooldowns, and the way back to the engine for
/// `fallback.activated` events.
pub(super) struct AgentJob {
    pub(super) candidates: Vec<Candidate>,
    pub(super) cooldowns: Cooldowns,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
}

/// One entry of a fallback chain, ready to run.
pub(super) struct Candidate {
    pub(super) agent: String,
    pub(super) model: Option<String>,
    pub(super) runner: Runner,
    pub(super) secrets: Vec<String>,
    /// The secret variables this candidate's process must not inherit.
    pub(super) env_remove: Vec<String>,
    pub(super) prices: Option<crate::agents::Prices>,
    /// What this candidate is estimated to use at most (the prompt and a generous answer at
    /// its own model's price, [`budget::estimated_usage`]): what it reserves, and its usage
    /// when it is stopped at the timeout without having reported any.
    pub(super) estimate: crate::agents::Usage,
    /// What it reserves against the budgets: `None` when the run has none, `Err` (why) when
    /// its model has no price to reserve at.
    pub(super) reserve: Option<Result<f64, super::prepare::Unpriced>>,
}

/// How a candidate runs: a CLI client in a process, or one HTTP call (text roles).
pub(super) enum Runner {
    Cli {
        adapter: Box<dyn crate::agents::CliAdapter>,
        invocation: crate::agents::Invocation,
    },
    Http {
        protocol: crate::agents::HttpProtocol,
        endpoint: crate::agents::HttpEndpoint,
        request: crate::agents::Request,
    },
}

impl Candidate {
    pub(super) fn key(&self) -> String {
        format!("{}/{}", self.agent, self.model.as_deref().unwrap_or("-"))
    }

    /// Complete what the client reported: the model asked for, and a price from the catalog
    /// when the client reported only tokens.
    fn settle(&self, usage: &mut crate::agents::Usage) -> crate::agents::Usage {
        // One name per model in records: the catalogue's (what `models.yaml`, phases and
        // `cost --by model` use), not the provider's id a client reports.
        if self.model.is_some() {
            usage.model = self.model.clone();
        }
        if let Some(prices) = &self.prices {
            crate::agents::price(usage, prices);
        }
        usage.clone()
    }

    /// The usage of a candidate that ran out of time: what the client reported before it was
    /// stopped, or when it reported nothing, the estimate its reservation was made of (marked
    /// `estimated`): the money may well have been spent, and zero would under-count it.
    fn timed_out(&self, reported: &mut crate::agents::Usage) -> crate::agents::Usage {
        let nothing = reported.total_tokens() == 0 && reported.cost_usd.is_none_or(|c| c <= 0.0);
        if nothing {
            *reported = self.estimate.clone();
        }
        self.settle(reported)
    }
}

/// Agents (and models) that failed transiently, and until when they cool down.
pub(super) type Cooldowns = std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>>;

/// How long a failed agent or model is passed over by later attempts.
pub const COOLDOWN: Duration = Duration::from_secs(60);

pub(super) struct AgentFailure {
    pub(super) agent: String,
    pub(super) kind: FailureKind,
    pub(super) message: String,
    pub(super) exit_code: Option<i32>,
    pub(super) usage: Option<Box<crate::agents::Usage>>,
}

/// What follows a failed candidate.
enum Hop {
    /// Hand over to the next candidate once `fallback.activated` is durable (`Err`: the
    /// engine refused the hop, for the hard cap).
    Next(tokio::sync::oneshot::Receiver<Result<(), budget::Refused>>),
    /// Give up with every reason.
    GiveUp(AgentFailure),
}

/// The failed candidates' usage so far, for an attempt that ends without another candidate
/// succeeding. `Some` even when none reported anything, for a hop the budgets refused: a
/// usage (zero or not) tells the engine the attempt held a reservation to release, where a
/// bare `budget` failure is one the shared ledgers refused before anything ran.
fn spent_so_far(
    spent: &[crate::agents::Usage],
    candidate: &Candidate,
) -> Option<Box<crate::agents::Usage>> {
    let mut usage = Some(Box::new(crate::agents::Usage {
        model: candidate.model.clone(),
        ..crate::agents::Usage::default()
    }));
    if !spent.is_empty() {
        usage = None;
        absorb(&mut usage, spent);
    }
    usage
}

/// The attempt's failure after its last candidate failed: with the usage of every candidate
/// that ran (see [`spent_so_far`] for a hop the budgets refused).
fn give_up(
    failure: AgentFailure,
    usage: Option<Box<crate::agents::Usage>>,
    spent: &[crate::agents::Usage],
    candidate: &Candidate,
    exit_code: Option<i32>,
) -> AgentFailure {
    let mut usage = usage;
    absorb(&mut usage, spent);
    if failure.kind == FailureKind::Budget && usage.is_none() {
        usage = spent_so_far(spent, candidate);
    }
    AgentFailure {
        exit_code,
        usage,
        ..failure
    }
}

/// After candidate `i` failed (with `usage`, spent already and now in `spent`): once the hop
/// is durable, settle its reservation in the budgets shared with other runs and reserve the
/// next candidate's, at that candidate's own price. `Err` when the engine stopped or a budget
/// refused the next candidate.
async fn hand_over(
    job: &Job,
    agent: &AgentJob,
    i: usize,
    durable: tokio::sync::oneshot::Receiver<Result<(), budget::Refused>>,
    spent: &[crate::agents::Usage],
    cost: Option<f64>,
) -> Result<(), AgentFailure> {
    let candidate = &agent.candidates[i];
    let budget_failure = |message: String| AgentFailure {
        agent: candidate.agent.clone(),
        kind: FailureKind::Budget,
        message,
        exit_code: None,
        usage: spent_so_far(spent, candidate),
    };
    match durable.await {
        Err(_) => {
            let mut usage = None;
            absorb(&mut usage, spent);
            return Err(AgentFailure {
                agent: candidate.agent.clone(),
                kind: FailureKind::Canceled,
                message: "the engine stopped before the fallback could be recorded".into(),
                exit_code: None,
                usage,
            });
        }
        Ok(Err(refused)) => return Err(budget_failure(refused.to_string())),
        Ok(Ok(())) => {}
    }
    crash::point("fallback.next");
    let (Some(reservation), Some(next)) = (&job.reservation, agent.candidates.get(i + 1)) else {
        return Ok(());
    };
    let estimate = match &next.reserve {
        Some(Ok(usd)) => *usd,
        _ => 0.0,
    };
    let (shared, run_id) = (reservation.shared.clone(), reservation.run_id.clone());
    let (failed_key, next_key) = (
        ledger::hop_key(&job.phase, job.attempt, i as u32),
        ledger::hop_key(&job.phase, job.attempt, i as u32 + 1),
    );
    let cost = cost.unwrap_or(0.0);
    // Off the event loop: another run may hold a ledger's lock for a while.
    let reserved = tokio::task::spawn_blocking(move || {
        shared.settle(&run_id, &failed_key, cost, &crate::record::now_ts());
        shared.reserve(&run_id, &next_key, estimate)
    })
    .await;
    match reserved {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(budget_failure(e.to_string())),
        Err(e) => Err(budget_failure(format!("budget: {e}"))),
    }
}

/// After candidate `i` failed with `class`: cool it down if the failure is transient and hand
/// over to the next candidate (recording `fallback.activated` with what the failed one cost and
/// what the next one reserves), or give up with every reason.
#[allow(clippy::too_many_arguments)]
fn hop(
    job: &Job,
    agent: &AgentJob,
    i: usize,
    candidate: &Candidate,
    class: crate::agents::FailureClass,
    reason: &str,
    cost: Option<f64>,
    reasons: &mut Vec<String>,
) -> Hop {
    reasons.push(format!("{}: {}: {reason}", candidate.key(), class.as_str()));
    let total = agent.candidates.len();
    if class.is_transient() {
        if let Ok(mut cooling) = agent.cooldowns.lock() {
            cooling.insert(candidate.key(), Instant::now() + COOLDOWN);
        }
    }
    match agent.candidates.get(i + 1) {
        Some(next) if class.is_transient() => {
            let reserved_usd = match &next.reserve {
                None => None,
                Some(Ok(usd)) => Some(*usd),
                Some(Err(why)) => {
                    let (to, after) = (next.key(), class.as_str());
                    return Hop::GiveUp(AgentFailure {
                        agent: candidate.agent.clone(),
                        kind: FailureKind::Budget,
                        message: format!(
                            "budget: the fallback to `{to}` cannot reserve: {why} (after {after}: {reason})"
                        ),
                        exit_code: None,
                        usage: None,
                    });
                }
            };
            let event = EventData::FallbackActivated(FallbackActivated {
                phase: job.phase.clone(),
                attempt: job.attempt,
                from_agent: candidate.agent.clone(),
                from_model: candidate.model.clone(),
                to_agent: next.agent.clone(),
                to_model: next.model.clone(),
                reason: format!("{}: {reason}", class.as_str()),
                cost_usd: cost,
                reserved_usd,
            });
            let (durable, committed) = tokio::sync::oneshot::channel();
            let _ = agent.tx.send(Msg::Record {
                data: Box::new(event),
                durable,
            });
            Hop::Next(committed)
        }
        _ => {
            let kind = match class {
                crate::agents::FailureClass::Timeout => FailureKind::Timeout,
                crate::agents::FailureClass::Unavailable => FailureKind::Unavailable,
                _ => FailureKind::Exit,
            };
            let message = if total > 1 && i + 1 == total {
                format!(
                    "every agent of the fallback chain failed: {}",
                    reasons.join("; ")
                )
            } else {
                format!("{}: {reason}", class.as_str())
            };
            Hop::GiveUp(AgentFailure {
                agent: candidate.agent.clone(),
                kind,
                message,
                exit_code: None,
                usage: None,
            })
        }
    }
}

/// Run the candidates of an agent attempt in turn: the first that succeeds wins; a transient
/// failure moves on to the next (recording `fallback.activated` and cooling the failed one
/// down); any other failure, or the last candidate failing, fails the attempt with every
/// reason.
pub(super) async fn run_agent(
    job: &Job,
    agent: &AgentJob,
    base: &process::Spec,
    cancel: &watch::Receiver<u8>,
    limit: &str,
) -> Result<Ran, AgentFailure> {
    let mut reasons: Vec<String> = Vec::new();
    // The usage of the hops that failed before the current one.
    let mut spent: Vec<crate::agents::Usage> = Vec::new();
    for (i, candidate) in agent.candidates.iter().enumerate() {
        if i > 0 {
            // Keep the previous hop's output beside the next one's.
            for stream in [&base.stdout, &base.stderr] {
                let kept = stream.with_extension(format!("{i}.log"));
                let _ = std::fs::rename(stream, kept);
            }
        }
        let (adapter, invocation) = match &candidate.runner {
            Runner::Cli {
                adapter,
                invocation,
            } => (adapter, invocation),
            Runner::Http {
                protocol,
                endpoint,
                request,
            } => {
                let timeout = base.timeout.unwrap_or(Duration::from_secs(600));
                let mut cancel = cancel.clone();
                let canceled = async move {
                    while *cancel.borrow() < process::CANCEL {
                        if cancel.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                let outcome = tokio::select! {
                    outcome = crate::agents::call_http(*protocol, endpoint, request, timeout) => outcome,
                    _ = canceled => {
                        return Err(AgentFailure {
                            agent: candidate.agent.clone(),
                            kind: FailureKind::Canceled,
                            message: "canceled".into(),
                            exit_code: None,
                            usage: None,
                        })
                    }
                };
                let mut outcome = outcome.redacted(&candidate.secrets);
                // The answer is the attempt's output: its stdout, and its first declared output.
                let text = outcome.text.clone().unwrap_or_default();
                let _ = make_dir(&job.dir);
                let _ = std::fs::write(&base.stdout, &text);
                if outcome.ok {
                    // The files the answer gives whole: its outputs, and a work package's code.
                    let first = job
                        .outputs
                        .keys()
                        .next()
                        .and_then(|k| job.output_paths.get(k));
                    let workspace = job.worktree.as_ref().map(|w| w.cwd.as_path());
                    let written = super::answer::write(
                        &text,
                        &job.dir,
                        &job.output_paths,
                        first.map(String::as_str),
                        workspace,
                    );
                    if let Err(e) = written {
                        outcome.ok = false;
                        outcome.failure = Some((crate::agents::FailureClass::Other, e.to_string()));
                    }
                }
                let (class, reason) = outcome
                    .failure
                    .clone()
                    .unwrap_or((crate::agents::FailureClass::Other, "the call failed".into()));
                let mut usage = Some(Box::new(if outcome.ok {
                    candidate.settle(&mut outcome.usage)
                } else if class == crate::agents::FailureClass::Timeout {
                    candidate.timed_out(&mut outcome.usage)
                } else {
                    candidate.settle(&mut outcome.usage)
                }));
                if outcome.ok {
                    absorb(&mut usage, &spent);
                    return Ok(Ran {
                        exit_code: None,
                        usage,
                        agent: candidate.agent.clone(),
                        text: outcome.text,
                    });
                }
                let cost = usage.as_ref().and_then(|u| u.cost_usd);
                match hop(job, agent, i, candidate, class, &reason, cost, &mut reasons) {
                    Hop::GiveUp(failure) => {
                        return Err(give_up(failure, usage, &spent, candidate, None))
                    }
                    Hop::Next(durable) => {
                        spent.extend(usage.map(|u| *u));
                        hand_over(job, agent, i, durable, &spent, cost).await?;
                        continue;
                    }
                }
            }
        };
        let mut spec = base.clone();
        spec.argv = invocation.argv.clone();
        spec.stdin = invocation.stdin.clone();
        spec.env_remove = candidate.env_remove.clone();
        spec.env.extend(invocation.env.iter().cloned());
        // Settings files a client needs (inside the attempt's directory).
        for (path, content) in &invocation.files {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(path, content);
        }
        let ended = super::jobs::run_process(job, spec, cancel.clone()).await;
        let (class, reason, code, usage) = match &ended {
            process::Ended::Canceled => {
                return Err(AgentFailure {
                    agent: candidate.agent.clone(),
                    kind: FailureKind::Canceled,
                    message: "canceled".into(),
                    exit_code: None,
                    usage: None,
                })
            }
            process::Ended::TimedOut => {
                // What the client reported before it was stopped still counts; a timeout is
                // worth a fallback like any transient failure.
                let (stdout, stderr) = read_streams(base).await;
                let mut outcome = crate::agents::process_outcome(
                    adapter.as_ref(),
                    crate::agents::ProcessEnd::TimedOut,
                    &stdout,
                    &stderr,
                    &candidate.secrets,
                    limit,
                );
                redact_streams(base, &candidate.secrets).await;
                // Nothing reported: the usage is estimated, never zero.
                let usage = Some(Box::new(candidate.timed_out(&mut outcome.usage)));
                (
                    crate::agents::FailureClass::Timeout,
                    format!("timed out after {limit}"),
                    None,
                    usage,
                )
            }
            process::Ended::SpawnFailed(message) => (
                crate::agents::FailureClass::Unavailable,
                message.clone(),
                None,
                None,
            ),
            process::Ended::Exited { code, .. } => {
                // The agent's own report decides, not its exit code alone.
                let (stdout, stderr) = read_streams(base).await;
                let mut outcome = crate::agents::process_outcome(
                    adapter.as_ref(),
                    &ended,
                    &stdout,
                    &stderr,
                    &candidate.secrets,
                    limit,
                );
                redact_streams(base, &candidate.secrets).await;
                let mut usage = Some(Box::new(candidate.settle(&mut outcome.usage)));
                if outcome.ok {
                    absorb(&mut usage, &spent);
                    return Ok(Ran {
                        exit_code: *code,
                        usage,
                        agent: candidate.agent.clone(),
                        text: outcome.text,
                    });
                }
                let (class, reason) = outcome.failure.unwrap_or((
                    crate::agents::FailureClass::Other,
                    "the agent failed".into(),
                ));
                (class, reason, *code, usage)
            }
        };
        let cost = usage.as_ref().and_then(|u| u.cost_usd);
        match hop(job, agent, i, candidate, class, &reason, cost, &mut reasons) {
            Hop::GiveUp(failure) => return Err(give_up(failure, usage, &spent, candidate, code)),
            Hop::Next(durable) => {
                // The failed hop's tokens were spent: they count in the attempt's usage.
                spent.extend(usage.map(|u| *u));
                hand_over(job, agent, i, durable, &spent, cost).await?
            }
        }
    }
    Err(AgentFailure {
        agent: String::new(),
        kind: FailureKind::Spawn,
        message: "no agent to run; this is a bug in spectacular".into(),
        exit_code: None,
        usage: None,
    })
}

/// What a successful agent attempt reports: its exit code, its usage (with that of the hops
/// that failed before it), the agent that ran and its answer.
pub(super) struct Ran {
    pub(super) exit_code: Option<i32>,
    pub(super) usage: Option<Box<crate::agents::Usage>>,
    pub(super) agent: String,
    pub(super) text: Option<String>,
}

/// Add the usage of failed hops to the attempt's: their tokens and dollars were spent. The
/// model stays the last hop's.
fn absorb(usage: &mut Option<Box<crate::agents::Usage>>, spent: &[crate::agents::Usage]) {
    if spent.is_empty() {
        return;
    }
    let total = usage.get_or_insert_with(|| {
        Box::new(crate::agents::Usage {
            model: spent[spent.len() - 1].model.clone(),
            ..crate::agents::Usage::default()
        })
    });
    for hop in spent {
        total.input_tokens += hop.input_tokens;
        total.output_tokens += hop.output_tokens;
        total.cache_read_tokens += hop.cache_read_tokens;
        total.cache_write_tokens += hop.cache_write_tokens;
        if let Some(cost) = hop.cost_usd {
            total.cost_usd = Some(total.cost_usd.unwrap_or(0.0) + cost);
            // A total with an estimate in it is an estimate.
            if total.cost_source.is_none()
                || hop.cost_source == Some(crate::record::usage::CostSource::Estimated)
            {
                total.cost_source = hop.cost_source;
            }
        }
    }
}

/// An attempt's captured stdout and stderr (up to `OUTPUT_CAP` bytes each: off the event loop).
async fn read_streams(base: &process::Spec) -> (String, String) {
    let read = |p: &Path| {
        let p = p.to_path_buf();
        tokio::task::spawn_blocking(move || {
            String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
        })
    };
    let (stdout, stderr) = (read(&base.stdout), read(&base.stderr));
    (
        stdout.await.unwrap_or_default(),
        stderr.await.unwrap_or_default(),
    )
}

/// Redact the captured streams of an attempt in place (off the event loop).
async fn redact_streams(base: &process::Spec, secrets: &[String]) {
    let (files, secrets) = ([base.stdout.clone(), base.stderr.clone()], secrets.to_vec());
    let _ = tokio::task::spawn_blocking(move || {
        for file in &files {
            let _ = crate::agents::redact_file(file, &secrets);
        }
    })
    .await;
}
