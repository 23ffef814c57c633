package inventory

// StatNodeStater returns the default NodeStater: stat(2) of the path
// (following symlinks). It reports what the file is (IsChar, IsBlock) and
// fails, wrapping fs.ErrNotExist, only when it cannot be stat-ed; Discover
// itself accepts only character devices.
func StatNodeStater() NodeStater { return statStater{} }
