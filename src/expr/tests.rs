use rhai::{Dynamic, Scope};
use serde_json::json;

use super::script::{engine, eval_expression};
use super::template::{render, shell_quote};
use super::*;

fn eval(expression: &str) -> Result<Dynamic, String> {
    eval_expression(&engine(), &mut Scope::new(), expression).map_err(|e| e.to_string())
}

/// Stopped by the operation budget or the deadline, whichever came first on this machine.
fn stopped(error: &str) -> bool {
    error.contains("operation limit exceeded") || error.contains("wall-clock limit exceeded")
}

/// A whole script (statements allowed), as policy hooks run.
fn run(script: &str) -> Result<Dynamic, String> {
    bounded(|| engine().eval::<Dynamic>(script)).map_err(|e| script::describe_error(&e))
}

/// An expression over two arrays of `n` items, `a` and `b`.
fn eval_over_arrays(n: usize, expression: &str) -> Result<Dynamic, String> {
    let array: rhai::Array = (0..n as rhai::INT).map(Dynamic::from_int).collect();
    let mut scope = Scope::new();
    scope.push_constant("a", array.clone());
    scope.push_constant("b", array);
    eval_expression(&engine(), &mut scope, expression).map_err(|e| e.to_string())
}

#[test]
fn closures_called_from_native_functions_are_counted() {
    for (n, expression) in [
        (100_000, "a.all(|i| b.all(|j| true))"),
        (2_000, "a.all(|i| b.all(|j| true))"),
        (100_000, "a.map(|i| b.filter(|j| j == i).len()).len()"),
    ] {
        let error = eval_over_arrays(n, expression).expect_err("the nested closures are stopped");
        assert!(stopped(&error), "{error}");
    }
    // A single pass is well within the operation budget (the deadline is lifted: a debug
    // build on a busy machine is slow).
    let single = bounded_for(Duration::from_secs(60), || {
        eval_over_arrays(100_000, "a.all(|i| i >= 0)")
    });
    assert!(single.unwrap().as_bool().unwrap());
}

#[test]
fn the_nested_attack_stops_in_a_script_too() {
    let error = run("let a = []; a.pad(100000, 0); let b = a; a.all(|i| b.all(|j| true))")
        .expect_err("stopped");
    assert!(stopped(&error), "{error}");
}

#[test]
fn replace_that_would_outgrow_the_limit_is_a_size_error() {
    let error = run("let s = \"\"; s.pad(1000000, \"a\"); let t = s; t.replace(\"a\", s); t")
        .expect_err("refused before allocating");
    assert!(error.to_string().contains("size limit exceeded"), "{error}");
    assert_eq!(
        run("let t = \"a-b\"; t.replace(\"-\", \"+\"); t")
            .unwrap()
            .into_string()
            .unwrap(),
        "a+b"
    );
}

#[test]
fn split_that_would_outgrow_the_limit_is_a_size_error() {
    let error = run("let s = \"\"; s.pad(200000, \",\"); s.split(\",\")")
        .expect_err("refused before allocating");
    assert!(error.to_string().contains("size limit exceeded"), "{error}");
}

#[test]
fn expressions_cannot_read_the_clock() {
    let error = eval("timestamp()").expect_err("no clock");
    assert!(error.to_string().contains("timestamp"), "{error}");
}

#[test]
fn an_interrupt_stops_a_running_evaluation() {
    let interrupt = Interrupt::new();
    let _installed = interrupt.install();
    interrupt.trigger();
    let error = run("let x = 0; while true { x += 1 }").expect_err("interrupted");
    assert!(error.starts_with(INTERRUPTED), "{error}");
    interrupt.clear();
    assert!(eval("1 + 1").is_ok());
}

#[test]
fn the_deadline_stops_a_loop() {
    let error = bounded_for(Duration::ZERO, || {
        engine()
            .eval::<Dynamic>("let x = 0; while true { x += 1 }")
            .map_err(|e| script::describe_error(&e))
    })
    .expect_err("stopped");
    assert!(
        error.to_string().contains("wall-clock limit exceeded"),
        "{error}"
    );
}

#[test]
fn nested_ranges_in_a_template_run_out_of_fuel() {
    let error = render(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        &json!({}),
    )
    .expect_err("out of fuel");
    assert!(
        error.to_string().contains("template limit exceeded"),
        "{error}"
    );
}

#[test]
fn a_huge_template_output_hits_the_cap() {
    let error = render(
        "{% for i in range(100000) %}{{ \"x\" * 1000 }}{% endfor %}",
        &json!({}),
    )
    .expect_err("capped");
    assert!(
        error.to_string().contains("output limit exceeded"),
        "{error}"
    );
}

#[test]
fn templates_render_and_quote() {
    assert_eq!(
        render(
            "echo {{ x | q }} {{ xs | shell_quote }}",
            &json!({"x": "it's", "xs": ["a b", 1]})
        )
        .unwrap(),
        "echo 'it'\\''s' 'a b' '1'"
    );
    let error = render("{{ missing }}", &json!({})).expect_err("strict");
    assert!(error.to_string().contains("undefined"), "{error}");
}

#[test]
fn shell_quote_round_trips_through_sh() {
    let hostile = [
        "",
        "plain",
        "it's",
        "'",
        "''\\''",
        "a\nb\n",
        "$(touch /tmp/spectacular-pwned) `id` ${HOME} $HOME",
        "\"double\" \\ back\\slash",
        "-n",
        "*?[] ; | & > < ! # ~",
        "tab\there\r\n\u{7f}\u{1b}[31m",
        "ünïcødé ✓",
    ];
    for text in hostile {
        let script = format!("printf %s {}", shell_quote(text).unwrap());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{script}");
    }
    assert!(shell_quote("a\0b").is_err());
}

#[test]
fn runaway_macro_recursion_hits_the_recursion_limit() {
    let error = render(
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        &json!({}),
    )
    .expect_err("too deep");
    assert!(
        error.to_string().contains("template limit exceeded"),
        "{error}"
    );
}

#[test]
fn another_thread_interrupts_an_evaluation_long_before_its_deadline() {
    let interrupt = Interrupt::new();
    let _installed = interrupt.install();
    let remote = interrupt.clone();
    let trigger = std::thread::spawn(move || remote.trigger());
    // Without the interrupt this would run for a minute (or a million operations).
    let error = bounded_for(Duration::from_secs(60), || {
        trigger.join().unwrap();
        engine()
            .eval::<Dynamic>("let x = 0; while true { x += 1 }")
            .map_err(|e| script::describe_error(&e))
    })
    .expect_err("interrupted");
    assert!(error.starts_with(INTERRUPTED), "{error}");
    let template = bounded_for(Duration::from_secs(60), || {
        render("{% for i in range(10) %}x{% endfor %}", &json!({}))
    });
    assert!(template.unwrap_err().to_string().starts_with(INTERRUPTED));
}
