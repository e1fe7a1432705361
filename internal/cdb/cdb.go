// Package cdb reads and writes D. J. Bernstein's constant database (cdb) format,
// byte-compatible with cdbmake (freecdb) and tinycdb. It knows nothing about mail.
//
// A cdb file is a 2048-byte header of 256 (position, slot count) pairs, then the
// records (key length, data length, key, data), then 256 open-addressing hash
// tables of (hash, record position) slots. All numbers are little-endian uint32,
// so a file is at most 4 GiB - 1 bytes long.
package cdb

import "errors"

var (
	// ErrTooLarge is returned by [Writer.Add] and [Writer.Finish] when the file would
	// not fit the format: some offset or length would not be representable in 32 bits.
	ErrTooLarge = errors.New("cdb: database too large")

	// ErrCorrupt is wrapped by every error that reports a malformed, truncated or
	// hostile file.
	ErrCorrupt = errors.New("cdb: corrupt database")
)

const (
	headerSize = 256 * 8
	// maxSize is the largest file size whose every offset fits in a uint32.
	maxSize = 1<<32 - 1
)

// hash is the cdb hash function: h = 5381; h = ((h << 5) + h) ^ c for each byte.
func hash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = ((h << 5) + h) ^ uint32(c)
	}
	return h
}
