package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const spec = `{"cdiVersion":"0.6.0","kind":"x.example.com/gpu",
"containerEdits":{"env":["LD_LIBRARY_PATH=/usr/local/nvidia/lib64"],
 "deviceNodes":[{"path":"/dev/nvidiactl","type":"c","major":195,"minor":255}],
 "mounts":[{"hostPath":"/h/lib64","containerPath":"/usr/local/nvidia/lib64","options":["ro","rbind"]}]},
"devices":[
 {"name":"0","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia0","type":"c","major":195,"minor":0}]}},
 {"name":"1","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia1","type":"c","major":195,"minor":1}]}},
 {"name":"2","containerEdits":{"deviceNodes":[{"path":"/dev/nvidia2","type":"c","major":195,"minor":2}]}}]}`

func TestAdjustment(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	require.NoError(t, os.WriteFile(p, []byte(spec), 0o644))

	adj, err := adjustment(p, []string{"0", "2"})
	require.NoError(t, err)
	var paths []string
	for _, d := range adj.GetLinux().GetDevices() {
		paths = append(paths, d.Path)
	}
	require.Equal(t, []string{"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia2"}, paths)
	rules := adj.GetLinux().GetResources().GetDevices()
	require.Len(t, rules, 3, "one cgroup rule per node")
	require.Equal(t, int64(2), rules[2].GetMinor().GetValue())
	require.Len(t, adj.GetMounts(), 1)
	require.Equal(t, "/usr/local/nvidia/lib64", adj.GetMounts()[0].Destination)
	require.Len(t, adj.GetEnv(), 1)
	require.Equal(t, "LD_LIBRARY_PATH", adj.GetEnv()[0].Key)
	require.Equal(t, "/usr/local/nvidia/lib64", adj.GetEnv()[0].Value)

	_, err = adjustment(p, []string{"0", "7"})
	require.ErrorContains(t, err, `no device "7"`)
	_, err = adjustment(filepath.Join(t.TempDir(), "missing.json"), []string{"0"})
	require.ErrorContains(t, err, "NRIFLOOR_SPEC")
}

func TestReadAdjustment(t *testing.T) {
	p, err := filepath.Abs(filepath.Join(t.TempDir(), "x.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte(spec), 0o644))
	want, err := adjustment(p, []string{"2"})
	require.NoError(t, err)
	data, err := protojson.Marshal(want)
	require.NoError(t, err)
	adjPath := filepath.Join(t.TempDir(), "adj.json")
	require.NoError(t, os.WriteFile(adjPath, data, 0o644))

	got, err := readAdjustment(adjPath)
	require.NoError(t, err)
	require.True(t, proto.Equal(want, got), "read back %v, wrote %v", got, want)
	require.Len(t, got.GetLinux().GetDevices(), 2)

	require.NoError(t, os.WriteFile(adjPath, []byte(`{"mounts": 3}`), 0o644))
	_, err = readAdjustment(adjPath)
	require.ErrorContains(t, err, "NRIFLOOR_ADJUSTMENT "+adjPath)
}
