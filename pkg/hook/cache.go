//go:build linux

package hook

import (
	"errors"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
)

// hwcapExtension is DL_CACHE_HWCAP_EXTENSION (glibc elf/dl-cache.h): an
// entry whose hwcap word has it refers to the cache's glibc-hwcaps extension
// section, which ldcache.Write does not carry over.
const hwcapExtension = uint64(1) << 62

// Bounds on the image's loader configuration the merge reads; an image past
// them gets ldconfig instead.
const (
	maxConfFiles = 256
	maxConfDepth = 8
)

// errNoMerge says the image's cache cannot be merged into (the caller runs
// ldconfig instead); it never leaves this file.
var errNoMerge = errors.New("no merge")

// mergedCache returns the image's own /etc/ld.so.cache with an entry for
// each of o.Sonames added (and the image's entries of the same soname and
// architecture dropped, so the injected library wins as it does behind
// ConfFile with ldconfig). ok is false, and ldconfig must run, unless all of
// these hold:
//   - the image has a cache that ldcache parses and that uses no
//     glibc-hwcaps extension entries;
//   - the cache is fresh: no loader configuration file (ld.so.conf and what
//     it includes, ours excepted) and no directory they name (ours
//     excepted) changed after it was written. Directories searched by
//     default need no entry, so a library added there without ldconfig is
//     found either way; one added to, say, /usr/local/lib is only found
//     through a rebuilt cache, which ldconfig makes;
//   - the architecture's cache flags are known (amd64, arm64 without
//     32-bit libraries).
//
// The merged cache resolves every soname to what ldconfig's rebuild would:
// the image's entries for the image's libraries, ours for ours
// (TestMergedCacheMatchesLdconfig). Only the image's files are read, through
// the root's handles, and nothing is executed.
func mergedCache(root *rootFS, o hookproto.Options) (cache []byte, ok bool, err error) {
	if len(o.Sonames) == 0 {
		return nil, false, nil
	}
	var flags64, flags32 int32
	switch runtime.GOARCH {
	case "amd64":
		flags64, flags32 = ldcache.FlagELFLibc6|ldcache.FlagX8664Lib64, ldcache.FlagELFLibc6
	case "arm64":
		flags64 = ldcache.FlagELFLibc6 | ldcache.FlagAArch64Lib64
	default:
		return nil, false, nil
	}
	data, found, err := root.readFile(LdSoCache, ldcache.MaxFileSize)
	if err != nil || !found {
		return nil, false, err
	}
	image, err := ldcache.Parse(data)
	if err != nil {
		return nil, false, nil // ldconfig rebuilds a broken cache
	}
	for _, e := range image {
		if e.HWCap&hwcapExtension != 0 {
			return nil, false, nil
		}
	}
	built := root.mtimeAny(LdSoCache)
	switch err := root.confFresh(built, o.Folders); {
	case errors.Is(err, errNoMerge):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}

	type key struct {
		soname string
		flags  int32
	}
	ours := map[key]bool{}
	out := make([]ldcache.Entry, 0, len(image)+len(o.Sonames))
	for _, s := range o.Sonames {
		f := flags64
		if s.Lib32 {
			if flags32 == 0 {
				return nil, false, nil
			}
			f = flags32
		}
		k := key{path.Base(s.Path), f}
		if !ours[k] {
			ours[k] = true
			out = append(out, ldcache.Entry{Key: k.soname, Value: s.Path, Flags: f})
		}
	}
	for _, e := range image {
		if !ours[key{e.Key, e.Flags}] {
			out = append(out, e)
		}
	}
	return ldcache.Write(out), true, nil
}

// confFresh returns nil when no loader configuration file reachable from
// /etc/ld.so.conf and no directory named in one (skip excepted) is newer
// than built (ns), errNoMerge when one is or when the configuration uses
// what the merge does not follow (hwcap lines, globs in directory parts,
// more than maxConfFiles files or maxConfDepth levels of include).
func (r *rootFS) confFresh(built int64, skip []string) error {
	if built < 0 {
		return errNoMerge
	}
	var dirs []string
	seen := map[string]bool{}
	var walk func(file string, depth int) error
	walk = func(file string, depth int) error {
		if file == ConfFile || file == CompatConf || seen[file] {
			return nil
		}
		seen[file] = true
		if depth > maxConfDepth || len(seen) > maxConfFiles {
			return errNoMerge
		}
		data, ok, err := r.readFile(file, maxTextSize)
		if err != nil {
			return errNoMerge // a FIFO or directory: let ldconfig's path decide
		}
		if !ok {
			return nil
		}
		if r.mtimeAny(file) > built {
			return errNoMerge
		}
		for _, line := range strings.Split(string(data), "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "include") && len(line) > 7 && (line[7] == ' ' || line[7] == '\t'):
				for _, pat := range strings.Fields(line[8:]) {
					if !path.IsAbs(pat) {
						pat = path.Join(path.Dir(file), pat)
					}
					files, err := r.glob(pat)
					if err != nil {
						return err
					}
					for _, f := range files {
						if err := walk(f, depth+1); err != nil {
							return err
						}
					}
				}
			case strings.HasPrefix(line, "hwcap") && len(line) > 5 && (line[5] == ' ' || line[5] == '\t'):
				return errNoMerge
			default:
				d, _, _ := strings.Cut(line, "=") // "DIR=TYPE"
				if d = path.Clean(strings.TrimSpace(d)); path.IsAbs(d) {
					dirs = append(dirs, d)
				}
			}
		}
		return nil
	}
	if err := walk(LdSoConf, 0); err != nil {
		return err
	}
	for _, d := range dirs {
		if !slices.Contains(skip, d) && r.mtimeAny(d) > built {
			return errNoMerge
		}
	}
	return nil
}

// glob expands pat, whose wildcards may only be in its last component, in
// the container root, sorted as glob(3) sorts.
func (r *rootFS) glob(pat string) ([]string, error) {
	dir, base := path.Split(pat)
	if strings.ContainsAny(dir, "*?[\\") {
		return nil, errNoMerge
	}
	if !strings.ContainsAny(base, "*?[\\") {
		return []string{pat}, nil
	}
	names, err := r.readDirNames(dir)
	if err != nil {
		return nil, errNoMerge
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		if ok, err := path.Match(base, n); err != nil {
			return nil, errNoMerge
		} else if ok && !strings.HasPrefix(n, ".") {
			out = append(out, path.Join(dir, n))
		}
	}
	return out, nil
}
