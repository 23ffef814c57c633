#!/usr/bin/env bash
# test/k8s/run.sh (`make test-k8s`): gpu-nri's deployment files proven on a real single-node
# Kubernetes v1.37 (etcd, apiserver, controller-manager, scheduler, kubelet built from the Go module
# proxy by test/k8s/tools.sh) running on the private containerd of the e2e harness
# (test/e2e/lib.sh) with a simulated GPU host (test/simhost). Root only (a clear skip otherwise).
# Ends with one line "N passed, M failed"; exit status 1 when M > 0.
#
# The containerd runs with the repository's own drop-ins (deploy/runtime/containerd/v3: NRI on,
# required_plugins = ["gpu-nri"]), the gpu-nri image is built as an OCI archive from the static
# binary (same content as deploy/image/Dockerfile) and imported, and the manifests are applied
# through a test overlay that only moves host paths into the work dir (NRI socket dir, hook dir),
# points the config at the simulated host and turns the host root's mount propagation off (this
# machine's / is a private mount; HostToContainer needs a shared one).
#
#   K8S_E2E_DIR=/tmp/gpu-nri-k8s   work dir     K8S_ONLY="s1 s3"   run only these scenarios
#   E2E_KEEP=1                     leave the cluster running afterwards (debugging)
#   K8S_STOP_AFTER=runtime         stop after the runtime drop-in checks (no Kubernetes needed)
set -uo pipefail
export E2E_DIR=${K8S_E2E_DIR:-/tmp/gpu-nri-k8s}
# shellcheck source=test/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"

e2e_require_root
REPO=$E2E_REPO
K=$E2E/k8s
NODE=$(hostname)
BR=gnk8s0 SUBNET=10.251.0.0/24 ETCD=http://127.0.0.1:23791 APIPORT=6444
METRICS=http://127.0.0.1:9494
IMG=localhost/gpu-nri/gpu-nri
export KUBECONFIG=$K/admin.kubeconfig
T_START=$(now_ms)
want() { [ -z "${K8S_ONLY:-}" ] || [[ " $K8S_ONLY " == *" $1 "* ]]; }
waitfor() { # TIMEOUT_S CMD...: until CMD succeeds
  local to=$1 i; shift
  for i in $(seq $((to * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
k8s_start() { # NAME CMD...
  local n=$1; shift
  setsid "$@" >>"$K/logs/$n.log" 2>&1 </dev/null &
  echo $! >"$K/run/$n.pid"
}

# ------------------------------------------------------------------ cluster (after k8s-testbed.sh)
k8s_pki() {
  mkdir -p "$K/pki" && (
    cd "$K/pki" || exit 1
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -subj /CN=gpu-nri-test-ca -days 3650 -sha256 -out ca.crt 2>/dev/null
    leaf() { # name subject eku [san]
      openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"; [ -n "${4:-}" ] && echo "subjectAltName=$4"; } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    leaf apiserver /CN=kube-apiserver serverAuth \
      "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE,IP:127.0.0.1,IP:10.97.0.1"
    leaf admin "/O=system:masters/CN=gpu-nri-admin" clientAuth
    leaf kcm /CN=system:kube-controller-manager clientAuth
    leaf scheduler /CN=system:kube-scheduler clientAuth
    leaf kubelet "/O=system:nodes/CN=system:node:$NODE" clientAuth
    leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    leaf kubelet-serving "/CN=$NODE" serverAuth "DNS:$NODE,DNS:localhost,IP:127.0.0.1"
    openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ./*.srl
  )
  local u
  for u in admin kcm scheduler kubelet; do cat >"$K/$u.kubeconfig" <<EOF2
apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "https://127.0.0.1:$APIPORT", certificate-authority: $K/pki/ca.crt}}]
users: [{name: $u, user: {client-certificate: $K/pki/$u.crt, client-key: $K/pki/$u.key}}]
contexts: [{name: t, context: {cluster: t, user: $u}}]
current-context: t
EOF2
  done
}

k8s_cni() { # bridge + host-local (Debian's containernetworking-plugins), no gateway, no iptables
  mkdir -p "$E2E/cni/bin" "$E2E/cni/net.d" "$K/cni-ipam"
  local p; for p in bridge host-local loopback portmap; do ln -sf "/usr/lib/cni/$p" "$E2E/cni/bin/$p"; done
  cat >"$E2E/cni/net.d/10-gpu-nri-test.conflist" <<EOF2
{"cniVersion": "1.0.0", "name": "gpu-nri-test",
 "plugins": [{"type": "bridge", "bridge": "$BR", "isGateway": false, "ipMasq": false, "hairpinMode": false,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "$SUBNET"}]], "dataDir": "$K/cni-ipam"}}]}
EOF2
}

SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
k8s_up() {
  mkdir -p "$K/run" "$K/logs" "$K/kubelet" "$K/podlogs" "$K/etcd" "$K/certs"
  [ -f "$K/pki/ca.crt" ] || k8s_pki
  [ -f "$K/sysctl.orig" ] || sysctl $SYSCTLS >"$K/sysctl.orig"
  local d
  for d in /var/log/containers /var/lib/kubelet /var/lib/cni; do
    [ -e $d ] || grep -qx $d "$K/created" 2>/dev/null || echo $d >>"$K/created"
  done
  k8s_start etcd etcd --name t --data-dir "$K/etcd" --unsafe-no-fsync \
    --listen-client-urls $ETCD --advertise-client-urls $ETCD \
    --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
    --initial-cluster t=http://127.0.0.1:23801 --listen-metrics-urls=
  waitfor 60 curl -sf $ETCD/health || { tail -5 "$K/logs/etcd.log" >&2; return 1; }
  k8s_start kube-apiserver kube-apiserver --etcd-servers=$ETCD \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=$APIPORT --cert-dir="$K/certs" \
    --tls-cert-file="$K/pki/apiserver.crt" --tls-private-key-file="$K/pki/apiserver.key" --client-ca-file="$K/pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$K/pki/sa.pub" \
    --service-account-signing-key-file="$K/pki/sa.key" --service-cluster-ip-range=10.97.0.0/16 \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --kubelet-client-certificate="$K/pki/apiserver-kubelet-client.crt" --kubelet-client-key="$K/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=Hostname --endpoint-reconciler-type=none
  waitfor 180 kubectl get --raw /readyz || { tail -5 "$K/logs/kube-apiserver.log" >&2; return 1; }
  k8s_start kube-controller-manager kube-controller-manager --kubeconfig="$K/kcm.kubeconfig" \
    --authentication-kubeconfig="$K/kcm.kubeconfig" --authorization-kubeconfig="$K/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10267 --cert-dir="$K/certs" --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$K/pki/sa.key" --root-ca-file="$K/pki/ca.crt" \
    --cluster-signing-cert-file="$K/pki/ca.crt" --cluster-signing-key-file="$K/pki/ca.key"
  k8s_start kube-scheduler kube-scheduler --kubeconfig="$K/scheduler.kubeconfig" \
    --authentication-kubeconfig="$K/scheduler.kubeconfig" --authorization-kubeconfig="$K/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10269 --cert-dir="$K/certs" --leader-elect=false
  cat >"$K/kubelet-config.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $K/pki/ca.crt}}
authorization: {mode: Webhook}
tlsCertFile: $K/pki/kubelet-serving.crt
tlsPrivateKeyFile: $K/pki/kubelet-serving.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://$E2E/ctd/containerd.sock
podLogsDir: $K/podlogs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 100
EOF2
  k8s_start kubelet kubelet --config="$K/kubelet-config.yaml" --kubeconfig="$K/kubelet.kubeconfig" \
    --root-dir="$K/kubelet" --hostname-override="$NODE" --v=2
  waitfor 120 kubectl get node "$NODE" || { tail -5 "$K/logs/kubelet.log" >&2; return 1; }
  waitfor 180 kubectl wait --for=condition=Ready "node/$NODE" --timeout=1s || return 1
  waitfor 60 kubectl get sa default || return 1
}

k8s_down() {
  [ "${E2E_KEEP:-0}" = 1 ] && { log "E2E_KEEP=1: cluster left running (KUBECONFIG=$KUBECONFIG)"; return 0; }
  local n p
  for n in kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if alive "$K/run/$n.pid"; then
      p=$(cat "$K/run/$n.pid"); kill "$p"
      for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$p" 2>/dev/null && kill -9 "$p"
    fi
    rm -f "$K/run/$n.pid"
  done
  crictl rmp --all --force >/dev/null 2>&1
  awk -v p="$K/" 'index($5,p)==1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  local c; for c in /sys/fs/cgroup/*/; do [ -d "${c}kubepods" ] && find "${c}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  [ -f "$K/created" ] && xargs rm -rf <"$K/created" && rm -f "$K/created"
  [ -f "$K/sysctl.orig" ] && sed 's/ //g' "$K/sysctl.orig" | xargs sysctl -q -w && rm -f "$K/sysctl.orig"
  ip link show $BR >/dev/null 2>&1 && ip link del $BR
  rm -rf "$K/etcd" "$K/kubelet" "$K/podlogs" "$K/cni-ipam" "$E2E/cni/net.d/10-gpu-nri-test.conflist" "$E2E/hookbin"
}

# ------------------------------------------------------------------ the gpu-nri image (no Docker engine)
# gpunri_image TAG BINARY: the Dockerfile's content as an OCI archive, imported into k8s.io.
gpunri_image() {
  gpunri_image_archive "$IMG:$1" "$2" "$E2E/build/gpu-nri-$1.tar" && ctr -n k8s.io images import "$E2E/build/gpu-nri-$1.tar" >/dev/null
}

# ------------------------------------------------------------------ the test overlay
# test_config PROFILE-OVERLAY: the overlay's config.yaml with the simulated host's paths.
test_config() {
  local src=$REPO/deploy/kubernetes/$1/config.yaml
  [ -f "$src" ] || src=$REPO/deploy/kubernetes/base/config.yaml
  {
    echo "# test config: $1 policy, simulated host"
    sed 's/^\([[:space:]]*\)root: \/$/\1root: \/host/' "$E2E/host.yaml"
    cat <<EOF2
plugin:
  socket: /var/run/nri/nri.sock
  reconnectMin: 200ms
  reconnectMax: 1s
injection:
  hookPath: $E2E/hookbin/gpu-nri
  cdiSpecDirs: [$E2E/cdi]
log:
  level: debug
  format: json
metrics:
  address: ":9494"
EOF2
    sed -n '/^requirements:/,$p;' "$src" | sed '/^policy:/,$d'
    sed -n '/^policy:/,$p' "$src"
  }
}
# make_overlay NAME OVERLAY TAG: $K/ov-NAME on top of deploy/kubernetes/OVERLAY.
make_overlay() {
  local d=$K/ov-$1 rel
  mkdir -p "$d"
  rel=$(realpath --relative-to="$d" "$REPO/deploy/kubernetes/$2")
  test_config "$2" >"$d/config.yaml"
  cat >"$d/kustomization.yaml" <<EOF2
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $rel
images:
- {name: ghcr.io/gpu-nri/gpu-nri, newName: $IMG, newTag: "$3"}
configMapGenerator:
- name: gpu-nri-config
  behavior: replace
  files: [config.yaml]
  options: {disableNameSuffixHash: true}
patches:
- patch: |-
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: gpu-nri, namespace: gpu-nri}
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: 3
          volumes:
          - {name: nri, hostPath: {path: $E2E/nri, type: DirectoryOrCreate}}
          - {name: hook-bin, hostPath: {path: $E2E/hookbin, type: DirectoryOrCreate}}
          containers:
          - name: gpu-nri
            volumeMounts:
            - {name: host-root, mountPath: /host, readOnly: true, mountPropagation: None}
EOF2
  echo "$d"
}

ds_ready() { # until the DaemonSet is rolled out and its pod Ready
  waitfor "${1:-120}" kubectl -n gpu-nri rollout status ds/gpu-nri --timeout=1s
}
plugin_pod() { kubectl -n gpu-nri get pods -l app.kubernetes.io/name=gpu-nri -o jsonpath='{.items[?(@.status.phase=="Running")].metadata.name}' | awk '{print $1}'; }

# gpu_pod NAME NS ANNOTATION-VALUE [ENV-VALUE]: a pod running the probe and cudatest, then sleeping.
gpu_pod() {
  local name=$1 ns=$2 ann=$3 env=${4:-}
  kubectl get ns "$ns" >/dev/null 2>&1 || kubectl create ns "$ns" >/dev/null
  {
    cat <<EOF2
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $ns
EOF2
    [ -n "$ann" ] && printf '  annotations:\n    gpus.gpu-nri.io/pod: "%s"\n' "$ann"
    cat <<EOF2
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: c
    image: localhost/gpu-nri-e2e/glibc:1
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "for n in 0 1 2 3; do [ -e /dev/nvidia\$n ] && echo node\$n=present || echo node\$n=absent; done; cudatest libcuda.so.1; echo probe-done; exec sleep 3600"]
EOF2
    [ -n "$env" ] && printf '    env:\n    - {name: NVIDIA_VISIBLE_DEVICES, value: "%s"}\n' "$env"
  } | kubectl apply -f - >/dev/null
}
pod_logs_until() { # NS NAME: logs once the probe finished
  local i out
  for i in $(seq 150); do
    out=$(kubectl -n "$1" logs "$2" 2>/dev/null) && grep -q probe-done <<<"$out" && { echo "$out"; return 0; }
    sleep 0.2
  done
  echo "$out"; return 1
}
expect_nodes() { # NAME TEXT IDX...
  local name=$1 text=$2 i want=" ${*:3} " miss=''
  for i in 0 1 2 3; do
    if [[ $want == *" $i "* ]]; then grep -qx "node$i=present" <<<"$text" || miss+=" node$i missing"
    else grep -qx "node$i=absent" <<<"$text" || miss+=" node$i present"; fi
  done
  if [ -z "$miss" ]; then ok "$name: exactly GPUs {${*:3}}"; else bad "$name:$miss"; show "$text"; fi
}
metric() { curl -sf "$METRICS/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

cleanup() { k8s_down; e2e_teardown; }

# ================================================================== setup
section "setup"
mkdir -p "$E2E/logs" "$E2E/etc" "$K"
alive "$E2E/ctd/containerd.pid" && { log "stopping a previous run"; E2E_KEEP=0 cleanup; }
: >"$E2E/logs/containerd.log"
trap cleanup EXIT
[ -x /usr/lib/cni/bridge ] || { apt-get install -y -q containernetworking-plugins >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q containernetworking-plugins >/dev/null; }; } || die "containernetworking-plugins not installable"
e2e_tools
e2e_build
GOOVERLAY=()
if ! "$E2E/bin/gpu-nri" install --help >/dev/null 2>&1; then
  # Recorded as a failure; the rest of the suite runs on a build with the two commands registered
  # through `go build -overlay` (the working tree is not touched).
  bad "gpu-nri has no install/uninstall subcommands: register newInstallCmd() and newUninstallCmd() in plugin/cmd/gpu-nri/commands.go"
  sed 's/^\(\t*\)newVersionCmd(),/\1newVersionCmd(), newInstallCmd(), newUninstallCmd(),/' "$REPO/plugin/cmd/gpu-nri/commands.go" >"$E2E/build/commands.go"
  printf '{"Replace":{"%s":"%s"}}' "$REPO/plugin/cmd/gpu-nri/commands.go" "$E2E/build/commands.go" >"$E2E/build/overlay.json"
  GOOVERLAY=(-overlay "$E2E/build/overlay.json")
  (cd "$REPO" && CGO_ENABLED=0 go build "${GOOVERLAY[@]}" -o "$E2E/bin/gpu-nri" ./plugin/cmd/gpu-nri) || die "building gpu-nri with install failed"
fi
(cd "$REPO" && CGO_ENABLED=0 go build "${GOOVERLAY[@]}" -trimpath -ldflags "-s -w -X main.version=k8s-test-2" -o "$E2E/bin/gpu-nri-v2" ./plugin/cmd/gpu-nri) || die "building the second gpu-nri failed"
e2e_simhost
e2e_containerd_config
k8s_cni
BASECFG=$E2E/ctd/config.base.toml
cp "$E2E/ctd/config.toml" "$BASECFG"
with_dropins() { # VERSION-DIR: the e2e config importing the repository's drop-ins
  sed "s|^imports = \[\]|imports = [\"$REPO/deploy/runtime/containerd/$1/10-gpu-nri.toml\", \"$REPO/deploy/runtime/containerd/$1/20-gpu-nri-required.toml\"]|" "$BASECFG"
}

section "runtime drop-ins on a real containerd"
for v in v2 v3; do
  with_dropins $v >"$E2E/ctd/config.toml"
  dump=$(containerd --config "$E2E/ctd/config.toml" config dump 2>&1)
  check "containerd $v drop-ins: merged config requires gpu-nri" "required_plugins = ['gpu-nri']" "$dump"
  check "containerd $v drop-ins: tolerate annotation set" "tolerate_missing_plugins_annotation = 'tolerate-missing-plugins.gpu-nri.io'" "$dump"
  check "containerd $v drop-ins: private NRI socket kept (drop-ins merge key by key)" "socket_path = '$E2E/nri/nri.sock'" "$dump"
  if [ $v = v2 ]; then
    e2e_containerd_start && ok "containerd starts with the $v drop-ins (NRI socket up)"
    e2e_containerd_stop
  fi
done
e2e_containerd_start
ok "containerd starts with the v3 drop-ins (NRI socket up)"
e2e_images

section "fail-closed without Kubernetes (required_plugins, gpu-nri not running)"
out=$(run_in_pod fc-plain busybox 'echo started' 2>&1)
check "a container is refused while gpu-nri is absent (required plugin ... not present)" 'required plugin' "$out"
POD_ANN=(tolerate-missing-plugins.gpu-nri.io=true)
out=$(run_in_pod fc-tol busybox 'echo started' 2>&1)
POD_ANN=()
check "a pod annotated tolerate-missing-plugins.gpu-nri.io=true starts" "started" "$out"

section "gpu-nri doctor against this containerd (main config importing the v3 drop-ins)"
mkdir -p "$E2E/etc"
DOCTOR_CFG=$E2E/etc/doctor.yaml
e2e_plugin_config "$DOCTOR_CFG" "metrics:" "  address: 127.0.0.1:19477"
doctor() { "$E2E/bin/gpu-nri" doctor --config "$DOCTOR_CFG" --containerd-config "$E2E/ctd/config.toml" 2>&1; }
out=$(doctor); rc=$?
check "doctor follows containerd's imports" "(imports $REPO/deploy/runtime/containerd/v3/10-gpu-nri.toml, $REPO/deploy/runtime/containerd/v3/20-gpu-nri-required.toml), version 3" "$out"
check "doctor sees fail-closed through the drop-in" 'containerd requires plugin "gpu-nri" (fail-closed' "$out"
check "doctor: NRI socket of the merged config matches plugin.socket" "socket $E2E/nri/nri.sock (matches plugin.socket)" "$out"
check "doctor: the live NRI socket accepts connections" "accepts connections" "$out"
check "doctor: gpu-nri not running is a failure" "gpu-nri's /readyz at http://127.0.0.1:19477/readyz did not answer" "$out"
[ "$rc" = 1 ] && ok "doctor exits 1 while gpu-nri is down" || { bad "doctor exited $rc while gpu-nri is down"; show "$out"; }
if e2e_plugin_start "$DOCTOR_CFG"; then
  out=$(doctor); rc=$?
  check "doctor: gpu-nri registered with this containerd (/readyz)" "gpu-nri is registered with the runtime" "$out"
  [ "$rc" = 0 ] && ok "doctor: node healthy, exit 0" || { bad "doctor exited $rc with gpu-nri running"; show "$out"; }
  out=$(run_in_pod fc-gpu busybox 'echo started' 2>&1)
  check "with gpu-nri running, the required plugin is present and a container starts" "started" "$out"
  e2e_plugin_stop
else
  bad "gpu-nri did not register with containerd"
fi

[ "${K8S_STOP_AFTER:-}" = runtime ] && { e2e_summary; exit; }

section "single-node Kubernetes v1.37"
TOOLBIN=$(bash "$REPO/test/k8s/tools.sh" | tail -1) || die "test/k8s/tools.sh failed"
export PATH=$TOOLBIN:$PATH
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl helm; do command -v $b >/dev/null || die "$b missing"; done
t0=$(now_ms)
if k8s_up; then ok "cluster up in $(( $(now_ms) - t0 )) ms: $(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v1[^"]*\)".*/\1/p' | tail -1)"
else bad "cluster did not come up (logs: $K/logs)"; e2e_summary; exit 1; fi
kubectl label node "$NODE" nvidia.com/gpu.present=true --overwrite >/dev/null
gpunri_image k8s-1 "$E2E/bin/gpu-nri" && gpunri_image k8s-2 "$E2E/bin/gpu-nri-v2" && ok "gpu-nri images built as OCI archives and imported" || bad "image import failed"
mkdir -p "$E2E/hookbin"

# ================================================================== 1. kubectl apply -k
if want s1 || want s2 || want s3 || want s4 || want s5; then
  section "1. kubectl apply -k deploy/kubernetes/overlays/standalone"
  OV=$(make_overlay standalone overlays/standalone k8s-1)
  before=$(e2e_registered_count)
  if out=$(kubectl apply -k "$OV" 2>&1); then
    n=$(grep -cE '^(namespace/gpu-nri|serviceaccount/gpu-nri|configmap/gpu-nri-config|daemonset.apps/gpu-nri) created' <<<"$out")
    check_eq "kubectl apply -k: the API server accepts Namespace, ServiceAccount, ConfigMap, DaemonSet" 4 "$n"
  else bad "kubectl apply -k failed"; show "$out"; fi
  t0=$(now_ms)
  if ds_ready 180; then ok "DaemonSet Ready after $(( $(now_ms) - t0 )) ms"
  else bad "DaemonSet not Ready"; show "$(kubectl -n gpu-nri describe pods 2>&1 | tail -30)"; fi
  if e2e_plugin_wait_registered "$before"; then ok "gpu-nri registered with containerd from inside its pod"
  else bad "no registration of gpu-nri in the containerd log"; fi
  [ -x "$E2E/hookbin/gpu-nri" ] && cmp -s "$E2E/hookbin/gpu-nri" "$E2E/bin/gpu-nri" && ok "the init container installed the image's binary at injection.hookPath" || bad "hook binary missing or different at $E2E/hookbin/gpu-nri"
fi

# ================================================================== 2. GPU pods
if want s2; then
  section "2. a pod annotated gpus.gpu-nri.io/pod=0,2 sees exactly GPUs 0 and 2"
  gpu_pod gpu-02 default "0,2"
  gpu_pod no-gpu default ""
  out=$(pod_logs_until default gpu-02)
  expect_nodes "s2 annotated pod" "$out" 0 2
  check "s2: cudatest finds libcuda.so.1 and sees 2 devices" "dlopen=ok lib=libcuda.so.1 devices=2" "$out"
  out=$(pod_logs_until default no-gpu)
  expect_nodes "s2 pod without a request" "$out"
fi

# ================================================================== 5. readiness and metrics
if want s5; then
  section "5. /readyz reflects registration, metrics move"
  check_eq "/healthz answers" "ok" "$(curl -fsS $METRICS/healthz 2>&1)"
  check_eq "/readyz ready while registered" "ok" "$(curl -fsS $METRICS/readyz 2>&1)"
  check_eq "gpu_nri_nri_connected" "1" "$(metric gpu_nri_nri_connected)"
  inj0=$(metric 'gpu_nri_containers_total{outcome="injected"}'); dev0=$(metric gpu_nri_devices_injected_total)
  gpu_pod gpu-metrics default "1"
  pod_logs_until default gpu-metrics >/dev/null
  inj1=$(metric 'gpu_nri_containers_total{outcome="injected"}'); dev1=$(metric gpu_nri_devices_injected_total)
  if [ -n "$inj0" ] && [ -n "$inj1" ] && [ "${inj1%.*}" -gt "${inj0%.*}" ] && [ "${dev1%.*}" -gt "${dev0%.*}" ]; then
    ok "containers_total{injected} $inj0 -> $inj1, devices_injected_total $dev0 -> $dev1"
  else bad "counters did not move: injected $inj0 -> $inj1, devices $dev0 -> $dev1"; fi
  check "the pod's Ready condition is the readiness probe on /readyz" "True" "$(kubectl -n gpu-nri get pod "$(plugin_pod)" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
  # containerd restarts: the socket is removed and re-created; the pod mounts the directory
  e2e_containerd_stop KILL
  if waitfor 10 sh -c "curl -s -o /dev/null -w '%{http_code}' $METRICS/readyz | grep -qx 503"; then
    ok "/readyz is 503 while the runtime is gone: $(curl -s $METRICS/readyz | head -1)"
  else bad "/readyz stayed ready with containerd down"; fi
  e2e_containerd_start
  if waitfor 30 sh -c "curl -sf $METRICS/readyz | grep -qx ok"; then ok "/readyz ready again after the runtime restarted (gpu-nri reconnected through the mounted directory)"
  else bad "/readyz not ready after containerd restart"; fi
  rc=$(metric gpu_nri_nri_reconnects_total)
  [ "${rc%.*}" -ge 1 ] 2>/dev/null && ok "gpu_nri_nri_reconnects_total = $rc" || bad "reconnects_total = '$rc'"
  kubectl delete pod gpu-metrics --wait=false >/dev/null 2>&1
fi

# ================================================================== 4. rolling update
if want s4; then
  section "4. rolling update to a new build"
  kubectl delete pod gpu-02 no-gpu --wait=false >/dev/null 2>&1
  gpu_pod keep-02 default "0,2"
  pod_logs_until default keep-02 >/dev/null
  old=$(plugin_pod)
  kubectl -n gpu-nri set image ds/gpu-nri gpu-nri=$IMG:k8s-2 install-hook=$IMG:k8s-2 >/dev/null
  waitfor 30 sh -c "! kubectl -n gpu-nri get pod $old >/dev/null 2>&1 || kubectl -n gpu-nri get pod $old -o jsonpath='{.metadata.deletionTimestamp}' | grep -q ." 
  gpu_pod during-roll default "0,2"
  if ds_ready 180; then ok "DaemonSet rolled out to k8s-2"; else bad "roll-out did not finish"; fi
  check "the hook binary on the host is the new build" "k8s-test-2" "$("$E2E/hookbin/gpu-nri" version 2>&1)"
  out=$(kubectl -n default exec keep-02 -- sh -c 'for n in 0 1 2 3; do [ -e /dev/nvidia$n ] && echo node$n=present || echo node$n=absent; done; cudatest libcuda.so.1' 2>&1)
  expect_nodes "s4 running pod keeps its devices" "$out" 0 2
  check "s4 running pod: cudatest still works" "dlopen=ok lib=libcuda.so.1 devices=2" "$out"
  if out=$(pod_logs_until default during-roll); then
    expect_nodes "s4 pod created during the roll got its GPUs" "$out" 0 2
    ev=$(kubectl -n default get events --field-selector involvedObject.name=during-roll -o jsonpath='{range .items[*]}{.message}{"\n"}{end}')
    if grep -q 'required plugin' <<<"$ev"; then ok "s4 during the roll the runtime refused it visibly first (fail-closed): $(grep -m1 -o 'required plugin[^,]*' <<<"$ev")"
    else log "pod created during the roll was created while gpu-nri was registered (no refusal needed)"; fi
  else bad "s4 pod created during the roll never ran"; show "$(kubectl -n default describe pod during-roll | tail -15)"; fi
  kubectl delete pod keep-02 during-roll --wait=false >/dev/null 2>&1
fi

# ================================================================== 3. strict overlay
if want s3; then
  section "3. kubernetes-strict overlay refuses requests from a namespace that is not allowed"
  OV=$(make_overlay strict overlays/kubernetes-strict k8s-2)
  out=$(kubectl apply -k "$OV" 2>&1) || { bad "kubectl apply -k strict failed"; show "$out"; }
  kubectl -n gpu-nri rollout restart ds/gpu-nri >/dev/null
  sleep 1
  ds_ready 180 && ok "strict DaemonSet Ready" || bad "strict DaemonSet not Ready"
  gpu_pod strict-ann team-a "0"
  gpu_pod strict-env team-a "" "0"
  for p in strict-ann strict-env; do
    if waitfor 60 sh -c "kubectl -n team-a get pod $p -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}' | grep -q CreateContainerError"; then
      ok "$p: pod does not start (CreateContainerError)"
    else bad "$p: not refused: $(kubectl -n team-a get pod $p -o jsonpath='{.status.containerStatuses[0].state}')"; fi
  done
  check "kubectl describe shows the refusal naming the annotation rule" "policy.sources.annotation" "$(kubectl -n team-a describe pod strict-ann)"
  check "kubectl describe shows the refusal naming the env rule" "policy.sources.env" "$(kubectl -n team-a describe pod strict-env)"
  kubectl delete ns team-a --wait=false >/dev/null 2>&1
  kubectl delete -k "$OV" --wait=true --timeout=60s >/dev/null 2>&1
  waitfor 60 sh -c "! kubectl get ns gpu-nri" || log "namespace gpu-nri still terminating"
fi

# ================================================================== 1b. helm install
if want s1h; then
  section "1b. helm install of deploy/helm/gpu-nri"
  kubectl delete -k "$K/ov-standalone" --wait=true --timeout=60s >/dev/null 2>&1
  waitfor 60 sh -c "! kubectl get ns gpu-nri" >/dev/null
  cat >"$K/values-test.yaml" <<EOF2
image: {repository: $IMG, tag: k8s-1}
nriSocketDir: $E2E/nri
hookDir: $E2E/hookbin
hostRoot: {mountPropagation: None}
config:
$(sed 's/^/  /' "$E2E/host.yaml")
  plugin: {reconnectMin: 200ms, reconnectMax: 1s}
  injection: {cdiSpecDirs: [$E2E/cdi]}
  log: {level: debug, format: json}
EOF2
  sed -i 's/^\(    root:\) \/$/\1 \/host/' "$K/values-test.yaml"
  before=$(e2e_registered_count)
  out=$(helm install gpu-nri "$REPO/deploy/helm/gpu-nri" -n gpu-nri --create-namespace -f "$K/values-test.yaml" 2>&1) && ok "helm install" || { bad "helm install"; show "$out"; }
  ds_ready 180 && ok "helm: DaemonSet Ready" || { bad "helm: DaemonSet not Ready"; show "$(kubectl -n gpu-nri describe pods 2>&1 | tail -30)"; }
  e2e_plugin_wait_registered "$before" && ok "helm: gpu-nri registered with containerd from inside its pod" || bad "helm: no registration"
  gpu_pod helm-02 default "0,2"
  out=$(pod_logs_until default helm-02)
  expect_nodes "helm: annotated pod" "$out" 0 2
  check "helm: cudatest finds libcuda.so.1" "dlopen=ok lib=libcuda.so.1 devices=2" "$out"
  kubectl delete pod helm-02 --wait=false >/dev/null 2>&1
  helm uninstall gpu-nri -n gpu-nri >/dev/null 2>&1 && ok "helm uninstall" || bad "helm uninstall"
fi

log "total $(( $(now_ms) - T_START )) ms"
e2e_summary
