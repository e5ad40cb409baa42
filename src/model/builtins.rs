//! The catalogue of built-in steps (`uses: builtin/<name>`). Validation accepts exactly these;
//! the executor implements each.

/// (name, what it does). Names are used as `uses: builtin/<name>`.
pub const BUILTIN_STEPS: &[(&str, &str)] = &[
    (
        "noop",
        "does nothing and succeeds; a join point or a placeholder",
    ),
    ("echo", "prints `with.message` (rendered) to its stdout log"),
    (
        "fail",
        "fails with `with.message`; for testing failure paths",
    ),
    (
        "sleep",
        "waits `with.duration` (a humantime duration); for testing timeouts",
    ),
    (
        "write",
        "writes `with.content` (rendered) to the output file `with.path`",
    ),
    (
        "analyse-spec",
        "analyses a Markdown spec (structure, diagnostics, complexity, questions) into `analysis.json`",
    ),
    (
        "clarify",
        "asks the spec's questions when it is too ambiguous (the run waits for `spectacular answer`), writes the answers into its `## Clarifications` section and analyses it again into `analysis.json`",
    ),
    (
        "merge",
        "merges the branches of `with.work` (a `workspace: worktree` phase) into the run's integration branch, in dependency order",
    ),
    (
        "check",
        "runs the project's checks (`with.command`, in `with.workdir`) and parses their errors into `errors.json` and `summary.md`; a failing command fails the attempt as `checks`, one that cannot run as `unavailable`; one that ran no tests is reported as such",
    ),
    (
        "learn",
        "writes what failed and what fixed it into `.spectacular/learnings/` (ignored by git)",
    ),
    (
        "report",
        "writes `report.md` and `report.json` from the run's events: spec, plan, work packages, checks, cost, decisions, timeline",
    ),
];

/// The outputs a built-in step records without declaring them (`outputs.<phase>.<name>`).
pub fn implicit_outputs(uses: &str) -> &'static [&'static str] {
    match uses {
        // The integration branch, its head, its worktree (relative to the project root) and
        // the work packages merged.
        "builtin/merge" => &["branch", "head", "worktree", "merged"],
        _ => &[],
    }
}

/// The step name of `builtin/<name>`, if `uses` names a known built-in.
pub fn builtin_step(uses: &str) -> Option<&'static str> {
    let name = uses.strip_prefix("builtin/")?;
    BUILTIN_STEPS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, _)| *n)
}
