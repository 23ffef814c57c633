package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// daemon is a CRI runtime process the harness started (containerd or
// CRI-O): its command, its log and the channel closed when it exits. The
// runtimes differ in their configuration, not in how they are run.
type daemon struct {
	name string // for errors: "containerd", "CRI-O"
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// start runs argv (in its own mount namespace without
// /sys/fs/cgroup/unified when cgroupV1: a slave of the host's, so that the
// unmount stays there and later mounts under shared host mounts, Env.SharedDir,
// still reach it) in its own session, appending its
// output to logPath, and records its pid in pidFile.
func (d *daemon) start(argv, env []string, logPath, pidFile string, cgroupV1 bool) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if cgroupV1 {
		argv = append([]string{"unshare", "--mount", "--propagation", "slave", "sh", "-c", `umount -l /sys/fs/cgroup/unified && exec "$0" "$@"`}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("harness: start %s: %w", d.name, err)
	}
	d.cmd, d.log, d.done = cmd, logf, make(chan struct{})
	_ = os.WriteFile(pidFile, []byte(fmt.Sprint(cmd.Process.Pid)), 0o644)
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(d.done)
	return nil
}

// waitReady returns once the NRI socket exists and CRI answers Version on
// socket (30 s at most), or when the process exits.
func (d *daemon) waitReady(ctx context.Context, socket, nriSocket, logPath string) error {
	cri, err := DialCRI(socket)
	if err != nil {
		return err
	}
	defer func() { _ = cri.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		if _, err := os.Stat(nriSocket); err != nil {
			last = fmt.Errorf("no NRI socket yet: %w", err)
		} else {
			vctx, vcancel := context.WithTimeout(ctx, time.Second)
			_, last = cri.Version(vctx)
			vcancel()
			if last == nil {
				return nil
			}
		}
		select {
		case <-d.done:
			return fmt.Errorf("harness: %s exited: %s", d.name, logTail(logPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("harness: %s not ready (log %s): %w", d.name, logPath, errors.Join(last, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// running reports whether the started process is still alive.
func (d *daemon) running() bool {
	if d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// pid is the process id (of the unshare wrapper, which execs the runtime).
func (d *daemon) pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// stop removes every pod through the CRI socket, then SIGTERMs the process
// (SIGKILL after grace); nothing when it is not running.
func (d *daemon) stop(ctx context.Context, socket string, grace time.Duration) error {
	if !d.running() {
		return nil
	}
	var err error
	if cri, derr := DialCRI(socket); derr == nil {
		err = RemoveAllPods(ctx, cri)
		_ = cri.Close()
	}
	d.signal(syscall.SIGTERM, grace)
	return err
}

// kill SIGKILLs the process without removing pods (a crash).
func (d *daemon) kill() {
	if d.running() {
		d.signal(syscall.SIGKILL, 5*time.Second)
	}
}

// signal sends sig and waits for the exit, SIGKILLing after grace.
func (d *daemon) signal(sig syscall.Signal, grace time.Duration) {
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	_ = d.log.Close()
}

// killStale SIGKILLs what an earlier run left running: the process pidFile
// names, if it runs exe (usually a link into the versioned tool cache;
// /proc/PID/exe is resolved).
func killStale(pidFile, exe string) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil || pid <= 0 {
		return
	}
	want, _ := filepath.EvalSymlinks(exe)
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && (got == exe || got == want) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	_ = os.Remove(pidFile)
}

// logTail is the last n lines of the file at path.
func logTail(path string, n int) string {
	data, _ := os.ReadFile(path)
	return tail(string(data), n)
}
