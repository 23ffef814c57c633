#!/usr/bin/env bash
# test/gpu/dry-run.sh: runs test/gpu/check.sh on this machine against a simulated host (test/simhost, real
# device nodes, so root), to prove the script up to the kernel launch: the simulated driver cannot run a
# kernel, and NVIDIA's CUDA runtime stops at its driver validity check (cudaErrorSoftwareValidityNotEstablished),
# which the containers must print. OUT defaults to _output/gpu-check-dry-run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export OUT=${OUT:-$ROOT/_output/gpu-check-dry-run}
H=$(mktemp -d)
trap 'rm -rf "$H"' EXIT
go run ./test/simhost/cmd/simhost --dir "$H" --gpus 4 --real-nodes >/dev/null
rm -rf "$OUT"
DRIVER_ROOT=$H/driver DEV_ROOT=$H/dev PROC_ROOT=$H/proc NVIDIA_SMI=$H/driver/usr/bin/nvidia-smi \
  EXPECT_KERNEL=cudaErrorSoftwareValidityNotEstablished bash test/gpu/check.sh
