package harness

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Image is one single-layer image made from a directory tree.
type Image struct {
	// Name is the full reference, e.g. localhost/gpu-nri-e2e/glibc:1.
	Name string
	// RootFS is the directory whose content becomes the layer.
	RootFS     string
	Env        []string
	Entrypoint []string
	Cmd        []string
	User       string
	Labels     map[string]string
}

// blob is one content-addressed blob of an archive.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

// WriteOCIArchive writes images as one OCI image-layout tar archive (the
// format `ctr images import` reads): each image's name is in the index's
// io.containerd.image.name annotation. Layers are deterministic (sorted
// names, mtime 0, owner 0:0), so the same trees give the same digests.
func WriteOCIArchive(path string, arch Arch, images ...Image) error {
	blobs := map[digest.Digest]blob{}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, im := range images {
		layer, err := layerTar(im.RootFS)
		if err != nil {
			return fmt.Errorf("harness: image %s: %w", im.Name, err)
		}
		lb := newBlob(ocispec.MediaTypeImageLayer, layer)
		cfg := ocispec.Image{
			Platform: ocispec.Platform{Architecture: arch.GOARCH, OS: "linux"},
			Config: ocispec.ImageConfig{
				Env: im.Env, Entrypoint: im.Entrypoint, Cmd: im.Cmd, User: im.User,
				WorkingDir: "/", Labels: im.Labels,
			},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{lb.desc.Digest}},
		}
		cb, err := jsonBlob(ocispec.MediaTypeImageConfig, cfg)
		if err != nil {
			return err
		}
		man := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: cb.desc, Layers: []ocispec.Descriptor{lb.desc},
		}
		mb, err := jsonBlob(ocispec.MediaTypeImageManifest, man)
		if err != nil {
			return err
		}
		for _, b := range []blob{lb, cb, mb} {
			blobs[b.desc.Digest] = b
		}
		d := mb.desc
		d.Platform = &ocispec.Platform{Architecture: arch.GOARCH, OS: "linux"}
		_, tag, _ := strings.Cut(im.Name[strings.LastIndex(im.Name, "/")+1:], ":")
		d.Annotations = map[string]string{"io.containerd.image.name": im.Name, ocispec.AnnotationRefName: tag}
		index.Manifests = append(index.Manifests, d)
	}
	ib, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("harness: index: %w", err)
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(ocispec.ImageLayoutFile, layout); err != nil {
		return fmt.Errorf("harness: archive: %w", err)
	}
	if err := add(ocispec.ImageIndexFile, ib); err != nil {
		return fmt.Errorf("harness: archive: %w", err)
	}
	keys := make([]string, 0, len(blobs))
	for d := range blobs {
		keys = append(keys, string(d))
	}
	sort.Strings(keys)
	for _, k := range keys {
		b := blobs[digest.Digest(k)]
		if err := add("blobs/sha256/"+b.desc.Digest.Encoded(), b.data); err != nil {
			return fmt.Errorf("harness: archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("harness: archive: %w", err)
	}
	return writeFileAtomic(path, buf.Bytes(), 0o644)
}

func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, fmt.Errorf("harness: %s: %w", mediaType, err)
	}
	return newBlob(mediaType, data), nil
}

// layerTar tars dir: regular files, directories, symlinks and FIFOs, names
// sorted, mtime 0, owner 0:0.
func layerTar(dir string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: "./" + filepath.ToSlash(rel), Mode: unixMode(fi.Mode()), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		case fi.Mode()&fs.ModeNamedPipe != 0:
			h.Typeflag = tar.TypeFifo
		default:
			return nil, fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if _, err := tw.Write(data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unixMode is the st_mode permission bits (with setuid, setgid, sticky) of m.
func unixMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	for bit, u := range map[fs.FileMode]int64{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if m&bit != 0 {
			mode |= u
		}
	}
	return mode
}

// ImportImages imports an OCI archive into containerd's k8s.io namespace
// (the one CRI uses) with ctr.
func ImportImages(ctr, socket, archive string) error {
	out, err := exec.Command(ctr, "--address", socket, "-n", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("harness: ctr images import %s: %w: %s", archive, err, tail(string(out), 10))
	}
	return nil
}

// RootFS builds an image's directory tree; the first error sticks and is
// returned by Err (so a builder reads as a list of steps).
type RootFS struct {
	Dir string
	err error
}

// NewRootFS starts an empty tree at dir (removed first).
func NewRootFS(dir string) *RootFS {
	r := &RootFS{Dir: dir}
	r.fail(os.RemoveAll(dir))
	r.fail(os.MkdirAll(dir, 0o755))
	return r
}

// Err is the first error of any step.
func (r *RootFS) Err() error {
	if r.err != nil {
		return fmt.Errorf("harness: rootfs %s: %w", r.Dir, r.err)
	}
	return nil
}

func (r *RootFS) fail(err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
}

func (r *RootFS) path(p string) string { return filepath.Join(r.Dir, p) }

// Mkdir makes directories (with parents) at mode 0755.
func (r *RootFS) Mkdir(paths ...string) *RootFS {
	for _, p := range paths {
		r.fail(os.MkdirAll(r.path(p), 0o755))
	}
	return r
}

// Chmod sets a mode.
func (r *RootFS) Chmod(p string, mode fs.FileMode) *RootFS {
	r.fail(os.Chmod(r.path(p), mode))
	return r
}

// Write writes a file (parents made).
func (r *RootFS) Write(p, content string, mode fs.FileMode) *RootFS {
	r.fail(os.MkdirAll(filepath.Dir(r.path(p)), 0o755))
	r.fail(os.WriteFile(r.path(p), []byte(content), mode))
	return r
}

// Copy copies the host file src (symlinks followed) to p.
func (r *RootFS) Copy(src, p string, mode fs.FileMode) *RootFS {
	if r.err != nil {
		return r
	}
	data, err := os.ReadFile(src)
	r.fail(err)
	return r.Write(p, string(data), mode)
}

// Symlink makes p a symlink to target (an existing p is removed first).
func (r *RootFS) Symlink(target, p string) *RootFS {
	r.fail(os.MkdirAll(filepath.Dir(r.path(p)), 0o755))
	r.fail(os.RemoveAll(r.path(p)))
	r.fail(os.Symlink(target, r.path(p)))
	return r
}

// Mkfifo makes a FIFO at p.
func (r *RootFS) Mkfifo(p string) *RootFS {
	r.fail(os.MkdirAll(filepath.Dir(r.path(p)), 0o755))
	r.fail(unix.Mkfifo(r.path(p), 0o644))
	return r
}

// Remove removes p and everything below it.
func (r *RootFS) Remove(p string) *RootFS {
	r.fail(os.RemoveAll(r.path(p)))
	return r
}

// Run runs a host command (e.g. ldconfig -r DIR) as a build step.
func (r *RootFS) Run(name string, args ...string) *RootFS {
	if r.err != nil {
		return r
	}
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		r.fail(fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(string(out), 5)))
	}
	return r
}

// CopyTree copies this tree to dir (a fresh RootFS), for variants of a base.
func (r *RootFS) CopyTree(dir string) *RootFS {
	n := NewRootFS(dir)
	n.fail(r.Err())
	return n.Run("cp", "-a", r.Dir+"/.", dir+"/")
}

// treeHash is a short hash of strings and file contents, for cache keys.
func treeHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

func sortStrings(s []string) { sort.Strings(s) }
