//! Policy packs: the built-in packs' own tests, the sandbox's limits, the combination rules
//! of DESIGN §6, the `policy` commands (goldens under `tests/fixtures/cli/policy-*.txt`) and
//! the committed `pack.yaml` schema.

use std::path::{Path, PathBuf};

use serde_json::json;
use spectacular::policy::{
    GovernOutcome, Hook, Layer, ModelInfo, PackFiles, Packs, PhaseContext, RoutingContext,
    RunContext,
};
use spectacular::record::{EventData, RunLog, Store};

use crate::support::{assert_goldens, golden, repo_root, run_cli};

/// Write a pack directory `<root>/<name>/` with a manifest and a script.
fn write_pack(root: &Path, name: &str, manifest_rest: &str, script: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("tests")).expect("create pack dir");
    std::fs::write(
        dir.join("pack.yaml"),
        format!("name: {name}\nversion: \"1.0.0\"\n{manifest_rest}"),
    )
    .expect("write pack.yaml");
    std::fs::write(dir.join("policy.rhai"), script).expect("write policy.rhai");
    dir
}

/// Load packs from (layer, dir) pairs; panics on diagnostics.
fn load(packs: &[(Layer, &Path)], enabled: &[&str]) -> Packs {
    let sources = packs
        .iter()
        .map(|(layer, dir)| (*layer, PackFiles::dir(dir, dir.parent().unwrap())))
        .collect();
    let enabled: Vec<String> = enabled.iter().map(|s| s.to_string()).collect();
    let (packs, diagnostics) = Packs::from_sources(sources, &enabled);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    packs
}

fn models() -> Vec<ModelInfo> {
    let m = |name: &str, tier: &str, i: f64, o: f64| ModelInfo {
        name: name.into(),
        provider: "anthropic".into(),
        tier: tier.into(),
        input_per_mtok: i,
        output_per_mtok: o,
        context_window: 200_000,
    };
    vec![
        m("claude-haiku-4-5", "cheap", 1.0, 5.0),
        m("claude-sonnet-4-5", "standard", 3.0, 15.0),
        m("claude-opus-4-1", "strong", 15.0, 75.0),
    ]
}

/// A planner phase of a complex run that has spent 92 % of its cap.
fn planning_ctx() -> RoutingContext {
    RoutingContext {
        phase: PhaseContext {
            id: "plan".into(),
            role: Some("planner".into()),
            kind: "agent".into(),
            attempt: 1,
            prompt_chars: 24_000,
            paths: vec!["plan.md".into()],
            ..PhaseContext::default()
        },
        run: RunContext {
            mission: "software-dev".into(),
            complexity: Some(0.82),
            tier: Some("high".into()),
            spent_usd: 18.4,
            budget_usd: Some(20.0),
            soft_usd: Some(15.0),
            ..RunContext::default()
        },
        agents: vec!["claude-code".into()],
        models: models(),
    }
    .normalized()
}

#[test]
fn builtin_packs_load_clean_and_pass_their_tests() {
    let (packs, diagnostics) = Packs::builtin();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let names: Vec<String> = packs.list().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "approved-models",
            "budget-guard",
            "default-routing",
            "owned-files",
            "security-review"
        ]
    );
    let (reports, diagnostics) = packs.test(None);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    for report in &reports {
        assert!(
            report.cases.len() >= 3,
            "{} has {} cases",
            report.pack,
            report.cases.len()
        );
        for case in &report.cases {
            assert!(
                case.passed,
                "{} › {}: {:?} (actual {})",
                report.pack, case.name, case.diff, case.actual
            );
        }
    }
}

/// The one check of the sandbox family: a govern hook running `body` fails closed with an
/// error that names one of `limits`.
fn check_limit(body: &str, limits: &[&str]) {
    let temp = tempfile::tempdir().expect("temp dir");
    let script = format!("fn govern(ctx) {{\n{body}\n}}\n");
    let dir = write_pack(temp.path(), "hostile", "hooks: [govern]\n", &script);
    let packs = load(&[(Layer::Project, &dir)], &[]);
    let decisions = packs.decide(&RoutingContext::default());
    let decision = &decisions.all[0];
    assert!(decision.is_error(), "{decision:?}");
    let error = decision.result["error"].as_str().unwrap_or_default();
    let limit = limits.iter().find(|l| error.contains(*l));
    assert!(limit.is_some(), "expected one of {limits:?} in `{error}`");
    match &decisions.govern {
        GovernOutcome::Deny { reason, pack } => {
            assert_eq!(pack, "hostile");
            assert!(
                reason.contains("failed in `govern`") && reason.contains(error),
                "{reason}"
            );
        }
        other => panic!("a failing hook must deny, got {other:?}"),
    }
}

#[test]
fn an_infinite_loop_hits_the_operation_limit() {
    // Whichever comes first stops it: a slow (debug) build may reach the clock before the
    // operation count. Both name their limit.
    check_limit(
        "let x = 0;\nloop { x += 1; }",
        &["operation limit exceeded", "wall-clock limit exceeded"],
    );
}

#[test]
fn deep_recursion_hits_the_call_depth_limit() {
    let temp = tempfile::tempdir().expect("temp dir");
    let script = "fn down(n) { down(n + 1) }\nfn govern(ctx) { down(0) }\n";
    let dir = write_pack(temp.path(), "deep", "hooks: [govern]\n", script);
    let packs = load(&[(Layer::Project, &dir)], &[]);
    let decisions = packs.decide(&RoutingContext::default());
    let error = decisions.all[0].result["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("call depth limit exceeded"), "{error}");
}

#[test]
fn a_huge_string_hits_the_size_limit() {
    check_limit(
        "let s = \"spectacular\";\nloop { s += s; }",
        &["size limit exceeded"],
    );
}

#[test]
fn a_huge_array_hits_the_size_limit() {
    check_limit("let a = [1];\nloop { a += a; }", &["size limit exceeded"]);
}

#[test]
fn nested_closures_called_from_native_functions_are_counted() {
    // Rhai loses the operations of closures called from `all`, `map`, `filter`…; counted
    // anyway, this ends in a clear deny instead of running for minutes.
    check_limit(
        "let a = []; a.pad(100000, 0); let b = a;\nif a.all(|i| b.all(|j| true)) { allow() } else { deny(\"no\") }",
        &["operation limit exceeded", "wall-clock limit exceeded"],
    );
}

#[test]
fn a_replace_past_the_string_limit_is_refused_before_it_allocates() {
    check_limit(
        "let s = \"\"; s.pad(1000000, \"a\"); let t = s;\nt.replace(\"a\", s);\nallow()",
        &["size limit exceeded"],
    );
}

#[test]
fn hooks_cannot_read_the_clock() {
    check_limit("let t = timestamp();\nallow()", &["timestamp"]);
}

#[test]
fn the_wall_clock_guard_stops_a_slow_hook() {
    use spectacular::policy::sandbox;
    let engine = sandbox::policy_engine();
    let ast = engine
        .compile("fn spin() { let x = 0; loop { x += 1; } }")
        .expect("compiles");
    let error = sandbox::guarded_for(std::time::Duration::ZERO, || {
        engine.call_fn::<rhai::Dynamic>(&mut rhai::Scope::new(), &ast, "spin", ())
    })
    .expect_err("the guard stops it");
    assert_eq!(sandbox::limit_kind(&error), Some("wall-clock"));
    assert!(
        sandbox::describe_error(&error).contains("wall-clock limit exceeded"),
        "{}",
        sandbox::describe_error(&error)
    );
}

#[test]
fn eval_and_modules_are_not_available() {
    for (script, what) in [
        ("fn govern(ctx) { eval(\"allow()\") }\n", "eval"),
        (
            "import \"fs\" as fs;\nfn govern(ctx) { allow() }\n",
            "import",
        ),
    ] {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = write_pack(temp.path(), "sneaky", "hooks: [govern]\n", script);
        let (_, diagnostics) = Packs::from_sources(
            vec![(Layer::Project, PackFiles::dir(&dir, temp.path()))],
            &[],
        );
        let codes: Vec<&str> = diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["M4001"], "{what}: {diagnostics:?}");
    }
}

#[test]
fn a_hook_cannot_change_what_the_next_one_sees() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path();
    // `a-tamper` runs first (same layer, name order) and tries to rewrite the context.
    let tamper = write_pack(
        root,
        "a-tamper",
        "hooks: [govern]\n",
        "fn govern(ctx) { ctx.run.spent_usd = 0.0; ctx.phase.id = \"x\"; ctx.models.clear(); allow() }\n",
    );
    let observe = write_pack(
        root,
        "b-observe",
        "hooks: [govern]\n",
        "fn govern(ctx) { allow(`${ctx.phase.id} ${ctx.run.spent_usd} ${ctx.models.len()}`) }\n",
    );
    let model_writer = write_pack(
        root,
        "c-model-writer",
        "hooks: [govern]\n",
        "fn govern(ctx) { ctx.models[0].tier = \"cheap\"; allow() }\n",
    );
    let packs = load(
        &[
            (Layer::Project, &tamper),
            (Layer::Project, &observe),
            (Layer::Project, &model_writer),
        ],
        &[],
    );
    let decisions = packs.decide(&planning_ctx());
    assert_eq!(decisions.all[1].reason.as_deref(), Some("plan 18.4 3"));
    // Models are read-only: writing one is an error, which fails closed.
    assert!(decisions.all[2].is_error(), "{:?}", decisions.all[2]);
    assert!(
        matches!(decisions.govern, GovernOutcome::Deny { ref pack, .. } if pack == "c-model-writer")
    );
}

#[test]
fn results_of_the_wrong_shape_fail_closed() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = write_pack(
        temp.path(),
        "sloppy",
        "hooks: [govern]\n",
        "fn govern(ctx) { \"yes\" }\n",
    );
    let packs = load(&[(Layer::Project, &dir)], &[]);
    let decisions = packs.decide(&RoutingContext::default());
    assert!(decisions.all[0].is_error());
    assert!(matches!(decisions.govern, GovernOutcome::Deny { .. }));
}

#[test]
fn the_highest_layer_that_answers_routes() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path();
    let route = |model: &str| {
        format!("fn route(ctx) {{ route(\"claude-code\", \"{model}\", \"because\") }}\n")
    };
    let user = write_pack(
        &root.join("user"),
        "team-routing",
        "hooks: [route]\n",
        &route("user-model"),
    );
    let project = write_pack(
        &root.join("project"),
        "repo-routing",
        "hooks: [route]\n",
        &route("project-model"),
    );
    let project_b = write_pack(
        &root.join("project"),
        "another-routing",
        "hooks: [route]\n",
        &route("project-b-model"),
    );
    let mission = write_pack(
        &root.join("mission"),
        "mission-routing",
        "hooks: [route]\n",
        "fn route(ctx) { if ctx.phase.id == \"special\" { route(\"codex\", \"special-model\", \"special\") } else { () } }\n",
    );
    let packs = load(
        &[
            (Layer::User, &user),
            (Layer::Project, &project),
            (Layer::Project, &project_b),
            (Layer::Mission, &mission),
        ],
        &[],
    );
    // The mission layer abstains: the project layer wins, and there the first name.
    let decisions = packs.decide(&planning_ctx());
    assert_eq!(decisions.model(), Some("project-b-model"));
    assert_eq!(decisions.all.len(), 4);
    assert!(decisions
        .all
        .iter()
        .any(|d| d.abstained() && d.pack == "mission-routing"));
    // The mission layer answers: it wins.
    let mut ctx = planning_ctx();
    ctx.phase.id = "special".into();
    let decisions = packs.decide(&ctx);
    assert_eq!(decisions.agent(), Some("codex"));
    assert_eq!(decisions.model(), Some("special-model"));
    assert_eq!(
        decisions.route.as_ref().map(|d| d.layer),
        Some(Layer::Mission)
    );
}

#[test]
fn any_deny_wins_then_approval_then_allow() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path();
    let govern = |body: &str| format!("fn govern(ctx) {{ {body} }}\n");
    let allow = write_pack(
        &root.join("a"),
        "allowing",
        "hooks: [govern]\n",
        &govern("allow(\"fine\")"),
    );
    let approve = write_pack(
        &root.join("b"),
        "cautious",
        "hooks: [govern]\n",
        &govern("require_approval(\"a human should look\")"),
    );
    let deny = write_pack(
        &root.join("c"),
        "strict",
        "hooks: [govern]\n",
        &govern("if ctx.phase.id == \"plan\" { deny(\"no planning today\") } else { () }"),
    );
    let packs = load(
        &[
            (Layer::Project, &allow),
            (Layer::User, &approve),
            (Layer::Builtin, &deny),
        ],
        &[],
    );
    let decisions = packs.decide(&planning_ctx());
    assert_eq!(
        decisions.govern,
        GovernOutcome::Deny {
            reason: "no planning today".into(),
            pack: "strict".into()
        }
    );
    let mut ctx = planning_ctx();
    ctx.phase.id = "implement".into();
    assert_eq!(
        packs.decide(&ctx).govern,
        GovernOutcome::RequireApproval {
            reason: "a human should look".into(),
            pack: "cautious".into()
        }
    );
    let packs = load(&[(Layer::Project, &allow)], &[]);
    assert_eq!(packs.decide(&ctx).govern, GovernOutcome::Allow);
}

#[test]
fn higher_layers_shadow_and_opt_in_packs_need_enabling() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path();
    let user = write_pack(
        &root.join("user"),
        "gate",
        "hooks: [govern]\n",
        "fn govern(ctx) { deny(\"user gate\") }\n",
    );
    let project = write_pack(
        &root.join("project"),
        "gate",
        "hooks: [govern]\n",
        "fn govern(ctx) { allow(\"project gate\") }\n",
    );
    let opt_in = write_pack(
        &root.join("project"),
        "optional",
        "hooks: [govern]\nenabled_by_default: false\n",
        "fn govern(ctx) { require_approval(\"opted in\") }\n",
    );
    let sources = [
        (Layer::User, user.as_path()),
        (Layer::Project, &project),
        (Layer::Project, &opt_in),
    ];
    let packs = load(&sources, &[]);
    let listed = packs.list();
    let user_gate = listed
        .iter()
        .find(|p| p.layer == Layer::User)
        .expect("listed");
    assert!(user_gate.shadowed && !user_gate.active);
    assert!(
        !listed
            .iter()
            .find(|p| p.name == "optional")
            .expect("listed")
            .active
    );
    assert_eq!(packs.decide(&planning_ctx()).govern, GovernOutcome::Allow);
    let packs = load(&sources, &["optional"]);
    assert!(matches!(
        packs.decide(&planning_ctx()).govern,
        GovernOutcome::RequireApproval { .. }
    ));
}

#[test]
fn builtin_packs_route_budget_and_govern_together() {
    let (mut packs, diagnostics) = Packs::builtin();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let decisions = packs.decide(&planning_ctx());
    // Planning a complex spec wants the strong model; past 90 % of the cap it is downgraded.
    assert_eq!(
        decisions
            .route
            .as_ref()
            .and_then(|d| d.result["model"].as_str()),
        Some("claude-opus-4-1")
    );
    assert_eq!(decisions.model(), Some("claude-sonnet-4-5"));
    assert_eq!(decisions.agent(), Some("claude-code"));
    assert_eq!(decisions.govern, GovernOutcome::Allow);
    let hooks: Vec<(&str, Hook)> = decisions
        .all
        .iter()
        .map(|d| (d.pack.as_str(), d.hook))
        .collect();
    assert_eq!(
        hooks,
        [
            ("default-routing", Hook::Route),
            ("budget-guard", Hook::Budget),
            ("approved-models", Hook::Govern),
            ("owned-files", Hook::Govern),
            ("security-review", Hook::Govern),
        ]
    );

    // Governance sees the downgraded model.
    let allow_list = json!({"models": ["claude-haiku-4-5"]});
    packs
        .set_params("approved-models", allow_list.as_object().unwrap())
        .expect("params fit");
    let decisions = packs.decide(&planning_ctx());
    match &decisions.govern {
        GovernOutcome::Deny { reason, pack } => {
            assert_eq!(pack, "approved-models");
            assert!(reason.contains("claude-sonnet-4-5"), "{reason}");
        }
        other => panic!("expected a deny, got {other:?}"),
    }
    assert!(packs
        .set_params(
            "approved-models",
            json!({"models": "opus"}).as_object().unwrap()
        )
        .is_err());

    // Every decision becomes a `policy.decided` event with a digest of its input.
    let events = decisions.events("plan");
    assert_eq!(events.len(), decisions.all.len());
    for event in &events {
        let EventData::PolicyDecided(d) = event else {
            panic!("{event:?}")
        };
        assert_eq!(d.phase, "plan");
        assert!(d.input_digest.starts_with("sha256:") && d.input_digest.len() == 71);
    }
    // The same input gives the same digests (decisions are reproducible facts).
    assert_eq!(packs.decide(&planning_ctx()).events("plan"), events);
}

/// After an attempt, only `govern` is asked: with what the attempt changed and the route it
/// ran on, not a new route.
#[test]
fn govern_is_asked_again_about_the_files_an_attempt_changed() {
    let (mut packs, diagnostics) = Packs::builtin();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut ctx = planning_ctx();
    ctx.phase.changes = Some(spectacular::policy::Changes {
        files: vec!["src/a.rs".into(), "src/b.rs".into(), "Cargo.lock".into()],
        outside_owned: vec!["src/b.rs".into(), "Cargo.lock".into()],
    });
    let decisions = packs.govern_changes(&ctx, Some("claude-code"), Some("claude-sonnet-4-5"));
    assert!(decisions.all.iter().all(|d| d.hook == Hook::Govern));
    assert_eq!(decisions.route, None);
    match &decisions.govern {
        GovernOutcome::Deny { reason, pack } => {
            assert_eq!(pack, "owned-files");
            assert!(
                reason.ends_with("outside its owned_files: src/b.rs"),
                "{reason}"
            );
        }
        other => panic!("expected a deny, got {other:?}"),
    }
    // The recorded context is the one the hooks saw, changes included.
    let events = decisions.events("implement[wp-1]");
    let EventData::PolicyDecided(first) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(
        first.context.as_ref().unwrap()["phase"]["changes"]["outside_owned"],
        json!(["src/b.rs", "Cargo.lock"])
    );
    // `ctx.route` is the route the attempt ran on.
    packs
        .set_params(
            "approved-models",
            json!({"models": ["claude-haiku-4-5"]}).as_object().unwrap(),
        )
        .expect("params fit");
    packs
        .set_params(
            "owned-files",
            json!({"allow": ["src/", "Cargo.lock"]})
                .as_object()
                .unwrap(),
        )
        .expect("params fit");
    let decisions = packs.govern_changes(&ctx, Some("claude-code"), Some("claude-sonnet-4-5"));
    match &decisions.govern {
        GovernOutcome::Deny { pack, .. } => assert_eq!(pack, "approved-models"),
        other => panic!("expected a deny, got {other:?}"),
    }
    let decisions = packs.govern_changes(&ctx, Some("claude-code"), Some("claude-haiku-4-5"));
    assert_eq!(decisions.govern, GovernOutcome::Allow);
}

#[test]
fn committed_policy_schema_is_current_and_fits_the_builtin_packs() {
    let committed = crate::support::assert_committed_schema("policy", "policy.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&committed).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    for name in [
        "approved-models",
        "budget-guard",
        "default-routing",
        "owned-files",
        "security-review",
    ] {
        let path = repo_root().join("policies").join(name).join("pack.yaml");
        let text = std::fs::read_to_string(&path).expect("pack.yaml");
        let parsed = spectacular::load::yaml::parse(&text, "pack.yaml");
        let value = parsed.root.expect("parses").to_json();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

const RUN: &str = "01JDQ3ZK6V8X4M2N5P7R9T1W3Y";

/// A store with one run whose log holds the built-in packs' decisions for two phases.
fn store_with_decisions(dir: &Path) {
    let store = Store {
        dir: dir.join(".spectacular"),
    };
    let mut log = RunLog::create(&store, RUN).expect("create the run log");
    let (packs, _) = Packs::builtin();
    let mut ctx = planning_ctx();
    for (phase, role) in [("plan", "planner"), ("implement[wp-1]", "executor")] {
        ctx.phase.id = phase.into();
        ctx.phase.role = Some(role.into());
        ctx.phase.paths = vec![format!(
            "src/{}.rs",
            if role == "executor" { "auth" } else { "plan" }
        )];
        log.append(
            EventData::PhaseReady(spectacular::record::event::PhaseRef {
                phase: phase.into(),
            }),
            "engine",
            None,
        );
        for event in packs.decide(&ctx).events(phase) {
            log.append(event, "engine", None);
        }
    }
    log.commit().expect("commit");
}

#[test]
fn policy_command_goldens() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let mut failures = Vec::new();
    let mut check = |name: &str, cwd: &Path, args: &[&str], code: i32| {
        let output = run_cli(cwd, args, &[]);
        if output.code != code {
            failures.push(format!(
                "`spectacular {}` exited {} instead of {code}\n{}",
                args.join(" "),
                output.code,
                output.transcript()
            ));
        }
        let transcript = format!("$ spectacular {}\n{}", args.join(" "), output.transcript());
        if let Err(e) = golden(
            &Path::new("tests/fixtures/cli").join(format!("{name}.txt")),
            &transcript,
        ) {
            failures.push(e);
        }
        output
    };
    check("policy-list", dir, &["policy", "list"], 0);
    // JSON output carries digests and timestamps: asserted, not kept as goldens.
    let json = run_cli(dir, &["policy", "list", "--json"], &[]);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(parsed.as_array().map(Vec::len), Some(5));
    check("policy-test", dir, &["policy", "test"], 0);
    check(
        "policy-test-one",
        dir,
        &["policy", "test", "budget-guard"],
        0,
    );
    check(
        "policy-test-unknown",
        dir,
        &["policy", "test", "budget-gaurd"],
        2,
    );

    // A project pack with a failing case, then with a broken script.
    let packs = dir.join(".spectacular/policies");
    let pack = write_pack(
        &packs,
        "cost-routing",
        "description: Everything goes to the cheap model.\nhooks: [route]\n",
        "fn route(ctx) {\n    route(\"claude-code\", \"claude-haiku-4-5\", \"cheap is enough\")\n}\n",
    );
    std::fs::write(
        pack.join("tests/cases.yaml"),
        "- name: analysis is cheap\n  hook: route\n  ctx:\n    phase: { id: analyse, role: analyst, kind: agent }\n  expect: { model: claude-haiku-4-5 }\n\
         - name: planning is strong\n  hook: route\n  ctx:\n    phase: { id: plan, role: planner, kind: agent }\n  expect: { agent: claude-code, model: claude-opus-4-1 }\n",
    )
    .expect("write cases");
    check("policy-list-project", dir, &["policy", "list"], 0);
    check(
        "policy-test-failing",
        dir,
        &["policy", "test", "cost-routing"],
        1,
    );
    check(
        "policy-test-dir",
        dir,
        &["policy", "test", ".spectacular/policies/cost-routing"],
        1,
    );
    std::fs::write(
        pack.join("policy.rhai"),
        "fn route(ctx) {\n    route(\"claude-code\", \"claude-haiku-4-5\" \"cheap is enough\")\n}\n",
    )
    .expect("break the script");
    check(
        "policy-test-broken",
        dir,
        &["policy", "test", "cost-routing"],
        65,
    );
    std::fs::remove_dir_all(&packs).expect("remove project packs");

    // With a mission: its own packs (the mission layer) and the packs it enables.
    let docs = dir.join("docs");
    write_pack(
        &docs.join("policies"),
        "docs-writers",
        "description: Writers get the cheapest model.\nhooks: [route]\n",
        "fn route(ctx) {\n    route(\"\", \"claude-haiku-4-5\", \"writers are cheap\")\n}\n",
    );
    std::fs::write(
        docs.join("policies/docs-writers/tests/cases.yaml"),
        "name: a writer is cheap\nhook: route\nctx:\n  phase: { id: write, kind: agent }\nexpect: { model: claude-haiku-4-5 }\n",
    )
    .expect("write cases");
    std::fs::write(
        docs.join("mission.yaml"),
        "mission: docs\npolicies: [approved-models]\nphases:\n  write: { run: [\"true\"] }\n",
    )
    .expect("write the mission");
    check(
        "policy-list-mission",
        dir,
        &["policy", "list", "--mission", "docs/mission.yaml"],
        0,
    );
    check(
        "policy-test-mission",
        dir,
        &[
            "policy",
            "test",
            "docs-writers",
            "--mission",
            "docs/mission.yaml",
        ],
        0,
    );
    std::fs::write(
        docs.join("mission.yaml"),
        "mission: docs\nphases: {}\npolicies: [aproved-models]\n",
    )
    .expect("break the mission");
    check(
        "policy-list-mission-invalid",
        dir,
        &["policy", "list", "--mission", "docs/mission.yaml"],
        65,
    );

    // The decision trail of a run.
    store_with_decisions(dir);
    check("policy-explain", dir, &["policy", "explain", "last"], 0);
    check(
        "policy-explain-phase",
        dir,
        &["policy", "explain", RUN, "implement"],
        0,
    );
    let json = run_cli(dir, &["policy", "explain", "last", "plan", "--json"], &[]);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let items = parsed.as_array().expect("a list");
    assert_eq!(items.len(), 5);
    for item in items {
        assert_eq!(item["phase"], "plan");
        assert!(item["input_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")));
        assert!(item["seq"].is_u64() && item["ts"].is_string() && item["version"] == "1.0.0");
    }
    assert_eq!(items[1]["result"]["decision"], "downgrade");
    assert_goldens(failures);
}

/// A planner phase routed by the built-in packs to a `command` agent (a script) that reports
/// its own cost, with `approved-models` allowing one model only: the script gets no model, is
/// charged what it reported, and is not denied as a model it never was.
#[test]
fn a_command_agent_is_not_routed_a_model_nor_billed_as_one() {
    use crate::runtime::{code, text, write_agents, Project};

    let p = Project::new(
        "mission: scripted\npolicies: [{approved-models: {models: [claude-sonnet]}}]\nphases:\n  plan:\n    role: planner\n    prompt: inline.md\n",
    );
    std::fs::write(p.path().join("inline.md"), "Plan something.\n").unwrap();
    // 1,000 input and 500 output tokens, which any catalogue model would price above zero,
    // and a reported cost of its own.
    write_agents(
        &p,
        &["  script:\n    adapter: command\n    roles: [planner]\n    stdin: false\n    argv: [sh, -c, 'echo \"{\\\"in\\\": 1000, \\\"out\\\": 500, \\\"cost\\\": 0.0125}\"']\n    output: { format: json, input_tokens: /in, output_tokens: /out, cost_usd: /cost }\n".to_string()],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    let log = std::fs::read_to_string(
        p.path()
            .join(".spectacular/runs")
            .join(p.run_id())
            .join("events.jsonl"),
    )
    .unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| &e["data"])
            .collect()
    };
    for decision in of("policy.decided") {
        assert!(
            decision["result"].get("model").is_none_or(|m| m.is_null()),
            "no model is routed to a command agent: {decision}"
        );
        assert_ne!(decision["result"]["decision"], "deny", "{decision}");
    }
    let succeeded = of("attempt.succeeded");
    assert_eq!(succeeded.len(), 1, "{log}");
    let usage = &succeeded[0]["usage"];
    assert!(
        usage.get("model").is_none_or(|m| m.is_null()),
        "no model is recorded: {usage}"
    );
    assert_eq!(usage["cost_usd"], json!(0.0125), "{usage}");
    assert_eq!(usage["input_tokens"], json!(1000), "{usage}");
}

/// A command agent that declares the models it accepts is offered them for routing: the route's
/// model reaches the command (`{{ model }}`, `SPECTACULAR_MODEL`) and the attempt is priced as
/// that model. A route to a model the agent does not accept is not applied, and `policy
/// explain` says so and why instead of showing it as the route taken.
#[test]
fn a_command_agent_runs_the_routed_model_it_accepts_and_explain_shows_a_route_not_applied() {
    use crate::runtime::{code, text, write_agents, Project};

    let project = |models: &str| {
        let p = Project::new(
            "mission: scripted\npolicies: [to-haiku]\nphases:\n  plan:\n    role: planner\n    prompt: inline.md\n    outputs:\n      seen: { path: seen.txt }\n",
        );
        std::fs::write(p.path().join("inline.md"), "Plan something.\n").unwrap();
        write_pack(
            &p.path().join(".spectacular/policies"),
            "to-haiku",
            "hooks: [route]\n",
            "fn route(ctx) {\n    route(\"\", \"claude-haiku\", \"cheap is enough\")\n}\n",
        );
        write_agents(
            &p,
            &[format!("  script:\n    adapter: command\n    roles: [planner]\n    model: claude-sonnet\n{models}    stdin: false\n    argv: [sh, -c, 'echo \"{{{{ model }}}} $SPECTACULAR_MODEL\" > \"$SPECTACULAR_OUTPUT_DIR/seen.txt\"; echo \"{{\\\"in\\\": 1000, \\\"out\\\": 500}}\"']\n    output: {{ format: json, input_tokens: /in, output_tokens: /out }}\n")],
        );
        let out = p.run(&["run", "mission.yaml"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        p
    };
    let succeeded = |p: &Project| {
        p.events()
            .into_iter()
            .find_map(|e| match e.data {
                spectacular::record::EventData::AttemptSucceeded(s) => Some(s),
                _ => None,
            })
            .expect("the attempt succeeded")
    };

    // Accepted: the command is told the model, and the attempt costs what that model costs.
    let accepts = project("    models: [claude-haiku]\n");
    let done = succeeded(&accepts);
    assert_eq!(
        done.values["seen"],
        json!("claude-haiku-4-5 claude-haiku-4-5\n"),
        "{:?}",
        done.values
    );
    let usage = done.usage.expect("usage");
    assert_eq!(usage.model.as_deref(), Some("claude-haiku"));
    let cost = usage.cost_usd.expect("priced");
    assert!(
        (cost - (1000.0 * 1.0 + 500.0 * 5.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let explained = run_cli(accepts.path(), &["policy", "explain", "last"], &[]);
    assert!(
        !explained.stdout.contains("not applied"),
        "{}",
        explained.stdout
    );

    // Not accepted: its own model runs and is priced, and the route says it was not applied.
    let refuses = project("");
    let done = succeeded(&refuses);
    assert_eq!(
        done.values["seen"],
        json!("claude-sonnet-4-5 claude-sonnet-4-5\n")
    );
    let usage = done.usage.expect("usage");
    assert_eq!(usage.model.as_deref(), Some("claude-sonnet"));
    let explained = run_cli(refuses.path(), &["policy", "explain", "last"], &[]);
    assert!(
        explained.stdout.contains(
            "not applied: model `claude-haiku`: `script` accepts only `claude-sonnet` \
             (`model`/`models` in agents.yaml)"
        ),
        "{}",
        explained.stdout
    );
    let json = run_cli(
        refuses.path(),
        &["policy", "explain", "last", "--json"],
        &[],
    );
    assert!(
        json.stdout.contains("\"ignored\": \"not applied"),
        "{}",
        json.stdout
    );
}
