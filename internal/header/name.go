package header

// Canonical spellings of the field names the package reports.
const (
	nameFrom        = "From"
	nameSender      = "Sender"
	nameResentFrom  = "Resent-From"
	nameMessageID   = "Message-ID"
	nameContentType = "Content-Type"
)

// ignorable reports whether b is a byte that some reader drops inside a field name: every
// C0 control except HT (a blank), and DEL. CR and LF count too: a reader that drops them
// reads "Fr\rom:" as "From:" (a reader that splits lines there is covered separately, by
// starting a name after the CR).
func ignorable(b byte) bool {
	return (b < 0x20 && b != '\t') || b == 0x7f
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' }

// nameState is where a [nameMatcher] is in a field name.
type nameState uint8

const (
	nameStart nameState = iota // only ignorable bytes (and blanks after them) so far
	nameChars                  // reading the name
	nameAfter                  // blanks after the name, before the colon
	nameColon                  // the colon: the name is complete
	nameNot                    // no field name: a byte that no name can hold at this point
)

// nameMatcher is the one reading of field names, fed a byte at a time by the stream
// scanner and by [Readings]. Names are compared case-insensitively; NUL and other
// ignorable bytes inside a name are dropped, as readers that drop them do ("Fr\x00om:");
// blanks may stand before the colon ("From \t:") and, once ignorable bytes started the
// line, before the name ("\x01 From:" is " From:" to such a reader); a blank inside the
// name ends it ("Fr om:" is no name). Folds are the caller's business: it feeds a fold's
// blank as a blank.
type nameMatcher struct {
	b      [len(nameContentType)]byte // the name so far, lower-cased, ignorable bytes dropped
	n      int
	long   bool // longer than any name reported
	strict bool // only RFC 5322 ftext so far (printable ASCII but ':')
	ctl    bool // an ignorable byte came before the name
	st     nameState
}

func (m *nameMatcher) reset() { *m = nameMatcher{strict: true} }

// feed reads one byte of the name and returns the state after it.
func (m *nameMatcher) feed(c byte) nameState {
	switch {
	case m.st == nameColon || m.st == nameNot:
	case c == ':':
		if m.st == nameStart {
			m.st = nameNot // an empty name
		} else {
			m.st = nameColon
		}
	case ignorable(c):
		m.strict, m.ctl = false, true
	case isBlank(c):
		// Blanks before the name (an indented line, or after ignorable bytes: "\x01 From:"
		// is " From:" to a reader that drops them) are trimmed, as readers do.
		if m.st == nameChars {
			m.st = nameAfter
		}
	case m.st == nameAfter:
		m.st = nameNot
	default:
		m.st = nameChars
		if c < '!' || c > '~' {
			m.strict = false
		}
		if m.n == len(m.b) {
			m.long = true
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		m.b[m.n] = c
		m.n++
	}
	return m.st
}

// feedPlain feeds the longest run at the start of p of the bytes most names are made of
// (ASCII letters, digits, '-'), as feed would one by one, and returns its length: the
// scanner's fast path through a name.
func (m *nameMatcher) feedPlain(p []byte) int {
	if m.st != nameStart && m.st != nameChars {
		return 0
	}
	k := 0
	for ; k < len(p); k++ {
		c := p[k]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			goto done
		}
		if m.n < len(m.b) {
			m.b[m.n] = c
			m.n++
		} else {
			m.long = true
		}
	}
done:
	if k > 0 {
		m.st = nameChars
	}
	return k
}

// name returns the canonical spelling of the name read, if it is one the package reports:
// a sender field ("From" always, "Sender" and "Resent-From" when all is true), or, when
// info is true, Message-ID or Content-Type.
func (m *nameMatcher) name(all, info bool) (string, bool) {
	if m.long || m.n == 0 {
		return "", false
	}
	switch string(m.b[:m.n]) {
	case "from":
		return nameFrom, true
	case "sender":
		return nameSender, all
	case "resent-from":
		return nameResentFrom, all
	case "message-id":
		return nameMessageID, info
	case "content-type":
		return nameContentType, info
	}
	return "", false
}

// field reports whether the name read is a proper RFC 5322 field name (section 3.6.8), so
// that the line is a field another line may continue.
func (m *nameMatcher) field() bool { return m.n > 0 && m.strict }

// matchName reads a whole field name as the milter receives it (no colon) or as it stands
// before a colon, with the rules of [nameMatcher].
func matchName(name []byte) *nameMatcher {
	var m nameMatcher
	m.reset()
	for _, c := range name {
		if m.feed(c) == nameNot {
			break
		}
	}
	return &m
}

// senderName returns the canonical name when name (without its colon) is a sender field
// name for some reader: with ignorable bytes dropped, or, for a reader that ends lines at
// a CR or LF, the part after the last one ("X\rFrom" holds a line "From").
func senderName(name []byte, all bool) (canon string, cOnly, ok bool) {
	if m := matchName(name); m.st != nameNot && m.st != nameColon {
		if canon, ok := m.name(all, false); ok {
			return canon, false, true
		}
	}
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '\r' || name[i] == '\n' {
			if m := matchName(name[i+1:]); m.st != nameNot && m.st != nameColon {
				if canon, ok := m.name(all, false); ok {
					return canon, true, true
				}
			}
			break
		}
	}
	return "", false, false
}
