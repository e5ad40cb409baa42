//! `spectacular answer <run> <question> "text"` (or `--file answers.yaml`): answers to the
//! questions a clarification (`builtin/clarify`) waits for, recorded as
//! `clarification.answered` events. Like `approve`, they go through the inbox of an engine
//! that runs the run, else they are recorded directly under the run's lock. Also the
//! questions asked in place by `run --interactive` and `resume --interactive`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::PathBuf;

use super::{Context, Exit, Failure, Outcome};
use crate::execute::inbox::{self, Command};
use crate::record::event::{ClarificationAnswered, EventData};
use crate::record::limits::ANSWER_MAX;
use crate::record::{fold, Event, PhaseState, RunLog};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (a unique prefix, or `last`).
    pub run: String,
    /// The number of the question (as the run's output shows them). Without a question and an
    /// answer, the questions are printed, with which are answered.
    pub question: Option<u32>,
    /// The answer: one line (at most 2,000 characters).
    pub answer: Option<String>,
    /// Read answers from a YAML file: a mapping of question numbers to answers
    /// (`1: email and password`), or a list of answers in question order.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["question", "answer"])]
    pub file: Option<PathBuf>,
    /// The phase whose questions these are (needed only when several wait).
    #[arg(long)]
    pub phase: Option<String>,
    /// Resume the run right away once every question is answered (when no engine runs it).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: stream events as JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// The questions a phase of a run waits for, and which are answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub phase: String,
    pub questions: Vec<String>,
    pub answered: BTreeSet<u32>,
}

impl Pending {
    pub fn open(&self) -> Vec<u32> {
        (1..=self.questions.len() as u32)
            .filter(|n| !self.answered.contains(n))
            .collect()
    }
}

/// Every phase of the run that waits with questions (its last request's questions, and the
/// answers recorded since).
pub fn pending(events: &[Event]) -> Vec<Pending> {
    let summary = fold(events);
    let mut found: BTreeMap<String, Pending> = BTreeMap::new();
    for event in events {
        match &event.data {
            EventData::ApprovalRequested(d) => {
                if d.questions.is_empty() {
                    found.remove(&d.phase);
                } else {
                    found.insert(
                        d.phase.clone(),
                        Pending {
                            phase: d.phase.clone(),
                            questions: d.questions.clone(),
                            answered: BTreeSet::new(),
                        },
                    );
                }
            }
            EventData::ClarificationAnswered(d) => {
                if let Some(p) = found.get_mut(&d.phase) {
                    p.answered.insert(d.question);
                }
            }
            _ => {}
        }
    }
    found
        .into_values()
        .filter(|p| {
            summary
                .phases
                .get(&p.phase)
                .is_some_and(|s| s.state == PhaseState::Waiting)
        })
        .collect()
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    if let Some(why) = crate::execute::inbox::inside_attempt(&store) {
        return Err(Failure::usage(format!(
            "answers come from people, and these come from inside a run: {why}; nothing was \
             recorded (answer from your own terminal)"
        )));
    }
    let (run_id, events) = super::run_events(&store, &args.run)?;
    let waiting = pending(&events);
    let target = choose(&run_id, &waiting, args.phase.as_deref())?;
    let answers: Vec<(u32, String)> =
        match (&args.file, args.question, &args.answer) {
            (Some(file), _, _) => read_file(file)?,
            (None, Some(n), Some(text)) => vec![(n, text.clone())],
            (None, None, None) => {
                // No answer: the questions, and which are answered.
                outln!("questions of `{}` (run {run_id}):", target.phase)?;
                for (i, q) in target.questions.iter().enumerate() {
                    let n = i as u32 + 1;
                    let state = if target.answered.contains(&n) {
                        "answered"
                    } else {
                        "open"
                    };
                    outln!("{n}. [{state}] {q}")?;
                }
                return Ok(Exit::Success);
            }
            _ => return Err(Failure::usage(
                "give a question number and its answer (`spectacular answer <run> 1 \"…\"`), or \
                 `--file answers.yaml`"
                    .to_string(),
            )),
        };
    let mut checked = Vec::new();
    for (n, text) in answers {
        checked.push(check(target, n, &text)?);
    }
    let open_after: Vec<u32> = target
        .open()
        .into_iter()
        .filter(|n| {
            !checked
                .iter()
                .any(|c: &ClarificationAnswered| c.question == *n)
        })
        .collect();
    let through_engine = record(context, &run_id, checked.clone())?;
    for c in &checked {
        outln!("answered question {} of `{}`", c.question, c.phase)?;
    }
    if through_engine {
        outln!("the running engine continues the run")?;
        return Ok(Exit::Success);
    }
    if !open_after.is_empty() {
        let open: Vec<String> = open_after.iter().map(u32::to_string).collect();
        outln!(
            "still open: question{} {}; `spectacular status {run_id}` shows them (or approve \
             `{}` to go on without them)",
            if open.len() == 1 { "" } else { "s" },
            open.join(", "),
            target.phase
        )?;
        return Ok(Exit::Success);
    }
    if args.resume {
        return super::run::resume(
            context,
            super::run::ResumeArgs {
                run: run_id,
                upgrade: false,
                json: args.json,
                interactive: false,
                apply: false,
                nats: std::env::var(crate::execute::distributed::NATS_ENV).ok(),
            },
        );
    }
    outln!("every question is answered; continue the run with `spectacular resume {run_id}`")?;
    Ok(Exit::Success)
}

fn choose<'a>(
    run_id: &str,
    waiting: &'a [Pending],
    phase: Option<&str>,
) -> Result<&'a Pending, Failure> {
    let names: Vec<&str> = waiting.iter().map(|p| p.phase.as_str()).collect();
    match phase {
        Some(phase) => waiting.iter().find(|p| p.phase == phase).ok_or_else(|| {
            let help = if names.is_empty() {
                "no phase of this run waits for answers".to_string()
            } else {
                format!("waiting for answers: {}", crate::diag::one_of(&names))
            };
            Failure::usage(format!(
                "phase `{phase}` of run `{run_id}` waits for no answers\n  help: {help}"
            ))
        }),
        None => match waiting {
            [one] => Ok(one),
            [] => Err(Failure::usage(format!(
                "run `{run_id}` waits for no answers\n  help: `spectacular status {run_id}` \
                 shows what it waits for"
            ))),
            _ => Err(Failure::usage(format!(
                "several phases of run `{run_id}` wait for answers\n  help: say which with \
                 `--phase`: {}",
                crate::diag::one_of(&names)
            ))),
        },
    }
}

/// An answer to question `n` of `pending`, cleaned (one line, bounded), or why not.
fn check(pending: &Pending, n: u32, text: &str) -> Result<ClarificationAnswered, Failure> {
    let count = pending.questions.len();
    if n == 0 || n as usize > count {
        return Err(Failure::usage(format!(
            "`{}` asked {count} question{}; there is no question {n}",
            pending.phase,
            if count == 1 { "" } else { "s" }
        )));
    }
    let chars = text.chars().count();
    if chars > ANSWER_MAX {
        return Err(Failure::usage(format!(
            "the answer to question {n} is {chars} characters long; at most {ANSWER_MAX}\n  \
             help: answer in one line; the spec is the place for details"
        )));
    }
    let answer = crate::spec::clarify::clean(text);
    if answer.is_empty() {
        return Err(Failure::usage(format!(
            "the answer to question {n} is empty"
        )));
    }
    Ok(ClarificationAnswered {
        phase: pending.phase.clone(),
        question: n,
        text: pending.questions[n as usize - 1].clone(),
        answer,
    })
}

/// `answers.yaml`: `{1: "…", 2: "…"}` or `["…", "…"]`.
fn read_file(path: &std::path::Path) -> Result<Vec<(u32, String)>, Failure> {
    use crate::load::yaml::{self, Value};
    let name = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::usage(format!("cannot read `{name}`: {e}")))?;
    if meta.len() > 1 << 20 {
        return Err(Failure::usage(format!("`{name}` is larger than 1 MiB")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read `{name}`: {e}")))?;
    let parsed = yaml::parse(&text, &name);
    if let Some(d) = parsed.diagnostics.first() {
        return Err(Failure::usage(format!(
            "`{name}` is not YAML: {}",
            d.message
        )));
    }
    let scalar = |node: &yaml::Node| match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let wrong = || {
        Failure::usage(format!(
            "`{name}` must map question numbers to answers (`1: email and password`) or list \
             the answers in question order"
        ))
    };
    let mut out = Vec::new();
    match parsed.root.as_ref().map(|r| &r.value) {
        Some(Value::Map(entries)) => {
            for entry in entries {
                let n: u32 = entry
                    .key
                    .trim()
                    .trim_start_matches(['q', 'Q'])
                    .parse()
                    .map_err(|_| {
                        Failure::usage(format!(
                            "`{name}`: `{}` is not a question number",
                            entry.key
                        ))
                    })?;
                out.push((n, scalar(&entry.value).ok_or_else(wrong)?));
            }
        }
        Some(Value::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                out.push((i as u32 + 1, scalar(item).ok_or_else(wrong)?));
            }
        }
        _ => return Err(wrong()),
    }
    if out.is_empty() {
        return Err(wrong());
    }
    Ok(out)
}

/// Record the answers: through the inbox of the engine that runs the run (true), or directly
/// under the run's lock.
fn record(
    context: &Context,
    run_id: &str,
    answers: Vec<ClarificationAnswered>,
) -> Result<bool, Failure> {
    let store = context.store();
    let actor = inbox::actor();
    match RunLog::open(&store, run_id) {
        Err(crate::record::Error::Locked { .. }) => {
            for a in answers {
                inbox::send(
                    &store.run_dir(run_id),
                    &Command::Answer {
                        phase: a.phase,
                        question: a.question,
                        text: a.text,
                        answer: a.answer,
                        actor: actor.clone(),
                    },
                )
                .map_err(|e| Failure::internal(format!("writing to the run's inbox: {e}")))?;
            }
            Ok(true)
        }
        Err(e) => Err(Failure::internal(e.to_string())),
        Ok((mut log, _)) => {
            for a in answers {
                let causation = log.last_event_id().map(str::to_string);
                log.append(
                    EventData::ClarificationAnswered(a),
                    &actor,
                    causation.as_deref(),
                );
            }
            log.commit().map_err(|e| Failure::internal(e.to_string()))?;
            drop(log);
            if let Ok(mut projection) = store.projection() {
                let _ = projection.apply(&[]);
            }
            Ok(false)
        }
    }
}

/// `--interactive`: ask the open questions of a suspended run on the terminal, one line each,
/// and record the answers. True when every question got an answer (the run can go on); an
/// empty line leaves a question open.
pub fn ask(context: &Context, run_id: &str) -> Result<bool, Failure> {
    let events = context
        .store()
        .read_events(run_id)
        .map_err(|e| Failure::internal(e.to_string()))?;
    let waiting = pending(&events);
    if waiting.is_empty() {
        return Ok(false);
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut all = true;
    for p in &waiting {
        let mut answers = Vec::new();
        for n in p.open() {
            eoutln!("{n}. {}", p.questions[n as usize - 1]);
            eout!("> ");
            let Some(Ok(line)) = lines.next() else {
                all = false;
                break;
            };
            match check(p, n, &line) {
                Ok(answer) => answers.push(answer),
                Err(e) => {
                    eoutln!("{}", e.message);
                    all = false;
                }
            }
        }
        if answers.len() < p.open().len() {
            all = false;
        }
        if !answers.is_empty() {
            record(context, run_id, answers)?;
        }
    }
    Ok(all)
}
