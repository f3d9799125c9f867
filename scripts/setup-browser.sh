#!/usr/bin/env bash
# Installs what the workbench's browser tests need on Debian or Ubuntu, and nothing when it
# is already there: Chromium and its WebDriver server (chromedriver), from the distribution.
set -euo pipefail
say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  exit 0
fi
say "installing Chromium and chromedriver for the browser tests (Debian packages chromium, chromium-driver)"
sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
