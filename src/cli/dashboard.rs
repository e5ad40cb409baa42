//! `spectacular dashboard`: serve the local web UI over the store until Ctrl-C.

use std::net::IpAddr;

use super::{Context, Exit, Failure, Outcome};
use crate::dashboard::{self, Server, Settings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port to listen on (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The address to listen on. Anything but a loopback address needs `--token`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The token every request must carry (default: a random one, in the printed URL). At
    /// least 16 characters among letters, digits, `-` and `_`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Open the dashboard in the default browser.
    #[arg(long)]
    pub open: bool,
    /// Show runs only: no approving, answering or canceling from the pages.
    #[arg(long)]
    pub read_only: bool,
    /// With `--nats`: runs (whole ids) to read from NATS JetStream first, if this store
    /// lacks them; repeat or separate with commas.
    #[arg(
        long = "run",
        value_name = "RUN",
        value_delimiter = ',',
        requires = "nats"
    )]
    pub runs: Vec<String>,
    #[command(flatten)]
    pub nats: super::from_nats::NatsArgs,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let wanted: Vec<&str> = args.runs.iter().map(String::as_str).collect();
    super::from_nats::fetch_missing(&context.store(), args.nats.nats.as_deref(), &wanted)?;
    let token = match args.token {
        Some(token) => check_token(&token)?,
        None if !args.bind.is_loopback() => {
            return Err(Failure::usage(format!(
                "binding to {} makes the dashboard reachable from other machines, so it needs a token you choose\n  help: add `--token <at least 16 letters or digits>`, or keep the default `--bind 127.0.0.1`",
                args.bind
            )))
        }
        None => dashboard::random_token()
            .map_err(|e| Failure::internal(format!("cannot make a random token: {e}")))?,
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("cannot find the spectacular binary: {e}")))?;
    let settings = Settings {
        store: context.store(),
        bind: args.bind,
        port: args.port,
        token,
        read_only: args.read_only,
        exe,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::bind(settings)
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
        let url = server.url();
        outln!("dashboard at {url}")?;
        eoutln!("press Ctrl-C to stop");
        if args.open {
            open(&url);
        }
        tokio::select! {
            served = server.serve() => served.map_err(|e| Failure::internal(e.to_string()))?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(Exit::Success)
    })
}

/// A token the user chose: long enough, and safe in a URL as it is.
fn check_token(token: &str) -> Result<String, Failure> {
    let safe = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if token.len() < 16 || !safe {
        return Err(Failure::usage(
            "the token must have at least 16 characters, letters, digits, `-` or `_`\n  help: `head -c 16 /dev/urandom | xxd -p` makes one",
        ));
    }
    Ok(token.to_string())
}

/// Open `url` in the default browser; a failure is only a warning (the URL is printed).
fn open(url: &str) {
    #[cfg(target_os = "macos")]
    let program = "open";
    #[cfg(not(target_os = "macos"))]
    let program = "xdg-open";
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eoutln!("cannot open a browser with `{program}` ({e}); open the URL above");
    }
}
