//! `spectacular worker`: pull attempts from the work queue, run each one's process with the
//! engine's own runner (its own process group, captured and capped output, the secrets it
//! does not need removed from its environment), heartbeat with in-progress acks while it
//! runs, and publish the outcome with the files the attempt left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::coordinator::{get_bundle, publish, put_bundle, Link};
use super::wire::{self, Report, WorkItem};
use super::{Config, Error};
use crate::execute::process::{self, Spec};
use crate::record::redact::Redactor;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Sorted, unique, checked.
    pub labels: Vec<String>,
    pub concurrency: usize,
    /// Where attempts run (a directory per attempt, removed after it).
    pub dir: PathBuf,
    /// How the worker names itself in its reports.
    pub name: String,
}

/// The attempts running here, by run, phase and attempt: what a cancel message stops.
type Running = Arc<Mutex<HashMap<(String, String, u32), watch::Sender<u8>>>>;

/// The attempts a cancel message named while they did not run here (oldest first, at most
/// [`CANCELED_MAX`]): one still queued is dropped when this worker takes it.
type Canceled = Arc<Mutex<std::collections::VecDeque<(String, String, u32)>>>;
const CANCELED_MAX: usize = 4096;

type Consumer = jetstream::consumer::Consumer<jetstream::consumer::pull::Config>;

/// Serve until `stop` changes: then take no more attempts and let the running ones finish.
pub async fn serve(
    config: Config,
    options: Options,
    stop: watch::Receiver<bool>,
    ready: impl FnOnce(),
) -> Result<(), Error> {
    for label in &options.labels {
        super::check_label(label)?;
    }
    if options.labels.len() > super::MAX_LABELS {
        return Err(Error::TooManyLabels(options.labels.len()));
    }
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| Error::Io(format!("{}: {e}", options.dir.display())))?;
    let link = Arc::new(Link::connect(config).await?);
    let mut consumers = Vec::new();
    for set in super::subsets(&options.labels) {
        consumers.push(super::work_consumer(&link.config, &link.js, &set).await?);
    }
    let running: Running = Arc::default();
    let cancels = link
        .client
        .subscribe(format!("{}.cancel.>", link.config.prefix))
        .await
        .map_err(|e| super::jetstream_error("the cancel subject", e))?;
    let canceled: Canceled = Arc::default();
    tokio::spawn(listen_cancels(cancels, running.clone(), canceled.clone()));
    let redactor = Arc::new(own_secrets());
    ready();
    let consumers = Arc::new(consumers);
    let mut slots = Vec::new();
    for slot in 0..options.concurrency.max(1) {
        let (link, consumers, running, canceled, options, stop, redactor) = (
            link.clone(),
            consumers.clone(),
            running.clone(),
            canceled.clone(),
            options.clone(),
            stop.clone(),
            redactor.clone(),
        );
        slots.push(tokio::spawn(async move {
            let mut next = slot;
            while !*stop.borrow() {
                let consumer = &consumers[next % consumers.len()];
                next += 1;
                let wait = if consumers.len() == 1 {
                    Duration::from_secs(2)
                } else {
                    Duration::from_millis(250)
                };
                match take(consumer, wait).await {
                    Ok(Some(message)) => {
                        let here = (&running, &canceled);
                        handle(&link, &options, here, &redactor, message).await
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Disconnected: the client reconnects on its own.
                        tracing::debug!("pulling attempts: {e}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        }));
    }
    for slot in slots {
        let _ = slot.await;
    }
    Ok(())
}

/// At most one message from `consumer`, waiting up to `wait`.
async fn take(consumer: &Consumer, wait: Duration) -> Result<Option<jetstream::Message>, Error> {
    let pulled = |e: &dyn std::fmt::Display| Error::JetStream {
        what: "pull of an attempt".into(),
        detail: e.to_string(),
    };
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(wait)
        .messages()
        .await
        .map_err(|e| pulled(&e))?;
    match batch.next().await {
        Some(Ok(message)) => Ok(Some(message)),
        Some(Err(e)) => Err(pulled(&e)),
        None => Ok(None),
    }
}

/// The secrets of this worker's environment, for redacting what its attempts print.
fn own_secrets() -> Redactor {
    let env = crate::agents::secret::process_env();
    let names = crate::agents::secret::secret_env_names(
        &crate::agents::AgentsFile::default(),
        &crate::config::models::Catalog::default(),
    );
    Redactor::new(crate::agents::secret::secret_values(&names, &env))
}

async fn listen_cancels(mut cancels: async_nats::Subscriber, running: Running, canceled: Canceled) {
    #[derive(serde::Deserialize)]
    struct Cancel {
        phase: String,
        attempt: u32,
    }
    while let Some(message) = cancels.next().await {
        let Some(run_id) = message.subject.rsplit('.').next() else {
            continue;
        };
        let Ok(cancel) = serde_json::from_slice::<Cancel>(&message.payload) else {
            continue;
        };
        let key = (run_id.to_string(), cancel.phase, cancel.attempt);
        if let (Ok(running), Ok(mut canceled)) = (running.lock(), canceled.lock()) {
            match running.get(&key) {
                Some(tx) => tx.send_modify(|level| *level = (*level).max(process::CANCEL)),
                None => {
                    if canceled.len() >= CANCELED_MAX {
                        canceled.pop_front();
                    }
                    canceled.push_back(key);
                }
            }
        }
    }
}

async fn handle(
    link: &Arc<Link>,
    options: &Options,
    (running, canceled): (&Running, &Canceled),
    redactor: &Arc<Redactor>,
    message: jetstream::Message,
) {
    let (stream_seq, delivery) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
        Err(_) => (0, 1),
    };
    let item = match serde_json::from_slice::<WorkItem>(&message.payload) {
        Ok(item) if super::check_token(&item.run_id) => item,
        _ => {
            tracing::warn!("an attempt message does not decode; it is dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let report = |report: Report| {
        let link = link.clone();
        let subject = link.config.outcome_subject(&item.run_id);
        async move {
            let id = match &report {
                Report::Claimed { .. } => format!("claimed/{stream_seq}/{delivery}"),
                Report::Ended { .. } => format!("ended/{stream_seq}/{delivery}"),
            };
            let payload = serde_json::to_vec(&report).unwrap_or_default();
            let mut backoff = Duration::from_millis(100);
            // Until the server takes it: a worker cut off from NATS keeps its outcome.
            while let Err(e) = publish(&link.js, subject.clone(), &id, payload.clone()).await {
                tracing::warn!("reporting to NATS: {e}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    if delivery > 1 {
        // An earlier worker went silent: the coordinator records the interruption. (A first
        // delivery needs no report: its outcome says everything.)
        report(Report::Claimed {
            phase: item.phase.clone(),
            attempt: item.attempt,
            worker: options.name.clone(),
            delivery,
        })
        .await;
    }
    // Heartbeats: the attempt stays this worker's while it lives.
    let beat = {
        let every = link.config.ack_wait / 3;
        let message = message.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        })
    };
    let key = (item.run_id.clone(), item.phase.clone(), item.attempt);
    let (cancel_tx, cancel_rx) = watch::channel(0u8);
    if let (Ok(mut running), Ok(canceled)) = (running.lock(), canceled.lock()) {
        if canceled.contains(&key) {
            // Canceled before it ran here (a coordinator recalled it): it starts stopped.
            cancel_tx.send_modify(|level| *level = process::CANCEL);
        }
        running.insert(key.clone(), cancel_tx);
    }
    let dir = options
        .dir
        .join(format!("{}-{}", item.run_id, ulid::Ulid::new()));
    // A work package's clone: beside the attempt directory, never sent back as files.
    let repo = dir.with_extension("repo");
    let (ended, files, package) = run_item(link, &item, (&dir, &repo), cancel_rx, redactor).await;
    if let Ok(mut running) = running.lock() {
        running.remove(&key);
    }
    report(Report::Ended {
        phase: item.phase.clone(),
        attempt: item.attempt,
        worker: options.name.clone(),
        delivery,
        ended,
        files,
        package,
    })
    .await;
    beat.abort();
    // A lost ack only means a second delivery, whose outcome the coordinator drops.
    let _ = message.double_ack().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&repo);
}

/// What a worker reports of an attempt: how it ended, its files, a package's work.
type Outcome = (wire::Ended, wire::Bundle, Option<wire::PackageBack>);

/// Run an attempt's process in `dir` (a work package's in its clone at `repo`); what it ended
/// with, the files it left and, for a package, its work.
async fn run_item(
    link: &Link,
    item: &WorkItem,
    (dir, repo): (&Path, &Path),
    cancel: watch::Receiver<u8>,
    redactor: &Redactor,
) -> Outcome {
    let failed = |message: String| {
        (
            wire::Ended::SpawnFailed {
                message: wire::cut(&message, 2000),
            },
            wire::Bundle::default(),
            None,
        )
    };
    if *cancel.borrow() >= process::CANCEL {
        return (wire::Ended::Canceled, wire::Bundle::default(), None);
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        return failed(format!("worker: {}: {e}", dir.display()));
    }
    let files = match get_bundle(link, item.files.clone()).await {
        Ok(files) => files,
        Err(e) => return failed(format!("worker: the attempt's files: {e}")),
    };
    if let Err(e) = wire::unpack(dir, &files) {
        return failed(format!("worker: the attempt's files: {e}"));
    }
    let package = match &item.package {
        Some(package) => match super::package::checkout(link, package, repo).await {
            Ok(cwd) => Some((package, cwd)),
            Err(e) => return failed(format!("worker: the work package: {e}")),
        },
        None => None,
    };
    let in_repo = package
        .as_ref()
        .map(|(p, cwd)| (p.worktree.as_str(), repo, cwd.as_path()));
    let spec = match spec(item, dir, in_repo) {
        Ok(spec) => spec,
        Err(e) => return failed(format!("worker: {e}")),
    };
    let (stdout, stderr) = (spec.stdout.clone(), spec.stderr.clone());
    let ended = process::run(spec, cancel).await;
    for file in [&stdout, &stderr] {
        if let Ok(text) = std::fs::read(file) {
            let text = String::from_utf8_lossy(&text);
            if let std::borrow::Cow::Owned(redacted) = redactor.redact(&text) {
                let _ = std::fs::write(file, redacted);
            }
        }
    }
    let back = match &package {
        Some((package, cwd)) => {
            match super::package::send_back(link, item, package, repo, cwd).await {
                Ok(back) => Some(back),
                Err(e) => return failed(format!("worker: the work package: {e}")),
            }
        }
        None => None,
    };
    let packed = match wire::pack(dir, &[PIDS]) {
        Ok(packed) => packed,
        Err(e) => return failed(format!("worker: the attempt's files: {e}")),
    };
    let name = format!("{}/{}/out", item.phase, item.attempt);
    match put_bundle(link, &item.run_id, packed, &name).await {
        Ok(bundle) => ((&ended).into(), bundle, back),
        Err(e) => failed(format!("worker: the attempt's files: {e}")),
    }
}

/// The worker's process ledger inside an attempt's directory (not sent back).
const PIDS: &str = ".spectacular-pids";

/// The process of `item`, in `dir`: the coordinator's attempt directory replaced by `dir` in
/// its arguments and environment (and for a work package, in `repo`: the coordinator's
/// worktree replaced by the clone, which is the working directory).
fn spec(
    item: &WorkItem,
    dir: &Path,
    repo: Option<(&str, &Path, &Path)>,
) -> Result<Spec, wire::FilesError> {
    let here = dir.to_string_lossy();
    let local = |s: &String| {
        let s = match repo {
            Some((worktree, clone, _)) if worktree.len() > 1 => {
                s.replace(worktree, &clone.to_string_lossy())
            }
            _ => s.clone(),
        };
        if item.dir.len() > 1 {
            s.replace(&item.dir, &here)
        } else {
            s
        }
    };
    let under = |rel: &str| -> Result<PathBuf, wire::FilesError> {
        if rel.is_empty() {
            Ok(dir.to_path_buf())
        } else {
            Ok(dir.join(wire::safe_relative(rel)?))
        }
    };
    let cwd = match repo {
        Some((_, _, cwd)) => cwd.to_path_buf(),
        None => under(&item.cwd)?,
    };
    let _ = std::fs::create_dir_all(&cwd);
    let stdin = match &item.stdin {
        Some(data) => {
            use base64::Engine as _;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|_| wire::FilesError::Encoding("stdin".into()))?,
            )
        }
        None => None,
    };
    Ok(Spec {
        argv: item.argv.iter().map(local).collect(),
        cwd,
        env: item
            .env
            .iter()
            .map(|(k, v)| (k.clone(), local(v)))
            .collect(),
        env_remove: item.env_remove.clone(),
        stdin,
        stdout: under(&item.stdout)?,
        stderr: under(&item.stderr)?,
        pid_file: dir.join(PIDS),
        tag: process::tag(&item.phase, item.attempt),
        timeout: item.timeout_ms.map(Duration::from_millis),
        grace: Duration::from_millis(item.grace_ms.min(60_000)),
    })
}
