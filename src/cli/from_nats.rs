//! `--nats URL` on the commands that read runs (`status`, `cost`, `replay`, `dashboard`): a run
//! this store lacks is read from the stream its coordinator mirrored it to (`run --nats`) and
//! written into the store, which with NATS is a cache of the stream; then the command reads it
//! as any other run.

use super::Failure;
use crate::execute::distributed::{self, coordinator::Link, mirror};
use crate::record::Store;

/// The `--nats` option of the commands that read runs.
#[derive(Debug, Default, clap::Args)]
pub struct NatsArgs {
    /// Read a run this store lacks from NATS JetStream, where `run --nats` mirrors each run's
    /// log (give the run's whole id), e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = distributed::NATS_ENV, value_name = "URL")]
    pub nats: Option<String>,
}

/// With a NATS server: copy into `store` each of `runs` (whole run ids) that it lacks, from
/// the stream. Names that are not whole run ids (a prefix, `last`) are left to the store.
pub fn fetch_missing(store: &Store, url: Option<&str>, runs: &[&str]) -> Result<(), Failure> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let missing: Vec<&str> = runs
        .iter()
        .copied()
        .filter(|r| ulid::Ulid::from_string(r).is_ok() && store.resolve_run(r).is_err())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let config = distributed::Config::from_env(url).map_err(|e| Failure::usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let link = Link::connect(config)
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
        for run_id in missing {
            let run_dir = store
                .checked_run_dir(run_id)
                .map_err(|e| Failure::usage(e.to_string()))?;
            let events = mirror::read(&link, run_id)
                .await
                .map_err(|e| Failure::usage(e.to_string()))?;
            mirror::write_local(&run_dir, &events).map_err(|e| Failure::internal(e.to_string()))?;
        }
        Ok(())
    })
}
