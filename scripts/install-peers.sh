#!/usr/bin/env bash
# Installs the real peers the tests talk to: Python websockets, Chromium, OpenSSL, redis-server and nginx from
# Debian's packages, Node's ws from the npm registry (into tests/peers/node). As root (as in
# CI) it installs what is missing; otherwise it says what to install. Bounded in time.
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()
/usr/bin/python3 -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "install-peers: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >/dev/null || echo "install-peers: apt-get update failed" >&2
    timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "install-peers: apt-get install ${missing[*]} failed" >&2
    # The tests start nginx and redis-server themselves, on 127.0.0.1 and free ports: stop the
    # services a package may have started on their default ports.
    if [[ " ${missing[*]} " == *" nginx "* ]] && [ -f /run/nginx.pid ]; then /usr/sbin/nginx -s stop 2>/dev/null || true; fi
    if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -f /run/redis/redis-server.pid ]; then kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true; fi
  else
    echo "install-peers: missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    echo "install-peers: (the interop tests that need them will fail until then)" >&2
  fi
fi

if command -v npm >/dev/null 2>&1 && { [ ! -d tests/peers/node/node_modules/ws ] || [ ! -d tests/peers/node/node_modules/typescript ]; }; then
  echo "install-peers: installing the npm packages of tests/peers/node"
  (cd tests/peers/node && timeout 300 npm ci --no-audit --no-fund --loglevel=error) \
    || echo "install-peers: npm ci in tests/peers/node failed" >&2
fi
exit 0
