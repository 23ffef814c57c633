package harness

import (
	"fmt"
	"path/filepath"
)

// CUDAImageInputs are what the CUDA runtime images are made of.
type CUDAImageInputs struct {
	Arch Arch
	// BuildDir holds the rootfs trees while they are built.
	BuildDir string
	// CUDART is the directory holding NVIDIA's libcudart.so.12.<x> (and
	// its libcudart.so.12 link), as Debian's libcudart12 installs it.
	CUDART string
	// CUDARTVersion is libcudart's file version, e.g. "12.4.127".
	CUDARTVersion string
	// CUDARTTest is test/csrc/cudarttest.c built for Arch (glibc).
	CUDARTTest string
	// CUDATest is the glibc cudatest (simhost.Host.CUDATest).
	CUDATest string
}

// CUDAImages builds images that carry NVIDIA's CUDA runtime the way CUDA
// application images do (the runtime in the image, the driver from the
// host), with cudarttest and cudatest in /usr/local/bin and the libraries
// NVIDIA's driver binaries need (libm, libpthread, librt besides libc and
// libdl):
//
//	cuda-glibc  Debian layout: libc in /lib/<multiarch>, libcudart in
//	            /usr/lib/<multiarch>, ld.so.conf + conf.d, ldconfig, a cache
//	cuda-rhel   RHEL layout: everything in /usr/lib64, /lib64 -> usr/lib64
func CUDAImages(in CUDAImageInputs) ([]Image, error) {
	a := in.Arch
	bb, err := busyboxApplets()
	if err != nil {
		return nil, err
	}
	libs := []string{a.Loader, "libc.so.6", "libdl.so.2", "libm.so.6", "libpthread.so.0", "librt.so.1"}
	cudart := func(r *RootFS, dir string) {
		file := "libcudart.so." + in.CUDARTVersion
		r.Copy(filepath.Join(in.CUDART, file), filepath.Join(dir, file), 0o755).
			Symlink(file, filepath.Join(dir, "libcudart.so.12")).
			Copy(in.CUDARTTest, "/usr/local/bin/cudarttest", 0o755).
			Copy(in.CUDATest, "/usr/local/bin/cudatest", 0o755)
	}
	env := []string{pathEnv}
	sh := []string{"/bin/sh"}
	var images []Image

	deb := busyboxRootFS(filepath.Join(in.BuildDir, "cuda-glibc"), "/bin", bb)
	for _, f := range libs {
		deb.Copy(filepath.Join(a.LibDir(), f), filepath.Join(a.LibDir(), f), 0o755)
	}
	deb.Mkdir(a.LoaderDir, a.UsrLibDir(), "/etc/ld.so.conf.d", "/sbin", "/usr/local/bin").
		Symlink(filepath.Join(a.LibDir(), a.Loader), a.LoaderPath()).
		Write("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0o644).
		Write("/etc/ld.so.conf.d/"+a.Multiarch+".conf", fmt.Sprintf("/usr/local/lib/%s\n%s\n%s\n", a.Multiarch, a.LibDir(), a.UsrLibDir()), 0o644).
		Copy("/sbin/ldconfig", "/sbin/ldconfig", 0o755)
	cudart(deb, a.UsrLibDir())
	deb.Run("/sbin/ldconfig", "-r", deb.Dir)
	if err := deb.Err(); err != nil {
		return nil, err
	}
	images = append(images, Image{Name: ImageRef("cuda-glibc"), RootFS: deb.Dir, Env: env, Cmd: sh})

	rhel := busyboxRootFS(filepath.Join(in.BuildDir, "cuda-rhel"), "/bin", bb)
	for _, f := range libs {
		rhel.Copy(filepath.Join(a.LibDir(), f), filepath.Join("/usr/lib64", f), 0o755)
	}
	rhel.Symlink("usr/lib64", "/lib64").Mkdir("/etc/ld.so.conf.d", "/sbin", "/usr/local/bin").
		Write("/etc/ld.so.conf", "include ld.so.conf.d/*.conf\n", 0o644).
		Write("/etc/ld.so.conf.d/lib64.conf", "/usr/lib64\n", 0o644).
		Copy("/sbin/ldconfig", "/sbin/ldconfig", 0o755)
	cudart(rhel, "/usr/lib64")
	rhel.Run("/sbin/ldconfig", "-r", rhel.Dir)
	if err := rhel.Err(); err != nil {
		return nil, err
	}
	images = append(images, Image{Name: ImageRef("cuda-rhel"), RootFS: rhel.Dir, Env: env, Cmd: sh})
	return images, nil
}
