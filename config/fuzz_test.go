package config

import (
	"bytes"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzParse: no panic, bounded time, and anything accepted validates and
// keeps absolute host paths.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "host:\n  root: /host\n", "policy:\n  sources:\n    env: {trusted: true, allowNamespaces: ['a*']}\n",
		"injection:\n  loader: hookless\n  hooklessLayout: rhel\n", "{\"plugin\": {\"index\": \"42\"}}", "host: [1, 2]", "log: {level: 7}",
		"policy:\n  managementNamespaces: ['[']\n", "policy:\n  managementNamespaces: []\n", "policy:\n  sources:\n    env: {allowNamespaces: []}\n"} {
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
		// What was accepted says the same when written out and read back
		// (config check / config default print it this way).
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("accepted config, written out, is refused: %v\n%s", err, out)
		}
		// Compared as written (an empty list and no list write the same).
		if again, _ := yaml.Marshal(back); !bytes.Equal(out, again) {
			t.Fatalf("config changes when written out and read back:\n%s\n---\n%s", out, again)
		}
	})
}
