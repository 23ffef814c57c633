package inventory

// StatNodeStater returns the default NodeStater: stat(2) of the node, which
// must be a character or block device.
func StatNodeStater() NodeStater { return statStater{} }
