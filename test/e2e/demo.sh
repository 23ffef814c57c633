#!/usr/bin/env bash
# test/e2e/demo.sh (`make demo`, root): gpu-nri in two minutes.
#
# Builds what it needs (containerd + crictl via test/tools.sh, gpu-nri, the simulated GPU host),
# starts a private containerd with NRI, starts gpu-nri, runs a pod whose container asks for GPUs
# 0 and 2 with NVIDIA_VISIBLE_DEVICES=0,2, shows what the container sees and what gpu-nri logged,
# then tears everything down. Nothing outside $E2E_DIR (default /tmp/gpu-nri-demo) is touched.
#
#   DEMO_REAL=1   use this machine's NVIDIA driver instead of the simulated host
#                 (only when /dev/nvidiactl exists)
set -euo pipefail
export E2E_DIR=${E2E_DIR:-/tmp/gpu-nri-demo}
# shellcheck source=test/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root: it runs a private containerd and runc and creates device nodes." >&2
  echo "Run: sudo make demo" >&2
  exit 1
fi

say() { echo "${C_HEAD}▶ $*${C_OFF}"; }
box() { sed 's/^/    │ /'; }

if [ "${DEMO_REAL:-0}" = 1 ]; then
  [ -e /dev/nvidiactl ] || die "DEMO_REAL=1 but /dev/nvidiactl does not exist: no NVIDIA driver here"
  export E2E_REAL=1
  WHAT="this machine's NVIDIA driver"
else
  WHAT="a simulated GPU host ($E2E_GPUS GPUs + 1 in MIG mode, real device nodes, a gcc-built libcuda)"
fi

say "Preparing: containerd, crictl, gpu-nri and $WHAT (cached after the first run)"
t0=$(now_ms)
exec 3>&2
E2E_ON_DIE='tail -40 "$E2E_DIR.setup.log" >&3'   # e2e_setup's own die() would exit before the || below
e2e_setup >"$E2E_DIR.setup.log" 2>&1 || die "setup failed"
E2E_ON_DIE=
trap 'e2e_teardown; rm -f "$E2E_DIR.setup.log"' EXIT
echo "    ready in $(( ($(now_ms) - t0) / 1000 )) s: containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), $("$E2E/bin/gpu-nri" version | head -1)"

say "Starting gpu-nri (external NRI plugin, createContainer hook loader)"
E2E_LOADER=hook E2E_LOG_LEVEL=info e2e_plugin_config "$E2E/etc/gpu-nri.yaml"
e2e_plugin_start "$E2E/etc/gpu-nri.yaml" || die "gpu-nri did not register (log: $E2E_PLUGIN_LOG)"
sed 's/^/    /' "$E2E/etc/gpu-nri.yaml" | grep -E 'driverRoot|devRoot|loader|socket' || true

GPUS=0,2
if [ "${DEMO_REAL:-0}" = 1 ]; then
  n=$(ls /dev/nvidia[0-9]* 2>/dev/null | wc -l)
  [ "$n" -ge 3 ] || GPUS=0
fi
say "Running a pod: container 'cuda' (glibc image, no driver inside) with NVIDIA_VISIBLE_DEVICES=$GPUS"
cat <<EOF | box
crictl runp pod.json
crictl create <pod> container.json pod.json    # envs: NVIDIA_VISIBLE_DEVICES=$GPUS
crictl start <container>
EOF
pod=$(pod_run demo)
out=$(ctr_run "$pod" cuda glibc '
echo "## GPU device nodes (/dev/nvidia*)"
ls -l /dev/nvidia* 2>&1 | sed "s/  */ /g"
echo "## Device cgroup: a GPU we did not ask for (mknod of /dev/nvidia1 inside the container)"
mknod /tmp/nvidia1 c 195 1 && cat /tmp/nvidia1 2>&1 | head -1 | sed "s|^cat: ||"
echo "## Driver files bind-mounted from the host (mount options)"
awk "\$5 ~ /nvidia|cuda/ && \$5 !~ /^\/dev\// {split(\$6, o, \",\"); print \$5 \"  (\" o[1] \")\"}" /proc/self/mountinfo | sort | head -24
echo "## ld.so cache entries for the driver"
ldconfig -p 2>/dev/null | grep -E "libcuda|libnvidia-ml" | sed "s/^[[:space:]]*//"
echo "## A CUDA program: dlopen(\"libcuda.so.1\"), no LD_LIBRARY_PATH"
cudatest
echo "## nvidia-smi"
nvidia-smi 2>&1 | head -8
' "NVIDIA_VISIBLE_DEVICES=$GPUS") || true
pod_rm "$pod"
while IFS= read -r line; do
  case $line in
    "## "*) echo; echo "  ${C_HEAD}${line#\#\# }${C_OFF}" ;;
    *) echo "    │ $line" ;;
  esac
done <<<"$out"

echo
say "What gpu-nri logged"
grep -vE 'level=debug' "$E2E_PLUGIN_LOG" | sed -E 's/^time="[^"]*" //' | cut -c1-220 | box

echo
if grep -q 'dlopen=ok' <<<"$out"; then
  echo "${C_OK}✔ The container got GPUs $GPUS, the device cgroup denies the rest, and an unmodified glibc image loads the driver.${C_OFF}"
else
  echo "${C_BAD}✘ The container could not load the driver; see above.${C_OFF}"
fi
say "Tearing down (containerd, gpu-nri, simulated host under $E2E)"
