#!/usr/bin/env bash
# test/k8s/tools.sh: build what the Kubernetes suite needs, cached by version under .cache/tools:
#   k8s-<ver>/      etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl
#   helm-<ver>/     helm (lint/template/install of deploy/helm/gpu-nri)
#   nvidia-device-plugin-<ver>/  NVIDIA's k8s-device-plugin (cgo; dlopens libnvidia-ml.so.1 through go-nvml)
#   nvidia-cdi-hook-<ver>/       NVIDIA's CDI hook, which the device plugin's CDI specs run
# and Debian's containernetworking-plugins (the bridge CNI of the test cluster) when missing.
# TestKubernetes (test/k8s, build tag k8s) runs it and puts the printed directory on PATH.
# Kubernetes and etcd are built from the Go module proxy through the scratch modules pinned in
# test/k8s/modules/{etcd,k8s} (their upstream main modules carry replace directives, so a plain
# `go install pkg@ver` is refused). Cold: ~12 min and ~5 GB of Go build cache; warm: seconds.
#   TOOLS=all|k8s|helm|deviceplugin|cni   (default all)      REGEN=1  regenerate the pinned scratch modules
# Prints the directory to put on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$ROOT/.cache/tools
MODS=$ROOT/test/k8s/modules
K8S_VER=v1.37.2 K8S_STAGING=v0.37.2 ETCD_VER=v3.6.16 HELM_VER=v3.22.0 NVDP_VER=v0.19.0 CDIHOOK_VER=v1.20.2
mkdir -p "$T/bin"

regen() { # rewrite the pinned scratch modules from the module proxy
  local m=$MODS/etcd k=$MODS/k8s
  mkdir -p "$m" "$k"
  (cd "$m" && rm -f go.mod go.sum && go mod init gpu-nri.test/etcd >/dev/null 2>&1
   printf '\nrequire go.etcd.io/etcd/server/v3 %s\n\nreplace (\n' $ETCD_VER >>go.mod
   for x in api/v3 client/pkg/v3 client/v3 pkg/v3; do printf '\tgo.etcd.io/etcd/%s => go.etcd.io/etcd/%s %s\n' $x $x $ETCD_VER >>go.mod; done
   echo ')' >>go.mod
   printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
   go mod tidy)
  (cd "$k" && rm -f go.mod go.sum && go mod init gpu-nri.test/k8s >/dev/null 2>&1
   local km; km=$(go mod download -json k8s.io/kubernetes@$K8S_VER | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
   { printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' $K8S_VER
     sed -n '/^replace (/,/^)/p' "$km" | awk -v v=$K8S_STAGING '/=>/ {print "\t"$1" => "$1" "v}'; echo ')'; } >>go.mod
   { printf '//go:build tools\n\npackage tools\n\nimport (\n'
     for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' $c; done
     echo ')'; } >tools.go
   go mod tidy)
}

k8s() {
  local d=$T/k8s-$K8S_VER-etcd-$ETCD_VER
  exec 9>"$T/.k8s.lock"; flock 9   # one build at a time; a second caller waits for the first
  if [ ! -f "$d/.done" ]; then
    [ "${REGEN:-0}" = 1 ] || [ ! -f "$MODS/k8s/go.sum" ] || [ ! -f "$MODS/etcd/go.sum" ] && regen
    mkdir -p "$d"
    echo "building etcd $ETCD_VER and Kubernetes $K8S_VER into $d (cold: ~12 min)" >&2
    (cd "$MODS/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$d/etcd" go.etcd.io/etcd/server/v3) >&2
    local ld="-s -w" p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $p.gitVersion=$K8S_VER -X $p.gitMajor=1 -X $p.gitMinor=37 -X $p.gitTreeState=clean"; done
    (cd "$MODS/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$d/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl) >&2
    touch "$d/.done"
  fi
  ln -sf "$d"/* "$T/bin/"
}

helm() {
  local d=$T/helm-$HELM_VER
  exec 8>"$T/.helm.lock"; flock 8
  if [ ! -f "$d/.done" ]; then
    mkdir -p "$d"
    echo "building helm $HELM_VER into $d" >&2
    GOBIN=$d CGO_ENABLED=0 go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VER -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37" helm.sh/helm/v3/cmd/helm@$HELM_VER >&2
    touch "$d/.done"
  fi
  ln -sf "$d"/* "$T/bin/"
}

deviceplugin() { # NVIDIA's k8s-device-plugin: the module proxy refuses its version list, the exact version downloads
  local d=$T/nvidia-device-plugin-$NVDP_VER
  exec 7>"$T/.nvdp.lock"; flock 7
  if [ ! -f "$d/.done" ]; then
    mkdir -p "$d"
    echo "building NVIDIA's k8s-device-plugin $NVDP_VER into $d" >&2
    local src; src=$(go mod download -json github.com/NVIDIA/k8s-device-plugin@$NVDP_VER | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
    [ -d "$src" ] || { echo "go mod download of k8s-device-plugin $NVDP_VER failed" >&2; exit 1; }
    local w; w=$(mktemp -d); cp -r "$src/." "$w/"; chmod -R u+w "$w"; rm -rf "$w/vendor"  # the module zip keeps vendor/ but not a consistent modules.txt
    (cd "$w" && CGO_ENABLED=1 GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags "-s -w" -o "$d/nvidia-device-plugin" ./cmd/nvidia-device-plugin) >&2
    rm -rf "$w"; touch "$d/.done"
  fi
  ln -sf "$d"/* "$T/bin/"
  local h=$T/nvidia-cdi-hook-$CDIHOOK_VER
  if [ ! -x "$h/nvidia-cdi-hook" ]; then
    echo "building NVIDIA's nvidia-cdi-hook $CDIHOOK_VER into $h" >&2
    mkdir -p "$h"
    # cgo: its go-nvml dependency has no pure-Go build.
    GOBIN=$h CGO_ENABLED=1 go install -trimpath -ldflags "-s -w" github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-cdi-hook@$CDIHOOK_VER >&2
  fi
  ln -sf "$h/nvidia-cdi-hook" "$T/bin/"
}

cni() {
  [ -x /usr/lib/cni/bridge ] && return 0
  apt-get install -y -q containernetworking-plugins >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q containernetworking-plugins >/dev/null; } >&2
}

case "${TOOLS:-all}" in
  all) helm; k8s; deviceplugin; cni ;;
  deviceplugin) deviceplugin ;;
  cni) cni ;;
  k8s) k8s ;;
  helm) helm ;;
  regen) regen ;;
  *) echo "TOOLS must be all, k8s, helm, deviceplugin, cni or regen" >&2; exit 2 ;;
esac
echo "$T/bin"
