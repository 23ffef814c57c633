package fsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/internal/fsutil"
)

func TestWriteFileAtomic(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  []byte // nil: no file before
		mode os.FileMode
	}{
		{name: "new file", mode: 0o644},
		{name: "replaces an existing file", old: []byte("old content, longer than the new"), mode: 0o600},
		{name: "executable", old: []byte("#!/bin/sh\n"), mode: 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tc.old != nil {
				require.NoError(t, os.WriteFile(p, tc.old, 0o666))
			}
			require.NoError(t, fsutil.WriteFileAtomic(p, []byte("new"), tc.mode))
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.Equal(t, "new", string(b))
			st, err := os.Stat(p)
			require.NoError(t, err)
			require.Equal(t, tc.mode, st.Mode().Perm())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left beside the target")
		})
	}
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the target path
		err   string
	}{
		{name: "missing directory", setup: func(_ *testing.T, dir string) string { return filepath.Join(dir, "no", "f") },
			err: "no such file or directory"},
		{name: "target is a directory", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "d")
			require.NoError(t, os.MkdirAll(filepath.Join(p, "child"), 0o755))
			return p
		}, err: "writing "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tc.setup(t, dir)
			before, err := os.ReadDir(dir)
			require.NoError(t, err)
			err = fsutil.WriteFileAtomic(p, []byte("x"), 0o644)
			require.ErrorContains(t, err, tc.err)
			require.ErrorContains(t, err, p, "the error names the target")
			after, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Equal(t, len(before), len(after), "the temporary file is removed")
		})
	}
}

func TestDevNumbers(t *testing.T) {
	for _, tc := range []struct {
		name         string
		major, minor uint32
	}{
		{name: "nvidia0", major: 195, minor: 0},
		{name: "nvidiactl", major: 195, minor: 255},
		{name: "large minor", major: 510, minor: 1 << 19},
		{name: "large major", major: 4000, minor: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			major, minor := fsutil.DevNumbers(unix.Mkdev(tc.major, tc.minor))
			require.Equal(t, int64(tc.major), major)
			require.Equal(t, int64(tc.minor), minor)
		})
	}
}
