package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCreateBundle(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		bundle string
		ok     bool
	}{
		{[]string{"--root", "/r", "--log", "/l", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b", true},
		{[]string{"--root", "/r", "run", "-b", "/b2", "id"}, "/b2", true},
		{[]string{"create", "--bundle=/b3", "id"}, "/b3", true},
		{[]string{"create", "id"}, ".", true},
		{[]string{"--root", "/r", "start", "id"}, "", false},
		{[]string{"--root", "/r", "delete", "--force", "id"}, "", false},
	} {
		b, ok := createBundle(tc.args)
		if b != tc.bundle || ok != tc.ok {
			t.Errorf("createBundle(%q) = %q, %v; want %q, %v", tc.args, b, ok, tc.bundle, tc.ok)
		}
	}
}

func TestDropHugepageLimits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	in := "{\n\t\"ociVersion\": \"1.2.0\",\n\t\"linux\": {\"resources\": {\"memory\": {\"limit\": 9223372036854771712},\n\t\t\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 0}, {\"pageSize\": \"1GB\", \"limit\": 0}]}}\n}"
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dropHugepageLimits(p); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := `{"linux":{"resources":{"memory":{"limit":9223372036854771712}}},"ociVersion":"1.2.0"}`
	if string(got) != want {
		t.Errorf("config.json\n%s\nwant\n%s", got, want)
	}
	// Without hugepage limits the file is left as it is.
	plain := `{"ociVersion": "1.2.0", "linux": {}}`
	if err := os.WriteFile(p, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dropHugepageLimits(p); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != plain {
		t.Errorf("config.json rewritten: %s", got)
	}
}
