// Package header finds the sender fields in the header section of a message while copying
// every byte of it through unchanged.
//
// [Scan] is the front of the qmail filter: it reads the message once, writes each buffer
// as it was read, and holds nothing but the sender field it is reading. [IsSenderField],
// [Unfold] and [ScanField] give the milter, which receives the header one field at a
// time, the same readings.
//
// # Readings
//
// The scanner over-approximates: it reports every field that some mail reader could take
// as a sender field, because a field it misses is a bypass.
//
//   - Field names are case-insensitive, may have blanks before the colon ("From \t:"),
//     may be folded before the colon ("From" CRLF HT ":x"), and NUL or other control bytes
//     inside them are ignored, as readers that drop those bytes do ("Fr\x00om:").
//   - Values are unfolded as RFC 5322 section 2.2.3 says: a line end directly before a
//     space or tab is removed and the blank kept. Lines holding only blanks continue the
//     field. Every repeated field is reported.
//   - Line ends are LF, CRLF, bare CR and mixtures. The header section ends only at the
//     first truly empty line: LF LF, LF CRLF, CRLF CRLF, or an empty first line.
//   - A bare CR (one not followed by LF) also starts a new line for finding field names,
//     as many readers split there: "Received: x\rFrom: a@b\n" reports a From field "a@b".
//     The value of a field begun that way runs on to the end of the field that holds it
//     (bare CRs kept in it), which covers readers that split at the CR and readers that
//     do not.
//   - A line that is not a field (an mbox "From " line, ">From ", garbage) does not end
//     the scan, and is not itself a field: "From x@y date" has no colon after the name.
//   - An indented line with no field to continue (the first line, or one after a line
//     that is not a field) is read as a field after its blanks, as readers that trim it do.
//     An indented line after a real field is a continuation of that field, even when it
//     reads "From: ...": see [Scan].
package header

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// DefaultMaxField is the cap on one held sender field when [Options.MaxField] is zero.
const DefaultMaxField = 1 << 20

// bufSize is the size of the one read buffer: reads and writes are this large at most.
const bufSize = 64 << 10

// Options controls [Scan].
type Options struct {
	// MaxField caps the unfolded value of one held sender field, in bytes. A sender
	// field with a longer value makes Scan fail with ErrFieldTooLong. Zero or less
	// means DefaultMaxField (1 MiB). Other fields are never held and have no limit.
	MaxField int
	// AllSenderFields reports Sender and Resent-From fields as well as From.
	AllSenderFields bool
}

// Field is one sender field found by [Scan] or [ScanField].
type Field struct {
	Name  string // "From", "Sender" or "Resent-From" (canonical spelling)
	Value []byte // unfolded value, blanks trimmed at both ends; only valid during the callback
}

// ErrFieldTooLong is returned by [Scan] when a sender field is longer than
// [Options.MaxField]. The message cannot be checked: the caller fails temporarily, it
// never skips the field.
var ErrFieldTooLong = errors.New("header: sender field too long")

// IOError is a failure to read the message (Op "read") or to write it (Op "write"). The
// two differ for qmail: they map to different exit codes.
type IOError struct {
	Op  string // "read" or "write"
	Err error
}

func (e *IOError) Error() string { return "header: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *IOError) Unwrap() error { return e.Err }

// maxEmptyReads is how many reads returning no bytes and no error Scan accepts in a row
// before it gives up with io.ErrNoProgress (as bufio does).
const maxEmptyReads = 100

var pool = sync.Pool{New: func() any { return new(scanner) }}

// maxKeptValue is the largest value buffer kept in the pool between calls; minValue is
// the size of a new one. Beyond that a value buffer grows by doubling, up to MaxField.
const (
	maxKeptValue = 256 << 10
	minValue     = 4 << 10
)

// Scan reads the header section of a message from r and writes every byte it reads to w,
// unchanged and in order. It calls fn for every field that some mail reader could take as
// a sender field (see the package documentation for the readings it covers). It returns at
// the end of the header section (the first truly empty line) or at EOF, having written
// everything it read, body bytes read ahead included, so the caller copies the rest with
// io.Copy(w, r) (zero-copy). n is the number of bytes written.
//
// Each buffer read is written whole before it is scanned; only the sender field being
// read is held, up to MaxField. An error from r is returned as an *[IOError] with Op
// "read", one from w with Op "write"; io.EOF is a normal end at any point. A sender field
// over MaxField returns [ErrFieldTooLong]. An error returned by fn stops the scan and is
// returned as it is.
//
// An indented line that follows a real field continues that field, even when its text
// reads "From: ...": a folded Subject such as "Subject: Fwd: invoice" LF " From: Ann
// <ann@ours>" is legitimate and common enough, and every reader that honours folding (all
// mail clients) shows it as part of the Subject. Only an indented line with no field to
// continue is read as a field of its own.
func Scan(r io.Reader, w io.Writer, opt Options, fn func(Field) error) (n int64, err error) {
	s := pool.Get().(*scanner)
	s.reset(opt, fn)
	defer func() {
		s.fn = nil
		if cap(s.val) > maxKeptValue {
			s.val = nil
		}
		pool.Put(s)
	}()
	buf := s.buf[:]
	empty := 0
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			empty = 0
			wn, werr := w.Write(buf[:m])
			n += int64(wn)
			if werr == nil && wn < m {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, &IOError{Op: "write", Err: werr}
			}
			if err := s.scan(buf[:m]); err != nil {
				return n, err
			}
			if s.done {
				return n, nil
			}
		}
		switch {
		case rerr == io.EOF:
			return n, s.eof()
		case rerr != nil:
			return n, &IOError{Op: "read", Err: rerr}
		case m == 0:
			empty++
			if empty >= maxEmptyReads {
				return n, &IOError{Op: "read", Err: io.ErrNoProgress}
			}
		}
	}
}

// state is where the scanner is in the current line.
type state uint8

const (
	sLineStart state = iota // at the start of an LF-terminated line
	sName                   // reading a field name
	sAfterName              // after the name: blanks, folds, then the colon
	sSkip                   // skipping the rest of a line that is not held
	sValue                  // holding the value of a sender field
	sIndent                 // blanks of an indented line with no field to continue
)

// kind is what the line before the current one was, for deciding what an indented
// line continues.
type kind uint8

const (
	kNone   kind = iota // nothing to continue: start, or a line that is not a field
	kOther              // a field that is not held
	kSender             // the held sender field
	kName               // a name with no colon yet: an indented line may bring it
)

type scanner struct {
	buf [bufSize]byte
	val []byte // value of the held sender field, unfolded

	max int
	all bool
	fn  func(Field) error

	st    state
	cur   kind   // at sLineStart: what an indented line would continue
	skip  kind   // in sSkip: what the skipped line is
	cr    bool   // the last byte was a CR whose successor is not seen yet
	done  bool   // the header section has ended
	canon string // name of the held field
	name  nameMatcher
	// crLine: the name being read started after a bare CR, inside a line whose own
	// kind (field or not, for what an indented line continues) is lineKind.
	crLine   bool
	lineKind kind
}

func (s *scanner) reset(opt Options, fn func(Field) error) {
	s.max = opt.MaxField
	if s.max <= 0 {
		s.max = DefaultMaxField
	}
	s.all = opt.AllSenderFields
	s.fn = fn
	s.st, s.cur, s.skip, s.cr, s.done, s.canon = sLineStart, kNone, kNone, false, false, ""
	s.crLine, s.lineKind = false, kNone
	s.val = s.val[:0]
	s.name.reset()
}

// scan processes one buffer of the stream. It stops early, setting done, at the end of
// the header section.
func (s *scanner) scan(p []byte) error {
	lf := -1 // index of the next LF at or after i, len(p) if none; -1: not searched yet
	for i := 0; i < len(p); {
		b := p[i]
		if s.cr {
			s.cr = false
			if b == '\n' {
				i++
				if err := s.lineEnd(); err != nil || s.done {
					return err
				}
				continue
			}
			if err := s.bareCR(b == ' ' || b == '\t'); err != nil {
				return err
			}
			// b is processed below, in the state bareCR left.
		}
		switch b {
		case '\r':
			s.cr = true
			i++
			continue
		case '\n':
			i++
			if err := s.lineEnd(); err != nil || s.done {
				return err
			}
			continue
		}
		// Fast paths: bulk-skip or bulk-copy up to the next CR or LF.
		if s.st == sSkip || s.st == sValue {
			if lf < i {
				lf = indexFrom(p, i, '\n')
			}
			j := lf
			if k := indexFrom(p[:lf], i, '\r'); k < lf {
				j = k
			}
			if s.st == sValue {
				if err := s.appendValue(p[i:j]); err != nil {
					return err
				}
			}
			i = j
			continue
		}
		if err := s.byte(b); err != nil {
			return err
		}
		i++
	}
	return nil
}

// indexFrom returns the index of the first c in p at or after i, or len(p).
func indexFrom(p []byte, i int, c byte) int {
	if k := bytes.IndexByte(p[i:], c); k >= 0 {
		return i + k
	}
	return len(p)
}

// byte processes one byte other than CR and LF in the states without a fast path.
func (s *scanner) byte(b byte) error {
	switch s.st {
	case sLineStart:
		if b == ' ' || b == '\t' {
			switch s.cur {
			case kSender:
				s.st = sValue
				return s.appendValue([]byte{b})
			case kOther:
				s.st, s.skip = sSkip, kOther
			case kName:
				s.st = sName
				if !s.name.indent() {
					s.st = sAfterName
				}
			default:
				s.st = sIndent
			}
			return nil
		}
		if err := s.finish(); err != nil {
			return err
		}
		s.startName(false)
		return s.byte(b)
	case sIndent:
		if b == ' ' || b == '\t' {
			return nil
		}
		s.startName(false)
		return s.byte(b)
	case sName:
		switch {
		case b == ':':
			return s.colon()
		case b == ' ' || b == '\t':
			if !s.name.indent() {
				s.st = sAfterName
			}
		default:
			s.name.add(b)
		}
		return nil
	case sAfterName:
		switch {
		case b == ':':
			return s.colon()
		case b == ' ' || b == '\t' || ignorable(b):
		default:
			s.skipLine(kNone)
		}
		return nil
	case sValue:
		return s.appendValue([]byte{b})
	}
	return nil // sSkip
}

// startName starts reading a field name, at the start of a line or, when cr is true,
// after a bare CR inside one.
func (s *scanner) startName(cr bool) {
	s.st, s.crLine = sName, cr
	s.name.reset()
}

// skipLine skips the rest of a line that is not held; k says whether it is a field
// (kOther) or not (kNone). A name that started after a bare CR does not change what
// the line is: only a sender field found there matters (and is held), so that an
// indented line continues the line as ScanField sees it.
func (s *scanner) skipLine(k kind) {
	if s.crLine {
		k = s.lineKind
	}
	s.st, s.skip, s.lineKind = sSkip, k, k
}

// colon ends the name: a sender field is held, anything else is skipped.
func (s *scanner) colon() error {
	if canon, ok := s.name.sender(s.all); ok {
		s.st, s.canon = sValue, canon
		s.val = s.val[:0]
		return nil
	}
	if s.name.field() {
		s.skipLine(kOther)
	} else {
		s.skipLine(kNone)
	}
	return nil
}

// lineEnd handles LF or CRLF.
func (s *scanner) lineEnd() error {
	switch s.st {
	case sLineStart:
		// A truly empty line: the header section ends here.
		s.done = true
		return s.finish()
	case sName, sAfterName:
		s.cur = kName
	case sSkip:
		s.cur = s.skip
	case sValue:
		s.cur = kSender
	case sIndent:
		s.cur = kNone
	}
	s.st = sLineStart
	return nil
}

// bareCR handles a CR not followed by LF; fold says whether a blank follows it. A bare
// CR before a blank is a fold. Before anything else it starts a new line for finding
// field names, except in a held value, which keeps it and is searched again when it ends
// (see nested).
func (s *scanner) bareCR(fold bool) error {
	switch s.st {
	case sLineStart:
		if err := s.finish(); err != nil {
			return err
		}
		s.lineKind = kNone // a line starting with CR is not a field
		if fold {
			s.st = sIndent
		} else {
			s.startName(true)
		}
	case sValue:
		if !fold {
			return s.appendValue([]byte{'\r'})
		}
	case sName:
		if fold {
			if !s.name.indent() {
				s.st = sAfterName
			}
		} else {
			s.startName(true)
		}
	default:
		if !fold {
			s.startName(true)
		}
	}
	return nil
}

// appendValue adds unfolded value bytes to the held field, dropping leading blanks.
func (s *scanner) appendValue(p []byte) error {
	if len(s.val) == 0 {
		for len(p) > 0 && (p[0] == ' ' || p[0] == '\t') {
			p = p[1:]
		}
	}
	need := len(s.val) + len(p)
	if need > s.max {
		return ErrFieldTooLong
	}
	if need > cap(s.val) {
		v := make([]byte, len(s.val), min(max(need, 2*cap(s.val), minValue), s.max))
		copy(v, s.val)
		s.val = v
	}
	s.val = append(s.val, p...)
	return nil
}

// finish reports the held field, if the line before was one.
func (s *scanner) finish() error {
	if s.cur != kSender {
		return nil
	}
	s.cur = kNone
	return s.report()
}

func (s *scanner) report() error {
	if err := s.fn(Field{Name: s.canon, Value: trim(s.val)}); err != nil {
		return err
	}
	return nested(s.val, s.all, s.fn)
}

// eof ends the scan at the end of the input.
func (s *scanner) eof() error {
	if s.cr {
		s.cr = false
		if err := s.bareCR(false); err != nil {
			return err
		}
	}
	if s.st == sValue {
		return s.report()
	}
	if s.st == sLineStart {
		return s.finish()
	}
	return nil
}

// trim removes blanks from both ends of a value, and line ends from its end.
func trim(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
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
