package rules

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The rules version names a compiled list, so that an operator can tell that every MX
// host runs the same one: the same text (and, for a :rcpthosts line, the same hosted
// domains) gives the same version on every host, whatever the file's path or
// modification time. It is a checksum of the records as the CDB holds them (key and value
// of each entry, in file order: the meta record, which holds the file name and the
// control files' stamps, is left out), computed while compiling and kept in the meta
// record, so that reading it costs a message nothing. The in-memory rules of [LoadText]
// get the same version as the CDB compiled from the same text.
//
// The checksum is CRC-32C followed by CRC-32 (IEEE) of the records, each written as its
// key, its value, the uvarint length of the key and that of the value; the version is
// the first 12 of their 16 hexadecimal digits. Both CRCs run in hardware on amd64 and arm64 (some
// 10 GB/s here), where FNV-1a 128 ran at about 100 MB/s and would have doubled the time
// of a large compile; crypto/* is out of the question in the per-message program (it
// brings a 32 MiB BSS). A CRC is no defence against a forger, which the version needs
// none of: it tells lists apart that differ by accident.

// versionLen is the length of a rules version in hexadecimal digits.
const versionLen = 12

// versionSum accumulates the records' bytes and checksums them a buffer at a time.
type versionSum struct {
	buf        []byte
	mark       int    // where the value of the record begun starts in buf
	c, i       uint32 // CRC-32C and CRC-32 (IEEE) so far
	castagnoli *crc32.Table
}

const versionChunk = 64 << 10

func newVersionSum() versionSum {
	return versionSum{buf: make([]byte, 0, versionChunk+1024), castagnoli: crc32.MakeTable(crc32.Castagnoli)}
}

// begin starts a record: it appends key to the buffer and returns the buffer, to which
// the caller appends the record's value and passes it to [versionSum.end]. So the value
// is built where it is checksummed, and copied no more.
func (v *versionSum) begin(key []byte) []byte {
	v.buf = append(v.buf, key...)
	v.mark = len(v.buf)
	return v.buf
}

// end ends the record begun with key, whose value buf now ends with, and returns the
// value. It stays valid until [versionSum.next].
func (v *versionSum) end(buf []byte, key []byte) (val []byte) {
	val = buf[v.mark:]
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	v.buf = binary.AppendUvarint(buf, uint64(len(val)))
	return val
}

// next checksums the buffer once it is full.
func (v *versionSum) next() {
	if len(v.buf) >= versionChunk {
		v.flush()
	}
}

func (v *versionSum) flush() {
	v.c = crc32.Update(v.c, v.castagnoli, v.buf)
	v.i = crc32.Update(v.i, crc32.IEEETable, v.buf)
	v.buf = v.buf[:0]
}

// sum returns the checksum of the records added so far.
func (v *versionSum) sum() [8]byte {
	v.flush()
	var s [8]byte
	binary.BigEndian.PutUint32(s[:4], v.c)
	binary.BigEndian.PutUint32(s[4:], v.i)
	return s
}

// versionString returns the rules version for a checksum.
func versionString(sum [8]byte) string {
	return fmt.Sprintf("%x", sum[:])[:versionLen]
}
