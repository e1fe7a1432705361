package header

import (
	"bytes"
	"errors"
)

// Reading is one sender field as some mail reader could see it.
type Reading struct {
	Name  string // "From", "Sender" or "Resent-From" (canonical spelling)
	Value []byte // unfolded value, blanks trimmed at both ends; only valid during the callback
}

// Readings calls fn for every sender field a mail reader could take one header field
// for, given its name (without the colon) and its value as delimited (after the colon,
// folds included): the one reading of a field, shared by the stream scanner ([Scan]) and
// the milter, which receives the header a field at a time. "From", "Sender" and
// "Resent-From" are sender fields (the last two only when all is true). fn's first error
// is returned.
//
// Two line-end conventions are read, each applied consistently:
//
//   - A reader that ends lines at LF (CRLF included) alone sees a bare CR as an ordinary
//     byte: the field is its whole value, unfolded (a line end before a blank removed).
//   - A reader that also ends lines at a bare CR sees the value cut at the first one that
//     is not a fold, and a new field on each line after it: "Received: x\rFrom: y" holds
//     a From field "y". An empty line ends that reader's header: nothing after it counts.
//
// The name is read as [nameMatcher] says, by both kinds of reader: with ignorable bytes
// (NUL, CR, LF and other controls) dropped, or, split at the last CR or LF, its last line.
//
// opt.AllSenderFields says whether Sender and Resent-From count; a field longer than
// opt.MaxField that holds a sender field is [ErrFieldTooLong], as in the stream.
func Readings(name, value []byte, opt Options, fn func(Reading) error) error {
	canon, cOnly, ok := senderName(name, opt.AllSenderFields)
	var scratch []byte
	if max := opt.MaxField; len(value) > max && max > 0 || max <= 0 && len(value) > DefaultMaxField {
		found := false
		fieldReadings(canon, ok, cOnly, value, opt.AllSenderFields, &scratch, func(Reading) error { found = true; return errFound })
		if found {
			return ErrFieldTooLong
		}
		return nil
	}
	return fieldReadings(canon, ok, cOnly, value, opt.AllSenderFields, &scratch, fn)
}

var errFound = errors.New("found")

// fieldReadings reports the readings of one field whose name has been read: canon is its
// sender name when sender is true; cOnly says that the field exists only for readers that
// end lines at a bare CR, so its value is read only that way. Sender fields nested after
// a bare CR in value are reported whatever the field is. scratch holds the unfolded value
// (it is reused from call to call).
func fieldReadings(canon string, sender, cOnly bool, value []byte, all bool, scratch *[]byte, fn func(Reading) error) error {
	v := value
	if indexLineEnd(value) >= 0 {
		*scratch = unfold((*scratch)[:0], value)
		v = *scratch
	}
	// After unfolding, every CR or LF left is a line end of the CR convention.
	end := indexLineEnd(v)
	if sender {
		if !cOnly || end < 0 {
			if err := fn(Reading{Name: canon, Value: trim(v)}); err != nil {
				return err
			}
		}
		if cut := trim(v[:max(end, 0)]); end >= 0 && (cOnly || len(cut) != len(trim(v))) {
			if err := fn(Reading{Name: canon, Value: cut}); err != nil {
				return err
			}
		}
	}
	if end < 0 {
		return nil
	}
	return nested(v[end:], all, fn)
}

// nested reports the sender fields on the lines of rest, an unfolded value from its first
// remaining line end on, as a reader that ends lines at a bare CR sees them. Each line is
// one field (its continuation lines were unfolded already); an empty line ends the header
// for that reader, and so the search.
func nested(rest []byte, all bool, fn func(Reading) error) error {
	for len(rest) > 0 {
		// rest starts with a line end: CRLF, CR or LF.
		n := 1
		if rest[0] == '\r' && len(rest) > 1 && rest[1] == '\n' {
			n = 2
		}
		rest = rest[n:]
		line := rest
		if i := indexLineEnd(rest); i >= 0 {
			line, rest = rest[:i], rest[i:]
		} else {
			rest = nil
		}
		if len(line) == 0 {
			return nil
		}
		m := nameMatcher{strict: true}
		for i, c := range line {
			if m.feed(c) == nameColon {
				if canon, ok := m.name(all, false); ok {
					if err := fn(Reading{Name: canon, Value: trim(line[i+1:])}); err != nil {
						return err
					}
				}
				break
			}
			if m.st == nameNot {
				break
			}
		}
	}
	return nil
}

// unfold appends value to dst with every fold removed, as RFC 5322 section 2.2.3 says: a
// line end (CRLF, LF or a bare CR) directly followed by a space or tab is removed and the
// blank kept. Other line ends and all other bytes, NUL and controls included, are kept.
func unfold(dst, value []byte) []byte {
	for len(value) > 0 {
		i := indexLineEnd(value)
		if i < 0 {
			return append(dst, value...)
		}
		dst = append(dst, value[:i]...)
		end := 1
		if value[i] == '\r' && i+1 < len(value) && value[i+1] == '\n' {
			end = 2
		}
		if i+end < len(value) && isBlank(value[i+end]) {
			value = value[i+end:]
			continue
		}
		dst = append(dst, value[i:i+end]...)
		value = value[i+end:]
	}
	return dst
}

// trim removes blanks from both ends of a value, and line ends from its end.
func trim(v []byte) []byte {
	for len(v) > 0 && isBlank(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 {
		switch v[len(v)-1] {
		case ' ', '\t', '\r', '\n':
			v = v[:len(v)-1]
			continue
		}
		break
	}
	return v
}

// indexLineEnd returns the index of the first CR or LF in b, or -1: two vectorised
// searches, where bytes.IndexAny looks at one byte at a time.
func indexLineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(b) {
		return -1
	}
	return i
}
