package doctor

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Default CRI sockets (host paths) doctor asks for the runtime's version.
const (
	DefaultContainerdCRISocket = "/run/containerd/containerd.sock"
	DefaultCRIOCRISocket       = "/var/run/crio/crio.sock"
)

// criSocket is the CRI socket of runtime: Options.CRISocket, else the
// runtime's default.
func (d *doctor) criSocket(runtime string) string {
	if d.o.CRISocket != "" {
		return d.o.CRISocket
	}
	if runtime == "cri-o" {
		return DefaultCRIOCRISocket
	}
	return DefaultContainerdCRISocket
}

// runtimeVersion asks the runtime's CRI socket (under host.root) for its
// name and version: the CRI Version call, which every CRI runtime answers
// without side effects.
func (d *doctor) runtimeVersion(runtime string) (name, version string, err error) {
	sock := d.criSocket(runtime)
	view := d.view(sock)
	conn, err := grpc.NewClient("passthrough:///cri",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", view)
		}))
	if err != nil {
		return "", "", fmt.Errorf("CRI socket %s: %w", sock, err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(d.ctx, d.o.Timeout)
	defer cancel()
	r, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", "", fmt.Errorf("CRI Version on %s: %w", sock, err)
	}
	return r.GetRuntimeName(), r.GetRuntimeVersion(), nil
}

// validatorMinimum is the first release of runtime whose NRI (v0.10+) has
// the default validator that honours required_plugins: containerd 2.2,
// CRI-O 1.35 (CRI-O 1.34 vendors NRI v0.9.1, which has none, and ignores
// the setting: fail-open).
func validatorMinimum(runtime string) (major, minor int, label string) {
	if runtime == "cri-o" {
		return 1, 35, "CRI-O 1.35"
	}
	return 2, 2, "containerd 2.2"
}

// hasDefaultValidator reports whether version of runtime has NRI's default
// validator; ok is false when version does not parse.
func hasDefaultValidator(runtime, version string) (has, ok bool) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false, false
	}
	wantMa, wantMi, _ := validatorMinimum(runtime)
	return ma > wantMa || (ma == wantMa && mi >= wantMi), true
}
