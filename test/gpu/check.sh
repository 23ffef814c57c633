#!/usr/bin/env bash
# test/gpu/check.sh: the GPU check, for a machine with a real NVIDIA GPU and driver (docs/gpu-check.md).
# Runs from the repository root with the bundle `make gpu-check-bundle` made (_output/gpu-check: static
# gpu-nri, gpu-nri-hook and ocispec, test/gpu/vectoradd.cu built with nvcc, a glibc rootfs, runc). No
# network, no containerd: the container is started by runc with the OCI spec gpu-nri's own adjustment
# produced (`gpu-nri explain --oci`, NRI's runtime-tools generator, turned into config.json by ocispec).
#
#   1. NVIDIA's view: nvidia-smi -L, -q, the plain header; /proc/driver/nvidia (version, gpus/*/information).
#   2. gpu-nri's view: doctor, explain and cdi generate against the host's driver (host.root /).
#   3. Compared: driver version, GPU count, each GPU's index -> UUID and /dev/nvidia<minor> (explain of
#      that UUID injects exactly that node), CUDA version (NVIDIA_REQUIRE_CUDA at the version nvidia-smi
#      prints is injected, one major above is refused).
#   4. vectoradd in a container with gpu-nri's adjustment: all GPUs, then the last GPU alone (it must
#      see exactly that UUID), in hook and hookless mode.
# Everything goes under $OUT; $OUT/summary.txt has one PASS/FAIL line per check; exit 1 on any FAIL.
#
# Dry run on a machine without a GPU (`make gpu-check-dry-run`): DRIVER_ROOT, DEV_ROOT, PROC_ROOT point at a
# simulated host and NVIDIA_SMI at its nvidia-smi; the kernel cannot run there, so EXPECT_KERNEL names
# the failure the container must print instead (default: "ok", a real GPU).
set -uo pipefail
: "${OUT:?set OUT to the output directory}"
B=${GPU_CHECK_BUNDLE:-_output/gpu-check}
DRIVER_ROOT=${DRIVER_ROOT:-/} DEV_ROOT=${DEV_ROOT:-/dev} PROC_ROOT=${PROC_ROOT:-/proc}
SMI=${NVIDIA_SMI:-nvidia-smi}
EXPECT_KERNEL=${EXPECT_KERNEL:-ok}
B=$(cd "$B" && pwd) || { echo "no bundle at ${GPU_CHECK_BUNDLE:-_output/gpu-check} (make gpu-check-bundle)" >&2; exit 2; }
mkdir -p "$OUT"/nvidia "$OUT"/gpu-nri "$OUT"/container
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
fails=0
pass() { echo "PASS $*" | tee -a "$SUMMARY"; }
fail() { echo "FAIL $*" | tee -a "$SUMMARY"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

GPUNRI=$B/gpu-nri
HOSTFLAGS=(--driver-root "$DRIVER_ROOT" --dev-root "$DEV_ROOT" --proc-root "$PROC_ROOT")
for loader in hook hookless; do
  cat >"$OUT/gpu-nri-$loader.yaml" <<EOF
injection:
  loader: $loader
  hookPath: $B/gpu-nri-hook
EOF
done
CFG=$OUT/gpu-nri-hook.yaml

# ---- 1. NVIDIA's view
uname -a >"$OUT/nvidia/uname.txt"
"$SMI" -L >"$OUT/nvidia/smi-L.txt" 2>&1; echo "rc=$?" >>"$OUT/nvidia/smi-L.txt"
"$SMI" -q >"$OUT/nvidia/smi-q.txt" 2>&1
"$SMI" >"$OUT/nvidia/smi.txt" 2>&1
cat "$PROC_ROOT/driver/nvidia/version" >"$OUT/nvidia/proc-version.txt" 2>&1
for f in "$PROC_ROOT"/driver/nvidia/gpus/*/information; do echo "== $f"; cat "$f"; done >"$OUT/nvidia/proc-gpus.txt" 2>&1
ls -ln "$DEV_ROOT"/nvidia* >"$OUT/nvidia/dev.txt" 2>&1
# index uuid, from nvidia-smi -L ("GPU 0: NVIDIA H200 (UUID: GPU-...)")
sed -n 's/^GPU \([0-9]*\): .*(UUID: \(GPU-[^)]*\)).*/\1 \2/p' "$OUT/nvidia/smi-L.txt" >"$OUT/nvidia/uuids.txt"
# uuid minor, from the kernel module's own files
awk '/^GPU UUID:/{u=$3} /^Device Minor:/{print u, $3}' "$OUT/nvidia/proc-gpus.txt" >"$OUT/nvidia/minors.txt"
ngpus=$(wc -l <"$OUT/nvidia/uuids.txt")
driver=$(grep -o 'Driver Version: *[0-9.]*' "$OUT/nvidia/smi.txt" | head -1 | awk '{print $3}')
cuda=$(grep -o 'CUDA Version: *[0-9.]*' "$OUT/nvidia/smi.txt" | head -1 | awk '{print $3}')
echo "nvidia-smi: $ngpus GPU(s), driver $driver, CUDA $cuda" | tee "$OUT/nvidia/facts.txt"
check "nvidia-smi lists GPUs ($ngpus)" test "$ngpus" -gt 0
check "nvidia-smi prints driver and CUDA versions ($driver, $cuda)" test -n "$driver" -a -n "$cuda"
check "the kernel module names a minor for each GPU" test "$(wc -l <"$OUT/nvidia/minors.txt")" -eq "$ngpus"
if grep -q 'Minor Number' "$OUT/nvidia/smi-q.txt"; then
  # nvidia-smi -q's minors (GPU blocks in index order) agree with /proc's
  paste -d' ' <(awk '/^GPU UUID|GPU UUID/{print $NF}' "$OUT/nvidia/smi-q.txt") <(awk '/Minor Number/{print $NF}' "$OUT/nvidia/smi-q.txt") |
    sort >"$OUT/nvidia/minors-smi.txt"
  check "nvidia-smi -q minors equal /proc/driver/nvidia's" diff <(sort "$OUT/nvidia/minors.txt") "$OUT/nvidia/minors-smi.txt"
fi

# ---- 2. gpu-nri's view
"$GPUNRI" version >"$OUT/gpu-nri/version.txt" 2>&1
"$GPUNRI" doctor -c "$CFG" "${HOSTFLAGS[@]}" >"$OUT/gpu-nri/doctor.txt" 2>&1
"$GPUNRI" cdi generate -c "$CFG" "${HOSTFLAGS[@]}" -o - >"$OUT/gpu-nri/cdi.yaml" 2>"$OUT/gpu-nri/cdi.stderr"
check "gpu-nri cdi generate" test -s "$OUT/gpu-nri/cdi.yaml"
"$GPUNRI" explain -c "$CFG" "${HOSTFLAGS[@]}" --env NVIDIA_VISIBLE_DEVICES=all --env NVIDIA_DRIVER_CAPABILITIES=compute,utility \
  >"$OUT/gpu-nri/explain-all.txt" 2>&1
check "gpu-nri explain injects all GPUs" grep -q '^Outcome *injected' "$OUT/gpu-nri/explain-all.txt"

# ---- 3. compared
check "doctor reports driver $driver and $ngpus GPU(s)" grep -Eq "NVIDIA driver $driver, (CUDA [0-9.]+, )?$ngpus GPU\(s\)" "$OUT/gpu-nri/doctor.txt"
check "doctor reports CUDA $cuda" grep -q "NVIDIA driver $driver, CUDA $cuda," "$OUT/gpu-nri/doctor.txt"
check "doctor reports no missing driver facts" bash -c "! grep -q 'facts .* are unavailable' '$OUT/gpu-nri/doctor.txt'"
while read -r idx uuid; do
  minor=$(awk -v u="$uuid" '$1 == u {print $2}' "$OUT/nvidia/minors.txt")
  f=$OUT/gpu-nri/explain-gpu$idx.json
  "$GPUNRI" explain -c "$CFG" "${HOSTFLAGS[@]}" -o json --env NVIDIA_VISIBLE_DEVICES="$uuid" >"$f" 2>&1
  check "GPU $idx: gpu-nri selects $idx=$uuid" grep -q "\"$idx=$uuid\"" "$f"
  check "GPU $idx: gpu-nri injects /dev/nvidia$minor only" bash -c "grep -q '\"/dev/nvidia$minor\"' '$f' &&
    [ \"\$(grep -o '\"/dev/nvidia[0-9]*\"' '$f' | sort -u | wc -l)\" -eq 1 ]"
done <"$OUT/nvidia/uuids.txt"
major=${cuda%%.*}
"$GPUNRI" explain -c "$CFG" "${HOSTFLAGS[@]}" --env NVIDIA_VISIBLE_DEVICES=0 --env "NVIDIA_REQUIRE_CUDA=cuda>=$cuda" \
  >"$OUT/gpu-nri/require-cuda-ok.txt" 2>&1
check "NVIDIA_REQUIRE_CUDA=cuda>=$cuda is met (gpu-nri reads CUDA $cuda)" test $? -eq 0
"$GPUNRI" explain -c "$CFG" "${HOSTFLAGS[@]}" --env NVIDIA_VISIBLE_DEVICES=0 --env "NVIDIA_REQUIRE_CUDA=cuda>=$((major + 1)).0" \
  >"$OUT/gpu-nri/require-cuda-next.txt" 2>&1
check "NVIDIA_REQUIRE_CUDA=cuda>=$((major + 1)).0 is refused" test $? -eq 1

# ---- 4. vectoradd in a container started with gpu-nri's adjustment
RUNC=$(command -v runc || true)
[ -n "$RUNC" ] || RUNC=$B/runc
export LD_LIBRARY_PATH=$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} # the bundled runc's libseccomp
last=$(tail -1 "$OUT/nvidia/uuids.txt")
run_ctr() { # name loader visible want-devices [want-uuid]
  local name=$1 loader=$2 visible=$3 want=$4 uuid=${5:-} d=$OUT/container/$1
  mkdir -p "$d/rootfs" && tar -xf "$B/rootfs.tar" -C "$d/rootfs"
  "$GPUNRI" explain -c "$OUT/gpu-nri-$loader.yaml" "${HOSTFLAGS[@]}" --oci -o json --container "$name" \
    --env NVIDIA_VISIBLE_DEVICES="$visible" --env NVIDIA_DRIVER_CAPABILITIES=compute,utility >"$d/explain.json" 2>"$d/explain.stderr"
  if ! "$B/ocispec" -rootfs rootfs -o "$d/config.json" -- /bin/sh -c 'for n in /dev/nvidia*; do echo "node $n"; done; exec /usr/local/bin/vectoradd' <"$d/explain.json" 2>"$d/ocispec.stderr"; then
    fail "$name: OCI spec from gpu-nri's adjustment ($(cat "$d/ocispec.stderr"))"
    return
  fi
  timeout 120 "$RUNC" --root "$OUT/container/runc-state" run --bundle "$d" "gpu-check-$name-$$" >"$d/output.txt" 2>&1
  echo "rc=$?" >>"$d/output.txt"
  local nodes
  nodes=$(grep -c '^node /dev/nvidia[0-9][0-9]*$' "$d/output.txt")
  check "$name ($loader): the container has $want GPU node(s)" test "$nodes" -eq "$want"
  if [ -n "$uuid" ]; then
    local minor
    minor=$(awk -v u="$uuid" '$1 == u {print $2}' "$OUT/nvidia/minors.txt")
    check "$name ($loader): its node is /dev/nvidia$minor" grep -q "^node /dev/nvidia$minor\$" "$d/output.txt"
  fi
  if [ "$EXPECT_KERNEL" = ok ]; then
    check "$name ($loader): vectoradd ran on $want GPU(s)" grep -q "^vectoradd devices=$want ok" "$d/output.txt"
    [ -z "$uuid" ] || check "$name ($loader): the container's GPU is $uuid" grep -q "uuid=$uuid " "$d/output.txt"
  else
    check "$name ($loader): vectoradd reached the driver ($EXPECT_KERNEL)" grep -q "$EXPECT_KERNEL" "$d/output.txt"
  fi
}
for loader in hook hookless; do
  run_ctr "all-$loader" "$loader" all "$ngpus"
  run_ctr "last-$loader" "$loader" "${last##* }" 1 "${last##* }"
done

echo "$fails failure(s)" | tee -a "$SUMMARY"
[ "$fails" -eq 0 ]
