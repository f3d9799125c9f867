#!/usr/bin/env bash
# Builds the Dockerfile's image with podman and runs the main job in it on the bundled demo
# shop: `shelf demo` indexes the catalogue with vectors (the encoder on ONNX Runtime), trains
# the learned rankers (LightGBM needs libgomp) and serves; the script then asks the server
# for a learned-ranker search and checks the answer. About 25 minutes on 2 cores, most of it
# compiling. Not part of `./run.sh test`: it needs a container engine and the base images.
#
#   scripts/container-check.sh                   # image tag shelf:check, port 18080
#   IMAGE=shelf:dev PORT=8081 scripts/container-check.sh
#   SKIP_BUILD=1 scripts/container-check.sh      # run an image built before
#
# Base images come from Docker Hub, or from scripts/container-bases.sh where Docker Hub is out
# of reach. Hosts where podman cannot set resource limits or drive cgroups v1 in hybrid mode
# (a sandbox without CAP_SYS_RESOURCE, say) point CONTAINERS_CONF at a file holding
#   [containers]
#   default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
#   [engine]
#   runtime = "runc"
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-shelf:check}"
PORT="${PORT:-18080}"
say() { printf '\033[1mcontainer-check:\033[0m %s\n' "$*" >&2; }
command -v podman >/dev/null || { say "podman is missing: apt-get install podman"; exit 1; }

started=$(date +%s)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building $IMAGE (log: /tmp/shelf-container-build.log)"
  podman build --network host -t "$IMAGE" . >/tmp/shelf-container-build.log 2>&1 \
    || { tail -30 /tmp/shelf-container-build.log >&2; say "build failed"; exit 1; }
  say "built in $(($(date +%s) - started)) s"
fi
say "$IMAGE: $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes"

# The demo writes its index, model and event log beside the catalogue: a scratch copy the
# image's unprivileged user may write to.
shop=$(mktemp -d)
name="shelf-check-$$"
trap 'podman rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$shop"' EXIT
mkdir -p "$shop/demo" "$shop/queries"
cp demo/products.jsonl "$shop/demo/"
cp queries/demo.tsv queries/demo.qrels "$shop/queries/"
chmod -R a+rwX "$shop"

say "shelf demo in the container (index, train, serve on port $PORT)"
podman run -d --name "$name" --network host -v "$shop:/shop" "$IMAGE" \
  demo --root /shop --addr "127.0.0.1:$PORT" >/dev/null
for _ in $(seq 1 900); do
  if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then break; fi
  if [ "$(podman inspect -f '{{.State.Running}}' "$name")" != true ]; then
    podman logs "$name" | tail -30 >&2
    say "the container stopped before serving"
    exit 1
  fi
  sleep 2
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { podman logs "$name" | tail -30 >&2; say "not ready after 30 minutes"; exit 1; }

podman logs "$name" 2>&1 | grep -E "built the demo index|trained the demo model" >&2 || true
# The learned ranker (LightGBM, with its SHAP explanations) over candidates the encoder found.
answer=$(curl -sf "http://127.0.0.1:$PORT/search?q=something+to+put+my+tv+on&ranker=ltr&k=5&explain=true")
python3 - "$answer" <<'EOF'
import json, sys
answer = json.loads(sys.argv[1])
hits = answer["results"]
assert answer["ranker"] == "ltr", answer["ranker"]
assert len(hits) == 5, hits
assert all(len(hit["explain"]["features"]) > 30 for hit in hits), "every result explained"
assert any("dense" in hit["sources"] for hit in hits), "the encoder proposed candidates"
assert answer["timings_ms"].get("rank") is not None, answer["timings_ms"]
print("\n".join(f"  {hit['rank']}. {hit['title']}" for hit in hits))
EOF
say "passed: the image indexed, trained and served the demo shop ($(($(date +%s) - started)) s in all)"
