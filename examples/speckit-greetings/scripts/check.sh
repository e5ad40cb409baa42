#!/bin/sh
# The example's checks: the spec is where the run expects it. A real project runs its tests here
# (`spec_inputs.check_command` in .spectacular/config.yaml).
set -eu
test -s specs/001-greetings/spec.md
echo "checks passed"
