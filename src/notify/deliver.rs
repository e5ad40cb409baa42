//! The delivery threads: one per webhook, fed by a bounded queue, each request with a
//! timeout, failed requests tried again after an exponential backoff. A thread never waits
//! on the engine: it hands each outcome to the engine's `Report` and goes on.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{failed, sign, Delivery, Job, Webhook, QUEUE};
use crate::record::event::Notification;

/// Where outcomes go (the engine's loop).
pub type Report = Arc<dyn Fn(Delivery) + Send + Sync>;

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The deadline after which no try starts (set when the engine stops), and a wake-up for
/// threads waiting out a backoff.
#[derive(Default)]
pub struct Stop {
    deadline: Mutex<Option<Instant>>,
    changed: Condvar,
}

impl Stop {
    pub fn set(&self, deadline: Instant) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(d.map_or(deadline, |old| old.min(deadline)));
        }
        self.changed.notify_all();
    }

    /// Wait until `until`; false when the deadline comes first (no try may start then).
    fn wait_until(&self, until: Instant) -> bool {
        let Ok(mut deadline) = self.deadline.lock() else {
            return false;
        };
        loop {
            if deadline.is_some_and(|d| until > d) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            match self.changed.wait_timeout(deadline, until - now) {
                Ok((d, _)) => deadline = d,
                Err(_) => return false,
            }
        }
    }
}

/// Start the thread of `hook`; its queue holds at most [`QUEUE`] jobs.
pub(super) fn spawn(hook: Arc<Webhook>, report: Report, stop: Arc<Stop>) -> SyncSender<Job> {
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    let name = format!("notify-{}", hook.name);
    let label = hook.name.clone();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let agent = agent(&hook);
        while let Ok(job) = rx.recv() {
            report(deliver(&agent, &hook, &job, &stop));
        }
    });
    if let Err(e) = spawned {
        // The queue's receiver is gone: every offer is refused, and recorded as failed.
        tracing::warn!("cannot start the delivery thread of webhook `{label}`: {e}");
    }
    tx
}

fn agent(hook: &Webhook) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A redirect would carry the signature somewhere else.
        .max_redirects(0)
        .timeout_global(Some(hook.timeout));
    if is_loopback(&hook.url) {
        config = config.proxy(None);
    }
    config.build().into()
}

/// What one request gave.
enum Try {
    Sent(u16),
    /// Worth another try (a transport error, a timeout, 408, 429, 5xx); `after` is what the
    /// receiver asked for (`Retry-After`).
    Again {
        status: Option<u16>,
        error: String,
        after: Option<Duration>,
    },
    Refused(u16, String),
}

/// Deliver `job`, trying again as the webhook allows.
fn deliver(agent: &ureq::Agent, hook: &Webhook, job: &Job, stop: &Stop) -> Delivery {
    let mut backoff = hook.backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, error, after) = match send(agent, hook, job) {
            Try::Sent(status) => {
                return Delivery {
                    sent: true,
                    record: Notification {
                        webhook: hook.name.clone(),
                        kind: job.kind.as_str().to_string(),
                        event_seq: job.seq,
                        attempts,
                        status: Some(status),
                        error: None,
                    },
                }
            }
            Try::Refused(status, error) => {
                return failed(&hook.name, job.kind, job.seq, attempts, Some(status), error)
            }
            Try::Again {
                status,
                error,
                after,
            } => (status, error, after),
        };
        if attempts > hook.retries {
            return failed(&hook.name, job.kind, job.seq, attempts, status, error);
        }
        let wait = after.map_or(backoff, |a| a.max(backoff)).min(MAX_BACKOFF);
        if !stop.wait_until(Instant::now() + wait) {
            let error = format!("{error}; not tried again: the engine stopped");
            return failed(&hook.name, job.kind, job.seq, attempts, status, error);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn send(agent: &ureq::Agent, hook: &Webhook, job: &Job) -> Try {
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut request = agent
        .post(&hook.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("spectacular/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-spectacular-event", job.event_type)
        .header("x-spectacular-delivery", &job.delivery_id)
        .header(sign::TIMESTAMP_HEADER, &timestamp.to_string());
    if let Some(secret) = &hook.secret {
        let signature = sign::signature(secret.as_bytes(), timestamp, &job.body);
        request = request.header(sign::SIGNATURE_HEADER, &signature);
    }
    let mut response = match request.send(&job.body[..]) {
        Ok(response) => response,
        Err(e) => {
            return Try::Again {
                status: None,
                error: transport_error(&e, hook),
                after: None,
            }
        }
    };
    let status = response.status().as_u16();
    // The body is drained (bounded) so that the connection can be closed cleanly.
    let text = response
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    if (200..300).contains(&status) {
        return Try::Sent(status);
    }
    let error = format!("HTTP {status}{}", excerpt(&text));
    if status == 408 || status == 429 || status >= 500 {
        let after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Try::Again {
            status: Some(status),
            error,
            after,
        };
    }
    Try::Refused(status, error)
}

/// `: <the first line of the answer>`, bounded and printable, or nothing.
fn excerpt(text: &str) -> String {
    let line: String = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if line.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", line.trim())
    }
}

/// A transport error, said without the URL (a Slack or Discord URL is a secret).
fn transport_error(e: &ureq::Error, hook: &Webhook) -> String {
    let text = match e {
        ureq::Error::Timeout(_) => format!(
            "no answer within {}",
            humantime::format_duration(hook.timeout)
        ),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            format!(
                "no answer within {}",
                humantime::format_duration(hook.timeout)
            )
        }
        ureq::Error::Io(io) => format!("cannot reach the webhook: {io}"),
        ureq::Error::HostNotFound => "cannot reach the webhook: host not found".to_string(),
        ureq::Error::ConnectionFailed => "cannot reach the webhook: connection failed".to_string(),
        other => format!("the request failed: {other}"),
    };
    text.replace(&hook.url, "<url>")
}

/// Is `url` on this machine? (No proxy is used for it.)
fn is_loopback(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}
