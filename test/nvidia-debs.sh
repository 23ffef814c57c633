#!/usr/bin/env bash
# test/nvidia-debs.sh: NVIDIA's own binaries from Debian's non-free and contrib archives, for the suites
# that run NVIDIA's real code (issue 12): the driver userland 535 (bookworm) and 550 (trixie), NVIDIA's
# CUDA runtime (libcudart) and NVIDIA's NVML bindings (pynvml). Fetched through a private apt state
# (the machine's apt sources are not changed), cached by version under .cache/tools/nvidia-debs, and
# extracted with dpkg-deb -x (maintainer scripts never run). Never committed.
#
# Layout of the cache (NV=.cache/tools/nvidia-debs):
#   $NV/driver-<version>/packages.txt the .deb files fetched (removed once extracted)
#   $NV/driver-<version>/root/        those packages extracted (Debian's layout, without the
#                                     /etc/alternatives links its postinst would make)
#   $NV/driver-<version>/control/<deb>/ each package's control files (postinst, ...), from dpkg-deb -e
#   $NV/cudart-<version>/root/        libcudart12 (and libcudart11.0) extracted
#   $NV/pynvml-<version>/root/        python3-pynvml extracted (pure Python: PYTHONPATH=root/usr/lib/python3/dist-packages)
# Prints $NV. Idempotent; each entry is complete once its .done file exists.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NV=$ROOT/.cache/tools/nvidia-debs
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DRIVER_535=535.261.03-1 DRIVER_550=550.163.01-2
CUDART_12=12.4.127~12.4.1-2 CUDART_11=11.8.89~11.8.0-5~deb12u1
PYNVML_12=12.550.89-3
# The driver userland: what nvidia-driver, libcuda1 and nvidia-smi depend on and recommend (apt-cache
# depends), minus the kernel module, the installer cleanup, nvidia-settings and nvidia-persistenced
# (versioned apart from the driver); 550 adds libnvidia-gpucomp.
DRIVER_PKGS=(libcuda1 libnvidia-ml1 nvidia-smi libnvidia-ptxjitcompiler1 libnvidia-pkcs11-openssl3 libnvidia-cfg1
  libnvidia-allocator1 libnvidia-nvvm4 libnvidia-encode1 libnvcuvid1 libgl1-nvidia-glvnd-glx libglx-nvidia0
  libegl-nvidia0 libgles-nvidia1 libgles-nvidia2 libnvidia-eglcore libnvidia-glcore libnvidia-glvkspirv
  libnvidia-rtcore nvidia-vulkan-icd nvidia-egl-icd nvidia-vdpau-driver xserver-xorg-video-nvidia
  firmware-nvidia-gsp nvidia-cuda-mps nvidia-alternative libnvidia-fbc1 libnvoptix1
  libnvidia-opticalflow1 nvidia-opencl-icd libnvidia-api1)

state=$NV/apt
apt_opts=(-o "Dir::Etc::sourcelist=$state/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$state/lists" -o APT::Sandbox::User=root
  -o "Dir::Cache=$state/cache" -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -q)
apt_ready=0
apt_init() {
  [ $apt_ready = 1 ] && return 0
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
  cat >"$state/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main contrib non-free non-free-firmware
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main contrib non-free non-free-firmware
SRC
  apt-get "${apt_opts[@]}" update >&2
  apt_ready=1
}

fetch() { # dir pkg=version...
  local d=$NV/$1; shift
  [ -f "$d/.done" ] && return 0
  apt_init
  rm -rf "$d" && mkdir -p "$d/debs" "$d/root"
  echo "fetching $* into $d" >&2
  (cd "$d/debs" && apt-get "${apt_opts[@]}" download "$@" >&2)
  for deb in "$d"/debs/*.deb; do
    dpkg-deb -x "$deb" "$d/root"
    mkdir -p "$d/control/$(basename "$deb" .deb)" && dpkg-deb -e "$deb" "$d/control/$(basename "$deb" .deb)"
  done
  (cd "$d/debs" && ls) >"$d/packages.txt" && rm -rf "$d/debs"
  touch "$d/.done"
}

driver() { # debian-version [extra packages of that version]
  local v=$1 pkgs=(); shift
  for p in "${DRIVER_PKGS[@]}" "$@"; do pkgs+=("$p=$v"); done
  fetch "driver-${v%-*}" "${pkgs[@]}"
}

what=${1:-all}
case $what in
all|driver) driver "$DRIVER_535"; driver "$DRIVER_550" libnvidia-gpucomp ;;&
all|cudart) fetch "cudart-${CUDART_12%%~*}" "libcudart12=$CUDART_12" "libcudart11.0=$CUDART_11" ;;&
all|pynvml) fetch "pynvml-${PYNVML_12%-*}" "python3-pynvml=$PYNVML_12" ;;&
all|driver|cudart|pynvml) ;;
*) echo "usage: $0 [all|driver|cudart|pynvml]" >&2; exit 2 ;;
esac
echo "$NV"
