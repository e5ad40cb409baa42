//! Secrets through a whole run: the run log redacts every provider key of the environment,
//! `run:` and `shell:` phases inherit none, and an agent keeps only its own.

use std::path::Path;

use spectacular::record::EventData;

use crate::runtime::{code, fake_agent, text, write_agents, Project};

const OPENAI: &str = "sk-canary-openai-0a1b2c3d4e5f6789";
const ANTHROPIC: &str = "sk-ant-canary-9f8e7d6c5b4a3210";

/// Every text value of every table of a SQLite database, read through SQLite (so the WAL is
/// seen too).
fn sqlite_texts(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut texts = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        texts.push(String::from_utf8_lossy(t).into_owned())
                    }
                    _ => {}
                }
            }
        }
    }
    texts
}

#[test]
fn keys_reach_only_the_agents_that_need_them_and_never_the_record() {
    let p = Project::new("");
    // A phase that reads a key from somewhere else and prints it: the record is redacted.
    let canary_file = p.path().join("canary.txt");
    std::fs::write(&canary_file, format!("{OPENAI}\n")).unwrap();
    std::fs::write(
        p.path().join("mission.yaml"),
        format!(
            r#"
mission: secrets
phases:
  leak:
    shell: 'cat {canary} >&2; cat {canary} > out.txt; echo "openai=${{OPENAI_API_KEY:-unset}}" >&2; exit 3'
    outputs: {{ out: {{ path: out.txt }} }}
  sees:
    shell: 'echo "${{ANTHROPIC_API_KEY:-unset}} ${{OPENAI_API_KEY:-unset}}" > seen.txt'
    outputs: {{ seen: {{ path: seen.txt }} }}
  tool:
    agent: tool
    outputs: {{ out: {{ path: out.txt }} }}
  plan:
    agent: claude
    model: claude-sonnet
"#,
            canary = canary_file.display()
        ),
    )
    .unwrap();
    write_agents(
        &p,
        &[
            // A command agent that needs the OpenAI key, prints it and fails.
            "  tool:\n    adapter: command\n    stdin: false\n    api_key_env: OPENAI_API_KEY\n    argv: [sh, -c, 'echo \"key $OPENAI_API_KEY\" >&2; echo \"$OPENAI_API_KEY\" > out.txt; exit 3']\n".to_string(),
            fake_agent("claude", "claude-code", "planner", "claude-success.json"),
        ],
    );
    let out = p
        .command(&["run", "mission.yaml"])
        .env("OPENAI_API_KEY", OPENAI)
        .env("ANTHROPIC_API_KEY", ANTHROPIC)
        .env("FAKE_AGENT_SHOW", "ANTHROPIC_API_KEY OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let run_dir = p.store().run_dir(&p.run_id());
    let log = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let db = sqlite_texts(&p.store().db_path());
    assert!(!db.is_empty());
    for secret in [OPENAI, ANTHROPIC] {
        assert!(!text(&out).contains(secret), "{}", text(&out));
        assert!(!log.contains(secret), "the log holds `{secret}`:\n{log}");
        assert!(
            !db.iter().any(|t| t.contains(secret)),
            "state.db holds `{secret}`"
        );
        for phase in ["leak", "sees", "tool", "plan"] {
            for stream in ["stdout.log", "stderr.log"] {
                let path = run_dir.join("attempts").join(phase).join("1").join(stream);
                let captured = std::fs::read_to_string(&path).unwrap_or_default();
                assert!(
                    !captured.contains(secret),
                    "`{secret}` is in {}",
                    path.display()
                );
            }
        }
    }
    let events = p.events();
    let result = |phase: &str| {
        events
            .iter()
            .rev()
            .find_map(|e| match &e.data {
                EventData::AttemptSucceeded(d) if d.phase == phase => Some(e.data.clone()),
                EventData::AttemptFailed(d) if d.phase == phase => Some(e.data.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no result for `{phase}`"))
    };
    // What the shell printed is redacted in the record; it did not inherit the key itself.
    match result("leak") {
        EventData::AttemptFailed(f) => {
            assert!(
                f.message.contains("[redacted:OPENAI_API_KEY]"),
                "{}",
                f.message
            );
            assert!(f.message.contains("openai=unset"), "{}", f.message);
        }
        other => panic!("{other:?}"),
    }
    match result("sees") {
        EventData::AttemptSucceeded(s) => {
            assert_eq!(s.values["seen"], serde_json::json!("unset unset\n"))
        }
        other => panic!("{other:?}"),
    }
    // The command agent had its key (and printed it, redacted).
    match result("tool") {
        EventData::AttemptFailed(f) => {
            assert!(f.message.contains("key [REDACTED]"), "{}", f.message)
        }
        other => panic!("{other:?}"),
    }
    // The claude-code agent got its own key, and not the OpenAI one.
    assert!(matches!(result("plan"), EventData::AttemptSucceeded(_)));
    let shown = std::fs::read_to_string(run_dir.join("attempts/plan/1/stderr.log")).unwrap();
    assert!(
        shown.contains("ANTHROPIC_API_KEY=[REDACTED]\n"),
        "the agent did not get its key: {shown}"
    );
    assert!(shown.contains("OPENAI_API_KEY=\n"), "{shown}");
}
