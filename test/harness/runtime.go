package harness

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRIRuntime is a private container runtime the suites drive through CRI
// and NRI (*Containerd, *CRIO): where its sockets and directories are, how
// it starts, stops and restarts, how the suite's images get into it and
// what its pods need. Scenarios written against it do not care which
// runtime they run on.
type CRIRuntime interface {
	// Name is "containerd" or "crio".
	Name() string
	// Socket is the CRI socket.
	Socket() string
	// NRISocket is the socket external NRI plugins connect to.
	NRISocket() string
	// NRIPluginDir and NRIConfDir are the pre-registered plugins' binary
	// and config directories.
	NRIPluginDir() string
	NRIConfDir() string
	// CDIDir is the runtime's (only) CDI spec directory.
	CDIDir() string
	// RuntimeRoot is the state root of an OCI runtime handler (--root).
	RuntimeRoot(handler string) string
	// LogPath is the runtime's log file (appended to across restarts).
	LogPath() string
	LogTail(n int) string

	// Start writes the config and starts the runtime, returning once CRI
	// answers and the NRI socket exists.
	Start(ctx context.Context, o StartOptions) error
	// Stop removes every pod (through CRI) and stops the runtime.
	Stop(ctx context.Context) error
	// Kill SIGKILLs the runtime without removing pods (a crash).
	Kill() error
	// Restart is Stop then Start.
	Restart(ctx context.Context, o StartOptions) error
	// Running reports whether the started runtime is alive.
	Running() bool
	// KillStale SIGKILLs what an earlier run left running in the work dir.
	KillStale()

	// LoadImages makes the images of an OCI archive (WriteOCIArchive)
	// available to CRI under their names.
	LoadImages(archive string) error
	// PodPID is the PID namespace mode of the suite's pods and their
	// containers on this runtime (runtime.NamespaceMode_POD is CRI's
	// default).
	PodPID() runtime.NamespaceMode
}

var (
	_ CRIRuntime = (*Containerd)(nil)
	_ CRIRuntime = (*CRIO)(nil)
)

// Name is "containerd".
func (c *Containerd) Name() string { return "containerd" }

// LoadImages imports the archive into containerd's k8s.io namespace with ctr.
func (c *Containerd) LoadImages(archive string) error {
	return ImportImages(c.Tools.Ctr, c.Socket(), archive)
}

// PodPID is CRI's default: one PID namespace per pod (containerd's pause
// process is the sandbox).
func (c *Containerd) PodPID() runtime.NamespaceMode { return runtime.NamespaceMode_POD }
