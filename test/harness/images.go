package harness

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ImagePrefix is the repository of every suite image.
const ImagePrefix = "localhost/gpu-nri-e2e/"

// ImageRef is the reference of a suite image ("glibc" -> localhost/gpu-nri-e2e/glibc:1).
func ImageRef(name string) string { return ImagePrefix + name + ":1" }

// PauseImageRef is the sandbox image containerd is configured to pin.
const PauseImageRef = ImagePrefix + "pause:1"

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImageInputs are what the standard images are made of.
type ImageInputs struct {
	Arch Arch
	// BuildDir holds the rootfs trees while they are built.
	BuildDir string
	// CUDATest is the glibc cudatest (simhost.Host.CUDATest).
	CUDATest string
	// Bins gives the musl cudatest ("" skips the musl image) and the
	// preload payload.
	Bins Binaries
	// Sentinel is the host directory the hostile images point at.
	Sentinel string
}

// Hostile images (glibc images that attack a careless createContainer
// hook), by name; each points at Sentinel or at host files.
const (
	HostileLibdir  = "hostile-libdir"  // /usr/lib/<multiarch> -> / (CVE-2024-0132 family)
	HostileLdcache = "hostile-ldcache" // /etc/ld.so.cache -> a host file (CVE-2025-23267)
	HostileConfd   = "hostile-confd"   // /etc/ld.so.conf.d -> a host directory
	HostileFifo    = "hostile-fifo"    // FIFO and directories at SONAME link targets
	HostilePreload = "hostile-preload" // ENV LD_PRELOAD=/proc/self/cwd/x.so (CVE-2025-23266)
)

// StandardImages builds the suite's images:
//
//	busybox     static busybox only           pause    sleeps forever
//	glibc       Debian layout: /lib/<multiarch> (a real dir), the loader link
//	            in LoaderDir, ld.so.conf + conf.d, /sbin/ldconfig, a cache
//	rhel        RHEL layout: /usr/lib64, /lib64 -> usr/lib64, conf.d/lib64.conf
//	distroless  libc in /lib/<multiarch>, no ld.so.conf, no cache, no
//	            ldconfig, busybox only under /busybox
//	musl        busybox + musl's loader + a musl cudatest (when built)
//	hostile-*   see the Hostile constants
func StandardImages(in ImageInputs) ([]Image, error) {
	a := in.Arch
	b := in.BuildDir
	var images []Image
	add := func(r *RootFS, name string, env []string, entrypoint, cmd []string) error {
		if err := r.Err(); err != nil {
			return err
		}
		images = append(images, Image{Name: ImageRef(name), RootFS: r.Dir, Env: env, Entrypoint: entrypoint, Cmd: cmd})
		return nil
	}
	env := []string{pathEnv}
	sh := []string{"/bin/sh"}

	bb, err := busyboxApplets()
	if err != nil {
		return nil, err
	}
	r := busyboxRootFS(filepath.Join(b, "busybox"), "/bin", bb)
	if err := add(r, "busybox", env, nil, sh); err != nil {
		return nil, err
	}
	images = append(images, Image{Name: PauseImageRef, RootFS: r.Dir, Env: env, Entrypoint: []string{"/bin/sleep", "2147483647"}})

	glibc := busyboxRootFS(filepath.Join(b, "glibc"), "/bin", bb)
	glibcLibs(glibc, a, a.LibDir())
	glibc.Mkdir(a.LoaderDir, a.UsrLibDir(), "/etc/ld.so.conf.d", "/sbin", "/usr/local/bin").
		Symlink(filepath.Join(a.LibDir(), a.Loader), a.LoaderPath()).
		Write("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0o644).
		Write("/etc/ld.so.conf.d/"+a.Multiarch+".conf", fmt.Sprintf("/usr/local/lib/%s\n%s\n%s\n", a.Multiarch, a.LibDir(), a.UsrLibDir()), 0o644).
		Copy("/sbin/ldconfig", "/sbin/ldconfig", 0o755).
		Copy(in.CUDATest, "/usr/local/bin/cudatest", 0o755).
		Run("/sbin/ldconfig", "-r", glibc.Dir)
	if err := add(glibc, "glibc", env, nil, sh); err != nil {
		return nil, err
	}

	rhel := busyboxRootFS(filepath.Join(b, "rhel"), "/bin", bb)
	glibcLibs(rhel, a, "/usr/lib64")
	// Debian's loader (the only one at hand) keeps Debian's built-in
	// directories; RHEL's are /lib64 and /usr/lib64.
	rhel.Symlink("usr/lib64", "/lib64").Mkdir("/etc/ld.so.conf.d", "/sbin", "/usr/local/bin").
		Write("/etc/ld.so.conf", "include ld.so.conf.d/*.conf\n", 0o644).
		Write("/etc/ld.so.conf.d/lib64.conf", "/usr/lib64\n", 0o644).
		Copy("/sbin/ldconfig", "/sbin/ldconfig", 0o755).
		Copy(in.CUDATest, "/usr/local/bin/cudatest", 0o755).
		Run("/sbin/ldconfig", "-r", rhel.Dir)
	if err := add(rhel, "rhel", env, nil, sh); err != nil {
		return nil, err
	}

	dl := busyboxRootFS(filepath.Join(b, "distroless"), "/busybox", bb).Remove("/bin")
	glibcLibs(dl, a, a.LibDir())
	dl.Mkdir(a.LoaderDir, "/usr/local/bin").Symlink(filepath.Join(a.LibDir(), a.Loader), a.LoaderPath()).
		Copy(in.CUDATest, "/usr/local/bin/cudatest", 0o755).
		Remove("/etc/ld.so.conf").Remove("/etc/ld.so.cache")
	if err := add(dl, "distroless", []string{"PATH=/usr/local/bin:/busybox"}, nil, []string{"/busybox/sh"}); err != nil {
		return nil, err
	}

	if in.Bins.CUDATestMusl != "" {
		m := busyboxRootFS(filepath.Join(b, "musl"), "/bin", bb)
		m.Mkdir("/lib", "/usr/local/bin").Copy("/lib/"+a.MuslLoader(), "/lib/"+a.MuslLoader(), 0o755).
			Symlink(a.MuslLoader(), "/lib/libc.musl-"+a.Musl+".so.1").
			Copy(in.Bins.CUDATestMusl, "/usr/local/bin/cudatest", 0o755)
		if err := add(m, "musl", env, nil, sh); err != nil {
			return nil, err
		}
	}

	hostile := []struct {
		name  string
		env   []string
		build func(r *RootFS)
	}{
		{HostileLibdir, nil, func(r *RootFS) { r.Symlink("/", a.UsrLibDir()) }},
		{HostileLdcache, nil, func(r *RootFS) { r.Symlink(filepath.Join(in.Sentinel, "ld.so.cache"), "/etc/ld.so.cache") }},
		{HostileConfd, nil, func(r *RootFS) { r.Symlink(in.Sentinel, "/etc/ld.so.conf.d") }},
		{HostileFifo, nil, func(r *RootFS) {
			for _, d := range []string{a.UsrLibDir(), a.LibDir(), "/usr/lib64"} {
				r.Mkdir(d).Mkfifo(d+"/libcuda.so.1").Mkdir(d+"/libcuda.so", d+"/libnvidia-ml.so.1/sub").
					Symlink(filepath.Join(in.Sentinel, "victim"), d+"/libnvidia-ml.so")
			}
		}},
		{HostilePreload, []string{"LD_PRELOAD=/proc/self/cwd/x.so"}, func(r *RootFS) { r.Copy(in.Bins.Preload, "/x.so", 0o755) }},
	}
	for _, h := range hostile {
		r := glibc.CopyTree(filepath.Join(b, h.name))
		h.build(r)
		if err := add(r, h.name, append([]string{pathEnv}, h.env...), nil, sh); err != nil {
			return nil, err
		}
	}
	return images, nil
}

// GPUNRIImage is deploy/image/Dockerfile's content without a Docker engine:
// the binary at /usr/local/bin/gpu-nri, the hook binary hook at
// /usr/local/bin/gpu-nri-hook, its entrypoint, command, user and labels
// (test/image checks it against the image the Dockerfile builds).
func GPUNRIImage(dir, name, bin, hook string) (Image, error) {
	r := NewRootFS(dir).Mkdir("/usr/local/bin", "/etc/gpu-nri", "/tmp").Copy(bin, "/usr/local/bin/gpu-nri", 0o755).
		Copy(hook, "/usr/local/bin/gpu-nri-hook", 0o755)
	if err := r.Err(); err != nil {
		return Image{}, err
	}
	_, tag, _ := strings.Cut(name[strings.LastIndex(name, "/")+1:], ":")
	return Image{
		Name: name, RootFS: r.Dir, User: "0:0",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Entrypoint: []string{"/usr/local/bin/gpu-nri"},
		Cmd:        []string{"run", "--config", "/etc/gpu-nri/config.yaml"},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "gpu-nri",
			"org.opencontainers.image.source":  "https://github.com/gpu-nri/gpu-nri",
			"org.opencontainers.image.version": tag,
		},
	}, nil
}

// busyboxApplets lists the host busybox's applets.
func busyboxApplets() ([]string, error) {
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("harness: /bin/busybox --list (apt-get install busybox-static): %w", err)
	}
	return strings.Fields(string(out)), nil
}

// busyboxRootFS is a tree with a static busybox and its applet links in
// bindir, the usual top-level directories and a root user.
func busyboxRootFS(dir, bindir string, applets []string) *RootFS {
	r := NewRootFS(dir).Mkdir("/dev", "/proc", "/sys", "/tmp", "/etc", "/run", "/var", "/root", bindir).
		Chmod("/tmp", 0o777|fs.ModeSticky).
		Copy("/bin/busybox", bindir+"/busybox", 0o755).
		Write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644).
		Write("/etc/group", "root:x:0:\n", 0o644)
	for _, a := range applets {
		if a != "busybox" {
			r.Symlink("busybox", bindir+"/"+a)
		}
	}
	return r
}

// glibcLibs copies the host's loader, libc and libdl into libdir.
func glibcLibs(r *RootFS, a Arch, libdir string) {
	for _, f := range []string{a.Loader, "libc.so.6", "libdl.so.2"} {
		r.Copy(filepath.Join(a.LibDir(), f), filepath.Join(libdir, f), 0o755)
	}
}

// WriteSentinel makes the host directory the hostile images point at.
func WriteSentinel(dir string) error {
	r := NewRootFS(dir).
		Write("/ld.so.cache", "sentinel cache\n", 0o644).
		Write("/victim", "victim\n", 0o644).
		Write("/keep.conf", "# sentinel\n", 0o644)
	return r.Err()
}

// HostState fingerprints what a hostile image must not change: every entry
// of the sentinel directory (name, type, mode, link target, content), the
// host's /etc/ld.so.cache, and whether the preload marker exists.
func HostState(sentinel, preloadMarker string) (string, error) {
	var b strings.Builder
	err := filepath.Walk(sentinel, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s", p, fi.Mode())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", t)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %s", treeHash(string(data)))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("harness: host state: %w", err)
	}
	if data, err := os.ReadFile("/etc/ld.so.cache"); err == nil {
		fmt.Fprintf(&b, "/etc/ld.so.cache %s\n", treeHash(string(data)))
	}
	if _, err := os.Stat(preloadMarker); err == nil {
		b.WriteString("PRELOAD RAN ON HOST\n")
	}
	return b.String(), nil
}
