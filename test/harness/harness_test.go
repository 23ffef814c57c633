package harness

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
)

func TestParseCRILog(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"full lines", "2026-01-01T00:00:00Z stdout F a\n2026-01-01T00:00:00Z stderr F b c\n", "a\nb c\n"},
		{"partial joined", "2026-01-01T00:00:00Z stdout P ab\n2026-01-01T00:00:00Z stdout F cd\n", "abcd\n"},
		{"empty line", "2026-01-01T00:00:00Z stdout F\n", "\n"},
		{"garbage skipped", "nonsense\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { require.Equal(t, c.want, ParseCRILog(c.in)) })
	}
}

func TestWriteOCIArchive(t *testing.T) {
	dir := t.TempDir()
	r := NewRootFS(filepath.Join(dir, "root")).Mkdir("/bin", "/tmp").Chmod("/tmp", 0o777|fs.ModeSticky).
		Write("/etc/x", "hello\n", 0o644).Symlink("x", "/etc/y").Mkfifo("/run/fifo")
	require.NoError(t, r.Err())
	arch := Arch{GOARCH: "amd64"}
	archive := filepath.Join(dir, "a.tar")
	im := Image{Name: "localhost/t/img:7", RootFS: r.Dir, Env: []string{"A=b"}, Cmd: []string{"/bin/sh"}}
	require.NoError(t, WriteOCIArchive(archive, arch, im))
	files := readTar(t, archive)
	var index ocispec.Index
	require.NoError(t, json.Unmarshal(files["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	require.Equal(t, "localhost/t/img:7", index.Manifests[0].Annotations["io.containerd.image.name"])
	require.Equal(t, "7", index.Manifests[0].Annotations[ocispec.AnnotationRefName])
	var man ocispec.Manifest
	require.NoError(t, json.Unmarshal(files["blobs/sha256/"+index.Manifests[0].Digest.Encoded()], &man))
	var cfg ocispec.Image
	require.NoError(t, json.Unmarshal(files["blobs/sha256/"+man.Config.Digest.Encoded()], &cfg))
	require.Equal(t, []string{"A=b"}, cfg.Config.Env)
	require.Equal(t, man.Layers[0].Digest, cfg.RootFS.DiffIDs[0], "uncompressed layer: digest = diff id")
	layer := files["blobs/sha256/"+man.Layers[0].Digest.Encoded()]
	types := map[string]byte{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		types[h.Name] = h.Typeflag
		require.Zero(t, h.ModTime.Unix(), h.Name)
		if h.Name == "./tmp/" {
			require.Equal(t, int64(0o1777), h.Mode)
		}
	}
	require.Equal(t, map[string]byte{"./bin/": tar.TypeDir, "./etc/": tar.TypeDir, "./etc/x": tar.TypeReg, "./etc/y": tar.TypeSymlink,
		"./run/": tar.TypeDir, "./run/fifo": tar.TypeFifo, "./tmp/": tar.TypeDir}, types)

	// Deterministic: the same tree gives the same archive.
	again := filepath.Join(dir, "b.tar")
	require.NoError(t, WriteOCIArchive(again, arch, im))
	a, _ := os.ReadFile(archive)
	b, _ := os.ReadFile(again)
	require.Equal(t, a, b)
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[h.Name] = data
	}
}

func TestContainerdConfig(t *testing.T) {
	c := &Containerd{Dir: "/tmp/x", PauseImage: PauseImageRef, PodAnnotations: []string{"a/*"},
		Runtimes: []Runtime{{Name: "runc", Binary: "/usr/bin/runc"}, {Name: "crun", Binary: "/c/crun"}}}
	var doc map[string]any
	require.NoError(t, toml.Unmarshal([]byte(c.Config()), &doc))
	plugins := doc["plugins"].(map[string]any)
	rt := plugins["io.containerd.cri.v1.runtime"].(map[string]any)
	require.Equal(t, true, rt["restrict_oom_score_adj"])
	require.Equal(t, []any{"/tmp/x/cdi"}, rt["cdi_spec_dirs"])
	runtimes := rt["containerd"].(map[string]any)["runtimes"].(map[string]any)
	crun := runtimes["crun"].(map[string]any)
	require.Equal(t, []any{"a/*"}, crun["pod_annotations"])
	require.Equal(t, "/c/crun", crun["options"].(map[string]any)["BinaryName"])
	require.Equal(t, "/tmp/x/crun", crun["options"].(map[string]any)["Root"])
	nri := plugins["io.containerd.nri.v1.nri"].(map[string]any)
	require.Equal(t, "/tmp/x/nri/nri.sock", nri["socket_path"])
	require.Equal(t, PauseImageRef, plugins["io.containerd.cri.v1.images"].(map[string]any)["pinned_images"].(map[string]any)["sandbox"])
}

// Every path of the CRI-O config is under Dir (nothing in /etc/crio,
// /var/lib/crio, /var/run or /etc/sysconfig), and the settings this machine
// needs are there.
func TestCRIOConfig(t *testing.T) {
	c := &CRIO{Dir: "/tmp/x/crio", PauseImage: PauseImageRef, Tools: Tools{Pinns: "/t/pinns", Conmon: "/usr/bin/conmon"},
		Handlers: []Runtime{{Name: "runc", Binary: "/usr/bin/runc"}, {Name: "crun", Binary: "/c/crun"}}}
	var doc map[string]any
	require.NoError(t, toml.Unmarshal([]byte(c.Config()), &doc))
	crio := doc["crio"].(map[string]any)
	var paths []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			if strings.HasPrefix(v, "/") {
				paths = append(paths, v)
			}
		}
	}
	walk(crio)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		if p == "/usr/bin/runc" || p == "/c/crun" || p == "/t/pinns" || p == "/usr/bin/conmon" {
			continue
		}
		require.True(t, strings.HasPrefix(p, "/tmp/x/crio/"), "path outside the work dir: %s", p)
	}
	rt := crio["runtime"].(map[string]any)
	require.Equal(t, "cgroupfs", rt["cgroup_manager"])
	require.Equal(t, "disable", rt["irqbalance_config_restore_file"])
	require.Contains(t, rt["default_capabilities"], "MKNOD")
	require.Equal(t, "runc", rt["default_runtime"])
	crun := rt["runtimes"].(map[string]any)["crun"].(map[string]any)
	require.Equal(t, "/c/crun", crun["runtime_path"])
	require.Equal(t, "/tmp/x/crio/rt/crun", crun["runtime_root"])
	require.Equal(t, "pod", crun["monitor_cgroup"])
	nri := crio["nri"].(map[string]any)
	require.Equal(t, true, nri["enable_nri"])
	require.Equal(t, c.NRISocket(), nri["nri_listen"])
	require.Equal(t, PauseImageRef, crio["image"].(map[string]any)["pause_image"])
}

func TestPluginConfigParses(t *testing.T) {
	cases := []struct {
		name string
		pc   PluginConfig
	}{
		{"external hook", PluginConfig{Socket: "/tmp/x/nri.sock", Loader: "hook", HookPath: "/tmp/x/hook", CDIDirs: []string{"/tmp/x/cdi"}, MetricsAddress: "127.0.0.1:1"}},
		{"pre-registered hookless", PluginConfig{Loader: "hookless", HookPath: "/tmp/x/hook", LogLevel: "info"}},
		{"second instance", PluginConfig{Socket: "/tmp/x/nri.sock", Loader: "hook", HookPath: "/tmp/x/hook", Name: "gpu-nri-b", Index: "11", AnnotationDomain: "b.gpu-nri.io"}},
		{"compute not ready allowed, json log", PluginConfig{Socket: "/tmp/x/nri.sock", Loader: "hook", HookPath: "/tmp/x/hook", ComputeNotReady: "allow", LogFormat: "json"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.pc.Host = config.Default().Host
			c.pc.Host.DriverRoot = "/tmp/x/driver"
			text, err := c.pc.YAML()
			require.NoError(t, err)
			cfg, err := config.Parse(text)
			require.NoError(t, err)
			require.Equal(t, "/tmp/x/driver", cfg.Host.DriverRoot)
			require.EqualValues(t, c.pc.Loader, cfg.Injection.Loader)
			require.Equal(t, c.pc.MetricsAddress, cfg.Metrics.Address)
			if c.pc.Name != "" {
				require.Equal(t, c.pc.Name, cfg.Plugin.Name)
				require.Equal(t, c.pc.Index, cfg.Plugin.Index)
				require.Equal(t, c.pc.AnnotationDomain, cfg.Injection.AnnotationDomain)
			} else {
				require.Equal(t, "gpu-nri", cfg.Plugin.Name)
			}
			if c.pc.Socket != "" {
				require.Equal(t, c.pc.Socket, cfg.Plugin.Socket)
			}
			wantCNR, wantFormat := "refuse", "text" // gpu-nri's defaults when the field is empty
			if c.pc.ComputeNotReady != "" {
				wantCNR = c.pc.ComputeNotReady
			}
			if c.pc.LogFormat != "" {
				wantFormat = c.pc.LogFormat
			}
			require.Equal(t, wantCNR, cfg.Requirements.ComputeNotReady)
			require.Equal(t, "refuse", cfg.Requirements.Unverifiable, "the other requirement keys keep their defaults")
			require.Equal(t, wantFormat, cfg.Log.Format)
		})
	}
}

func TestHostArch(t *testing.T) {
	a, err := HostArch()
	if err != nil {
		t.Skipf("no glibc where this architecture's mapping expects it: %v", err)
	}
	_, err = os.Stat(a.LoaderPath())
	require.NoError(t, err, "the PT_INTERP path exists on the host")
}
