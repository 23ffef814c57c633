#!/usr/bin/env bash
# test/gpu/bundle.sh: builds what test/gpu/check.sh carries to a GPU machine into _output/gpu-check
# (ignored; well under the device's 64 MiB): static gpu-nri, gpu-nri-hook and ocispec, vectoradd
# (test/gpu/vectoradd.cu, nvcc 11.8 from test/gpu/nvcc.sh, sm_90 code plus PTX), runc and its
# libseccomp, and rootfs.tar (static busybox, this machine's glibc, ldconfig, vectoradd in
# /usr/local/bin). Prints the bundle's size.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$ROOT/_output/gpu-check
rm -rf "$B" && mkdir -p "$B/lib"
cd "$ROOT"
for p in gpu-nri:./plugin/cmd/gpu-nri gpu-nri-hook:./plugin/cmd/gpu-nri-hook ocispec:./test/gpu/cmd/ocispec; do
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$B/${p%%:*}" "${p#*:}"
done
NV=$(bash test/gpu/nvcc.sh)
"$NV/bin/nvcc" -ccbin "$NV/root/usr/bin/g++-11" -O2 -gencode arch=compute_90,code='[sm_90,compute_90]' \
  -o "$B/vectoradd" test/gpu/vectoradd.cu
cp "$(command -v runc)" "$B/runc"
cp -L /lib/x86_64-linux-gnu/libseccomp.so.2 "$B/lib/"
r=$(mktemp -d)
trap 'rm -rf "$r"' EXIT
mkdir -p "$r"/{bin,sbin,dev,proc,sys,tmp,etc/ld.so.conf.d,lib/x86_64-linux-gnu,lib64,usr/lib/x86_64-linux-gnu,usr/local/bin}
cp /bin/busybox "$r/bin/busybox" && for a in sh ls cat; do ln -s busybox "$r/bin/$a"; done
for f in ld-linux-x86-64.so.2 libc.so.6 libdl.so.2 libm.so.6 libpthread.so.0 librt.so.1; do cp -L "/lib/x86_64-linux-gnu/$f" "$r/lib/x86_64-linux-gnu/"; done
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"
cp /sbin/ldconfig "$r/sbin/ldconfig"
printf 'include /etc/ld.so.conf.d/*.conf\n' >"$r/etc/ld.so.conf"
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$r/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
cp "$B/vectoradd" "$r/usr/local/bin/vectoradd"
/sbin/ldconfig -r "$r"
tar -C "$r" -cf "$B/rootfs.tar" .
du -sh "$B"
