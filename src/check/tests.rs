//! Every parser on real or documented output (`tests/fixtures/check/`), detection, paths,
//! bounds and hostile input.

use std::path::PathBuf;

use super::*;

fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn ctx() -> Context {
    Context {
        workdirs: vec![PathBuf::from("/home/dev/calc")],
        go_module: Some("example.com/calc".into()),
        base: None,
    }
}

/// Parse like the builtin does: `(command, stdout, stderr)`.
fn run(command: &str, stdout: &str, stderr: &str) -> (Vec<Error>, Vec<&'static str>) {
    let mut found = Errors::default();
    let parsers = parse(
        &Output {
            command,
            stdout,
            stderr,
        },
        &ctx(),
        &mut found,
    );
    (found.list, parsers)
}

/// `(file:line:col, severity, code, first line of the message)` of each error.
fn brief(errors: &[Error]) -> Vec<(String, &'static str, String, String)> {
    errors
        .iter()
        .map(|e| {
            (
                format!(
                    "{}:{}:{}",
                    e.file.as_deref().unwrap_or("-"),
                    e.line.map_or("-".into(), |l| l.to_string()),
                    e.column.map_or("-".into(), |c| c.to_string())
                ),
                e.severity.as_str(),
                e.code.clone().unwrap_or_default(),
                e.message.lines().next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn row(
    at: &str,
    severity: &'static str,
    code: &str,
    message: &str,
) -> (String, &'static str, String, String) {
    (at.into(), severity, code.into(), message.into())
}

#[test]
fn cargo_json_gives_each_compiler_message_at_its_primary_span() {
    let (errors, parsers) = run(
        "cargo build --message-format=json",
        &fixture("cargo/build.stdout"),
        "error: could not compile `app` (lib) due to 2 previous errors\n",
    );
    assert!(parsers.contains(&"cargo"), "{parsers:?}");
    assert_eq!(
        brief(&errors),
        [
            row(
                "calc/src/lib.rs:2:9",
                "warning",
                "unused_variables",
                "unused variable: `unused`"
            ),
            row(
                "app/src/lib.rs:3:5",
                "error",
                "E0308",
                "mismatched types: expected `u32`, found `u64`"
            ),
            row(
                "app/src/lib.rs:7:5",
                "error",
                "E0425",
                "cannot find function `lenght_of` in this scope: not found in this scope"
            ),
        ]
    );
    assert!(errors.iter().all(|e| e.tool == "cargo"));
}

#[test]
fn cargo_test_panics_name_the_test_and_the_place() {
    let (errors, _) = run(
        "cargo test --message-format=json",
        &fixture("cargo/test.stdout"),
        "error: test failed, to rerun pass `--lib`\n",
    );
    assert_eq!(
        brief(&errors),
        [
            row("src/lib.rs:16:9", "error", "", "adding zeros gives 1"),
            row(
                "src/lib.rs:11:9",
                "error",
                "",
                "assertion `left == right` failed"
            ),
        ]
    );
    assert_eq!(
        errors[1].message,
        "assertion `left == right` failed\n  left: 5\n right: 4"
    );
    assert_eq!(errors[0].test.as_deref(), Some("tests::it_adds_zero"));
    assert_eq!(errors[0].tool, "rust-test");
}

#[test]
fn rustc_human_output_gives_codes_lints_and_places() {
    let (errors, parsers) = run("cargo build", "", &fixture("rustc/build.stderr"));
    assert_eq!(parsers, ["rustc", "rust-test"]);
    assert_eq!(
        brief(&errors),
        [
            row(
                "calc/src/lib.rs:2:9",
                "warning",
                "unused_variables",
                "unused variable: `unused`"
            ),
            row("app/src/lib.rs:3:5", "error", "E0308", "mismatched types"),
            row(
                "app/src/lib.rs:7:5",
                "error",
                "E0425",
                "cannot find function `lenght_of` in this scope"
            ),
        ]
    );
}

#[test]
fn gcc_and_clang_give_severity_flag_and_place() {
    let (errors, parsers) = run(
        "make",
        "gcc -Wall -c src/parse.c -o src/parse.o\n",
        &fixture("gcc/make.stderr"),
    );
    assert_eq!(parsers, ["gcc"]);
    assert_eq!(
        brief(&errors),
        [
            row(
                "src/parse.c:7:9",
                "error",
                "",
                "'count' undeclared (first use in this function)"
            ),
            row(
                "src/parse.c:7:9",
                "note",
                "",
                "each undeclared identifier is reported only once for each function it appears in"
            ),
            row(
                "src/parse.c:5:9",
                "warning",
                "-Wunused-variable",
                "unused variable 'len'"
            ),
        ]
    );
    let (errors, _) = run(
        "clang -Wall -c src/main.c",
        "",
        &fixture("gcc/clang.stderr"),
    );
    assert_eq!(
        brief(&errors),
        [
            row(
                "src/main.c:8:12",
                "error",
                "",
                "use of undeclared identifier 'buffer'"
            ),
            row(
                "src/main.c:3:9",
                "warning",
                "-Wunused-variable",
                "unused variable 'size'"
            ),
            row(
                "/usr/include/stdio.h:356:12",
                "note",
                "",
                "'printf' declared here"
            ),
        ]
    );
    assert!(errors.iter().all(|e| e.tool == "clang"));
}

#[test]
fn pytest_places_each_failure_where_it_was_raised_and_names_the_test() {
    let (errors, parsers) = run("python -m pytest -q", &fixture("pytest/run.stdout"), "");
    assert_eq!(parsers, ["pytest"]);
    assert_eq!(
        brief(&errors),
        [
            row(
                "tests/test_calc.py:5:-",
                "error",
                "AssertionError",
                "assert 5 == 4"
            ),
            row(
                "calc/ops.py:6:-",
                "error",
                "ZeroDivisionError",
                "ZeroDivisionError: division by zero"
            ),
            row(
                "tests/test_parse.py:4:-",
                "error",
                "",
                "fixture 'tokens' not found"
            ),
        ]
    );
    assert_eq!(errors[0].message, "assert 5 == 4\n+  where 5 = add(2, 2)");
    let tests: Vec<_> = errors
        .iter()
        .map(|e| e.test.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        tests,
        [
            "tests/test_calc.py::test_add",
            "tests/test_calc.py::TestDivide::test_by_zero",
            "tests/test_parse.py::test_parse_empty"
        ]
    );
}

#[test]
fn go_test_json_places_test_lines_in_their_package_and_reads_build_output() {
    let (errors, parsers) = run("go test -json ./...", &fixture("go/test.stdout"), "");
    assert_eq!(parsers, ["go"]);
    assert_eq!(
        brief(&errors),
        [
            row("parse/parse_test.go:9:2", "error", "", "undefined: Tokens"),
            row(
                "mathx/add_test.go:12:-",
                "error",
                "",
                "Add(2, 2) = 5; want 4"
            ),
            row(
                "mathx/table_test.go:21:-",
                "error",
                "",
                "Abs(-1) = -1; want 1"
            ),
            row("-:-:-", "error", "", "TestTimeout failed"),
        ]
    );
    assert_eq!(errors[2].test.as_deref(), Some("TestTable/negative"));
    // Without the module path, the file stays as the test printed it.
    let mut found = Errors::default();
    let bare = Context {
        go_module: None,
        ..ctx()
    };
    parse(
        &Output {
            command: "go test -json ./...",
            stdout: &fixture("go/test.stdout"),
            stderr: "",
        },
        &bare,
        &mut found,
    );
    assert_eq!(found.list[1].file.as_deref(), Some("add_test.go"));
}

#[test]
fn tsc_plain_and_pretty_give_the_same_errors() {
    let expected = [
        row(
            "src/index.ts:2:9",
            "error",
            "TS2322",
            "Type 'number' is not assignable to type 'string'.",
        ),
        row(
            "src/index.ts:3:3",
            "error",
            "TS2322",
            "Type 'string' is not assignable to type 'number'.",
        ),
        row(
            "src/index.ts:6:29",
            "error",
            "TS2304",
            "Cannot find name 'lenghtOf'.",
        ),
    ];
    let (plain, parsers) = run("npx tsc --pretty false", &fixture("tsc/plain.stdout"), "");
    assert_eq!(parsers, ["tsc"]);
    assert_eq!(brief(&plain), expected);
    let (pretty, _) = run("npm run typecheck", &fixture("tsc/pretty.stdout"), "");
    assert_eq!(brief(&pretty), expected);
}

#[test]
fn eslint_json_gives_rule_and_severity_relative_to_the_workdir() {
    let (errors, parsers) = run("npx eslint -f json src", &fixture("eslint/report.json"), "");
    assert_eq!(parsers, ["eslint"]);
    let brief = brief(&errors);
    assert_eq!(
        brief[0],
        row(
            "src/app.js:1:10",
            "error",
            "no-unused-vars",
            "'addOne' is defined but never used."
        )
    );
    assert_eq!(
        brief[1],
        row(
            "src/app.js:2:9",
            "error",
            "use-isnan",
            "Use the isNaN function to compare with NaN."
        )
    );
    assert_eq!(
        brief[2],
        row("src/app.js:3:20", "warning", "semi", "Missing semicolon.")
    );
    let report: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("eslint/report.json")).expect("JSON");
    let messages: usize = report
        .iter()
        .map(|r| r["messages"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(errors.len(), messages);
}

#[test]
fn jest_places_failures_at_their_frame_and_reports_suites_that_did_not_run() {
    let (errors, parsers) = run("npx jest --json", &fixture("jest/report.json"), "");
    assert_eq!(parsers, ["jest"]);
    assert_eq!(
        brief(&errors),
        [
            row(
                "tests/sum.test.js:5:23",
                "error",
                "",
                "expect(received).toBe(expected) // Object.is equality"
            ),
            row(
                "tests/broken.test.js:1:19",
                "error",
                "",
                "Cannot find module '../src/parse' from 'tests/broken.test.js'"
            ),
        ]
    );
    assert_eq!(
        errors[0].test.as_deref(),
        Some("sum › adds 1 + 2 to equal 3")
    );
    assert!(
        errors[0].message.ends_with("Expected: 3\nReceived: 4"),
        "{}",
        errors[0].message
    );
    let (errors, _) = run(
        "npx vitest run --reporter=json",
        &fixture("jest/vitest.json"),
        "",
    );
    assert_eq!(
        brief(&errors),
        [row(
            "src/format.test.ts:6:27",
            "error",
            "",
            "AssertionError: expected '7' to be '07' // Object.is equality"
        )]
    );
    assert_eq!(errors[0].tool, "vitest");
}

#[test]
fn the_generic_parser_reads_what_no_other_parser_knows() {
    // mypy's and Ruff's lines are known by their shape; the generic parser reads them alike.
    let (errors, parsers) = run("./lint.sh", &fixture("generic/lint.stdout"), "");
    assert_eq!(parsers, ["mypy", "ruff"]);
    assert_eq!(errors[2].message, "`os` imported but unused");
    let lint = fixture("generic/lint.stdout")
        .replace("[*] ", "")
        .replace("Found", "found");
    let (errors, parsers) = run("./lint.sh", &lint, "");
    assert_eq!(parsers, ["generic"]);
    assert_eq!(
        brief(&errors),
        [
            row(
                "calc/ops.py:6:-",
                "error",
                "operator",
                "Unsupported operand types for / (\"int\" and \"str\")"
            ),
            row(
                "calc/ops.py:12:-",
                "note",
                "",
                "Revealed type is \"builtins.int\""
            ),
            row(
                "calc/cli.py:1:8",
                "error",
                "F401",
                "`os` imported but unused"
            ),
        ]
    );
    // A known tool's output is not read again by the generic parser.
    let (_, parsers) = run("make", "", &fixture("gcc/make.stderr"));
    assert!(!parsers.contains(&"generic"), "{parsers:?}");
    // Times are not places.
    let (errors, _) = run("./build.sh", "10:15:01: started\n", "");
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn the_output_shape_picks_the_parser_when_the_command_does_not() {
    for (file, parser) in [
        ("cargo/build.stdout", Parser::Cargo),
        ("go/test.stdout", Parser::GoTest),
        ("eslint/report.json", Parser::Eslint),
        ("jest/report.json", Parser::Jest),
        ("pytest/run.stdout", Parser::Pytest),
        ("tsc/plain.stdout", Parser::Tsc),
        ("rustc/build.stderr", Parser::Rustc),
        ("gcc/make.stderr", Parser::Gcc),
    ] {
        let parsers = detect("./ci/check", &fixture(file), "");
        assert!(parsers.contains(&parser), "{file}: {parsers:?}");
    }
}

#[test]
fn paths_are_relative_to_the_workdir_and_others_stay_as_written() {
    let roots = [PathBuf::from("/home/dev/calc")];
    assert_eq!(
        normalise("/home/dev/calc/src/a.rs", &roots).as_deref(),
        Some("src/a.rs")
    );
    assert_eq!(
        normalise("./src/./a.rs", &roots).as_deref(),
        Some("src/a.rs")
    );
    assert_eq!(
        normalise("file:///home/dev/calc/x.ts", &roots).as_deref(),
        Some("x.ts")
    );
    assert_eq!(
        normalise("/usr/include/stdio.h", &roots).as_deref(),
        Some("/usr/include/stdio.h")
    );
    assert_eq!(
        normalise("../other/a.rs", &roots).as_deref(),
        Some("../other/a.rs")
    );
    assert_eq!(
        normalise("/home/dev/calc/../etc/passwd", &roots).as_deref(),
        Some("/home/dev/calc/../etc/passwd")
    );
    assert_eq!(normalise("a\nb.rs", &roots), None);
    assert!(!is_project_path("../other/a.rs"));
    assert!(!is_project_path("/usr/include/stdio.h"));
    assert!(is_project_path("src/a.rs"));
}

#[test]
fn the_files_of_a_report_are_project_files_relative_to_the_root() {
    let error = |file: &str, severity| Error {
        tool: "generic".into(),
        file: Some(file.into()),
        line: Some(1),
        column: None,
        severity,
        code: None,
        message: "m".into(),
        test: None,
    };
    let mut report = Report {
        passed: false,
        outcome: Outcome::Failed,
        workdir: "crates/calc".into(),
        commands: Vec::new(),
        errors: vec![
            error("src/a.rs", Severity::Error),
            error("/usr/include/stdio.h", Severity::Error),
            error("src/b.rs", Severity::Warning),
            error("src/a.rs", Severity::Error),
            error("../x.rs", Severity::Error),
        ],
        dropped: 0,
    };
    assert_eq!(report.files(), ["crates/calc/src/a.rs"]);
    report.errors.retain(|e| e.severity == Severity::Warning);
    report.workdir = ".".into();
    assert_eq!(report.files(), ["src/b.rs"]);
}

#[test]
fn hostile_output_is_bounded_and_never_panics() {
    // Many errors: at most MAX_ERRORS kept, the rest counted.
    let many: String = (0..3000)
        .map(|i| format!("src/f{i}.c:{i}:1: error: bad {i}\n"))
        .collect();
    let mut found = Errors::default();
    parse(
        &Output {
            command: "make",
            stdout: "",
            stderr: &many,
        },
        &ctx(),
        &mut found,
    );
    assert_eq!(found.list.len(), MAX_ERRORS);
    assert_eq!(found.dropped, 2000);
    // A huge message is cut, and escapes and control characters go.
    let long = format!(
        "src/a.c:1:1: error: \u{1b}[31m{}\u{7}\n",
        "x".repeat(100_000)
    );
    let (errors, _) = run("gcc", "", &long);
    assert!(
        errors[0].message.len() <= MAX_MESSAGE,
        "{}",
        errors[0].message.len()
    );
    assert!(errors[0].message.starts_with("xxx") && errors[0].message.ends_with('…'));
    // Deep, broken, binary and odd JSON and text.
    let deep = format!(
        "{{\"reason\":\"compiler-message\",\"message\":{}",
        "[".repeat(100_000)
    );
    let garbage = [
        deep.as_str(),
        "{\"testResults\": [{\"name\": 1}]}",
        "[{\"filePath\": null, \"messages\": [{}]}]",
        "{\"Action\":\"fail\",\"Test\":\"T\"}\n{\"Action\":\"output\",\"Test\":\"T\",\"Output\":\"    \\u0000.go:99999999999: x\"}",
        "thread '' panicked at :0:0:\n",
        "E   \n_____ x _____\n= FAILURES =\nFAILED ::\nERROR  - \n",
        "\u{fffd}\u{0}\u{1b}[\u{1b}]8;;\u{9b}",
        "a(1,2): error TS1: \n  \n",
        "FAIL x\n  ● \n  ● t\n      at (:0:0)\n      at f (/:99999999999:1)\n● Console\n",
        " FAIL  > \n ❯ :99999999999:1\n FAIL  a > b\n⎯⎯\n",
        "/abs\n  1:1  error  \n  0:0  warning    x\n",
        "F401 x\n --> :0:0\nWould reformat: \nx:1:1: invalid-syntax: \n",
        "a.py:1: error: x\nwrapped\n  [code]\n",
        "--- FAIL: T (\n    x.go:1: y\npanic: x\n\t/a.go:999999999999\nFAIL\tpkg\t1s\n",
        "---- t stdout ----\nError: \nnote: test did not panic as expected at :0:0\n",
        "{ \"type\": \"test\", \"event\": \"failed\", \"name\": \"t\", \"stdout\": \"{ \\\"type\\\": \\\"test\\\" }\\nthread 't' panicked at :1:1:\" }\n",
    ];
    for text in garbage {
        for command in [
            "cargo test --message-format=json",
            "go test -json",
            "pytest",
            "jest",
            "eslint",
            "tsc",
            "ruff check",
            "mypy .",
            "npm test",
            "go test ./...",
            "cd web && npx vitest run",
            "./x",
        ] {
            let _ = run(command, text, text);
        }
    }
    // Input beyond MAX_INPUT is not read.
    let mut big = "a".repeat(MAX_INPUT);
    big.push_str("\nsrc/late.c:1:1: error: late\n");
    let (errors, _) = run("gcc", "", &big);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn duplicates_across_streams_and_parsers_are_dropped() {
    let text = "src/a.c:1:2: error: bad\n";
    let (errors, _) = run("gcc", text, text);
    assert_eq!(errors.len(), 1);
}

#[test]
fn the_summary_has_the_commands_then_each_tool_with_counts_and_a_bounded_table() {
    let (errors, _) = run(
        "cargo build --message-format=json",
        &fixture("cargo/build.stdout"),
        "",
    );
    let report = Report {
        passed: false,
        outcome: Outcome::Failed,
        workdir: ".".into(),
        commands: vec![CommandResult {
            command: "cargo build --message-format=json | tee x".into(),
            passed: false,
            outcome: Outcome::Failed,
            reason: None,
            exit_code: Some(101),
            parsers: vec!["cargo".into()],
            errors: 2,
            warnings: 1,
            stdout: "check-1.stdout.log".into(),
            stderr: "check-1.stderr.log".into(),
        }],
        errors,
        dropped: 0,
    };
    let summary = summary_markdown(&report);
    assert!(summary.starts_with("# Checks failed\n"), "{summary}");
    assert!(
        summary.contains("| `cargo build --message-format=json \\| tee x` | exit 101 | 2 | 1 |"),
        "{summary}"
    );
    assert!(
        summary.contains("## cargo: 2 errors, 1 warning, 0 notes"),
        "{summary}"
    );
    assert!(summary.contains("| error | `app/src/lib.rs:3:5` | `E0308` | mismatched types: expected `u32`, found `u64` |"), "{summary}");
    let mut many = report.clone();
    many.errors = (0..80)
        .map(|i| Error {
            line: Some(i + 1),
            ..report.errors[1].clone()
        })
        .collect();
    let summary = summary_markdown(&many);
    assert_eq!(summary.matches("| error |").count(), render::SUMMARY_ROWS);
    assert!(summary.contains("… and 30 more"), "{summary}");
}

#[test]
fn annotations_are_workflow_commands_with_escaped_values() {
    let report = Report {
        passed: false,
        outcome: Outcome::Failed,
        workdir: "web".into(),
        commands: Vec::new(),
        errors: vec![
            Error {
                tool: "tsc".into(),
                file: Some("src/a,b.ts".into()),
                line: Some(2),
                column: Some(9),
                severity: Severity::Error,
                code: Some("TS2322".into()),
                message: "Type 'x' is 100% wrong\nsecond: line".into(),
                test: None,
            },
            Error {
                tool: "clang".into(),
                file: Some("/usr/include/stdio.h".into()),
                line: Some(356),
                column: None,
                severity: Severity::Note,
                code: None,
                message: "declared here".into(),
                test: None,
            },
        ],
        dropped: 0,
    };
    assert_eq!(
        annotations(&report),
        "::error file=web/src/a%2Cb.ts,line=2,col=9,title=tsc TS2322::Type 'x' is 100%25 wrong%0Asecond: line\n\
         ::notice title=clang::declared here\n"
    );
}

#[test]
fn the_errors_schema_accepts_a_report() {
    let (errors, _) = run("pytest", &fixture("pytest/run.stdout"), "");
    let report = Report {
        passed: false,
        outcome: Outcome::Failed,
        workdir: ".".into(),
        commands: Vec::new(),
        errors,
        dropped: 0,
    };
    let schema = errors_schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let value = serde_json::to_value(&report).expect("JSON");
    assert!(validator.is_valid(&value), "{value}");
    let mut broken = value.clone();
    broken["errors"][0]["severity"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
}

mod verdicts_file {
    use super::super::verdicts::*;
    use serde_json::json;

    fn plan() -> std::collections::BTreeMap<String, String> {
        let plan = json!([
            {"id": "wp-login", "acceptance": ["logs in with a good password", "refuses a bad one"]},
            {"id": "wp-logout", "acceptance": ["logs out"]}
        ]);
        criteria(plan.to_string().as_bytes()).expect("criteria")
    }

    fn verdict(criterion: &str, outcome: &str) -> serde_json::Value {
        json!({
            "criterion": criterion,
            "verdict": outcome,
            "evidence": [{"kind": "file", "ref": format!("src/{}.rs:12", criterion.replace('/', "_"))}],
            "reason": "because"
        })
    }

    fn check_json(value: serde_json::Value) -> Result<Checked, Vec<String>> {
        check(value.to_string().as_bytes(), Some(&plan()))
    }

    #[test]
    fn a_verdict_for_every_criterion_passes() {
        let checked = check_json(json!([
            verdict("wp-login/1", "pass"),
            verdict("wp-login/2", "fail"),
            {"criterion": "wp-logout/1", "verdict": "unknown", "evidence": [], "reason": "no test"}
        ]))
        .expect("valid");
        assert_eq!(checked.count(Outcome::Pass), 1);
        assert_eq!(checked.failed().len(), 1);
        assert_eq!(checked.failed_files(), ["src/wp-login_2.rs"]);
        let message = failed_message("verdicts", &checked);
        assert_eq!(
            message,
            "the verdicts of output `verdicts` fail 1 acceptance criterion:\n- `wp-login/2`: because"
        );
    }

    #[test]
    fn missing_unknown_duplicate_and_unsupported_verdicts_are_every_one_refused() {
        let problems = check_json(json!([
            verdict("wp-login/1", "pass"),
            verdict("wp-login/1", "pass"),
            verdict("wp-login/3", "pass"),
            verdict("wp-signup/1", "fail"),
            {"criterion": "wp-logout/1", "verdict": "pass", "evidence": [], "reason": "trust me"}
        ]))
        .expect_err("refused");
        assert_eq!(
            problems,
            [
                "criterion `wp-login/1` has more than one verdict",
                "criterion `wp-login/3` is not in the plan: work package `wp-login` has 2 acceptance criteria (`wp-login/1` to `wp-login/2`)",
                "criterion `wp-signup/1`: the plan has no work package `wp-signup`",
                "the `pass` verdict of `wp-logout/1` has no evidence; name the file, test or command it rests on",
                "criterion `wp-login/2` (\"refuses a bad one\") has no verdict",
            ]
        );
    }

    #[test]
    fn the_schema_refuses_wrong_shapes_with_their_place() {
        let problems = check_json(json!([
            {"criterion": "wp-login", "verdict": "maybe", "evidence": [{"kind": "url", "ref": ""}], "reason": "", "extra": 1}
        ]))
        .expect_err("refused");
        for expected in [
            "at `/0/criterion`",
            "at `/0/verdict`",
            "at `/0/evidence/0/kind`",
            "at `/0`",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}: {problems:?}"
            );
        }
        assert!(check(b"{", None).is_err());
        assert!(check(&vec![b' '; MAX_BYTES + 1], None).is_err());
        // Without a plan, only the file itself is checked.
        assert!(check(
            json!([verdict("wp-x/1", "pass")]).to_string().as_bytes(),
            None
        )
        .is_ok());
    }

    #[test]
    fn a_file_of_many_errors_lists_a_bounded_number() {
        let many: Vec<_> = (0..5000).map(|_| json!({"criterion": 1})).collect();
        let problems =
            check(serde_json::Value::from(many).to_string().as_bytes(), None).expect_err("refused");
        assert!(problems.len() <= MAX_PROBLEMS + 1, "{}", problems.len());
        let message = problems_message("verdicts", &problems);
        assert!(message.len() <= 8 * 1024, "{}", message.len());
    }
}

#[test]
fn duplicates_are_merged_by_test_never_by_message() {
    // Two tests failing with the same message at the same place are two errors.
    let text = "FAIL src/a.test.js\n  ● one\n\n    boom\n\n      at Object.<anonymous> (src/a.test.js:3:5)\n\n  ● two\n\n    boom\n\n      at Object.<anonymous> (src/a.test.js:3:5)\n";
    let (errors, _) = run("npx jest", "", text);
    let tests: Vec<Option<&str>> = errors.iter().map(|e| e.test.as_deref()).collect();
    assert_eq!(tests, [Some("one"), Some("two")]);
    // The same test reported twice (both streams, or Jest's closing summary) is one error.
    let (errors, _) = run("npx jest", text, text);
    assert_eq!(errors.len(), 2);
}

#[test]
fn where_a_command_runs_is_read_from_the_command() {
    for (command, dir) in [
        ("cd web && npm test", Some("web")),
        ("cd ./packages/app/ && npx jest", Some("packages/app")),
        ("cd backend; pytest -q", Some("backend")),
        (
            "cargo test --manifest-path crates/calc/Cargo.toml",
            Some("crates/calc"),
        ),
        ("npm --prefix packages/web run lint", Some("packages/web")),
        ("make -C native test", Some("native")),
        ("yarn --cwd=site test", Some("site")),
        ("cd web && make -C lib", Some("web/lib")),
        ("cd .. && npm test", None),
        ("cd /etc && make", None),
        ("npm test", None),
        ("cd", None),
    ] {
        assert_eq!(command_dir(command).as_deref(), dir, "{command}");
    }
    let roots = [PathBuf::from("/home/dev/mono")];
    assert_eq!(
        normalise_in("src/a.js", &roots, Some("web")).as_deref(),
        Some("web/src/a.js")
    );
    assert_eq!(
        normalise_in("/home/dev/mono/web/src/a.js", &roots, Some("web")).as_deref(),
        Some("web/src/a.js")
    );
    assert_eq!(
        normalise_in("../api/x.go", &roots, Some("web")).as_deref(),
        Some("api/x.go")
    );
    assert_eq!(
        normalise_in("../../x.go", &roots, Some("web")).as_deref(),
        Some("../../x.go")
    );
}

#[test]
fn a_run_is_no_tests_only_when_nothing_says_tests_ran() {
    let no = |stdout: &str, code: i32| classify(Some(code), stdout, "", &[]).0;
    // One Go package without tests beside one whose tests passed: tests ran.
    assert_eq!(
        no(
            "?   \texample.com/a\t[no test files]\nok  \texample.com/b\t0.01s\n",
            0
        ),
        Outcome::Passed
    );
    assert_eq!(
        no("?   \texample.com/a\t[no test files]\n", 0),
        Outcome::NoTests
    );
    assert_eq!(
        no("ok  \texample.com/a\t0.01s [no tests to run]\n", 0),
        Outcome::NoTests
    );
    // unittest, and a runner's `0 passed` when it is all it says.
    assert_eq!(
        no("\n----------\nRan 0 tests in 0.000s\n\nOK\n", 0),
        Outcome::NoTests
    );
    assert_eq!(no("0 passed in 0.01s\n", 0), Outcome::NoTests);
    assert_eq!(no("10 passed in 0.01s\n", 0), Outcome::Passed);
    // A failure is a failure, whatever else the output says.
    assert_eq!(no("no tests ran\n", 1), Outcome::Failed);
    // Exit 127 without a word is a command that cannot run; a located error is the work's.
    assert_eq!(classify(Some(127), "", "", &[]).0, Outcome::CannotRun);
    let placed = Error {
        tool: "generic".into(),
        file: Some("src/a.py".into()),
        line: Some(1),
        column: None,
        severity: Severity::Error,
        code: None,
        message: "bad".into(),
        test: None,
    };
    assert_eq!(
        classify(Some(1), "", "sh: 1: x: not found\n", &[placed]).0,
        Outcome::Failed
    );
}
