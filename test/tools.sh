#!/usr/bin/env bash
# test/tools.sh: install every tool the tests need, cached by version under .cache/tools.
# Idempotent; prints the directory to put on PATH. Needs root for apt-get.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/.cache/tools
CONTAINERD_VER=v2.4.2 CRICTL_VER=v1.37.0 GOLANGCI_VER=v2.15.0
mkdir -p "$T/bin"

apt_pkgs=(runc busybox-static musl-tools)
[ "${WITH_PODMAN:-1}" = 1 ] && apt_pkgs+=(podman)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

build() { # dir pkg@ver...
  local d=$T/$1; shift
  if [ ! -f "$d/.done" ]; then
    mkdir -p "$d"
    echo "building $* into $d" >&2
    GOBIN=$d CGO_ENABLED=0 go install "$@" >&2
    touch "$d/.done"
  fi
  ln -sf "$d"/* "$T/bin/"
}
if [ "${TOOLS:-all}" = all ] || [ "${TOOLS:-}" = e2e ]; then
  build containerd-$CONTAINERD_VER github.com/containerd/containerd/v2/cmd/{containerd,ctr,containerd-shim-runc-v2}@$CONTAINERD_VER
  build crictl-$CRICTL_VER sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VER
fi
if [ "${TOOLS:-all}" = all ] || [ "${TOOLS:-}" = lint ]; then
  build golangci-lint-$GOLANGCI_VER github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_VER
fi
echo "$T/bin"
