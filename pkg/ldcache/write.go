package ldcache

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Write encodes entries as a standalone new-format cache ("glibc-ld.so.cache1.1",
// little endian, no extension section), the layout glibc 2.32+ ldconfig
// writes by default. Entries are sorted the way ldconfig sorts them (soname
// descending in glibc's version-aware order, then flags and hwcap
// descending), which ld.so's binary search relies on. Strings are
// deduplicated. A Key or Value containing a NUL byte is cut at it.
func Write(entries []Entry) []byte {
	sorted := slices.Clone(entries)
	for i := range sorted {
		sorted[i].Key = cutNUL(sorted[i].Key)
		sorted[i].Value = cutNUL(sorted[i].Value)
	}
	slices.SortStableFunc(sorted, compareEntries)

	stringsBase := headerNewLen + len(sorted)*entryNewLen
	var table []byte
	offsets := map[string]uint32{}
	intern := func(s string) uint32 {
		if off, ok := offsets[s]; ok {
			return off
		}
		off := uint32(stringsBase + len(table))
		table = append(table, s...)
		table = append(table, 0)
		offsets[s] = off
		return off
	}

	out := make([]byte, stringsBase, stringsBase+64*len(sorted))
	copy(out, magicNew+versionNew)
	binary.LittleEndian.PutUint32(out[20:], uint32(len(sorted)))
	out[28] = endianLittle
	for i, e := range sorted {
		p := out[headerNewLen+i*entryNewLen:]
		binary.LittleEndian.PutUint32(p[0:], uint32(e.Flags))
		binary.LittleEndian.PutUint32(p[4:], intern(e.Key))
		binary.LittleEndian.PutUint32(p[8:], intern(e.Value))
		binary.LittleEndian.PutUint64(p[16:], e.HWCap)
	}
	binary.LittleEndian.PutUint32(out[24:], uint32(len(table)))
	return append(out, table...)
}

func cutNUL(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// compareEntries is ldconfig's sort order (elf/cache.c compare()).
func compareEntries(a, b Entry) int {
	if c := LibCmp(b.Key, a.Key); c != 0 {
		return c
	}
	switch {
	case a.Flags < b.Flags:
		return 1
	case a.Flags > b.Flags:
		return -1
	case a.HWCap < b.HWCap:
		return 1
	case a.HWCap > b.HWCap:
		return -1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// LibCmp compares sonames the way glibc's _dl_cache_libcmp does: runs of
// digits compare numerically, everything else bytewise. It returns <0, 0
// or >0.
func LibCmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) {
		switch {
		case isDigit(a[i]):
			if j >= len(b) || !isDigit(b[j]) {
				return 1
			}
			// Compare the digit runs numerically without overflow:
			// strip leading zeros, then longer is larger, then bytewise.
			si := i
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			sj := j
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
		case j < len(b) && isDigit(b[j]):
			return -1
		case j >= len(b):
			return int(a[i])
		case a[i] != b[j]:
			return int(a[i]) - int(b[j])
		default:
			i++
			j++
		}
	}
	if j < len(b) {
		return -int(b[j])
	}
	return 0
}
