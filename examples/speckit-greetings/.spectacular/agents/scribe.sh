#!/bin/sh
# A stand-in for coding agents: plans, implements and reviews the greetings spec the way an
# agent would. The planner writes what its phase declares into $SPECTACULAR_OUTPUT_DIR; each
# work package writes its code into its worktree (the working directory), where the engine
# commits it on the work package's branch.
set -eu
prompt_file="$1"
out="$SPECTACULAR_OUTPUT_DIR"
case "$SPECTACULAR_PHASE" in
  plan)
    cat > "$out/plan.md" <<'PLAN'
# Plan

The greeting comes first; the farewell reuses its wording rules, so it waits for it. The README
is written beside them.
PLAN
    cat > "$out/tasks.json" <<'TASKS'
[
  {"id": "wp-greet", "title": "Greet a person by name", "description": "Write src/greet.sh printing `Hello, <name>!`.",
   "owned_files": ["src/greet.sh"], "requirement_refs": ["FR-001", "US1", "SC-001"],
   "acceptance": ["`sh src/greet.sh Ada` prints `Hello, Ada!`"], "estimate": "xs"},
  {"id": "wp-bye", "title": "Say goodbye", "description": "Write src/bye.sh, sourced by greet.sh for `--bye`.",
   "depends_on": ["wp-greet"], "owned_files": ["src/bye.sh"], "requirement_refs": ["FR-002", "US2", "SC-001"],
   "acceptance": ["`sh src/greet.sh --bye Ada` prints `Goodbye, Ada!`"], "estimate": "xs"},
  {"id": "wp-docs", "title": "Document both commands", "description": "Show one example of each in the README.",
   "owned_files": ["README.md"], "requirement_refs": ["FR-003", "SC-002"],
   "acceptance": ["the README's examples run as written"], "estimate": "xs"}
]
TASKS
    ;;
  implement*)
    case "$SPECTACULAR_PHASE" in
      "implement[wp-greet]")
        mkdir -p src
        cat > src/greet.sh <<'CODE'
#!/bin/sh
# Greets a person by name; `--bye` says goodbye instead (src/bye.sh).
if [ "${1:-}" = "--bye" ]; then
  . "$(dirname "$0")/bye.sh"
  bye "$2"
else
  echo "Hello, $1!"
fi
CODE
        ;;
      "implement[wp-bye]")
        mkdir -p src
        # SCRIBE_SLIP=1 makes the first farewell wrong, to show the checks sending it back.
        word=Goodbye
        if [ "${SCRIBE_SLIP:-}" = 1 ] && ! grep -q 'sent back' "$prompt_file"; then word=Bye; fi
        cat > src/bye.sh <<CODE
# Sourced by src/greet.sh for \`--bye\`.
bye() {
  echo "$word, \$1!"
}
CODE
        ;;
      "implement[wp-docs]")
        cat > README.md <<'DOCS'
# Greetings

```sh
sh src/greet.sh Ada         # Hello, Ada!
sh src/greet.sh --bye Ada   # Goodbye, Ada!
```
DOCS
        ;;
    esac
    ;;
  review)
    # The merged work is the working directory: judge each criterion by running it.
    verdict() { if [ "$2" = "$3" ]; then echo pass; else echo fail; fi; }
    greet=$(sh src/greet.sh Ada 2>&1 || true)
    bye=$(sh src/greet.sh --bye Ada 2>&1 || true)
    docs=$(grep -c 'src/greet.sh' README.md 2>/dev/null || echo 0)
    cat > "$out/verdicts.json" <<VERDICTS
[
  {"criterion": "wp-greet/1", "verdict": "$(verdict x "$greet" "Hello, Ada!")",
   "evidence": [{"kind": "command", "ref": "sh src/greet.sh Ada", "detail": "printed $greet"}],
   "reason": "the greeting as the spec words it"},
  {"criterion": "wp-bye/1", "verdict": "$(verdict x "$bye" "Goodbye, Ada!")",
   "evidence": [{"kind": "command", "ref": "sh src/greet.sh --bye Ada", "detail": "printed $bye"}],
   "reason": "the farewell reuses the greeting's wording rules"},
  {"criterion": "wp-docs/1", "verdict": "$(verdict x "$docs" 2)",
   "evidence": [{"kind": "file", "ref": "README.md"}],
   "reason": "one example of each command"}
]
VERDICTS
    echo "The change follows the spec: every criterion judged."
    ;;
  *)
    echo "the scribe does not know phase $SPECTACULAR_PHASE" >&2
    exit 2
    ;;
esac
echo "scribe finished $SPECTACULAR_PHASE"
