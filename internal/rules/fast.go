package rules

import (
	"bytes"
	"encoding/binary"
)

// The fast path. Nearly every line of a real list is a plain ASCII entry with perhaps a
// reason: user@host, @host or .host, its local part made of atext, its host of letters,
// digits, hyphens and underscores, no quotes, no scopes. parseFast parses such a line in
// place, without building strings, and leaves every other line (and every line it is not
// sure of) to [parseLine], which stays the one definition of the syntax: for any line
// parseFast accepts, parseLine returns the same rule and no error (FuzzParseFast checks
// this).

// byte classes of the fast path.
const (
	clEntry = 1 << iota // may appear in a fast entry: atext, '.', '@'
	clText              // may appear in a fast reason: printable ASCII and tab
	clUpper             // 'A'..'Z'
	clBlank             // ' ' or '\t'
	clHost              // may appear in a fast host label: letters, digits, '-', '_'
	clPlain             // nothing to look at in a fast reason: clText but blanks, '=' and ':'
)

var fastClass = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] |= clText
		if c != ' ' && c != '=' && c != ':' {
			t[c] |= clPlain
		}
	}
	t['\t'] |= clText | clBlank
	t[' '] |= clBlank
	// atext but '*', '^' and '$', which may be a wildcard or an expression (notLiteral).
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyz0123456789!#%&'+-/=?_`{|}~.@") {
		t[c] |= clEntry
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= clEntry | clUpper
	}
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") {
		t[c] |= clHost
	}
	return t
}()

// fastRule is an entry parsed by parseFast. entry and reason are sub-slices of the line;
// key is held in a buffer reused from line to line. All are valid until the next line.
type fastRule struct {
	entry    []byte
	key      []byte
	reason   []byte // nil when there is none
	except   bool
	entryAt  int // offset of entry in the line
	reasonAt int // offset of reason in the line
}

// parseFast parses b, a line without its line end, into f when it is a plain entry line,
// and reports whether it did. Blank and comment lines, malformed lines and lines with
// anything unusual (non-ASCII, control characters, quotes, angle brackets, scopes, a
// reason starting with NAME=, an exception's reason with '=' or ':') are refused: the
// caller gives them to [parseLine].
func parseFast(b []byte, f *fastRule) bool {
	i := 0
	for i < len(b) && fastClass[b[i]]&clBlank != 0 {
		i++
	}
	if i == len(b) || b[i] == '#' {
		return false
	}
	start := i
	f.except = b[i] == '!'
	if f.except {
		i++
	}
	body := i
	for i < len(b) && fastClass[b[i]]&clEntry != 0 {
		i++
	}
	end := i
	if i == body || (i < len(b) && fastClass[b[i]]&clBlank == 0) {
		return false
	}
	f.entry, f.entryAt = b[start:end], start
	var ok bool
	if f.key, ok = appendFastKey(f.key[:0], b[body:end]); !ok {
		return false
	}
	for i < len(b) && fastClass[b[i]]&clBlank != 0 {
		i++
	}
	f.reason = nil
	if i == len(b) {
		return true
	}
	rest := b[i:]
	last, first := 0, true // first: in the reason's first word
	for j, c := range rest {
		cl := fastClass[c]
		if cl&clPlain != 0 {
			last = j
			continue
		}
		switch {
		case cl&clBlank != 0:
			first = false
		case cl&clText == 0:
			return false
		case c == '=' && (first || f.except), c == ':' && f.except:
			return false // a scope, or a word that looks like one (checkReason)
		default:
			last = j
		}
	}
	f.reason, f.reasonAt = rest[:last+1], i // rest[0] is not blank
	return true
}

// appendFastKey appends the canonical key of p, a pattern made of clEntry bytes, to key
// and reports whether p is a well-formed user@host, @host or .host. It lower-cases as
// [address.CanonicalDomain] and [address.Address.Canonical] do for ASCII.
func appendFastKey(key, p []byte) ([]byte, bool) {
	host := p[1:]
	switch p[0] {
	case '.', '@':
		key = append(key, p[0])
	default:
		at := bytes.LastIndexByte(p, '@')
		if at < 0 {
			return key, false
		}
		key = appendLower(key, p[:at]) // not empty: p[0] is not '@'
		key = append(key, '@')
		host = p[at+1:]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if len(host) == 0 || len(host) > 253 {
		return key, false
	}
	// Lower-case and check in one pass: labels of 1 to 63 letters, digits, '-', '_'.
	n := len(key)
	key = append(key, host...)
	dot := -1
	for j, c := range host {
		cl := fastClass[c]
		if cl&clHost != 0 {
			if cl&clUpper != 0 {
				key[n+j] = c + ('a' - 'A')
			}
			continue
		}
		if c != '.' || j == dot+1 || j-dot > 64 {
			return key, false
		}
		dot = j
	}
	if l := len(host) - dot - 1; l == 0 || l > 63 {
		return key, false
	}
	return key, true
}

// appendLower appends ASCII s lower-cased to b.
func appendLower(b, s []byte) []byte {
	n := len(b)
	b = append(b, s...)
	for i, c := range b[n:] {
		if fastClass[c]&clUpper != 0 {
			b[n+i] = c + ('a' - 'A')
		}
	}
	return b
}

// appendFastValue appends the encoded value of f found on line line to b: what
// [appendValue] gives for the same rule.
func appendFastValue(b []byte, f *fastRule, line int) []byte {
	var flags byte
	if f.except {
		flags |= flagExcept
	}
	b = append(b, formatVersion, flags)
	b = binary.AppendUvarint(b, uint64(line))
	b = binary.AppendUvarint(b, uint64(len(f.entry)))
	b = append(b, f.entry...)
	b = append(b, 0, 0) // no rcpt= patterns, no client= values
	b = binary.AppendUvarint(b, uint64(len(f.reason)))
	return append(b, f.reason...)
}
