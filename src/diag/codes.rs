//! The catalogue of diagnostic codes. Codes are stable: once published, a code keeps its
//! meaning forever (a retired code is never reused). The book's diagnostics reference is
//! generated from this table.

use std::fmt;

use serde::{Serialize, Serializer};

use super::Severity;

/// What one code means, for people.
#[derive(Debug)]
pub struct CodeInfo {
    pub code: Code,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    pub fix: &'static str,
}

macro_rules! codes {
    ($( $variant:ident = $text:literal, $name:literal, $sev:ident,
        summary: $summary:literal, fix: $fix:literal; )*) => {
        /// A stable diagnostic code such as `M2003`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant, )* }

        /// Every code, in catalogue order.
        pub static ALL_CODES: &[CodeInfo] = &[
            $( CodeInfo {
                code: Code::$variant,
                name: $name,
                severity: Severity::$sev,
                summary: $summary,
                fix: $fix,
            }, )*
        ];

        impl Code {
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }
        }
    };
}

codes! {
    YamlSyntax = "M1001", "yaml-syntax", Error,
        summary: "The file is not well-formed YAML.",
        fix: "Fix the YAML at the position shown; the message names what the parser expected.";
    NotUtf8 = "M1002", "not-utf8", Error,
        summary: "The file is not valid UTF-8 text.",
        fix: "Save the file as UTF-8; the location points at the first invalid byte.";
    EmptyDocument = "M1003", "empty-document", Error,
        summary: "The file holds no YAML document (it is empty or only has comments).",
        fix: "Start the mission with `mission: <id>` and a `phases:` map.";
    NotAMapping = "M1004", "not-a-mapping", Error,
        summary: "The document is a scalar or a list where a mapping of keys was expected.",
        fix: "A mission file is a mapping: `mission:`, `phases:` and the other top-level keys.";
    DuplicateKey = "M1005", "duplicate-key", Error,
        summary: "A key appears twice in the same mapping; YAML would silently keep only one.",
        fix: "Remove or rename one of the two keys (for phases, give each phase its own id).";
    TooLarge = "M1006", "too-large", Error,
        summary: "The file is larger than a mission file may be.",
        fix: "Split the mission or move long text into template files referenced by `prompt:`.";
    TooDeep = "M1007", "too-deep", Error,
        summary: "The document nests mappings and lists deeper than allowed.",
        fix: "Flatten the structure; missions never need that much nesting.";
    AliasExpansion = "M1008", "alias-expansion", Error,
        summary: "Anchors and aliases expand to more nodes than allowed (an alias bomb).",
        fix: "Use fewer nested aliases; write the repeated structure out or move it into `defaults:`.";
    MultipleDocuments = "M1009", "multiple-documents", Error,
        summary: "The file holds more than one YAML document (`---` separators).",
        fix: "Keep one mission per file.";
    UnknownKey = "M2001", "unknown-key", Error,
        summary: "A key that this place of the mission does not accept (often a typo).",
        fix: "Use the suggested key, or see the mission.yaml reference for the keys allowed here.";
    WrongType = "M2002", "wrong-type", Error,
        summary: "A value of the wrong type: a string where a list is expected, a list where a mapping is expected…",
        fix: "Write the value with the type named in the message.";
    UnknownNeed = "M2003", "unknown-need", Error,
        summary: "`needs` names a phase that does not exist.",
        fix: "Name an existing phase (see the suggestion) or add the missing phase.";
    MissingField = "M2004", "missing-field", Error,
        summary: "A required key is missing.",
        fix: "Add the key named in the message.";
    InvalidValue = "M2005", "invalid-value", Error,
        summary: "A value that is not one of the accepted choices (an input type, a built-in step, a workspace…).",
        fix: "Use one of the values listed in the help.";
    InvalidId = "M2006", "invalid-id", Error,
        summary: "A mission, phase or input id does not have the required form.",
        fix: "Mission ids are kebab-case (`release-notes`); phase ids use lowercase letters, digits, `-` and `_`; input and var names are snake_case.";
    PhaseWithoutKind = "M2007", "phase-without-kind", Error,
        summary: "A phase says nothing about what it does.",
        fix: "Give it exactly one kind: `role`/`agent`, `run`, `shell`, `uses` or `approval`.";
    PhaseWithSeveralKinds = "M2008", "phase-several-kinds", Error,
        summary: "A phase has more than one kind (for example both `run` and `uses`).",
        fix: "Keep one kind per phase; split the work into two phases joined by `needs`.";
    NeedsItself = "M2009", "needs-itself", Error,
        summary: "A phase lists itself in its own `needs`.",
        fix: "Remove the phase's own id from `needs`.";
    Cycle = "M2010", "cycle", Error,
        summary: "The `needs` of some phases form a cycle, so none of them could ever start.",
        fix: "Break the cycle shown; for deliberate rework loops use `on_failure: { goto: … }`.";
    InvalidDuration = "M2011", "invalid-duration", Error,
        summary: "A duration is not a humantime string such as `90s`, `30m` or `1h 30m`.",
        fix: "Write a number followed by a unit (`ms`, `s`, `m`, `h`, `d`); bare numbers are ambiguous and rejected.";
    OutOfRange = "M2012", "out-of-range", Error,
        summary: "A number is outside its allowed range (for example `max_attempts: 0` or a negative budget).",
        fix: "Use a value within the range given in the message.";
    UnknownGoto = "M2013", "unknown-goto", Error,
        summary: "`on_failure.goto` names a phase that does not exist.",
        fix: "Name an existing phase upstream of this one.";
    GotoNotUpstream = "M2014", "goto-not-upstream", Error,
        summary: "`on_failure.goto` names a phase that is not upstream of this one, so the loop could not re-run it.",
        fix: "Loop back to a phase this one (transitively) `needs`, or add the missing `needs`.";
    BadInputDefault = "M2015", "bad-input-default", Error,
        summary: "An input's `default` does not have the input's declared `type`.",
        fix: "Change the default or the declared type so that they agree.";
    KindMismatch = "M2016", "kind-mismatch", Error,
        summary: "A key that only applies to another kind of phase (for example `prompt` on a `run` phase).",
        fix: "Remove the key, or change the phase's kind.";
    IgnoredSetting = "M2017", "ignored-setting", Warning,
        summary: "A setting that has no effect where it is written (for example `max_parallel` without `for_each`).",
        fix: "Remove the setting or add what gives it meaning.";
    DuplicateNeed = "M2018", "duplicate-need", Warning,
        summary: "The same phase is listed twice in `needs`.",
        fix: "List each phase once.";
    RequiredWithDefault = "M2019", "required-with-default", Warning,
        summary: "An input is `required: true` and also has a `default`, so it is never really required.",
        fix: "Remove `required: true` or remove the default.";
    NoPhases = "M2020", "no-phases", Error,
        summary: "The mission's `phases` map is empty, so a run would do nothing.",
        fix: "Add at least one phase under `phases:`.";
    ExpressionSyntax = "M3001", "expression-syntax", Error,
        summary: "An `if` or `for_each` Rhai expression does not parse.",
        fix: "Fix the expression at the position shown; `if` takes a Rhai expression such as `run.complexity >= 0.3`.";
    TemplateSyntax = "M3002", "template-syntax", Error,
        summary: "A `{{ }}` template (inline or in a prompt file) does not parse.",
        fix: "Fix the template at the position shown (minijinja, a Jinja2 dialect).";
    TemplateMissing = "M3003", "template-missing", Error,
        summary: "A file the mission refers to (a prompt template or an output schema) does not exist.",
        fix: "Create the file or correct the path; paths are relative to the mission file's directory.";
    UndeclaredInput = "M3004", "undeclared-input", Error,
        summary: "A template uses `inputs.<name>` for an input the mission does not declare.",
        fix: "Declare the input under `inputs:` or correct its name.";
    UnknownTemplateVariable = "M3005", "unknown-template-variable", Error,
        summary: "A template uses a variable that never exists while a mission runs.",
        fix: "Templates see `inputs`, `vars`, `outputs`, `run`, `phase` and, in `for_each` phases, `item`.";
    InvalidOutputSchema = "M3006", "invalid-output-schema", Error,
        summary: "An output's `schema` file is not valid JSON or not a valid JSON Schema.",
        fix: "Fix the schema file; the message quotes the parser's complaint.";
    UndeclaredVar = "M3007", "undeclared-var", Error,
        summary: "A template uses `vars.<name>` for a var the mission does not declare.",
        fix: "Declare it under `vars:` or correct its name.";
    UnquotedShellValue = "M3008", "unquoted-shell-value", Warning,
        summary: "A `shell:` template puts recorded data (an output or a `for_each` item) into the script without quoting it.",
        fix: "Quote the value with the `q` filter, `{{ item.file | q }}`, so that it reaches the shell as one word whatever it holds; or use `run:`, which needs no shell.";
    ExpressionUndeclared = "M3009", "expression-undeclared", Error,
        summary: "An `if` or `for_each` expression reads `inputs.<name>` or `vars.<name>` that the mission does not declare.",
        fix: "Declare the input under `inputs:` (or the var under `vars:`), or correct the name; to test whether an optional value was given, declare it and compare it with its default.";
    UnknownOutput = "M3010", "unknown-output", Error,
        summary: "An expression or a template reads `outputs.<phase>.<name>` of a phase that does not exist or an output that phase does not declare.",
        fix: "Correct the phase or output name, or declare the output under the phase's `outputs:`; only declared outputs are recorded.";
    OutputNotUpstream = "M3011", "output-not-upstream", Warning,
        summary: "An expression or a template reads the outputs of a phase that is not upstream (not reachable through `needs`), so it may not have run yet.",
        fix: "Add the phase to `needs` (directly or through another phase); if the read is deliberate (a rework loop reading a later check's output), guard it with `\"phase\" in outputs`.";
    TemplateNotRendered = "M3012", "template-not-rendered", Warning,
        summary: "A field that is shown as written (such as `approval.reason` or a `description`) contains `{{ }}`, which is never rendered there.",
        fix: "Write the text plainly; templates are rendered only in `with`, `run`, `shell`, output paths and prompt files.";
    PolicySyntax = "M4001", "policy-syntax", Error,
        summary: "A policy pack's Rhai script does not compile.",
        fix: "Fix the script at the position shown; hooks are functions `fn route(ctx)`, `fn govern(ctx)` and `fn budget(ctx)`.";
    PackInvalid = "M4002", "pack-invalid", Error,
        summary: "A policy pack's `pack.yaml` has a missing, unknown or malformed key.",
        fix: "`pack.yaml` takes `name` (kebab-case), `version`, `description`, `hooks` (route, govern, budget), `params` and `scripts`; see `spectacular schema policy`.";
    HookNotDefined = "M4003", "hook-not-defined", Error,
        summary: "`pack.yaml` declares a hook that no script of the pack defines.",
        fix: "Define `fn <hook>(ctx)` in the pack's script, or remove the hook from `hooks`.";
    BadParamDefault = "M4004", "bad-param-default", Error,
        summary: "A pack parameter's `default` (or a test's override) does not have the parameter's declared `type`.",
        fix: "Change the value or the declared type (`string`, `number`, `bool` or `list`) so that they agree.";
    PolicyTestInvalid = "M4005", "policy-test-invalid", Error,
        summary: "A policy pack test case (`tests/*.yaml`) is malformed.",
        fix: "A case is `{name, hook, ctx, params, expect}`; `hook` is one the pack declares and `ctx` uses the routing context's keys.";
    SpecTooLarge = "S1001", "spec-too-large", Error,
        summary: "The spec is larger than a spec may be (4 MiB).",
        fix: "Split the spec into one spec per feature.";
    SpecNotUtf8 = "S1002", "spec-not-utf8", Error,
        summary: "The spec is not valid UTF-8 text.",
        fix: "Save the spec as UTF-8; the location points at the first invalid byte.";
    SpecEmpty = "S1003", "spec-empty", Error,
        summary: "The spec holds no text.",
        fix: "Write the spec: at least the requirements and how to check them.";
    LineTooLong = "S1004", "line-too-long", Warning,
        summary: "A line of the spec is longer than 16 KiB; only its beginning is analysed.",
        fix: "Break the line; a generated or pasted blob belongs in a file the spec links to.";
    NoAcceptanceCriteria = "S2001", "no-acceptance-criteria", Warning,
        summary: "The spec has requirements but no acceptance criteria, success criteria or scenarios, so nothing says when it is done.",
        fix: "Add an `Acceptance Criteria` section (checkboxes), `SC-###` success criteria or Given/When/Then scenarios.";
    DuplicateRequirementId = "S2002", "duplicate-requirement-id", Error,
        summary: "Two requirements or criteria have the same id, so a plan cannot say which one it covers.",
        fix: "Give each requirement and criterion its own id.";
    UncoveredRequirement = "S2003", "uncovered-requirement", Warning,
        summary: "No acceptance criterion, success criterion or scenario covers this requirement.",
        fix: "Add a criterion that names the requirement's id or checks what it states.";
    VagueTerm = "S2004", "vague-term", Warning,
        summary: "A requirement or criterion uses a term that cannot be checked (\"fast\", \"user-friendly\", \"etc.\", \"as needed\"…).",
        fix: "Quantify it: a number with a unit, a list of cases, or the condition that decides.";
    NeedsClarification = "S2005", "needs-clarification", Warning,
        summary: "A `[NEEDS CLARIFICATION: …]` marker or an open question: the spec leaves a decision to the implementer.",
        fix: "Answer the question in the spec (Spec Kit keeps answers in a `## Clarifications` section) and remove the marker.";
    NoRequirements = "S2006", "no-requirements", Warning,
        summary: "Nothing in the spec reads as a requirement: no requirement list, no task list, no sentence with `must` or `shall`.",
        fix: "List the requirements under a `## Requirements` heading, one per bullet.";
    UnfilledTemplate = "S2007", "unfilled-template", Error,
        summary: "The spec is a template whose placeholders (`[FEATURE NAME]`, `[specific capability]`…) were never filled in.",
        fix: "Write the feature's own title, requirements and criteria in place of the bracketed placeholders (Spec Kit's `/specify` does this), then analyse it again.";
    BadAnalysisConfig = "S3001", "bad-analysis-config", Error,
        summary: "The `analysis:` key of `.spectacular/config.yaml` has an unknown key or a value of the wrong type or range.",
        fix: "`analysis:` takes `weights` (scope, dependencies, ambiguity, technical_risk, integration: numbers ≥ 0), `tiers` (medium, complex, critical: increasing numbers in 0..1) and `max_files` (a positive integer).";
}

impl Code {
    pub fn info(self) -> &'static CodeInfo {
        // The macro lists the variants and the catalogue in the same order.
        &ALL_CODES[self as usize]
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
