# shellcheck shell=bash
# test/e2e/lib.sh: the shell e2e harness, still sourced by test/k8s/run.sh and test/image/run.sh
# (the e2e suite, the demo and the benchmark are Go: test/harness, test/e2e/*_test.go, test/e2e/cmd).
#
# A private containerd (CRI + NRI, own sockets, root, state, shim and runc dirs), hand-made OCI
# images (no registry), a simulated GPU host made by test/simhost, gpu-nri built from the tree,
# and crictl helpers. Everything lives under $E2E (default /tmp/gpu-nri-e2e); nothing touches the
# machine's system paths except the apt packages tools.sh installs, and empty cgroups that runc
# creates under /sys/fs/cgroup/*/gpu-nri-e2e (removed again by e2e_teardown).
#
# Conventions: functions are e2e_* (harness), pod_*/ctr_* (CRI), ok/bad/check* (results).
# Environment: E2E_DIR (work dir), E2E_KEEP=1 (leave containerd and the plugin running on exit),
# E2E_CRUN (a crun binary instead of the one test/tools.sh builds).

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E=${E2E_DIR:-/tmp/gpu-nri-e2e}
E2E_NS=gpu-nri-e2e                     # CRI pod namespace
E2E_CGROUP=/gpu-nri-e2e                # cgroup parent of every pod (cgroupfs driver)
E2E_GPUS=${E2E_GPUS:-4}
PAUSE_IMAGE=localhost/gpu-nri-e2e/pause:1
export CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1
export CONTAINERD_ADDRESS=$E2E/ctd/containerd.sock

E2E_PASS=0 E2E_FAIL=0 E2E_SKIP=0
E2E_FAILED=()

# ------------------------------------------------------------------ output and results
if [ -t 1 ]; then
  C_OK=$'\e[32m' C_BAD=$'\e[31m' C_DIM=$'\e[2m' C_HEAD=$'\e[1;36m' C_SKIP=$'\e[33m' C_OFF=$'\e[0m'
else
  C_OK='' C_BAD='' C_DIM='' C_HEAD='' C_SKIP='' C_OFF=''
fi
now_ms() { echo $(($(date +%s%N) / 1000000)); }
log() { echo "${C_DIM}# $*${C_OFF}" >&2; }
# die MESSAGE: stop the script; E2E_ON_DIE (a command) runs first, e.g. to show a log.
die() { echo "${C_BAD}e2e: $*${C_OFF}" >&2; [ -z "${E2E_ON_DIE:-}" ] || eval "$E2E_ON_DIE"; exit 1; }
section() { echo; echo "${C_HEAD}== $*${C_OFF}"; }
ok() { echo "  ${C_OK}PASS${C_OFF} $*"; E2E_PASS=$((E2E_PASS + 1)); }
bad() { echo "  ${C_BAD}FAIL${C_OFF} $*"; E2E_FAIL=$((E2E_FAIL + 1)); E2E_FAILED+=("$*"); }
skip() { echo "  ${C_SKIP}SKIP${C_OFF} $*"; E2E_SKIP=$((E2E_SKIP + 1)); }
show() { # show TEXT: the container output that a failed check was made against
  sed 's/^/      | /' <<<"$1" | head -"${E2E_SHOW_LINES:-40}"
}
# check NAME PATTERN TEXT: pass when TEXT contains the fixed string PATTERN.
check() {
  if grep -qF -- "$2" <<<"$3"; then ok "$1"; else bad "$1 (missing '$2')"; show "$3"; fi
}
# check_not NAME PATTERN TEXT: pass when TEXT does not contain PATTERN.
check_not() {
  if grep -qF -- "$2" <<<"$3"; then bad "$1 (unexpected '$2')"; show "$3"; else ok "$1"; fi
}
# check_re NAME ERE TEXT
check_re() {
  if grep -qE -- "$2" <<<"$3"; then ok "$1"; else bad "$1 (no match for /$2/)"; show "$3"; fi
}
# check_eq NAME WANT GOT
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (want '$2', got '$3')"; fi
}
e2e_summary() {
  echo
  if [ "$E2E_FAIL" -gt 0 ]; then
    echo "Failed checks:"
    printf '  - %s\n' "${E2E_FAILED[@]}"
  fi
  [ "$E2E_SKIP" -gt 0 ] && echo "($E2E_SKIP skipped)"
  echo "$E2E_PASS passed, $E2E_FAIL failed"
  [ "$E2E_FAIL" -eq 0 ]
}

# e2e_require_root: not root means a clear skip, never a failure.
e2e_require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the gpu-nri end-to-end suite needs root (it runs containerd, runc and mknod);" \
      "run it as root, e.g. 'sudo make test-e2e'."
    echo "0 passed, 0 failed"
    exit 0
  fi
}

# js STRING: STRING as a JSON string literal.
js() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}
# kv_json K=V...: a JSON object body ("k":"v",...) from K=V words (values may contain '=').
kv_json() {
  local out='' kv
  for kv in "$@"; do out+="${out:+,}$(js "${kv%%=*}"):$(js "${kv#*=}")"; done
  printf '%s' "$out"
}

# ------------------------------------------------------------------ builds
# e2e_tools: containerd, ctr, shim, crictl (cached by version by test/tools.sh), runc, busybox.
e2e_tools() {
  local bin
  bin=$(TOOLS=e2e WITH_PODMAN=0 bash "$E2E_REPO/test/tools.sh" | tail -1) || die "test/tools.sh failed"
  [ -x "$bin/containerd" ] && [ -x "$bin/crictl" ] && [ -x "$bin/containerd-shim-runc-v2" ] || die "tools missing in $bin"
  export PATH=$bin:$PATH
  E2E_RUNC=$(command -v runc) || die "runc not installed (apt-get install runc)"
  # Optional: the crun runtime handler and its scenarios. Only the crun tools.sh built: Debian's
  # (1.8.1, which podman may pull in) cannot read containerd 2.x's specs.
  if [ -z "${E2E_CRUN:-}" ] && [ -x "$bin/crun" ]; then E2E_CRUN=$bin/crun; fi
  [ -x /bin/busybox ] || die "busybox-static not installed"
}

# e2e_build: gpu-nri (static), simhost, the C test programs.
e2e_build() {
  mkdir -p "$E2E/bin" "$E2E/build"
  local t0; t0=$(now_ms)
  (cd "$E2E_REPO" && CGO_ENABLED=0 go build -o "$E2E/bin/gpu-nri" ./plugin/cmd/gpu-nri) || die "building gpu-nri failed"
  (cd "$E2E_REPO" && CGO_ENABLED=0 go build -o "$E2E/bin/gpu-nri-hook" ./plugin/cmd/gpu-nri-hook) || die "building gpu-nri-hook failed"
  (cd "$E2E_REPO" && go build -o "$E2E/bin/simhost" ./test/simhost/cmd/simhost) || die "building simhost failed"
  local src=$E2E_REPO/test/csrc/cudatest.c
  [ -f "$src" ] || die "$src missing"
  gcc -O2 -o "$E2E/build/cudatest" "$src" -ldl || die "gcc cudatest failed"
  if command -v musl-gcc >/dev/null; then
    musl-gcc -O2 -o "$E2E/build/cudatest-musl" "$src" 2>"$E2E/build/musl.log" || rm -f "$E2E/build/cudatest-musl"
  fi
  # LD_PRELOAD payload of the hostile image: proves the preload never runs on the host.
  cat >"$E2E/build/preload.c" <<EOF
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void e2e_preload(void) {
  int fd = open("$E2E/preload-ran-on-host", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) { write(fd, "preload ran\n", 12); close(fd); }
}
EOF
  gcc -O2 -shared -fPIC -o "$E2E/build/x.so" "$E2E/build/preload.c" || die "gcc preload failed"
  log "builds done in $(( $(now_ms) - t0 )) ms"
}

# ------------------------------------------------------------------ simulated GPU host
# e2e_simhost: device nodes, driver root, proc files under $E2E/host; the config's host section in
# $E2E/host.yaml, the manifest (GPUs, UUIDs, nodes, libraries) in $E2E/host.json.
e2e_simhost() {
  rm -rf "$E2E/host"
  # One more GPU than E2E_GPUS, in MIG mode with 2 MIG devices, for the MIG scenario; GPUs
  # 0..E2E_GPUS-1 stay whole (the scenarios' PROBE looks at those).
  "$E2E/bin/simhost" --dir "$E2E/host" --gpus "$((E2E_GPUS + 1))" --mig "$E2E_GPUS:2" --real-nodes --config-out "$E2E/host.yaml" \
    >"$E2E/host.json" 2>"$E2E/logs/simhost.log" || { cat "$E2E/logs/simhost.log" >&2; die "simhost failed"; }
}

# ------------------------------------------------------------------ images (hand-made OCI archives)
# mkimage ROOTFS NAME ENV-JSON-ARRAY ENTRYPOINT-JSON CMD-JSON [MORE-CONFIG-FIELDS]: add an image
# to the OCI layout $E2E/build/oci (MORE-CONFIG-FIELDS: e.g. '"User":"0:0"'); mkimage_archive
# [FILE] tars every image added so far into FILE (default $E2E/build/images.tar).
E2E_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
mkimage() {
  local rootfs=$1 name=$2 env=$3 ep=$4 cmd=$5 more=${6:+,$6} w=$E2E/build/oci ld ls cd cs md mz
  mkdir -p "$w/blobs/sha256"
  tar -C "$rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$w/l" .
  ld=$(sha256sum "$w/l" | cut -d' ' -f1); ls=$(stat -c %s "$w/l"); mv "$w/l" "$w/blobs/sha256/$ld"
  printf '{"architecture":"%s","os":"linux","config":{"Env":%s,"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$E2E_ARCH" "$env" "$ep" "$cmd" "$more" "$ld" >"$w/c"
  cd=$(sha256sum "$w/c" | cut -d' ' -f1); cs=$(stat -c %s "$w/c"); mv "$w/c" "$w/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$cd" "$cs" "$ld" "$ls" >"$w/m"
  md=$(sha256sum "$w/m" | cut -d' ' -f1); mz=$(stat -c %s "$w/m"); mv "$w/m" "$w/blobs/sha256/$md"
  printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}\n' \
    "$md" "$mz" "$E2E_ARCH" "$name" "${name##*:}" >>"$w/manifests"
}
mkimage_archive() {
  local w=$E2E/build/oci
  printf '{"schemaVersion":2,"manifests":[%s]}' "$(paste -sd, "$w/manifests")" >"$w/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
  tar -C "$w" -cf "${1:-$E2E/build/images.tar}" oci-layout index.json blobs || die "image archive failed"
  rm -rf "$w"
}

# gpunri_image_archive NAME:TAG BINARY FILE: deploy/image/Dockerfile's content without a Docker
# engine (the binary at /usr/local/bin/gpu-nri, its entrypoint, command, user and labels) as an
# OCI archive; test/image/run.sh checks it against the image the Dockerfile builds.
gpunri_image_archive() {
  local r=$E2E/build/gpunri-rootfs
  rm -rf "$r"; mkdir -p "$r/usr/local/bin" "$r/etc/gpu-nri" "$r/tmp"
  install -m 0755 "$2" "$r/usr/local/bin/gpu-nri"
  mkimage "$r" "$1" '["PATH=/usr/local/bin:/usr/bin:/bin"]' '["/usr/local/bin/gpu-nri"]' '["run","--config","/etc/gpu-nri/config.yaml"]' \
    '"User":"0:0","Labels":{"org.opencontainers.image.title":"gpu-nri","org.opencontainers.image.source":"https://github.com/gpu-nri/gpu-nri","org.opencontainers.image.version":"'"${1##*:}"'"}'
  mkimage_archive "$3"
  rm -rf "$r"
}

E2E_PATH_ENV='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'

# busybox_rootfs DIR [BINDIR]: a static busybox with its applets (default in /bin). The applet
# links are made once (hundreds of forks) and copied after that.
busybox_rootfs() {
  local r=$1 bindir=${2:-/bin} a t=$E2E/build/busybox-bin
  if [ ! -x "$t/busybox" ] || ! cmp -s /bin/busybox "$t/busybox"; then
    rm -rf "$t"; mkdir -p "$t"; cp /bin/busybox "$t/busybox"
    (cd "$t" && for a in $(./busybox --list); do [ "$a" = busybox ] || ln -s busybox "$a"; done)
  fi
  mkdir -p "$r"/{dev,proc,sys,tmp,etc,run,var,root} "$(dirname "$r$bindir")"
  cp -a "$t" "$r$bindir"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  echo 'root:x:0:' >"$r/etc/group"
  chmod 1777 "$r/tmp"
}
# glibc_libs ROOTFS LIBDIR: the host's loader, libc and libdl in LIBDIR, the PT_INTERP
# path /lib64/ld-linux-x86-64.so.2 resolvable.
glibc_libs() {
  local r=$1 libdir=$2 f
  mkdir -p "$r$libdir"
  for f in ld-linux-x86-64.so.2 libc.so.6 libdl.so.2; do
    cp -L "/lib/x86_64-linux-gnu/$f" "$r$libdir/$f"
  done
}

# e2e_images: build (when its inputs changed) and import every image the scenarios use.
#   busybox  static busybox only                      pause    sleep forever
#   glibc    Debian layout: /lib/x86_64-linux-gnu (real dir, not usr-merged), /lib64 loader link,
#            /etc/ld.so.conf + conf.d, /sbin/ldconfig and an ld.so.cache from the host's ldconfig
#   rhel     RHEL layout: /usr/lib64 with /lib64 -> usr/lib64, /etc/ld.so.conf.d/lib64.conf
#   distroless  libc in /lib/x86_64-linux-gnu, no /etc/ld.so.conf, no ld.so.cache, no ldconfig,
#            busybox only under /busybox (like distroless :debug)
#   musl     busybox + musl's loader + a musl-built cudatest (skipped without musl-gcc)
#   hostile-* glibc images that attack the hook (see run.sh)
e2e_images() {
  local b=$E2E/build/rootfs r key
  # The archive is rebuilt only when its inputs change (building costs seconds on a loaded machine).
  key=$( { cat "${BASH_SOURCE[0]}" /bin/busybox /lib/x86_64-linux-gnu/libc.so.6 "$E2E/build/cudatest" "$E2E/build/x.so";
    cat "$E2E/build/cudatest-musl" 2>/dev/null; echo "$E2E"; } | sha256sum | cut -c1-16)
  if [ ! -f "$E2E/build/images.tar" ] || [ "$(cat "$E2E/build/images.key" 2>/dev/null)" != "$key" ]; then
    e2e_images_build
    echo "$key" >"$E2E/build/images.key"
  fi
  local t0; t0=$(now_ms)
  ctr -n k8s.io images import "$E2E/build/images.tar" >/dev/null || die "importing images failed"
  log "images imported in $(( $(now_ms) - t0 )) ms"
}
e2e_images_build() {
  local b=$E2E/build/rootfs r
  rm -rf "$b" "$E2E/build/oci"; mkdir -p "$b"
  ts() { log "  images: $1 at $(( $(now_ms) - t0 )) ms"; }
  local t0; t0=$(now_ms)

  r=$b/busybox; busybox_rootfs "$r"
  mkimage "$r" localhost/gpu-nri-e2e/busybox:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'
  mkimage "$r" "$PAUSE_IMAGE" "[$E2E_PATH_ENV]" '["/bin/sleep","2147483647"]' null

  r=$b/glibc; busybox_rootfs "$r"
  glibc_libs "$r" /lib/x86_64-linux-gnu
  mkdir -p "$r/lib64" "$r/usr/lib/x86_64-linux-gnu" "$r/etc/ld.so.conf.d" "$r/sbin" "$r/usr/local/bin"
  ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"
  echo 'include /etc/ld.so.conf.d/*.conf' >"$r/etc/ld.so.conf"
  printf '/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$r/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
  rm -f "$r/sbin/ldconfig"; cp /sbin/ldconfig "$r/sbin/ldconfig"
  cp "$E2E/build/cudatest" "$r/usr/local/bin/cudatest"
  /sbin/ldconfig -r "$r"
  mkimage "$r" localhost/gpu-nri-e2e/glibc:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'

  r=$b/rhel; busybox_rootfs "$r"
  glibc_libs "$r" /usr/lib64
  ln -s usr/lib64 "$r/lib64"
  mkdir -p "$r/etc/ld.so.conf.d" "$r/sbin" "$r/usr/local/bin"
  echo 'include ld.so.conf.d/*.conf' >"$r/etc/ld.so.conf"
  # Debian's loader (the only one at hand) has Debian's built-in dirs; RHEL's are /lib64, /usr/lib64.
  printf '/usr/lib64\n' >"$r/etc/ld.so.conf.d/lib64.conf"
  rm -f "$r/sbin/ldconfig"; cp /sbin/ldconfig "$r/sbin/ldconfig"
  cp "$E2E/build/cudatest" "$r/usr/local/bin/cudatest"
  /sbin/ldconfig -r "$r"
  mkimage "$r" localhost/gpu-nri-e2e/rhel:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'

  r=$b/distroless; mkdir -p "$r"/{dev,proc,sys,tmp,etc,run,var,lib64,usr/local/bin}
  busybox_rootfs "$r" /busybox; rm -rf "${r:?}/bin"
  glibc_libs "$r" /lib/x86_64-linux-gnu
  ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"
  cp "$E2E/build/cudatest" "$r/usr/local/bin/cudatest"
  rm -f "$r/etc/ld.so.conf" "$r/etc/ld.so.cache"
  mkimage "$r" localhost/gpu-nri-e2e/distroless:1 '["PATH=/usr/local/bin:/busybox"]' null '["/busybox/sh"]'

  if [ -x "$E2E/build/cudatest-musl" ]; then
    r=$b/musl; busybox_rootfs "$r"
    mkdir -p "$r/lib" "$r/usr/local/bin"
    cp -L /lib/ld-musl-x86_64.so.1 "$r/lib/ld-musl-x86_64.so.1"
    ln -sf ld-musl-x86_64.so.1 "$r/lib/libc.musl-x86_64.so.1"
    cp "$E2E/build/cudatest-musl" "$r/usr/local/bin/cudatest"
    mkimage "$r" localhost/gpu-nri-e2e/musl:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'
  fi

  ts "base images"
  e2e_hostile_images "$b"
  ts "hostile images"
  mkimage_archive
  rm -rf "$b"
  log "images built in $(( $(now_ms) - t0 )) ms"
}

# e2e_hostile_images DIR: glibc images built to attack a careless createContainer hook. Each
# points at $E2E/sentinel (a host directory whose checksum must not change) or at host files.
e2e_hostile_images() {
  local b=$1 r base=$1/glibc
  # 1. the driver's library directory is a symlink to / (CVE-2024-0132 family: path traversal).
  r=$b/hostile-libdir; cp -a "$base" "$r"
  rm -rf "$r/usr/lib/x86_64-linux-gnu"; ln -s / "$r/usr/lib/x86_64-linux-gnu"
  mkimage "$r" localhost/gpu-nri-e2e/hostile-libdir:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'
  # 2. /etc/ld.so.cache is a symlink to a host path (CVE-2025-23267: ld.so.cache written through a link).
  r=$b/hostile-ldcache; cp -a "$base" "$r"
  rm -f "$r/etc/ld.so.cache"; ln -s "$E2E/sentinel/ld.so.cache" "$r/etc/ld.so.cache"
  mkimage "$r" localhost/gpu-nri-e2e/hostile-ldcache:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'
  # 2b. /etc/ld.so.conf.d is a symlink to a host directory (the hook writes 00-gpu-nri.conf there).
  r=$b/hostile-confd; cp -a "$base" "$r"
  rm -rf "$r/etc/ld.so.conf.d"; ln -s "$E2E/sentinel" "$r/etc/ld.so.conf.d"
  mkimage "$r" localhost/gpu-nri-e2e/hostile-confd:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'
  # 3. a FIFO and a directory where the hook creates SONAME links (a blocking open, a wrong type).
  r=$b/hostile-fifo; cp -a "$base" "$r"
  local d
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64; do
    mkdir -p "$r$d"
    mkfifo "$r$d/libcuda.so.1"
    mkdir -p "$r$d/libcuda.so" "$r$d/libnvidia-ml.so.1/sub"
    ln -sf "$E2E/sentinel/victim" "$r$d/libnvidia-ml.so"
  done
  mkimage "$r" localhost/gpu-nri-e2e/hostile-fifo:1 "[$E2E_PATH_ENV]" null '["/bin/sh"]'
  # 4. ENV LD_PRELOAD=/proc/self/cwd/x.so with x.so in the image (CVE-2025-23266 "NVIDIAScape").
  r=$b/hostile-preload; cp -a "$base" "$r"
  cp "$E2E/build/x.so" "$r/x.so"
  mkimage "$r" localhost/gpu-nri-e2e/hostile-preload:1 "[$E2E_PATH_ENV,\"LD_PRELOAD=/proc/self/cwd/x.so\"]" null '["/bin/sh"]'
}

# e2e_sentinel: a host directory the hostile images point at, and its checksum.
e2e_sentinel() {
  rm -rf "$E2E/sentinel"; mkdir -p "$E2E/sentinel"
  echo "sentinel cache" >"$E2E/sentinel/ld.so.cache"
  echo "victim" >"$E2E/sentinel/victim"
  echo "# sentinel" >"$E2E/sentinel/keep.conf"
  rm -f "$E2E/preload-ran-on-host"
}
# host_state: checksums of the sentinel dir (names, types, modes, contents) and of the host's
# /etc/ld.so.cache, and whether the preload payload ever ran on the host.
host_state() {
  (cd "$E2E/sentinel" && find . -printf '%p %y %m %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  sha256sum /etc/ld.so.cache
  [ -e "$E2E/preload-ran-on-host" ] && echo "PRELOAD RAN ON HOST"
  true
}

# ------------------------------------------------------------------ containerd
e2e_containerd_config() {
  mkdir -p "$E2E"/{ctd/root,ctd/state,ctd/tmp,ctd/opt,nri/plugins,nri/conf.d,cdi,s,runc,podlogs,cri,logs}
  cat >"$E2E/ctd/config.toml" <<EOF
version = 3
root = "$E2E/ctd/root"
state = "$E2E/ctd/state"
temp = "$E2E/ctd/tmp"
imports = []
[grpc]
  address = "$E2E/ctd/containerd.sock"
[ttrpc]
  address = "$E2E/ctd/containerd.sock.ttrpc"
[debug]
  address = "$E2E/ctd/debug.sock"
  level = "${E2E_CTD_LOG_LEVEL:-info}"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$E2E/ctd/opt"
  [plugins."io.containerd.image-verifier.v1.bindir"]
    bin_dir = "$E2E/ctd/opt/image-verifier/bin"
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = "$E2E/s"
  [plugins."io.containerd.nri.v1.nri"]
    disable = false
    socket_path = "$E2E/nri/nri.sock"
    plugin_path = "$E2E/nri/plugins"
    plugin_config_path = "$E2E/nri/conf.d"
    plugin_registration_timeout = "5s"
    plugin_request_timeout = "5s"
    disable_connections = false
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "$PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.runtime"]
    cdi_spec_dirs = ["$E2E/cdi"]
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
$(e2e_runtime runc "$E2E_RUNC")
$([ -n "${E2E_CRUN:-}" ] && e2e_runtime crun "$E2E_CRUN")
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$E2E/cni/bin"]
      conf_dir = "$E2E/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOF
  cat >"$E2E/cri/crictl.yaml" <<EOF
runtime-endpoint: unix://$E2E/ctd/containerd.sock
image-endpoint: unix://$E2E/ctd/containerd.sock
timeout: 30
EOF
}
# e2e_runtime NAME BINARY: a runtime handler of the runc shim running BINARY, state under
# $E2E/NAME. "runc" is the default; "crun" exists when crun is installed (POD_RUNTIME=crun).
e2e_runtime() {
  cat <<EOF
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.$1]
        runtime_type = "io.containerd.runc.v2"
        pod_annotations = ["*.gpu-nri.io/*", "gpus.gpu-nri.io/*", "capabilities.gpu-nri.io/*", "cdi.k8s.io/*"]
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.$1.options]
          BinaryName = "$2"
          Root = "$E2E/$1"
          SystemdCgroup = false
EOF
}
crictl() { command crictl --config "$E2E/cri/crictl.yaml" "$@"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# e2e_containerd_start: containerd with the e2e config. With E2E_CTD_CGROUP_V1=1 it runs in a
# private mount namespace without /sys/fs/cgroup/unified: on a hybrid-cgroup host its shims and
# runtimes then see plain cgroup v1 (crun refuses hybrid hierarchies with cgroup2 controllers);
# the host's own mounts are not changed.
e2e_containerd_start() {
  local t0 pre=(); t0=$(now_ms)
  rm -f "$E2E/nri/nri.sock"
  [ "${E2E_CTD_CGROUP_V1:-0}" = 1 ] &&
    pre=(unshare --mount --propagation private sh -c 'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"')
  setsid "${pre[@]}" "$(command -v containerd)" --config "$E2E/ctd/config.toml" >>"$E2E/logs/containerd.log" 2>&1 </dev/null &
  echo $! >"$E2E/ctd/containerd.pid"; disown
  local _
  for _ in $(seq 400); do
    [ -S "$E2E/nri/nri.sock" ] && crictl version >/dev/null 2>&1 && break
    alive "$E2E/ctd/containerd.pid" || { tail -20 "$E2E/logs/containerd.log" >&2; die "containerd exited"; }
    sleep 0.05
  done
  [ -S "$E2E/nri/nri.sock" ] || die "containerd not ready after 20 s (log: $E2E/logs/containerd.log)"
  log "containerd ready after $(( $(now_ms) - t0 )) ms"
}
# e2e_containerd_restart: containerd restarted (with the E2E_CTD_* environment of the call); a
# running external gpu-nri reconnects by itself; returns once it has registered again.
e2e_containerd_restart() {
  local before; before=$(e2e_registered_count)
  e2e_containerd_stop && e2e_containerd_start && e2e_plugin_wait_registered "$before"
}
# e2e_hybrid_cgroup2: the controllers of a hybrid host's cgroup2 mount (empty when none): crun
# refuses such hosts, so its scenarios run containerd with E2E_CTD_CGROUP_V1=1.
e2e_hybrid_cgroup2() { cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || true; }
# e2e_containerd_stop [KILL]: remove every pod, then stop containerd (SIGKILL with KILL, no pod removal).
# shellcheck disable=SC2120 # run.sh passes KILL
e2e_containerd_stop() {
  local pid
  alive "$E2E/ctd/containerd.pid" || { rm -f "$E2E/ctd/containerd.pid"; return 0; }
  pid=$(cat "$E2E/ctd/containerd.pid")
  if [ "${1:-}" = KILL ]; then
    kill -9 "$pid"
  else
    crictl rmp --all --force >/dev/null 2>&1 || true
    kill "$pid"
  fi
  local _; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$E2E/ctd/containerd.pid"
}

# ------------------------------------------------------------------ gpu-nri
# e2e_plugin_config FILE [YAML-LINES...]: the simulated host's section plus the e2e defaults,
# with each extra line appended under its section (extra lines are "section.key: value").
e2e_plugin_config() {
  local f=$1; shift
  local loader=${E2E_LOADER:-hook}
  {
    echo "# generated by test/e2e/lib.sh"
    cat "$E2E/host.yaml"
    cat <<EOF
plugin:
  name: gpu-nri
  index: "10"
  socket: $E2E/nri/nri.sock
  reconnectMin: 200ms
  reconnectMax: 1s
injection:
  loader: $loader
  hookPath: ${E2E_HOOK_BIN:-$E2E/bin/gpu-nri-hook}
  ldconfigPath: /sbin/ldconfig
  cdiSpecDirs: [$E2E/cdi]
log:
  level: ${E2E_LOG_LEVEL:-debug}
EOF
    local l; for l in "$@"; do echo "$l"; done
  } >"$f"
}

# e2e_registered_count: how many plugin registrations containerd has logged so far.
e2e_registered_count() { grep -c 'registered as' "$E2E/logs/containerd.log" 2>/dev/null || true; }

E2E_PLUGIN_LOG=$E2E/logs/gpu-nri.log
# e2e_plugin_start [CONFIG]: gpu-nri in external mode; waits until containerd registered it.
e2e_plugin_start() {
  local cfg=${1:-$E2E/etc/gpu-nri.yaml} before
  before=$(e2e_registered_count)
  setsid "$E2E/bin/gpu-nri" run --config "$cfg" >>"$E2E_PLUGIN_LOG" 2>&1 </dev/null &
  echo $! >"$E2E/nri/plugin.pid"; disown
  e2e_plugin_wait_registered "$before" || { tail -20 "$E2E_PLUGIN_LOG" >&2; return 1; }
}
# e2e_plugin_wait_registered N: until containerd logs more than N "registered" lines naming gpu-nri.
e2e_plugin_wait_registered() {
  local _ n
  for _ in $(seq 200); do
    n=$(e2e_registered_count)
    if [ "${n:-0}" -gt "${1:-0}" ] && grep 'registered as' "$E2E/logs/containerd.log" | tail -n +$((${1:-0} + 1)) | grep -q 'gpu-nri'; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}
e2e_plugin_stop() {
  if alive "$E2E/nri/plugin.pid"; then
    local pid; pid=$(cat "$E2E/nri/plugin.pid"); kill "$pid"
    local _; for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$E2E/nri/plugin.pid"
}
# e2e_plugin_preregister CONFIG: install gpu-nri as plugin_path/10-gpu-nri (copy + rename, the
# runtime may be executing the old one) with its config in plugin_config_path/10-gpu-nri.conf.
e2e_plugin_preregister() {
  cp "$E2E/bin/gpu-nri" "$E2E/nri/plugins/.10-gpu-nri.tmp"
  mv -f "$E2E/nri/plugins/.10-gpu-nri.tmp" "$E2E/nri/plugins/10-gpu-nri"
  cp "$1" "$E2E/nri/conf.d/.10-gpu-nri.conf.tmp"
  mv -f "$E2E/nri/conf.d/.10-gpu-nri.conf.tmp" "$E2E/nri/conf.d/10-gpu-nri.conf"
}
e2e_plugin_unregister() { rm -f "$E2E/nri/plugins/10-gpu-nri" "$E2E/nri/conf.d/10-gpu-nri.conf"; }

# ------------------------------------------------------------------ CRI helpers
# pod_run NAME [ANNOTATION=VALUE...]: a host-network pod; prints its id.
pod_run() {
  local name=$1; shift
  local f=$E2E/cri/pod-$name.json id
  mkdir -p "$E2E/podlogs/$name"
  cat >"$f" <<JSON
{"metadata":{"name":"$name","namespace":"$E2E_NS","uid":"uid-$name-$RANDOM","attempt":0},
 "log_directory":"$E2E/podlogs/$name","annotations":{$(kv_json "$@")},
 "linux":{"cgroup_parent":"$E2E_CGROUP","security_context":{"namespace_options":{"network":2}}}}
JSON
  id=$(crictl runp ${POD_RUNTIME:+--runtime "$POD_RUNTIME"} "$f" 2>"$E2E/cri/last.err") || { cat "$E2E/cri/last.err" >&2; return 1; }
  echo "$f" >"$E2E/cri/pod.$id"
  echo "$id"
}
pod_rm() { crictl stopp "$1" >/dev/null 2>&1; crictl rmp -f "$1" >/dev/null 2>&1; rm -f "$E2E/cri/pod.$1"; }

# ctr_create POD NAME IMAGE SCRIPT [ENV=VALUE...]: prints the container id; on failure the error
# text is in $E2E/cri/last.err (and on stderr). Extra container JSON (mounts, annotations, ...) comes
# from CTR_EXTRA (',"mounts":[...]'); the shell from CTR_SHELL (default /bin/sh).
ctr_create() {
  local pod=$1 name=$2 image=$3 script=$4; shift 4
  local envs='' kv f=$E2E/cri/ctr-$name.json
  for kv in "$@"; do envs+="${envs:+,}{\"key\":$(js "${kv%%=*}"),\"value\":$(js "${kv#*=}")}"; done
  cat >"$f" <<JSON
{"metadata":{"name":"$name","attempt":0},"image":{"image":"localhost/gpu-nri-e2e/$image:1"},
 "log_path":"$name.log","envs":[$envs],
 "command":[$(js "${CTR_SHELL:-/bin/sh}"),"-c",$(js "$script")]${CTR_EXTRA:-}}
JSON
  local id
  if id=$(crictl create "$pod" "$f" "$(cat "$E2E/cri/pod.$pod")" 2>"$E2E/cri/last.err"); then
    echo "$id"
  else
    cat "$E2E/cri/last.err" >&2
    return 1
  fi
}
# ctr_wait ID [TIMEOUT_S]: until the container exits.
ctr_wait() {
  local _ st
  for _ in $(seq $((${2:-20} * 20))); do
    st=$(crictl inspect -o go-template --template '{{.status.state}}' "$1" 2>/dev/null) || true
    [ "$st" = CONTAINER_EXITED ] && return 0
    sleep 0.05
  done
  return 1
}
ctr_logs() { crictl logs "$1" 2>&1; }
# ctr_run POD NAME IMAGE SCRIPT [ENV=VALUE...]: create, start, wait, print logs (and the create error
# text when creation fails; then the status is 1).
ctr_run() {
  local id
  id=$(ctr_create "$@" 2>/dev/null) || { echo "CREATE FAILED: $(cat "$E2E/cri/last.err")"; return 1; }
  crictl start "$id" >/dev/null 2>"$E2E/cri/last.err" || { echo "START FAILED: $(cat "$E2E/cri/last.err")"; return 1; }
  ctr_wait "$id" "${CTR_TIMEOUT:-20}" || echo "TIMEOUT: container $2 still running"
  ctr_logs "$id"
}
# run_in_pod NAME IMAGE SCRIPT [ENV=VALUE...]: a one-container pod with pod annotations POD_ANN
# (an array of K=V); prints the logs and removes the pod.
run_in_pod() {
  local name=$1 pod rc=0; shift
  pod=$(pod_run "$name" "${POD_ANN[@]+"${POD_ANN[@]}"}") || { echo "RUNP FAILED"; return 1; }
  ctr_run "$pod" "$name" "$@" || rc=$?
  pod_rm "$pod"
  return $rc
}

# ------------------------------------------------------------------ lifecycle
# e2e_teardown: stop the plugin and containerd, unmount leftovers, remove state and cgroups.
e2e_teardown() {
  [ "${E2E_KEEP:-0}" = 1 ] && { log "E2E_KEEP=1: leaving containerd and gpu-nri running under $E2E"; return 0; }
  e2e_plugin_stop
  local p; for p in "$E2E"/nri/extra-*.pid; do [ -f "$p" ] && alive "$p" && kill "$(cat "$p")"; rm -f "$p"; done
  e2e_containerd_stop
  awk -v p="$E2E/" 'index($5,p)==1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$E2E/ctd/root" "$E2E/ctd/state" "$E2E/ctd/tmp" "$E2E/s" "$E2E/runc" "$E2E/crun" "$E2E/nri" "$E2E/host" "$E2E/podlogs"
  local c; for c in /sys/fs/cgroup/*/; do [ -d "$c${E2E_CGROUP#/}" ] && rmdir "$c${E2E_CGROUP#/}" 2>/dev/null; done
  true
}

# e2e_setup: everything up to a running containerd with the images imported and the simulated
# host in place (the plugin is started by the caller).
e2e_setup() {
  e2e_require_root
  [ -n "${E2E:-}" ] && [ "$E2E" != / ] || die "bad E2E dir"
  mkdir -p "$E2E/logs" "$E2E/etc"
  alive "$E2E/ctd/containerd.pid" && { log "stopping a previous run's containerd"; E2E_KEEP=0 e2e_teardown; }
  : >"$E2E/logs/containerd.log"; : >"$E2E_PLUGIN_LOG"
  trap 'e2e_teardown' EXIT
  e2e_tools
  e2e_build
  if [ "${E2E_REAL:-0}" = 1 ]; then
    printf 'host:\n  root: /\n  driverRoot: /\n  devRoot: /dev\n  procRoot: /proc\n' >"$E2E/host.yaml"
  else
    e2e_simhost
  fi
  e2e_sentinel
  e2e_containerd_config
  e2e_containerd_start
  e2e_images
}
