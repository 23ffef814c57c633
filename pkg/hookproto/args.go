package hookproto

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Link is a symbolic link to create in the container root: Link (an absolute
// container path) pointing at Target (usually a file name in the same
// directory, e.g. libcuda.so.1 -> libcuda.so.550.54.14).
type Link struct {
	Target, Link string
}

// Soname is an injected library as ld.so.cache names it: Path is the
// container path of its SONAME (the library's folder joined with its
// DT_SONAME, where Links makes the link), Lib32 marks a 32-bit library.
type Soname struct {
	Path  string
	Lib32 bool
}

// Options is everything one `gpu-nri hook` invocation does. The plugin builds
// it and turns it into the hook's argv with Args; the hook reads it back with
// ParseArgs. The two are the only contract between them.
type Options struct {
	// Ldconfig is the host path of the ldconfig to run (never the image's).
	Ldconfig string
	// Folders are the container directories holding injected libraries, in
	// the order they must win in the loader's search.
	Folders []string
	// Links to create.
	Links []Link
	// Sonames are the cache entries the injected libraries need: with them
	// the hook can add the entries to the image's own ld.so.cache instead
	// of running ldconfig, when that cache is fresh (pkg/hook).
	Sonames []Soname
	// DriverVersion is the host driver version (for CUDA compat decisions).
	DriverVersion string
	// CUDACompat enables CUDA forward compatibility from /usr/local/cuda/compat.
	CUDACompat bool
	// HideParams binds a copy of /proc/driver/nvidia/params saying
	// "ModifyDeviceFiles: 0" over the container's (when its procfs has one).
	HideParams bool
}

// Args returns the hook's argv (argv[0] included) for the binary name bin.
func (o Options) Args(bin string) []string {
	a := []string{bin, "hook"}
	if o.Ldconfig != "" {
		a = append(a, "--ldconfig", o.Ldconfig)
	}
	for _, f := range o.Folders {
		a = append(a, "--folder", f)
	}
	for _, l := range o.Links {
		a = append(a, "--link", l.Target+"::"+l.Link)
	}
	for _, so := range o.Sonames {
		if so.Lib32 {
			a = append(a, "--soname32", so.Path)
		} else {
			a = append(a, "--soname", so.Path)
		}
	}
	if o.DriverVersion != "" {
		a = append(a, "--driver-version", o.DriverVersion)
	}
	if o.CUDACompat {
		a = append(a, "--cuda-compat")
	}
	if o.HideParams {
		a = append(a, "--hide-params")
	}
	return a
}

// ParseArgs parses the arguments after "hook" (argv[2:]).
func ParseArgs(args []string) (Options, error) {
	var o Options
	next := func(i *int, flag string) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("hook: %s needs a value", flag)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		var v string
		var err error
		switch f := args[i]; f {
		case "--ldconfig":
			v, err = next(&i, f)
			o.Ldconfig = v
		case "--folder":
			v, err = next(&i, f)
			o.Folders = append(o.Folders, v)
		case "--link":
			v, err = next(&i, f)
			if err == nil {
				t, l, ok := strings.Cut(v, "::")
				if !ok || t == "" || l == "" {
					err = fmt.Errorf("hook: --link %q: want TARGET::LINK", v)
				}
				o.Links = append(o.Links, Link{Target: t, Link: l})
			}
		case "--soname", "--soname32":
			v, err = next(&i, f)
			if err == nil && (!strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.ContainsAny(v, "\n\x00")) {
				err = fmt.Errorf("hook: %s %q: want an absolute file path on one line", f, v)
			}
			o.Sonames = append(o.Sonames, Soname{Path: v, Lib32: f == "--soname32"})
		case "--driver-version":
			v, err = next(&i, f)
			o.DriverVersion = v
		case "--cuda-compat":
			o.CUDACompat = true
		case "--hide-params":
			o.HideParams = true
		default:
			err = fmt.Errorf("hook: unknown argument %s", strconv.Quote(f))
		}
		if err != nil {
			return Options{}, err
		}
	}
	if o.Ldconfig == "" && len(o.Folders) > 0 {
		return Options{}, errors.New("hook: --folder needs --ldconfig")
	}
	return o, nil
}
