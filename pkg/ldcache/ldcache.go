package ldcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Magic strings of the two cache layouts.
const (
	magicOld     = "ld.so-1.7.0"
	magicNew     = "glibc-ld.so.cache"
	versionNew   = "1.1"
	headerOldLen = 16 // magic (11) + pad (1) + nlibs (4)
	entryOldLen  = 12 // flags, key, value
	headerNewLen = 48
	entryNewLen  = 24 // flags, key, value, osversion, hwcap
)

// MaxFileSize is the largest cache ReadFile accepts. Real caches are tens
// to hundreds of KiB.
const MaxFileSize = 64 << 20

// Flag bits (glibc sysdeps/generic/ldconfig.h).
const (
	FlagTypeMask     = 0x00ff
	FlagLibc4        = 0x0000
	FlagELF          = 0x0001
	FlagELFLibc5     = 0x0002
	FlagELFLibc6     = 0x0003
	FlagRequiredMask = 0xff00

	FlagSPARCLib64          = 0x0100
	FlagIA64Lib64           = 0x0200
	FlagX8664Lib64          = 0x0300
	FlagS390Lib64           = 0x0400
	FlagPowerPCLib64        = 0x0500
	FlagMIPS64LibN32        = 0x0600
	FlagMIPS64LibN64        = 0x0700
	FlagX8664LibX32         = 0x0800
	FlagARMLibHF            = 0x0900
	FlagAArch64Lib64        = 0x0a00
	FlagARMLibSF            = 0x0b00
	FlagMIPSLib32NaN2008    = 0x0c00
	FlagMIPS64LibN32NaN2008 = 0x0d00
	FlagMIPS64LibN64NaN2008 = 0x0e00
	FlagRISCVFloatABISoft   = 0x0f00
	FlagRISCVFloatABIDouble = 0x1000
)

// Cache flags byte values (cache_file_new.flags & 3).
const (
	endianUnset   = 0
	endianInvalid = 1
	endianLittle  = 2
	endianBig     = 3
)

// ErrFormat is wrapped by every error about malformed cache data.
var ErrFormat = errors.New("ldcache: malformed cache")

// Entry is one library in the cache.
type Entry struct {
	// Key is the library's soname (e.g. libcuda.so.1).
	Key string
	// Value is the path of the library file ld.so maps for Key.
	Value string
	// Flags is the raw flags word: library type in the low byte, required
	// architecture in the second (FlagX8664Lib64, ...).
	Flags int32
	// HWCap is the raw hwcap word (0 in the old format).
	HWCap uint64
}

// Type returns the library type bits (FlagELFLibc6 for glibc libraries).
func (e Entry) Type() int32 { return e.Flags & FlagTypeMask }

// Arch returns the required-architecture bits (FlagX8664Lib64, ...).
func (e Entry) Arch() int32 { return e.Flags & FlagRequiredMask }

func (e Entry) isELF() bool {
	t := e.Type()
	return t == FlagELF || t == FlagELFLibc5 || t == FlagELFLibc6
}

// Is64 reports whether the entry is a 64-bit ELF library of an LP64 ABI
// (x86-64, AArch64, ppc64, s390x, sparc64, ia64, mips64 n64).
func (e Entry) Is64() bool {
	if !e.isELF() {
		return false
	}
	switch e.Arch() {
	case FlagSPARCLib64, FlagIA64Lib64, FlagX8664Lib64, FlagS390Lib64, FlagPowerPCLib64,
		FlagMIPS64LibN64, FlagAArch64Lib64, FlagMIPS64LibN64NaN2008:
		return true
	}
	return false
}

// Is32 reports whether the entry is a plain 32-bit ELF library: no
// architecture bits (i386 and other 32-bit ABIs ldconfig marks with 0), or
// 32-bit ARM hard/soft float, or MIPS32 nan2008. ILP32 flavours of 64-bit
// CPUs (x32, mips n32) are neither Is32 nor Is64, and so are RISC-V entries,
// whose flags do not say the word size.
func (e Entry) Is32() bool {
	if !e.isELF() {
		return false
	}
	switch e.Arch() {
	case 0, FlagARMLibHF, FlagARMLibSF, FlagMIPSLib32NaN2008:
		return true
	}
	return false
}

// ReadFile reads and parses the cache at path.
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ldcache: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("ldcache: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("ldcache: %s: larger than %d bytes", path, MaxFileSize)
	}
	entries, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return entries, nil
}

func formatErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, a...))
}

// Parse decodes a cache held in memory. It prefers the new-format table;
// an old-format file without one gives the old entries (HWCap 0).
func Parse(data []byte) ([]Entry, error) {
	switch {
	case bytes.HasPrefix(data, []byte(magicNew)):
		return parseNew(data, 0)
	case bytes.HasPrefix(data, []byte(magicOld)):
		return parseOld(data)
	}
	return nil, formatErr("unknown magic (not %q nor %q)", magicNew, magicOld)
}

// stringReader resolves NUL-terminated strings with a scan budget so that a
// hostile file cannot make Parse quadratic.
type stringReader struct {
	data   []byte // the region offsets are relative to
	budget int
}

func (s *stringReader) str(off uint32) (string, error) {
	if uint64(off) >= uint64(len(s.data)) {
		return "", formatErr("string offset %d outside the %d bytes after its table base", off, len(s.data))
	}
	rest := s.data[off:]
	if len(rest) > s.budget {
		rest = rest[:s.budget]
	}
	n := bytes.IndexByte(rest, 0)
	if n < 0 {
		if len(rest) < len(s.data)-int(off) {
			return "", formatErr("string scan budget exhausted at offset %d", off)
		}
		return "", formatErr("string at offset %d has no terminating NUL", off)
	}
	s.budget -= n + 1
	return string(rest[:n]), nil
}

func newStringReader(region []byte, total int) *stringReader {
	return &stringReader{data: region, budget: 4*total + 1<<16}
}

func parseOld(data []byte) ([]Entry, error) {
	if len(data) < headerOldLen {
		return nil, formatErr("old-format header truncated (%d bytes)", len(data))
	}
	nlibs := binary.LittleEndian.Uint32(data[12:16])
	end := uint64(headerOldLen) + uint64(nlibs)*entryOldLen
	if end > uint64(len(data)) {
		return nil, formatErr("old format: %d entries need %d bytes, file has %d", nlibs, end, len(data))
	}
	// The new format follows the old entries, aligned for its 8-byte
	// fields (4 bytes on ABIs where uint64 is 4-aligned, e.g. i386).
	for _, align := range []uint64{8, 4} {
		off := (end + align - 1) &^ (align - 1)
		if off < uint64(len(data)) && bytes.HasPrefix(data[off:], []byte(magicNew)) {
			return parseNew(data, int(off))
		}
	}
	strs := newStringReader(data[end:], len(data))
	entries := make([]Entry, 0, nlibs)
	for i := range uint64(nlibs) {
		p := headerOldLen + i*entryOldLen
		e, err := readEntry(data[p:p+entryOldLen], strs)
		if err != nil {
			return nil, fmt.Errorf("old-format entry %d: %w", i, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func readEntry(b []byte, strs *stringReader) (Entry, error) {
	e := Entry{Flags: int32(binary.LittleEndian.Uint32(b[0:4]))}
	var err error
	if e.Key, err = strs.str(binary.LittleEndian.Uint32(b[4:8])); err != nil {
		return Entry{}, fmt.Errorf("key: %w", err)
	}
	if e.Value, err = strs.str(binary.LittleEndian.Uint32(b[8:12])); err != nil {
		return Entry{}, fmt.Errorf("value: %w", err)
	}
	return e, nil
}

func parseNew(data []byte, base int) ([]Entry, error) {
	h := data[base:]
	if len(h) < headerNewLen {
		return nil, formatErr("new-format header at offset %d truncated (%d bytes)", base, len(h))
	}
	if string(h[len(magicNew):len(magicNew)+len(versionNew)]) != versionNew {
		return nil, formatErr("new format: unsupported version %q", h[len(magicNew):len(magicNew)+len(versionNew)])
	}
	switch h[28] & 3 {
	case endianUnset, endianLittle:
	case endianInvalid:
		return nil, formatErr("new format: cache marked invalid (endian flag 1)")
	case endianBig:
		return nil, formatErr("new format: big-endian cache")
	}
	nlibs := binary.LittleEndian.Uint32(h[20:24])
	end := uint64(headerNewLen) + uint64(nlibs)*entryNewLen
	if end > uint64(len(h)) {
		return nil, formatErr("new format: %d entries need %d bytes, %d available", nlibs, end, len(h))
	}
	// String offsets are relative to the new header.
	strs := newStringReader(h, len(data))
	entries := make([]Entry, 0, nlibs)
	for i := range uint64(nlibs) {
		p := headerNewLen + i*entryNewLen
		e, err := readEntry(h[p:p+12], strs)
		if err != nil {
			return nil, fmt.Errorf("new-format entry %d: %w", i, err)
		}
		e.HWCap = binary.LittleEndian.Uint64(h[p+16 : p+24])
		entries = append(entries, e)
	}
	return entries, nil
}
