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
        // Formatted first: stderr is unbuffered, and one write per piece would cost a system
        // call each (a run prints a line per event).
        let _ = std::io::stderr().write_all(format!($($arg)*).as_bytes());
    }};
}

/// [`eout!`] with a newline.
macro_rules! eoutln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

mod agents;
mod analyse;
mod answer;
mod apply;
mod board;
mod clean;
mod completions;
mod control;
mod cost;
mod dashboard;
mod exit;
mod from_nats;
mod graph;
mod init;
mod mcp;
mod missions;
mod plan;
mod policy;
mod pr;
mod progress;
mod query;
mod replay;
mod report;
mod run;
mod schema;
mod serve;
mod spec_run;
mod sync;
mod validate;
mod worker;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use exit::{Exit, EXIT_CODES};

use crate::diag::{render_text, Diagnostics, RenderOptions};
use crate::load;
use crate::project::Project;
use crate::validate::Validated;

const AFTER_HELP: &str = "\
Examples:
  # Run the bundled example mission, offline, then look at what it did
  spectacular run examples/quickstart
  spectacular status
  # Complete run ids, missions, gates and packs in bash (add to ~/.bashrc)
  source <(spectacular completions bash)

Exit codes: 0 success · 1 the run failed · 2 usage error · 3 suspended (waiting for an approval)
            65 invalid input · 70 internal error · 130 canceled

Docs: the book in `book/`; `spectacular <command> --help` for each command.";

/// The heading of the options every command takes, shown apart from the command's own.
const GLOBAL: &str = "Global options";

// Two or three examples at the end of each command's `--help` (a test parses every one).
const EXAMPLES_INIT: &str = "\
Examples:
  # Scaffold `.spectacular/` at the root of this repository
  spectacular init
  # Then check which agents can run here
  spectacular agents doctor";
const EXAMPLES_RUN: &str = "\
Examples:
  # Run the bundled example mission, offline
  spectacular run examples/quickstart
  # Run a built-in mission by name, with an input
  spectacular run software-dev --input spec=specs/auth.md
  # Implement a Spec Kit feature with the team's own tasks.md as the plan
  spectacular run specs/001-greetings/spec.md --tasks specs/001-greetings/tasks.md
  # Stream the run's events as JSON lines
  spectacular run examples/quickstart --json
  # Run the attempts on workers through NATS JetStream
  spectacular run examples/quickstart --nats nats://127.0.0.1:4222";
const EXAMPLES_RESUME: &str = "\
Examples:
  # Continue the latest run
  spectacular resume last
  # Continue a run with its mission as it is now
  spectacular resume 01JD3Q --upgrade
  # Take over a run whose coordinator died, from NATS (the whole run id)
  spectacular resume 01JD3QZK6V8X4M2N5P7R9T1W3Y --nats nats://127.0.0.1:4222";
const EXAMPLES_APPROVE: &str = "\
Examples:
  # Approve the gate `review` of the latest run, and continue it
  spectacular approve last review --resume
  # Reject it, saying why
  spectacular approve last review --reject --comment \"needs tests\"";
const EXAMPLES_CANCEL: &str = "\
Examples:
  # Cancel the latest run (`spectacular resume` continues it)
  spectacular cancel last
  # Cancel a run by a prefix of its id
  spectacular cancel 01JD3Q";
const EXAMPLES_STATUS: &str = "\
Examples:
  # The phases of the latest run
  spectacular status
  # Of another run, as JSON
  spectacular status 01JD3Q --json";
const EXAMPLES_RUNS: &str = "\
Examples:
  # Every run of the store
  spectacular runs
  # As JSON, for tools
  spectacular runs --json";
const EXAMPLES_EVENTS: &str = "\
Examples:
  # The policy decisions and budget alerts of the latest run
  spectacular events --type policy,budget
  # Follow one phase of a run as it goes
  spectacular events last --phase implement --follow
  # The log itself, as JSON lines
  spectacular events last --json";
const EXAMPLES_REPLAY: &str = "\
Examples:
  # Check that the projection matches the log
  spectacular replay last --verify
  # What would the latest run have cost with another routing pack?
  spectacular replay last --policies ./cost-routing
  # The same for every run of the last 30 days
  spectacular replay --all --since 30d --policies ./cost-routing";
const EXAMPLES_ANSWER: &str = "\
Examples:
  # List the questions the latest run waits on
  spectacular answer last
  # Answer question 1 and go on
  spectacular answer last 1 \"Keep exports for 30 days\" --resume";
const EXAMPLES_BOARD: &str = "\
Examples:
  # The work packages of the latest run, in four columns
  spectacular board
  # As JSON, with each package's transitions
  spectacular board last --json";
const EXAMPLES_REPORT: &str = "\
Examples:
  # The report of the latest run, as Markdown
  spectacular report
  # As JSON (`spectacular schema report` describes it)
  spectacular report last --json";
const EXAMPLES_PLAN: &str = "\
Examples:
  # The checked plan of the latest run
  spectacular plan
  # Priced with another model, as JSON
  spectacular plan last --model claude-sonnet --json";
const EXAMPLES_COST: &str = "\
Examples:
  # What each phase of the latest run cost
  spectacular cost last --by phase
  # What each model cost, over every run
  spectacular cost
  # Spending per day over the last week
  spectacular cost --by day --since 7d";
const EXAMPLES_DASHBOARD: &str = "\
Examples:
  # Watch and steer the runs of this project in a browser
  spectacular dashboard --open
  # On a fixed port, pages only (no approving or canceling)
  spectacular dashboard --port 8080 --read-only";
const EXAMPLES_MCP: &str = "\
Examples:
  # Serve this project's runs to an MCP client on stdin/stdout (the client starts it)
  spectacular mcp
  # Serve another project's store
  spectacular mcp --store ../other/.spectacular";
const EXAMPLES_WORKER: &str = "\
Examples:
  # Run attempts that need no labels, two at a time
  spectacular worker --nats nats://127.0.0.1:4222 --concurrency 2
  # Run the attempts of phases with `runs_on: [linux, aider]` too
  spectacular worker --nats nats://nats.internal:4222 --labels linux,aider";
const EXAMPLES_AGENTS: &str = "\
Examples:
  # The configured agents
  spectacular agents list
  # Which of them can run here
  spectacular agents doctor";
const EXAMPLES_VALIDATE: &str = "\
Examples:
  # Check a mission directory
  spectacular validate examples/quickstart
  # Check a built-in mission, diagnostics as JSON
  spectacular validate software-dev --format json";
const EXAMPLES_ANALYSE: &str = "\
Examples:
  # Analyse a spec against the repository it is about
  spectacular analyse specs/auth.md
  # The spec alone, as JSON
  spectacular analyse specs/auth.md --no-repo --json";
const EXAMPLES_GRAPH: &str = "\
Examples:
  # Graphviz DOT of a mission's phases
  spectacular graph examples/quickstart
  # Mermaid, to paste into Markdown
  spectacular graph software-dev --format mermaid";
const EXAMPLES_SCHEMA: &str = "\
Examples:
  # For editors: the mission schema
  spectacular schema mission > mission.schema.json
  # The shape of the work packages a planner writes
  spectacular schema tasks";
const EXAMPLES_MISSIONS: &str = "\
Examples:
  # The missions that can be run by name
  spectacular missions list
  # Copy a built-in mission into the project to change it
  spectacular missions eject software-dev";
const EXAMPLES_PR: &str = "\
Examples:
  # Open (or update) the pull request of the latest run, which succeeded
  spectacular pr
  # A run by id prefix
  spectacular pr 01J9";
const EXAMPLES_APPLY: &str = "\
Examples:
  # Apply the latest run's work (it succeeded) to the branch it started from
  spectacular apply
  # A run by id prefix
  spectacular apply 01J9";
const EXAMPLES_CLEAN: &str = "\
Examples:
  # What cleaning every successful run would remove
  spectacular clean --finished --dry-run
  # Every finished run, failed and canceled ones too
  spectacular clean --finished --include-failed
  # One run
  spectacular clean last";
const EXAMPLES_POLICY: &str = "\
Examples:
  # The policy packs and where each comes from
  spectacular policy list
  # Run the packs' tests
  spectacular policy test
  # Why the latest run's phases went where they went
  spectacular policy explain last";
const EXAMPLES_SYNC: &str = "\
Examples:
  # What this project's queue holds for the control plane
  spectacular sync status
  # Why events are pending or rejected
  spectacular sync diagnose
  # Send them now
  spectacular sync push";
const EXAMPLES_SERVE: &str = "\
Examples:
  # A control plane on this machine, events in the local NATS server
  spectacular serve --nats 127.0.0.1:4222 --token \"$FLEET_TOKEN\"
  # On every interface, with a monthly fleet budget per project
  spectacular serve --nats nats://nats:4222 --token \"$FLEET_TOKEN\" --bind 0.0.0.0 --budget payments=200 --budget '*=50'";
const EXAMPLES_FLEET: &str = "\
Examples:
  # Cost by project across the fleet (the server of this project's `sync:`)
  spectacular fleet cost
  # By model, this month, from another control plane
  spectacular fleet cost --by model --month 2026-12 --server http://fleet:7420
  # Who ran what
  spectacular fleet audit --project payments";
const EXAMPLES_COMPLETIONS: &str = "\
Examples:
  # Bash: complete run ids, missions, gates and packs (add to ~/.bashrc)
  source <(spectacular completions bash)
  # Fish
  spectacular completions fish > ~/.config/fish/completions/spectacular.fish
  # PowerShell (add to $PROFILE)
  spectacular completions powershell | Out-String | Invoke-Expression";

/// Spectacular: an embedded workflow engine for spec-driven AI coding.
#[derive(Debug, Parser)]
#[command(
    name = "spectacular",
    version,
    about,
    after_help = AFTER_HELP,
    propagate_version = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print help.
    #[arg(short, long, action = clap::ArgAction::Help, global = true, help_heading = GLOBAL)]
    pub help: Option<bool>,
    /// Print the version.
    #[arg(short = 'V', long, action = clap::ArgAction::Version, global = true, help_heading = GLOBAL)]
    pub version: Option<bool>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = GLOBAL)]
    pub verbose: u8,
    /// When to use colour: auto (only on a terminal, never with NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, help_heading = GLOBAL)]
    pub color: ColorChoice,
    /// The store directory (default: the nearest `.spectacular/` above the working directory,
    /// else the git root's, else the working directory's).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
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
    #[command(after_help = EXAMPLES_INIT)]
    Init(init::Args),
    /// Run a mission (a path or a name) to its end.
    #[command(after_help = EXAMPLES_RUN)]
    Run(run::RunArgs),
    /// Continue a run that was interrupted, canceled or suspended.
    #[command(after_help = EXAMPLES_RESUME)]
    Resume(run::ResumeArgs),
    /// Fast-forward the base branch of a run that succeeded to its integration branch.
    #[command(after_help = EXAMPLES_APPLY)]
    Apply(apply::Args),
    /// Push a run's integration branch and open its pull or merge request (or update it).
    ///
    /// Only when `.spectacular/config.yaml` has a `pull_requests:` section naming the remote;
    /// the body is the run's report, and a run fetched from an issue closes it.
    #[command(after_help = EXAMPLES_PR)]
    Pr(pr::Args),
    /// Approve (or reject) an approval gate of a run.
    #[command(after_help = EXAMPLES_APPROVE)]
    Approve(control::ApproveArgs),
    /// Answer the questions a run asks about its spec (a clarification waits for them).
    #[command(after_help = EXAMPLES_ANSWER)]
    Answer(answer::Args),
    /// Cancel a run: its attempts are stopped; it can be resumed later.
    #[command(after_help = EXAMPLES_CANCEL)]
    Cancel(control::CancelArgs),
    /// The phases of a run: state, attempts, duration.
    #[command(after_help = EXAMPLES_STATUS)]
    Status(query::StatusArgs),
    /// The runs in the store.
    #[command(after_help = EXAMPLES_RUNS)]
    Runs(query::RunsArgs),
    /// The events of a run.
    #[command(after_help = EXAMPLES_EVENTS)]
    Events(query::EventsArgs),
    /// Re-fold a run's log without side effects and print its timeline.
    ///
    /// With `--policies` or `--models` (what-if replay): what the run's policy decisions and
    /// costs would have been under other packs or prices, without running anything.
    #[command(after_help = EXAMPLES_REPLAY)]
    Replay(replay::ReplayArgs),
    /// The checked plan of a run: work packages, dependencies, files, coverage, lanes, cost.
    #[command(after_help = EXAMPLES_PLAN)]
    Plan(plan::Args),
    /// The work packages of a run on a board: planned, doing, review, done.
    #[command(after_help = EXAMPLES_BOARD)]
    Board(board::Args),
    /// What a run did, from its events: `report.md`, or `report.json` with `--json`.
    ///
    /// The spec and its complexity, the plan and its traceability, each work package (branch,
    /// commits, diffstat, lane, attempts, verdicts), checks and errors, cost by phase, agent
    /// and model, policy decisions, approvals, loops and the timeline.
    #[command(after_help = EXAMPLES_REPORT)]
    Report(report::Args),
    /// What agent calls cost (of one run, or all): totals, averages and shares by agent, model,
    /// phase, mission or day.
    #[command(after_help = EXAMPLES_COST)]
    Cost(cost::Args),
    /// Watch and steer runs in a browser: graphs, boards, costs and reports, live.
    #[command(after_help = EXAMPLES_DASHBOARD)]
    Dashboard(dashboard::Args),
    /// Serve the engine to an MCP client (an IDE agent) over stdin/stdout: tools to validate,
    /// start, follow and steer runs; resources for runs, events and reports.
    #[command(after_help = EXAMPLES_MCP)]
    Mcp(mcp::Args),
    /// Run attempts that coordinators (`run --nats`) publish to NATS JetStream.
    #[command(after_help = EXAMPLES_WORKER)]
    Worker(worker::Args),
    /// The configured agents, and whether each can run here.
    #[command(after_help = EXAMPLES_AGENTS)]
    Agents(agents::Args),
    /// Check a mission and report every problem, with its location and a fix.
    #[command(after_help = EXAMPLES_VALIDATE)]
    Validate(validate::Args),
    /// Analyse a spec: structure, problems, complexity with its signals, questions.
    #[command(after_help = EXAMPLES_ANALYSE)]
    Analyse(analyse::Args),
    /// Draw a mission's phase graph (Graphviz DOT or Mermaid).
    #[command(after_help = EXAMPLES_GRAPH)]
    Graph(graph::Args),
    /// Print a JSON Schema (for editors and tools).
    #[command(after_help = EXAMPLES_SCHEMA)]
    Schema(schema::Args),
    /// Missions that can be run by name: list, show, eject, diff.
    #[command(after_help = EXAMPLES_MISSIONS)]
    Missions(missions::Args),
    /// Remove the worktrees and work branches of finished runs (the integration branch stays).
    #[command(after_help = EXAMPLES_CLEAN)]
    Clean(clean::Args),
    /// Policy packs: list them, run their tests, explain a run's decisions.
    #[command(after_help = EXAMPLES_POLICY)]
    Policy(policy::Args),
    /// This project's event sync to a control plane: status, diagnose, push.
    #[command(after_help = EXAMPLES_SYNC)]
    Sync(sync::Args),
    /// Serve a control plane: events of many projects (HTTP, stored in NATS JetStream), with
    /// cost, budget and audit views.
    #[command(after_help = EXAMPLES_SERVE)]
    Serve(serve::Args),
    /// The fleet's views from a control plane: cost, audit, budgets.
    #[command(after_help = EXAMPLES_FLEET)]
    Fleet(serve::FleetArgs),
    /// Print a shell completion script.
    #[command(after_help = EXAMPLES_COMPLETIONS)]
    Completions(completions::Args),
}

/// What `spectacular --version` prints: the line clap renders (a test holds them together).
const VERSION_LINE: &str = concat!("spectacular ", env!("CARGO_PKG_VERSION"), "\n");

/// Whether the command line is `--version` (or `-V`) and nothing else. That one answers
/// without clap: parsing builds the command tree of every subcommand first, which costs more
/// than the rest of the process's start.
fn version_only() -> bool {
    let mut args = std::env::args_os().skip(1);
    let flag = args.next();
    args.next().is_none() && flag.is_some_and(|f| f == "--version" || f == "-V")
}

/// Parse the command line, run the command, return the process exit code.
pub fn main() -> ExitCode {
    completions::complete_if_asked();
    if version_only() {
        // As clap does, a version that cannot be written (stdout closed) still exits with 0.
        let _ = write_stdout(format_args!("{VERSION_LINE}"));
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let context = Context::new(cli.color, cli.store);
    let result = match cli.command {
        Command::Init(args) => init::run(&context, args),
        Command::Run(args) => run::run(&context, args),
        Command::Resume(args) => run::resume(&context, args),
        Command::Apply(args) => apply::run(&context, args),
        Command::Pr(args) => pr::run(&context, args),
        Command::Approve(args) => control::approve(&context, args),
        Command::Answer(args) => answer::run(&context, args),
        Command::Cancel(args) => control::cancel(&context, args),
        Command::Status(args) => query::status(&context, args),
        Command::Runs(args) => query::runs(&context, args),
        Command::Events(args) => query::events(&context, args),
        Command::Replay(args) => replay::replay(&context, args),
        Command::Plan(args) => plan::run(&context, args),
        Command::Board(args) => board::run(&context, args),
        Command::Report(args) => report::run(&context, args),
        Command::Cost(args) => cost::run(&context, args),
        Command::Dashboard(args) => dashboard::run(&context, args),
        Command::Mcp(args) => mcp::run(&context, args),
        Command::Worker(args) => worker::run(&context, args),
        Command::Agents(args) => agents::run(&context, args),
        Command::Validate(args) => validate::run(&context, args),
        Command::Analyse(args) => analyse::run(&context, args),
        Command::Graph(args) => graph::run(&context, args),
        Command::Schema(args) => schema::run(args),
        Command::Missions(args) => missions::run(&context, args),
        Command::Clean(args) => clean::run(&context, args),
        Command::Policy(args) => policy::run(&context, args),
        Command::Sync(args) => sync::run(&context, args),
        Command::Serve(args) => serve::run(&context, args),
        Command::Fleet(args) => serve::fleet(&context, args),
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
/// Text for a terminal, whatever it quotes (a plan's titles, an agent's text): control
/// characters go (an escape sequence can retitle the window, move the cursor or set the
/// clipboard), except newlines, tabs and the colour sequences (`ESC [ … m`), which do nothing
/// else.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Keep `ESC [ digits ; … m`, drop any other sequence's introducer.
            let mut seq = String::from(c);
            if chars.peek() == Some(&'[') {
                seq.push(chars.next().unwrap_or('['));
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_digit() || d == ';' {
                        seq.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if chars.peek() == Some(&'m') {
                    chars.next();
                    seq.push('m');
                    out.push_str(&seq);
                    continue;
                }
                out.push_str(&seq[1..]);
            }
            continue;
        }
        if c.is_control() && c != '\n' && c != '\t' {
            continue;
        }
        out.push(c);
    }
    out
}

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
    /// The project of `cwd`, found once when the command starts.
    pub project: Project,
    /// Colour on stdout.
    pub color_stdout: bool,
    /// Colour on stderr.
    pub color_stderr: bool,
    /// `--store DIR` / `SPECTACULAR_STORE`.
    pub store_override: Option<PathBuf>,
}

impl Context {
    /// The project's configuration (`.spectacular/config.yaml`), refused with its located
    /// diagnostics (exit 65) when it has errors.
    pub(crate) fn project_config(&self) -> Result<crate::config::project::ProjectConfig, Failure> {
        let (config, diagnostics) = crate::config::project::load(&self.store().dir);
        if diagnostics.has_errors() {
            return Err(Failure {
                exit: Exit::Invalid,
                message: format!(
                    "the project's config.yaml has errors\n{}",
                    self.render_stderr(&diagnostics)
                ),
            });
        }
        Ok(config)
    }

    fn new(choice: ColorChoice, store_override: Option<PathBuf>) -> Context {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |is_terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Context {
            project: Project::discover(&cwd),
            cwd,
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
            store_override,
        }
    }

    /// How many columns the terminal on stdout has; `None` when stdout is not a terminal (a
    /// pipe or a file gets whole lines).
    pub(crate) fn stdout_columns(&self) -> Option<usize> {
        if !std::io::stdout().is_terminal() {
            return None;
        }
        terminal_columns(libc::STDOUT_FILENO)
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
        let located = load::locate_in(mission, &self.cwd, &self.project)?;
        let loaded = load::load(located)?;
        Ok(crate::validate::validate_in(
            &loaded,
            &self.cwd,
            &self.project,
        ))
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

/// The run `run` names (an id, a unique prefix of one, or `last`) and its events: a usage
/// error when it names none, an internal one when its log cannot be read.
pub(crate) fn run_events(
    store: &crate::record::Store,
    run: &str,
) -> Result<(String, Vec<crate::record::Event>), Failure> {
    let run_id = store
        .resolve_run(run)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let events = store
        .read_events(&run_id)
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok((run_id, events))
}

/// How many columns the terminal on `fd` has now, if it is one.
pub(crate) fn terminal_columns(fd: std::os::raw::c_int) -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills the `winsize` it is given and reads nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
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

#[cfg(test)]
mod version_tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_quick_version_line_is_the_one_clap_prints() {
        assert_eq!(super::Cli::command().render_version(), super::VERSION_LINE);
    }
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn escape_sequences_go_but_colours_newlines_and_tabs_stay() {
        let clipboard = "title\u{1b}]52;c;cm0gLXJmIH4=\u{7}end";
        assert_eq!(printable(clipboard), "title]52;c;cm0gLXJmIH4=end");
        assert_eq!(printable("a\u{1b}[2Jb"), "a[2Jb");
        assert_eq!(
            printable("\u{1b}[1;31mred\u{1b}[0m\n\tx\r\u{9b}"),
            "\u{1b}[1;31mred\u{1b}[0m\n\tx"
        );
    }
}
