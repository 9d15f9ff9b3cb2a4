#!/usr/bin/env bash
# Soak: `duplex serve` on 127.0.0.1 under `duplex bench soak` — mixed traffic (idle, compressed,
# echo checking every byte, hub subscribers checking offsets, slow readers, publishers, abrupt
# disconnects) while RSS, descriptors and GC heap are sampled every 10 s from /metrics. Fails if
# anything was corrupted or lost, memory grew after the warm-up, a counter did not return to its
# baseline once the clients left, or the server did not stop within 10 s of SIGTERM.
#   scripts/soak.sh [SECONDS] [CONNECTIONS]    default 1800 s, 10,000 connections (about 35 min)
#   scripts/soak.sh --ci                       the 2-minute version CI runs (10,000 connections)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --ci ]; then seconds=120; connections=10000; warmup=30
else seconds="${1:-1800}"; connections="${2:-10000}"; warmup=$(( seconds / 4 < 300 ? seconds / 4 : 300 )); fi
if ! [[ "$seconds" =~ ^[0-9]+$ && "$connections" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/soak.sh [SECONDS] [CONNECTIONS] | --ci" >&2; exit 64
fi

out=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

dotnet build src/Duplex.Cli -c Release --nologo -v quiet >/dev/null || { echo "soak: build failed" >&2; exit 1; }
duplex=(dotnet src/Duplex.Cli/bin/Release/net10.0/Duplex.Cli.dll)
ulimit -n 65536 2>/dev/null || true
"${duplex[@]}" serve --host 127.0.0.1 --port 0 >"$out/serve.log" 2>&1 &
server=$!
port=""
for _ in $(seq 1 150); do
  port=$(sed -n 's|.*serving ws://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out/serve.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { echo "soak: duplex serve did not start:" >&2; cat "$out/serve.log" >&2; exit 1; }

echo "soak: $connections connections for $seconds s against duplex serve on 127.0.0.1:$port"
timeout $(( seconds + 300 )) "${duplex[@]}" bench soak "ws://127.0.0.1:$port" \
  --connections "$connections" --duration "$seconds" --warmup "$warmup" --sample 10
status=$?

# A server that soaked must still stop promptly.
kill -TERM "$server"
for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server" 2>/dev/null; then
  echo "soak: the server did not stop within 10 s of SIGTERM" >&2; status=1
else
  server=""
fi
if grep -qE "Unhandled exception|   at Duplex" "$out/serve.log"; then
  echo "soak: the server logged an unhandled exception:" >&2
  grep -m 5 -A 5 -E "Unhandled exception|   at Duplex" "$out/serve.log" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "soak: passed" || echo "soak: FAILED" >&2
exit "$status"
