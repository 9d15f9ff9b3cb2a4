#!/usr/bin/env bash
# A local scale-out demo: redis-server, three `duplex serve` nodes joined through it, and nginx in
# front of them (deploy/nginx.conf), all on 127.0.0.1.
#   scripts/cluster.sh up      build, start everything, wait until it answers (at most ~60 s)
#   scripts/cluster.sh down    stop everything that `up` started
#   scripts/cluster.sh status  what runs
# Browse http://127.0.0.1:8080/ (the chat page, served through nginx by whichever node), or
# `duplex connect ws://127.0.0.1:8080/hub`. Nodes listen on 8081-8083, Redis on 6390.
# State, logs and PIDs live in $DUPLEX_CLUSTER_DIR (default /tmp/duplex-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dir=${DUPLEX_CLUSTER_DIR:-/tmp/duplex-cluster}
redis_port=6390
nodes=(8081 8082 8083)
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

stop_pid() { # name pidfile
  [ -f "$2" ] || return 0
  local pid; pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "cluster: stopped $1 (pid $pid)"
  fi
  rm -f "$2"
}

wait_http() { # url seconds
  for _ in $(seq $(($2 * 10))); do
    curl -fs -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "cluster: $1 did not answer within $2 s" >&2
  return 1
}

down() {
  stop_pid nginx "$dir/nginx.pid"
  for port in "${nodes[@]}"; do stop_pid "node $port" "$dir/node-$port.pid"; done
  stop_pid redis "$dir/redis.pid.keep"
}

up() {
  # redis-server and nginx come from Debian's packages: install them when they are missing.
  if ! command -v redis-server >/dev/null || ! [ -x "$nginx_bin" ]; then
    ./scripts/install-peers.sh
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  fi
  for tool in redis-server curl dotnet; do
    command -v "$tool" >/dev/null || { echo "cluster: $tool is not installed (scripts/install-peers.sh installs the peers)" >&2; exit 1; }
  done
  [ -x "$nginx_bin" ] || { echo "cluster: nginx is not installed (apt-get install nginx)" >&2; exit 1; }
  down >/dev/null
  mkdir -p "$dir/logs" "$dir/tmp" "$dir/redis"
  echo "cluster: building duplex into $dir/bin"
  timeout 300 dotnet build src/Duplex.Cli -c Release -o "$dir/bin" -v quiet -nologo >"$dir/logs/build.log" 2>&1 \
    || { tail -20 "$dir/logs/build.log" >&2; exit 1; }

  redis-server --bind 127.0.0.1 --port $redis_port --save '' --appendonly no --dir "$dir/redis" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/logs/redis.log"
  for _ in $(seq 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
  cp "$dir/redis.pid" "$dir/redis.pid.keep" # redis deletes its own pidfile when it stops
  echo "cluster: redis on 127.0.0.1:$redis_port"

  local n=0
  for port in "${nodes[@]}"; do
    n=$((n + 1))
    nohup "$dir/bin/Duplex.Cli" serve --port "$port" --redis "127.0.0.1:$redis_port" --node-id "node$n" \
      >"$dir/logs/node$n.log" 2>&1 &
    echo $! >"$dir/node-$port.pid"
  done
  for port in "${nodes[@]}"; do wait_http "http://127.0.0.1:$port/healthz" 30; done
  echo "cluster: nodes on 127.0.0.1:${nodes[*]}"

  "$nginx_bin" -p "$dir" -e logs/error.log -c "$repo/deploy/nginx.conf"
  wait_http "http://127.0.0.1:8080/healthz" 10
  echo "cluster: nginx on http://127.0.0.1:8080/ (chat page), ws://127.0.0.1:8080/hub; logs in $dir/logs"
  echo "cluster: stop it all with scripts/cluster.sh down"
}

status() {
  for f in "$dir"/nginx.pid "$dir"/node-*.pid "$dir/redis.pid.keep"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); name=$(basename "$f" | sed 's/\.pid.*//')
    if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: scripts/cluster.sh up|down|status" >&2; exit 64 ;;
esac
