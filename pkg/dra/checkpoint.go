package dra

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/gpu-nri/gpu-nri/config"
)

// checkpointVersion is the format of the checkpoint file.
const checkpointVersion = 1

// PreparedDevice is one allocated device of a prepared claim.
type PreparedDevice struct {
	// Requests are the claim's request names the device was allocated for.
	Requests []string `json:"requests"`
	// Pool and Device name it in the ResourceSlice.
	Pool   string `json:"pool"`
	Device string `json:"device"`
	// ID names it to the engine (UUID, or "<gpu>:<mig>").
	ID string `json:"id"`
	// CDIName is the CDI device name the kubelet passes to the runtime.
	CDIName string `json:"cdiName"`
}

// PreparedClaim is a claim as prepared on this node.
type PreparedClaim struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// ReservedFor are the UIDs of the pods the claim is reserved for; only
	// their containers get its devices.
	ReservedFor []string `json:"reservedFor"`
	// Capabilities are the claim's opaque configuration's driver
	// capabilities (empty: the container's own, or the defaults).
	Capabilities []config.Capability `json:"capabilities,omitempty"`
	Devices      []PreparedDevice    `json:"devices"`
}

// Where names the claim in errors.
func (c *PreparedClaim) Where() string {
	return fmt.Sprintf("ResourceClaim %s/%s (uid %s)", c.Namespace, c.Name, c.UID)
}

type checkpoint struct {
	Version int                       `json:"version"`
	Claims  map[string]*PreparedClaim `json:"claims"`
}

// loadCheckpoint reads path; a missing file is an empty checkpoint.
func loadCheckpoint(path string) (map[string]*PreparedClaim, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*PreparedClaim{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dra: checkpoint: %w", err)
	}
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("dra: checkpoint %s: %w", path, err)
	}
	if cp.Version != checkpointVersion {
		return nil, fmt.Errorf("dra: checkpoint %s: version %d, this gpu-nri reads %d", path, cp.Version, checkpointVersion)
	}
	if cp.Claims == nil {
		cp.Claims = map[string]*PreparedClaim{}
	}
	return cp.Claims, nil
}

// saveCheckpoint writes claims to path atomically (temporary file, fsync,
// rename).
func saveCheckpoint(path string, claims map[string]*PreparedClaim) error {
	b, err := json.MarshalIndent(checkpoint{Version: checkpointVersion, Claims: claims}, "", "  ")
	if err != nil {
		return fmt.Errorf("dra: checkpoint: %w", err)
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dra: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("dra: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("dra: writing %s: %w", path, err)
	}
	return nil
}

// reservedFor reports whether pod is among c's pods.
func (c *PreparedClaim) reservedFor(pod string) bool { return slices.Contains(c.ReservedFor, pod) }
