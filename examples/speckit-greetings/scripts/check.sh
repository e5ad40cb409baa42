#!/bin/sh
# The example's checks, run in the merged work: both commands print what the spec asks for. A
# real project runs its tests here (`spec_inputs.check_command` in .spectacular/config.yaml).
set -eu
test -s specs/001-greetings/spec.md
test "$(sh src/greet.sh Ada)" = "Hello, Ada!" || { echo "src/greet.sh:1:1: error: greeting is not \"Hello, Ada!\"" >&2; exit 1; }
test "$(sh src/greet.sh --bye Ada)" = "Goodbye, Ada!" || { echo "src/bye.sh:1:1: error: farewell is not \"Goodbye, Ada!\"" >&2; exit 1; }
echo "checks passed"
