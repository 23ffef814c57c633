package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// TestParseTrace pins the attribution of strace -f lines: attached threads
// by seed, children by the program they executed (execve, execveat of an
// fd by argv[0], a /proc/self/exe re-exec keeping its name), threads with
// their process, PIDs of the container's namespace translated, noise left
// out, the workload not counted.
func TestParseTrace(t *testing.T) {
	trace := `100 openat(AT_FDCWD, "/x", O_RDONLY) = 3
100 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD <unfinished ...>
200 execve("/usr/sbin/runc", ["/usr/sbin/runc", "create"], 0x0 /* 1 var */ <unfinished ...>
100 <... clone resumed>) = 200
200 <... execve resumed>) = 0
200 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD) = 201
201 execveat(6, "", ["/usr/sbin/runc", "init"], 0x0 /* 8 vars */, AT_EMPTY_PATH) = 0
201 mount("/src", "/dst", NULL, MS_BIND|MS_REC, NULL) = 0
201 futex(0x1, FUTEX_WAKE, 1) = 1
201 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD}, 88) = 7 /* 202 in strace's PID NS */
202 execve("/opt/nvidia-cdi-hook", ["nvidia-cdi-hook", "update-ldcache"], 0x0 /* 1 var */) = 0
202 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, exit_signal=0}, 88) = 8 /* 203 in strace's PID NS */
203 symlinkat("a", 3, "b") = 0
202 execve("/proc/self/exe", ["reexec-update-ldcache"], 0x0 /* 1 var */) = 0
202 newfstatat(AT_FDCWD, "/etc", {st_mode=S_IFDIR|0755, st_size=4096, ...}, 0) = 0
201 execve("/bin/sh", ["/bin/sh", "-c", "true"], 0x0 /* 2 vars */) = 0
201 openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3
`
	f := filepath.Join(t.TempDir(), "trace")
	require.NoError(t, os.WriteFile(f, []byte(trace), 0o644))
	c, err := parseTrace(f, map[int]string{100: "shim"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"shim": 1, "runtime": 3, "hooks": 4}, c.syscalls, "execve counts for the program it starts; futex, clone and the workload do not count")
	require.Equal(t, 1, c.mounts)
	require.Equal(t, 5, c.execs)
}

func TestWriteSpec(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "specs")
	spec := &rspec.Spec{Version: "1.2.0", Mounts: []rspec.Mount{{Destination: "/usr/bin/nvidia-smi", Source: "/h/nvidia-smi", Options: []string{"ro"}}}}
	require.NoError(t, writeSpec(dir, "fxdir", spec))
	data, err := os.ReadFile(filepath.Join(dir, "fxdir.json"))
	require.NoError(t, err)
	var back rspec.Spec
	require.NoError(t, json.Unmarshal(data, &back))
	require.Equal(t, *spec, back)
	require.Error(t, writeSpec(filepath.Join(dir, "fxdir.json"), "x", spec), "a file where the directory should be")
}
