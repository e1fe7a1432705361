package header

// A reader that reads a header line with fgets and measures it with strlen (mutt) takes a
// line with a NUL for one that fgets cut short: it drops the rest of the line and glues
// the next line on at the NUL. "From: Mallory <x@evil>\0" LF "X-Note: ceo@ours" LF is a
// From of "Mallory <x@evil>X-Note: ceo@ours" to it; "Fr\0" LF "om: ceo@ours" is a From;
// and a NUL line before the empty line glues the empty line on, so the header goes on
// into what every other reader takes for the body.
//
// The joiner reads the header that way, beside the scanner, from the first line with a
// NUL until the field it began ends: it is fed each byte before the scanner is, reports
// the field if it is a sender field, and tells the scanner when an empty line was glued
// on (the header has not ended). Messages without a NUL in their header never start it.
type joiner struct {
	on     bool
	inName bool        // still reading the field's name, with m
	m      nameMatcher // the name so far
	canon  string      // in the value: the sender field it is, "" if none (only line ends matter)
	val    []byte      // the sender field's value, as the reader reads it
	cut    bool        // the current line has a NUL: its rest is dropped, the next line glued on
	glued  bool        // the current line is glued on at a NUL
	text   bool        // the current glued line has a byte other than CR
	peek   bool        // a line ended: the next byte says whether the field goes on
	blanks bool        // eating the blanks that begin a continuation line
}

// nulKind is what the first NUL of the scanner's current line was in.
type nulKind uint8

const (
	nulNone  nulKind = iota // no NUL in the line
	nulOther                // a line or field the joiner only follows
	nulName                 // a field name that may still become a sender field's (nulName)
	nulValue                // a held sender field's value (up to nulAt)
)

// startJoin starts the joiner at the end of a line whose first NUL was in k.
func (s *scanner) startJoin(k nulKind) {
	j := &s.join
	*j = joiner{on: true, glued: true, val: j.val[:0], m: s.nulName}
	switch k {
	case nulName:
		j.inName = true
	case nulValue:
		j.canon = s.canon
		j.val = append(j.val, s.val[:s.nulAt]...)
	}
	// The line's LF is read already: the next line is the glued one.
}

// joinByte feeds one byte to the joiner.
func (s *scanner) joinByte(b byte) error {
	j := &s.join
	if j.peek {
		j.peek = false
		if !isBlank(b) {
			return s.endJoin()
		}
		// A continuation line: the reader strips the line's trailing blanks, puts one
		// space in their place and skips the blanks the continuation begins with.
		if j.inName {
			j.feedName(' ', s.all)
		} else if j.canon != "" {
			for len(j.val) > 0 && isSpace(j.val[len(j.val)-1]) {
				j.val = j.val[:len(j.val)-1]
			}
			j.val = append(j.val, ' ')
		}
		j.blanks = true
		return nil
	}
	if j.blanks {
		if isBlank(b) {
			return nil
		}
		j.blanks = false
	}
	if b == '\n' {
		if j.cut {
			j.cut, j.glued, j.text = false, true, false
			return nil
		}
		if j.glued && !j.text {
			s.gluedEmpty = true // an empty line (LF or CRLF) glued on: no end of the header
		}
		j.glued, j.peek = false, true
		return nil
	}
	if j.cut {
		return nil
	}
	if b == 0 {
		j.cut = true
		return nil
	}
	if b != '\r' {
		j.text = true
	}
	switch {
	case j.inName:
		j.feedName(b, s.all)
	case j.canon != "":
		if len(j.val) >= s.max {
			return ErrFieldTooLong
		}
		j.val = append(j.val, b)
	}
	return nil
}

// feedName feeds a byte of the name; at its colon the value begins.
func (j *joiner) feedName(b byte, all bool) {
	switch j.m.feed(b) {
	case nameColon:
		j.inName = false
		if canon, ok := j.m.name(all, false); ok {
			j.canon = canon
		}
	case nameNot:
		j.inName = false
	}
}

// endJoin reports the joined field if it is a sender field, and stops the joiner.
func (s *scanner) endJoin() error {
	j := &s.join
	j.on = false
	if j.canon == "" {
		return nil
	}
	return fieldReadings(j.canon, true, false, j.val, s.all, &s.unfolded, s.fn)
}

// isSpace is C's isspace in the C locale.
func isSpace(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') }
