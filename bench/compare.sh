#!/usr/bin/env bash
# Side by side: ASP.NET Core's built-in WebSockets (Kestrel + UseWebSockets, bench/KestrelEcho)
# against `duplex serve`, on this machine, in one run. Both servers are pinned to core 0 and the
# load generator (`duplex bench`) to core 1. Every scenario runs on both, alternating A B A B,
# and the table gives the median of each and the ratio; then Duplex's hub fan-out (1,000 and
# 10,000 subscribers) against its own echo rate. Takes about ten minutes.
#   bench/compare.sh [--rounds N] [--quick] [--hosted]
#     --quick: shorter runs, for a smoke test
#     --hosted: Duplex hosted by Kestrel (Duplex.AspNetCore's MapDuplex, bench/KestrelEcho --duplex)
#               instead of `duplex serve`: both servers then share Kestrel's transport
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2; seconds=10; warm=20; idle=10000; hosted=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --quick) seconds=2; warm=3; idle=2000; shift ;;
    --hosted) hosted=1; shift ;;
    *) echo "usage: bench/compare.sh [--rounds N] [--quick] [--hosted]" >&2; exit 64 ;;
  esac
done
[ "$(nproc)" -ge 2 ] || { echo "compare.sh needs 2 cores (server on one, load on the other)" >&2; exit 1; }

echo "building (Release)..." >&2
dotnet build src/Duplex.Cli -c Release --nologo -v quiet >/dev/null
dotnet build bench/KestrelEcho -c Release --nologo -v quiet >/dev/null
duplex="dotnet src/Duplex.Cli/bin/Release/net10.0/Duplex.Cli.dll"
kestrel="dotnet bench/KestrelEcho/bin/Release/net10.0/KestrelEcho.dll"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kport=$(free_port); dport=$(free_port)
taskset -c 0 $kestrel --port "$kport" >/dev/null 2>&1 & pids+=($!); kpid=$!
if [ "$hosted" = 1 ]; then
  taskset -c 0 $kestrel --port "$dport" --duplex >/dev/null 2>&1 & pids+=($!); dpid=$!
  label="Duplex on Kestrel"
else
  taskset -c 0 $duplex serve --port "$dport" --quiet >/dev/null 2>&1 & pids+=($!); dpid=$!
  label="Duplex"
fi
for port in "$kport" "$dport"; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
url() { [ "$1" = kestrel ] && echo "ws://127.0.0.1:$kport/echo" || echo "ws://127.0.0.1:$dport/echo"; }
pid() { [ "$1" = kestrel ] && echo "$kpid" || echo "$dpid"; }
bench() { taskset -c 1 $duplex bench "$@" --json --quiet; }

echo "warming up both servers under full load (${warm} s each: the JIT needs it)..." >&2
for s in kestrel duplex; do bench echo "$(url $s)" --duration "$warm" --warmup 0 >/dev/null; done

for round in $(seq 1 "$rounds"); do
  for s in kestrel duplex; do
    echo "round $round: $s" >&2
    bench echo "$(url $s)" --connections 100 --in-flight 16 --size 32 --duration "$seconds" >>"$out/$s.small"
    bench echo "$(url $s)" --connections 1 --in-flight 1 --size 32 --text --duration "$seconds" >>"$out/$s.latency"
    bench echo "$(url $s)" --connections 10 --in-flight 4 --size 65536 --duration "$seconds" >>"$out/$s.large"
    bench handshake "$(url $s)" --parallel 4 --duration "$(( seconds / 2 > 0 ? seconds / 2 : 1 ))" >>"$out/$s.handshake"
  done
done
# RSS moves with the GC's timing as well as with the connections: idle is measured each round too.
for round in $(seq 1 "$rounds"); do
  for s in kestrel duplex; do
    echo "round $round: idle: $s" >&2
    bench idle "$(url $s)" --connections "$idle" --pid "$(pid $s)" >>"$out/$s.idle"
    echo "round $round: idle with permessage-deflate: $s" >&2
    bench idle "$(url $s)" --connections "$idle" --pid "$(pid $s)" --compress >>"$out/$s.idlez"
  done
done

# Hub fan-out (Duplex only: Kestrel has no hub): one publisher, 100-byte messages, subscribers
# that check every offset. Compared with Duplex's own small-message echo rate from this run.
fanout_sizes=""
if [ "$hosted" = 0 ]; then
  fanout_sizes="1000 $idle"
  for round in $(seq 1 "$rounds"); do
    for n in $fanout_sizes; do
      echo "round $round: fan-out to $n subscribers" >&2
      bench fanout "ws://127.0.0.1:$dport/hub" --subscribers "$n" --size 100 --duration "$seconds" --pid "$dpid" >>"$out/duplex.fanout$n" || true
    done
  done
fi

python3 - "$out" "$idle" "$label" "$fanout_sizes" <<'PY'
import json, os, statistics, sys
out, idle, label = sys.argv[1], sys.argv[2], sys.argv[3]
def runs(server, scenario):
    with open(os.path.join(out, f"{server}.{scenario}")) as f:
        return [json.loads(line) for line in f if line.strip()]
def median(server, scenario, get):
    return statistics.median(get(r) for r in runs(server, scenario))
rows = []
def row(scenario, name, unit, get, higher_better=True, target=None):
    k, d = median("kestrel", scenario, get), median("duplex", scenario, get)
    ratio = (d / k) if higher_better else (k / d if d else float("inf"))
    rows.append((name, unit, k, d, ratio, target))
row("small", "small msgs/s (100 conns x 16 x 32 B)", "msgs/s", lambda r: r["messagesPerSecond"], target=">= 2.0x")
row("latency", "latency p50 (1 x 1 x 32 B text)", "us", lambda r: r["latencyMicroseconds"]["p50"], higher_better=False, target="<= Kestrel")
row("latency", "latency p99 (1 x 1 x 32 B text)", "us", lambda r: r["latencyMicroseconds"]["p99"], higher_better=False, target="<= Kestrel")
row("large", "large MB/s (10 conns x 4 x 64 KiB)", "MB/s", lambda r: r["megabytesPerSecond"], target=">= 2.0x")
row("idle", "idle memory per connection", "KiB", lambda r: r["kibPerConnection"], higher_better=False, target="<= 4 KiB")
row("idlez", "idle memory per connection, permessage-deflate", "KiB", lambda r: r["kibPerConnection"], higher_better=False, target="bounded")
row("handshake", "handshakes/s (4 in parallel)", "/s", lambda r: r["handshakesPerSecond"], target=">= 1.5x")
print(f"| scenario | Kestrel | {label} | {label} vs Kestrel | target |")
print(f"|---|---:|---:|---:|---|")
for name, unit, k, d, ratio, target in rows:
    fmt = (lambda v: f"{v:,.0f}") if max(k, d) >= 100 else (lambda v: f"{v:,.2f}")
    better = "better" if ratio >= 1 else "worse"
    print(f"| {name} | {fmt(k)} {unit} | {fmt(d)} {unit} | {ratio:.2f}x {better} | {target} |")
print()
print(f"median of each scenario's runs; idle measured with {idle} connections; server on core 0, load on core 1")
sizes = sys.argv[4].split()
if sizes:
    echo = median("duplex", "small", lambda r: r["messagesPerSecond"])
    print()
    print("| hub fan-out, 100 B | deliveries/s | vs Duplex's echo msgs/s | latency p50 / p99 | server CPU per delivery | server CPU | generator CPU | lost, gaps, duplicates |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        rs = runs("duplex", f"fanout{n}")
        if not rs:
            print(f"| {int(n):,} subscribers | (no result) | | | | | | |")
            continue
        m = lambda get: statistics.median(get(r) for r in rs)
        rate = m(lambda r: r["deliveriesPerSecond"])
        faults = sum(r["lost"] + r["gaps"] + r["duplicates"] for r in rs)
        print(f"| {int(n):,} subscribers | {rate:,.0f} | {rate / echo:.2f}x | {m(lambda r: r['latencyMicroseconds']['p50']) / 1000:,.1f} / {m(lambda r: r['latencyMicroseconds']['p99']) / 1000:,.1f} ms "
              f"| {m(lambda r: r.get('serverCpuNanosecondsPerDelivery', 0)):,.0f} ns | {m(lambda r: r.get('serverCpuPercent', 0)):.0f}% | {m(lambda r: r['generatorCpuPercent']):.0f}% | {faults} |")
    print()
    print(f"median of {len(rs)} runs each; echo: {echo:,.0f} msgs/s (100 x 16 x 32 B, this run); a generator near 100% is the limit, not the server")
PY
