// Command runc-nohugetlb is the OCI runtime of the Kubernetes suite's
// CRI-O (test/k8s/crio_test.go): `runc-nohugetlb RUNC ARGS...` deletes
// linux.resources.hugepageLimits from the bundle's config.json when ARGS
// are a runc create or run, then execs RUNC with ARGS.
//
// Why: the kubelet asks a hugepage limit (0) for every page size the
// kernel has, for every container. On a hybrid cgroup layout whose hugetlb
// controller is on the v2 hierarchy only (this CI machine), runc's v1
// manager cannot apply it and fails the container ("cannot set hugetlb
// limit: container could not join or create cgroup"). containerd drops the
// limits itself (disable_hugetlb_controller, its default); CRI-O 1.34 has no
// such setting and passes them whenever the kernel lists the controller. A
// node with a v1 hugetlb hierarchy, or pure v2, needs none of this. Nothing
// else in the spec is changed; it is a test fixture, never shipped.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: runc-nohugetlb RUNC ARGS...")
		os.Exit(2)
	}
	runc, args := os.Args[1], os.Args[2:]
	if bundle, ok := createBundle(args); ok {
		if err := dropHugepageLimits(filepath.Join(bundle, "config.json")); err != nil {
			fmt.Fprintf(os.Stderr, "runc-nohugetlb: %v\n", err)
			os.Exit(1)
		}
	}
	err := syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "runc-nohugetlb: exec %s: %v\n", runc, err)
	os.Exit(1)
}

// createBundle is the bundle directory of a create or run command (its
// --bundle/-b value, else the working directory).
func createBundle(args []string) (string, bool) {
	cmd, bundle := "", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "--bundle" || a == "-b") && i+1 < len(args):
			bundle = args[i+1]
			i++
		case len(a) > 9 && a[:9] == "--bundle=":
			bundle = a[9:]
		case cmd == "" && (a == "create" || a == "run"):
			cmd = a
		}
	}
	if cmd == "" {
		return "", false
	}
	if bundle == "" {
		bundle = "."
	}
	return bundle, true
}

func dropHugepageLimits(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // 64-bit limits stay exact
	if err := d.Decode(&spec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	linux, _ := spec["linux"].(map[string]any)
	res, _ := linux["resources"].(map[string]any)
	if _, ok := res["hugepageLimits"]; !ok {
		return nil
	}
	delete(res, "hugepageLimits")
	out, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o600)
}
