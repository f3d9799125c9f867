#!/usr/bin/env bash
# Makes the Dockerfile's two base images locally, for hosts that reach Debian's mirrors and
# static.rust-lang.org but not Docker Hub (the project's build machines are such hosts):
#   docker.io/library/debian:bookworm-slim   a minimal Debian 12 made by debootstrap
#   docker.io/library/rust:1-bookworm        that plus a C compiler and stable Rust (rustup)
# With both tagged locally, `podman build` (pull policy "missing") never contacts a registry.
# Needs root, podman and debootstrap (`apt-get install podman debootstrap`).
#
# A network that intercepts TLS has its own certificate authorities: any in
# /usr/local/share/ca-certificates are copied into the images, or `apt-get install
# ca-certificates`, pip and cargo inside the build would refuse the proxy.
#
#   scripts/container-bases.sh
# (Hosts where podman needs runc and explicit resource limits: CONTAINERS_CONF, as
# scripts/container-check.sh's header shows.)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1mcontainer-bases:\033[0m %s\n' "$*" >&2; }
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || { say "$tool is missing: apt-get install podman debootstrap"; exit 1; }
done
[ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "debootstrap bookworm (minbase) into $work/root"
debootstrap --variant=minbase bookworm "$work/root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
changes=(--change 'CMD ["bash"]')
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  say "adding this host's extra certificate authorities: $(ls /usr/local/share/ca-certificates | tr '\n' ' ')"
  mkdir -p "$work/root/usr/local/share/ca-certificates" "$work/root/etc/ssl/certs"
  cp /usr/local/share/ca-certificates/*.crt "$work/root/usr/local/share/ca-certificates/"
  cp /etc/ssl/certs/ca-certificates.crt "$work/root/etc/ssl/certs/"
  # pip carries its own bundle unless told otherwise.
  changes+=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
fi
tar -C "$work/root" -c . | podman import "${changes[@]}" - docker.io/library/debian:bookworm-slim >/dev/null
say "tagged docker.io/library/debian:bookworm-slim"

cat >"$work/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates curl gcc libc6-dev git \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN curl -sSf https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init -o /tmp/rustup-init \
 && chmod +x /tmp/rustup-init && /tmp/rustup-init -y --profile minimal --no-modify-path && rm /tmp/rustup-init \
 && rustc --version
EOF
podman build --network host -t docker.io/library/rust:1-bookworm -f "$work/Containerfile" "$work" >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log" >&2; exit 1; }
say "tagged docker.io/library/rust:1-bookworm ($(podman run --rm docker.io/library/rust:1-bookworm rustc --version))"
