// Package header reads the header section of a message the way mail readers could: it
// splits a byte stream into fields while copying every byte through unchanged ([Scan]),
// and gives the sender fields a reader could see in one field ([Readings]). The stream
// and the milter, which receives the header a field at a time, share Readings: Scan only
// decides where fields begin and end.
//
// # Readings
//
// The package over-approximates: it reports every field that some mail reader could take
// as a sender field, because a field it misses is a bypass.
//
//   - Field names are read by one grammar (see nameMatcher): case-insensitive, blanks
//     before the colon ("From \t:"), a fold before the colon ("From" CRLF HT ":x"), NUL,
//     CR and other control bytes inside the name dropped, as readers that drop them do
//     ("Fr\x00om:").
//   - Values are unfolded as RFC 5322 section 2.2.3 says: a line end directly before a
//     space or tab is removed and the blank kept. Lines holding only blanks continue the
//     field. Every repeated field is reported.
//   - The stream's line ends are LF, CRLF, and bare CR for the readers that end lines
//     there too. Each convention is applied consistently: for a reader that ends lines at
//     LF alone a bare CR is an ordinary byte; for one that also ends them at a bare CR, a
//     new field begins after it ("Received: x\rFrom: a@b\n" holds a From field "a@b"),
//     a value ends there, and an empty line (CR CR) ends its header.
//   - A line with a NUL is also read as mutt reads it (fgets, then strlen): cut at the
//     NUL, with the next line glued on there, so "From: x@evil" NUL LF "X: ceo@ours" is
//     a From of "x@evilX: ceo@ours" too (see joiner).
//   - The header section ends only at the first truly empty line: LF LF, LF CRLF, CRLF
//     CRLF, or an empty first line; for mutt, not at an empty line glued on at a NUL.
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

// MaxInfo is the most of a Message-ID or Content-Type value [Options.Info] is given; the
// rest is dropped.
const MaxInfo = 2048

// bufSize is the size of the one read buffer: reads and writes are this large at most.
const bufSize = 64 << 10

// Options controls [Scan].
type Options struct {
	// MaxField caps the value of one held sender field as it stands in the message, folds
	// included, in bytes. A sender field with a longer value makes Scan fail with
	// ErrFieldTooLong. Zero or less means DefaultMaxField (1 MiB). Other fields are
	// never held and have no limit.
	MaxField int
	// AllSenderFields reports Sender and Resent-From fields as well as From.
	AllSenderFields bool
	// Info, if set, is called at the end of each Message-ID and Content-Type field with
	// its unfolded value (at most MaxInfo bytes of it), for logging and for the charset a
	// message declares. The value is only valid during the call.
	Info func(name string, value []byte)
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
// unchanged and in order. It calls fn with every sender field [Readings] finds in it
// (see the package documentation for the readings it covers). It returns at the end of
// the header section (the first truly empty line) or at EOF, having written everything
// it read, body bytes read ahead included, so the caller copies the rest with
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
func Scan(r io.Reader, w io.Writer, opt Options, fn func(Reading) error) (n int64, err error) {
	s := pool.Get().(*scanner)
	s.reset(opt, fn)
	defer func() {
		s.fn, s.info = nil, nil
		if cap(s.val) > maxKeptValue {
			s.val = nil
		}
		if cap(s.unfolded) > maxKeptValue {
			s.unfolded = nil
		}
		if cap(s.join.val) > maxKeptValue {
			s.join.val = nil
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

// state is where the scanner is in the current line (a line ends at LF or CRLF).
type state uint8

const (
	sLineStart state = iota // at the start of a line
	sIndent                 // blanks of an indented line with no field to continue
	sName                   // reading a field name
	sSkip                   // skipping the rest of a line that is not held
	sValue                  // holding the value of a sender field
	sInfo                   // holding the value of a Message-ID or Content-Type field
)

// kind is what the line before the current one was, for deciding what an indented
// line continues.
type kind uint8

const (
	kNone   kind = iota // nothing to continue: start, or a line that is not a field
	kOther              // a field that is not held
	kSender             // the held sender field
	kInfo               // the held Message-ID or Content-Type field
	kName               // a name with no colon yet: an indented line may bring it
)

type scanner struct {
	buf      [bufSize]byte
	val      []byte // the held field's value as it stands: folds and bare CRs kept
	unfolded []byte // scratch for Readings
	info     []byte // the held info field's value, as val, at most MaxInfo bytes

	max    int
	all    bool
	fn     func(Reading) error
	infoFn func(string, []byte)

	st    state
	cur   kind // at sLineStart: what an indented line would continue
	skip  kind // in sSkip: what the skipped line is
	cr    bool // the last byte was a CR whose successor is not seen yet
	crlf  bool // the held field's last line ended in CRLF (else LF): its fold, if one follows
	done  bool // the header section has ended
	canon string
	cOnly bool // the held field begins after a bare CR: it exists only for CR readers

	// name reads the name of the current line; crName, when crOn, the name of a field
	// that begins after the latest bare CR in it (for readers that end lines there).
	name   nameMatcher
	crName nameMatcher
	crOn   bool
	// cEmpty: no byte since the last line end of either convention; crOff: a reader that
	// ends lines at a bare CR has seen an empty line, so its header has ended.
	cEmpty bool
	crOff  bool
	crPend bool // an empty line for them ended at the last LF, if the next byte is no blank

	// join reads the header as mutt does from a line with a NUL on (see joiner); lineNul
	// is what the current line's first NUL was in, nulAt where it is in val (nulValue),
	// nulName the name read up to it (nulName); gluedEmpty: the empty line just read was
	// glued on to a line with a NUL, so for mutt the header goes on.
	join       joiner
	lineNul    nulKind
	nulAt      int
	nulName    nameMatcher
	gluedEmpty bool
}

func (s *scanner) reset(opt Options, fn func(Reading) error) {
	s.max = opt.MaxField
	if s.max <= 0 {
		s.max = DefaultMaxField
	}
	s.all = opt.AllSenderFields
	s.fn, s.infoFn = fn, opt.Info
	s.st, s.cur, s.skip, s.cr, s.crlf, s.done, s.canon, s.cOnly = sLineStart, kNone, kNone, false, false, false, "", false
	s.crOn, s.cEmpty, s.crOff, s.crPend = false, true, false, false
	s.join.on, s.lineNul, s.gluedEmpty = false, nulNone, false
	s.val, s.info = s.val[:0], s.info[:0]
	s.name.reset()
}

// scan processes one buffer of the stream. It stops early, setting done, at the end of
// the header section. While the joiner is on, bytes go to it and to the scanner one at a
// time; that happens only after a line with a NUL.
func (s *scanner) scan(p []byte) error {
	for len(p) > 0 && !s.done {
		if s.join.on {
			if err := s.joinByte(p[0]); err != nil {
				return err
			}
			if _, err := s.run(p[:1]); err != nil {
				return err
			}
			p = p[1:]
			continue
		}
		n, err := s.run(p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// run processes bytes of p until its end, the end of the header section, or the end of a
// line that starts the joiner, and returns how many it processed.
func (s *scanner) run(p []byte) (int, error) {
	lf := -1 // index of the next LF at or after i, len(p) if none; -1: not searched yet
	for i := 0; i < len(p); {
		b := p[i]
		if s.crPend {
			s.crPend = false
			s.crOff = s.crOff || !isBlank(b)
		}
		if s.cr {
			s.cr = false
			if b == '\n' {
				i++
				if err := s.lineEnd(true); err != nil || s.done || s.join.on {
					return i, err
				}
				continue
			}
			if err := s.bareCR(isBlank(b)); err != nil {
				return i, err
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
			if err := s.lineEnd(false); err != nil || s.done || s.join.on {
				return i, err
			}
			continue
		}
		s.cEmpty = false
		// Fast paths: a name's plain bytes; bulk-skip or bulk-copy up to the next CR or LF.
		if s.st == sName && !s.crOn {
			if k := s.name.feedPlain(p[i:]); k > 0 {
				i += k
				continue
			}
		}
		if (s.st == sSkip || s.st == sInfo) && !s.crOn || s.st == sValue {
			if lf < i {
				lf = indexFrom(p, i, '\n')
			}
			j := lf
			if k := indexFrom(p[:lf], i, '\r'); k < lf {
				j = k
			}
			if err := s.hold(p[i:j]); err != nil {
				return i, err
			}
			i = j
			continue
		}
		if err := s.byte(b); err != nil {
			return i, err
		}
		i++
	}
	return len(p), nil
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
		if isBlank(b) {
			switch s.cur {
			case kSender:
				s.st = sValue
				return s.fold(b)
			case kInfo:
				s.st = sInfo
				return s.fold(b)
			case kOther:
				s.st, s.skip = sSkip, kOther
				return s.feedCR(b) // a name begun after a bare CR reads the fold's blank too
			case kName:
				s.st = sName
				s.feedName(b)
			default:
				s.st = sIndent
			}
			return nil
		}
		if err := s.finish(); err != nil {
			return err
		}
		s.startName()
		return s.byte(b)
	case sIndent:
		if isBlank(b) {
			return nil
		}
		s.startName()
		return s.byte(b)
	case sName:
		return s.feedName(b)
	case sSkip:
		if b == 0 && s.lineNul == nulNone {
			s.lineNul = nulOther
		}
		return s.feedCR(b)
	case sValue:
		return s.hold([]byte{b})
	case sInfo:
		if err := s.hold([]byte{b}); err != nil {
			return err
		}
		return s.feedCR(b) // a field begun after a bare CR inside it, for those readers
	}
	return nil
}

// startName starts reading the name of a line.
func (s *scanner) startName() {
	s.st = sName
	s.name.reset()
	s.crOn = false
}

// startCRName starts reading the name of a field that begins after a bare CR, unless
// the readers that end lines there have seen the end of their header.
func (s *scanner) startCRName() {
	s.crOn = !s.crOff
	if s.crOn {
		s.crName.reset()
	}
}

// feedName feeds one byte of the line's name, and of a name begun after a bare CR in it.
func (s *scanner) feedName(b byte) error {
	if b == 0 && s.lineNul == nulNone {
		s.lineNul = nulOther
		if s.name.st != nameNot && s.name.st != nameColon {
			s.lineNul, s.nulName = nulName, s.name
		}
	}
	st := s.name.feed(b)
	var crSt nameState
	if s.crOn {
		crSt = s.crName.feed(b)
	}
	switch st {
	case nameColon:
		if canon, ok := s.name.name(s.all, s.infoFn != nil); ok {
			s.crOn = false
			return s.holdField(canon, false)
		}
		k := kNone
		if s.name.field() {
			k = kOther
		}
		if s.crOn && crSt == nameColon {
			s.crOn = false
			if canon, ok := s.crName.name(s.all, false); ok {
				return s.holdField(canon, true)
			}
		}
		s.st, s.skip = sSkip, k
	case nameNot:
		s.st, s.skip = sSkip, kNone
	}
	if s.crOn && (crSt == nameNot || crSt == nameColon) {
		s.crOn = false
	}
	return nil
}

// feedCR feeds a skipped byte to the name begun after a bare CR, if any.
func (s *scanner) feedCR(b byte) error {
	if !s.crOn {
		return nil
	}
	switch s.crName.feed(b) {
	case nameColon:
		s.crOn = false
		if canon, ok := s.crName.name(s.all, false); ok {
			if s.st == sInfo {
				s.reportInfo() // what was held of it, the nested field's name included
			}
			return s.holdField(canon, true)
		}
	case nameNot:
		s.crOn = false
	}
	return nil
}

// holdField starts holding the value of the field whose name was just read: a sender
// field, or an info field for Options.Info.
func (s *scanner) holdField(canon string, cOnly bool) error {
	s.canon, s.cOnly = canon, cOnly
	if canon == nameMessageID || canon == nameContentType {
		s.st, s.info = sInfo, s.info[:0]
		return nil
	}
	s.st, s.val = sValue, s.val[:0]
	return nil
}

// lineEnd handles LF or CRLF (crlf).
func (s *scanner) lineEnd(crlf bool) error {
	glued := s.gluedEmpty
	s.gluedEmpty = false
	if k := s.lineNul; k != nulNone {
		s.lineNul = nulNone
		if !s.join.on {
			s.startJoin(k)
		}
	}
	if s.cEmpty && s.st != sLineStart {
		// An empty line for readers that end lines at a bare CR, unless a blank follows:
		// then it is a fold to them (they unfold first) and continues the line before.
		s.crPend = true
	}
	s.cEmpty = true
	switch s.st {
	case sLineStart:
		if glued {
			// An empty line that mutt glues on to the line with a NUL before it: for it the
			// header goes on, so the lines after are read as fields.
			return s.finish()
		}
		// A truly empty line: the header section ends here.
		s.done = true
		return s.finish()
	case sName:
		s.cur = kName
	case sSkip:
		s.cur = s.skip
	case sValue:
		s.cur, s.crlf = kSender, crlf
	case sInfo:
		s.cur, s.crlf = kInfo, crlf
	case sIndent:
		s.cur = kNone
	}
	// A name begun after a bare CR stays alive: an indented line may bring its colon
	// ("Received: x\rFrom" LF HT ": y"); a line that is no continuation starts afresh.
	s.st = sLineStart
	return nil
}

// bareCR handles a CR not followed by LF; blank says whether a blank follows it (a fold).
func (s *scanner) bareCR(blank bool) error {
	if s.cEmpty && !blank {
		// An empty line for readers that end lines at a bare CR; one that a blank follows
		// is a fold to them (they unfold first), so it continues the line before.
		s.crOff = true
	}
	s.cEmpty = true
	switch s.st {
	case sLineStart, sIndent:
		// A line that starts with a CR: its name is read with the CR dropped; for a reader
		// that ends lines at a CR, the line before was empty (crOff is set).
		if s.st == sLineStart {
			if err := s.finish(); err != nil {
				return err
			}
		}
		s.startName()
		s.name.feed('\r')
	case sName:
		s.feedName('\r')
		if s.st == sName && !blank {
			s.startCRName()
		}
	case sSkip:
		if !blank {
			s.startCRName()
		}
	case sValue:
		return s.hold([]byte{'\r'})
	case sInfo:
		if !blank {
			s.startCRName()
		}
		return s.hold([]byte{'\r'})
	}
	return nil
}

// fold adds the held field's last line end and the blank b that continues it.
func (s *scanner) fold(b byte) error {
	eol := []byte("\n")
	if s.crlf {
		eol = []byte("\r\n")
	}
	if err := s.hold(eol); err != nil {
		return err
	}
	return s.hold([]byte{b})
}

// hold adds bytes to the held value (in sValue or sInfo; nothing otherwise).
func (s *scanner) hold(p []byte) error {
	if s.lineNul == nulNone && s.st != sValue && bytes.IndexByte(p, 0) >= 0 {
		s.lineNul = nulOther
	}
	switch s.st {
	case sInfo:
		if room := MaxInfo - len(s.info); room > 0 {
			s.info = append(s.info, p[:min(len(p), room)]...)
		}
		return nil
	case sValue:
	default:
		return nil
	}
	if len(s.val) == 0 {
		for len(p) > 0 && isBlank(p[0]) {
			p = p[1:] // blanks before the value: trimmed anyway, and not counted
		}
	}
	need := len(s.val) + len(p)
	if need > s.max {
		return ErrFieldTooLong
	}
	if s.lineNul == nulNone {
		if k := bytes.IndexByte(p, 0); k >= 0 {
			s.lineNul, s.nulAt = nulValue, len(s.val)+k
			if s.cOnly {
				s.lineNul = nulOther // its line began before the bare CR: not a sender field to mutt
			}
		}
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
	k := s.cur
	s.cur = kNone
	switch k {
	case kSender:
		return s.report()
	case kInfo:
		s.reportInfo()
	}
	return nil
}

func (s *scanner) report() error {
	return fieldReadings(s.canon, true, s.cOnly, s.val, s.all, &s.unfolded, s.fn)
}

func (s *scanner) reportInfo() {
	s.infoFn(s.canon, trim(unfold(nil, s.info)))
}

// eof ends the scan at the end of the input.
func (s *scanner) eof() error {
	if s.join.on {
		if err := s.endJoin(); err != nil {
			return err
		}
	}
	if s.cr {
		s.cr = false
		if err := s.bareCR(false); err != nil {
			return err
		}
	}
	switch s.st {
	case sValue:
		return s.report()
	case sInfo:
		s.reportInfo()
	case sLineStart:
		return s.finish()
	}
	return nil
}
