package ldcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const ldconfig = "/sbin/ldconfig"

// oldFormat builds an old-format table ("ld.so-1.7.0"), optionally followed
// by newTail (a new-format cache) aligned to align bytes. The old entries'
// strings live in a table after the new tail, as ldconfig lays them out.
func oldFormat(entries []Entry, newTail []byte, align int) []byte {
	hdr := make([]byte, headerOldLen+len(entries)*entryOldLen)
	copy(hdr, magicOld)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(entries)))
	strBase := len(hdr)
	var tail []byte
	if newTail != nil {
		for (strBase+len(tail))%align != 0 {
			tail = append(tail, 0)
		}
		tail = append(tail, newTail...)
	}
	for i, e := range entries {
		p := hdr[headerOldLen+i*entryOldLen:]
		binary.LittleEndian.PutUint32(p[0:], uint32(e.Flags))
		binary.LittleEndian.PutUint32(p[4:], uint32(len(tail)))
		tail = append(append(tail, e.Key...), 0)
		binary.LittleEndian.PutUint32(p[8:], uint32(len(tail)))
		tail = append(append(tail, e.Value...), 0)
	}
	return append(hdr, tail...)
}

var sample = []Entry{
	{Key: "libcuda.so.1", Value: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", Flags: FlagELFLibc6 | FlagX8664Lib64},
	{Key: "libcuda.so.1", Value: "/usr/lib/i386-linux-gnu/libcuda.so.550.54.14", Flags: FlagELFLibc6},
	{Key: "libnvidia-ml.so.1", Value: "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.14", Flags: FlagELFLibc6 | FlagX8664Lib64},
	{Key: "libz.so.1", Value: "/lib/x86_64-linux-gnu/libz.so.1", Flags: FlagELFLibc6 | FlagX8664Lib64, HWCap: 7},
}

func TestParse(t *testing.T) {
	newOnly := Write(sample)
	truncated := newOnly[:len(newOnly)-3] // cuts the last string's NUL
	badOffset := bytes.Clone(newOnly)
	binary.LittleEndian.PutUint32(badOffset[headerNewLen+4:], 1<<31)
	hugeCount := bytes.Clone(newOnly)
	binary.LittleEndian.PutUint32(hugeCount[20:], 1<<31)
	bigEndian := bytes.Clone(newOnly)
	bigEndian[28] = endianBig
	badVersion := bytes.Clone(newOnly)
	copy(badVersion[len(magicNew):], "9.9")
	oldOnly := []Entry{{Key: "libc.so.6", Value: "/lib/libc.so.6", Flags: FlagELFLibc6}}

	tests := []struct {
		name    string
		data    []byte
		want    []Entry // nil: compare to Write order of sample
		wantErr string
	}{
		{name: "new format", data: newOnly},
		{name: "old + new, 8-aligned", data: oldFormat(sample[:1], newOnly, 8)},
		{name: "old + new, 4-aligned", data: oldFormat(sample[:2], newOnly, 4)},
		{name: "old only", data: oldFormat(oldOnly, nil, 0), want: oldOnly},
		{name: "empty new", data: Write(nil), want: []Entry{}},
		{name: "empty input", data: nil, wantErr: "unknown magic"},
		{name: "garbage", data: []byte("hello world, this is no cache at all....................."), wantErr: "unknown magic"},
		{name: "short new header", data: newOnly[:30], wantErr: "header at offset 0 truncated"},
		{name: "short old header", data: []byte(magicOld), wantErr: "old-format header truncated"},
		{name: "missing NUL", data: truncated, wantErr: "no terminating NUL"},
		{name: "offset out of range", data: badOffset, wantErr: "outside"},
		{name: "entry count past end", data: hugeCount, wantErr: "entries need"},
		{name: "big endian", data: bigEndian, wantErr: "big-endian"},
		{name: "bad version", data: badVersion, wantErr: "unsupported version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.data)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.ErrorIs(t, err, ErrFormat)
				return
			}
			require.NoError(t, err)
			want := tc.want
			if want == nil {
				want = sortedSample()
			}
			require.Equal(t, want, got)
		})
	}
}

// sortedSample is sample in ldconfig's order (soname descending, then flags
// descending), written out so that Parse is checked against a literal.
func sortedSample() []Entry {
	return []Entry{sample[3], sample[2], sample[0], sample[1]}
}

func TestWriteOrderAndRoundTrip(t *testing.T) {
	got, err := Parse(Write(sample))
	require.NoError(t, err)
	require.ElementsMatch(t, sample, got)
	// ldconfig order: soname descending, then flags descending.
	require.Equal(t, []string{"libz.so.1", "libnvidia-ml.so.1", "libcuda.so.1", "libcuda.so.1"}, keys(got))
	require.True(t, got[2].Is64())
	require.True(t, got[3].Is32())
}

func keys(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

func TestFlags(t *testing.T) {
	tests := []struct {
		flags      int32
		is64, is32 bool
		describe   string
	}{
		{FlagELFLibc6 | FlagX8664Lib64, true, false, "libc6,x86-64"},
		{FlagELFLibc6, false, true, "libc6"},
		{FlagELFLibc6 | FlagAArch64Lib64, true, false, "libc6,AArch64"},
		{FlagELFLibc6 | FlagX8664LibX32, false, false, "libc6,x32"},
		{FlagELFLibc6 | FlagARMLibHF, false, true, "libc6,hard-float"},
		{FlagELFLibc6 | FlagPowerPCLib64, true, false, "libc6,64bit"},
		{FlagELF, false, true, "ELF"},
		{FlagLibc4, false, false, "unknown"},
		{FlagELFLibc6 | 0x7700, false, false, "libc6,30464"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%#x", tc.flags), func(t *testing.T) {
			e := Entry{Flags: tc.flags}
			require.Equal(t, tc.is64, e.Is64())
			require.Equal(t, tc.is32, e.Is32())
			require.Equal(t, tc.describe, describe(e))
		})
	}
}

func TestLibCmp(t *testing.T) {
	tests := []struct {
		a, b string
		sign int
	}{
		{"libc.so.6", "libc.so.6", 0},
		{"libfoo.so.10", "libfoo.so.9", 1},
		{"libfoo.so.9", "libfoo.so.10", -1},
		{"libfoo.so.01", "libfoo.so.1", 0},
		{"libfoo.so", "libfoo.so.1", -1},
		{"libfoo.so.1", "libfoo.so", 1},
		{"lib1", "liba", 1},
		{"liba", "lib1", -1},
		{"liba", "libb", -1},
		{"libz.so.99999999999999999999", "libz.so.99999999999999999998", 1},
	}
	for _, tc := range tests {
		t.Run(tc.a+"~"+tc.b, func(t *testing.T) {
			c := LibCmp(tc.a, tc.b)
			switch {
			case tc.sign == 0:
				require.Zero(t, c)
			case tc.sign < 0:
				require.Negative(t, c)
			default:
				require.Positive(t, c)
			}
		})
	}
}

// ldconfigLine matches an entry line of `ldconfig -p`.
var ldconfigLine = regexp.MustCompile(`^\t(\S+) \(([^)]*)\) => (.*)$`)

type printed struct{ key, desc, value string }

// ldconfigPrint runs the real glibc ldconfig -p on a cache file.
func ldconfigPrint(t *testing.T, cache string) []printed {
	t.Helper()
	if _, err := os.Stat(ldconfig); err != nil {
		t.Skipf("glibc ldconfig not available at %s: %v", ldconfig, err)
	}
	args := []string{"-p"}
	if cache != "" {
		args = append(args, "-C", cache)
	}
	out, err := exec.Command(ldconfig, args...).CombinedOutput()
	require.NoError(t, err, "ldconfig %v: %s", args, out)
	var res []printed
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := ldconfigLine.FindStringSubmatch(sc.Text()); m != nil {
			res = append(res, printed{m[1], m[2], m[3]})
		}
	}
	require.Contains(t, string(out), fmt.Sprintf("%d libs found in cache", len(res)), "ldconfig output: %s", out)
	return res
}

func requireMatchesLdconfig(t *testing.T, entries []Entry, lines []printed) {
	t.Helper()
	require.Len(t, entries, len(lines))
	for i, e := range entries {
		require.Equal(t, lines[i].key, e.Key, "entry %d", i)
		require.Equal(t, lines[i].value, e.Value, "entry %d", i)
		require.True(t, strings.HasPrefix(lines[i].desc, describe(e)), "entry %d: ldconfig says %q, we say %q", i, lines[i].desc, describe(e))
	}
}

func TestRealCacheMatchesLdconfig(t *testing.T) {
	const path = "/etc/ld.so.cache"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s on this machine: %v", path, err)
	}
	entries, err := ReadFile(path)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	requireMatchesLdconfig(t, entries, ldconfigPrint(t, ""))
}

// TestLdconfigFormats has the real ldconfig write each of its formats over
// the same directories and checks Parse reads what ldconfig -p prints.
func TestLdconfigFormats(t *testing.T) {
	if _, err := os.Stat(ldconfig); err != nil {
		t.Skipf("glibc ldconfig not available at %s: %v", ldconfig, err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "ld.so.conf")
	require.NoError(t, os.WriteFile(conf, nil, 0o644))
	var newEntries []Entry
	for _, format := range []string{"new", "compat", "old"} {
		t.Run(format, func(t *testing.T) {
			cache := filepath.Join(dir, format+".cache")
			out, err := exec.Command(ldconfig, "-c", format, "-f", conf, "-C", cache).CombinedOutput()
			require.NoError(t, err, "%s", out)
			entries, err := ReadFile(cache)
			require.NoError(t, err)
			require.NotEmpty(t, entries)
			switch format {
			case "new":
				requireMatchesLdconfig(t, entries, ldconfigPrint(t, cache))
				newEntries = entries
			case "compat":
				// Compat files carry the new table; Parse must pick it.
				raw, err := os.ReadFile(cache)
				require.NoError(t, err)
				require.True(t, bytes.HasPrefix(raw, []byte(magicOld)))
				requireMatchesLdconfig(t, entries, ldconfigPrint(t, cache))
				require.Equal(t, newEntries, entries)
			case "old":
				// Current ldconfig -p no longer prints old-only files;
				// compare against the new table instead (same order, no hwcap).
				require.Equal(t, keys(newEntries), keys(entries))
			}
		})
	}
}

// TestWriteReadByLdconfig proves the writer against glibc: ldconfig -p -C
// prints exactly what Write encoded, in the same order.
func TestWriteReadByLdconfig(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "ld.so.cache")
	in := []Entry{}
	for i := range 40 {
		in = append(in, Entry{Key: fmt.Sprintf("libsim%d.so.%d", i%7, i), Value: fmt.Sprintf("/usr/lib/x86_64-linux-gnu/libsim%d.so.%d.0", i%7, i), Flags: FlagELFLibc6 | FlagX8664Lib64})
	}
	in = append(in, sample...)
	require.NoError(t, os.WriteFile(cache, Write(in), 0o644))
	entries, err := ReadFile(cache)
	require.NoError(t, err)
	require.ElementsMatch(t, in, entries)
	requireMatchesLdconfig(t, entries, ldconfigPrint(t, cache))
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("nope"), 0o644))
	_, err = ReadFile(bad)
	require.ErrorIs(t, err, ErrFormat)
	require.ErrorContains(t, err, bad)
}

func TestParseBudget(t *testing.T) {
	// Many entries pointing at one long NUL-free run: must fail fast, not
	// scan quadratically.
	const n = 20000
	data := make([]byte, headerNewLen+n*entryNewLen)
	copy(data, magicNew+versionNew)
	binary.LittleEndian.PutUint32(data[20:], n)
	long := bytes.Repeat([]byte("a"), 1<<16)
	for i := range n {
		binary.LittleEndian.PutUint32(data[headerNewLen+i*entryNewLen+4:], uint32(len(data)))
		binary.LittleEndian.PutUint32(data[headerNewLen+i*entryNewLen+8:], uint32(len(data)))
	}
	data = append(append(data, long...), 0)
	_, err := Parse(data)
	require.ErrorIs(t, err, ErrFormat)
	require.ErrorContains(t, err, "budget")
}

func TestParseNeverPanicsOnTruncation(t *testing.T) {
	full := oldFormat(sample, Write(sample), 8)
	for i := range full {
		_, _ = Parse(full[:i])
	}
	_, err := Parse(full)
	require.NoError(t, err)
	require.False(t, errors.Is(err, ErrFormat))
}

// describe returns e's flags the way `ldconfig -p` prints them inside the
// parentheses, e.g. "libc6,x86-64" (hwcap and OS ABI are not included).
func describe(e Entry) string {
	var s string
	switch e.Type() {
	case FlagELF:
		s = "ELF"
	case FlagELFLibc5:
		s = "libc5"
	case FlagELFLibc6:
		s = "libc6"
	default:
		s = "unknown"
	}
	switch e.Arch() {
	case 0:
	case FlagSPARCLib64, FlagS390Lib64, FlagPowerPCLib64, FlagMIPS64LibN64:
		s += ",64bit"
	case FlagIA64Lib64:
		s += ",IA-64"
	case FlagX8664Lib64:
		s += ",x86-64"
	case FlagMIPS64LibN32:
		s += ",N32"
	case FlagX8664LibX32:
		s += ",x32"
	case FlagARMLibHF:
		s += ",hard-float"
	case FlagAArch64Lib64:
		s += ",AArch64"
	case FlagARMLibSF:
		s += ",soft-float"
	case FlagMIPSLib32NaN2008:
		s += ",nan2008"
	case FlagMIPS64LibN32NaN2008:
		s += ",N32,nan2008"
	case FlagMIPS64LibN64NaN2008:
		s += ",64bit,nan2008"
	case FlagRISCVFloatABISoft:
		s += ",soft-float"
	case FlagRISCVFloatABIDouble:
		s += ",double-float"
	default:
		s += fmt.Sprintf(",%d", e.Arch())
	}
	return s
}
