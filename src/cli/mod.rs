//! The command line: clap definitions, one file per subcommand. The only module that prints.
//!
//! Output goes through `out!`/`outln!` (stdout) and `eout!`/`eoutln!` (stderr), never
//! `print!`: when the reader of stdout goes away (`spectacular replay last | head -1`), the
//! write fails with a broken pipe and the command ends quietly with exit code 0 instead of
//! panicking; a closed stderr is ignored.

/// Print to stdout; `Err(Failure)` (quiet, exit 0) when stdout was closed. Use with `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Print to stderr; a closed stderr is ignored (there is nobody left to tell).
macro_rules! eout {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// [`eout!`] with a newline.
macro_rules! eoutln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod agents;
mod analyse;
mod completions;
mod control;
mod cost;
mod exit;
mod graph;
mod init;
mod missions;
mod plan;
mod policy;
mod progress;
mod query;
mod replay;
mod run;
mod schema;
mod spec_run;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use exit::{Exit, EXIT_CODES};

use crate::diag::{render_text, Diagnostics, RenderOptions};
use crate::load;
use crate::validate::Validated;

const AFTER_HELP: &str = "\
Exit codes: 0 success · 1 the run failed · 2 usage error · 3 suspended (waiting for an approval)
            65 invalid input · 70 internal error · 130 canceled

Docs: the book in `book/`; `spectacular <command> --help` for each command.";

/// Spectacular: an embedded workflow engine for spec-driven AI coding.
#[derive(Debug, Parser)]
#[command(name = "spectacular", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// When to use colour: auto (only on a terminal, never with NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// The store directory (default: the nearest `.spectacular/` above the working directory,
    /// else the git root's, else the working directory's).
    #[arg(
        long,
        global = true,
        env = "SPECTACULAR_STORE",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold `.spectacular/` here: knowledge files, `.gitignore`, a commented `config.yaml`.
    Init(init::Args),
    /// Run a mission (a path or a name) to its end.
    Run(run::RunArgs),
    /// Continue a run that was interrupted, canceled or suspended.
    Resume(run::ResumeArgs),
    /// Approve (or reject) an approval gate of a run.
    Approve(control::ApproveArgs),
    /// Cancel a run: its attempts are stopped; it can be resumed later.
    Cancel(control::CancelArgs),
    /// The phases of a run: state, attempts, duration.
    Status(query::StatusArgs),
    /// The runs in the store.
    Runs(query::RunsArgs),
    /// The events of a run.
    Events(query::EventsArgs),
    /// Re-fold a run's log without side effects and print its timeline.
    ///
    /// With `--policies` or `--models` (what-if replay): what the run's policy decisions and
    /// costs would have been under other packs or prices, without running anything.
    Replay(replay::ReplayArgs),
    /// The checked plan of a run: work packages, dependencies, files, coverage, lanes, cost.
    Plan(plan::Args),
    /// What agent calls cost: totals, averages and shares by agent, model, phase, mission or day.
    Cost(cost::Args),
    /// The configured agents, and whether each can run here.
    Agents(agents::Args),
    /// Check a mission and report every problem, with its location and a fix.
    Validate(validate::Args),
    /// Analyse a spec: structure, problems, complexity with its signals, questions.
    Analyse(analyse::Args),
    /// Draw a mission's phase graph (Graphviz DOT or Mermaid).
    Graph(graph::Args),
    /// Print a JSON Schema (for editors and tools).
    Schema(schema::Args),
    /// Missions that can be run by name: list, show, eject.
    Missions(missions::Args),
    /// Policy packs: list them, run their tests, explain a run's decisions.
    Policy(policy::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
}

/// Parse the command line, run the command, return the process exit code.
pub fn main() -> ExitCode {
    completions::complete_if_asked();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let context = Context::new(cli.color, cli.store);
    let result = match cli.command {
        Command::Init(args) => init::run(&context, args),
        Command::Run(args) => run::run(&context, args),
        Command::Resume(args) => run::resume(&context, args),
        Command::Approve(args) => control::approve(&context, args),
        Command::Cancel(args) => control::cancel(&context, args),
        Command::Status(args) => query::status(&context, args),
        Command::Runs(args) => query::runs(&context, args),
        Command::Events(args) => query::events(&context, args),
        Command::Replay(args) => replay::replay(&context, args),
        Command::Plan(args) => plan::run(&context, args),
        Command::Cost(args) => cost::run(&context, args),
        Command::Agents(args) => agents::run(&context, args),
        Command::Validate(args) => validate::run(&context, args),
        Command::Analyse(args) => analyse::run(&context, args),
        Command::Graph(args) => graph::run(&context, args),
        Command::Schema(args) => schema::run(args),
        Command::Missions(args) => missions::run(&context, args),
        Command::Policy(args) => policy::run(&context, args),
        Command::Completions(args) => completions::run(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(failure) if failure.message.is_empty() => failure.exit.into(),
        Err(failure) => {
            eoutln!("{}", context.error_line(&failure.message));
            failure.exit.into()
        }
    }
}

/// Write to stdout (for `out!`): a broken pipe ends the command quietly with exit code 0,
/// any other failure is an internal error.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::closed()),
        Err(e) => Err(Failure::internal(format!("failed to write to stdout: {e}"))),
    }
}

/// A command that could not do its job: what to tell the user and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Internal,
            message: message.into(),
        }
    }

    /// The reader of stdout went away (a closed pipe): stop quietly, with exit code 0.
    pub fn closed() -> Failure {
        Failure {
            exit: Exit::Success,
            message: String::new(),
        }
    }
}

impl From<load::Error> for Failure {
    fn from(error: load::Error) -> Failure {
        let mut message = error.to_string();
        if let load::Error::NotFound {
            suggestion: Some(s),
            ..
        } = &error
        {
            message.push_str(&format!("\n  help: {s}"));
        } else if let load::Error::NotFound { .. } = &error {
            message.push_str(
                "\n  help: `spectacular missions list` shows the missions that can be run by name",
            );
        }
        Failure::usage(message)
    }
}

pub type Outcome = Result<Exit, Failure>;

/// What every command needs to know about its surroundings.
pub struct Context {
    pub cwd: PathBuf,
    /// Colour on stdout.
    pub color_stdout: bool,
    /// Colour on stderr.
    pub color_stderr: bool,
    /// `--store DIR` / `SPECTACULAR_STORE`.
    pub store_override: Option<PathBuf>,
}

impl Context {
    fn new(choice: ColorChoice, store_override: Option<PathBuf>) -> Context {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |is_terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        Context {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
            store_override,
        }
    }

    pub(crate) fn error_line(&self, message: &str) -> String {
        if self.color_stderr {
            let style = anstyle::AnsiColor::Red.on_default().bold();
            format!("{style}error{style:#}: {message}")
        } else {
            format!("error: {message}")
        }
    }

    /// Find, load and validate a mission given by path or name.
    pub fn validate(&self, mission: &str) -> Result<Validated, Failure> {
        let located = load::locate(mission, &self.cwd)?;
        let loaded = load::load(located)?;
        Ok(crate::validate::validate(&loaded, &self.cwd))
    }

    /// Diagnostics as text for stderr.
    pub fn render_stderr(&self, diagnostics: &Diagnostics) -> String {
        render_text(
            diagnostics,
            RenderOptions {
                color: self.color_stderr,
            },
        )
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "spectacular=info",
        2 => "spectacular=debug",
        _ => "spectacular=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
