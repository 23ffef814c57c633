#!/usr/bin/env bash
# test/e2e/run.sh (`make test-e2e`): gpu-nri end to end on a real containerd + runc, driven
# through CRI with crictl, against a simulated GPU host. Root only (a clear skip otherwise).
# Ends with one line "N passed, M failed"; exit status 1 when M > 0.
#
#   E2E_DIR=/tmp/gpu-nri-e2e   work dir        E2E_ONLY="s1 s6"   run only these scenarios
#   E2E_KEEP=1                 leave containerd + gpu-nri running afterwards (debugging)
set -uo pipefail
# shellcheck source=test/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

e2e_require_root
T_START=$(now_ms)
section "setup"
e2e_setup

# ------------------------------------------------------------------ facts about the simulated host
hostcfg() { sed -n "s/^[[:space:]]*$1:[[:space:]]*//p" "$E2E/host.yaml" | head -1 | tr -d '"'"'"; }
DEV_ROOT=$(hostcfg devRoot); PROC_ROOT=$(hostcfg procRoot); DRIVER_ROOT=$(hostcfg driverRoot)
[ -c "$DEV_ROOT/nvidia0" ] || die "simulated host has no $DEV_ROOT/nvidia0 (host.yaml: $(tr '\n' ' ' <"$E2E/host.yaml"))"
# hexmm NODE: "major:minor" in hex, as busybox `stat -c %t:%T` prints it inside the container.
hexmm() { stat -c %t:%T "$1"; }
MM=(); for i in $(seq 0 $((E2E_GPUS - 1))); do MM[i]=$(hexmm "$DEV_ROOT/nvidia$i"); done
# gpu_uuid N: the UUID the simulated driver reports for GPU N (ordered by PCI bus id, like nvidia-smi).
gpu_uuid() {
  local f
  f=$(find "$PROC_ROOT/driver/nvidia/gpus" -name information | sort | sed -n "$(($1 + 1))p")
  sed -n 's/^GPU UUID:[[:space:]]*//p' "$f"
}
LIBCUDA_HOST=$(find "$DRIVER_ROOT" -name 'libcuda.so.*.*' -type f | head -1)
[ -n "$LIBCUDA_HOST" ] || die "no libcuda.so.<version> under $DRIVER_ROOT"
DRIVER_VERSION=${LIBCUDA_HOST##*/libcuda.so.}
# The CUDA version the driver reports, asked of the driver itself on the host.
CUDA_VERSION=$(LD_LIBRARY_PATH=$(dirname "$LIBCUDA_HOST") SIMGPU_DEV_ROOT=$DEV_ROOT "$E2E/build/cudatest" | sed -n 's/.*cuda=//p')
CUDA_VERSION_DOTTED=$((CUDA_VERSION / 1000)).$((CUDA_VERSION % 1000 / 10))
log "simulated host: $E2E_GPUS GPUs, driver $DRIVER_VERSION, CUDA $CUDA_VERSION, nodes ${MM[*]}, GPU 2 = $(gpu_uuid 2)"

# PROBE: what a container sees, one fact a line.
PROBE='for n in 0 1 2 3; do if [ -e /dev/nvidia$n ]; then echo "node$n=$(stat -c %t:%T /dev/nvidia$n)"; else echo "node$n=absent"; fi; done
for f in nvidiactl nvidia-uvm nvidia-uvm-tools nvidia-modeset; do [ -e /dev/$f ] && echo "ctl:$f=present" || echo "ctl:$f=absent"; done
find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( -name "libcuda.so*" -o -name "libnvidia-ml.so*" -o -name nvidia-smi \) -print 2>/dev/null | sort | sed "s/^/file:/"
echo "LD_LIBRARY_PATH=[${LD_LIBRARY_PATH:-}]"'
CUDATEST='command -v cudatest >/dev/null && cudatest libcuda.so.1'

# expect_gpus NAME TEXT IDX...: exactly these GPU nodes, with the host's major:minor.
expect_gpus() {
  local name=$1 text=$2 i want=" ${*:3} " miss=''
  for i in $(seq 0 $((E2E_GPUS - 1))); do
    if [[ $want == *" $i "* ]]; then
      grep -qx "node$i=${MM[i]}" <<<"$text" || miss+=" node$i missing/wrong (want ${MM[i]})"
    else
      grep -qx "node$i=absent" <<<"$text" || miss+=" node$i present"
    fi
  done
  if [ -z "$miss" ]; then ok "$name: GPU nodes {${*:3}} only, host major:minor"; else bad "$name:$miss"; show "$text"; fi
}
want() { [ -z "${E2E_ONLY:-}" ] || [[ " $E2E_ONLY " == *" $1 "* ]]; }

# ------------------------------------------------------------------ gpu-nri (external mode, hook loader)
section "gpu-nri external mode"
E2E_LOADER=hook e2e_plugin_config "$E2E/etc/gpu-nri.yaml"
if e2e_plugin_start "$E2E/etc/gpu-nri.yaml"; then
  ok "gpu-nri registered with containerd (external mode)"
else
  bad "gpu-nri did not register with containerd (log: $E2E_PLUGIN_LOG)"; show "$(tail -20 "$E2E_PLUGIN_LOG")"
fi

# ------------------------------------------------------------------ 1. NVIDIA_VISIBLE_DEVICES=0,2
if want s1; then
  section "1. NVIDIA_VISIBLE_DEVICES=0,2 (glibc image, hook loader)"
  out=$(run_in_pod s1 glibc "$PROBE
cat /dev/nvidia0 2>&1 | head -1
mknod /tmp/gpu1 c 195 1 && cat /tmp/gpu1 2>&1 | head -1
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0,2)
  expect_gpus "s1" "$out" 0 2
  check "s1: /dev/nvidiactl present" "ctl:nvidiactl=present" "$out"
  check "s1: /dev/nvidia-uvm present" "ctl:nvidia-uvm=present" "$out"
  check "s1: open(/dev/nvidia0) allowed by the device cgroup (ENXIO, no kernel driver)" "can't open '/dev/nvidia0': No such device or address" "$out"
  check "s1: GPU 1 node made with mknod inside is denied (EPERM)" "can't open '/tmp/gpu1': Operation not permitted" "$out"
  check "s1: no LD_LIBRARY_PATH set" "LD_LIBRARY_PATH=[]" "$out"
  check "s1: cudatest dlopen(libcuda.so.1) sees 2 devices and the driver's CUDA version" "dlopen=ok lib=libcuda.so.1 devices=2 cuda=$CUDA_VERSION" "$out"
fi

# ------------------------------------------------------------------ 2. other request sources
if want s2; then
  section "2. GPUs by pod annotation, UUID, device-plugin volume mounts, CDI annotation"
  pod=$(pod_run s2-ctrann "gpus.gpu-nri.io/container.main=1" "gpus.gpu-nri.io/container.other=3")
  out=$(ctr_run "$pod" main glibc "$PROBE
$CUDATEST")
  expect_gpus "s2 annotation gpus.gpu-nri.io/container.main=1" "$out" 1
  check "s2 per-container annotation: cudatest devices=1" "devices=1 " "$out"
  spec_ann=$(crictl inspect "$(crictl ps -a -q --pod "$pod" --name main | head -1)" 2>/dev/null | grep -c '"gpus.gpu-nri.io/container.main"' || true)
  if [ "${spec_ann:-0}" -gt 0 ]; then
    ok "s2 containerd pod_annotations copies gpus.gpu-nri.io/* pod annotations into the container's spec"
  else
    skip "s2 pod annotation not in the container's OCI spec (pod_annotations); the plugin reads the PodSandbox's annotations anyway"
  fi
  pod_rm "$pod"

  POD_ANN=("gpus.gpu-nri.io/pod=3")
  out=$(run_in_pod s2-podann glibc "$PROBE"); unset POD_ANN
  expect_gpus "s2 annotation gpus.gpu-nri.io/pod=3" "$out" 3

  u2=$(gpu_uuid 2)
  out=$(run_in_pod s2-uuid glibc "$PROBE" "NVIDIA_VISIBLE_DEVICES=$u2")
  expect_gpus "s2 NVIDIA_VISIBLE_DEVICES=<UUID of GPU 2>" "$out" 2

  u3=$(gpu_uuid 3)
  out=$(CTR_EXTRA=',"mounts":[{"container_path":"/var/run/nvidia-container-devices/1","host_path":"/dev/null"},{"container_path":"/var/run/nvidia-container-devices/'"$u3"'","host_path":"/dev/null"}]' \
    run_in_pod s2-volmounts glibc "$PROBE" NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices)
  expect_gpus "s2 device-plugin volume mounts (index 1, UUID of GPU 3)" "$out" 1 3

  # A third-party CDI device (example.com/fpga) and gpu-nri's own kind, named by cdi.k8s.io/ annotations.
  mkdir -p "$E2E/fpga"; rm -f "$E2E/fpga/fpga0"; mknod -m 666 "$E2E/fpga/fpga0" c 240 7
  echo "fpga bitstream" >"$E2E/fpga/bitstream"
  cat >"$E2E/cdi/example.com-fpga.yaml" <<EOF
cdiVersion: "0.6.0"
kind: example.com/fpga
devices:
- name: fpga0
  containerEdits:
    deviceNodes:
    - {path: /dev/fpga0, hostPath: $E2E/fpga/fpga0, type: c, major: 240, minor: 7, permissions: rw}
    env: [FPGA_E2E=fpga0]
containerEdits:
  mounts:
  - {hostPath: $E2E/fpga/bitstream, containerPath: /etc/fpga-bitstream, options: [ro, nosuid, nodev, bind]}
EOF
  POD_ANN=("cdi.k8s.io/fpga=example.com/fpga=fpga0" "cdi.k8s.io/gpu=nvidia.com/gpu=1")
  out=$(run_in_pod s2-cdi glibc "$PROBE
ls -l /dev/fpga0 2>&1; cat /dev/fpga0 2>&1 | head -1; echo FPGA_E2E=\$FPGA_E2E; cat /etc/fpga-bitstream"); unset POD_ANN
  expect_gpus "s2 cdi.k8s.io/gpu=nvidia.com/gpu=1" "$out" 1
  check "s2 cdi.k8s.io/fpga=example.com/fpga=fpga0: device node usable (ENXIO)" "can't open '/dev/fpga0': No such device or address" "$out"
  check "s2 third-party CDI device: env" "FPGA_E2E=fpga0" "$out"
  check "s2 third-party CDI device: mount" "fpga bitstream" "$out"
fi

# ------------------------------------------------------------------ 3. capabilities
if want s3; then
  section "3. NVIDIA_DRIVER_CAPABILITIES"
  out=$(run_in_pod s3-utility glibc "$PROBE
nvidia-smi >/tmp/smi.out 2>&1; echo smi-rc=\$?; sed 's/^/smi: /' /tmp/smi.out | head -3
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0 NVIDIA_DRIVER_CAPABILITIES=utility)
  check_re "s3 utility: nvidia-smi injected" '^file:.*/nvidia-smi$' "$out"
  check_re "s3 utility: libnvidia-ml injected" '^file:.*/libnvidia-ml\.so' "$out"
  check_not "s3 utility: no libcuda" "libcuda.so" "$(grep '^file:' <<<"$out")"
  check "s3 utility: cudatest cannot load libcuda.so.1" "dlopen=FAIL" "$out"
  check "s3 utility: nvidia-smi runs (exit 0)" "smi-rc=0" "$out"
  check "s3 utility: nvidia-smi reports the host driver" "smi: NVIDIA-SMI $DRIVER_VERSION  Driver Version: $DRIVER_VERSION" "$out"
  out=$(run_in_pod s3-compute glibc "$PROBE
$CUDATEST
for f in \$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( -name 'libcuda.so.*.*' -o -name nvidia-smi \) -type f -print 2>/dev/null); do
  (echo x >>\$f) 2>&1 | sed 's/^/write: /'; done" NVIDIA_VISIBLE_DEVICES=0 NVIDIA_DRIVER_CAPABILITIES=compute,utility)
  check_re "s3 compute,utility: libcuda injected" '^file:.*/libcuda\.so\.1$' "$out"
  check_re "s3 compute,utility: libnvidia-ml injected" '^file:.*/libnvidia-ml\.so' "$out"
  check "s3 compute,utility: cudatest works" "dlopen=ok lib=libcuda.so.1 devices=1 cuda=$CUDA_VERSION" "$out"
  if grep -q '^write: ' <<<"$out" && ! grep '^write: ' <<<"$out" | grep -qv 'Read-only file system'; then
    ok "s3 driver files are read-only ($(grep -c '^write: ' <<<"$out") files tried)"
  else
    bad "s3 driver files are read-only"; show "$out"
  fi
fi

# ------------------------------------------------------------------ 4. void / unset / none
if want s4; then
  section "4. void, unset, none"
  for v in void unset; do
    if [ $v = unset ]; then out=$(run_in_pod s4-$v glibc "$PROBE
$CUDATEST"); else out=$(run_in_pod s4-$v glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=$v); fi
    expect_gpus "s4 $v" "$out" 
    check "s4 $v: no control nodes" "ctl:nvidiactl=absent" "$out"
    check_not "s4 $v: no driver files" "file:" "$(grep '^file:' <<<"$out")"
  done
  out=$(run_in_pod s4-none glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=none)
  expect_gpus "s4 none" "$out"
  check "s4 none: control node present" "ctl:nvidiactl=present" "$out"
  check_re "s4 none: driver files injected" '^file:.*/libcuda\.so' "$out"
  check "s4 none: cudatest loads the driver and sees 0 devices" "dlopen=ok lib=libcuda.so.1 devices=0" "$out"
fi

# ------------------------------------------------------------------ 5. bad input
if want s5; then
  section "5. bad requests fail container creation with a clear error"
  for v in 9 GPU-zzz; do
    pod=$(pod_run s5-$v)
    if id=$(ctr_create "$pod" "bad-$v" glibc 'echo should-not-run' "NVIDIA_VISIBLE_DEVICES=$v" 2>/dev/null); then
      bad "s5 NVIDIA_VISIBLE_DEVICES=$v: crictl create succeeded"
      crictl start "$id" >/dev/null 2>&1; ctr_wait "$id" 5; show "$(ctr_logs "$id")"
    else
      err=$(cat "$E2E/cri/last.err")
      ok "s5 NVIDIA_VISIBLE_DEVICES=$v: crictl create fails"
      check "s5 NVIDIA_VISIBLE_DEVICES=$v: gpu-nri's error names the container" "gpu-nri: container $E2E_NS/s5-$v/bad-$v: " "$err"
      check "s5 NVIDIA_VISIBLE_DEVICES=$v: error names the variable" "NVIDIA_VISIBLE_DEVICES" "$err"
      check "s5 NVIDIA_VISIBLE_DEVICES=$v: error quotes the value" "\\\"$v\\\"" "$err"
      echo "      error: $(tr '\n' ' ' <<<"$err" | sed 's/.*desc = gpu-nri/gpu-nri/' | cut -c1-300)"
    fi
    pod_rm "$pod"
  done
fi

# ------------------------------------------------------------------ 7. multi-container pod
if want s7; then
  section "7. one pod, three containers, different GPUs"
  pod=$(pod_run s7 "gpus.gpu-nri.io/container.c=2")
  outa=$(ctr_run "$pod" a glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0)
  outb=$(ctr_run "$pod" b glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=1,3)
  outc=$(ctr_run "$pod" c glibc "$PROBE
$CUDATEST")
  expect_gpus "s7 container a (env 0)" "$outa" 0
  expect_gpus "s7 container b (env 1,3)" "$outb" 1 3
  expect_gpus "s7 container c (annotation 2)" "$outc" 2
  check "s7 container b: cudatest devices=2" "devices=2 " "$outb"
  pod_rm "$pod"
fi

# ------------------------------------------------------------------ 8. MIG
if want s8; then
  section "8. MIG: a MIG device of the MIG-mode GPU $E2E_GPUS"
  M=$E2E_GPUS
  gi=$(tr -d ' \n' <"$E2E/host.json" | grep -o '"index":'"$M"',"minor":[0-9]*.*' | grep -o '"giCapMinor":[0-9]*' | sed -n 2p | cut -d: -f2)
  ci=$(tr -d ' \n' <"$E2E/host.json" | grep -o '"index":'"$M"',"minor":[0-9]*.*' | grep -o '"ciCapMinor":[0-9]*' | sed -n 2p | cut -d: -f2)
  out=$(run_in_pod s8-mig glibc "$PROBE
ls /dev/nvidia-caps/ 2>&1 | sed 's/^/cap:/'
[ -e /dev/nvidia$M ] && echo \"mig-parent=\$(stat -c %t:%T /dev/nvidia$M)\"
$CUDATEST" "NVIDIA_VISIBLE_DEVICES=$M:1")
  expect_gpus "s8 $M:1 (no whole GPU)" "$out"
  check "s8 $M:1: parent node /dev/nvidia$M with the host's major:minor" "mig-parent=$(hexmm "$DEV_ROOT/nvidia$M")" "$out"
  if [ -n "$gi" ] && [ -n "$ci" ]; then
    check "s8 $M:1: GPU-instance access cap nvidia-cap$gi" "cap:nvidia-cap$gi" "$out"
    check "s8 $M:1: compute-instance access cap nvidia-cap$ci" "cap:nvidia-cap$ci" "$out"
    nother=$(grep -c '^cap:nvidia-cap' <<<"$out" || true)
    check_eq "s8 $M:1: exactly the two caps of that MIG device" 2 "$nother"
  else
    bad "s8: could not read MIG cap minors of GPU $M from host.json"
  fi
  check "s8 $M:1: cudatest sees one device" "devices=1 " "$out"
  pod=$(pod_run s8-whole)
  if ctr_create "$pod" whole glibc true "NVIDIA_VISIBLE_DEVICES=$M" >/dev/null 2>&1; then
    bad "s8 whole MIG-mode GPU $M: crictl create succeeded"
  else
    check "s8 whole MIG-mode GPU $M refused, naming MIG mode" "MIG enabled" "$(cat "$E2E/cri/last.err")"
  fi
  pod_rm "$pod"
fi

# ------------------------------------------------------------------ 9. NVIDIA_REQUIRE_*
# The static gpu-nri asks the driver's nvidia-smi (-q, --query-gpu) for the CUDA version, brand
# and compute capability at inventory refresh; the simulated nvidia-smi answers for its GPUs.
if want s9; then
  section "9. NVIDIA_REQUIRE_* checked against the driver's facts"
  out=$(run_in_pod s9-met glibc "$CUDATEST" NVIDIA_VISIBLE_DEVICES=0 "NVIDIA_REQUIRE_CUDA=cuda>=12.0 brand=tesla arch>=9.0,driver>=550")
  check "s9 met requirement (cuda>=12.0, arch>=9.0, driver>=550): container runs" "devices=1 " "$out"
  pod=$(pod_run s9-unmet)
  if ctr_create "$pod" unmet glibc true NVIDIA_VISIBLE_DEVICES=0 "NVIDIA_REQUIRE_CUDA=cuda>=13.0" >/dev/null 2>&1; then
    bad "s9 unmet requirement: crictl create succeeded"
  else
    err=$(cat "$E2E/cri/last.err")
    check "s9 unmet requirement fails creation naming the constraint" "cuda>=13.0" "$err"
    check "s9 unmet requirement names the host's value" "host CUDA driver API $CUDA_VERSION_DOTTED" "$err"
  fi
  pod_rm "$pod"
  out=$(run_in_pod s9-legacy glibc "$PROBE
$CUDATEST" CUDA_VERSION=12.2.0)
  expect_gpus "s9 legacy CUDA image (CUDA_VERSION set, no NVIDIA_VISIBLE_DEVICES): all GPUs" "$out" $(seq 0 $((E2E_GPUS - 1)))
  pod=$(pod_run s9-legacy-new)
  if ctr_create "$pod" legacy glibc true CUDA_VERSION=13.1.0 >/dev/null 2>&1; then
    bad "s9 legacy CUDA 13.1 image on a 12.4 driver: crictl create succeeded"
  else
    check "s9 legacy CUDA 13.1 image on a 12.4 driver: implicit cuda>=13.1 refused" "cuda>=13.1" "$(cat "$E2E/cri/last.err")"
  fi
  pod_rm "$pod"
fi

# ------------------------------------------------------------------ loader: images x modes (issue 4)
# loader_matrix MODE: glibc Debian and RHEL layouts load libcuda.so.1 and libcuda.so without
# LD_LIBRARY_PATH; distroless, busybox and musl start and behave as documented.
loader_matrix() {
  local mode=$1 img out
  for img in glibc rhel; do
    out=$(run_in_pod "ld-$mode-$img" "$img" 'cudatest libcuda.so.1; cudatest libcuda.so; echo "LD_LIBRARY_PATH=[${LD_LIBRARY_PATH:-}]"' NVIDIA_VISIBLE_DEVICES=0)
    check "loader $mode, $img image: dlopen(libcuda.so.1)" "dlopen=ok lib=libcuda.so.1 devices=1 cuda=$CUDA_VERSION" "$out"
    check "loader $mode, $img image: dlopen(libcuda.so)" "dlopen=ok lib=libcuda.so devices=1 cuda=$CUDA_VERSION" "$out"
    if [ "$mode" = hook ]; then
      check "loader $mode, $img image: no LD_LIBRARY_PATH needed" "LD_LIBRARY_PATH=[]" "$out"
    else
      grep -q 'LD_LIBRARY_PATH=\[\]' <<<"$out" && log "hookless $img: found without LD_LIBRARY_PATH" || log "hookless $img: $(grep LD_LIBRARY_PATH <<<"$out")"
    fi
  done
  out=$(CTR_SHELL=/busybox/sh run_in_pod "ld-$mode-distroless" distroless 'cudatest libcuda.so.1; ls /etc/ld.so.conf /etc/ld.so.cache 2>&1' NVIDIA_VISIBLE_DEVICES=0)
  check "loader $mode, distroless image (no ld.so.conf, no ldconfig): dlopen(libcuda.so.1)" "dlopen=ok lib=libcuda.so.1 devices=1" "$out"
  out=$(run_in_pod "ld-$mode-busybox" busybox "$PROBE; echo started" NVIDIA_VISIBLE_DEVICES=0)
  check "loader $mode, busybox-only image: starts" "started" "$out"
  expect_gpus "loader $mode, busybox-only image" "$out" 0
  if docker_has_musl; then
    out=$(run_in_pod "ld-$mode-musl" musl 'echo started; cat /etc/ld-musl-x86_64.path 2>&1; cudatest libcuda.so.1' NVIDIA_VISIBLE_DEVICES=0)
    check "loader $mode, musl image: starts" "started" "$out"
    [ "$mode" = hook ] && check_re "loader hook, musl image: /etc/ld-musl-x86_64.path written" '^/.*lib' "$out"
    log "musl cudatest ($mode): $(grep dlopen <<<"$out")"
  else
    skip "loader $mode, musl image: musl-gcc not available"
  fi
}
docker_has_musl() { [ -x "$E2E/build/cudatest-musl" ]; }
if want loader; then
  section "loader (hook mode): image layouts"
  loader_matrix hook
fi

# ------------------------------------------------------------------ hostile images (issue 4)
if want hostile; then
  section "hostile images: the host stays unchanged"
  for img in libdir ldcache confd fifo preload; do
    case $img in
      libdir) adv="CVE-2024-0132 (library dir symlink to /)" ;;
      ldcache) adv="CVE-2025-23267 (/etc/ld.so.cache a symlink to a host file)" ;;
      confd) adv="CVE-2025-23267 (/etc/ld.so.conf.d a symlink to a host directory)" ;;
      fifo) adv="FIFO and directory at SONAME link targets" ;;
      preload) adv="CVE-2025-23266 NVIDIAScape (ENV LD_PRELOAD=/proc/self/cwd/x.so)" ;;
    esac
    before=$(host_state)
    t0=$(now_ms)
    out=$(CTR_TIMEOUT=15 run_in_pod "hostile-$img" "hostile-$img" "echo started; $CUDATEST" NVIDIA_VISIBLE_DEVICES=0 2>&1)
    dt=$(( $(now_ms) - t0 ))
    after=$(host_state)
    if [ "$before" = "$after" ]; then ok "$adv: host sentinel and /etc/ld.so.cache unchanged"; else bad "$adv: HOST CHANGED"; show "$(diff <(echo "$before") <(echo "$after"))"; fi
    check_not "$adv: no hang" "TIMEOUT" "$out"
    check_re "$adv: the container runs, or gpu-nri refuses it with a clear error" '^started|gpu-nri: hook: ' "$out"
    if grep -q '^started' <<<"$out"; then
      log "hostile-$img: container ran ($dt ms): $(grep dlopen <<<"$out" | head -1)"
    else
      log "hostile-$img: refused ($dt ms): $(tr '\n' ' ' <<<"$out" | sed 's/.*OCI runtime create failed: //' | cut -c1-400)"
    fi
  done
fi

# ------------------------------------------------------------------ crun
# crun_s1 MODE: NVIDIA_VISIBLE_DEVICES=0,2 in a pod of the "crun" runtime handler: the same
# adjustment works on crun (device cgroup through crun's eBPF program, the hook under crun).
crun_s1() {
  local mode=$1 pod out handler
  if [ -z "${E2E_CRUN:-}" ]; then skip "crun ($mode): crun not installed"; return; fi
  pod=$(POD_RUNTIME=crun pod_run "crun-$mode") || { bad "crun ($mode): pod not created"; show "$(cat "$E2E/cri/last.err")"; return; }
  handler=$(crictl inspectp -o go-template --template '{{.status.runtimeHandler}}' "$pod" 2>&1)
  if [ "$handler" = crun ] && [ -d "$E2E/crun/k8s.io/$pod" ]; then ok "crun ($mode): the pod runs under crun (handler crun, state in crun's root)"
  else bad "crun ($mode): pod not under crun (handler '$handler')"; ls "$E2E/crun" 2>&1 | head -5; fi
  out=$(ctr_run "$pod" "crun-$mode" glibc "$PROBE
cat /dev/nvidia0 2>&1 | head -1
mknod /tmp/gpu1 c 195 1 && cat /tmp/gpu1 2>&1 | head -1
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0,2)
  pod_rm "$pod"
  expect_gpus "crun ($mode)" "$out" 0 2
  check "crun ($mode): open(/dev/nvidia0) allowed by the device cgroup (ENXIO)" "can't open '/dev/nvidia0': No such device or address" "$out"
  check "crun ($mode): GPU 1 node made with mknod inside is denied (EPERM)" "can't open '/tmp/gpu1': Operation not permitted" "$out"
  check "crun ($mode): cudatest dlopen(libcuda.so.1) sees 2 devices" "dlopen=ok lib=libcuda.so.1 devices=2 cuda=$CUDA_VERSION" "$out"
}
if want crun; then
  section "crun instead of runc (hook and hookless loader)"
  if [ -z "${E2E_CRUN:-}" ]; then
    skip "crun: not installed (test/tools.sh builds it)"
  else
    log "crun: $("$E2E_CRUN" --version | head -1)"
    hybrid=$(e2e_hybrid_cgroup2)
    if [ -n "$hybrid" ]; then
      log "hybrid cgroups (cgroup2 controllers: $hybrid): containerd restarted without /sys/fs/cgroup/unified in its own mount namespace, so runc and crun use cgroup v1"
      E2E_CTD_CGROUP_V1=1 e2e_containerd_restart || bad "crun: containerd (cgroup v1 view) did not come back with gpu-nri registered"
    fi
    crun_s1 hook
    e2e_plugin_stop
    E2E_LOADER=hookless e2e_plugin_config "$E2E/etc/gpu-nri-hookless.yaml"
    e2e_plugin_start "$E2E/etc/gpu-nri-hookless.yaml" || bad "crun: gpu-nri (hookless) did not register"
    crun_s1 hookless
    e2e_plugin_stop
    e2e_plugin_start "$E2E/etc/gpu-nri.yaml" || bad "crun: gpu-nri (hook) did not register again"
    if [ -n "$hybrid" ]; then e2e_containerd_restart || bad "crun: containerd did not come back with gpu-nri registered"; fi
  fi
fi

# ------------------------------------------------------------------ 6. faults
if want s6; then
  section "6. faults: containerd killed and restarted, plugin killed and restarted"
  ppid=$(cat "$E2E/nri/plugin.pid" 2>/dev/null || echo none)
  crictl rmp --all --force >/dev/null 2>&1 || true
  before=$(e2e_registered_count)
  e2e_containerd_stop KILL
  sleep 0.5
  if kill -0 "$ppid" 2>/dev/null; then ok "s6 gpu-nri keeps running while containerd is down"; else bad "s6 gpu-nri exited when containerd died"; show "$(tail -5 "$E2E_PLUGIN_LOG")"; fi
  e2e_containerd_start
  if e2e_plugin_wait_registered "$before"; then ok "s6 gpu-nri reconnected to the restarted containerd by itself"; else bad "s6 gpu-nri did not re-register within 10 s"; show "$(tail -10 "$E2E_PLUGIN_LOG")"; fi
  if kill -0 "$ppid" 2>/dev/null; then ok "s6 the same gpu-nri process (pid $ppid) reconnected, not a restart"; else bad "s6 gpu-nri process $ppid is gone"; fi
  out=$(run_in_pod s6-after-restart glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0,2)
  expect_gpus "s6 first pod after containerd restart" "$out" 0 2
  # The plugin killed: NRI fails open (documented NRI behaviour); restarted, it serves again.
  kill -9 "$ppid" 2>/dev/null; rm -f "$E2E/nri/plugin.pid"; sleep 0.3
  out=$(run_in_pod s6-no-plugin glibc "$PROBE" NVIDIA_VISIBLE_DEVICES=0)
  expect_gpus "s6 plugin killed: containers start without GPUs (NRI fails open)" "$out"
  if e2e_plugin_start "$E2E/etc/gpu-nri.yaml"; then ok "s6 restarted gpu-nri registers again"; else bad "s6 restarted gpu-nri did not register"; fi
  out=$(run_in_pod s6-plugin-back glibc "$PROBE" NVIDIA_VISIBLE_DEVICES=1)
  expect_gpus "s6 restarted plugin serves the next pod" "$out" 1
fi

# ------------------------------------------------------------------ hookless mode
if want hookless; then
  section "gpu-nri hookless mode"
  e2e_plugin_stop
  E2E_LOADER=hookless e2e_plugin_config "$E2E/etc/gpu-nri-hookless.yaml"
  if e2e_plugin_start "$E2E/etc/gpu-nri-hookless.yaml"; then ok "gpu-nri (hookless) registered"; else bad "gpu-nri (hookless) did not register"; fi
  out=$(run_in_pod hl-s1 glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0,2)
  expect_gpus "hookless NVIDIA_VISIBLE_DEVICES=0,2" "$out" 0 2
  check "hookless: cudatest devices=2" "dlopen=ok lib=libcuda.so.1 devices=2 cuda=$CUDA_VERSION" "$out"
  if id=$(pod_run hl-inspect) && cid=$(ctr_create "$id" hl-inspect glibc 'true' NVIDIA_VISIBLE_DEVICES=0 2>/dev/null) &&
    spec=$(crictl inspect "$cid") && grep -q '"/dev/nvidia0"' <<<"$spec"; then
    check_not "hookless: no OCI hook in the container's spec (which has GPU 0)" '"createContainer"' "$spec"
  else
    bad "hookless: no container spec with GPU 0 to inspect"; show "$(cat "$E2E/cri/last.err")"
  fi
  pod_rm "$id"
  loader_matrix hookless
  e2e_plugin_stop
fi

# ------------------------------------------------------------------ pre-registered mode
if want prereg; then
  section "gpu-nri pre-registered mode (plugin_path/10-gpu-nri, conf.d/10-gpu-nri.conf)"
  e2e_plugin_stop
  E2E_LOADER=hook e2e_plugin_config "$E2E/etc/gpu-nri-prereg.yaml"
  sed -i '/^  socket:/d' "$E2E/etc/gpu-nri-prereg.yaml"   # the runtime passes the connection
  e2e_plugin_preregister "$E2E/etc/gpu-nri-prereg.yaml"
  before=$(e2e_registered_count)
  e2e_containerd_stop; e2e_containerd_start
  if e2e_plugin_wait_registered "$before"; then ok "prereg: containerd started gpu-nri and it registered"; else bad "prereg: gpu-nri not registered"; show "$(grep -i nri "$E2E/logs/containerd.log" | tail -10)"; fi
  out=$(run_in_pod pre-s1 glibc "$PROBE
$CUDATEST" NVIDIA_VISIBLE_DEVICES=0,2)
  expect_gpus "prereg NVIDIA_VISIBLE_DEVICES=0,2" "$out" 0 2
  check "prereg: cudatest devices=2" "dlopen=ok lib=libcuda.so.1 devices=2" "$out"
  e2e_plugin_unregister
fi

section "done in $(( ($(now_ms) - T_START) / 1000 )) s"
e2e_summary
