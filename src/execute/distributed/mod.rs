//! Distributed execution on NATS JetStream: workers on many machines and a coordinator that
//! can fail over.
//!
//! - `wire.rs`: what travels (an attempt's process and its files, a worker's reports), bounded
//!   and checked on arrival: a peer is hostile input;
//! - `worker.rs`: `spectacular worker`, which pulls attempts from the work-queue stream, runs
//!   their process with the engine's own runner (`execute::process`), heartbeats with
//!   in-progress acks and publishes the outcome;
//! - `coordinator.rs`: the engine's side: a ready attempt's process published instead of
//!   spawned, its outcome awaited, cancellation sent on;
//! - `mirror.rs`: the run's log mirrored to a stream, one subject per run, each event with
//!   `Nats-Msg-Id` = its `event_id` and the expected last sequence of the subject, so that two
//!   coordinators can never both append to a run; and a run's log read back for `resume`.
//!
//! Streams (`<prefix>` is `spectacular` unless `SPECTACULAR_NATS_PREFIX` says otherwise):
//! `<prefix>_WORK` (work queue, `<prefix>.work.<labels>`), `<prefix>_OUTCOMES`
//! (`<prefix>.outcome.<run>`) and `<prefix>_RUNS` (`<prefix>.run.<run>`).

pub mod coordinator;
pub mod mirror;
pub mod package;
pub mod wire;
pub mod worker;

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// The environment variable naming the NATS server (`--nats`).
pub const NATS_ENV: &str = "SPECTACULAR_NATS";
/// The environment variable naming the streams' prefix (tests use one each).
pub const PREFIX_ENV: &str = "SPECTACULAR_NATS_PREFIX";
/// The environment variable setting the work queue's ack wait (a worker's silence after which
/// its attempt is given to another worker), e.g. `30s`.
pub const ACK_WAIT_ENV: &str = "SPECTACULAR_NATS_ACK_WAIT";
/// The environment variable choosing the streams' storage when they are made: `file` (the
/// default, durable) or `memory` (lost when the server stops; for throwaway fleets and for
/// measuring what the file store costs).
pub const STORAGE_ENV: &str = "SPECTACULAR_NATS_STORAGE";
/// The default ack wait: a worker heartbeats every third of it.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// The default queue timeout (`nats.queue_timeout` in `config.yaml`): an attempt that no
/// worker takes, while no worker takes or runs any attempt of its labels, fails after it.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(600);
/// How many times an attempt is delivered to a worker before JetStream gives up on it.
pub const MAX_DELIVER: i64 = 10;
/// The most labels a worker or a phase has.
pub const MAX_LABELS: usize = 8;

/// Why distributed execution could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach NATS at `{url}`: {detail}; start a server with JetStream (`nats-server -js`) or check --nats / {NATS_ENV}")]
    Connect { url: String, detail: String },
    #[error("NATS JetStream refused `{what}`: {detail}")]
    JetStream { what: String, detail: String },
    #[error("{STORAGE_ENV}=`{0}` is not a storage: use `file` (the default) or `memory`")]
    Storage(String),
    #[error("the NATS prefix `{0}` is not valid: use 1 to 32 letters, digits, `_` or `-` ({PREFIX_ENV})")]
    Prefix(String),
    #[error("the label `{0}` is not valid: use 1 to 32 lowercase letters, digits or `-`, starting with a letter or digit")]
    Label(String),
    #[error("a worker has at most {MAX_LABELS} labels; {0} were given")]
    TooManyLabels(usize),
    #[error("another coordinator appended to run `{run_id}` in NATS first (stream sequence {expected} is no longer the last); this one stops. `spectacular status {run_id}` shows the run")]
    Superseded { run_id: String, expected: u64 },
    #[error("run `{0}` is not in NATS (nothing was mirrored to its stream); check --nats and {PREFIX_ENV}")]
    NoSuchRun(String),
    #[error("the event at stream sequence {sequence} of run `{run_id}` does not decode: {detail}")]
    Damaged {
        run_id: String,
        sequence: u64,
        detail: String,
    },
    #[error("{0}")]
    Io(String),
}

/// Where the streams live: the server and the prefix of their names and subjects.
#[derive(Clone, Debug)]
pub struct Config {
    pub url: String,
    pub prefix: String,
    pub ack_wait: Duration,
    pub queue_timeout: Duration,
    /// The storage of the streams this process makes (existing streams keep theirs).
    pub storage: stream::StorageType,
}

impl Config {
    /// A configuration for `url`, with the prefix and ack wait of the environment.
    pub fn from_env(url: &str) -> Result<Config, Error> {
        let prefix = std::env::var(PREFIX_ENV).unwrap_or_else(|_| "spectacular".into());
        if prefix.is_empty()
            || prefix.len() > 32
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::Prefix(prefix));
        }
        let ack_wait = std::env::var(ACK_WAIT_ENV)
            .ok()
            .and_then(|v| crate::model::parse_duration(&v).ok())
            .filter(|d| *d >= Duration::from_millis(300))
            .unwrap_or(ACK_WAIT);
        Ok(Config {
            url: url.to_string(),
            prefix,
            ack_wait,
            queue_timeout: QUEUE_TIMEOUT,
            storage: match std::env::var(STORAGE_ENV).as_deref() {
                Err(_) | Ok("file") | Ok("") => stream::StorageType::File,
                Ok("memory") => stream::StorageType::Memory,
                Ok(other) => return Err(Error::Storage(other.to_string())),
            },
        })
    }

    pub fn work_stream(&self) -> String {
        format!("{}_WORK", self.prefix)
    }
    pub fn outcome_stream(&self) -> String {
        format!("{}_OUTCOMES", self.prefix)
    }
    pub fn run_stream(&self) -> String {
        format!("{}_RUNS", self.prefix)
    }
    /// The subject of the attempts that need `labels` (sorted): `_` when they need none.
    pub fn work_subject(&self, labels: &[String]) -> String {
        format!("{}.work.{}", self.prefix, label_set(labels))
    }
    pub fn outcome_subject(&self, run_id: &str) -> String {
        format!("{}.outcome.{run_id}", self.prefix)
    }
    pub fn run_subject(&self, run_id: &str) -> String {
        format!("{}.run.{run_id}", self.prefix)
    }
    /// Core NATS (not stored): a coordinator asks the workers to stop an attempt.
    pub fn cancel_subject(&self, run_id: &str) -> String {
        format!("{}.cancel.{run_id}", self.prefix)
    }
}

/// The token of a label set in subjects and consumer names: the labels joined with `_`
/// (labels have no `_`), or `_` for none.
pub fn label_set(labels: &[String]) -> String {
    if labels.is_empty() {
        "_".into()
    } else {
        labels.join("_")
    }
}

/// Is `label` a valid label (the schema's pattern for `runs_on`)?
pub fn check_label(label: &str) -> Result<(), Error> {
    let ok = !label.is_empty()
        && label.len() <= 32
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Label(label.into()))
    }
}

/// Every subset of `labels` (sorted), the empty one included: the label sets a worker with
/// these labels can serve.
pub fn subsets(labels: &[String]) -> Vec<Vec<String>> {
    let mut sets = Vec::new();
    for mask in 0u32..(1u32 << labels.len()) {
        let set: Vec<String> = labels
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, l)| l.clone())
            .collect();
        sets.push(set);
    }
    sets
}

/// Is `run_id` usable as a subject token (run ids are ULIDs)?
pub fn check_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Connect to the server (reconnecting on its own afterwards) and make the streams.
pub async fn connect(config: &Config) -> Result<(async_nats::Client, jetstream::Context), Error> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(config.url.as_str())
        .await
        .map_err(|e| Error::Connect {
            url: config.url.clone(),
            detail: e.to_string(),
        })?;
    let js = jetstream::new(client.clone());
    make_streams(config, &js).await?;
    Ok((client, js))
}

async fn make_streams(config: &Config, js: &jetstream::Context) -> Result<(), Error> {
    let streams = [
        stream::Config {
            name: config.work_stream(),
            subjects: vec![format!("{}.work.>", config.prefix)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: config.storage,
            ..Default::default()
        },
        stream::Config {
            name: config.outcome_stream(),
            subjects: vec![format!("{}.outcome.>", config.prefix)],
            storage: config.storage,
            max_age: Duration::from_secs(14 * 24 * 3600),
            ..Default::default()
        },
        stream::Config {
            name: config.run_stream(),
            subjects: vec![format!("{}.run.>", config.prefix)],
            storage: config.storage,
            ..Default::default()
        },
    ];
    for stream in streams {
        let name = stream.name.clone();
        js.get_or_create_stream(stream)
            .await
            .map_err(|e| jetstream_error(&format!("stream {name}"), e))?;
    }
    Ok(())
}

pub(crate) fn jetstream_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::JetStream {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// The name of the durable consumer of the attempts needing `labels`.
pub fn work_consumer_name(labels: &[String]) -> String {
    format!("work-{}", label_set(labels))
}

/// The durable consumer of the attempts needing `labels`: one per label set, shared by every
/// worker that can run them, so that each attempt goes to one worker at a time.
pub async fn work_consumer(
    config: &Config,
    js: &jetstream::Context,
    labels: &[String],
) -> Result<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>, Error> {
    let stream = js
        .get_stream(config.work_stream())
        .await
        .map_err(|e| jetstream_error("the work stream", e))?;
    let name = work_consumer_name(labels);
    stream
        .get_or_create_consumer(
            &name,
            jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: config.work_subject(labels),
                ack_wait: config.ack_wait,
                max_deliver: MAX_DELIVER,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| jetstream_error(&format!("consumer {name}"), e))
}
