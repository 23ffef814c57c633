package inventory

import "strings"

// VanishedFile reports whether msg, a runtime's error for a container that
// could not be created or started (the NRI container's StatusMessage, e.g.
// runc's `error mounting "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14"
// to rootfs at ...: no such file or directory`), says that a host file of
// this inventory is missing, and returns that file. The daemon then calls
// Watcher.Kick. It is string work only: no file system access.
func (inv *Inventory) VanishedFile(msg string) (File, bool) {
	if inv == nil || !strings.Contains(strings.ToLower(msg), "no such file or directory") {
		return File{}, false
	}
	var files []File
	for _, m := range []map[Capability][]File{inv.Libraries, inv.Binaries, inv.ConfigFiles, inv.Sockets} {
		for _, fs := range m {
			files = append(files, fs...)
		}
	}
	for _, fs := range inv.ExtraFiles {
		files = append(files, fs...)
	}
	files = append(files, inv.Firmware...)
	if inv.MPSPipeDir != nil {
		files = append(files, *inv.MPSPipeDir)
	}
	for _, f := range files {
		if mentions(msg, f.HostPath) {
			return f, true
		}
	}
	return File{}, false
}

// mentions reports whether msg names path as a whole path (not as the
// prefix of a longer one: libcuda.so.1 is not libcuda.so.1.1).
func mentions(msg, path string) bool {
	for i := 0; ; {
		j := strings.Index(msg[i:], path)
		if j < 0 {
			return false
		}
		end := i + j + len(path)
		if end == len(msg) || !isPathByte(msg[end]) {
			return true
		}
		i = end
	}
}

func isPathByte(c byte) bool {
	return c == '.' || c == '-' || c == '_' || c == '/' || c == '+' ||
		('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
