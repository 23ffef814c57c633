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
