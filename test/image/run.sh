#!/usr/bin/env bash
# test/image/run.sh (`make test-image`): build deploy/image/Dockerfile itself with Podman, offline,
# and check the image: the static binaries (gpu-nri and the hook's gpu-nri-hook) run in a base
# without libc, the entrypoint, command,
# user and labels are what the Kubernetes manifests and test/k8s's hand-made image assume.
#
# The machine reaches no registry, so the Dockerfile's two base images are local stand-ins made
# here: golang:$GO_VERSION from this machine's Go toolchain (plus busybox for RUN's /bin/sh), and
# gcr.io/distroless/static-debian12 as an image with only /etc/passwd, /etc/group and /tmp (what
# the binary may use of distroless/static; no libc, no shell). Go modules come from this
# machine's module cache through GOPROXY=file://...,off: the build container has no network
# worth the name (no CA certificates), so what the build stage downloads is downloaded here first
# (`go mod download`, through this machine's GOPROXY) and the build never looks further.
# From nothing: TMPDIR=$(mktemp -d) GOMODCACHE=$(mktemp -d) bash test/image/run.sh (an empty
# module cache, and fresh build cache mounts: buildah keeps them under $TMPDIR/buildah-cache).
# Root only (rootful Podman); ends with one line "N passed, M failed".
set -uo pipefail
# shellcheck source=test/image/lib.sh
source "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=${IMAGE_DIR:-/tmp/gpu-nri-image}

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: building the image with rootful Podman needs root"; echo "0 passed, 0 failed"; exit 0
fi
TOOLS=none bash "$REPO/test/tools.sh" >/dev/null || die "test/tools.sh failed (apt packages)"
command -v podman >/dev/null || die "podman is not installed (test/tools.sh installs it)"
[ -x /bin/busybox ] || die "busybox-static is not installed"

GO_VERSION=$(sed -n 's/^ARG GO_VERSION=//p' "$REPO/deploy/image/Dockerfile")
GOROOT=$(go env GOROOT) GOMODCACHE=$(go env GOMODCACHE)
[ "$(go env GOVERSION)" = "go$GO_VERSION" ] || log "host Go is $(go env GOVERSION), the Dockerfile asks for $GO_VERSION: the stand-in carries the host's"
# A fresh machine (or GOMODCACHE=$(mktemp -d)) has none of the modules the build container asks
# for, and a used one may lack some: the Dockerfile's `go mod download` fetches every go.mod
# requirement, including ones no host build or test needed (mousetrap is Windows-only). The
# same command here, with the same go.mod and go.sum, fetches
# exactly those and the go.mod files of the module graph (it does not touch go.sum); it is a
# no-op when the cache already has them.
(cd "$REPO" && go mod download) || die "go mod download failed (GOPROXY=$(go env GOPROXY)): the build container cannot fetch modules itself"
GOLANG=docker.io/library/golang:$GO_VERSION DISTROLESS=gcr.io/distroless/static-debian12:latest
IMG=localhost/gpu-nri:image-test HANDMADE=localhost/gpu-nri:image-test-handmade
# This VM has no CAP_SYS_RESOURCE: Podman's default rlimits (nofile 1048576) cannot be set.
RUN=(podman --runtime runc run --rm --network=none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
VERSION=image-test COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)

cleanup() {
  podman rmi -f "$IMG" "$HANDMADE" "$GOLANG" "$DISTROLESS" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W"

section "stand-in base images"
t0=$(now_ms)
r=$W/golang
mkdir -p "$r/bin" "$r/usr/local" "$r/tmp" "$r/go" "$r/etc"
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for a in sh mkdir cp ls cat env; do ln -s busybox "$r/bin/$a"; done
cp -a "$GOROOT" "$r/usr/local/go"
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
tar -C "$r" -cf - . | podman import \
  --change "ENV PATH=/go/bin:/usr/local/go/bin:/bin" --change "ENV GOPATH=/go" --change "ENV GOTOOLCHAIN=local" \
  --change "ENV GOPROXY=file:///gomodcache,off" --change "ENV GOSUMDB=off" --change "ENV GOFLAGS=-modcacherw" \
  --change "WORKDIR /go" - "$GOLANG" >/dev/null && ok "stand-in $GOLANG ($(go env GOVERSION) from this machine)" || bad "stand-in golang image"
r=$W/distroless
mkdir -p "$r/etc" "$r/tmp"; chmod 1777 "$r/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$r/etc/group"
tar -C "$r" -cf - . | podman import - "$DISTROLESS" >/dev/null && ok "stand-in $DISTROLESS (passwd, group, /tmp; no libc, no shell)" || bad "stand-in distroless image"
rm -rf "$W/golang" "$W/distroless"
log "base images in $(( $(now_ms) - t0 )) ms"

section "podman build -f deploy/image/Dockerfile"
t0=$(now_ms)
if out=$(cd "$REPO" && podman --runtime runc build --layers=false --pull=never --network=host -v "$GOMODCACHE/cache/download:/gomodcache:ro" \
  --build-arg TARGETARCH="$(go env GOARCH)" --build-arg VERSION=$VERSION --build-arg COMMIT="$COMMIT" -f deploy/image/Dockerfile -t "$IMG" . 2>&1); then
  ok "the Dockerfile builds ($(( $(now_ms) - t0 )) ms)"
else
  bad "podman build failed"; show "$(tail -30 <<<"$out")"
  summary; exit 1
fi

section "the image"
cfg=$(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}' "$IMG")
check_eq "entrypoint, command and user" '["/usr/local/bin/gpu-nri"] ["run","--config","/etc/gpu-nri/config.yaml"] 0:0' "$cfg"
# test/k8s runs the image harness.GPUNRIImage makes without a Docker engine: it must be the same where it counts.
mkdir -p "$W/build"
if (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$W/gpu-nri" ./plugin/cmd/gpu-nri) &&
  (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$W/gpu-nri-hook" ./plugin/cmd/gpu-nri-hook) &&
  (cd "$REPO" && go run ./test/harness/cmd/gpunri-image -bin "$W/gpu-nri" -hook "$W/gpu-nri-hook" -name "$HANDMADE" -out "$W/handmade.tar") && podman load -q -i "$W/handmade.tar" >/dev/null; then
  for f in '{{json .Config.Entrypoint}}' '{{json .Config.Cmd}}' '{{.Config.User}}' '{{index .Config.Labels "org.opencontainers.image.source"}}'; do
    check_eq "test/k8s's hand-made image has the same $f" "$(podman image inspect --format "$f" "$IMG")" "$(podman image inspect --format "$f" "$HANDMADE")"
  done
else
  bad "the hand-made image (test/harness/cmd/gpunri-image) was not built or loaded"
fi
for l in org.opencontainers.image.version=$VERSION org.opencontainers.image.revision=$COMMIT org.opencontainers.image.source=https://github.com/gpu-nri/gpu-nri org.opencontainers.image.licenses=Apache-2.0; do
  got=$(podman image inspect --format "{{index .Config.Labels \"${l%%=*}\"}}" "$IMG")
  check_eq "label ${l%%=*}" "${l#*=}" "$got"
done
out=$("${RUN[@]}" "$IMG" version 2>&1)
check "the binary runs in a base without libc (static) and carries the build's version" "gpu-nri $VERSION" "$out"
check "... and commit" "commit: $COMMIT" "$out"
out=$("${RUN[@]}" "$IMG" config default 2>&1)
check "gpu-nri config default runs in the image" "plugin:" "$out"
# The init container installs /usr/local/bin/gpu-nri-hook as injection.hookPath: it must be there,
# static, and answer as the hook (no state on stdin: a clear error naming the hook, exit 1).
out=$("${RUN[@]}" --entrypoint /usr/local/bin/gpu-nri-hook "$IMG" 2>&1); rc=$?
check "gpu-nri-hook runs in a base without libc (static): usage without 'hook'" "usage: gpu-nri-hook hook" "$out"
check_eq "... and exits 2" 2 "$rc"
out=$("${RUN[@]}" --entrypoint /usr/local/bin/gpu-nri-hook "$IMG" hook </dev/null 2>&1); rc=$?
check "gpu-nri-hook hook with no container state fails naming what is wrong" "hook: parse container state" "$out"
[ "$rc" != 0 ] && ok "... with a non-zero exit ($rc)" || bad "gpu-nri-hook hook with no state exited 0"
out=$("${RUN[@]}" --entrypoint /usr/local/bin/gpu-nri "$IMG" install --mode hook --root /tmp --bin-dir /opt/gpu-nri/bin 2>&1)
check "the init container's install (--mode hook) installs gpu-nri-hook from beside the binary" "create /tmp/opt/gpu-nri/bin/gpu-nri-hook" "$out"
size=$(podman image inspect --format '{{.Size}}' "$IMG")
bin=$(stat -c %s "$W/gpu-nri") hook=$(stat -c %s "$W/gpu-nri-hook")
log "image $((size / 1024)) KiB, binary $((bin / 1024)) KiB, hook binary $((hook / 1024)) KiB"
if [ "$size" -lt $((bin + hook + 1024 * 1024)) ]; then ok "the image is the two binaries and the base, nothing of the build context (.dockerignore)"
else bad "the image is $size bytes for $bin + $hook bytes of binaries: something else got in"; podman history "$IMG"; fi

summary
