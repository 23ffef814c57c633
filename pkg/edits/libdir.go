package edits

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// LibraryDirPath is where a container gets the library directory
// (config injection.libraryDir): the directory NVIDIA's CUDA images list in
// LD_LIBRARY_PATH.
const LibraryDirPath = hookproto.HooklessDir

// DirPlan is what one library directory holds: the 64-bit libraries of a
// capability set that are loaded by SONAME (PlanDir), each under its own file
// name, and the relative links that make them loadable by SONAME and alias
// names. The daemon builds it on the host (pkg/libdir); Build, given the built
// directory in Selection.LibraryDir, mounts it instead of those files.
type DirPlan struct {
	// Name identifies the plan: the capability set and a digest of Files
	// and Links, so that a directory built for one plan is never used for
	// another (a new driver, a changed file set).
	Name string
	// Files are the libraries, by file name in the directory.
	Files []DirFile
	// Links are relative symbolic links in the directory (Target is a file
	// name, Link a name in the directory).
	Links []hookproto.Link
	// in maps the container path (inventory.File.Path) of each of Files,
	// which Build replaces by the directory, to its path in the directory.
	in map[string]string
}

// BuiltDir is a directory built on the host for Plan (pkg/libdir), as the
// daemon computed it once per inventory and capability set.
type BuiltDir struct {
	// HostPath is the directory's host path (the mount's source).
	HostPath string
	Plan     DirPlan
}

// DirFile is one library of a DirPlan.
type DirFile struct {
	// HostPath is the host file that is bind-mounted there.
	HostPath string
	// Name is its file name in the directory (its file name on the host).
	Name string
	// SONAME is its ELF DT_SONAME.
	SONAME string
}

// PlanDir returns the library directory of caps on inv. A library is in it
// when it is 64-bit, has a SONAME, is not in a directory where its users look
// for it by path (vdpau/, gbm/, the X.Org module directories: byPath) and no
// earlier library has its file name; the others keep their own mounts. A
// library found by SONAME anywhere else (the loader's directories, Debian's
// nvidia/current) is loaded from the directory instead. It is deterministic
// and does no I/O. A plan without files has Name "".
func PlanDir(inv *inventory.Inventory, caps []inventory.Capability) DirPlan {
	want := map[inventory.Capability]bool{}
	for _, c := range caps {
		want[c] = true
	}
	var capNames []string
	p := DirPlan{in: map[string]string{}}
	seen := map[string]bool{}
	links := map[string]bool{}
	for _, c := range config.AllCapabilities() {
		if !want[c] {
			continue
		}
		capNames = append(capNames, string(c))
		for _, f := range inv.Libraries[c] {
			dir, base := path.Split(f.Path)
			if f.Lib32 || f.SONAME == "" || strings.Contains(f.SONAME, "/") || byPath(path.Clean(dir)) || seen[base] {
				continue
			}
			seen[base] = true
			p.in[f.Path] = path.Join(LibraryDirPath, base)
			p.Files = append(p.Files, DirFile{HostPath: f.HostPath, Name: base, SONAME: f.SONAME})
		}
	}
	if len(p.Files) == 0 {
		return DirPlan{}
	}
	addLink := func(target, link string) {
		if !seen[link] && !links[link] {
			links[link] = true
			p.Links = append(p.Links, hookproto.Link{Target: target, Link: link})
		}
	}
	for _, f := range p.Files {
		if f.SONAME != f.Name {
			addLink(f.Name, f.SONAME)
		}
		for _, alias := range hookproto.AliasNames(f.SONAME) {
			addLink(f.SONAME, alias)
		}
	}
	h := sha256.New()
	for _, f := range p.Files {
		h.Write([]byte("f\x00" + f.HostPath + "\x00" + f.Name + "\x00" + f.SONAME + "\n"))
	}
	for _, l := range p.Links {
		h.Write([]byte("l\x00" + l.Target + "\x00" + l.Link + "\n"))
	}
	p.Name = strings.Join(capNames, ".") + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	return p
}

// byPath reports whether dir is a directory whose libraries are opened by
// path, not by SONAME: libvdpau's vdpau/, GBM's gbm/ and the X.Org server's
// module directories (nvidia/xorg, xorg/modules/...).
func byPath(dir string) bool {
	switch path.Base(dir) {
	case "vdpau", "gbm":
		return true
	}
	return strings.Contains(dir+"/", "/xorg/")
}
