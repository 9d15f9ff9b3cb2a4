#!/usr/bin/env bash
# Installs the interop peers (scripts/install-peers.sh), builds the solution, runs every test
# project (tests/*.Tests) and prints a line per project and one closing line,
# "N passed, M failed, K skipped", summed over all of them. Exits non-zero on any failure,
# or when no test ran at all. Extra arguments go to each `dotnet test` (e.g. --filter ...).
set -uo pipefail
cd "$(dirname "$0")/.."

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

./scripts/install-peers.sh

if ! dotnet build Duplex.slnx --nologo -v quiet; then
  echo "0 passed, 1 failed, 0 skipped"
  echo "the build failed" >&2
  exit 1
fi

status=0
for project in tests/*.Tests/*.Tests.csproj; do
  name=$(basename "$project" .csproj)
  loggers=(--logger "trx;LogFileName=$name.trx")
  # The conformance suite prints a line per case.
  [ "$name" = Duplex.Conformance.Tests ] && loggers+=(--logger "console;verbosity=normal")
  dotnet test "$project" --no-build --nologo "${loggers[@]}" --results-directory "$results/$name" "$@" || status=1
done

passed=0; failed=0; skipped=0
summary=""
for trx in "$results"/*/*.trx; do
  [ -e "$trx" ] || continue
  before_p=$passed; before_f=$failed; before_s=$skipped
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  total=$(get total); executed=$(get executed); p=$(get passed); f=$(get failed); e=$(get error); t=$(get timeout); a=$(get aborted)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  skipped=$((skipped + ${total:-0} - ${executed:-0}))
  summary="$summary  $(basename "$trx" .trx): $((passed - before_p)) passed, $((failed - before_f)) failed, $((skipped - before_s)) skipped\n"
done

echo
# The names of failed tests, so a red run says which without scrolling back.
for trx in "$results"/*/*.trx; do
  [ -e "$trx" ] || continue
  grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$trx" \
    | sed -n 's/.* testName="\([^"]*\)".*/  FAILED \1/p' | sed 's/&quot;/"/g; s/&amp;/\&/g'
done
printf "%b" "$summary"
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  [ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && echo "a test run exited non-zero (a crashed test host?)" >&2
  exit 1
fi
