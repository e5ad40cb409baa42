//! Execute: the event loop of a run, and the only place with processes, timers, signals and
//! the clock. It asks the scheduler what to do, records each decision durably *before* acting
//! on it, runs attempts (processes, built-in steps, agents), and turns every outcome into an
//! event.
//!
//! - `start.rs`: starting a run, and resuming one (what a dead engine left behind);
//! - `run_loop.rs`: the event loop (ask, record, commit, act; messages and signals);
//! - `prepare.rs`: preparing each kind of attempt (argv, scripts, prompts, built-ins, agents);
//! - `decide.rs`: the policy hooks of agent attempts, and `govern` asked again about an
//!   attempt that changed files outside its work package's `owned_files`;
//! - `fallback.rs`: fallback chains and cooldowns;
//! - `preflight.rs`: before a run starts, whether every agent phase has an agent that can
//!   run here;
//! - `jobs.rs`: the spawned task of each attempt;
//! - `projector.rs`: the SQLite projection, updated on a thread of its own;
//! - `notifications.rs`: durable events offered to the project's webhooks, and each
//!   delivery recorded;
//! - processes and side files: `process.rs` (with `identity.rs`: which process groups are
//!   provably ours), `inbox.rs`, `ledger.rs`; and `builtin.rs`, `outputs.rs`, `budget.rs`,
//!   `pin.rs`;
//! - `crash.rs` and `tests.rs`: crash points and the crash tests of the side files.

mod agents;
mod answer;
pub mod budget;
mod builtin;
mod crash;
mod decide;
pub mod distributed;
mod fallback;
pub mod identity;
pub mod inbox;
mod jobs;
pub mod ledger;
mod notifications;
mod outputs;
pub mod pin;
mod preflight;
mod prepare;
pub mod process;
mod projector;
mod run_loop;
mod start;
#[cfg(test)]
mod tests;
mod view;
mod worktree;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::model::Mission;
use crate::plan::Plan;
use crate::record::event::EventData;
use crate::record::{self, Event, RunLog, Store};
use crate::schedule::Scheduler;

use fallback::Cooldowns;
pub use fallback::COOLDOWN;
pub use worktree::BaseError;

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
    #[error("this run cannot start here:\n  {}\n`spectacular agents doctor` shows what can run here", problems.join("\n  "))]
    Unready { problems: Vec<String> },
    /// A mission that works on branches, outside a git repository with a commit.
    #[error("this run cannot start here: {0}")]
    NoBase(worktree::BaseError),
    #[error(transparent)]
    Notify(#[from] crate::notify::Error),
    #[error(transparent)]
    Distributed(#[from] distributed::Error),
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
    /// Run attempts on NATS workers and mirror the log to JetStream (`--nats`).
    pub nats: Option<Arc<distributed::coordinator::Link>>,
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
            nats: None,
        }
    }
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
    /// Record an event an attempt reported while it ran (a fallback hop), and tell it once
    /// the event is durable: the attempt waits for that before its next process starts.
    /// `Err` (nothing recorded): the hard cap refuses the hop's reservation.
    Record {
        data: Box<EventData>,
        durable: tokio::sync::oneshot::Sender<Result<(), budget::Refused>>,
    },
    Inbox,
    Interrupt,
    /// A webhook delivery ended: record it.
    Notified(crate::notify::Delivery),
    /// A worker took an attempt after another went silent (NATS).
    Redelivered(distributed::coordinator::Redelivered),
    /// Another coordinator appended to the run's stream first (NATS).
    Superseded(distributed::Error),
    /// The log's group in flight is durable (or failed): collect it.
    Synced,
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
    projection: Option<projector::Projector>,
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
    /// With `sync.enforce_budget`: the control plane's fleet budget, asked before each agent
    /// attempt (`crate::sync::Gate`).
    fleet: Option<crate::sync::Gate>,
    /// Spending to settle in the shared ledgers once the events reporting it are durable:
    /// `(key, usd, ts)`.
    unsettled: Vec<(String, f64, String)>,
    /// The secret variables of this run's environment (read once), for the redactor and for
    /// what each child must not inherit.
    secrets: Secrets,
    /// The policy packs of this run, compiled once.
    packs: crate::policy::Packs,
    /// Agents and models that failed transiently, passed over until they cool down.
    cooldowns: Cooldowns,
    /// The context the policy hooks saw before each running agent attempt, for `govern` to
    /// be asked again about what the attempt changed.
    routed: HashMap<String, Box<crate::policy::RoutingContext>>,
    /// The run's git base and the work committed on its branches.
    branches: worktree::Branches,
    running: HashMap<String, watch::Sender<u8>>,
    /// Attempts waiting for their events to be durable (see `Msg::Record`).
    awaiting_commit: Vec<tokio::sync::oneshot::Sender<Result<(), budget::Refused>>>,
    /// Inbox commands acted on, deleted once their events are durable.
    claimed: Vec<inbox::Claimed>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    interrupts: u32,
    /// The project's webhooks (`notify:`), and the deliveries offered to them whose outcome
    /// is not recorded yet.
    notifier: Option<crate::notify::Notifier>,
    notify_pending: HashMap<(String, u64), crate::config::notify::NotifyKind>,
    /// Stops the script evaluations (policy hooks, `if`, `for_each`, templates) running on the
    /// engine's thread when Ctrl-C, SIGTERM or a `cancel` arrives: they cannot yield to the
    /// event loop, so the signal handler and the inbox watcher set this flag directly.
    interrupt: crate::expr::Interrupt,
    /// With NATS: the run's attempts on the workers, and the mirror of its log.
    remote: Option<Arc<distributed::coordinator::Remote>>,
    mirror: Option<distributed::mirror::Mirror>,
    superseded: Option<distributed::Error>,
    /// With NATS, after a failover: the attempts the previous coordinator had in flight,
    /// which the workers are asked to stop once connected.
    recall: Vec<(String, u32)>,
}

/// The secrets of a run: which variables hold them, the environment they were read from
/// (once, when the engine took the run), and their values.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    names: std::collections::BTreeSet<String>,
    env: Arc<Vec<(String, String)>>,
    values: Vec<String>,
    /// What a child without an agent must not inherit: every secret variable set.
    all: Arc<Vec<String>>,
}

impl Secrets {
    /// Read the environment once and name its secrets from `agents.yaml` (when it loads),
    /// the model catalog, the clients and the built-in list.
    fn read(
        agents: &crate::agents::AgentsFile,
        catalog: &crate::config::models::Catalog,
    ) -> Secrets {
        let env = crate::agents::secret::process_env();
        let names = crate::agents::secret_env_names(agents, catalog);
        let mut values: Vec<String> = crate::agents::secret::secret_values(&names, &env)
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        values.sort();
        values.dedup();
        let all = crate::agents::child_env_removals(&names, None, &[], &env);
        Secrets {
            names,
            env: Arc::new(env),
            values,
            all: Arc::new(all),
        }
    }

    /// The `(name, value)` pairs for the run log's redactor.
    fn pairs(&self) -> Vec<(String, String)> {
        crate::agents::secret::secret_values(&self.names, &self.env)
    }

    /// The secret variables a child must not inherit: all of them but its agent's own keys
    /// (`agent` is `None` for `run:` and `shell:` phases).
    fn removals(&self, agent: Option<&crate::agents::AgentConfig>) -> Vec<String> {
        match agent {
            None => self.all.to_vec(),
            Some(_) => crate::agents::child_env_removals(&self.names, agent, &[], &self.env),
        }
    }

    /// `secrets` plus the value of every secret of the run's environment, sorted, once each.
    fn with_values(&self, mut secrets: Vec<String>) -> Vec<String> {
        secrets.extend(self.values.iter().cloned());
        secrets.sort();
        secrets.dedup();
        secrets
    }
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
