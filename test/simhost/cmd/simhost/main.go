// Command simhost builds a simulated NVIDIA GPU host (see package
// test/simhost) and prints its facts as JSON on stdout.
//
//	simhost --dir D [--gpus N] [--driver-version V] [--cuda-version 12.4]
//	        [--mig 0:2,1:1] [--real-nodes] [--lib32] [--uvm-major 511]
//	        [--capabilities compute,utility] [--omit ldcache,uvm]
//	        [--cache-dir C] [--config-out FILE] [--layout nvidia|debian]
//
// --config-out writes a gpu-nri config fragment (the host: section) that
// reads the simulated host.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "simhost:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseMIG(s string) (map[int]int, error) {
	m := map[int]int{}
	for _, item := range splitList(s) {
		g, n, ok := strings.Cut(item, ":")
		gi, err1 := strconv.Atoi(g)
		ni, err2 := strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--mig: %q is not GPU:COUNT", item)
		}
		m[gi] = ni
	}
	return m, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simhost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o                          simhost.Options
		mig, caps, omit, configOut string
	)
	fs.StringVar(&o.Dir, "dir", "", "directory to build the host in (required)")
	fs.IntVar(&o.GPUs, "gpus", simhost.DefaultGPUs, "number of GPUs (negative: none)")
	fs.StringVar(&o.DriverVersion, "driver-version", simhost.DefaultDriverVersion, "driver version")
	fs.StringVar(&o.CUDAVersion, "cuda-version", simhost.DefaultCUDAVersion, "CUDA driver API version MAJOR.MINOR")
	fs.StringVar(&mig, "mig", "", "MIG devices per GPU, e.g. 0:2,1:1")
	fs.BoolVar(&o.RealNodes, "real-nodes", false, "mknod real character devices (root)")
	fs.BoolVar(&o.Lib32, "lib32", false, "add 32-bit compute libraries")
	fs.Int64Var(&o.UVMMajor, "uvm-major", simhost.DefaultUVMMajor, "nvidia-uvm major")
	fs.StringVar(&caps, "capabilities", "", "capabilities to install libraries for (default all)")
	fs.StringVar(&omit, "omit", "", "pieces to leave out: "+strings.Join(simhost.Omissions(), ", "))
	fs.StringVar(&o.CacheDir, "cache-dir", "", "compiler cache (default $TMPDIR/gpu-nri-simhost-cache)")
	fs.StringVar(&o.Layout, "layout", simhost.LayoutNVIDIA, "driver file layout: "+strings.Join(simhost.Layouts(), ", ")+
		" (debian: libraries in nvidia/current, absolute /etc/alternatives links, merged /usr)")
	fs.StringVar(&configOut, "config-out", "", "write a gpu-nri config fragment (host: section) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.Dir == "" {
		return fmt.Errorf("--dir is required")
	}
	var err error
	if o.MIG, err = parseMIG(mig); err != nil {
		return err
	}
	for _, c := range splitList(caps) {
		o.Capabilities = append(o.Capabilities, inventory.Capability(c))
	}
	o.Omit = splitList(omit)
	h, err := simhost.Build(o)
	if err != nil {
		return err
	}
	if configOut != "" {
		frag, err := yaml.Marshal(struct {
			Host config.Host `json:"host"`
		}{h.Config})
		if err != nil {
			return fmt.Errorf("config fragment: %w", err)
		}
		if err := os.WriteFile(configOut, frag, 0o644); err != nil {
			return fmt.Errorf("config fragment: %w", err)
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(h)
}
