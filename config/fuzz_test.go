package config

import (
	"testing"
)

// FuzzParse: no panic, bounded time, and anything accepted validates and
// keeps absolute host paths.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "host:\n  root: /host\n", "policy:\n  sources:\n    env: {trusted: true, allowNamespaces: ['a*']}\n",
		"injection:\n  loader: hookless\n  hooklessLayout: rhel\n", "{\"plugin\": {\"index\": \"42\"}}", "host: [1, 2]", "log: {level: 7}",
		"policy:\n  managementNamespaces: ['[']\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			t.Skip("config files are small")
		}
		c, err := Parse(data)
		if err != nil {
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("accepted config does not validate: %v", verr)
		}
		if c.Host.Root == "" || c.Host.Root[0] != '/' {
			t.Fatalf("accepted non-absolute host.root %q", c.Host.Root)
		}
	})
}
