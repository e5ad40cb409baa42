//! Execute: the event loop of a run, and the only place with processes, timers, signals and
//! the clock. It asks the scheduler what to do, records each decision durably *before* acting
//! on it, runs attempts (processes, built-in steps, agents), and turns every outcome into an
//! event.

mod agents;
pub mod budget;
mod builtin;
pub mod inbox;
pub mod ledger;
mod outputs;
pub mod pin;
pub mod process;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::load::{self, Base, Located, Origin};
use crate::model::{FailureKind, Mission, PhaseKind, Workspace};
use crate::plan::{self, Plan};
use crate::record::event::*;
use crate::record::{self, Event, Projection, RunLog, Store};
use crate::schedule::{Action, Options, Scheduler, State};

/// Why the engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error("run `{0}` has no `run.started` event; its log is not a run")]
    NotARun(String),
    #[error("run `{run_id}` already {status}; there is nothing to resume")]
    Finished {
        run_id: String,
        status: &'static str,
    },
    #[error("the mission `{source_name}` changed since run `{run_id}` started ({pinned} → {current}); resume with `--upgrade` to continue with the changed mission, or restore it")]
    Drift {
        run_id: String,
        source_name: String,
        pinned: String,
        current: String,
    },
    #[error("the mission pinned by run `{run_id}` does not validate any more: {detail}")]
    PinnedInvalid { run_id: String, detail: String },
    #[error("failed to prepare `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// How a run ended (or paused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Suspended,
    Canceled,
}

/// Settings of the engine itself.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Time between SIGINT, SIGTERM and SIGKILL when stopping an attempt.
    pub grace: Duration,
    /// How often the inbox is checked.
    pub inbox_poll: Duration,
    /// Listen to Ctrl-C / SIGTERM (off in tests that drive the engine in-process).
    pub signals: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        let grace = std::env::var("SPECTACULAR_KILL_GRACE")
            .ok()
            .and_then(|g| crate::model::parse_duration(&g).ok())
            .unwrap_or(Duration::from_secs(3));
        Settings {
            grace,
            inbox_poll: Duration::from_millis(100),
            signals: true,
        }
    }
}

/// The project's and the user's day and month limits (`budgets.yaml`) and their ledgers. The
/// project's ledger is told what the store's logs know of this day and month.
fn shared_budgets(store: &Store, dot_dir: &Path) -> ledger::Shared {
    let now = record::now_ts();
    let mut limits = Vec::new();
    if let (Some(file), _) = crate::config::budgets::load(dot_dir) {
        let month = now.get(..7).unwrap_or(&now);
        let day = now.get(..10).unwrap_or(&now);
        let calls = crate::query::cost::calls(store, Some(month)).unwrap_or_default();
        let spent = |prefix: &str| -> f64 {
            calls
                .iter()
                .filter(|c| c.ts.starts_with(prefix))
                .map(|c| c.cost_usd)
                .sum()
        };
        let logged = (spent(day), spent(month));
        limits.push(ledger::Limits::new("project", dot_dir, &file).with_logged(logged, &now));
    }
    if let Some(user_dir) = crate::project::user_config_dir() {
        if let (Some(file), _) = crate::config::budgets::load(&user_dir) {
            limits.push(ledger::Limits::new("user", &user_dir, &file));
        }
    }
    ledger::Shared::new(limits)
}

/// The longest an event of in-process work waits for its group commit.
pub const COMMIT_DELAY: Duration = Duration::from_millis(5);

/// How often the SQLite projection is brought up to date while a run goes.
pub const PROJECTION_INTERVAL: Duration = Duration::from_millis(250);

/// Called with every event once it is durable.
pub type Observer = Box<dyn FnMut(&Event) + Send>;

enum Msg {
    /// An attempt ended: its `attempt.succeeded` or `attempt.failed`.
    Done {
        phase: String,
        result: Box<EventData>,
    },
    RetryDue(String),
    /// A gate's timeout passed: wake up, the scheduler decides.
    ApprovalTimeout,
    /// Record an event an attempt reported while it ran (a fallback hop).
    Record(Box<EventData>),
    Inbox,
    Interrupt,
}

/// A run being driven.
pub struct Engine {
    store: Store,
    log: RunLog,
    scheduler: Scheduler,
    plan: Arc<Plan>,
    run_dir: PathBuf,
    project_root: PathBuf,
    settings: Settings,
    projection: Option<Projection>,
    observer: Observer,
    uncommitted: Vec<Event>,
    oldest_uncommitted: Option<Instant>,
    projection_backlog: Vec<Event>,
    projection_synced: Instant,
    /// The model catalog, for model ids and prices.
    catalog: crate::config::models::Catalog,
    /// The run's spending against its budget, derived from its events.
    budget: budget::Budget,
    /// Day and month budgets shared with other runs, and the attempts reserved in them.
    shared: ledger::Shared,
    shared_reserved: HashSet<String>,
    /// The policy packs of this run, compiled once.
    packs: crate::policy::Packs,
    /// Agents and models that failed transiently, passed over until they cool down.
    cooldowns: Cooldowns,
    running: HashMap<String, watch::Sender<u8>>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    interrupts: u32,
}

/// What `start` needs.
pub struct StartRequest {
    pub store: Store,
    pub mission: Mission,
    pub inputs: BTreeMap<String, Value>,
    pub max_parallel: u32,
    pub project_root: PathBuf,
    pub settings: Settings,
    pub observer: Observer,
}

impl Engine {
    pub fn run_id(&self) -> &str {
        self.log.run_id()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Create a new run: its directory, its log, and the pinning `run.started` event.
    pub fn start(request: StartRequest) -> Result<Engine, Error> {
        let run_id = ulid::Ulid::new().to_string();
        let log = RunLog::create(&request.store, &run_id)?;
        let run_dir = request.store.run_dir(&run_id);
        let lock_file = run_dir.join("mission.lock.yaml");
        std::fs::write(&lock_file, &request.mission.source_text).map_err(|source| Error::Io {
            path: lock_file.display().to_string(),
            source,
        })?;
        let (digest, files) = pin::digest(&request.mission);
        let started = RunStarted {
            mission: request.mission.id.clone(),
            // Absolute for missions on disk, so that resume works from any directory.
            mission_source: match &request.mission.base {
                Base::Dir(dir) => Path::new(&request.mission.source_name)
                    .file_name()
                    .map(|f| dir.join(f).display().to_string())
                    .unwrap_or_else(|| request.mission.source_name.clone()),
                Base::Builtin(_) => request.mission.source_name.clone(),
            },
            mission_digest: digest,
            mission_text: request.mission.source_text.clone(),
            files,
            inputs: request.inputs.clone(),
            max_parallel: request.max_parallel,
            engine_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let plan = Arc::new(plan::plan(request.mission));
        let scheduler = Scheduler::new(
            plan.clone(),
            Options {
                max_parallel: request.max_parallel,
            },
        );
        let mut engine = Engine::new(
            request.store,
            log,
            scheduler,
            plan,
            run_dir,
            request.project_root,
            request.settings,
            request.observer,
        );
        engine.record(EventData::RunStarted(started), "engine");
        engine.flush()?;
        Ok(engine)
    }

    /// Take over an existing run: fold its log, check the pinned mission, mark attempts that
    /// were in flight as interrupted.
    pub fn resume(
        store: Store,
        run_id: &str,
        cwd: &Path,
        upgrade: bool,
        settings: Settings,
        observer: Observer,
    ) -> Result<Engine, Error> {
        let (log, events) = RunLog::open(&store, run_id)?;
        let Some(started) = events.iter().find_map(|e| match &e.data {
            EventData::RunStarted(s) => Some(s.clone()),
            _ => None,
        }) else {
            return Err(Error::NotARun(run_id.to_string()));
        };
        if let Some(last) = events
            .iter()
            .rev()
            .find(|e| e.data.is_terminal() || matches!(e.data, EventData::RunResumed(_)))
        {
            match last.data {
                EventData::RunSucceeded(_) => {
                    return Err(Error::Finished {
                        run_id: run_id.into(),
                        status: "succeeded",
                    })
                }
                EventData::RunFailed(_) => {
                    return Err(Error::Finished {
                        run_id: run_id.into(),
                        status: "failed",
                    })
                }
                _ => {}
            }
        }
        // The pinned mission, or the latest upgrade of it.
        let mut pinned_text = started.mission_text.clone();
        let mut pinned_digest = started.mission_digest.clone();
        for e in &events {
            if let EventData::RunResumed(RunResumed {
                upgraded: true,
                mission_text: Some(t),
                mission_digest: Some(d),
                ..
            }) = &e.data
            {
                pinned_text = t.clone();
                pinned_digest = d.clone();
            }
        }
        let located = locate_source(&started.mission_source, cwd);
        let pinned = validate_text(located.clone(), &pinned_text, cwd).map_err(|detail| {
            Error::PinnedInvalid {
                run_id: run_id.into(),
                detail,
            }
        })?;
        let (current_digest, current) = match load::load(located.clone()) {
            Ok(loaded) => match crate::validate::validate(&loaded, cwd).mission {
                Some(mission) => (pin::digest(&mission).0, Some(mission)),
                None => ("an invalid file".to_string(), None),
            },
            Err(_) => ("a missing file".to_string(), None),
        };
        let drifted = current_digest != pinned_digest;
        let mut upgraded = None;
        let mission = if drifted {
            if !upgrade {
                return Err(Error::Drift {
                    run_id: run_id.into(),
                    source_name: started.mission_source.clone(),
                    pinned: short(&pinned_digest),
                    current: short(&current_digest),
                });
            }
            match current {
                Some(mission) => {
                    upgraded = Some((current_digest.clone(), mission.source_text.clone()));
                    mission
                }
                None => {
                    return Err(Error::PinnedInvalid {
                        run_id: run_id.into(),
                        detail: format!(
                            "`{}` is {current_digest}; fix it and run `spectacular validate` first",
                            started.mission_source
                        ),
                    })
                }
            }
        } else {
            pinned
        };
        let project_root = crate::project::Project::discover(cwd).root;
        let plan = Arc::new(plan::plan(mission));
        let mut scheduler = Scheduler::new(
            plan.clone(),
            Options {
                max_parallel: started.max_parallel,
            },
        );
        for e in &events {
            scheduler.apply(e);
        }
        let run_dir = store.run_dir(run_id);
        let mut engine = Engine::new(
            store,
            log,
            scheduler,
            plan,
            run_dir,
            project_root,
            settings,
            observer,
        );
        for e in &events {
            engine.budget.apply(&e.data);
        }
        let interrupted = engine.scheduler.running();
        for (phase, attempt) in &interrupted {
            process::kill_orphan_group(
                &engine.run_dir.join("pids"),
                &process::tag(phase, *attempt),
            );
        }
        engine.record(
            EventData::RunResumed(RunResumed {
                interrupted: interrupted.iter().map(|(p, _)| p.clone()).collect(),
                upgraded: upgraded.is_some(),
                mission_digest: upgraded.as_ref().map(|u| u.0.clone()),
                mission_text: upgraded.map(|u| u.1),
            }),
            &inbox::actor(),
        );
        for (phase, attempt) in interrupted {
            engine.record(
                EventData::AttemptFailed(AttemptFailed {
                    phase,
                    attempt,
                    kind: FailureKind::Interrupted,
                    message: "the engine stopped while this attempt ran".into(),
                    exit_code: None,
                    duration_ms: 0,
                    agent: None,
                    usage: None,
                }),
                "engine",
            );
        }
        engine.flush()?;
        Ok(engine)
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        store: Store,
        log: RunLog,
        scheduler: Scheduler,
        plan: Arc<Plan>,
        run_dir: PathBuf,
        project_root: PathBuf,
        settings: Settings,
        observer: Observer,
    ) -> Engine {
        let projection = match store.projection() {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(
                    "the SQLite projection is unavailable ({e}); the log stays the authority"
                );
                None
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let budget_limits = plan.mission.budget.clone();
        let shared = shared_budgets(&store, &project_root.join(crate::project::DOT_DIR));
        let packs = {
            let dot_dir = project_root.join(crate::project::DOT_DIR);
            let user = crate::project::user_config_dir().map(|d| d.join("policies"));
            let (packs, diagnostics) = crate::policy::Packs::discover(
                &dot_dir,
                user.as_deref(),
                plan.mission.base.dir(),
                &plan.mission.policies,
            );
            for d in diagnostics.iter().filter(|d| d.is_error()) {
                tracing::warn!("a policy pack is not used: {} ({})", d.message, d.file);
            }
            let mut packs = packs;
            for (name, params) in &plan.mission.policy_params {
                if let Err(e) = packs.set_params(name, params) {
                    tracing::warn!("params of policy pack `{name}` are not used: {e}");
                }
            }
            packs
        };
        let catalog = {
            let dot_dir = project_root.join(crate::project::DOT_DIR);
            let user = crate::project::user_config_dir();
            let (catalog, diagnostics) = crate::config::models::load(&dot_dir, user.as_deref());
            for d in diagnostics.iter().filter(|d| d.is_error()) {
                tracing::warn!(
                    "models.yaml: {} ({}); using the other layers",
                    d.message,
                    d.file
                );
            }
            catalog
        };
        Engine {
            store,
            log,
            scheduler,
            plan,
            run_dir,
            project_root,
            settings,
            projection,
            observer,
            uncommitted: Vec::new(),
            oldest_uncommitted: None,
            projection_backlog: Vec::new(),
            projection_synced: Instant::now(),
            budget: budget::Budget::new(&budget_limits),
            shared,
            shared_reserved: HashSet::new(),
            packs,
            cooldowns: Cooldowns::default(),
            catalog,
            running: HashMap::new(),
            tx,
            rx,
            interrupts: 0,
        }
    }

    fn attempt_dir(&self, instance: &str, attempt: u32) -> PathBuf {
        self.run_dir
            .join("attempts")
            .join(instance)
            .join(attempt.to_string())
    }

    /// Append an event and apply it to the scheduler (durable at the next `flush`).
    fn record(&mut self, data: EventData, actor: &str) {
        let causation = self.log.last_event_id().map(str::to_string);
        let event = self.log.append(data, actor, causation.as_deref());
        self.scheduler.apply(&event);
        self.budget.apply(&event.data);
        let ended = match &event.data {
            EventData::AttemptSucceeded(d) => Some((&d.phase, d.attempt, &d.usage)),
            EventData::AttemptFailed(d) => Some((&d.phase, d.attempt, &d.usage)),
            _ => None,
        };
        if let (Some((phase, attempt, usage)), false) = (ended, self.shared.is_empty()) {
            // Record the cost in the shared ledgers, which releases the attempt's reservation.
            let cost = usage.as_ref().and_then(|u| u.cost_usd).unwrap_or(0.0);
            let key = ledger::key(phase, attempt);
            if self.shared_reserved.remove(&key) || cost > 0.0 {
                self.shared.settle(&event.run_id, &key, cost, &event.ts);
            }
        }
        self.uncommitted.push(event);
        self.oldest_uncommitted.get_or_insert_with(Instant::now);
    }

    /// Make every appended event durable, then update the projection and the observer.
    fn flush(&mut self) -> Result<(), Error> {
        if self.uncommitted.is_empty() {
            return Ok(());
        }
        self.log.commit()?;
        self.oldest_uncommitted = None;
        let events = std::mem::take(&mut self.uncommitted);
        self.projection_backlog.extend(events.iter().cloned());
        if self.projection_synced.elapsed() >= PROJECTION_INTERVAL {
            self.sync_projection();
        }
        for e in &events {
            (self.observer)(e);
        }
        Ok(())
    }

    /// Bring the projection up to the committed events. It lags the log by at most
    /// `PROJECTION_INTERVAL` while a run goes; readers catch it up from the logs anyway.
    fn sync_projection(&mut self) {
        self.projection_synced = Instant::now();
        let backlog = std::mem::take(&mut self.projection_backlog);
        if let Some(projection) = &mut self.projection {
            if let Err(e) = projection.apply(&backlog) {
                tracing::warn!(
                    "could not update the projection ({e}); it will be rebuilt from the log"
                );
                self.projection = None;
            }
        }
    }

    /// Drive the run until it ends, is suspended, or is canceled.
    pub async fn drive(mut self) -> Result<Outcome, Error> {
        let result = self.drive_inner().await;
        self.sync_projection();
        if result.is_err() {
            // The log refused a write: stop every attempt, record nothing more.
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
        self.spawn_watchers();
        loop {
            self.step()?;
            let overdue = self
                .oldest_uncommitted
                .is_some_and(|t| t.elapsed() >= COMMIT_DELAY);
            if overdue || self.uncommitted.len() >= 4096 {
                self.flush()?;
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
            let msg = if self.uncommitted.is_empty() {
                self.rx.recv().await
            } else {
                match tokio::time::timeout(COMMIT_DELAY, self.rx.recv()).await {
                    Ok(msg) => msg,
                    Err(_) => {
                        self.flush()?;
                        continue;
                    }
                }
            };
            let Some(msg) = msg else {
                self.flush()?;
                return Ok(Outcome::Failed);
            };
            self.handle(msg);
            while let Ok(msg) = self.rx.try_recv() {
                self.handle(msg);
            }
        }
    }

    fn spawn_watchers(&self) {
        let tx = self.tx.clone();
        let inbox_dir = self.run_dir.join("inbox");
        let poll = self.settings.inbox_poll;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(poll).await;
                let waiting = std::fs::read_dir(&inbox_dir)
                    .map(|mut d| {
                        d.any(|e| {
                            e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
                        })
                    })
                    .unwrap_or(false);
                if waiting && tx.send(Msg::Inbox).is_err() {
                    return;
                }
            }
        });
        if self.settings.signals {
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
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Done { phase, result } => {
                self.running.remove(&phase);
                self.record(*result, "engine");
                if let Some(alert) = self.budget.due_alert() {
                    self.record(EventData::BudgetAlert(alert), "engine");
                }
            }
            Msg::RetryDue(phase) => self.scheduler.retry_due(&phase),
            Msg::ApprovalTimeout => {}
            Msg::Record(data) => self.record(*data, "engine"),
            Msg::Inbox => {
                for command in inbox::drain(&self.run_dir) {
                    match command {
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
                        inbox::Command::Cancel { actor, reason } => {
                            if !self.scheduler.cancel_requested() {
                                self.record(
                                    EventData::CancelRequested(CancelRequested { reason }),
                                    &actor,
                                );
                            }
                        }
                    }
                }
            }
            Msg::Interrupt => {
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
            let actions = self.scheduler.decide();
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
                if let Err(NotStarted::NeedsApproval(reason)) = job {
                    // A policy wants a person to agree first: the phase waits, no attempt.
                    self.record(
                        EventData::ApprovalRequested(ApprovalRequested {
                            phase,
                            reason,
                            timeout_ms: None,
                        }),
                        "engine",
                    );
                    recorded = true;
                    continue;
                }
                self.record(EventData::AttemptStarted(started), "engine");
                match job {
                    Ok(job) => prepared.push(job),
                    Err(NotStarted::NeedsApproval(_)) => {}
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
                            }),
                            "engine",
                        );
                        // The scheduler has something new to decide about.
                        recorded = true;
                    }
                }
            }
            // Durable first, then the external effects that depend on it.
            if prepared
                .iter()
                .any(|job| matches!(job.work, Work::Process(_)))
            {
                self.flush()?;
            }
            for effect in effects {
                self.effect(effect);
            }
            let launched = !prepared.is_empty();
            for job in prepared {
                self.launch(job);
            }
            if !recorded && !launched {
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
}

/// Everything an attempt needs, prepared (rendered) before `attempt.started` is recorded.
struct Job {
    phase: String,
    attempt: u32,
    dir: PathBuf,
    timeout: Option<Duration>,
    work: Work,
    outputs: indexmap::IndexMap<String, crate::model::Output>,
    output_paths: BTreeMap<String, String>,
    base: Base,
    run_dir: PathBuf,
    /// For agent phases: how to read what the agent printed.
    agent: Option<AgentJob>,
}

/// The agent side of an attempt: the chain of candidates to try (the chosen agent and model,
/// then its fallbacks), the engine's cooldowns, and the way back to the engine for
/// `fallback.activated` events.
struct AgentJob {
    candidates: Vec<Candidate>,
    cooldowns: Cooldowns,
    tx: mpsc::UnboundedSender<Msg>,
}

/// One entry of a fallback chain, ready to run.
struct Candidate {
    agent: String,
    model: Option<String>,
    runner: Runner,
    secrets: Vec<String>,
    prices: Option<crate::agents::Prices>,
}

/// How a candidate runs: a CLI client in a process, or one HTTP call (text roles).
enum Runner {
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
    fn key(&self) -> String {
        format!("{}/{}", self.agent, self.model.as_deref().unwrap_or("-"))
    }

    /// Complete what the client reported: the model asked for, and a price from the catalog
    /// when the client reported only tokens.
    fn settle(&self, usage: &mut crate::agents::Usage) -> crate::agents::Usage {
        if usage.model.is_none() {
            usage.model = self.model.clone();
        }
        if let Some(prices) = &self.prices {
            crate::agents::price(usage, prices);
        }
        usage.clone()
    }
}

/// Agents (and models) that failed transiently, and until when they cool down.
type Cooldowns = std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>>;

/// How long a failed agent or model is passed over by later attempts.
pub const COOLDOWN: Duration = Duration::from_secs(60);

struct AgentFailure {
    agent: String,
    kind: FailureKind,
    message: String,
    exit_code: Option<i32>,
    usage: Option<Box<crate::agents::Usage>>,
}

/// After candidate `i` failed with `class`: cool it down if the failure is transient and hand
/// over to the next candidate (recording `fallback.activated`; `None`), or give up with every
/// reason (`Some`).
fn hop(
    job: &Job,
    agent: &AgentJob,
    i: usize,
    candidate: &Candidate,
    class: crate::agents::FailureClass,
    reason: &str,
    reasons: &mut Vec<String>,
) -> Option<AgentFailure> {
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
            let _ = agent.tx.send(Msg::Record(Box::new(event)));
            None
        }
        _ => {
            let kind = match class {
                crate::agents::FailureClass::Timeout => FailureKind::Timeout,
                crate::agents::FailureClass::Unavailable => FailureKind::Spawn,
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
            Some(AgentFailure {
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
async fn run_agent(
    job: &Job,
    agent: &AgentJob,
    base: &process::Spec,
    cancel: &watch::Receiver<u8>,
    limit: &str,
) -> Result<(Option<i32>, Option<Box<crate::agents::Usage>>, String), AgentFailure> {
    let mut reasons: Vec<String> = Vec::new();
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
                        let _ = std::fs::write(job.dir.join(first), &text);
                    }
                }
                let usage = Some(Box::new(candidate.settle(&mut outcome.usage)));
                if outcome.ok {
                    return Ok((None, usage, candidate.agent.clone()));
                }
                let (class, reason) = outcome
                    .failure
                    .unwrap_or((crate::agents::FailureClass::Other, "the call failed".into()));
                match hop(job, agent, i, candidate, class, &reason, &mut reasons) {
                    Some(failure) => return Err(AgentFailure { usage, ..failure }),
                    None => continue,
                }
            }
        };
        let mut spec = base.clone();
        spec.argv = invocation.argv.clone();
        spec.stdin = invocation.stdin.clone();
        spec.env.extend(invocation.env.iter().cloned());
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
                reasons.push(format!("{}: timed out after {limit}", candidate.key()));
                return Err(AgentFailure {
                    agent: candidate.agent.clone(),
                    kind: FailureKind::Timeout,
                    message: reasons.join("; "),
                    exit_code: None,
                    usage: None,
                });
            }
            process::Ended::SpawnFailed(message) => (
                crate::agents::FailureClass::Unavailable,
                message.clone(),
                None,
                None,
            ),
            process::Ended::Exited { code, .. } => {
                // The agent's own report decides, not its exit code alone.
                let read = |p: &Path| {
                    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
                };
                let (stdout, stderr) = (read(&base.stdout), read(&base.stderr));
                let mut outcome = crate::agents::process_outcome(
                    adapter.as_ref(),
                    &ended,
                    &stdout,
                    &stderr,
                    &candidate.secrets,
                    limit,
                );
                for file in [&base.stdout, &base.stderr] {
                    let _ = crate::agents::redact_file(file, &candidate.secrets);
                }
                let usage = Some(Box::new(candidate.settle(&mut outcome.usage)));
                if outcome.ok {
                    return Ok((*code, usage, candidate.agent.clone()));
                }
                let (class, reason) = outcome.failure.unwrap_or((
                    crate::agents::FailureClass::Other,
                    "the agent failed".into(),
                ));
                (class, reason, *code, usage)
            }
        };
        if let Some(failure) = hop(job, agent, i, candidate, class, &reason, &mut reasons) {
            return Err(AgentFailure {
                exit_code: code,
                usage,
                ..failure
            });
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

enum Work {
    Process(process::Spec),
    Builtin {
        step: String,
        with: Value,
        project_root: PathBuf,
        stdout: PathBuf,
        run_id: String,
        mission: String,
        report: Vec<builtin::ReportRow>,
    },
}

/// Why a started attempt did not get a job.
enum NotStarted {
    /// It failed before anything ran (recorded as `attempt.failed`).
    Failed(FailureKind, String),
    /// A policy requires an approval first (recorded as `approval.requested`).
    NeedsApproval(String),
}

impl From<(FailureKind, String)> for NotStarted {
    fn from((kind, message): (FailureKind, String)) -> NotStarted {
        NotStarted::Failed(kind, message)
    }
}

type Prepared = (AttemptStarted, Result<Job, NotStarted>);

impl Engine {
    fn prepare(&mut self, instance: &str, attempt: u32, timeout: Option<Duration>) -> Prepared {
        let dir = self.attempt_dir(instance, attempt);
        let mut started = AttemptStarted {
            phase: instance.to_string(),
            attempt,
            workdir: dir
                .strip_prefix(&self.run_dir)
                .unwrap_or(&dir)
                .display()
                .to_string(),
            argv: None,
            prompt_digest: None,
            reserved_usd: None,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
        };
        let job = self.prepare_job(instance, attempt, timeout, &dir, &mut started);
        (started, job)
    }

    fn prepare_job(
        &mut self,
        instance: &str,
        attempt: u32,
        timeout: Option<Duration>,
        dir: &Path,
        started: &mut AttemptStarted,
    ) -> Result<Job, NotStarted> {
        let phase = self.scheduler.phase_of(instance).cloned().ok_or((
            FailureKind::Spawn,
            format!("unknown phase `{instance}`; this is a bug in spectacular"),
        ))?;
        // In-process built-ins create their directory only when they write something.
        if !matches!(phase.kind, PhaseKind::Uses { .. }) {
            make_dir(dir).map_err(|e| {
                (
                    FailureKind::Spawn,
                    format!("creating `{}`: {e}", dir.display()),
                )
            })?;
        }
        let context = self.scheduler.context(instance, attempt);
        let render = |text: &str| {
            crate::prompt::render(text, &context).map_err(|e| (FailureKind::Expression, e))
        };
        let mut output_paths = BTreeMap::new();
        for (name, output) in &phase.outputs {
            output_paths.insert(name.clone(), render(&output.path)?);
        }
        let cwd = match phase.workspace {
            Workspace::Repo => self.project_root.clone(),
            Workspace::Attempt | Workspace::Worktree => dir.to_path_buf(),
        };
        let mut env = vec![
            (
                "SPECTACULAR_RUN_ID".to_string(),
                self.log.run_id().to_string(),
            ),
            ("SPECTACULAR_PHASE".to_string(), instance.to_string()),
            ("SPECTACULAR_ATTEMPT".to_string(), attempt.to_string()),
            (
                "SPECTACULAR_OUTPUT_DIR".to_string(),
                dir.display().to_string(),
            ),
            (
                "SPECTACULAR_RUN_DIR".to_string(),
                self.run_dir.display().to_string(),
            ),
        ];
        if let Some(item) = self.scheduler.item_of(instance) {
            env.push(("SPECTACULAR_ITEM".to_string(), item.to_string()));
        }
        let grace = self.settings.grace;
        let ledger = self.run_dir.join("pids");
        let spec = |argv: Vec<String>, stdin: Option<Vec<u8>>| process::Spec {
            argv,
            cwd: cwd.clone(),
            env: env.clone(),
            stdin,
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
            pid_file: ledger.clone(),
            tag: process::tag(instance, attempt),
            timeout,
            grace,
        };
        let mut agent_job = None;
        let work = match &phase.kind {
            PhaseKind::Run { argv } => {
                let argv = argv
                    .iter()
                    .map(|a| render(a))
                    .collect::<Result<Vec<_>, _>>()?;
                started.argv = Some(argv.clone());
                Work::Process(spec(argv, None))
            }
            PhaseKind::Shell { script } => {
                let argv = vec!["sh".to_string(), "-c".to_string(), render(script)?];
                started.argv = Some(argv.clone());
                Work::Process(spec(argv, None))
            }
            PhaseKind::Uses { step, with } => {
                let with =
                    render_value(&Value::Object(with.clone().into_iter().collect()), &context)
                        .map_err(|e| (FailureKind::Expression, e))?;
                let wants_report = step == "builtin/report";
                let mut report: Vec<builtin::ReportRow> = self
                    .scheduler
                    .instances()
                    .filter(|(name, _, _)| wants_report && *name != instance)
                    .map(|(name, state, attempts)| builtin::ReportRow {
                        phase: name.to_string(),
                        state: state.name().to_string(),
                        attempts,
                        artifacts: self
                            .scheduler
                            .artifacts_of(name)
                            .map(|a| a.values().cloned().collect())
                            .unwrap_or_default(),
                    })
                    .collect();
                // Fan-out children right after their parent, in mission order.
                let order: HashMap<&str, usize> = self
                    .plan
                    .phases()
                    .enumerate()
                    .map(|(i, p)| (p.id.as_str(), i))
                    .collect();
                report.sort_by_key(|row| {
                    let parent = row.phase.split('[').next().unwrap_or(&row.phase);
                    (
                        order.get(parent).copied().unwrap_or(usize::MAX),
                        row.phase.contains('['),
                    )
                });
                Work::Builtin {
                    step: step.strip_prefix("builtin/").unwrap_or(step).to_string(),
                    with,
                    project_root: self.project_root.clone(),
                    stdout: dir.join("stdout.log"),
                    run_id: self.log.run_id().to_string(),
                    mission: self.plan.mission.id.clone(),
                    report,
                }
            }
            PhaseKind::Agent {
                role,
                agent,
                prompt,
                model,
            } => {
                let template = match prompt {
                    Some(p) => self
                        .plan
                        .mission
                        .base
                        .read(p)
                        .map_err(|e| (FailureKind::Spawn, format!("prompt template: {e}")))?,
                    None => format!(
                        "You are the {} of this mission.\n",
                        role.as_deref().unwrap_or("agent")
                    ),
                };
                let text = render(&template)?;
                let prompt_file = dir.join("prompt.md");
                std::fs::write(&prompt_file, &text)
                    .map_err(|e| (FailureKind::Spawn, format!("writing the prompt: {e}")))?;
                started.prompt_digest = Some(pin::sha256(text.as_bytes()));
                let dot_dir = self.project_root.join(crate::project::DOT_DIR);
                let configured = agents::load(self.plan.mission.base.dir(), &dot_dir)
                    .map_err(|e| (FailureKind::Spawn, e))?;
                // Policies route, govern and budget the phase; every decision is recorded.
                let decisions =
                    self.decide_policies(instance, attempt, &phase, &configured, &text, &context);
                for event in decisions.events(instance) {
                    self.record(event, "engine");
                }
                match &decisions.govern {
                    crate::policy::GovernOutcome::Allow => {}
                    crate::policy::GovernOutcome::Deny { reason, pack } => {
                        return Err(NotStarted::Failed(
                            FailureKind::Denied,
                            format!("denied by policy `{pack}`: {reason}"),
                        ));
                    }
                    crate::policy::GovernOutcome::RequireApproval { reason, pack } => {
                        if !self.scheduler.approved(instance) {
                            return Err(NotStarted::NeedsApproval(format!(
                                "policy `{pack}`: {reason}"
                            )));
                        }
                    }
                }
                let routed_agent = agent
                    .clone()
                    .or_else(|| decisions.agent().map(str::to_string));
                // A budget downgrade wins over everything (it is what `govern` judged), then the
                // phase's pinned model, then the route's.
                let downgraded = decisions
                    .budget
                    .iter()
                    .any(|d| d.kind() == Some("downgrade"))
                    .then(|| decisions.model().map(str::to_string))
                    .flatten();
                let routed_model = downgraded
                    .or_else(|| model.clone())
                    .or_else(|| decisions.model().map(str::to_string));
                let (agent_name, chosen) =
                    agents::choose(&configured, routed_agent.as_deref(), role.as_deref())
                        .map_err(|e| (FailureKind::Spawn, e))?;
                let mut agent_context = context.clone();
                if let Some(mission_dir) = self.plan.mission.base.dir() {
                    agent_context["mission_dir"] = Value::String(mission_dir.display().to_string());
                }
                // The catalog name (for prices) and the provider's id (for the client).
                let model_name = routed_model.or_else(|| chosen.model.clone());
                let prices = self.prices(model_name.as_deref());
                // The hard cap: reserve a conservative estimate before starting, or refuse.
                // Then the day and month budgets shared with other runs.
                let reserved = match self.budget.enforced() || !self.shared.is_empty() {
                    false => None,
                    true => {
                        let estimate = budget::estimate(prices.as_ref(), text.chars().count());
                        self.budget
                            .check(instance, estimate)
                            .map_err(|e| (FailureKind::Budget, e))?;
                        if !self.shared.is_empty() {
                            let key = ledger::key(instance, attempt);
                            self.shared
                                .reserve(self.log.run_id(), &key, estimate)
                                .map_err(|e| (FailureKind::Budget, e))?;
                            self.shared_reserved.insert(key);
                        }
                        Some(estimate)
                    }
                };
                started.reserved_usd = reserved;
                let make =
                    |name: &str, config: &crate::agents::AdapterConfig, model: Option<String>| {
                        self.candidate(
                            name,
                            config,
                            model,
                            &agent_context,
                            &text,
                            &prompt_file,
                            &cwd,
                            reserved,
                        )
                    };
                // The chain: the chosen agent, its model's fallbacks (same provider), then its
                // agent fallbacks. Entries cooling down after a recent failure go last.
                let mut candidates = vec![make(agent_name, chosen, model_name.clone())
                    .map_err(|e| (FailureKind::Spawn, e))?];
                if let Some(spec) = model_name.as_deref().and_then(|m| self.catalog.get(m)) {
                    for fallback in &spec.fallbacks {
                        let same_provider = self
                            .catalog
                            .get(fallback)
                            .is_some_and(|f| f.provider == spec.provider);
                        if same_provider && chosen.adapter != "command" {
                            if let Ok(c) = make(agent_name, chosen, Some(fallback.clone())) {
                                candidates.push(c);
                            }
                        }
                    }
                }
                for fallback in &chosen.fallbacks {
                    if let Some(config) = configured.agents.get(fallback) {
                        let model = config.model.clone().or_else(|| model_name.clone());
                        if let Ok(c) = make(fallback, config, model) {
                            candidates.push(c);
                        }
                    }
                }
                if let Ok(cooling) = self.cooldowns.lock() {
                    let now = Instant::now();
                    candidates
                        .sort_by_key(|c| cooling.get(&c.key()).is_some_and(|until| *until > now));
                }
                started.argv = match &candidates[0].runner {
                    Runner::Cli { invocation, .. } => Some(invocation.argv.clone()),
                    Runner::Http { .. } => None,
                };
                agent_job = Some(AgentJob {
                    candidates,
                    cooldowns: self.cooldowns.clone(),
                    tx: self.tx.clone(),
                });
                Work::Process(spec(Vec::new(), None))
            }
            PhaseKind::Approval { .. } => {
                return Err(NotStarted::Failed(
                    FailureKind::Spawn,
                    "an approval gate has no attempt; this is a bug in spectacular".into(),
                ));
            }
        };
        Ok(Job {
            phase: instance.to_string(),
            attempt,
            dir: dir.to_path_buf(),
            timeout,
            work,
            outputs: phase.outputs.clone(),
            output_paths,
            base: self.plan.mission.base.clone(),
            run_dir: self.run_dir.clone(),
            agent: agent_job,
        })
    }

    /// Prices of a catalog model, for pricing usage and estimating reservations.
    fn prices(&self, model: Option<&str>) -> Option<crate::agents::Prices> {
        model
            .and_then(|m| self.catalog.get(m))
            .map(|s| crate::agents::Prices {
                input: s.price.input,
                output: s.price.output,
                cache_read: s.price.cache_read,
                cache_write: s.price.cache_write,
            })
    }

    /// One ready-to-run entry of an agent attempt's chain.
    #[allow(clippy::too_many_arguments)]
    fn candidate(
        &self,
        name: &str,
        config: &crate::agents::AdapterConfig,
        model: Option<String>,
        agent_context: &Value,
        prompt: &str,
        prompt_file: &Path,
        workdir: &Path,
        reserved: Option<f64>,
    ) -> Result<Candidate, String> {
        let spec = model.as_deref().and_then(|m| self.catalog.get(m));
        let model_id = model
            .as_ref()
            .map(|m| spec.and_then(|s| s.id.clone()).unwrap_or_else(|| m.clone()));
        let request = crate::agents::Request {
            prompt: prompt.to_string(),
            prompt_file: prompt_file.to_path_buf(),
            model: model_id.clone(),
            workdir: workdir.to_path_buf(),
            max_budget_usd: reserved,
            max_turns: None,
        };
        let prices = self.prices(model.as_deref());
        if let Some(protocol) = crate::agents::HttpProtocol::from_adapter(&config.adapter) {
            let mut endpoint = crate::agents::HttpEndpoint::from_config(protocol, config);
            if let Some(id) = model_id {
                endpoint.model = id;
            }
            let key: Vec<String> = endpoint.api_key_env.clone().into_iter().collect();
            return Ok(Candidate {
                agent: name.to_string(),
                secrets: crate::agents::secret_values(&key),
                prices,
                model,
                runner: Runner::Http {
                    protocol,
                    endpoint,
                    request,
                },
            });
        }
        let adapter: Box<dyn crate::agents::CliAdapter> = if config.adapter == "command" {
            Box::new(
                crate::agents::command::CommandAdapter::new(config)
                    .with_context(agent_context.clone()),
            )
        } else {
            crate::agents::cli_adapter(&config.adapter, config).ok_or_else(|| {
                format!(
                    "agent `{name}` uses adapter `{}`, which this engine does not run",
                    config.adapter
                )
            })?
        };
        let invocation = adapter.try_invocation(&request)?;
        Ok(Candidate {
            agent: name.to_string(),
            secrets: crate::agents::secrets(Some(adapter.as_ref()), config),
            prices,
            model,
            runner: Runner::Cli {
                adapter,
                invocation,
            },
        })
    }

    /// Run the policy hooks for an agent attempt.
    fn decide_policies(
        &self,
        instance: &str,
        attempt: u32,
        phase: &crate::plan::PlannedPhase,
        configured: &crate::agents::config::AgentsFile,
        prompt: &str,
        context: &Value,
    ) -> crate::policy::Decisions {
        use crate::policy::{ModelInfo, PhaseContext, RoutingContext, RunContext};
        let PhaseKind::Agent {
            role, agent, model, ..
        } = &phase.kind
        else {
            return self.packs.decide(&RoutingContext::default());
        };
        // The agents serving the role come first: a route that names none picks among them.
        let mut agents: Vec<String> = configured
            .agents
            .iter()
            .filter(|(_, a)| role.as_ref().is_some_and(|r| a.roles.contains(r)))
            .map(|(n, _)| n.clone())
            .collect();
        agents.extend(
            configured
                .agents
                .keys()
                .filter(|n| !agents.contains(n))
                .cloned()
                .collect::<Vec<_>>(),
        );
        // Offer the models the likely agent can use: a provider's own CLI takes its models.
        let chosen = agent
            .as_ref()
            .or(agents.first())
            .and_then(|a| configured.agents.get(a));
        let provider = match chosen.map(|a| a.adapter.as_str()) {
            Some("claude-code") | Some("anthropic-messages") => Some("anthropic"),
            Some("codex") | Some("openai-chat") => Some("openai"),
            Some("gemini") => Some("google"),
            _ => None,
        };
        let analysis = context["outputs"]
            .as_object()
            .and_then(|o| {
                o.values()
                    .flat_map(|v| v.as_object())
                    .flat_map(|v| v.values())
                    .find(|v| v.get("complexity").is_some())
            })
            .cloned()
            .unwrap_or(Value::Null);
        let complexity = analysis.get("complexity").and_then(Value::as_f64);
        let budget_usd = self.budget.cap();
        let ctx = RoutingContext {
            phase: PhaseContext {
                id: instance.to_string(),
                role: role.clone(),
                kind: "agent".into(),
                attempt,
                prompt_chars: prompt.chars().count() as u64,
                prompt_tokens_estimate: (prompt.chars().count() as u64).div_ceil(4),
                paths: phase.outputs.values().map(|o| o.path.clone()).collect(),
                agent: agent.clone(),
                model: model.clone(),
            },
            run: RunContext {
                mission: self.plan.mission.id.clone(),
                inputs: context["inputs"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                complexity,
                tier: analysis
                    .get("tier")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        complexity.map(|c| {
                            if c < 0.3 {
                                "low"
                            } else if c < 0.7 {
                                "medium"
                            } else {
                                "high"
                            }
                            .to_string()
                        })
                    }),
                risk_areas: analysis
                    .get("risk_areas")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                spent_usd: self.budget.spent(),
                budget_usd,
                remaining_usd: budget_usd
                    .map(|cap| (cap - self.budget.spent() - self.budget.reserved()).max(0.0)),
                soft_usd: self.budget.soft(),
            },
            agents,
            models: self
                .catalog
                .models
                .iter()
                .filter(|(_, (m, _))| provider.is_none_or(|p| m.provider == p))
                .map(|(name, (m, _))| ModelInfo {
                    name: name.clone(),
                    provider: m.provider.clone(),
                    tier: m.tier.as_str().to_string(),
                    input_per_mtok: m.price.input,
                    output_per_mtok: m.price.output,
                    context_window: m.context_window.unwrap_or(0),
                })
                .collect(),
        };
        self.packs.decide(&ctx.normalized())
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

async fn run_job(job: Job, mut cancel: watch::Receiver<u8>) -> EventData {
    let began = Instant::now();
    // The agent that ran: the chain's first, or the one a fallback moved to.
    let agent_name = std::sync::Mutex::new(
        job.agent
            .as_ref()
            .and_then(|a| a.candidates.first())
            .map(|c| c.agent.clone()),
    );
    let failed = |kind, message: String, exit_code, usage: Option<Box<crate::agents::Usage>>| {
        EventData::AttemptFailed(AttemptFailed {
            phase: job.phase.clone(),
            attempt: job.attempt,
            kind,
            message,
            exit_code,
            duration_ms: began.elapsed().as_millis() as u64,
            agent: agent_name.lock().ok().and_then(|a| a.clone()),
            usage,
        })
    };
    let limit = job
        .timeout
        .map(crate::model::format_duration)
        .unwrap_or_default();
    let mut exit_code = None;
    let mut usage = None;
    match &job.work {
        Work::Process(spec) => {
            if let Some(agent) = &job.agent {
                match run_agent(&job, agent, spec, &cancel, &limit).await {
                    Ok((code, used, ran)) => {
                        exit_code = code;
                        usage = used;
                        if let Ok(mut a) = agent_name.lock() {
                            *a = Some(ran);
                        }
                    }
                    Err(f) => {
                        if let Ok(mut a) = agent_name.lock() {
                            *a = Some(f.agent.clone());
                        }
                        return failed(f.kind, f.message, f.exit_code, f.usage);
                    }
                }
            } else {
                match process::run(spec.clone(), cancel.clone()).await {
                    process::Ended::TimedOut => {
                        return failed(
                            FailureKind::Timeout,
                            format!("timed out after {limit}"),
                            None,
                            None,
                        )
                    }
                    process::Ended::Canceled => {
                        return failed(FailureKind::Canceled, "canceled".into(), None, None)
                    }
                    process::Ended::SpawnFailed(message) => {
                        return failed(FailureKind::Spawn, message, None, None)
                    }
                    process::Ended::Exited { code: Some(0), .. } => exit_code = Some(0),
                    process::Ended::Exited {
                        code: Some(code), ..
                    } => {
                        let tail = tail(&spec.stderr);
                        return failed(
                            FailureKind::Exit,
                            format!("exited with code {code}{tail}"),
                            Some(code),
                            None,
                        );
                    }
                    process::Ended::Exited { signal, .. } => {
                        let signal = signal.unwrap_or(0);
                        return failed(
                            FailureKind::Exit,
                            format!("killed by signal {signal}"),
                            None,
                            None,
                        );
                    }
                }
            }
        }
        Work::Builtin {
            step,
            with,
            project_root,
            stdout,
            run_id,
            mission,
            report,
        } => {
            let ctx = builtin::Ctx {
                attempt_dir: &job.dir,
                project_root,
                with,
                stdout,
                run_id,
                mission,
                report,
            };
            let timeout = job.timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
            let canceled = async {
                loop {
                    if *cancel.borrow() >= process::CANCEL {
                        return;
                    }
                    if cancel.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                result = builtin::run(step, ctx) => {
                    if let Err((kind, message)) = result {
                        return failed(kind, message, None, None);
                    }
                }
                _ = tokio::time::sleep(timeout) => {
                    return failed(FailureKind::Timeout, format!("timed out after {limit}"), None, None);
                }
                _ = canceled => return failed(FailureKind::Canceled, "canceled".into(), None, None),
            }
        }
    }
    match outputs::promote(
        &job.outputs,
        &job.output_paths,
        &job.dir,
        &job.run_dir,
        &job.phase,
        &job.base,
    ) {
        Ok(promoted) => EventData::AttemptSucceeded(AttemptSucceeded {
            phase: job.phase.clone(),
            attempt: job.attempt,
            exit_code,
            duration_ms: began.elapsed().as_millis() as u64,
            artifacts: promoted.artifacts,
            values: promoted.values,
            agent: agent_name.lock().ok().and_then(|a| a.clone()),
            usage,
        }),
        Err(message) => failed(FailureKind::OutputInvalid, message, exit_code, usage),
    }
}

/// Create a directory with as few system calls as possible (its parents usually exist).
pub(crate) fn make_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match dir.parent() {
                // Usually only the phase's directory is missing: one more call, not three.
                Some(parent) => match std::fs::create_dir(parent) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(_) => std::fs::create_dir_all(parent)?,
                },
                None => return Err(e),
            }
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

/// The last lines of a captured stream, for failure messages.
fn tail(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(3);
    format!(": {}", lines[start..].join(" / "))
}

fn render_value(value: &Value, context: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(crate::prompt::render(s, context)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .map(|d| d.chars().take(12).collect())
        .unwrap_or_else(|| digest.to_string())
}

/// Where a run's mission came from, for re-reading it.
fn locate_source(source: &str, cwd: &Path) -> Located {
    if let Some(rest) = source.strip_prefix("builtin:missions/") {
        let name = rest.split('/').next().unwrap_or(rest).to_string();
        return Located {
            display: source.to_string(),
            origin: Origin::Builtin,
            base: Base::Builtin(name),
            path: None,
        };
    }
    let path = cwd.join(source);
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cwd.to_path_buf());
    Located {
        display: source.to_string(),
        origin: Origin::Path,
        base: Base::Dir(base),
        path: Some(path),
    }
}

fn validate_text(located: Located, text: &str, cwd: &Path) -> Result<Mission, String> {
    let loaded = load::load_bytes(located, text.as_bytes());
    let validated = crate::validate::validate(&loaded, cwd);
    validated.mission.ok_or_else(|| {
        validated
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map(|d| d.message.clone())
            .unwrap_or_else(|| "invalid".into())
    })
}
