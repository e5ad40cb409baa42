//! `spectacular cost`: what agent calls cost, grouped, with totals, averages and shares.

use super::{Context, Exit, Failure, Outcome};
use crate::query::cost::{self, By};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this run (an id, a unique prefix, or `last`); without it, every run in the store.
    pub run: Option<String>,
    /// Group by.
    #[arg(long, value_enum, default_value_t = By::Model)]
    pub by: By,
    /// Only calls since a date (`2026-11-01`) or a duration ago (`7d`, `12h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub nats: super::from_nats::NatsArgs,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let wanted: Vec<&str> = args.run.as_deref().into_iter().collect();
    super::from_nats::fetch_missing(&store, args.nats.nats.as_deref(), &wanted)?;
    let since = args
        .since
        .as_deref()
        .map(|s| cost::parse_since(s, std::time::SystemTime::now()))
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let calls = match &args.run {
        Some(run) => {
            let run_id = store
                .resolve_run(run)
                .map_err(|e| Failure::usage(e.to_string()))?;
            let events = store
                .read_events(&run_id)
                .map_err(|e| Failure::internal(e.to_string()))?;
            cost::calls_of(&run_id, &events, since.as_deref())
        }
        None => {
            cost::calls(&store, since.as_deref()).map_err(|e| Failure::internal(e.to_string()))?
        }
    };
    let report = cost::report(&calls, args.by, since);
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::internal(e.to_string()))?;
        outln!("{text}")?;
    } else {
        out!("{}", cost::text(&report))?;
    }
    Ok(Exit::Success)
}
