package rules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/cdb"
)

// The compiled form. A rules CDB holds one record per entry, keyed by the entry's
// canonical pattern ([Rule.Key]); several entries may share a key and keep their file
// order. The value of an entry record, format version 1, is:
//
//	byte    version (1)
//	byte    flags: bit 0 set for an exception; other bits zero
//	uvarint line number
//	uvarint length, then the entry as written
//	uvarint count of rcpt= patterns, then each as uvarint length and bytes
//	uvarint count of client= values, then each as uvarint length and bytes
//	uvarint length, then the reason
//
// (uvarint is encoding/binary's unsigned varint.) The meta record, under the key
// "\x00bfs", which no entry key can equal, comes last. Its format 2 is:
//
//	byte    2
//	8 bytes the rules version: CRC-32C then CRC-32 (IEEE), big-endian, of the records
//	uvarint length, then the source file name as given to [Compile]; [Rule.File] comes from it
//	uvarint count of the files a :rcpthosts line read, then for each
//	        uvarint length and its absolute path, uvarint length and its stamp
//	        ("INODE:SIZE:MTIME-NS", or "-" for a file that did not exist)
//
// Format 1, written by earlier versions, is the byte 1 followed by the file name; such a
// CDB is read as it is, and its rules version is unknown (""). A file without a meta
// record of a known format is refused as corrupt.
const (
	formatVersion = 1 // of an entry record's value
	flagExcept    = 1
	metaV1        = 1
	metaV2        = 2
)

// metaKey is the key of the meta record.
const metaKey = "\x00bfs"

// appendValue appends the encoded value of r to b.
func appendValue(b []byte, r *Rule) []byte {
	var flags byte
	if r.Except {
		flags |= flagExcept
	}
	b = append(b, formatVersion, flags)
	b = binary.AppendUvarint(b, uint64(r.Line))
	b = appendString(b, r.Entry)
	b = binary.AppendUvarint(b, uint64(len(r.Rcpts)))
	for _, p := range r.Rcpts {
		b = appendString(b, p)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Clients)))
	for _, c := range r.Clients {
		b = appendString(b, c)
	}
	return appendString(b, r.Reason)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// meta is what the meta record says.
type meta struct {
	file    string
	version string // "" for format 1
	deps    []dep
}

// appendMeta appends the meta record's value (format 2) for the source file name file,
// the version sum and the files a :rcpthosts line read.
func appendMeta(b []byte, file string, sum [8]byte, deps []dep) []byte {
	b = append(b, metaV2)
	b = append(b, sum[:]...)
	b = appendString(b, file)
	b = binary.AppendUvarint(b, uint64(len(deps)))
	for _, d := range deps {
		b = appendString(b, d.path)
		b = appendString(b, d.stamp)
	}
	return b
}

// parseMeta reads a meta record's value.
func parseMeta(v []byte) (meta, error) {
	bad := fmt.Errorf("rules: unknown compiled format: %w", cdb.ErrCorrupt)
	switch {
	case len(v) >= 1 && v[0] == metaV1:
		return meta{file: string(v[1:])}, nil
	case len(v) < 9 || v[0] != metaV2:
		return meta{}, bad
	}
	var sum [8]byte
	copy(sum[:], v[1:9])
	d := decoder{b: v[9:]}
	m := meta{version: versionString(sum), file: string(d.bytes())}
	for n := d.count(); n > 0; n-- {
		m.deps = append(m.deps, dep{path: string(d.bytes()), stamp: string(d.bytes())})
	}
	if d.bad || len(d.b) != 0 {
		return meta{}, bad
	}
	return m, nil
}

// decoder reads an encoded value. Reads past a malformed field return zero values and
// set bad, so a caller checks once at the end.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// count reads a list length; each element takes at least one byte.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return 0
	}
	return int(n)
}

// header checks the version and flags and returns whether the value is an exception.
func (d *decoder) header() (except bool) {
	if len(d.b) < 2 || d.b[0] != formatVersion || d.b[1]&^flagExcept != 0 {
		d.bad, d.b = true, nil
		return false
	}
	except = d.b[1]&flagExcept != 0
	d.b = d.b[2:]
	return except
}

func corruptValue(key []byte) error {
	return fmt.Errorf("rules: malformed value for key %q: %w", key, cdb.ErrCorrupt)
}

// decodeRule decodes the value v stored under key.
func decodeRule(key, v []byte, file string) (*Rule, error) {
	d := decoder{b: v}
	r := &Rule{File: file, Key: string(key)}
	r.Except = d.header()
	line := d.uvarint()
	r.Entry = string(d.bytes())
	for n := d.count(); n > 0; n-- {
		r.Rcpts = append(r.Rcpts, string(d.bytes()))
	}
	for n := d.count(); n > 0; n-- {
		r.Clients = append(r.Clients, string(d.bytes()))
	}
	r.Reason = string(d.bytes())
	if d.bad || len(d.b) != 0 || line == 0 || line > 1<<31 {
		return nil, corruptValue(key)
	}
	r.Line = int(line)
	return r, nil
}

// inScope reports whether the exception encoded in v holds for sc, reading v in place.
func inScope(key, v []byte, sc Scope) (bool, error) {
	d := decoder{b: v}
	d.header()
	d.uvarint()
	d.bytes()
	ok := true
	if n := d.count(); n > 0 {
		// Every recipient must match one of the patterns. With no recipient the exception
		// does not hold: an empty recipient list never unblocks. With recipients not yet
		// known (Scope.RecipientsUnknown) it is taken to hold.
		pats := d.b
		for range n {
			d.bytes()
		}
		pats = pats[:len(pats)-len(d.b)]
		ok = len(sc.Recipients) > 0 || sc.RecipientsUnknown
		for _, rcpt := range sc.Recipients {
			if !ok {
				break
			}
			ok = false
			for p := (decoder{b: pats}); len(p.b) > 0 && !ok; {
				ok = patternMatches(p.bytes(), rcpt)
			}
		}
	}
	if n := d.count(); n > 0 {
		hit := false
		for range n {
			c := d.bytes()
			hit = hit || clientMatches(c, sc)
		}
		ok = ok && hit
	}
	d.bytes()
	if d.bad || len(d.b) != 0 {
		return false, corruptValue(key)
	}
	return ok, nil
}

// patternMatches reports whether the canonical pattern p is one of [Probes](addr).
func patternMatches(p []byte, addr string) bool {
	if len(p) == 0 {
		return false
	}
	if string(p) == addr {
		return true
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	switch p[0] {
	case '@':
		return at > 0 && string(p) == addr[at:]
	case '.':
		d := addr[at+1:]
		return len(d) > len(p) && d[0] != '[' && string(p) == d[len(d)-len(p):]
	}
	return false
}

// clientMatches reports whether the canonical client= value c covers the client.
func clientMatches(c []byte, sc Scope) bool {
	if len(c) == 0 {
		return false
	}
	switch {
	case strings.IndexByte(string(c), '/') >= 0:
		p, err := netip.ParsePrefix(string(c))
		return err == nil && sc.ClientIP.IsValid() && p.Contains(sc.ClientIP.Unmap().WithZone(""))
	case c[0] >= '0' && c[0] <= '9' && strings.Trim(string(c), "0123456789.") == "",
		strings.IndexByte(string(c), ':') >= 0:
		ip, err := netip.ParseAddr(string(c))
		return err == nil && sc.ClientIP.IsValid() && ip == sc.ClientIP.Unmap().WithZone("")
	}
	if sc.ClientHost == "" {
		return false
	}
	h := sc.ClientHost
	if !isCanonicalHost(h) {
		h = address.CanonicalDomain(h)
	}
	if c[0] == '.' {
		return len(h) > len(c) && string(c) == h[len(h)-len(c):]
	}
	return string(c) == h
}

// isCanonicalHost reports whether h is already lower-case ASCII without a trailing dot.
func isCanonicalHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return !strings.HasSuffix(h, ".")
}
