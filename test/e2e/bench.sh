#!/usr/bin/env bash
# test/e2e/bench.sh: container start cost on a real containerd + runc, through CRI, on the
# simulated GPU host. Root only. Writes docs/benchmarks-e2e.md (BENCH_WRITE=0: print only).
#
# Phase A, gpu-nri registered (two instances: one with the hook loader answering
#   gpus.hook.gpu-nri.io/pod, one hookless answering gpus.hookless.gpu-nri.io/pod):
#   plain pod | GPUs 0,2 through gpu-nri hooked | GPUs 0,2 through gpu-nri hookless
# Phase B, no NRI plugin registered (same containerd, same images, same simulated driver):
#   plain pod | GPUs 0,2 through containerd's native CDI with a hand-written spec that mounts the
#   same driver files as gpu-nri and runs NVIDIA's nvidia-cdi-hook create-symlinks + update-ldcache
#   (v1.20.2), i.e. what NVIDIA's generated spec does for the loader, cut to its two essential hooks.
# Phase C, crun (when test/tools.sh built it), the same containerd with a "crun" runtime handler and
#   two gpu-nri instances (hook, hookless): runc plain | crun plain | crun + gpu-nri hooked | crun +
#   gpu-nri hookless. On a hybrid-cgroup host containerd runs without the cgroup2 mount (cgroup v1).
# Each round runs every variant of the phase once, in a rotating order (interleaved); a sample is
# the wall time of `crictl runp` + `crictl create` + `crictl start` of a one-container pod
# (container: /bin/true in the glibc image). BENCH_ROUNDS (default 20) rounds per phase.
set -uo pipefail
# shellcheck source=test/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_require_root
ROUNDS=${BENCH_ROUNDS:-20}
NV_VER=v1.20.2

section "setup"
e2e_setup
NVHOOK_DIR=$E2E_REPO/.cache/tools/nvidia-cdi-hook-$NV_VER
if [ ! -x "$NVHOOK_DIR/nvidia-cdi-hook" ]; then
  log "building nvidia-cdi-hook $NV_VER (cgo) into $NVHOOK_DIR"
  GOBIN=$NVHOOK_DIR go install "github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-cdi-hook@$NV_VER" >&2 ||
    die "building nvidia-cdi-hook failed"
fi
NVHOOK=$NVHOOK_DIR/nvidia-cdi-hook
hostcfg() { sed -n "s/^[[:space:]]*$1:[[:space:]]*//p" "$E2E/host.yaml" | head -1; }
DEV_ROOT=$(hostcfg devRoot)

# ------------------------------------------------------------------ two gpu-nri instances
# bench_plugin NAME INDEX LOADER [DOMAIN] [HOOK_BIN]: config with its own name, index and
# annotation domain (DOMAIN.gpu-nri.io, default LOADER) and hook binary (default gpu-nri).
bench_plugin() {
  local name=$1 idx=$2 loader=$3 domain=${4:-$3} cfg=$E2E/etc/$1.yaml before
  E2E_LOADER=$loader E2E_LOG_LEVEL=info E2E_HOOK_BIN=${5:-$E2E/bin/gpu-nri} e2e_plugin_config "$cfg"
  sed -i -e "s/^  name: gpu-nri\$/  name: $name/" -e "s/^  index: \"10\"\$/  index: \"$idx\"/" \
    -e "/^injection:\$/a\\  annotationDomain: $domain.gpu-nri.io" "$cfg"
  before=$(e2e_registered_count)
  setsid "$E2E/bin/gpu-nri" run --config "$cfg" >>"$E2E/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$E2E/nri/extra-$name.pid"; disown
  e2e_plugin_wait_registered "$before" || { tail "$E2E/logs/$name.log"; die "$name did not register"; }
}
bench_plugins_stop() {
  local p; for p in "$E2E"/nri/extra-*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; rm -f "$p"; done
  sleep 0.3
}

# ------------------------------------------------------------------ NVIDIA's path: a hand-written CDI spec
# The same driver files gpu-nri mounts for compute,utility (read from the simhost manifest), the
# same device nodes, and NVIDIA's two loader hooks: create-symlinks (SONAME links + libcuda.so)
# and update-ldcache (host ldconfig on the library folder).
write_nvidia_spec() {
  local f=$E2E/cdi/nvbench.yaml libdir=/usr/lib/x86_64-linux-gnu n
  {
    echo 'cdiVersion: "0.6.0"'
    echo 'kind: nvbench.example.com/gpu'
    echo 'devices:'
    echo '- name: "gpus"'
    echo '  containerEdits:'
    echo '    deviceNodes:'
    for n in nvidia0 nvidia2; do echo "    - {path: /dev/$n, hostPath: $DEV_ROOT/$n}"; done
    echo 'containerEdits:'
    echo '  deviceNodes:'
    for n in nvidiactl nvidia-uvm nvidia-uvm-tools; do echo "  - {path: /dev/$n, hostPath: $DEV_ROOT/$n}"; done
    echo '  mounts:'
    # "path" then "hostPath" of every library, binary, firmware and socket of compute/utility.
    awk '/"capability":/ {cap=$2; gsub(/[",]/,"",cap)}
         /"path":/ {p=$2; gsub(/[",]/,"",p)}
         /"hostPath":/ {h=$2; gsub(/[",]/,"",h); if (cap=="compute"||cap=="utility"||cap=="") print p, h; cap="x"}' \
      <(sed -n '/"libraries"/,$p' "$E2E/host.json") |
      while read -r p h; do echo "  - {hostPath: $h, containerPath: $p, options: [ro, nosuid, nodev, bind]}"; done
    echo '  hooks:'
    local links=""
    while read -r so; do links+=", --link, $so"; done < <(awk '/"capability":/ {cap=$2; gsub(/[",]/,"",cap)}
      /"path":/ {p=$2; gsub(/[",]/,"",p)}
      /"link":/ {l=$2; gsub(/[",]/,"",l); if (cap=="compute"||cap=="utility") {n=split(p,a,"/"); print a[n] "::" l}}' \
      <(sed -n '/"libraries"/,/"binaries"/p' "$E2E/host.json"))
    echo "  - {hookName: createContainer, path: $NVHOOK, args: [nvidia-cdi-hook, create-symlinks$links, --link, libcuda.so.1::$libdir/libcuda.so], env: [NVIDIA_CTK_DEBUG=false]}"
    echo "  - {hookName: createContainer, path: $NVHOOK, args: [nvidia-cdi-hook, update-ldcache, --ldconfig-path, /sbin/ldconfig, --folder, $libdir], env: [NVIDIA_CTK_DEBUG=false]}"
  } >"$f"
}

# ------------------------------------------------------------------ one sample
# sample VARIANT: prints "runp_ms create_start_ms"; the pod is removed afterwards (not timed).
sample() {
  local v=$1 pod cid t0 t1 t2 ann=() extra='' POD_RUNTIME=''
  case $v in
    cplain) POD_RUNTIME=crun ;;
    chook) POD_RUNTIME=crun ann=("gpus.hook.gpu-nri.io/pod=0,2") ;;
    chookless) POD_RUNTIME=crun ann=("gpus.hookless.gpu-nri.io/pod=0,2") ;;
    hook) ann=("gpus.hook.gpu-nri.io/pod=0,2") ;;
    hookless) ann=("gpus.hookless.gpu-nri.io/pod=0,2") ;;
    smallhook) ann=("gpus.smallhook.gpu-nri.io/pod=0,2") ;;
    nvidia) extra=',"annotations":{"cdi.k8s.io/nvbench":"nvbench.example.com/gpu=gpus"}' ;;
  esac
  t0=$(date +%s%N)
  pod=$(pod_run "b-$v" "${ann[@]+"${ann[@]}"}") || return 1
  t1=$(date +%s%N)
  cid=$(CTR_EXTRA=$extra ctr_create "$pod" "b-$v" glibc "${BENCH_CMD:-true}" 2>/dev/null) &&
    crictl start "$cid" >/dev/null 2>&1 || { pod_rm "$pod"; return 1; }
  t2=$(date +%s%N)
  if [ -n "${BENCH_SHOW:-}" ]; then ctr_wait "$cid" 10; ctr_logs "$cid"; fi
  pod_rm "$pod"
  echo "$(( (t1 - t0) / 1000 )) $(( (t2 - t1) / 1000 ))"
}
# verify VARIANT: the variant really gives a loadable driver and GPUs 0,2.
verify() {
  local out
  out=$(BENCH_SHOW=1 BENCH_CMD='cudatest; ls /dev/nvidia0 /dev/nvidia2' sample "$1" | grep -v '^[0-9]* [0-9]*$')
  if grep -q 'dlopen=ok lib=libcuda.so.1 devices=2' <<<"$out"; then ok "$1: $(grep dlopen <<<"$out")"; else bad "$1 does not work"; show "$out"; fi
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) printf "%.1f", a[(NR+1)/2]/1000; else printf "%.1f", (a[NR/2]+a[NR/2+1])/2000}'; }
# run_phase NAME VARIANT...: ROUNDS interleaved rounds; samples in $E2E/bench/NAME-VARIANT.
run_phase() {
  local phase=$1 r i n s; shift
  local vs=("$@")
  mkdir -p "$E2E/bench"
  for v in "${vs[@]}"; do : >"$E2E/bench/$phase-$v"; sample "$v" >/dev/null; done   # warm-up
  for r in $(seq "$ROUNDS"); do
    n=${#vs[@]}
    for i in $(seq 0 $((n - 1))); do
      v=${vs[$(( (i + r) % n ))]}
      s=$(sample "$v") && echo "$s" >>"$E2E/bench/$phase-$v" || log "sample $v failed"
    done
    printf '.' >&2
  done
  echo >&2
}
col() { awk -v c="$1" '{print $c}' "$2"; }
tot() { awk '{print $1 + $2}' "$1"; }

section "phase A: gpu-nri registered (hook and hookless instances)"
bench_plugin gpu-nri-hook 10 hook
bench_plugin gpu-nri-hookless 11 hookless
bench_plugin gpu-nri-smallhook 12 hook smallhook "$E2E/bin/gpu-nri-hook"
verify hook
verify hookless
verify smallhook
hooks_in_spec=$(pod=$(pod_run b-inspect "gpus.hook.gpu-nri.io/pod=0,2") && cid=$(ctr_create "$pod" b-inspect glibc true) &&
  crictl inspect "$cid" | grep -c '"createContainer"'; pod_rm "$pod")
T0=$(now_ms)
run_phase A plain hook smallhook hookless
log "phase A: $(( ($(now_ms) - T0) / 1000 )) s"
bench_plugins_stop

section "phase B: no NRI plugin; NVIDIA's hooks through containerd's native CDI"
write_nvidia_spec
sleep 0.5
verify nvidia
nv_mounts=$(grep -c 'containerPath:' "$E2E/cdi/nvbench.yaml"); nv_links=$(grep -o -- '--link' "$E2E/cdi/nvbench.yaml" | wc -l)
T0=$(now_ms)
run_phase B plain nvidia
log "phase B: $(( ($(now_ms) - T0) / 1000 )) s"
rm -f "$E2E/cdi/nvbench.yaml"

PHASE_C=0
if [ -n "${E2E_CRUN:-}" ]; then
  section "phase C: crun ($("$E2E_CRUN" --version | head -1)), gpu-nri registered"
  if [ -n "$(e2e_hybrid_cgroup2)" ]; then e2e_containerd_stop; E2E_CTD_CGROUP_V1=1 e2e_containerd_start; fi
  bench_plugin gpu-nri-hook 10 hook
  bench_plugin gpu-nri-hookless 11 hookless
  verify chook
  verify chookless
  T0=$(now_ms)
  run_phase C plain cplain chook chookless
  log "phase C: $(( ($(now_ms) - T0) / 1000 )) s"
  bench_plugins_stop
  PHASE_C=1
else
  log "phase C skipped: no crun (test/tools.sh builds it)"
fi

# ------------------------------------------------------------------ report
declare -A MED
keys=(A-plain A-hook A-smallhook A-hookless B-plain B-nvidia)
[ "$PHASE_C" = 1 ] && keys+=(C-plain C-cplain C-chook C-chookless)
for k in "${keys[@]}"; do
  MED[$k-runp]=$(col 1 "$E2E/bench/$k" | median)
  MED[$k-cs]=$(col 2 "$E2E/bench/$k" | median)
  MED[$k-tot]=$(tot "$E2E/bench/$k" | median)
  MED[$k-n]=$(wc -l <"$E2E/bench/$k")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
row() { # label key base
  echo "| $1 | ${MED[$2-n]} | ${MED[$2-runp]} | ${MED[$2-cs]} | ${MED[$2-tot]} | $(ratio "${MED[$2-cs]}" "${MED[$3-cs]}") | $(ratio "${MED[$2-tot]}" "${MED[$3-tot]}") |"
}
phase_c() {
  [ "$PHASE_C" = 1 ] || { printf '\n(No crun: phase C was skipped.)\n'; return; }
  cat <<EOT

## crun instead of runc (gpu-nri registered, hooked and hookless instances)

$("$E2E_CRUN" --version | head -1) (test/tools.sh), pods of containerd's \`crun\` runtime handler; runc plain in the same rounds for
reference.$( [ -n "$(e2e_hybrid_cgroup2)" ] && echo " This host has hybrid cgroups, which crun refuses: containerd ran in its own mount namespace without the cgroup2 mount, so both runtimes used cgroup v1.")

| variant | samples | runp | create+start | pod total | create+start vs crun plain | total vs crun plain |
|---|---|---|---|---|---|---|
$(row "runc, plain container (no GPU)" C-plain C-cplain)
$(row "crun, plain container (no GPU)" C-cplain C-cplain)
$(row "crun, gpu-nri hook loader, GPUs 0,2" C-chook C-cplain)
$(row "crun, gpu-nri hookless, GPUs 0,2" C-chookless C-cplain)
EOT
}
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
REPORT=$(cat <<EOF
# End-to-end benchmarks: GPU container start through CRI

Generated by \`test/e2e/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC').
Machine: $(nproc) CPUs ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r),
cgroup $( [ -f /sys/fs/cgroup/cgroup.controllers ] && echo v2 || echo v1 ); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg).
Components: containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'),
gpu-nri $(cd "$E2E_REPO" && git describe --always --dirty 2>/dev/null), nvidia-cdi-hook $NV_VER; simulated host with
$E2E_GPUS GPUs (test/simhost: real device nodes, gcc-built driver libraries); every container asks for GPUs 0 and 2 with the
default capabilities (compute, utility).

Method: one private containerd; a sample is \`crictl runp\` (host network, no CNI) then \`crictl create\` + \`crictl start\` of
one container running \`/bin/true\` in a glibc image; pods are removed between samples (not timed). $ROUNDS interleaved rounds
per phase (each round runs every variant of its phase once, in a rotating order), after one warm-up sample each. Medians
in milliseconds. Phase A has three gpu-nri instances registered (hooked with the full \`gpu-nri\` binary as the hook, answering
\`gpus.hook.gpu-nri.io/pod\`; hooked with the small \`gpu-nri-hook\` binary, \`gpus.smallhook.gpu-nri.io/pod\`; hookless,
\`gpus.hookless.gpu-nri.io/pod\`), so its plain pods also pay three NRI round trips. Phase B has no NRI
plugin; its GPU variant uses containerd's own CDI injection with a hand-written spec: the same ${nv_mounts} driver files and
5 device nodes, plus NVIDIA's \`nvidia-cdi-hook create-symlinks\` ($nv_links links) and \`update-ldcache\` hooks, i.e. the
loader part of what \`nvidia-ctk cdi generate\` emits. gpu-nri hooked adds $hooks_in_spec createContainer hook(s); hookless
adds none.

Numbers from a shared 2-CPU VM are noisy (other builds ran at the same time); compare rows within one run, not across runs.

## Pod create+start, with and without GPUs (gpu-nri registered)

| variant | samples | runp | create+start | pod total | create+start vs plain | total vs plain |
|---|---|---|---|---|---|---|
$(row "plain container (no GPU)" A-plain A-plain)
$(row "gpu-nri, hook loader (hook = gpu-nri binary), GPUs 0,2" A-hook A-plain)
$(row "gpu-nri, hook loader (hook = gpu-nri-hook binary), GPUs 0,2" A-smallhook A-plain)
$(row "gpu-nri, hookless, GPUs 0,2" A-hookless A-plain)

## Against NVIDIA's hooks (no NRI plugin registered)

| variant | samples | runp | create+start | pod total | create+start vs plain | total vs plain |
|---|---|---|---|---|---|---|
$(row "plain container (no GPU)" B-plain B-plain)
$(row "CDI spec + nvidia-cdi-hook create-symlinks + update-ldcache" B-nvidia B-plain)

Side by side (create+start medians, each against the plain row of its own phase): plain ${MED[A-plain-cs]} / ${MED[B-plain-cs]} ms,
gpu-nri hooked ${MED[A-hook-cs]} ms ($(ratio "${MED[A-hook-cs]}" "${MED[A-plain-cs]}")x), with the small hook binary
${MED[A-smallhook-cs]} ms ($(ratio "${MED[A-smallhook-cs]}" "${MED[A-plain-cs]}")x), gpu-nri hookless ${MED[A-hookless-cs]} ms
($(ratio "${MED[A-hookless-cs]}" "${MED[A-plain-cs]}")x), NVIDIA's hooks ${MED[B-nvidia-cs]} ms ($(ratio "${MED[B-nvidia-cs]}" "${MED[B-plain-cs]}")x).
The cost of having the three gpu-nri instances registered for a plain container: ${MED[A-plain-tot]} vs ${MED[B-plain-tot]} ms per pod.
$(phase_c)

Reproduce: \`sudo bash test/e2e/bench.sh\` (BENCH_ROUNDS=N for more rounds; raw samples in \$E2E_DIR/bench/).
EOF
)
section "results"
echo "$REPORT" | sed -n '/^| variant/,$p'
if [ "${BENCH_WRITE:-1}" = 1 ]; then
  echo "$REPORT" >"$E2E_REPO/docs/benchmarks-e2e.md"
  log "written to docs/benchmarks-e2e.md"
fi
e2e_summary
