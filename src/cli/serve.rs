//! `spectacular serve`: the control plane many projects sync their events to, and
//! `spectacular fleet`: its views (cost, audit, budgets) on the command line.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{printable, Context, Exit, Failure, Outcome};
use crate::serve::projection::{AuditRun, CostRow};
use crate::serve::{Server, Settings};
use crate::sync::{BudgetAnswer, Client};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The NATS server with JetStream the events are stored in.
    #[arg(long, value_name = "URL", env = "SPECTACULAR_NATS")]
    pub nats: String,
    /// The token every request must carry as `Authorization: Bearer <token>`: at least 16
    /// letters, digits, `-` or `_`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SPECTACULAR_SERVE_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The port to listen on (0: a free one, printed).
    #[arg(long, default_value_t = 7420)]
    pub port: u16,
    /// The JetStream stream of the fleet's events (subjects `<stream>.events.<project>`).
    #[arg(long, value_name = "NAME", default_value = "SPECTACULAR_FLEET")]
    pub stream: String,
    /// Where the projection (`fleet.db`, rebuilt from the stream when deleted) lives
    /// (default: `fleet/` in the store).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A monthly fleet budget in dollars: `PROJECT=USD`, or `*=USD` for every project not
    /// named. Repeatable.
    #[arg(long = "budget", value_name = "PROJECT=USD")]
    pub budgets: Vec<String>,
    /// Delete the projection and rebuild it from the stream before serving.
    #[arg(long)]
    pub rebuild: bool,
}

fn parse_budgets(list: &[String]) -> Result<BTreeMap<String, f64>, Failure> {
    let mut out = BTreeMap::new();
    for item in list {
        let parsed = item.split_once('=').and_then(|(p, usd)| {
            let usd: f64 = usd.trim().parse().ok()?;
            let name_ok = p == "*" || crate::sync::is_name(p);
            (name_ok && usd.is_finite() && usd >= 0.0).then(|| (p.to_string(), usd))
        });
        let Some((project, usd)) = parsed else {
            return Err(Failure::usage(format!(
                "`--budget {}` is not PROJECT=USD\n  help: `--budget payments=50` (dollars a month), `--budget '*=100'` for every other project",
                printable(item)
            )));
        };
        out.insert(project, usd);
    }
    Ok(out)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let token_ok = args
        .token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if args.token.len() < 16 || !token_ok {
        return Err(Failure::usage(
            "the token must have at least 16 characters, letters, digits, `-` or `_`\n  help: `head -c 16 /dev/urandom | xxd -p` makes one",
        ));
    }
    if !crate::sync::is_name(&args.stream) {
        return Err(Failure::usage(format!(
            "`--stream {}`: a stream name is 1 to 64 letters, digits, `_` and `-`",
            printable(&args.stream)
        )));
    }
    let settings = Settings {
        nats: args.nats.clone(),
        addr: SocketAddr::new(args.bind, args.port),
        token: args.token,
        stream: args.stream.clone(),
        data: args
            .data
            .unwrap_or_else(|| context.store().dir.join("fleet")),
        budgets: parse_budgets(&args.budgets)?,
        rebuild: args.rebuild,
    };
    runtime()?.block_on(async {
        let server = Server::start(settings)
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
        let Some(addr) = server.local_addr() else {
            return Err(Failure::internal("the listener has no address"));
        };
        eoutln!(
            "stream `{}` on {}: {} event(s) applied to the projection",
            args.stream,
            args.nats,
            server.caught_up
        );
        outln!("control plane at http://{addr}")?;
        eoutln!("  events:  POST /v1/events (projects with `sync:` send here)");
        eoutln!("  views:   GET /v1/cost?by=project|team|agent|model, /v1/audit, /v1/budgets");
        eoutln!("  command: spectacular fleet cost --server http://{addr}");
        eoutln!("press Ctrl-C to stop");
        tokio::select! {
            served = server.serve() => served.map_err(|e| Failure::internal(e.to_string()))?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(Exit::Success)
    })
}

const EXAMPLES_COST: &str = "\
Examples:
  # Cost by project across the fleet
  spectacular fleet cost --server http://fleet:7420
  # By model, in one month
  spectacular fleet cost --by model --month 2026-12";
const EXAMPLES_AUDIT: &str = "\
Examples:
  # Who ran which mission and spec, with which agents
  spectacular fleet audit
  # One project's last ten runs, as JSON
  spectacular fleet audit --project payments --limit 10 --json";
const EXAMPLES_BUDGETS: &str = "\
Examples:
  # Each project's spending this month against its budget
  spectacular fleet budgets
  # As JSON
  spectacular fleet budgets --json";

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub view: FleetView,
    /// The control plane (default: `sync.url` of this project's `config.yaml`).
    #[arg(long, value_name = "URL", global = true, env = "SPECTACULAR_SERVER")]
    pub server: Option<String>,
    /// Print JSON, as the control plane answered it.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum FleetView {
    /// What agent calls cost across the fleet, by project, team, agent or model.
    #[command(after_help = EXAMPLES_COST)]
    Cost {
        /// What to group by.
        #[arg(long, value_enum, default_value_t = FleetBy::Project)]
        by: FleetBy,
        /// One month (`YYYY-MM`, UTC) instead of all time.
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
    },
    /// Who ran which mission and spec, with which agents, from which commit: newest first.
    #[command(after_help = EXAMPLES_AUDIT)]
    Audit {
        /// One project's runs.
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Each project's spending this month against its fleet budget.
    #[command(after_help = EXAMPLES_BUDGETS)]
    Budgets,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetBy {
    Project,
    Team,
    Agent,
    Model,
}

/// The client of the control plane `--server` names, else the project's `sync:`.
fn fleet_client(context: &Context, server: Option<String>) -> Result<Client, Failure> {
    let settings = crate::sync::Settings::load(&context.store()).ok();
    let token_env = settings
        .as_ref()
        .map(|s| s.token_env.clone())
        .unwrap_or_else(|| crate::sync::DEFAULT_TOKEN_ENV.to_string());
    let Some(url) = server.or_else(|| settings.as_ref().map(|s| s.url.clone())) else {
        return Err(Failure::usage(
            "which control plane?\n  help: add `--server http://HOST:7420`, or a `sync:` section to `.spectacular/config.yaml`",
        ));
    };
    let token = std::env::var(&token_env).ok().filter(|t| !t.is_empty());
    Client::new(&url, token.as_deref(), &token_env, Duration::from_secs(30))
        .map_err(|e| Failure::usage(e.to_string()))
}

pub fn fleet(context: &Context, args: FleetArgs) -> Outcome {
    let client = fleet_client(context, args.server)?;
    let failed = |e: crate::sync::ClientError| Failure {
        exit: Exit::RunFailed,
        message: e.to_string(),
    };
    let answer: Value = match &args.view {
        FleetView::Cost { by, month } => {
            let by = format!("{by:?}").to_lowercase();
            let mut query = vec![("by", by.as_str())];
            if let Some(m) = month {
                query.push(("month", m.as_str()));
            }
            client.get("/v1/cost", &query).map_err(failed)?
        }
        FleetView::Audit { project, limit } => {
            let limit = limit.to_string();
            let mut query = vec![("limit", limit.as_str())];
            if let Some(p) = project {
                query.push(("project", p.as_str()));
            }
            client.get("/v1/audit", &query).map_err(failed)?
        }
        FleetView::Budgets => client.get("/v1/budgets", &[]).map_err(failed)?,
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        )?;
        return Ok(Exit::Success);
    }
    let unreadable =
        |e: serde_json::Error| Failure::internal(format!("the control plane's answer: {e}"));
    match args.view {
        FleetView::Cost { .. } => {
            let rows: Vec<CostRow> =
                serde_json::from_value(answer["rows"].clone()).map_err(unreadable)?;
            print_cost(&answer, &rows)?;
        }
        FleetView::Audit { .. } => {
            let runs: Vec<AuditRun> =
                serde_json::from_value(answer["runs"].clone()).map_err(unreadable)?;
            print_audit(&runs)?;
        }
        FleetView::Budgets => {
            let list: Vec<BudgetAnswer> =
                serde_json::from_value(answer["budgets"].clone()).map_err(unreadable)?;
            outln!("{:<24} {:>12} {:>12}  month", "project", "spent", "budget")?;
            for b in list {
                let limit = b
                    .limit_usd
                    .map(crate::record::usage::usd)
                    .unwrap_or("-".into());
                let over = if b.over { "  OVER" } else { "" };
                outln!(
                    "{:<24} {:>12} {:>12}  {}{over}",
                    line(&b.project),
                    crate::record::usage::usd(b.spent_usd),
                    limit,
                    b.month
                )?;
            }
        }
    }
    Ok(Exit::Success)
}

fn print_cost(answer: &Value, rows: &[CostRow]) -> Result<(), Failure> {
    let by = answer["by"].as_str().unwrap_or("project");
    outln!("{:<32} {:>7} {:>12} {:>12}", by, "calls", "tokens", "cost")?;
    for r in rows {
        let key = if r.key.is_empty() { "-" } else { &r.key };
        outln!(
            "{:<32} {:>7} {:>12} {:>12}",
            line(key),
            r.calls,
            r.tokens,
            crate::record::usage::usd(r.usd)
        )?;
    }
    let total: f64 = rows.iter().map(|r| r.usd).sum();
    outln!(
        "{:<32} {:>7} {:>12} {:>12}",
        "total",
        "",
        "",
        crate::record::usage::usd(total)
    )?;
    Ok(())
}

fn print_audit(runs: &[AuditRun]) -> Result<(), Failure> {
    for run in runs {
        let text = |v: &Option<String>| line(v.as_deref().unwrap_or("-"));
        outln!(
            "{} {} {} by {}@{}: {} ({}), {}",
            text(&run.started),
            line(&run.project),
            line(&run.run_id),
            text(&run.user),
            text(&run.host),
            text(&run.mission),
            text(&run.outcome),
            crate::record::usage::usd(run.usd)
        )?;
        outln!(
            "  spec {}, commit {}, mission {}, engine {}",
            text(&run.spec),
            text(&run.git_commit),
            text(&run.mission_digest),
            text(&run.engine_version)
        )?;
        if !run.agents.is_empty() {
            outln!("  agents: {}", line(&run.agents.join(", ")))?;
        }
    }
    Ok(())
}

/// Text the control plane sent, for one line of a terminal.
fn line(text: &str) -> String {
    crate::sync::one_line(text)
}
