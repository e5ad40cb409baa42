//! Preparing an attempt before `attempt.started` is recorded: its directory, rendered argv,
//! script or prompt, its environment, and for agents the policy decisions, the budget
//! reservation and the fallback chain of candidates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fallback::{AgentJob, Candidate, Runner};
use super::*;
use crate::load::Base;
use crate::model::{FailureKind, PhaseKind, Workspace};
use crate::record::event::*;

/// Everything an attempt needs, prepared (rendered) before `attempt.started` is recorded.
pub(super) struct Job {
    pub(super) phase: String,
    pub(super) attempt: u32,
    pub(super) dir: PathBuf,
    pub(super) timeout: Option<Duration>,
    pub(super) work: Work,
    pub(super) outputs: indexmap::IndexMap<String, crate::model::Output>,
    pub(super) output_paths: BTreeMap<String, String>,
    pub(super) base: Base,
    pub(super) run_dir: PathBuf,
    /// The run's redactor, for failure messages, output values and captured output.
    pub(super) redactor: crate::record::redact::Redactor,
    /// For agent phases: how to read what the agent printed.
    pub(super) agent: Option<AgentJob>,
    /// What to reserve in the budgets shared with other runs before anything runs.
    pub(super) reservation: Option<Reservation>,
    /// For agent phases of a project with `sync.enforce_budget`: the fleet budget to ask
    /// first.
    pub(super) fleet: Option<crate::sync::Gate>,
    /// For `workspace: worktree`: the worktree to prepare first and commit after.
    pub(super) worktree: Option<super::worktree::WorktreeJob>,
    /// For `workspace: integration`: the integration branch's head it must run on and leave.
    pub(super) integration: Option<super::worktree::IntegrationGuard>,
    /// For `workspace: view`: the view of the repository to make first and remove after.
    pub(super) view: Option<super::view::ViewJob>,
    /// For the workspaces in a repository (`view`, `worktree`, `integration`): the outputs
    /// directory inside the working directory (`outputs::WORKSPACE_OUT`), made empty before the
    /// attempt and moved into the attempt directory after it.
    pub(super) out_dir: Option<PathBuf>,
    /// With NATS, for an attempt in its own directory or a work package's worktree: its
    /// processes run on a worker with these labels (a package in the worker's own clone).
    pub(super) remote: Option<(
        Arc<crate::execute::distributed::coordinator::Remote>,
        Vec<String>,
    )>,
}

/// A reservation in the shared day and month budgets, made by the attempt's task.
pub(super) struct Reservation {
    pub(super) shared: ledger::Shared,
    pub(super) run_id: String,
    pub(super) key: String,
    pub(super) estimate: f64,
}

pub(super) enum Work {
    Process(process::Spec),
    /// `builtin/merge`, which records a step at a time.
    Merge(super::worktree::MergeJob),
    Builtin {
        step: String,
        with: Value,
        project_root: PathBuf,
        stdout: PathBuf,
        run_id: String,
        mission: String,
        /// How a process of this attempt runs (for built-ins that run commands).
        process: Box<process::Spec>,
        /// `builtin/clarify`: the questions answered so far.
        clarifications: Vec<crate::schedule::Clarified>,
    },
}

/// Why a started attempt did not get a job.
pub(super) enum NotStarted {
    /// It failed before anything ran (recorded as `attempt.failed`).
    Failed(FailureKind, String),
    /// A policy requires an approval first, or a clarification asks its questions
    /// (recorded as `approval.requested`, with the questions).
    NeedsApproval(String, Vec<String>),
}

impl From<(FailureKind, String)> for NotStarted {
    fn from((kind, message): (FailureKind, String)) -> NotStarted {
        NotStarted::Failed(kind, message)
    }
}

type Prepared = (AttemptStarted, Result<Job, NotStarted>);

impl Engine {
    pub(super) fn prepare(
        &mut self,
        instance: &str,
        attempt: u32,
        timeout: Option<Duration>,
    ) -> Prepared {
        // An instance name that cannot be a path segment never gets a directory.
        let (dir, unsafe_dir) = match self.attempt_dir(instance, attempt) {
            Ok(dir) => (dir, None),
            Err(e) => (self.run_dir.join("attempts"), Some(e)),
        };
        let mut started = AttemptStarted {
            phase: instance.to_string(),
            attempt,
            workdir: dir
                .strip_prefix(&self.run_dir)
                .unwrap_or(&dir)
                .display()
                .to_string(),
            argv: None,
            prompt_digest: None,
            reserved_usd: None,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
        };
        if let Some(e) = unsafe_dir {
            started.workdir = String::new();
            let refused = NotStarted::Failed(FailureKind::Spawn, format!("attempt directory: {e}"));
            return (started, Err(refused));
        }
        let job = self.prepare_job(instance, attempt, timeout, &dir, &mut started);
        (started, job)
    }

    /// The questions `builtin/clarify` asks before it runs (its `with.spec` analysed without
    /// the repository, the questions a clarifier proposed in `with.questions`, the project's
    /// `clarify:` settings), or `None` when the spec need not ask.
    fn clarify_questions(&self, with: &Value) -> Option<Vec<String>> {
        let spec = with.get("spec").and_then(Value::as_str)?;
        let path = self.project_root.join(spec);
        let dot_dir = self.project_root.join(crate::project::DOT_DIR);
        let (project, _) = crate::config::project::load(&dot_dir);
        let (config, _) = crate::spec::AnalysisConfig::load(&self.project_root, &self.project_root);
        let analysis = crate::spec::analyse_file(&path, spec, None, &config).ok()?;
        let proposed = with
            .get("questions")
            .and_then(Value::as_str)
            .map(crate::spec::clarify::proposed)
            .unwrap_or_default();
        crate::spec::clarify::questions(&analysis, &proposed, &project.clarify())
    }

    /// The answers a `builtin/clarify` step goes on with; its questions first, as an approval
    /// to ask, while the spec is ambiguous and the phase is not approved.
    fn clarifications(
        &self,
        instance: &str,
        with: &Value,
    ) -> Result<Vec<crate::schedule::Clarified>, NotStarted> {
        if !self.scheduler.approved(instance) {
            if let Some(questions) = self.clarify_questions(with) {
                let n = questions.len();
                let run = self.log.run_id().to_string();
                return Err(NotStarted::NeedsApproval(
                    format!(
                        "the spec is ambiguous: {n} question{} to answer with \
                         `spectacular answer {run} <number> \"…\"` (or approve \
                         `{instance}` to go on without answers)",
                        if n == 1 { "" } else { "s" }
                    ),
                    questions,
                ));
            }
        }
        Ok(self.scheduler.clarifications(instance))
    }

    fn prepare_job(
        &mut self,
        instance: &str,
        attempt: u32,
        timeout: Option<Duration>,
        dir: &Path,
        started: &mut AttemptStarted,
    ) -> Result<Job, NotStarted> {
        let phase = self.scheduler.phase_of(instance).cloned().ok_or((
            FailureKind::Spawn,
            format!("unknown phase `{instance}`; this is a bug in spectacular"),
        ))?;
        // In-process built-ins create their directory only when they write something.
        if !matches!(phase.kind, PhaseKind::Uses { .. }) {
            make_dir(dir).map_err(|e| {
                (
                    FailureKind::Spawn,
                    format!("creating `{}`: {e}", dir.display()),
                )
            })?;
        }
        let mut context = self.scheduler.context(instance, attempt);
        // The project knowledge for the phase's role (`knowledge`), bounded by its budget.
        let role = match &phase.kind {
            PhaseKind::Agent { role, .. } => role.as_deref(),
            _ => None,
        };
        context["knowledge"] = Value::String(knowledge(&self.project_root, role, &context).text);
        let render = |text: &str| {
            crate::prompt::render(text, &context)
                .map_err(|e| (FailureKind::Expression, e.to_string()))
        };
        let mut outputs = phase.outputs.clone();
        let output_paths = self.render_outputs(&mut outputs, &context)?;
        let worktree = match phase.workspace {
            Workspace::Worktree => Some(self.worktree_job(instance)?),
            Workspace::Repo | Workspace::Attempt | Workspace::Integration | Workspace::View => None,
        };
        let integration = match phase.workspace {
            Workspace::Integration => Some(self.integration_guard()?),
            _ => None,
        };
        let view = match phase.workspace {
            Workspace::View => Some(self.view_job(instance, attempt, &context)?),
            _ => None,
        };
        let cwd = match (&worktree, &view, phase.workspace) {
            (Some(w), _, _) => w.cwd.clone(),
            (None, Some(v), _) => v.cwd.clone(),
            (None, None, Workspace::Repo) => self.project_root.clone(),
            (None, None, Workspace::Integration) => self.integration_dir()?,
            (None, None, _) => dir.to_path_buf(),
        };
        // Clients are confined to their working directory: a phase working in a repository
        // writes its outputs inside it. The attempt and repo workspaces write them in the
        // attempt directory (under the project, where such a client works).
        let out_dir = match phase.workspace {
            Workspace::View | Workspace::Worktree | Workspace::Integration => {
                Some(cwd.join(outputs::WORKSPACE_OUT))
            }
            Workspace::Attempt | Workspace::Repo => None,
        };
        let env = self.attempt_env(instance, attempt, out_dir.as_deref().unwrap_or(dir));
        let grace = self.settings.grace;
        let ledger = self.run_dir.join("pids");
        // `run:` and `shell:` children keep no secret; agents get theirs per candidate.
        let env_remove = self.secrets.removals(None);
        let spec = |argv: Vec<String>, stdin: Option<Vec<u8>>| process::Spec {
            argv,
            cwd: cwd.clone(),
            env: env.clone(),
            env_remove: env_remove.clone(),
            stdin,
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
            pid_file: ledger.clone(),
            tag: process::tag(instance, attempt),
            timeout,
            grace,
        };
        let mut agent_job = None;
        let mut shared_reservation = None;
        let work = match &phase.kind {
            PhaseKind::Run { argv } => {
                let argv = argv
                    .iter()
                    .map(|a| render(a))
                    .collect::<Result<Vec<_>, _>>()?;
                started.argv = Some(argv.clone());
                Work::Process(spec(argv, None))
            }
            PhaseKind::Shell { script } => {
                let argv = vec!["sh".to_string(), "-c".to_string(), render(script)?];
                started.argv = Some(argv.clone());
                Work::Process(spec(argv, None))
            }
            PhaseKind::Uses { step, with } => {
                let with =
                    render_value(&Value::Object(with.clone().into_iter().collect()), &context)
                        .map_err(|e| (FailureKind::Expression, e.to_string()))?;
                if step == "builtin/merge" {
                    Work::Merge(self.merge_job(instance, attempt, &with)?)
                } else {
                    let clarifications = if step == "builtin/clarify" {
                        self.clarifications(instance, &with)?
                    } else {
                        Vec::new()
                    };
                    Work::Builtin {
                        step: step.strip_prefix("builtin/").unwrap_or(step).to_string(),
                        with,
                        project_root: self.project_root.clone(),
                        stdout: dir.join("stdout.log"),
                        run_id: self.log.run_id().to_string(),
                        mission: self.plan.mission.id.clone(),
                        process: Box::new(spec(Vec::new(), None)),
                        clarifications,
                    }
                }
            }
            PhaseKind::Agent { .. } => {
                let (job, reservation) = self.agent_job(
                    instance,
                    attempt,
                    &phase,
                    &context,
                    dir,
                    &cwd,
                    out_dir.is_some(),
                    started,
                )?;
                agent_job = Some(job);
                shared_reservation = reservation;
                Work::Process(spec(Vec::new(), None))
            }
            PhaseKind::Approval { .. } => {
                return Err(NotStarted::Failed(
                    FailureKind::Spawn,
                    "an approval gate has no attempt; this is a bug in spectacular".into(),
                ));
            }
        };
        let fleet = agent_job.as_ref().and(self.fleet.clone());
        Ok(Job {
            fleet,
            phase: instance.to_string(),
            attempt,
            dir: dir.to_path_buf(),
            timeout,
            work,
            outputs,
            output_paths,
            base: self.plan.mission.base.clone(),
            run_dir: self.run_dir.clone(),
            redactor: self.log.redactor().clone(),
            agent: agent_job,
            reservation: shared_reservation,
            worktree,
            integration,
            view,
            out_dir,
            remote: match (&self.remote, phase.workspace) {
                (
                    Some(remote),
                    crate::model::Workspace::Attempt | crate::model::Workspace::Worktree,
                ) => Some((remote.clone(), phase.runs_on.clone())),
                _ => None,
            },
        })
    }

    /// Render the outputs' paths (returned by name), and each check's plan and spec in place:
    /// a verdicts check's plan may name a recorded output (`<phase>.<output>`), else it and a
    /// plan check's spec are read from the project root.
    fn render_outputs(
        &self,
        outputs: &mut indexmap::IndexMap<String, crate::model::Output>,
        context: &Value,
    ) -> Result<BTreeMap<String, String>, NotStarted> {
        let render = |text: &str| {
            crate::prompt::render(text, context)
                .map_err(|e| (FailureKind::Expression, e.to_string()))
        };
        let mut output_paths = BTreeMap::new();
        for (name, output) in outputs.iter_mut() {
            output_paths.insert(name.clone(), render(&output.path)?);
            // A plan check's spec (a verdicts check's plan) is rendered now, and read from the
            // project root.
            if let Some(check) = output.check.as_mut() {
                // A verdicts check's plan may name a recorded output, `<phase>.<output>`.
                if let Some(plan) = check.plan.as_mut() {
                    let rendered = render(plan)?;
                    let recorded = rendered.split_once('.').and_then(|(phase, output)| {
                        self.scheduler.artifacts_of(phase)?.get(output).cloned()
                    });
                    *plan = match recorded {
                        Some(artifact) => self.run_dir.join(artifact),
                        None => self.project_root.join(rendered),
                    }
                    .display()
                    .to_string();
                }
                if let Some(spec) = check.spec.as_mut() {
                    *spec = self.project_root.join(render(spec)?).display().to_string();
                    check.started_spec = super::start::input_snapshot(&self.run_dir, spec);
                }
            }
        }
        Ok(output_paths)
    }

    /// The environment of an attempt's process: which run, phase, attempt and item it is, and
    /// where it writes its outputs.
    fn attempt_env(
        &self,
        instance: &str,
        attempt: u32,
        output_dir: &Path,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "SPECTACULAR_RUN_ID".to_string(),
                self.log.run_id().to_string(),
            ),
            ("SPECTACULAR_PHASE".to_string(), instance.to_string()),
            ("SPECTACULAR_ATTEMPT".to_string(), attempt.to_string()),
            (
                "SPECTACULAR_OUTPUT_DIR".to_string(),
                output_dir.display().to_string(),
            ),
            (
                "SPECTACULAR_RUN_DIR".to_string(),
                self.run_dir.display().to_string(),
            ),
        ];
        if let Some(item) = self.scheduler.item_of(instance) {
            env.push(("SPECTACULAR_ITEM".to_string(), item.to_string()));
        }
        env
    }
    /// The job of an agent phase: its agent and fallback chain as the policies route, govern
    /// and budget it (every decision is recorded), and the first candidate's reservation in
    /// the budgets shared with other runs, when there are any.
    #[allow(clippy::too_many_arguments)]
    fn agent_job(
        &mut self,
        instance: &str,
        attempt: u32,
        phase: &crate::plan::PlannedPhase,
        context: &Value,
        dir: &Path,
        cwd: &Path,
        in_repository: bool,
        started: &mut AttemptStarted,
    ) -> Result<(AgentJob, Option<Reservation>), NotStarted> {
        let PhaseKind::Agent {
            role,
            agent,
            prompt,
            model,
        } = &phase.kind
        else {
            return Err(NotStarted::Failed(
                FailureKind::Spawn,
                format!("phase `{instance}` is not an agent phase; this is a bug in spectacular"),
            ));
        };
        let text = self.agent_prompt(prompt.as_deref(), role.as_deref(), context)?;
        let prompt_file = dir.join("prompt.md");
        std::fs::write(&prompt_file, &text)
            .map_err(|e| (FailureKind::Spawn, format!("writing the prompt: {e}")))?;
        started.prompt_digest = Some(pin::sha256(text.as_bytes()));
        let dot_dir = self.project_root.join(crate::project::DOT_DIR);
        let configured = agents::load(self.plan.mission.base.dir(), &dot_dir)
            .map_err(|e| (FailureKind::Spawn, e.to_string()))?;
        // Policies route, govern and budget the phase; every decision is recorded.
        let mut decisions =
            self.decide_policies(instance, attempt, phase, &configured, &text, context);
        // The agent: the phase's, else the route's, else the first serving the role.
        let routed_agent = agent
            .clone()
            .or_else(|| decisions.agent().map(str::to_string));
        let chosen_agent = agents::choose(&configured, routed_agent.as_deref(), role.as_deref());
        let applied = chosen_agent.as_ref().ok().map(|(name, config)| {
            model_choice(&decisions, agent.as_deref(), model.as_deref(), name, config)
        });
        decisions.ignored = applied.as_ref().and_then(|a| a.ignored.clone());
        for event in decisions.events(instance) {
            self.record(event, "engine");
        }
        if let Some(ctx) = &decisions.context {
            self.routed.insert(instance.to_string(), ctx.clone());
        }
        self.check_govern(instance, &decisions.govern)?;
        let (agent_name, chosen) = chosen_agent.map_err(|e| (FailureKind::Spawn, e.to_string()))?;
        let mut agent_context = context.clone();
        agent_context["project_dir"] = Value::String(self.project_root.display().to_string());
        if let Some(mission_dir) = self.plan.mission.base.dir() {
            agent_context["mission_dir"] = Value::String(mission_dir.display().to_string());
        }
        // The catalog name (for prices) and the provider's id (for the client).
        let model_name = applied.and_then(|a| a.model);
        // Under a budget, every candidate of the chain reserves at its own model's price.
        let budgeted = self.budget.enforced() || !self.shared.is_empty();
        let mcp = self.mcp(&dot_dir, role.clone(), decisions.mcp_tools());
        let make = |name: &str, config: &crate::agents::AdapterConfig, model: Option<String>| {
            self.candidate(
                name,
                config,
                model,
                &agent_context,
                &text,
                &prompt_file,
                cwd,
                // The repository workspaces are the engine's own worktrees.
                in_repository,
                budgeted,
                &mcp,
            )
        };
        // The chain: the chosen agent, its model's fallbacks (same provider), then its
        // agent fallbacks. Entries cooling down after a recent failure go last.
        let mut candidates = vec![make(agent_name, chosen, model_name.clone())
            .map_err(|e| (FailureKind::Spawn, e.to_string()))?];
        if let Some(spec) = model_name.as_deref().and_then(|m| self.catalog.get(m)) {
            for fallback in &spec.fallbacks {
                let same_provider = self
                    .catalog
                    .get(fallback)
                    .is_some_and(|f| f.provider == spec.provider);
                if same_provider && chosen.adapter != "command" {
                    if let Ok(c) = make(agent_name, chosen, Some(fallback.clone())) {
                        candidates.push(c);
                    }
                }
            }
        }
        for fallback in &chosen.fallbacks {
            if let Some(config) = configured.agents.get(fallback) {
                let model = config.model.clone().or_else(|| model_name.clone());
                if let Ok(c) = make(fallback, config, model) {
                    candidates.push(c);
                }
            }
        }
        if let Ok(cooling) = self.cooldowns.lock() {
            let now = Instant::now();
            candidates.sort_by_key(|c| cooling.get(&c.key()).is_some_and(|until| *until > now));
        }
        let reservation = self.reserve_first(instance, attempt, &candidates[0], started)?;
        started.argv = match &candidates[0].runner {
            Runner::Cli { invocation, .. } => Some(invocation.argv.clone()),
            Runner::Http { .. } => None,
        };
        let job = AgentJob {
            candidates,
            cooldowns: self.cooldowns.clone(),
            tx: self.tx.clone(),
        };
        Ok((job, reservation))
    }

    /// The rendered prompt of an agent phase: its template (read beside the mission), else a
    /// line naming its role.
    fn agent_prompt(
        &self,
        prompt: Option<&str>,
        role: Option<&str>,
        context: &Value,
    ) -> Result<String, NotStarted> {
        let template = match prompt {
            Some(p) => self
                .plan
                .mission
                .base
                .read(p)
                .map_err(|e| (FailureKind::Spawn, format!("prompt template: {e}")))?,
            None => format!("You are the {} of this mission.\n", role.unwrap_or("agent")),
        };
        Ok(crate::prompt::render(&template, context)
            .map_err(|e| (FailureKind::Expression, e.to_string()))?)
    }

    /// What a `govern` decision says: go on, fail the attempt, or wait for an approval (once).
    fn check_govern(
        &self,
        instance: &str,
        govern: &crate::policy::GovernOutcome,
    ) -> Result<(), NotStarted> {
        match govern {
            crate::policy::GovernOutcome::Allow => Ok(()),
            crate::policy::GovernOutcome::Deny { reason, pack } => Err(NotStarted::Failed(
                FailureKind::Denied,
                format!("denied by policy `{pack}`: {reason}"),
            )),
            crate::policy::GovernOutcome::RequireApproval { reason, pack } => {
                if self.scheduler.approved(instance) {
                    Ok(())
                } else {
                    Err(NotStarted::NeedsApproval(
                        format!("policy `{pack}`: {reason}"),
                        Vec::new(),
                    ))
                }
            }
        }
    }

    /// The MCP servers and tools of `config.yaml` and the mission, as a `govern` decision
    /// narrows them.
    fn mcp(&self, dot_dir: &Path, role: Option<String>, narrow: Option<Vec<String>>) -> Mcp {
        let (project_config, _) = crate::config::project::load(dot_dir);
        let mission = &self.plan.mission;
        let (servers, tools) = crate::config::mcp::combine(
            (
                &project_config.mcp_servers,
                &project_config.mcp_tools.unwrap_or_default(),
            ),
            (&mission.mcp_servers, &mission.mcp_tools),
        );
        Mcp {
            servers,
            tools,
            role,
            narrow,
        }
    }

    /// The hard cap: reserve the first candidate's estimate before starting, or refuse (an
    /// unpriced model cannot be reserved for: never a zero budget). Then the day and month
    /// budgets shared with other runs, reserved by the attempt's task (returned).
    fn reserve_first(
        &mut self,
        instance: &str,
        attempt: u32,
        first: &Candidate,
        started: &mut AttemptStarted,
    ) -> Result<Option<Reservation>, NotStarted> {
        let Some(reserve) = &first.reserve else {
            return Ok(None);
        };
        let estimate = reserve
            .clone()
            .map_err(|e| (FailureKind::Budget, e.to_string()))?;
        self.budget
            .check(instance, estimate)
            .map_err(|e| (FailureKind::Budget, e.to_string()))?;
        started.reserved_usd = Some(estimate);
        if self.shared.is_empty() {
            return Ok(None);
        }
        // Reserved by the attempt's task, off the event loop: the ledger's lock may be held
        // by another run.
        let key = ledger::key(instance, attempt);
        self.shared_reserved.insert(key.clone());
        Ok(Some(Reservation {
            shared: self.shared.clone(),
            run_id: self.log.run_id().to_string(),
            key,
            estimate,
        }))
    }

    /// Prices of a catalog model, for pricing usage and estimating reservations.
    fn prices(&self, model: Option<&str>) -> Option<crate::agents::Prices> {
        model
            .and_then(|m| self.catalog.get(m))
            .map(|s| crate::agents::Prices {
                input: s.price.input,
                output: s.price.output,
                cache_read: s.price.cache_read,
                cache_write: s.price.cache_write,
            })
    }

    /// One ready-to-run entry of an agent attempt's chain.
    #[allow(clippy::too_many_arguments)]
    fn candidate(
        &self,
        name: &str,
        config: &crate::agents::AdapterConfig,
        model: Option<String>,
        agent_context: &Value,
        prompt: &str,
        prompt_file: &Path,
        workdir: &Path,
        git_worktree: bool,
        budgeted: bool,
        mcp: &Mcp,
    ) -> Result<Candidate, CandidateError> {
        let spec = model.as_deref().and_then(|m| self.catalog.get(m));
        let model_id = model
            .as_ref()
            .map(|m| spec.and_then(|s| s.id.clone()).unwrap_or_else(|| m.clone()));
        let prices = self.prices(model.as_deref());
        // What this candidate reserves, at its own model's price (also its `--max-budget-usd`).
        let estimate = budget::estimated_usage(prices.as_ref(), prompt.chars().count());
        let reserve = budgeted.then(|| match (&prices, config.adapter.as_str()) {
            (None, adapter) if adapter != "command" => Err(unpriced(model.as_deref())),
            _ => Ok(estimate.cost_usd.unwrap_or(0.0)),
        });
        let request = crate::agents::Request {
            prompt: prompt.to_string(),
            prompt_file: prompt_file.to_path_buf(),
            model: model_id.clone(),
            workdir: workdir.to_path_buf(),
            max_budget_usd: reserve.clone().and_then(Result::ok),
            max_turns: None,
            git_worktree,
        };
        if let Some(protocol) = crate::agents::HttpProtocol::from_adapter(&config.adapter) {
            let mut endpoint = crate::agents::HttpEndpoint::from_config(protocol, config);
            if let Some(id) = model_id {
                endpoint.model = id;
            }
            let key: Vec<String> = endpoint.api_key_env.clone().into_iter().collect();
            return Ok(Candidate {
                agent: name.to_string(),
                secrets: self.secrets.with_values(crate::agents::secret_values(&key)),
                env_remove: Vec::new(),
                prices,
                estimate,
                reserve,
                model,
                runner: Runner::Http {
                    protocol,
                    endpoint,
                    request,
                },
            });
        }
        let adapter: Box<dyn crate::agents::CliAdapter> = if config.adapter == "command" {
            Box::new(
                crate::agents::command::CommandAdapter::new(config)
                    .with_context(agent_context.clone()),
            )
        } else {
            crate::agents::cli_adapter(&config.adapter, config).ok_or_else(|| {
                CandidateError::Unsupported {
                    name: name.to_string(),
                    adapter: config.adapter.clone(),
                }
            })?
        };
        let mut invocation = adapter.try_invocation(&request)?;
        let scope = mcp.scope(name);
        let attempt_dir = prompt_file.parent().unwrap_or(workdir);
        crate::agents::mcp::apply(&config.adapter, &scope, attempt_dir, &mut invocation);
        // A variable a server refers to (`${GITHUB_TOKEN}`) stays for the client to pass on.
        let keep = crate::agents::mcp::referenced_env(&scope);
        let mut env_remove = self.secrets.removals(Some(config));
        env_remove.retain(|name| !keep.iter().any(|k| k == name));
        Ok(Candidate {
            agent: name.to_string(),
            secrets: self
                .secrets
                .with_values(crate::agents::secrets(Some(adapter.as_ref()), config)),
            env_remove,
            prices,
            estimate,
            reserve,
            model,
            runner: Runner::Cli {
                adapter,
                invocation,
            },
        })
    }
}

/// The model of an agent phase on `name`: a budget downgrade (it is what `govern` judged),
/// else the phase's pinned model, else the route's when the agent accepts it, else the
/// agent's own. A route not applied says why in its recorded decision.
fn model_choice(
    decisions: &crate::policy::Decisions,
    agent: Option<&str>,
    model: Option<&str>,
    name: &str,
    config: &crate::agents::AdapterConfig,
) -> crate::policy::choice::Applied {
    let named = |d: &crate::policy::Decision| {
        d.result
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    };
    let downgrade = decisions
        .budget
        .iter()
        .rev()
        .find(|d| d.kind() == Some("downgrade"))
        .and_then(named);
    let route_model = decisions.route.as_ref().and_then(named);
    crate::policy::choice::apply(
        agent,
        model,
        downgrade.as_deref(),
        decisions.agent(),
        route_model.as_deref(),
        &crate::policy::choice::Offer {
            agent: Some(name),
            adapter: Some(&config.adapter),
            model: config.model.as_deref(),
            models: &config.models,
        },
    )
}

/// What decides an attempt's MCP servers and tools: `config.yaml`'s `mcp_servers` and
/// `mcp_tools`, the phase's role, and what a `govern` decision narrowed them to.
struct Mcp {
    servers: std::collections::BTreeMap<String, crate::config::mcp::McpServer>,
    tools: crate::config::mcp::McpTools,
    role: Option<String>,
    narrow: Option<Vec<String>>,
}

impl Mcp {
    /// The scope of an attempt on `agent`.
    fn scope(&self, agent: &str) -> crate::config::mcp::Scope {
        let scope = crate::config::mcp::Scope::resolve(
            &self.servers,
            &self.tools,
            self.role.as_deref(),
            agent,
        );
        match &self.narrow {
            Some(to) => scope.narrow(to),
            None => scope,
        }
    }
}

/// The knowledge a phase of `role` gets: its role's files, and for a `for_each` child the
/// learnings about the files its item owns (`item.owned_files`), within the role's budget
/// (`knowledge.budgets` in `config.yaml`, else the default).
fn knowledge(
    project_root: &Path,
    role: Option<&str>,
    context: &Value,
) -> crate::knowledge::Injected {
    let dot_dir = project_root.join(crate::project::DOT_DIR);
    let files: Vec<String> = context
        .get("item")
        .and_then(|i| i.get("owned_files"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // The budgets are per role: a phase without one reads no configuration.
    let budget = role.and_then(|r| {
        let (config, _) = crate::config::project::load(&dot_dir);
        config
            .knowledge
            .as_ref()
            .and_then(|k| k.budgets.get(r))
            .map(|b| *b as usize)
    });
    crate::knowledge::for_role(&dot_dir, role, &files, budget)
}

fn render_value(value: &Value, context: &Value) -> Result<Value, crate::expr::Error> {
    Ok(match value {
        Value::String(s) => Value::String(crate::prompt::render(s, context)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, context)?)))
                .collect::<Result<_, crate::expr::Error>>()?,
        ),
        other => other.clone(),
    })
}

/// Why an agent phase under a budget is refused when its model has no price.
#[derive(Clone, Debug, thiserror::Error)]
pub(super) enum Unpriced {
    #[error(
        "model `{0}` has no price in the model catalog, so the budget cannot reserve for it: add \
         it to `.spectacular/models.yaml` with `price: {{ input: …, output: … }}` (dollars per \
         million tokens)"
    )]
    Model(String),
    #[error(
        "the phase names no model, so the budget cannot reserve for it: set `model:` on the \
         phase or the agent to a model of the catalog (`models.yaml`)"
    )]
    NoModel,
}

fn unpriced(model: Option<&str>) -> Unpriced {
    match model {
        Some(m) => Unpriced::Model(m.to_string()),
        None => Unpriced::NoModel,
    }
}

/// Why an agent could not become a candidate of an attempt.
#[derive(Debug, thiserror::Error)]
pub(super) enum CandidateError {
    #[error("agent `{name}` uses adapter `{adapter}`, which this engine does not run")]
    Unsupported { name: String, adapter: String },
    #[error(transparent)]
    Agent(#[from] crate::agents::Error),
}
