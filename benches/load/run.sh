#!/usr/bin/env bash
# Load test: a real `shelf serve` on loopback, driven with a real query log.
#   benches/load/run.sh INDEX_DIR QUERIES_TSV [CONNECTIONS] [SECONDS]
# Environment: MODEL=DIR serves a learned ranker (`--model`), RANKER=NAME asks for one
# (default: the server's default); EVENTS=FILE logs impressions and takes events
# (`--events`), EXPLORE=true asks every search to explore. Reports, in one run:
#   cold  every distinct query once, one at a time (query vectors not cached yet);
#   warm  wrk cycling the queries at CONNECTIONS for SECONDS (vectors cached);
#   ingest (with EVENTS) POST /events for SECONDS while wrk searches at CONNECTIONS;
#   the server's peak RSS.
# Needs wrk (Debian package `wrk`), python3 and a release build (`cargo build --release`).
set -euo pipefail
index="$1" queries="$2" connections="${3:-16}" seconds="${4:-20}"
shelf="${CARGO_TARGET_DIR:-target}/release/shelf"
addr=127.0.0.1:18080
model_args=()
[ -n "${MODEL:-}" ] && model_args=(--model "$MODEL")
[ -n "${EVENTS:-}" ] && model_args+=(--events "$EVENTS")
"$shelf" serve --index "$index" "${model_args[@]}" --addr "$addr" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 600); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://$addr/readyz" >/dev/null || { echo "the server did not become ready"; exit 1; }
here="$(dirname "$0")"
EXPLORE="${EXPLORE:-}" python3 "$here/cold.py" "$addr" "$queries" "${RANKER:-}"
threads=$((connections < 2 ? 1 : 2))
QUERIES="$queries" RANKER="${RANKER:-}" EXPLORE="${EXPLORE:-}" wrk -t"$threads" -c"$connections" -d"${seconds}s" \
  --latency -s "$here/search.lua" "http://$addr" | grep -E "Requests/sec|requests "
if [ -n "${EVENTS:-}" ]; then
  QUERIES="$queries" RANKER="${RANKER:-}" EXPLORE="${EXPLORE:-}" wrk -t"$threads" -c"$connections" \
    -d"${seconds}s" --latency -s "$here/search.lua" "http://$addr" | sed 's/^/while ingesting: /' | grep -E "requests " &
  searching=$!
  python3 "$here/events.py" "$addr" "$queries" "$seconds"
  wait $searching
fi
echo "peak RSS $(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$server/status")"
curl -sf "http://$addr/healthz" >/dev/null && echo "server still healthy"
