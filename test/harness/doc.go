// Package harness is gpu-nri's end-to-end test bed in Go, shared by the
// containerd suite (test/e2e), the Kubernetes suite (test/k8s) and the demo.
//
// # What it does
//
//   - Tools: the binaries test/tools.sh (the one shell bootstrap) caches under
//     .cache/tools/bin — containerd, ctr, the runc shim, crictl, crun, crio,
//     pinns — plus Debian's runc, conmon and podman (Bootstrap, ToolsAt).
//   - Arch: the host's multiarch tuple, loader and musl names derived from
//     runtime.GOARCH in one place (HostArch); no path hard-codes x86_64.
//   - Images: single-layer OCI images written as an OCI image-layout archive
//     with the image-spec types (WriteOCIArchive), from directory trees made
//     with RootFS; StandardImages builds the suite's busybox, pause, glibc,
//     rhel, distroless, musl and hostile-* images; GPUNRIImage is the
//     Dockerfile's content without a Docker engine. ImportImages loads an
//     archive with `ctr -n k8s.io images import`.
//   - Containerd: a private containerd (every socket, root, state, shim and
//     runtime directory under one work dir; CRI + NRI; the pause image
//     pinned; runc and, when built, crun as runtime handlers), started,
//     waited for (CRI Version answers and the NRI socket exists), stopped
//     (pods removed through CRI), killed, restarted, optionally in a private
//     mount namespace without /sys/fs/cgroup/unified (StartOptions.CgroupV1)
//     so crun works on hybrid-cgroup hosts.
//   - CRIO: a private CRI-O v1.34.0 (config, --config-dir, sockets,
//     containers-storage and every other path under its Dir; cgroupfs;
//     conmon; runc and crun handlers), the suite's images pulled into its
//     storage by Podman from the OCI archive, pods with a PID namespace
//     per container. CRIRuntime is what the suites see of either runtime
//     (Containerd and CRIO implement it); Env.UseRuntime picks the one
//     the helpers talk to.
//   - Plugin: gpu-nri in external mode, ready when its /readyz says it is
//     registered and has an inventory (WaitReady, WaitNotReady); in
//     pre-registered mode installed into plugin_path (Preregister), where it
//     has no /readyz: PreregisteredPids finds the process containerd started.
//   - CRI: a k8s.io/cri-api v1 client over containerd's socket: host-network
//     pods, create/start/wait/log of containers, the final OCI spec of a
//     container (ContainerStatus verbose info), refusals as *CreateError
//     with the runtime's message.
//   - Env: Setup builds all of it (simulated host from test/simhost, the
//     sentinel directory the hostile images point at, images, containerd)
//     and Teardown removes it; Pod and MustRun are testing.TB helpers that
//     remove what they made with t.Cleanup.
//
// # Guarantees
//
// Nothing outside the work dir is touched except the apt packages
// test/tools.sh installs and the empty cgroups runc creates under
// /sys/fs/cgroup/*/gpu-nri-e2e (removed by Teardown, with the empty
// crio-conmon-<id> cgroups CRI-O leaves there). Processes are
// stopped by the handle that started them, never by name. Images are
// deterministic: the same trees give the same digests.
//
// # What it does not do
//
// It decides no test outcome: assertions are the suites'. It does not build
// containerd or the other tools (test/tools.sh does), needs root for
// everything that starts containerd, and runs no registry or CNI.
package harness
