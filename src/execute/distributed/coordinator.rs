//! The coordinator's side: an attempt's process published to the work queue instead of
//! spawned, its outcome awaited on the run's outcome subject, cancellation sent on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, message::PublishMessage as Publish};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::wire::{self, Bundle, Report, WorkItem};
use super::{jetstream_error, Config, Error};
use crate::execute::process::{self, Ended, Spec};

/// A connection to NATS, made before a run starts (so that an unreachable server stops the
/// command before anything is recorded).
pub struct Link {
    pub config: Config,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("config", &self.config)
            .finish()
    }
}

impl Link {
    pub async fn connect(config: Config) -> Result<Link, Error> {
        let (client, js) = super::connect(&config).await?;
        Ok(Link { config, client, js })
    }
}

/// A worker took an attempt again after another one went silent: recorded by the engine.
#[derive(Clone, Debug)]
pub struct Redelivered {
    pub phase: String,
    pub attempt: u32,
    pub worker: String,
    pub delivery: u64,
}

type Key = (String, u32);
pub(super) type Reported = (wire::Ended, Bundle, Option<wire::PackageBack>);

/// The attempts waiting for their outcome, and outcomes that came before anyone waited: an
/// attempt a dead coordinator started whose start never reached the stream is started again
/// under the same number and message id (so JetStream does not queue it twice), and its
/// outcome may already be there.
#[derive(Default)]
struct Waiting {
    waiting: HashMap<Key, oneshot::Sender<Reported>>,
    early: HashMap<Key, Reported>,
}

/// The most outcomes kept for attempts nobody waits for yet.
const EARLY_MAX: usize = 1024;

/// One run's attempts on the workers.
pub struct Remote {
    link: Arc<Link>,
    run_id: String,
    waiting: Arc<Mutex<Waiting>>,
    /// The label sets warned about (no worker serving them).
    warned: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("run_id", &self.run_id)
            .finish()
    }
}

impl Remote {
    /// Listen to the run's outcomes (every one since the run began: a coordinator that took
    /// the run over hears about attempts it waits for even if they ended before it came).
    /// Redeliveries are sent on `redelivered`.
    pub async fn open(
        link: Arc<Link>,
        run_id: &str,
        redelivered: mpsc::UnboundedSender<Redelivered>,
    ) -> Result<Remote, Error> {
        if !super::check_token(run_id) {
            return Err(Error::Io(format!(
                "run id `{run_id}` cannot name a subject"
            )));
        }
        let stream = link
            .js
            .get_stream(link.config.outcome_stream())
            .await
            .map_err(|e| jetstream_error("the outcome stream", e))?;
        let messages = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: link.config.outcome_subject(run_id),
                ..Default::default()
            })
            .await
            .map_err(|e| jetstream_error("the outcome consumer", e))?
            .messages()
            .await
            .map_err(|e| jetstream_error("the outcome consumer", e))?;
        let waiting: Arc<Mutex<Waiting>> = Arc::default();
        tokio::spawn(dispatch(messages, waiting.clone(), redelivered));
        Ok(Remote {
            link,
            run_id: run_id.to_string(),
            waiting,
            warned: Mutex::default(),
        })
    }

    /// Run `spec` (an attempt's process, working in `dir`, the attempt directory) on a worker
    /// with `labels`; the files it leaves come back into `dir`.
    pub async fn run(
        &self,
        spec: Spec,
        dir: &Path,
        labels: &[String],
        (phase, attempt): (&str, u32),
        cancel: watch::Receiver<u8>,
    ) -> Ended {
        let item = match self.item(&spec, dir, labels, phase, attempt).await {
            Ok(item) => item,
            Err(e) => return Ended::SpawnFailed(e.to_string()),
        };
        let (ended, files, _) = match self.send(item, labels, cancel).await {
            Ok(reported) => reported,
            Err(ended) => return ended,
        };
        if let Err(e) = self.unpack(dir, files).await {
            return Ended::SpawnFailed(format!("the worker's files: {e}"));
        }
        ended.into()
    }

    /// Publish `item` to the workers with `labels` and wait for its outcome (or cancel it).
    pub(super) async fn send(
        &self,
        item: WorkItem,
        labels: &[String],
        mut cancel: watch::Receiver<u8>,
    ) -> Result<Reported, Ended> {
        let (phase, attempt) = (item.phase.clone(), item.attempt);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            let key = (phase.clone(), attempt);
            match waiting.early.remove(&key) {
                Some(reported) => {
                    let _ = tx.send(reported);
                }
                None => {
                    waiting.waiting.insert(key, tx);
                }
            }
        }
        let subject = self.link.config.work_subject(labels);
        let payload = serde_json::to_vec(&item)
            .map_err(|e| Ended::SpawnFailed(format!("encoding the attempt: {e}")))?;
        // The attempt's identity is its message id: a second coordinator publishing the same
        // attempt within the dedupe window is not a second attempt.
        let id = format!("{}/{phase}/{attempt}", self.run_id);
        let queued = match publish_at(&self.link.js, subject, &id, payload).await {
            Ok(sequence) => sequence,
            Err(e) => {
                return Err(Ended::SpawnFailed(format!(
                    "publishing the attempt to NATS: {e}"
                )))
            }
        };
        self.warn_unserved(labels);
        let asked = async {
            while *cancel.borrow() < process::CANCEL {
                if cancel.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let reported = tokio::select! {
            outcome = rx => match outcome {
                Ok(outcome) => outcome,
                Err(_) => return Err(Ended::SpawnFailed("the outcome listener stopped".into())),
            },
            _ = asked => {
                self.cancel(&phase, attempt).await;
                self.forget(&phase, attempt);
                return Err(Ended::Canceled);
            }
            message = self.unserved(labels, queued) => {
                self.forget(&phase, attempt);
                return Err(Ended::SpawnFailed(message));
            }
        };
        self.forget(&phase, attempt);
        Ok(reported)
    }

    pub(super) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    pub(super) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Resolves, with the reason, once the attempt queued at stream sequence `queued` is
    /// given up (and taken off the queue): no worker took it, and in the last half of the
    /// queue timeout no worker took or ran any attempt needing its labels. Never resolves
    /// once a worker took it.
    async fn unserved(&self, labels: &[String], queued: u64) -> String {
        let timeout = self.link.config.queue_timeout;
        let mut before = None;
        loop {
            tokio::time::sleep(timeout / 2).await;
            // The server away: ask again later (the attempt waits in the queue meanwhile).
            let Ok(state) = queue_state(&self.link, labels).await else {
                continue;
            };
            let (delivered, busy) = state.unwrap_or((0, false));
            if delivered >= queued {
                return std::future::pending().await;
            }
            let idle = !busy && before == Some(delivered);
            before = Some(delivered);
            if idle && self.dequeue(queued).await {
                return unserved_message(labels, timeout);
            }
        }
    }

    /// Take the attempt at `sequence` off the work queue: false if it is no longer there (a
    /// worker took it and is done with it).
    async fn dequeue(&self, sequence: u64) -> bool {
        match self
            .link
            .js
            .get_stream(self.link.config.work_stream())
            .await
        {
            Ok(stream) => stream.delete_message(sequence).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Warn, once per label set, when no worker with these labels ever came to this server.
    fn warn_unserved(&self, labels: &[String]) {
        let set = super::label_set(labels);
        let first = self
            .warned
            .lock()
            .is_ok_and(|mut warned| warned.insert(set.clone()));
        if !first {
            return;
        }
        let (link, labels) = (self.link.clone(), labels.to_vec());
        tokio::spawn(async move {
            if let Ok(None) = queue_state(&link, &labels).await {
                let timeout = humantime::format_duration(link.config.queue_timeout);
                tracing::warn!(
                    "no worker serving {} has connected to NATS yet: the attempts needing them \
                     wait in the queue (at most {timeout}, `nats.queue_timeout`); start one \
                     with `spectacular worker --nats URL{}`",
                    describe_labels(&labels),
                    labels_flag(&labels)
                );
            }
        });
    }

    fn forget(&self, phase: &str, attempt: u32) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.waiting.remove(&(phase.to_string(), attempt));
        }
    }

    /// Ask the workers to stop an attempt (core NATS: whoever runs it hears it).
    pub async fn cancel(&self, phase: &str, attempt: u32) {
        let body = serde_json::json!({ "phase": phase, "attempt": attempt });
        let subject = self.link.config.cancel_subject(&self.run_id);
        let _ = self
            .link
            .client
            .publish(subject, body.to_string().into_bytes().into())
            .await;
        let _ = self.link.client.flush().await;
    }

    pub(super) async fn item(
        &self,
        spec: &Spec,
        dir: &Path,
        labels: &[String],
        phase: &str,
        attempt: u32,
    ) -> Result<WorkItem, BundleError> {
        let rel = |p: &Path| -> Result<String, BundleError> {
            p.strip_prefix(dir)
                .map(|r| r.to_string_lossy().into_owned())
                .map_err(|_| BundleError::Outside(p.display().to_string()))
        };
        let packed = {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || wire::pack(&dir, &[]))
                .await
                .map_err(|e| BundleError::Task(e.to_string()))??
        };
        let files = self
            .bundle(packed, &format!("{phase}/{attempt}/in"))
            .await?;
        Ok(WorkItem {
            run_id: self.run_id.clone(),
            phase: phase.to_string(),
            attempt,
            labels: labels.to_vec(),
            argv: spec.argv.clone(),
            env: spec.env.clone(),
            env_remove: spec.env_remove.clone(),
            stdin: spec.stdin.as_ref().map(|s| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(s)
            }),
            timeout_ms: spec.timeout.map(|t| t.as_millis() as u64),
            grace_ms: spec.grace.as_millis() as u64,
            dir: dir.to_string_lossy().into_owned(),
            cwd: rel(&spec.cwd)?,
            stdout: rel(&spec.stdout)?,
            stderr: rel(&spec.stderr)?,
            files,
            package: None,
        })
    }

    /// Files inline when small, else through the object store.
    async fn bundle(&self, files: Vec<wire::File>, name: &str) -> Result<Bundle, BundleError> {
        put_bundle(&self.link, &self.run_id, files, name).await
    }

    pub(super) async fn unpack(&self, dir: &Path, bundle: Bundle) -> Result<(), BundleError> {
        let files = get_bundle(&self.link, bundle).await?;
        let dir = dir.to_path_buf();
        Ok(
            tokio::task::spawn_blocking(move || wire::unpack(&dir, &files))
                .await
                .map_err(|e| BundleError::Task(e.to_string()))??,
        )
    }
}

/// The work consumer of `labels`: the stream sequence of the last attempt it gave a worker,
/// and whether any attempt it gave is still running; `None` if no worker with these labels
/// ever came.
async fn queue_state(link: &Link, labels: &[String]) -> Result<Option<(u64, bool)>, Error> {
    let stream = link
        .js
        .get_stream(link.config.work_stream())
        .await
        .map_err(|e| jetstream_error("the work stream", e))?;
    match stream
        .consumer_info(super::work_consumer_name(labels))
        .await
    {
        Ok(info) => Ok(Some((
            info.delivered.stream_sequence,
            info.num_ack_pending > 0,
        ))),
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::ConsumerInfoErrorKind::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(jetstream_error("the work consumer", e)),
    }
}

fn describe_labels(labels: &[String]) -> String {
    if labels.is_empty() {
        "attempts without labels".into()
    } else {
        format!("the labels `{}`", labels.join(", "))
    }
}

fn labels_flag(labels: &[String]) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!(" --labels {}", labels.join(","))
    }
}

/// The failure of an attempt no worker took.
fn unserved_message(labels: &[String], timeout: Duration) -> String {
    format!(
        "no NATS worker took this attempt within {} (`nats.queue_timeout` in \
         .spectacular/config.yaml), and none served {} meanwhile; start a worker that has them: \
         `spectacular worker --nats URL{}`",
        humantime::format_duration(timeout),
        describe_labels(labels),
        labels_flag(labels)
    )
}

/// Why an attempt's files could not travel between the engine and a worker.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("`{0}` is outside the attempt directory")]
    Outside(String),
    #[error(transparent)]
    Files(#[from] wire::FilesError),
    #[error("the object store `{bucket}`: {detail}")]
    Store { bucket: String, detail: String },
    #[error("putting `{key}` in the object store: {detail}")]
    Put { key: String, detail: String },
    #[error("reading `{key}` from the object store: {detail}")]
    Get { key: String, detail: String },
    #[error("`{key}` does not decode: {detail}")]
    Decode { key: String, detail: String },
    #[error("packing the files: {0}")]
    Task(String),
}

/// Publish on JetStream with a message id, waiting for the stream's acknowledgement: the
/// message's stream sequence (the first copy's, for a duplicate).
async fn publish_at(
    js: &jetstream::Context,
    subject: String,
    id: &str,
    payload: Vec<u8>,
) -> Result<u64, Error> {
    let ack = js
        .send_publish(
            subject.clone(),
            Publish::build().message_id(id).payload(payload.into()),
        )
        .await
        .map_err(|e| jetstream_error(&subject, e))?;
    let ack = ack.await.map_err(|e| jetstream_error(&subject, e))?;
    Ok(ack.sequence)
}

/// Publish on JetStream with a message id, waiting for the stream's acknowledgement.
pub(crate) async fn publish(
    js: &jetstream::Context,
    subject: String,
    id: &str,
    payload: Vec<u8>,
) -> Result<(), Error> {
    publish_at(js, subject, id, payload).await.map(|_| ())
}

/// The object store of the attempts' files (`<prefix>_FILES`).
pub(super) async fn files_store(
    link: &Link,
) -> Result<jetstream::object_store::ObjectStore, BundleError> {
    let bucket = format!("{}_FILES", link.config.prefix);
    if let Ok(store) = link.js.get_object_store(&bucket).await {
        return Ok(store);
    }
    link.js
        .create_object_store(jetstream::object_store::Config {
            bucket: bucket.clone(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        })
        .await
        .map_err(|e| BundleError::Store {
            bucket: bucket.clone(),
            detail: e.to_string(),
        })
}

/// Files as a bundle: inline when under `wire::INLINE_MAX` encoded, else put in the object
/// store under `<run>/<name>/<ulid>`.
pub(crate) async fn put_bundle(
    link: &Link,
    run_id: &str,
    files: Vec<wire::File>,
    name: &str,
) -> Result<Bundle, BundleError> {
    let size: usize = files.iter().map(|f| f.data.len() + f.path.len()).sum();
    if size <= wire::INLINE_MAX {
        return Ok(Bundle {
            files,
            object: None,
        });
    }
    let store = files_store(link).await?;
    let key = format!("{run_id}/{name}/{}", ulid::Ulid::new());
    let bytes = serde_json::to_vec(&files).map_err(|e| BundleError::Task(e.to_string()))?;
    store
        .put(key.as_str(), &mut bytes.as_slice())
        .await
        .map_err(|e| BundleError::Put {
            key: key.clone(),
            detail: e.to_string(),
        })?;
    Ok(Bundle {
        files: Vec::new(),
        object: Some(key),
    })
}

/// The files of a bundle, read from the object store when they are there (bounded).
pub(crate) async fn get_bundle(
    link: &Link,
    bundle: Bundle,
) -> Result<Vec<wire::File>, BundleError> {
    let Some(key) = bundle.object else {
        return Ok(bundle.files);
    };
    let store = files_store(link).await?;
    let object = store
        .get(key.as_str())
        .await
        .map_err(|e| BundleError::Get {
            key: key.clone(),
            detail: e.to_string(),
        })?;
    let mut bytes = Vec::new();
    // Base64 and JSON around at most `FILES_MAX` bytes of files.
    let limit = wire::FILES_MAX * 2;
    object
        .take(limit)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| BundleError::Get {
            key: key.clone(),
            detail: e.to_string(),
        })?;
    if bytes.len() as u64 >= limit {
        return Err(wire::FilesError::TooBig.into());
    }
    let _ = store.delete(key.as_str()).await;
    serde_json::from_slice(&bytes).map_err(|e| BundleError::Decode {
        key,
        detail: e.to_string(),
    })
}

/// Hand each outcome to the attempt waiting for it; outcomes nobody waits for yet are kept
/// (bounded) for an attempt started again under the same number; the rest (an attempt
/// recorded as interrupted, a second delivery's late report) are never asked for.
async fn dispatch(
    mut messages: consumer::pull::Ordered,
    waiting: Arc<Mutex<Waiting>>,
    redelivered: mpsc::UnboundedSender<Redelivered>,
) {
    while let Some(message) = messages.next().await {
        let Ok(message) = message else {
            // The ordered consumer makes itself again after a disconnection.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let report: Report = match serde_json::from_slice(&message.payload) {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!("a worker's report does not decode: {e}");
                continue;
            }
        };
        match report {
            Report::Claimed {
                phase,
                attempt,
                worker,
                delivery,
            } => {
                let waited = waiting
                    .lock()
                    .is_ok_and(|w| w.waiting.contains_key(&(phase.clone(), attempt)));
                if delivery > 1 && waited {
                    let _ = redelivered.send(Redelivered {
                        phase,
                        attempt,
                        worker: wire::cut(&worker, 200),
                        delivery,
                    });
                }
            }
            Report::Ended {
                phase,
                attempt,
                ended,
                files,
                package,
                ..
            } => {
                let Ok(mut w) = waiting.lock() else {
                    continue;
                };
                let key = (phase, attempt);
                match w.waiting.remove(&key) {
                    Some(tx) => {
                        let _ = tx.send((ended, files, package));
                    }
                    None if w.early.len() < EARLY_MAX => {
                        // The first outcome of an attempt wins; a second delivery's is dropped.
                        w.early.entry(key).or_insert((ended, files, package));
                    }
                    None => {}
                }
            }
        }
    }
}
