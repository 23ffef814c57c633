// Package realdriver installs NVIDIA's real driver userland (the Debian
// packages test/nvidia-debs.sh extracts: 535.261.03 from bookworm,
// 550.163.01 from trixie) into a simulated host's driver root, in place of
// test/simhost's simulated libraries and binaries, so that gpu-nri's
// inventory, CDI generation, explain and daemon read NVIDIA's own file set.
// The simulated /dev and /proc stay (no kernel module here).
//
// Two layouts, as a real host has them:
//
//   - simhost.LayoutDebian: the packages' files where dpkg puts them
//     (/usr/lib/x86_64-linux-gnu/nvidia/current/, /usr/lib/nvidia/current/
//     nvidia-smi, ...) plus the links update-alternatives makes for them.
//     Those links are not listed by hand: Alternatives reads them from
//     nvidia-alternative's postinst (its add_slave / add_multiarch_slave
//     calls, kept under control/ by test/nvidia-debs.sh) and applies the
//     script's own conditions (the source file exists, the link's directory
//     exists).
//   - simhost.LayoutNVIDIA: NVIDIA's .run installer layout, the same files
//     straight in /usr/lib/x86_64-linux-gnu (vdpau/ and gbm/ beside), the
//     binaries in /usr/bin, the X.Org modules under /usr/lib/xorg/modules.
//
// Install returns what it created so that Uninstall can remove exactly that:
// a driver upgrade (535 -> 550) is Uninstall then Install, file by file, as
// a package upgrade is. An ld.so.cache is written the way ldconfig would
// (every SONAME link in the trusted directories).
//
// It does not run maintainer scripts, does not install the glx-alternative
// links (libGL/libEGL vendor selection) nor a kernel module, and is test
// code: never compiled into gpu-nri.
package realdriver
