package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// layered is a runtime configuration merged from several TOML files, with
// the file each value came from.
type layered struct {
	// files are host paths, in the order the runtime loads them.
	files []string
	// merged is the merged configuration.
	merged map[string]any
	// origin maps a dotted key path ("plugins.<id>.disable") to the host
	// path of the file whose value won.
	origin map[string]string
}

func newLayered() *layered {
	return &layered{merged: map[string]any{}, origin: map[string]string{}}
}

// readTOML reads the host file path as a TOML table and, when header is
// not nil, decodes the same document into header too.
func (d *doctor) readTOML(path string, header any) (map[string]any, error) {
	data, err := os.ReadFile(d.view(path))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if header != nil {
		if err := toml.Unmarshal(data, header); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return m, nil
}

// hostPath turns a path under the host view back into the host path.
func (d *doctor) hostPath(view string) (string, error) {
	rel, err := filepath.Rel(d.view("/"), view)
	if err != nil {
		return "", err
	}
	return filepath.Join("/", rel), nil
}

// containerdFiles is containerd's configuration as containerd itself reads
// it: the main file and everything it imports, merged and migrated.
type containerdFiles struct {
	*layered
	version int64
	// notes are findings about the imports themselves (unknown version).
	notes []string
	// cfg is the merged configuration, typed.
	cfg containerdConfig
}

// loadContainerd reads path and every file it imports the way containerd
// 2.4 does (cmd/containerd/server/config.LoadConfig, checked against it):
// breadth first from the main file, each file once; an import is cleaned,
// taken relative to the importing file's directory when not absolute, and
// glob-expanded when it contains '*' (no match is no file; a missing
// explicit file is an error, containerd refuses to start); tables merge key
// by key, recursively, and any other value of a later file replaces the
// earlier one, except top-level arrays (disabled_plugins, required_plugins),
// which are unions. Files are migrated to the highest version among them:
// a version-2 file's [plugins."io.containerd.grpc.v1.cri".containerd] keys
// move under "io.containerd.cri.v1.runtime" where that file does not set
// them, as containerd's CRI plugin does. All paths are host paths read
// under the host root. An error names the file it is about (and the importing
// file for an import).
func (d *doctor) loadContainerd(path string) (*containerdFiles, error) {
	type file struct {
		path    string
		m       map[string]any
		version int64
	}
	type ref struct{ path, parent string }
	var (
		files   []file
		loaded  = map[string]bool{}
		pending = []ref{{path: filepath.Clean(path)}}
	)
	for len(pending) > 0 {
		r := pending[0]
		pending = pending[1:]
		p := r.path
		if loaded[p] {
			continue
		}
		loaded[p] = true
		var h containerdHeader
		m, err := d.readTOML(p, &h)
		if err != nil {
			if r.parent != "" {
				return nil, fmt.Errorf("%s, imported by %s: %w", p, r.parent, err)
			}
			return nil, err
		}
		version := h.Version
		if version == 0 {
			version = 1
		}
		files = append(files, file{p, m, version})
		imports, err := d.resolveImports(p, h.Imports)
		if err != nil {
			return nil, err
		}
		for _, i := range imports {
			pending = append(pending, ref{i, p})
		}
	}

	c := &containerdFiles{layered: newLayered()}
	for _, f := range files {
		c.version = max(c.version, f.version)
	}
	for i, f := range files {
		if i > 0 && f.version < 2 {
			c.files = append(c.files, f.path)
			c.notes = append(c.notes, fmt.Sprintf("%s has no version 2 or newer (containerd reads it as version %d, with short plugin names): its settings are not checked", f.path, f.version))
			continue
		}
		if f.version == 2 && c.version >= 3 {
			migrateCRIRuntime(f.m)
		}
		delete(f.m, "imports")
		c.add(f.path, f.m, true)
	}
	if err := c.decode(&c.cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// resolveImports expands the imports of the host file parent to host paths.
func (d *doctor) resolveImports(parent string, imports []string) ([]string, error) {
	var out []string
	for _, p := range imports {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(parent), p)
		}
		if !strings.Contains(p, "*") {
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(d.view(p))
		if err != nil {
			return nil, fmt.Errorf("%s: import %q: %w", parent, p, err)
		}
		for _, m := range matches {
			h, err := d.hostPath(m)
			if err != nil {
				return nil, fmt.Errorf("%s: import %q: %w", parent, p, err)
			}
			out = append(out, h)
		}
	}
	return out, nil
}

// criMovedToImages reports the CRI containerd keys version 3 keeps in the
// images plugin, not the runtime plugin.
func criMovedToImages(key string) bool {
	switch key {
	case "snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers":
		return true
	}
	return false
}

// migrateCRIRuntime moves a version-2 file's CRI containerd section (the
// runtimes and default runtime gpu-nri checks) to its version-3 place.
func migrateCRIRuntime(m map[string]any) {
	plugins, _ := m["plugins"].(map[string]any)
	cri, _ := plugins[criRuntimeV2].(map[string]any)
	srcMap, ok := cri["containerd"].(map[string]any)
	if !ok {
		return
	}
	dst, ok := plugins[criRuntimeV3].(map[string]any)
	if !ok {
		dst = map[string]any{}
		plugins[criRuntimeV3] = dst
	}
	dc, ok := dst["containerd"].(map[string]any)
	if !ok {
		dc = map[string]any{}
		dst["containerd"] = dc
	}
	for k, v := range srcMap {
		if _, set := dc[k]; !set && !criMovedToImages(k) {
			dc[k] = v
		}
	}
}

// add merges the file path's table m over what is there: tables key by
// key, recursively; any other value replaces the earlier one, except that
// top-level arrays are unions when unionTop (containerd; CRI-O replaces).
func (c *layered) add(path string, m map[string]any, unionTop bool) {
	c.files = append(c.files, path)
	c.merge(c.merged, m, nil, path, unionTop)
}

func (c *layered) merge(dst, src map[string]any, keys []string, from string, union bool) {
	for k, v := range src {
		path := append(slices.Clip(keys), k)
		if sm, ok := v.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
				dst[k] = dm
			}
			c.merge(dm, sm, path, from, false)
			continue
		}
		if sl, ok := v.([]any); ok && union {
			dl, _ := dst[k].([]any)
			for _, x := range sl {
				if !slices.ContainsFunc(dl, func(y any) bool { return reflect.DeepEqual(x, y) }) {
					dl = append(dl, x)
				}
			}
			v = dl
		}
		dst[k] = v
		c.origin[strings.Join(path, ".")] = from
	}
}

// fileOf names the file whose value for keys won, or the main file.
func (c *layered) fileOf(keys ...string) string {
	if f, ok := c.origin[strings.Join(keys, ".")]; ok {
		return f
	}
	return c.files[0]
}

// describe names the files for the runtime finding.
func (c *layered) describe() string {
	if len(c.files) == 1 {
		return c.files[0]
	}
	return fmt.Sprintf("%s (imports %s)", c.files[0], strings.Join(c.files[1:], ", "))
}
