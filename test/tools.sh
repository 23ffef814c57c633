#!/usr/bin/env bash
# test/tools.sh: install every tool the tests need, cached by version under .cache/tools.
# Idempotent; prints the directory to put on PATH. Needs root for apt-get.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/.cache/tools
CONTAINERD_VER=v2.4.2 CRICTL_VER=v1.37.0 GOLANGCI_VER=v2.15.0 CRIO_VER=v1.34.0
mkdir -p "$T/bin"

apt_pkgs=(python3.11 runc busybox-static musl-tools libyajl-dev libseccomp-dev libcap-dev shellcheck)
[ "${WITH_PODMAN:-1}" = 1 ] && apt_pkgs+=(podman)
# CRI-O (TOOLS=e2e): conmon runs its containers, Podman loads the suite's images into its
# containers-storage; cgo + libseccomp-dev (above) for the seccomp build tag, static libc for pinns.
# No libgpgme: the containers_image_openpgp tag uses a Go OpenPGP instead; btrfs and devicemapper
# are excluded by tags, so their headers are not needed either.
case "${TOOLS:-all}" in all | e2e) apt_pkgs+=(conmon podman gcc libc6-dev make pkg-config) ;; esac
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
# crun: Debian bookworm's crun 1.8.1 cannot read containerd 2.x's OCI spec 1.2 ("unknown version
# specified", fixed in crun 1.14.3) and trixie's binary needs glibc 2.38, so crun is built from
# the upstream tarball Debian trixie ships (sha256 as in trixie's signed Sources index) against
# bookworm's libraries. Optional: when it cannot be built, the crun scenarios are skipped.
CRUN_VER=1.21 CRUN_SHA256=4bfb700e764a4804a4de3ecf07753f4c391005356d60356df65d80ae0914c486
build_crun() {
  local d=$T/crun-$CRUN_VER src
  if [ ! -x "$d/crun" ]; then
    echo "building crun $CRUN_VER into $d" >&2
    src=$(mktemp -d)
    curl -fsSL -o "$src/crun.tar.gz" "http://deb.debian.org/debian/pool/main/c/crun/crun_$CRUN_VER.orig.tar.gz" &&
      echo "$CRUN_SHA256  $src/crun.tar.gz" | sha256sum -c --quiet - &&
      tar -C "$src" -xzf "$src/crun.tar.gz" &&
      (cd "$src/crun-$CRUN_VER" && ./configure --disable-systemd --disable-shared && make git-version.h .version && make -j"$(nproc)" crun) >"$src/build.log" 2>&1 &&
      mkdir -p "$d" && cp "$src/crun-$CRUN_VER/crun" "$d/crun" ||
      { echo "crun $CRUN_VER not built (the crun scenarios will be skipped): $(tail -3 "$src/build.log" 2>/dev/null)" >&2; rm -rf "$src"; return 0; }
    rm -rf "$src"
  fi
  ln -sf "$d/crun" "$T/bin/crun"
}
# CRI-O: the Go module proxy refuses cri-o's version list (403), so `go install ...@v` fails, but
# the exact version downloads: `go mod download` it (outside any module), copy the read-only
# module dir, build crio with upstream's build tags (openpgp instead of gpgme, no btrfs or
# devicemapper graph drivers, seccomp) and pinns (static C) from it. About 5 min cold.
build_crio() {
  local d=$T/crio-$CRIO_VER src mod
  if [ ! -f "$d/.done" ]; then
    echo "building CRI-O $CRIO_VER into $d" >&2
    src=$(mktemp -d)
    mod=$(cd "$src" && GOFLAGS=-mod=mod GO111MODULE=on go mod download -json "github.com/cri-o/cri-o@$CRIO_VER" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$mod" ] && [ -d "$mod" ] || { echo "go mod download github.com/cri-o/cri-o@$CRIO_VER gave no Dir" >&2; rm -rf "$src"; return 1; }
    cp -r "$mod" "$src/cri-o" && chmod -R u+w "$src/cri-o"
    (cd "$src/cri-o" &&
      CGO_ENABLED=1 go build -trimpath -tags 'containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp' -o bin/crio ./cmd/crio &&
      make -C pinns) >&2 || { echo "CRI-O $CRIO_VER build failed" >&2; rm -rf "$src"; return 1; }
    rm -rf "$d.tmp" && mkdir -p "$d.tmp" && cp "$src/cri-o/bin/crio" "$src/cri-o/bin/pinns" "$d.tmp/" && touch "$d.tmp/.done"
    rm -rf "$d" && mv "$d.tmp" "$d"
    rm -rf "$src"
  fi
  ln -sf "$d/crio" "$d/pinns" "$T/bin/"
}
if [ "${TOOLS:-all}" = all ] || [ "${TOOLS:-}" = e2e ]; then
  build_crun
  build_crio
  build containerd-$CONTAINERD_VER github.com/containerd/containerd/v2/cmd/{containerd,ctr,containerd-shim-runc-v2}@$CONTAINERD_VER
  build crictl-$CRICTL_VER sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VER
fi
if [ "${TOOLS:-all}" = all ] || [ "${TOOLS:-}" = e2e ] || [ "${TOOLS:-}" = debs ]; then
  bash "$ROOT/test/nvidia-debs.sh" all >/dev/null   # NVIDIA's real driver userland, libcudart, pynvml (Debian non-free)
fi
# NVIDIA's container toolkit (nvidia-container-runtime, nvidia-ctk, nvidia-cdi-hook), cgo (go-nvml
# dlopens libnvidia-ml): the e2e benchmark's baseline only (TOOLS=nvidia; not part of "all", so CI
# does not build it). strace: the benchmark's syscall counts.
NVTK_VER=v1.20.2
if [ "${TOOLS:-}" = nvidia ]; then
  d=$T/nvidia-toolkit-$NVTK_VER
  if [ ! -f "$d/.done" ]; then
    mkdir -p "$d"
    echo "building NVIDIA container toolkit $NVTK_VER into $d" >&2
    GOBIN=$d CGO_ENABLED=1 go install github.com/NVIDIA/nvidia-container-toolkit/cmd/{nvidia-container-runtime,nvidia-ctk,nvidia-cdi-hook}@$NVTK_VER >&2
    touch "$d/.done"
  fi
  if ! command -v strace >/dev/null && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends strace >&2 || true
  fi
  echo "$d"
  exit 0
fi
if [ "${TOOLS:-all}" = all ] || [ "${TOOLS:-}" = lint ]; then
  build golangci-lint-$GOLANGCI_VER github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_VER
fi
echo "$T/bin"
