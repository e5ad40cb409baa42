//! Fallback chains: the candidates of an agent attempt (the chosen agent and model, then its
//! fallbacks), run in turn; a transient failure cools the candidate down and hands over to the
//! next one (`fallback.activated`).

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
    /// Hand over to the next candidate once `fallback.activated` is durable.
    Next(tokio::sync::oneshot::Receiver<()>),
    /// Give up with every reason.
    GiveUp(AgentFailure),
}

impl Hop {
    /// Wait until the next candidate may start: its `fallback.activated` is durable. `Err`
    /// when the engine could not make it so (it is stopping).
    async fn next(
        durable: tokio::sync::oneshot::Receiver<()>,
        candidate: &Candidate,
    ) -> Result<(), AgentFailure> {
        if durable.await.is_err() {
            return Err(AgentFailure {
                agent: candidate.agent.clone(),
                kind: FailureKind::Canceled,
                message: "the engine stopped before the fallback could be recorded".into(),
                exit_code: None,
                usage: None,
            });
        }
        crash::point("fallback.next");
        Ok(())
    }
}

/// After candidate `i` failed with `class`: cool it down if the failure is transient and hand
/// over to the next candidate (recording `fallback.activated`), or give up with every reason.
fn hop(
    job: &Job,
    agent: &AgentJob,
    i: usize,
    candidate: &Candidate,
    class: crate::agents::FailureClass,
    reason: &str,
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
            let event = EventData::FallbackActivated(FallbackActivated {
                phase: job.phase.clone(),
                attempt: job.attempt,
                from_agent: candidate.agent.clone(),
                from_model: candidate.model.clone(),
                to_agent: next.agent.clone(),
                to_model: next.model.clone(),
                reason: format!("{}: {reason}", class.as_str()),
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
                    if let Some(first) = job
                        .outputs
                        .keys()
                        .next()
                        .and_then(|k| job.output_paths.get(k))
                    {
                        if let Ok(path) = super::outputs::relative_under(&job.dir, first) {
                            let _ = std::fs::write(path, &text);
                        }
                    }
                }
                let mut usage = Some(Box::new(candidate.settle(&mut outcome.usage)));
                if outcome.ok {
                    absorb(&mut usage, &spent);
                    return Ok(Ran {
                        exit_code: None,
                        usage,
                        agent: candidate.agent.clone(),
                        text: outcome.text,
                    });
                }
                let (class, reason) = outcome
                    .failure
                    .unwrap_or((crate::agents::FailureClass::Other, "the call failed".into()));
                match hop(job, agent, i, candidate, class, &reason, &mut reasons) {
                    Hop::GiveUp(failure) => {
                        let mut usage = usage;
                        absorb(&mut usage, &spent);
                        return Err(AgentFailure { usage, ..failure });
                    }
                    Hop::Next(durable) => {
                        spent.extend(usage.map(|u| *u));
                        Hop::next(durable, candidate).await?;
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
        let ended = process::run(spec, cancel.clone()).await;
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
                let reported = outcome.usage.input_tokens
                    + outcome.usage.output_tokens
                    + outcome.usage.cache_read_tokens
                    + outcome.usage.cache_write_tokens
                    > 0
                    || outcome.usage.cost_usd.is_some();
                // Nothing reported: the usage is unknown, not zero.
                let usage = reported.then(|| Box::new(candidate.settle(&mut outcome.usage)));
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
        match hop(job, agent, i, candidate, class, &reason, &mut reasons) {
            Hop::GiveUp(failure) => {
                let mut usage = usage;
                absorb(&mut usage, &spent);
                return Err(AgentFailure {
                    exit_code: code,
                    usage,
                    ..failure
                });
            }
            Hop::Next(durable) => {
                // The failed hop's tokens were spent: they count in the attempt's usage.
                spent.extend(usage.map(|u| *u));
                Hop::next(durable, candidate).await?
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
            if total.cost_source.is_none() {
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
