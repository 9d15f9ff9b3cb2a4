#!/usr/bin/env bash
# Coverage-guided fuzzing: SharpFuzz instruments Duplex and Duplex.Hub, AFL++ drives the targets
# in tests/Duplex.Fuzz (frame reader in both roles with and without permessage-deflate, HTTP
# heads in both roles, deflate negotiation, hub requests, JWTs), from the seeds in
# tests/Duplex.Fuzz/corpus. Any exception that escapes a target is a crash; an input that runs
# past 5 s is a hang. Crashes and hangs land in .fuzz/findings/TARGET/default/{crashes,hangs}:
# replay one with  echo FILE | dotnet .fuzz/bin/Duplex.Fuzz.dll TARGET  and make it a unit test.
#   scripts/fuzz.sh TARGET SECONDS     one target
#   scripts/fuzz.sh all SECONDS        every target in turn (CI runs this briefly)
# Prints a line per target (executions, paths, crashes, hangs); exits non-zero on any finding.
set -uo pipefail
cd "$(dirname "$0")/.."
targets=(frames-server frames-client frames-server-deflate frames-client-deflate http-request http-response deflate-negotiation hub-request jwt)
target="${1:-}"; seconds="${2:-60}"
if [ -z "$target" ] || ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS   (targets: ${targets[*]})" >&2; exit 64
fi
if [ "$target" = all ]; then run=("${targets[@]}"); else
  [[ " ${targets[*]} " == *" $target "* ]] || { echo "fuzz: unknown target '$target' (${targets[*]})" >&2; exit 64; }
  run=("$target")
fi

# AFL++ from Debian; the SharpFuzz instrumenter as a local dotnet tool.
if ! command -v afl-fuzz >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >/dev/null 2>&1; timeout 600 apt-get install -y -qq afl++ >/dev/null 2>&1
  fi
  command -v afl-fuzz >/dev/null 2>&1 || { echo "fuzz: afl-fuzz is missing (apt-get install afl++)" >&2; exit 1; }
fi
tools=.fuzz/tools
if [ ! -x "$tools/sharpfuzz" ]; then
  timeout 300 dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine --version 2.3.0 >/dev/null \
    || { echo "fuzz: could not install SharpFuzz.CommandLine" >&2; exit 1; }
fi

# Build, then instrument the libraries under test (not the harness, not the BCL).
rm -rf .fuzz/bin
dotnet publish tests/Duplex.Fuzz -c Release -o .fuzz/bin --nologo -v quiet >/dev/null || { echo "fuzz: build failed" >&2; exit 1; }
for dll in Duplex.dll Duplex.Hub.dll; do
  "$tools/sharpfuzz" ".fuzz/bin/$dll" >/dev/null || { echo "fuzz: could not instrument $dll" >&2; exit 1; }
done

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_QUIET=1
status=0
for t in "${run[@]}"; do
  out=.fuzz/findings/$t
  rm -rf "$out"; mkdir -p .fuzz/findings
  timeout $((seconds + 120)) afl-fuzz -V "$seconds" -i "tests/Duplex.Fuzz/corpus/$t" -o "$out" -t 5000 -m none \
    -- dotnet .fuzz/bin/Duplex.Fuzz.dll "$t" >"$out.log" 2>&1
  stats="$out/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "fuzz $t: afl-fuzz did not run (see $out.log)"; tail -5 "$out.log" >&2; status=1; continue
  fi
  get() { sed -n "s/^$1 *: *//p" "$stats"; }
  crashes=$(find "$out/default/crashes" -type f ! -name README.txt 2>/dev/null | wc -l)
  hangs=$(find "$out/default/hangs" -type f 2>/dev/null | wc -l)
  echo "fuzz $t: $(get execs_done) executions, $(get corpus_count) paths, $crashes crashes, $hangs hangs in ${seconds} s"
  [ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ] || status=1
done
exit $status
