//! `spectacular worker`: run attempts that coordinators publish to NATS JetStream.

use std::path::PathBuf;

use super::{Context, Exit, Failure, Outcome};
use crate::execute::distributed::{self, worker};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The NATS server with JetStream, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = distributed::NATS_ENV, value_name = "URL")]
    pub nats: String,
    /// What this worker can run, e.g. `linux,aider`: it takes the attempts of phases whose
    /// `runs_on` labels it all has (and those that ask for none).
    #[arg(long, value_delimiter = ',', value_name = "LABELS")]
    pub labels: Vec<String>,
    /// At most this many attempts run here at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Where attempts run (a directory each, removed after it). Default: a folder in the
    /// system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How this worker is named in the run's events. Default: host name and process id.
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(_context: &Context, args: Args) -> Outcome {
    let config =
        distributed::Config::from_env(&args.nats).map_err(|e| Failure::usage(e.to_string()))?;
    let mut labels: Vec<String> = args
        .labels
        .iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    labels.sort();
    labels.dedup();
    let name = args.name.unwrap_or_else(default_name);
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("spectacular-worker-{}", std::process::id()))
    });
    let options = worker::Options {
        labels,
        concurrency: args.concurrency as usize,
        dir,
        name,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let shown = options.clone();
    let served = runtime.block_on(async move {
        tokio::spawn(async move {
            // Ctrl-C or SIGTERM: take no more attempts, finish the running ones.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
            let _ = stop_tx.send(true);
        });
        worker::serve(config, options, stop, || {
            let labels = if shown.labels.is_empty() {
                "no labels".to_string()
            } else {
                shown.labels.join(",")
            };
            eoutln!(
                "worker {} ready ({labels}, {} at once); Ctrl-C stops it after its attempts",
                shown.name,
                shown.concurrency
            );
        })
        .await
    });
    match served {
        Ok(()) => Ok(Exit::Success),
        Err(e @ (distributed::Error::Connect { .. } | distributed::Error::Label(_))) => {
            Err(Failure::usage(e.to_string()))
        }
        Err(e) => Err(Failure::internal(e.to_string())),
    }
}

/// The host name and the process id.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}:{}", std::process::id())
}
