#!/bin/sh
# A stand-in for coding agents: plans, implements and reviews the greetings spec the way an
# agent would, writing what each phase declares into $SPECTACULAR_OUTPUT_DIR.
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
    files=$(sed -n 's/^Change only the files this work package owns: \(.*\)\.$/\1/p' "$prompt_file")
    for file in $(echo "$files" | tr ',' ' '); do
      mkdir -p "$out/$(dirname "$file")"
      echo "# written for $SPECTACULAR_PHASE (attempt $SPECTACULAR_ATTEMPT)" > "$out/$file"
    done
    ;;
  review)
    echo "The change follows the spec: every requirement has a work package."
    ;;
  *)
    echo "the scribe does not know phase $SPECTACULAR_PHASE" >&2
    exit 2
    ;;
esac
echo "scribe finished $SPECTACULAR_PHASE"
