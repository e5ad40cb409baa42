//! Notifications: the webhooks of the project's `notify:` configuration told about a run's
//! events (a gate or a question waiting for a person, the run failed or succeeded, a budget
//! alert), in a generic JSON shape or Slack's or Discord's, signed with HMAC-SHA256.
//!
//! - `mod.rs`: the webhooks resolved from the configuration and the environment
//!   ([`Webhooks`]), and the engine's handle on the deliveries ([`Notifier`]);
//! - `message.rs`: which events make a message, its text and each format's body;
//! - `sign.rs`: the signature headers;
//! - `deliver.rs`: the delivery threads (one per webhook, a bounded queue, timeouts, retries
//!   with exponential backoff).
//!
//! Deliveries never block the engine and never fail a run: the engine offers each durable
//! event ([`Notifier::offer`], which never waits), and each outcome comes back as a
//! [`Delivery`] that the engine records as `notification.sent` or `notification.failed`.

mod deliver;
pub mod message;
pub mod sign;

use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::notify::{NotifyKind, NotifySection, WebhookConfig, WebhookFormat};
use crate::diag::Diagnostics;
use crate::record::event::{Event, Notification};

pub use deliver::{Report, Stop};

/// How many deliveries may wait per webhook; one more is recorded as failed, not queued.
pub const QUEUE: usize = 64;

/// How long an engine that stops waits for deliveries in flight, by default.
pub const DEFAULT_EXIT_WAIT: Duration = Duration::from_secs(5);

/// Why a run cannot notify as configured.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the project's config.yaml has errors")]
    Config(Diagnostics),
    #[error("notify: webhook `{webhook}` reads its {what} from `{var}`, which is not set (or not valid); set it, or remove the webhook from .spectacular/config.yaml")]
    MissingEnv {
        webhook: String,
        what: &'static str,
        var: String,
    },
}

/// One webhook, its URL and secret read from the environment.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    url: String,
    pub format: WebhookFormat,
    secret: Option<String>,
    kinds: Vec<NotifyKind>,
    missions: Vec<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl Webhook {
    fn wants(&self, kind: NotifyKind, mission: &str) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.missions.is_empty() || self.missions.iter().any(|m| m == mission))
    }
}

/// The webhooks of a project, ready to be started.
pub struct Webhooks {
    hooks: Vec<Webhook>,
    exit_wait: Duration,
    /// `(variable, value)` of each URL and secret read from the environment, for redaction.
    secrets: Vec<(String, String)>,
}

impl Webhooks {
    /// The project's webhooks (`.spectacular/config.yaml` under `project_root`), their URLs
    /// and secrets read with `env`. `None` when none is configured.
    pub fn load(
        project_root: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Webhooks>, Error> {
        let dot_dir = project_root.join(crate::project::DOT_DIR);
        let (config, diagnostics) = crate::config::project::load(&dot_dir);
        if diagnostics.has_errors() {
            // Only problems that may hide a `notify` section stop a run; the others are for
            // the parts of the engine that read them.
            let declared = std::fs::read_to_string(dot_dir.join("config.yaml"))
                .is_ok_and(|text| text.lines().any(|l| l.starts_with("notify:")));
            let ours = diagnostics
                .iter()
                .any(|d| d.is_error() && d.path.starts_with("notify"));
            if ours || declared {
                return Err(Error::Config(diagnostics));
            }
        }
        match config.notify {
            None => Ok(None),
            Some(section) => Webhooks::resolve(&section, env).map(Some),
        }
    }

    fn resolve(
        section: &NotifySection,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Webhooks, Error> {
        let mut secrets = Vec::new();
        let mut hooks = Vec::new();
        for config in &section.webhooks {
            hooks.push(resolve_one(config, env, &mut secrets)?);
        }
        Ok(Webhooks {
            hooks,
            exit_wait: duration(section.exit_wait.as_deref(), DEFAULT_EXIT_WAIT),
            secrets,
        })
    }

    /// The values read from the environment, as `(variable, value)`, for the run's redactor.
    pub fn secrets(&self) -> &[(String, String)] {
        &self.secrets
    }

    /// Start a delivery thread per webhook; each outcome is handed to `report`.
    pub fn start(self, run_id: &str, mission: &str, report: deliver::Report) -> Notifier {
        let stop = Arc::new(Stop::default());
        let mut queues = Vec::new();
        for hook in self.hooks {
            let hook = Arc::new(hook);
            let queue = deliver::spawn(hook.clone(), report.clone(), stop.clone());
            queues.push((hook, queue));
        }
        Notifier {
            queues,
            run_id: run_id.to_string(),
            mission: mission.to_string(),
            exit_wait: self.exit_wait,
            stop,
        }
    }
}

fn resolve_one(
    config: &WebhookConfig,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<(String, String)>,
) -> Result<Webhook, Error> {
    let missing = |what, var: &str| Error::MissingEnv {
        webhook: config.name.clone(),
        what,
        var: var.to_string(),
    };
    let url = match (&config.url, &config.url_env) {
        (Some(url), _) => url.clone(),
        (None, Some(var)) => {
            let url = env(var)
                .map(|u| u.trim().to_string())
                .filter(|u| crate::config::notify::url_problem(u).is_none())
                .ok_or_else(|| missing("URL", var))?;
            secrets.push((var.clone(), url.clone()));
            url
        }
        // The configuration's check refuses a webhook without a URL.
        (None, None) => return Err(missing("URL", "url_env")),
    };
    let secret = match &config.secret_env {
        Some(var) => {
            let secret = env(var)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("secret", var))?;
            secrets.push((var.clone(), secret.clone()));
            Some(secret)
        }
        None => None,
    };
    Ok(Webhook {
        name: config.name.clone(),
        url,
        format: config.format,
        secret,
        kinds: config.events.clone(),
        missions: config.missions.clone(),
        timeout: duration(config.timeout.as_deref(), Duration::from_secs(10)),
        retries: config.retries.unwrap_or(3).min(10),
        backoff: duration(config.backoff.as_deref(), Duration::from_secs(1)),
    })
}

/// A checked duration setting, or its default.
fn duration(text: Option<&str>, default: Duration) -> Duration {
    text.and_then(|t| humantime::parse_duration(t.trim()).ok())
        .map_or(default, |d| d.min(crate::config::notify::MAX_WAIT))
}

/// One message to deliver.
pub struct Job {
    /// The event's `seq`.
    pub seq: u64,
    pub kind: NotifyKind,
    /// The event's type (`run.succeeded`).
    pub event_type: &'static str,
    /// `<run>.<seq>.<webhook>`: the same for every try, so that a receiver can drop repeats.
    pub delivery_id: String,
    pub body: Vec<u8>,
}

/// How a delivery ended, for the engine to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub sent: bool,
    pub record: Notification,
}

/// The engine's handle on the delivery threads.
pub struct Notifier {
    queues: Vec<(Arc<Webhook>, SyncSender<Job>)>,
    run_id: String,
    mission: String,
    exit_wait: Duration,
    stop: Arc<Stop>,
}

impl Notifier {
    /// The deliveries `event` makes, queued without waiting: `(webhook, seq)` of each one
    /// queued, and the ones that could not be (a full queue), already failed.
    pub fn offer(&self, event: &Event) -> (Vec<(String, u64, NotifyKind)>, Vec<Delivery>) {
        self.offer_to(event, &|_| true)
    }

    /// [`Notifier::offer`] to the webhooks `to` names only.
    pub fn offer_to(
        &self,
        event: &Event,
        to: &dyn Fn(&str) -> bool,
    ) -> (Vec<(String, u64, NotifyKind)>, Vec<Delivery>) {
        let mut queued = Vec::new();
        let mut refused = Vec::new();
        let Some(kind) = message::kind_of(&event.data) else {
            return (queued, refused);
        };
        for (hook, queue) in &self.queues {
            if !hook.wants(kind, &self.mission) || !to(&hook.name) {
                continue;
            }
            let body = message::body(hook.format, event, kind, &self.mission);
            let job = Job {
                seq: event.seq,
                kind,
                event_type: event.data.type_name(),
                delivery_id: format!("{}.{}.{}", self.run_id, event.seq, hook.name),
                body: body.to_string().into_bytes(),
            };
            match queue.try_send(job) {
                Ok(()) => queued.push((hook.name.clone(), event.seq, kind)),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => refused.push(failed(
                    &hook.name,
                    kind,
                    event.seq,
                    0,
                    None,
                    format!("not sent: {QUEUE} deliveries to this webhook were waiting already"),
                )),
            }
        }
        (queued, refused)
    }

    /// The engine stops: no retry starts after `exit_wait` from now. Returns that deadline.
    pub fn closing(&self) -> Instant {
        let deadline = Instant::now() + self.exit_wait;
        self.stop.set(deadline);
        deadline
    }

    pub fn exit_wait(&self) -> Duration {
        self.exit_wait
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Delivery threads end when their queue closes; one stuck on a request is left to
        // its timeout (the process may exit first).
        self.stop.set(Instant::now());
    }
}

/// A `notification.failed` record.
pub(crate) fn failed(
    webhook: &str,
    kind: NotifyKind,
    seq: u64,
    attempts: u32,
    status: Option<u16>,
    error: String,
) -> Delivery {
    Delivery {
        sent: false,
        record: Notification {
            webhook: webhook.to_string(),
            kind: kind.as_str().to_string(),
            event_seq: seq,
            attempts,
            status,
            error: Some(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::notify::WebhookConfig;
    use crate::record::event::{EventData, RunFinished};

    fn succeeded(seq: u64) -> Event {
        Event {
            event_id: format!("e{seq}"),
            schema: crate::record::event::SCHEMA_VERSION,
            run_id: "01RUN".into(),
            seq,
            ts: "2026-12-01T00:00:00.000Z".into(),
            causation_id: None,
            actor: "engine".into(),
            data: EventData::RunSucceeded(RunFinished {
                failed: Vec::new(),
                reason: None,
            }),
        }
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_never_waits() {
        // A receiver that accepts connections (the kernel's backlog) and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let section = NotifySection {
            exit_wait: None,
            webhooks: vec![WebhookConfig {
                name: "stuck".into(),
                url: Some(format!("http://{}/", listener.local_addr().unwrap())),
                timeout: Some("60s".into()),
                ..WebhookConfig::default()
            }],
        };
        let webhooks = Webhooks::resolve(&section, &|_| None).unwrap();
        let notifier = webhooks.start("01RUN", "m", Arc::new(|_| {}));
        let (mut queued, mut refused) = (0, Vec::new());
        for seq in 1..=100 {
            let (q, r) = notifier.offer(&succeeded(seq));
            queued += q.len();
            refused.extend(r);
        }
        // One in flight at most, and a full queue.
        assert!((QUEUE..=QUEUE + 1).contains(&queued), "{queued}");
        assert_eq!(queued + refused.len(), 100);
        let first = &refused[0].record;
        assert!(!refused[0].sent);
        assert_eq!(
            (first.webhook.as_str(), first.kind.as_str()),
            ("stuck", "succeeded")
        );
        assert!(first
            .error
            .as_deref()
            .unwrap()
            .contains("were waiting already"));
    }

    #[test]
    fn a_missing_secret_names_its_variable() {
        let section = NotifySection {
            exit_wait: None,
            webhooks: vec![WebhookConfig {
                name: "team".into(),
                url_env: Some("TEAM_URL".into()),
                ..WebhookConfig::default()
            }],
        };
        let err = Webhooks::resolve(&section, &|_| None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`TEAM_URL`, which is not set"), "{err}");
        let ok = Webhooks::resolve(&section, &|_| Some("https://hooks.example/x".into())).unwrap();
        assert_eq!(
            ok.secrets(),
            [(
                "TEAM_URL".to_string(),
                "https://hooks.example/x".to_string()
            )]
        );
    }
}
