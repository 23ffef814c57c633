// Package ldcache reads and writes glibc's dynamic linker cache
// (/etc/ld.so.cache) and reads the DT_SONAME of ELF shared libraries.
//
// # What it reads
//
// Parse understands the two layouts glibc's ldconfig writes:
//
//   - the new format, "glibc-ld.so.cache" + "1.1", standalone (the default
//     since glibc 2.32);
//   - the old "ld.so-1.7.0" format with the new format appended after its
//     entries (ldconfig -c compat, the default before glibc 2.32). The new
//     table is preferred; an old table with nothing after it is read too.
//
// Entries come back in file order (glibc sorts them by soname, descending,
// the order ld.so's binary search expects), with the soname as Key, the
// library path as Value, the raw Flags and the raw HWCap word. Flags is
// decoded by Type, Arch, Is64 and Is32 following glibc's
// sysdeps/generic/ldconfig.h.
//
// # Guarantees
//
// Parse never panics and takes time linear in the input: every count,
// offset and length is checked against the data before use, every string
// must end with a NUL inside the data, and the bytes scanned for strings
// are bounded by a small multiple of the input size. ReadFile refuses
// files over MaxFileSize. SONAME converts a panic inside debug/elf into an
// error.
//
// Write produces a new-format cache that glibc's ld.so and `ldconfig -p -C`
// accept (the tests check this with the real ldconfig): entries sorted as
// ldconfig sorts them, strings deduplicated, little/host endian flag set.
//
// # What it does not do
//
// It does not resolve glibc-hwcaps extension entries (HWCap is returned
// raw, DL_CACHE_HWCAP_EXTENSION bit included), does not read big-endian caches on little-endian
// hosts (such a cache is an error, as it is for glibc), and does not check
// that the paths exist. SONAME reads section headers (DT_SONAME from the
// SHT_DYNAMIC section), so a library stripped of its section headers has no
// readable SONAME.
package ldcache
