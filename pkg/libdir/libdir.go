package libdir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// DefaultGrace is how long a directory no longer wanted stays mounted.
const DefaultGrace = time.Minute

// maxSets bounds the capability sets kept per inventory (of 2^7 possible).
const maxSets = 32

// pollInterval is how often Run looks for a new inventory.
const pollInterval = 250 * time.Millisecond

// dirName matches the directories libdir makes: <plan name>.<n>.
var dirName = regexp.MustCompile(`^[a-z0-9.]+-[0-9a-f]{16}\.[0-9]+$`)

// Ours reports whether name (an entry of a root) is a directory name libdir
// makes.
func Ours(name string) bool { return dirName.MatchString(name) }

// Manager builds and serves the library directories under one root.
type Manager struct {
	root  string              // host path of the root (what specs name)
	view  func(string) string // where the daemon sees a host path
	grace time.Duration
	sets  []capSet // always built (the configured defaults)

	index atomic.Pointer[index]
	want  chan capSet
}

// capSet is a capability set as a bit per config.AllCapabilities position.
type capSet uint16

func setOf(caps []inventory.Capability) capSet {
	var s capSet
	all := config.AllCapabilities()
	for _, c := range caps {
		if i := slices.Index(all[:], c); i >= 0 {
			s |= 1 << i
		}
	}
	return s
}

func (s capSet) caps() []inventory.Capability {
	var out []inventory.Capability
	for i, c := range config.AllCapabilities() {
		if s&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// index is what LibraryDir reads: the directories built for one inventory.
type index struct {
	inv  *inventory.Inventory
	dirs map[capSet]*edits.BuiltDir // nil: no directory (empty plan, build failed, too many sets)
}

// Option configures a Manager.
type Option func(*Manager)

// WithGrace sets how long a directory no longer wanted stays mounted
// (DefaultGrace).
func WithGrace(d time.Duration) Option { return func(m *Manager) { m.grace = d } }

// WithSets adds capability sets to build for every inventory before any
// container asks for them.
func WithSets(sets ...[]inventory.Capability) Option {
	return func(m *Manager) {
		for _, s := range sets {
			if c := setOf(s); c != 0 && !slices.Contains(m.sets, c) {
				m.sets = append(m.sets, c)
			}
		}
	}
}

// New returns the manager of root (a host path; the daemon sees it at
// view(root)), creating root and detaching every directory left there by an
// earlier run. An entry libdir did not make is an error.
func New(root string, view func(string) string, opts ...Option) (*Manager, error) {
	m := &Manager{root: root, view: view, grace: DefaultGrace, want: make(chan capSet, maxSets)}
	for _, o := range opts {
		o(m)
	}
	dir := view(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("libdir: %w", err)
	}
	if _, err := Clean(dir, false); err != nil {
		return nil, err
	}
	return m, nil
}

// Clean detaches and removes every directory libdir left in dir (as the
// caller sees it), and dir itself when removeDir; it returns what it
// detached. A missing dir is nothing to clean; an entry libdir did not make
// is an error, and nothing is touched then.
func Clean(dir string, removeDir bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("libdir: %w", err)
	}
	for _, e := range ents {
		if !Ours(e.Name()) {
			return nil, fmt.Errorf("libdir: %s holds %q, which gpu-nri did not make: injection.libraryDir must be a directory of its own", dir, e.Name())
		}
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := detach(p); err != nil {
			return out, fmt.Errorf("libdir: a directory left by an earlier run: %w", err)
		}
		out = append(out, p)
	}
	if removeDir {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return out, fmt.Errorf("libdir: %w", err)
		}
	}
	return out, nil
}

// LibraryDir returns the directory of caps built from inv (its plan computed
// once, when it was built), or nil when there is none, in which case Run is
// asked to build it unless it tried already. It does no I/O and never blocks.
func (m *Manager) LibraryDir(inv *inventory.Inventory, caps []inventory.Capability) *edits.BuiltDir {
	s := setOf(caps)
	if ix := m.index.Load(); ix != nil && ix.inv == inv {
		if d, ok := ix.dirs[s]; ok {
			return d
		}
	}
	select {
	case m.want <- s:
	default: // Run is behind; a later container asks again
	}
	return nil
}

// built is one directory Run made.
type built struct {
	edits.BuiltDir
	local  string    // where the daemon sees it
	unused time.Time // when the current index stopped naming it (zero: named)
}

// Run builds the directories of current()'s inventory until ctx ends, then
// detaches all it made. Errors (a file that cannot be bound, a full root) go
// to report; the containers concerned keep their per-file mounts.
func (m *Manager) Run(ctx context.Context, current func() *inventory.Inventory, report func(error)) {
	// Names unique across managers of one root (a configuration replaced
	// at registration starts a second one before the first has ended).
	r := runner{m: m, byPlan: map[string]*built{}, report: report, seq: int(time.Now().UnixNano())}
	defer r.detachAll()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var inv *inventory.Inventory
	for {
		if cur := current(); cur != inv || r.m.index.Load() == nil {
			inv = cur
			r.rebuild(inv)
		}
		select {
		case <-ctx.Done():
			return
		case s := <-m.want:
			if cur := current(); cur != inv {
				inv = cur
				r.rebuild(inv)
			}
			r.add(inv, s)
		case <-tick.C:
			r.expire(time.Now())
		}
	}
}

type runner struct {
	m       *Manager
	byPlan  map[string]*built // the current directory of each plan
	retired []*built          // directories replaced under the same plan name, until their grace ends
	wanted  []capSet          // asked for by containers, in order
	seq     int
	fresh   map[string]bool // plans checked against the host for the indexed inventory
	report  func(error)
}

// rebuild builds (or reuses) the directory of every set wanted so far for inv
// and installs the index LibraryDir reads.
func (r *runner) rebuild(inv *inventory.Inventory) {
	ix := &index{inv: inv, dirs: map[capSet]*edits.BuiltDir{}}
	r.fresh = map[string]bool{}
	if inv != nil {
		for _, s := range append(slices.Clone(r.m.sets), r.wanted...) {
			ix.dirs[s] = r.dirOf(inv, s)
		}
	}
	r.m.index.Store(ix)
	r.mark()
}

// add builds the directory of s for inv (the indexed inventory) when a
// container asked for it, and installs a new index with it.
func (r *runner) add(inv *inventory.Inventory, s capSet) {
	ix := r.m.index.Load()
	if inv == nil || ix == nil || ix.inv != inv {
		return
	}
	if _, ok := ix.dirs[s]; ok {
		return
	}
	next := &index{inv: inv, dirs: make(map[capSet]*edits.BuiltDir, len(ix.dirs)+1)}
	for k, v := range ix.dirs {
		next.dirs[k] = v
	}
	if len(r.m.sets)+len(r.wanted) >= maxSets {
		r.report(fmt.Errorf("libdir: more than %d capability sets asked for; %v keeps per-file mounts", maxSets, s.caps()))
		next.dirs[s] = nil
	} else {
		r.wanted = append(r.wanted, s)
		next.dirs[s] = r.dirOf(inv, s)
	}
	r.m.index.Store(next)
	r.mark()
}

// dirOf returns s's directory for inv, nil when its plan is empty or the
// directory cannot be built (reported).
func (r *runner) dirOf(inv *inventory.Inventory, s capSet) *edits.BuiltDir {
	plan := edits.PlanDir(inv, s.caps())
	if plan.Name == "" {
		return nil
	}
	b, err := r.ensure(plan)
	if err != nil {
		r.report(err)
		return nil
	}
	return &b.BuiltDir
}

// mark starts the grace period of every directory the index no longer names.
func (r *runner) mark() {
	named := map[string]bool{}
	if ix := r.m.index.Load(); ix != nil {
		for _, d := range ix.dirs {
			if d != nil {
				named[d.HostPath] = true
			}
		}
	}
	now := time.Now()
	for _, b := range r.byPlan {
		switch {
		case named[b.HostPath]:
			b.unused = time.Time{}
		case b.unused.IsZero():
			b.unused = now
		}
	}
}

// ensure returns the directory of plan, building it when there is none or
// the one there no longer binds the host's files.
func (r *runner) ensure(plan edits.DirPlan) (*built, error) {
	if b, ok := r.byPlan[plan.Name]; ok {
		if r.fresh[plan.Name] {
			return b, nil
		}
		err := r.same(b)
		if err == nil {
			r.fresh[plan.Name] = true
			return b, nil
		}
		// A file was replaced under the same name: a new directory; the old
		// one is detached after the grace period like any other.
		delete(r.byPlan, plan.Name)
		b.unused = time.Now()
		r.retired = append(r.retired, b)
	}
	r.seq++
	name := plan.Name + "." + strconv.Itoa(r.seq)
	b := &built{BuiltDir: edits.BuiltDir{HostPath: filepath.Join(r.m.root, name), Plan: plan}, local: filepath.Join(r.m.view(r.m.root), name)}
	if err := r.build(b); err != nil {
		if derr := detach(b.local); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("libdir: building %s: %w", b.HostPath, err)
	}
	r.byPlan[plan.Name] = b
	r.fresh[plan.Name] = true
	return b, nil
}

func (r *runner) build(b *built) error {
	if err := os.Mkdir(b.local, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("gpu-nri-lib", b.local, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mounting a tmpfs: %w", err)
	}
	for _, f := range b.Plan.Files {
		dst := filepath.Join(b.local, f.Name)
		fd, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if err := fd.Close(); err != nil {
			return err
		}
		src := r.m.view(f.HostPath)
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s: %w", src, err)
		}
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", dst, err)
		}
	}
	for _, l := range b.Plan.Links {
		if err := os.Symlink(l.Target, filepath.Join(b.local, l.Link)); err != nil {
			return err
		}
	}
	if err := unix.Mount("", b.local, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the directory read-only: %w", err)
	}
	return nil
}

// same checks that b's files still bind the host's files of the same names.
func (r *runner) same(b *built) error {
	for _, f := range b.Plan.Files {
		var in, host unix.Stat_t
		if err := unix.Stat(filepath.Join(b.local, f.Name), &in); err != nil {
			return err
		}
		if err := unix.Stat(r.m.view(f.HostPath), &host); err != nil {
			return err
		}
		if in.Dev != host.Dev || in.Ino != host.Ino {
			return fmt.Errorf("%s was replaced", f.HostPath)
		}
	}
	return nil
}

// expire detaches the directories unused for longer than the grace period.
func (r *runner) expire(now time.Time) {
	over := func(b *built) bool { return !b.unused.IsZero() && now.Sub(b.unused) >= r.m.grace }
	for k, b := range r.byPlan {
		if over(b) {
			delete(r.byPlan, k)
			r.detach(b)
		}
	}
	r.retired = slices.DeleteFunc(r.retired, func(b *built) bool {
		if over(b) {
			r.detach(b)
			return true
		}
		return false
	})
}

func (r *runner) detachAll() {
	r.m.index.Store(nil)
	for k, b := range r.byPlan {
		delete(r.byPlan, k)
		r.detach(b)
	}
	for _, b := range r.retired {
		r.detach(b)
	}
	r.retired = nil
}

func (r *runner) detach(b *built) {
	if err := detach(b.local); err != nil {
		r.report(fmt.Errorf("libdir: %w", err))
	}
}

// detach unmounts dir's tmpfs with everything under it (lazily: a runtime
// binding it right now keeps its copy) and removes the empty directory, so
// that an adjustment still naming it fails to mount rather than gets an
// empty directory.
func detach(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) { // EINVAL: not a mount point
		return fmt.Errorf("detaching %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// Complete reports whether dir (as the caller sees it) is a directory libdir
// finished building: a read-only tmpfs.
func Complete(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC && st.Flags&unix.ST_RDONLY != 0
}

// Built returns the complete directories in dir (as the caller sees it),
// by name: what the daemon has built there and the runtime can mount.
func Built(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if Complete(filepath.Join(dir, e.Name())) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Find returns the newest complete directory of plan under root (a host
// path the caller sees at view(root)), or nil. It reads the file system: for
// one-shot tools (`gpu-nri explain`), never the create path.
func Find(root string, view func(string) string, plan edits.DirPlan) *edits.BuiltDir {
	if plan.Name == "" {
		return nil
	}
	var best *edits.BuiltDir
	bestN := -1
	for _, name := range Built(view(root)) {
		n, err := strconv.Atoi(strings.TrimPrefix(name, plan.Name+"."))
		if !strings.HasPrefix(name, plan.Name+".") || err != nil || n <= bestN {
			continue
		}
		best, bestN = &edits.BuiltDir{HostPath: filepath.Join(root, name), Plan: plan}, n
	}
	return best
}

// Disk answers hostsrc.LibraryDirs from the directories on disk (Find): for
// one-shot tools such as `gpu-nri explain`, which show what the daemon
// running with the same root would inject.
type Disk struct {
	Root string              // host path
	View func(string) string // where the caller sees a host path
}

// LibraryDir returns Find's directory for caps on inv.
func (d Disk) LibraryDir(inv *inventory.Inventory, caps []inventory.Capability) *edits.BuiltDir {
	return Find(d.Root, d.View, edits.PlanDir(inv, caps))
}
