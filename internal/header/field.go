package header

import "bytes"

// Canonical spellings of the sender field names.
const (
	nameFrom       = "From"
	nameSender     = "Sender"
	nameResentFrom = "Resent-From"
)

// ignorable reports whether b is a control byte that readers may drop inside a field
// name: every C0 control except HT, LF and CR, and DEL.
func ignorable(b byte) bool {
	return (b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f
}

// nameMatcher matches a field name, one byte at a time, against the sender field names.
type nameMatcher struct {
	b      [len(nameResentFrom)]byte // the name so far, lower-cased, control bytes dropped
	n      int
	long   bool // longer than any sender field name
	any    bool // at least one byte other than a dropped control
	ctl    bool // at least one dropped control
	strict bool // only RFC 5322 ftext so far (printable ASCII; the caller excludes ':')
}

func (m *nameMatcher) reset() { *m = nameMatcher{strict: true} }

func (m *nameMatcher) add(c byte) {
	if ignorable(c) {
		m.strict, m.ctl = false, true
		return
	}
	m.any = true
	if c < '!' || c > '~' {
		m.strict = false
	}
	if m.n == len(m.b) {
		m.long = true
		return
	}
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	m.b[m.n] = c
	m.n++
}

// indent reports whether a blank now is indentation: only dropped control bytes came
// before it ("\x01 From:" is " From:" to a reader that drops them).
func (m *nameMatcher) indent() bool { return m.ctl && !m.any }

// sender returns the canonical name if the name read is a sender field name.
func (m *nameMatcher) sender(all bool) (string, bool) {
	if m.long {
		return "", false
	}
	switch string(m.b[:m.n]) {
	case "from":
		return nameFrom, true
	case "sender":
		return nameSender, all
	case "resent-from":
		return nameResentFrom, all
	}
	return "", false
}

// field reports whether the name read is a proper RFC 5322 field name (section 3.6.8),
// so that the line is a field another line may continue.
func (m *nameMatcher) field() bool { return m.any && m.strict }

// IsSenderField reports whether name is the name of a sender field, with its canonical
// spelling: "From" always, "Sender" and "Resent-From" only when all is true. The match
// is the one [Scan] uses: case-insensitive, blanks (and line ends) around the name
// allowed, NUL and other control bytes inside it ignored. name is the field name alone,
// without the colon, as a milter receives it.
func IsSenderField(name []byte, all bool) (canonical string, ok bool) {
	var m nameMatcher
	m.reset()
	after := false
	for _, c := range name {
		blank := c == ' ' || c == '\t' || c == '\r' || c == '\n'
		switch {
		case after:
			if !blank && !ignorable(c) {
				return "", false
			}
		case blank:
			after = m.any
		default:
			m.add(c)
		}
	}
	return m.sender(all)
}

// Unfold appends value to dst with every fold removed, as RFC 5322 section 2.2.3 says:
// a line end (CRLF, LF or a bare CR) directly followed by a space or tab is removed and
// the blank kept. Other line ends and all other bytes, NUL and controls included, are
// kept. It does not trim the value.
func Unfold(dst, value []byte) []byte {
	for len(value) > 0 {
		i := bytes.IndexAny(value, "\r\n")
		if i < 0 {
			return append(dst, value...)
		}
		dst = append(dst, value[:i]...)
		end := 1
		if value[i] == '\r' && i+1 < len(value) && value[i+1] == '\n' {
			end = 2
		}
		if i+end < len(value) && (value[i+end] == ' ' || value[i+end] == '\t') {
			value = value[i+end:]
			continue
		}
		dst = append(dst, value[i:i+end]...)
		value = value[i+end:]
	}
	return dst
}

// ScanField calls fn for every sender field one header field holds, with the readings
// of [Scan]: the field itself when name is a sender field name (see [IsSenderField]), and
// every sender field that starts after a bare CR inside its value ("Received: x\rFrom: y").
// value is the raw value after the colon, folded or not. It is the milter's equivalent of
// Scan, which gets the header a field at a time. It returns the first error from fn.
func ScanField(name, value []byte, all bool, fn func(Field) error) error {
	v := value
	if bytes.IndexAny(value, "\r\n") >= 0 {
		v = Unfold(nil, value)
	}
	if canon, ok := IsSenderField(name, all); ok {
		if err := fn(Field{Name: canon, Value: trim(v)}); err != nil {
			return err
		}
	}
	return nested(v, all, fn)
}

// nested calls fn for every sender field that starts after a bare CR in the unfolded
// value v: a reader that splits lines at a bare CR sees a new field there. Its value runs
// to the end of v. The name grammar is the scanner's: control bytes in the name ignored,
// blanks (a fold, once unfolded) before the colon allowed.
func nested(v []byte, all bool, fn func(Field) error) error {
	for {
		i := bytes.IndexByte(v, '\r')
		if i < 0 {
			return nil
		}
		v = v[i+1:]
		if canon, rest, ok := senderPrefix(v, all); ok {
			if err := fn(Field{Name: canon, Value: trim(rest)}); err != nil {
				return err
			}
		}
	}
}

// senderPrefix reports whether p starts with a sender field name and its colon, and
// returns what follows the colon.
func senderPrefix(p []byte, all bool) (canon string, rest []byte, ok bool) {
	var m nameMatcher
	m.reset()
	after := false
	for j, c := range p {
		switch {
		case c == ':':
			canon, ok = m.sender(all)
			return canon, p[j+1:], ok
		case c == '\r' || c == '\n':
			return "", nil, false
		case c == ' ' || c == '\t':
			after = !m.indent()
		case after:
			if !ignorable(c) {
				return "", nil, false
			}
		default:
			m.add(c)
		}
	}
	return "", nil, false
}
