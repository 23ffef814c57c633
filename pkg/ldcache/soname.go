package ldcache

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNoSONAME is wrapped when an ELF file has no DT_SONAME.
var ErrNoSONAME = errors.New("ldcache: no DT_SONAME")

// ReadSONAME returns the DT_SONAME of the ELF shared library at path.
func ReadSONAME(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("ldcache: %w", err)
	}
	defer f.Close()
	s, err := SONAME(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// SONAME returns the DT_SONAME of an ELF (32- or 64-bit, either byte order)
// read from r. A file without one gives an error wrapping ErrNoSONAME.
func SONAME(r io.ReaderAt) (soname string, err error) {
	defer func() {
		if p := recover(); p != nil {
			soname, err = "", fmt.Errorf("ldcache: malformed ELF: %v", p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return "", fmt.Errorf("ldcache: not an ELF file: %w", err)
	}
	defer f.Close()
	names, err := f.DynString(elf.DT_SONAME)
	if err != nil {
		return "", fmt.Errorf("ldcache: reading dynamic section: %w", err)
	}
	if len(names) == 0 || names[0] == "" {
		return "", ErrNoSONAME
	}
	return names[0], nil
}
