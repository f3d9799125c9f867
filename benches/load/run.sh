#!/usr/bin/env bash
# Load test: a real `shelf serve` on loopback, driven by wrk with a real query log.
#   benches/load/run.sh INDEX_DIR QUERIES_TSV [CONNECTIONS] [SECONDS]
# Needs wrk (Debian package `wrk`) and a release build (`cargo build --release`).
set -euo pipefail
index="$1" queries="$2" connections="${3:-16}" seconds="${4:-20}"
shelf="${CARGO_TARGET_DIR:-target}/release/shelf"
addr=127.0.0.1:18080
"$shelf" serve --index "$index" --addr "$addr" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://$addr/healthz" >/dev/null && break; sleep 0.1; done
threads=$((connections < 2 ? 1 : 2))
QUERIES="$queries" wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$(dirname "$0")/search.lua" "http://$addr" | grep -E "Requests/sec|requests "
curl -sf "http://$addr/healthz" >/dev/null && echo "server still healthy"
