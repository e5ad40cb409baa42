//! Starting a run and taking one over: the pinning `run.started`, the drift check against the
//! pinned mission, the process groups a dead engine left behind, and the attempts it left in
//! flight (recorded as `interrupted`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::*;
use crate::load::{self, Base, Located, Origin};
use crate::model::{FailureKind, Mission};
use crate::plan::{self, Plan};
use crate::record::event::*;
use crate::record::{self, RunLog, Store};
use crate::schedule::{Options, Scheduler};

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

/// The most bytes of an input file kept as it was when the run started.
const MAX_SNAPSHOT: u64 = 8 << 20;

/// Keep a copy of every file input (a spec…) as it is when the run starts, in
/// `<run>/inputs/<name>`, with `inputs/index.json` mapping each file's path to its copy: what
/// a plan's coverage is checked against, whatever an agent does to the file later.
fn snapshot_inputs(
    run_dir: &Path,
    mission: &crate::model::Mission,
    inputs: &std::collections::BTreeMap<String, serde_json::Value>,
) {
    let dir = run_dir.join("inputs");
    let mut index = serde_json::Map::new();
    for (name, input) in &mission.inputs {
        if input.kind != crate::model::InputType::File {
            continue;
        }
        let Some(path) = inputs.get(name).and_then(|v| v.as_str()) else {
            continue;
        };
        let Ok(real) = Path::new(path).canonicalize() else {
            continue;
        };
        if !std::fs::metadata(&real).is_ok_and(|m| m.is_file() && m.len() <= MAX_SNAPSHOT) {
            continue;
        }
        let Ok(copy) = crate::record::store::join_under(&dir, &[name]) else {
            continue;
        };
        let _ = std::fs::create_dir_all(&dir);
        if std::fs::copy(&real, &copy).is_ok() {
            index.insert(
                real.display().to_string(),
                serde_json::Value::String(copy.display().to_string()),
            );
        }
    }
    if !index.is_empty() {
        let _ = std::fs::write(
            dir.join("index.json"),
            serde_json::Value::Object(index).to_string(),
        );
    }
}

/// The copy of the file at `path` taken when the run started, if there is one.
pub(super) fn input_snapshot(run_dir: &Path, path: &str) -> Option<String> {
    let real = Path::new(path).canonicalize().ok()?;
    let index = std::fs::read(run_dir.join("inputs/index.json")).ok()?;
    let index: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&index).ok()?;
    index
        .get(&real.display().to_string())?
        .as_str()
        .map(str::to_string)
}

/// `mission` with its planning phase importing the team's `tasks.md`, when the run's `tasks`
/// input names one (see [`crate::tasks::speckit::with_team_tasks`]).
fn team_tasks(
    mission: &crate::model::Mission,
    inputs: &BTreeMap<String, serde_json::Value>,
) -> Option<crate::model::Mission> {
    let exe = std::env::current_exe().ok()?;
    crate::tasks::speckit::with_team_tasks(mission, inputs, &exe)
}

impl Engine {
    /// Create a new run: its directory, its log, and the pinning `run.started` event. Refused
    /// ([`Error::Unready`]) when an agent phase has no agent that can run here.
    pub fn start(request: StartRequest) -> Result<Engine, Error> {
        // The team's own tasks.md as the plan (`run spec.md --tasks`): what runs differs from
        // the mission as pinned only in its planning phase, derived again on resume.
        let runnable = team_tasks(&request.mission, &request.inputs);
        // Fail before spending: every problem at once, before anything is recorded.
        let problems = preflight::check(
            runnable.as_ref().unwrap_or(&request.mission),
            &request.project_root,
            request.settings.nats.is_some(),
        );
        if !problems.is_empty() {
            return Err(Error::Unready { problems });
        }
        let webhooks = crate::notify::Webhooks::load(&request.project_root, &env_var)?;
        // Work on branches starts from a commit, resolved once and recorded.
        let git_base = if worktree::works_on_branches(&request.mission) {
            match worktree::resolve_base(&request.project_root, &request.inputs) {
                Ok((_, base)) => Some(base),
                Err(problem) => return Err(Error::NoBase(problem)),
            }
        } else {
            None
        };
        let run_id = ulid::Ulid::new().to_string();
        let log = RunLog::create(&request.store, &run_id)?;
        let run_dir = request.store.run_dir(&run_id);
        let lock_file = run_dir.join("mission.lock.yaml");
        std::fs::write(&lock_file, &request.mission.source_text).map_err(|source| Error::Io {
            path: lock_file.display().to_string(),
            source,
        })?;
        snapshot_inputs(&run_dir, &request.mission, &request.inputs);
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
            git_base: git_base.map(Box::new),
        };
        let plan = Arc::new(plan::plan(runnable.unwrap_or(request.mission)));
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
            webhooks,
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
        project: &crate::project::Project,
        upgrade: bool,
        settings: Settings,
        observer: Observer,
    ) -> Result<Engine, Error> {
        let (log, events) = RunLog::open(&store, run_id)?;
        inbox::recover(&store.run_dir(run_id), log.committed_seq());
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
        let pinned = validate_pinned(run_id, located.clone(), &pinned_text, cwd, project)?;
        let (current_digest, current) = match load::load(located.clone()) {
            Ok(loaded) => match crate::validate::validate_in(&loaded, cwd, project).mission {
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
        let project_root = project.root.clone();
        let mission = team_tasks(&mission, &started.inputs).unwrap_or(mission);
        let problems = preflight::check(&mission, &project_root, settings.nats.is_some());
        if !problems.is_empty() {
            return Err(Error::Unready { problems });
        }
        let webhooks = crate::notify::Webhooks::load(&project_root, &env_var)?;
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
            webhooks,
        );
        engine.redeliver(&events);
        // What every hop and every ended attempt cost, under its ledger key.
        let mut ended: Vec<(String, f64, String)> = Vec::new();
        for e in &events {
            if let Some(settled) = engine.budget.apply(&e.data) {
                ended.push((settled.key, settled.usd, e.ts.clone()));
            }
            engine.branches.observe(&e.data);
        }
        if !engine.shared.is_empty() {
            // Spending a dead engine committed but did not settle in the shared ledgers.
            engine.shared.reconcile(run_id, &ended);
        }
        let interrupted = engine.scheduler.running();
        if engine.settings.nats.is_some() {
            // A dead coordinator's attempts may still run on workers: stop them.
            engine.recall.clone_from(&interrupted);
        }
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
                    files: Vec::new(),
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
        mut log: RunLog,
        scheduler: Scheduler,
        plan: Arc<Plan>,
        run_dir: PathBuf,
        project_root: PathBuf,
        settings: Settings,
        observer: Observer,
        webhooks: Option<crate::notify::Webhooks>,
    ) -> Engine {
        let projection = match store.projection() {
            Ok(p) => Some(projector::Projector::new(p)),
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
        let fleet = crate::sync::Gate::of(crate::sync::Settings::configured(&store));
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
        // Once per run, before anything is recorded: every event is redacted of the secrets
        // of the environment, and each child loses the ones it does not need.
        let secrets = {
            let dot_dir = project_root.join(crate::project::DOT_DIR);
            let configured = agents::load(plan.mission.base.dir(), &dot_dir).unwrap_or_default();
            Secrets::read(&configured, &catalog)
        };
        let mut pairs = secrets.pairs();
        if let Some(webhooks) = &webhooks {
            // Webhook URLs (Slack's and Discord's hold a token) and signing keys.
            pairs.extend(webhooks.secrets().iter().cloned());
        }
        log.set_secrets(pairs);
        let notifier = webhooks.map(|webhooks| {
            let tx = tx.clone();
            let report: crate::notify::Report = Arc::new(move |delivery| {
                let _ = tx.send(Msg::Notified(delivery));
            });
            webhooks.start(log.run_id(), &plan.mission.id, report)
        });
        let root = crate::git::ops::toplevel(&project_root).ok();
        let registry = root
            .as_ref()
            .filter(|_| worktree::works_on_branches(&plan.mission))
            .map(|root| std::sync::Arc::new(crate::git::guard::Registry::open(&run_dir, root)));
        let branches = worktree::Branches {
            root,
            registry,
            ..Default::default()
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
            fleet,
            unsettled: Vec::new(),
            packs,
            secrets,
            cooldowns: Cooldowns::default(),
            routed: HashMap::new(),
            branches,
            catalog,
            running: HashMap::new(),
            awaiting_commit: Vec::new(),
            claimed: Vec::new(),
            tx,
            rx,
            interrupts: 0,
            notifier,
            notify_pending: HashMap::new(),
            interrupt: crate::expr::Interrupt::new(),
            remote: None,
            mirror: None,
            superseded: None,
            recall: Vec::new(),
        }
    }
}

/// An environment variable, for the webhooks' URLs and secrets.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .map(|d| d.chars().take(12).collect())
        .unwrap_or_else(|| digest.to_string())
}

/// Where a run's mission came from, for re-reading it.
pub(super) fn locate_source(source: &str, cwd: &Path) -> Located {
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

/// The mission run `run_id` pinned, validated again; its first error when it no longer is.
fn validate_pinned(
    run_id: &str,
    located: Located,
    text: &str,
    cwd: &Path,
    project: &crate::project::Project,
) -> Result<Mission, Error> {
    let loaded = load::load_bytes(located, text.as_bytes());
    let validated = crate::validate::validate_in(&loaded, cwd, project);
    validated.mission.ok_or_else(|| Error::PinnedInvalid {
        run_id: run_id.into(),
        detail: validated
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map(|d| d.message.clone())
            .unwrap_or_else(|| "invalid".into()),
    })
}
