#!/usr/bin/env bash
# test/gpu/nvcc.sh: Debian bookworm's CUDA toolkit 11.8 (nvcc, from non-free) and the g++-11 it
# wants, for building test/gpu/vectoradd.cu for the GPU check only (never in CI: nvidia-cuda-dev is
# 2.8 GB installed). Fetched through a private apt state that lists bookworm only (the machine's apt
# sources are not changed); apt resolves against this machine's installed packages
# (/var/lib/dpkg/status), so only what is missing is downloaded. Everything is extracted with
# dpkg-deb -x (no maintainer scripts) into a version-keyed cache:
#   .cache/tools/nvcc-11.8/root/   the packages extracted; nvcc is root/usr/lib/nvidia-cuda-toolkit/bin/nvcc
#   .cache/tools/nvcc-11.8/bin/nvcc  nvcc with an nvcc.profile beside it that points into root/ (Debian's
#                                  profile names /usr/...); use with -ccbin root/usr/bin/g++-11
#   .cache/tools/nvcc-11.8/.done   complete
# Prints the cache directory. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$ROOT/.cache/tools/nvcc-11.8
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TOOLKIT=11.8.89~11.8.0-5~deb12u1
if [ -f "$D/.done" ]; then echo "$D"; exit 0; fi
state=$D/apt
mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main contrib non-free non-free-firmware" >"$state/sources.list"
opts=(-o "Dir::Etc::sourcelist=$state/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$state/lists"
  -o "Dir::Cache=$state/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root -q)
apt-get "${opts[@]}" update >&2
apt-get "${opts[@]}" -y --download-only --no-install-recommends install "nvidia-cuda-toolkit=$TOOLKIT" g++-11 >&2
rm -rf "$D/root" && mkdir -p "$D/root"
for deb in "$state"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$D/root"; done
(cd "$state/cache/archives" && ls ./*.deb) >"$D/packages.txt"
rm -rf "$state/cache/archives"
R=$D/root W=$D/bin
mkdir -p "$W"
cp "$R/usr/lib/nvidia-cuda-toolkit/bin/nvcc" "$W/nvcc" # nvcc reads nvcc.profile beside its real path
for f in cicc crt; do ln -sfn "$R/usr/lib/nvidia-cuda-toolkit/bin/$f" "$W/$f"; done
cat >"$W/nvcc.profile" <<PROFILE
NVVMIR_LIBRARY_DIR = $R/usr/lib/nvidia-cuda-toolkit/libdevice
PATH += $R/usr/lib/nvidia-cuda-toolkit/bin:$R/usr/bin:
INCLUDES += -I$R/usr/include
LIBRARIES =+ \$(_SPACE_) -L$R/usr/lib/x86_64-linux-gnu/stubs -L$R/usr/lib/x86_64-linux-gnu
PROFILE
touch "$D/.done"
echo "$D"
