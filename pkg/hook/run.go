//go:build linux

package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"golang.org/x/sys/unix"
)

// Container paths the hook writes.
const (
	ConfFile      = "/etc/ld.so.conf.d/00-gpu-nri.conf"
	CompatConf    = "/etc/ld.so.conf.d/00-compat-gpu-nri.conf"
	LdSoConf      = "/etc/ld.so.conf"
	LdSoCache     = "/etc/ld.so.cache"
	CompatDir     = "/usr/local/cuda/compat"
	ldSoConfInit  = "include /etc/ld.so.conf.d/*.conf\n"
	maxStateSize  = 1 << 20
	maxConfigSize = 32 << 20
	maxTextSize   = 1 << 20
)

// Run is `gpu-nri hook`: it reads the OCI container state from stdin (as
// runc and crun pass it to a createContainer hook), finds the container root
// from <bundle>/config.json and applies o to it (see Apply).
func Run(ctx context.Context, stdin io.Reader, o hookproto.Options) error {
	root, err := RootFromState(stdin)
	if err != nil {
		return err
	}
	return Apply(ctx, root, o)
}

// RootFromState returns the host path of the container root named by the OCI
// state read from r: root.path of <bundle>/config.json, relative to the
// bundle unless absolute. Both inputs are size-capped.
func RootFromState(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStateSize+1))
	if err != nil {
		return "", fmt.Errorf("hook: read container state: %w", err)
	}
	if len(b) > maxStateSize {
		return "", fmt.Errorf("hook: container state larger than %d bytes", maxStateSize)
	}
	var st struct {
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("hook: parse container state: %w", err)
	}
	if !filepath.IsAbs(st.Bundle) {
		return "", fmt.Errorf("hook: container state has no absolute bundle path (got %q)", st.Bundle)
	}
	cfgPath := filepath.Join(st.Bundle, "config.json")
	f, err := os.Open(cfgPath)
	if err != nil {
		return "", fmt.Errorf("hook: open bundle config %s: %w", cfgPath, err)
	}
	defer f.Close()
	b, err = io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return "", fmt.Errorf("hook: read bundle config %s: %w", cfgPath, err)
	}
	if len(b) > maxConfigSize {
		return "", fmt.Errorf("hook: bundle config %s larger than %d bytes", cfgPath, maxConfigSize)
	}
	var cfg struct {
		Root struct {
			Path string `json:"path"`
		} `json:"root"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("hook: parse bundle config %s: %w", cfgPath, err)
	}
	if cfg.Root.Path == "" {
		return "", fmt.Errorf("hook: bundle config %s has no root.path", cfgPath)
	}
	root := cfg.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(st.Bundle, root)
	}
	return filepath.Clean(root), nil
}

// Report says what one Apply did; for tests and benchmarks.
type Report struct {
	LinksChanged, FilesChanged int
	Compat                     bool   // the image's CUDA compat libraries were put first
	Musl                       string // the musl path file written, if any
	Ldconfig                   bool   // the host ldconfig ran
	CacheMerged                bool   // our entries were added to the image's fresh ld.so.cache instead
	ParamsHidden               bool   // a copy of /proc/driver/nvidia/params was mounted over it
}

// Apply makes the injected libraries loadable in the container root at the
// host path rootPath, as described in the package documentation.
func Apply(ctx context.Context, rootPath string, o hookproto.Options) error {
	_, err := apply(ctx, rootPath, o)
	return err
}

func validate(o hookproto.Options) error {
	var errs []error
	for _, l := range o.Links {
		if !path.IsAbs(l.Link) || l.Target == "" || strings.ContainsRune(l.Target+l.Link, 0) {
			errs = append(errs, fmt.Errorf("hook: link %q -> %q: want an absolute link path and a target", l.Link, l.Target))
		}
	}
	for _, f := range o.Folders {
		if !path.IsAbs(f) || strings.ContainsAny(f, "\n\x00") {
			errs = append(errs, fmt.Errorf("hook: folder %q: want an absolute path on one line", f))
		}
	}
	return errors.Join(errs...)
}

func apply(ctx context.Context, rootPath string, o hookproto.Options) (Report, error) {
	var rep Report
	if err := validate(o); err != nil {
		return rep, err
	}
	root, err := openRoot(rootPath)
	if err != nil {
		return rep, err
	}
	defer root.Close()

	if o.HideParams {
		if rep.ParamsHidden, err = root.hideDeviceNodeModification(procSuperMagic); err != nil {
			return rep, err
		}
	}
	for _, l := range o.Links {
		c, err := root.symlink(l.Target, l.Link)
		if err != nil {
			return rep, err
		}
		if c {
			rep.LinksChanged++
		}
	}
	var compat []string
	if o.CUDACompat {
		if compat, err = compatFolders(root, o.DriverVersion); err != nil {
			return rep, err
		}
		rep.Compat = len(compat) > 0
	}
	if len(o.Folders) == 0 && len(compat) == 0 {
		return rep, nil
	}
	write := func(p, content string) error {
		c, err := root.writeFile(p, []byte(content), 0o644)
		if c {
			rep.FilesChanged++
		}
		return err
	}
	if len(compat) > 0 {
		if err := write(CompatConf, lines(compat)); err != nil {
			return rep, err
		}
	}
	if len(o.Folders) > 0 {
		if err := write(ConfFile, lines(o.Folders)); err != nil {
			return rep, err
		}
	}
	// ldconfig reads /etc/ld.so.conf: a FIFO there would hang it.
	switch t, err := root.statType(LdSoConf); {
	case err != nil:
		return rep, err
	case t == 0:
		if err := write(LdSoConf, ldSoConfInit); err != nil {
			return rep, err
		}
	case t != unix.S_IFREG:
		return rep, refuse(LdSoConf, t)
	}
	folders := append(slices.Clone(compat), o.Folders...)
	musl, err := muslPathFile(root)
	if err != nil {
		return rep, err
	}
	if musl != "" {
		content, err := muslPaths(root, musl, folders)
		if err != nil {
			return rep, err
		}
		if err := write(musl, content); err != nil {
			return rep, err
		}
		rep.Musl = musl
		if !root.exists(glibcLoader()) {
			return rep, nil // a musl-only image never reads ld.so.cache
		}
	}

	// Nothing changed and the cache is newer than our configuration: a
	// restart of the same container. (Only the image can fake this state,
	// and only against itself.)
	if rep.LinksChanged == 0 && rep.FilesChanged == 0 {
		if c := root.mtime(LdSoCache); c >= 0 && c >= root.mtime(ConfFile) {
			return rep, nil
		}
	}
	// The image's own cache, fresh, plus our entries: no exec (cache.go).
	if len(compat) == 0 {
		cache, ok, err := mergedCache(root, o)
		if err != nil {
			return rep, err
		}
		if ok {
			if _, err := root.writeFile(LdSoCache, cache, 0o644); err != nil {
				return rep, err
			}
			rep.CacheMerged = true
			return rep, nil
		}
	}
	if o.Ldconfig == "" {
		return rep, errors.New("hook: folders given but no host ldconfig")
	}
	// ldconfig runs with a private tmpfs mounted on /proc; runc always
	// provides the directory, a bare rootfs may not.
	pdir, err := root.mkdirAll("/proc")
	if err != nil {
		return rep, err
	}
	_ = pdir.Close()
	cache, err := runLdconfig(ctx, root, o.Ldconfig)
	if err != nil {
		return rep, err
	}
	rep.Ldconfig = true
	if _, err := root.writeFile(LdSoCache, cache, 0o644); err != nil {
		return rep, err
	}
	return rep, nil
}

func lines(l []string) string { return strings.Join(l, "\n") + "\n" }
