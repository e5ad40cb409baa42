#!/bin/sh
# A stand-in for a coding agent: reads its prompt ($1, also on stdin) and writes the files the
# phase declares into $SPECTACULAR_OUTPUT_DIR.
set -eu
prompt_file="$1"
out="$SPECTACULAR_OUTPUT_DIR"
case "$SPECTACULAR_PHASE" in
  plan)
    cat > "$out/plan.md" <<'PLAN'
# Plan
Three work packages: the greeting, the farewell (which reuses the greeting's wording), and the docs.
PLAN
    cat > "$out/tasks.json" <<'TASKS'
[
  {"id": "wp-1", "title": "Greeting", "file": "greet.txt"},
  {"id": "wp-2", "title": "Farewell", "file": "farewell.txt", "depends_on": ["wp-1"]},
  {"id": "wp-3", "title": "Docs", "file": "README.txt"}
]
TASKS
    ;;
  implement*)
    file=$(sed -n 's/^File: //p' "$prompt_file")
    {
      echo "Written by the quickstart scribe for $SPECTACULAR_PHASE (attempt $SPECTACULAR_ATTEMPT)."
      cat "$prompt_file"
    } > "$out/$file"
    ;;
  *)
    echo "the scribe does not know phase $SPECTACULAR_PHASE" >&2
    exit 2
    ;;
esac
echo "scribe finished $SPECTACULAR_PHASE"
