//! The event loop: ask the scheduler, record its decisions, commit them (group commit), act on
//! them, and turn the messages of attempts, timers, the inbox and signals into events.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::jobs::run_job;
use super::prepare::{Job, NotStarted, Work};
use super::*;
use crate::record::event::*;
use crate::schedule::{Action, State};

impl Engine {
    /// `attempts/<instance>/<attempt>` under the run directory, proven to stay under it.
    pub(super) fn attempt_dir(
        &self,
        instance: &str,
        attempt: u32,
    ) -> Result<PathBuf, crate::record::store::UnsafePath> {
        crate::record::store::join_under(
            &self.run_dir,
            &["attempts", instance, &attempt.to_string()],
        )
    }

    /// Append an event and apply it to the scheduler (durable at the next `flush`).
    pub(super) fn record(&mut self, data: EventData, actor: &str) {
        let causation = self.log.last_event_id().map(str::to_string);
        let event = self.log.append(data, actor, causation.as_deref());
        self.scheduler.apply(&event);
        // What the event settles in the shared ledgers: at the end of an agent attempt, its
        // last hop's reservation and cost (the failed hops' are settled by the attempt's task
        // once their `fallback.activated` is durable).
        let settlement = self.budget.apply(&event.data);
        self.branches.observe(&event.data);
        let ended = match &event.data {
            EventData::AttemptSucceeded(d) => Some((&d.phase, d.attempt)),
            EventData::AttemptFailed(d) => Some((&d.phase, d.attempt)),
            _ => None,
        };
        if let (Some((phase, attempt)), Some(settled), false) =
            (ended, settlement, self.shared.is_empty())
        {
            // Record the cost in the shared ledgers, which releases the reservation, once this
            // event is durable. A reservation the ledgers refused holds nothing.
            let refused = matches!(&event.data, EventData::AttemptFailed(f)
                if f.kind == crate::model::FailureKind::Budget && f.usage.is_none());
            if (self.shared_reserved.remove(&ledger::key(phase, attempt)) && !refused)
                || settled.usd > 0.0
            {
                self.unsettled
                    .push((settled.key, settled.usd, event.ts.clone()));
            }
        }
        self.uncommitted.push(event);
        self.oldest_uncommitted.get_or_insert_with(Instant::now);
    }

    /// Make every appended event durable, then update the projection and the observer.
    pub(super) fn flush(&mut self) -> Result<(), Error> {
        if self.uncommitted.is_empty() {
            return Ok(());
        }
        self.log.commit()?;
        self.oldest_uncommitted = None;
        for durable in self.awaiting_commit.drain(..) {
            let _ = durable.send(Ok(()));
        }
        if !self.claimed.is_empty() {
            crash::point("inbox.committed");
            for claimed in self.claimed.drain(..) {
                claimed.release();
            }
        }
        if !self.unsettled.is_empty() {
            crash::point("ledger.settle");
            // On the loop, before anything it decides next: an attempt started after this one
            // ended must find its reservation released and its cost spent, or it would count
            // both against the shared budgets.
            let run_id = self.log.run_id().to_string();
            for (key, usd, ts) in std::mem::take(&mut self.unsettled) {
                self.shared.settle(&run_id, &key, usd, &ts);
            }
        }
        let events = std::mem::take(&mut self.uncommitted);
        self.after_durable(events);
        Ok(())
    }

    /// Commit what is due. Without anything waiting on it (an attempt, an inbox command, the
    /// shared ledgers), the group is made durable in the background while the loop goes on
    /// with in-process work; whatever needs durable events calls [`Engine::flush`], which
    /// waits for it.
    fn commit_due(&mut self) -> Result<(), Error> {
        if self.awaiting_commit.is_empty() && self.claimed.is_empty() && self.unsettled.is_empty() {
            if self.log.in_flight() {
                return Ok(());
            }
            if self.log.commit_in_background()? {
                // The events recorded from now on wait for a group of their own.
                self.oldest_uncommitted = None;
                return Ok(());
            }
        }
        self.flush()
    }

    /// Hand on the events of a group that became durable in the background.
    fn collect_durable(&mut self) -> Result<(), Error> {
        let Some(seq) = self.log.durable()? else {
            return Ok(());
        };
        let split = self.uncommitted.partition_point(|e| e.seq <= seq);
        let durable: Vec<Event> = self.uncommitted.drain(..split).collect();
        self.after_durable(durable);
        Ok(())
    }

    /// Show durable events, offer them to the webhooks, mirror them and queue them for the
    /// projection.
    fn after_durable(&mut self, events: Vec<Event>) {
        for e in &events {
            (self.observer)(e);
        }
        self.offer_notifications(&events);
        if let Some(mirror) = &self.mirror {
            mirror.send(events.clone());
        }
        // The events move on to the projection: no copy on the way.
        if self.projection_backlog.is_empty() {
            self.projection_backlog = events;
        } else {
            self.projection_backlog.extend(events);
        }
        if self.projection_synced.elapsed() >= PROJECTION_INTERVAL {
            self.sync_projection();
        }
    }

    /// Bring the projection up to the committed events. It lags the log by at most
    /// `PROJECTION_INTERVAL` (plus the time to apply them) while a run goes: the loop syncs
    /// at a commit once that much time passed, and when it waits, it wakes up for it. Readers
    /// catch it up from the logs anyway.
    fn sync_projection(&mut self) {
        self.projection_synced = Instant::now();
        let backlog = std::mem::take(&mut self.projection_backlog);
        if let Some(projection) = &self.projection {
            projection.send(backlog);
        }
    }

    /// Drive the run until it ends, is suspended, or is canceled.
    pub async fn drive(mut self) -> Result<Outcome, Error> {
        let mut result = self.drive_inner().await;
        if let Ok(outcome) = result {
            // Deliveries about how the run ended (or why it waits) go out before the engine
            // stops, within the configured wait.
            result = self.drain_notifications().await.map(|()| outcome);
        }
        if let Some(mirror) = self.mirror.take() {
            // Every event in the stream before the command ends (or the news that another
            // coordinator took the run).
            if let Err(e) = mirror.finish().await {
                if result.is_ok() {
                    result = Err(e.into());
                }
            }
        }
        self.sync_projection();
        if let Some(projection) = &mut self.projection {
            projection.finish().await;
        }
        let superseded = matches!(
            result,
            Err(Error::Distributed(
                crate::execute::distributed::Error::Superseded { .. }
            ))
        );
        if result.is_err() && !superseded {
            // The log refused a write: stop every attempt, record nothing more. (A run another
            // coordinator took over keeps its attempts: they are that coordinator's now.)
            for (phase, attempt) in self.scheduler.running() {
                process::kill_orphan_group(
                    &self.run_dir.join("pids"),
                    &process::tag(&phase, attempt),
                );
            }
            for (_, cancel) in self.running.drain() {
                cancel.send_modify(|level| *level = process::KILL);
            }
        }
        result
    }

    async fn drive_inner(&mut self) -> Result<Outcome, Error> {
        // Every evaluation of this run happens on this thread; the flag stops them.
        let _installed = self.interrupt.install();
        let _handlers = self.spawn_watchers();
        let tx = self.tx.clone();
        self.log.set_waker(move || {
            let _ = tx.send(Msg::Synced);
        });
        self.connect_nats().await?;
        loop {
            if let Some(lost) = self.superseded.take() {
                return Err(lost.into());
            }
            self.step()?;
            let overdue = self
                .oldest_uncommitted
                .is_some_and(|t| t.elapsed() >= COMMIT_DELAY);
            if self.uncommitted.len() >= 4096 {
                self.flush()?;
            } else if overdue {
                self.commit_due()?;
            }
            if let Some(status) = self.scheduler.finished() {
                self.flush()?;
                return Ok(match status {
                    "succeeded" => Outcome::Succeeded,
                    "canceled" => Outcome::Canceled,
                    _ => Outcome::Failed,
                });
            }
            if self.scheduler.is_suspended() && self.running.is_empty() {
                self.flush()?;
                return Ok(Outcome::Suspended);
            }
            // Group commit: events of in-process work are made durable together, at the
            // latest `COMMIT_DELAY` after they were recorded, and always before an external
            // effect (a process start) that depends on them.
            // The projection follows committed events within `PROJECTION_INTERVAL` even when
            // nothing else is committed (a long attempt): wait no longer than that.
            // A group in flight wakes the loop up when it is durable; the next one starts then.
            let commit_due = if self.log.in_flight() {
                None
            } else {
                self.oldest_uncommitted
                    .map(|t| COMMIT_DELAY.saturating_sub(t.elapsed()))
            };
            let projection_due = (!self.projection_backlog.is_empty())
                .then(|| PROJECTION_INTERVAL.saturating_sub(self.projection_synced.elapsed()));
            let msg = match commit_due.into_iter().chain(projection_due).min() {
                None => self.rx.recv().await,
                Some(wait) => match tokio::time::timeout(wait, self.rx.recv()).await {
                    Ok(msg) => msg,
                    Err(_) => {
                        if self.oldest_uncommitted.is_some() {
                            self.commit_due()?;
                        }
                        if !self.projection_backlog.is_empty()
                            && self.projection_synced.elapsed() >= PROJECTION_INTERVAL
                        {
                            self.sync_projection();
                        }
                        continue;
                    }
                },
            };
            let Some(msg) = msg else {
                self.flush()?;
                return Ok(Outcome::Failed);
            };
            self.handle(msg);
            while let Ok(msg) = self.rx.try_recv() {
                self.handle(msg);
            }
            self.collect_durable()?;
            if !self.awaiting_commit.is_empty() {
                // An attempt waits for these events before it starts its next process.
                self.flush()?;
            }
        }
    }

    /// Start what brings outside events in: the inbox watcher (its own thread, so that a
    /// `cancel` stops a running script evaluation) and the Ctrl-C/SIGTERM listener (a signal
    /// handler that stops evaluations at once, and a task that tells the loop).
    fn spawn_watchers(&self) -> SignalHandlers {
        let tx = self.tx.clone();
        let inbox_dir = self.run_dir.join("inbox");
        let poll = self.settings.inbox_poll;
        let interrupt = self.interrupt.clone();
        let spawned = std::thread::Builder::new()
            .name("inbox".into())
            .spawn(move || loop {
                std::thread::sleep(poll);
                let waiting = inbox::waiting(&inbox_dir);
                if waiting.cancel {
                    interrupt.trigger();
                }
                if (waiting.any && tx.send(Msg::Inbox).is_err()) || tx.is_closed() {
                    return;
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("could not watch the inbox ({e}); `approve` and `cancel` will not reach this engine");
        }
        if !self.settings.signals {
            return SignalHandlers(Vec::new());
        }
        let handlers = SignalHandlers::install(&self.interrupt);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                let term_recv = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term_recv => {}
                }
                if tx.send(Msg::Interrupt).is_err() {
                    return;
                }
            }
        });
        handlers
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Done { phase, result } => {
                self.running.remove(&phase);
                let result = self.govern_changes(*result);
                self.record(result, "engine");
                if let Some(alert) = self.budget.due_alert() {
                    self.record(EventData::BudgetAlert(alert), "engine");
                }
            }
            Msg::RetryDue(phase) => self.scheduler.retry_due(&phase),
            Msg::Redelivered(again) => self.record_redelivery(again),
            Msg::Superseded(lost) => self.superseded = Some(lost),
            Msg::ApprovalTimeout | Msg::Synced => {}
            Msg::Record { data, durable } => {
                // The next candidate of a fallback chain reserves at its own price: the hard
                // cap may refuse it (the attempt then fails, and nothing is recorded here).
                if let EventData::FallbackActivated(hop) = data.as_ref() {
                    if let Err(refused) = self.budget.check_hop(hop) {
                        let _ = durable.send(Err(refused));
                        return;
                    }
                }
                self.record(*data, "engine");
                self.awaiting_commit.push(durable);
            }
            Msg::Inbox => {
                // What stopped a running evaluation is handled now.
                self.interrupt.clear();
                for taken in inbox::take(&self.run_dir) {
                    match taken.command.clone() {
                        inbox::Command::Approve {
                            phase,
                            approved,
                            comment,
                            actor,
                        } => {
                            if self.scheduler.state(&phase) == Some(&State::Waiting) {
                                self.record(
                                    EventData::ApprovalDecided(ApprovalDecided {
                                        phase,
                                        approved,
                                        comment,
                                        timed_out: false,
                                    }),
                                    &actor,
                                );
                            } else {
                                tracing::warn!("ignoring a decision for `{phase}`, which is not waiting for approval");
                            }
                        }
                        inbox::Command::Answer {
                            phase,
                            question,
                            text,
                            answer,
                            actor,
                        } => {
                            if self.scheduler.state(&phase) == Some(&State::Waiting) {
                                self.record(
                                    EventData::ClarificationAnswered(ClarificationAnswered {
                                        phase,
                                        question,
                                        text,
                                        answer,
                                    }),
                                    &actor,
                                );
                            } else {
                                tracing::warn!("ignoring an answer for `{phase}`, which is not waiting for one");
                            }
                        }
                        inbox::Command::Cancel { actor, reason } => {
                            if !self.scheduler.cancel_requested() {
                                self.record(
                                    EventData::CancelRequested(CancelRequested { reason }),
                                    &actor,
                                );
                            }
                        }
                    }
                    // What the command did is in the events up to here; its file goes once
                    // they are durable.
                    match taken.claim(self.log.last_seq()) {
                        Ok(claimed) => self.claimed.push(claimed),
                        Err(e) => tracing::warn!("could not claim an inbox command: {e}"),
                    }
                    crash::point("inbox.claimed");
                }
            }
            Msg::Notified(delivery) => self.notified(delivery),
            Msg::Interrupt => {
                self.interrupt.clear();
                self.interrupts += 1;
                if self.interrupts == 1 {
                    self.record(
                        EventData::CancelRequested(CancelRequested {
                            reason: Some("interrupted (Ctrl-C or SIGTERM)".into()),
                        }),
                        &inbox::actor(),
                    );
                } else {
                    // A second interrupt: stop waiting politely; kill at once.
                    self.settings.grace = Duration::ZERO;
                    for cancel in self.running.values() {
                        cancel.send_modify(|level| *level = process::KILL);
                    }
                }
            }
        }
    }

    /// Ask the scheduler, record its decisions, then act on them, until it only waits.
    fn step(&mut self) -> Result<(), Error> {
        for _ in 0..100_000 {
            self.scheduler.set_now(SystemTime::now());
            let mut actions = self.scheduler.decide();
            let interrupted = self.interrupt.is_triggered();
            if interrupted {
                // Ctrl-C or `cancel` stopped the evaluations of this round: what they
                // "decided" says nothing about the mission, so it is not recorded (the
                // scheduler decides those phases again, or cancels them, next round).
                actions.retain(|a| !stopped_by_interrupt(a));
            }
            if actions.is_empty() {
                break;
            }
            let mut starts = Vec::new();
            let mut effects = Vec::new();
            let mut recorded = false;
            for action in actions {
                match action {
                    Action::Record(data) => {
                        self.record(data, "engine");
                        recorded = true;
                    }
                    Action::Start {
                        phase,
                        attempt,
                        timeout,
                    } => starts.push((phase, attempt, timeout)),
                    other => effects.push(other),
                }
            }
            let mut prepared = Vec::new();
            for (phase, attempt, timeout) in starts {
                let (started, job) = self.prepare(&phase, attempt, timeout);
                if let Err(NotStarted::NeedsApproval(reason, questions)) = job {
                    // A policy wants a person to agree first, or a clarification asks its
                    // questions: the phase waits, no attempt.
                    self.record(
                        EventData::ApprovalRequested(ApprovalRequested {
                            phase,
                            reason,
                            timeout_ms: None,
                            questions,
                            plan: None,
                        }),
                        "engine",
                    );
                    recorded = true;
                    continue;
                }
                self.record(EventData::AttemptStarted(started), "engine");
                match job {
                    Ok(job) => prepared.push(job),
                    Err(NotStarted::NeedsApproval(..)) => {}
                    Err(NotStarted::Failed(kind, message)) => {
                        self.record(
                            EventData::AttemptFailed(AttemptFailed {
                                phase,
                                attempt,
                                kind,
                                message,
                                exit_code: None,
                                duration_ms: 0,
                                agent: None,
                                usage: None,
                                files: Vec::new(),
                            }),
                            "engine",
                        );
                        // The scheduler has something new to decide about.
                        recorded = true;
                    }
                }
            }
            // Durable first, then the external effects that depend on it (a process, or a
            // report that reads the log).
            if prepared.iter().any(|job| match &job.work {
                Work::Process(_) => true,
                Work::Builtin { step, .. } => step == "report",
                Work::Merge(_) => false,
            }) {
                self.flush()?;
            }
            for effect in effects {
                self.effect(effect);
            }
            let launched = !prepared.is_empty();
            for job in prepared {
                self.launch(job);
            }
            if interrupted || (!recorded && !launched) {
                // After an interrupt, the loop hears the Ctrl-C or `cancel` first.
                break;
            }
        }
        Ok(())
    }

    fn effect(&mut self, action: Action) {
        match action {
            Action::RetryAfter { phase, delay } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Msg::RetryDue(phase));
                });
            }
            Action::Cancel { phase, .. } => {
                if let Some(cancel) = self.running.get(&phase) {
                    cancel.send_modify(|level| *level = (*level).max(process::CANCEL));
                }
            }
            Action::ApprovalTimer { after, .. } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Msg::ApprovalTimeout);
                });
            }
            Action::Record(_) | Action::Start { .. } => {}
        }
    }

    /// With NATS: listen to the run's outcomes and start mirroring its log (what is already
    /// committed first).
    async fn connect_nats(&mut self) -> Result<(), Error> {
        let Some(link) = self.settings.nats.clone() else {
            return Ok(());
        };
        self.flush()?;
        let run_id = self.log.run_id().to_string();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let engine = self.tx.clone();
        tokio::spawn(async move {
            while let Some(again) = rx.recv().await {
                let _ = engine.send(Msg::Redelivered(again));
            }
        });
        let remote =
            crate::execute::distributed::coordinator::Remote::open(link.clone(), &run_id, tx);
        let remote = Arc::new(remote.await?);
        for (phase, attempt) in std::mem::take(&mut self.recall) {
            remote.cancel(&phase, attempt).await;
            self.record(
                EventData::AttemptRecalled(AttemptRecalled { phase, attempt }),
                "engine",
            );
        }
        self.remote = Some(remote);
        let local = self.store.read_events(&run_id)?;
        let engine = self.tx.clone();
        let lost = move |e| {
            let _ = engine.send(Msg::Superseded(e));
        };
        let mirror = crate::execute::distributed::mirror::Mirror::start(link, &run_id, local, lost);
        self.mirror = Some(mirror.await?);
        Ok(())
    }

    /// A worker took an attempt again: the earlier worker's interruption, recorded.
    fn record_redelivery(&mut self, again: crate::execute::distributed::coordinator::Redelivered) {
        if !self.running.contains_key(&again.phase) {
            return;
        }
        self.record(
            EventData::AttemptRedelivered(AttemptRedelivered {
                phase: again.phase,
                attempt: again.attempt,
                worker: again.worker,
                delivery: again.delivery,
            }),
            "engine",
        );
    }

    fn launch(&mut self, job: Job) {
        let (cancel_tx, cancel_rx) = watch::channel(0u8);
        self.running.insert(job.phase.clone(), cancel_tx);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let phase = job.phase.clone();
            let result = run_job(job, cancel_rx).await;
            let _ = tx.send(Msg::Done {
                phase,
                result: Box::new(result),
            });
        });
    }
}

/// Signal handlers that stop script evaluations on Ctrl-C and SIGTERM, removed on drop.
pub(super) struct SignalHandlers(Vec<signal_hook_registry::SigId>);

impl SignalHandlers {
    fn install(interrupt: &crate::expr::Interrupt) -> SignalHandlers {
        let mut ids = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            let interrupt = interrupt.clone();
            // SAFETY: the action only stores an atomic (`Interrupt::trigger`), which is
            // async-signal-safe; it allocates nothing and takes no lock.
            match unsafe { signal_hook_registry::register(signal, move || interrupt.trigger()) } {
                Ok(id) => ids.push(id),
                Err(e) => tracing::warn!("could not listen to signal {signal}: {e}"),
            }
        }
        SignalHandlers(ids)
    }
}

impl Drop for SignalHandlers {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

/// A decision that only says an evaluation was interrupted.
fn stopped_by_interrupt(action: &Action) -> bool {
    matches!(action, Action::Record(EventData::PhaseFailed(f))
        if f.kind == crate::model::FailureKind::Expression
            && f.message.contains(crate::expr::INTERRUPTED))
}
