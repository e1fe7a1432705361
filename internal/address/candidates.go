package address

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/bidi"
)

// Candidates appends to dst every address a mail client could show the reader as a sender
// for value, the unfolded value of a From, Sender or Resent-From field, as the bytes
// arrived. Each address appears once (exact Local and Domain), in the order found. There
// are O(len(value)) of them: every candidate needs its own '@' or angle brackets.
//
// What counts (over-approximation, see docs/DESIGN.md): every mailbox of a lenient RFC 5322
// reading (name-addr, addr-spec, groups, obsolete routes, quoted local parts, comments and
// folding white space around the @ and the dots); every address-looking text inside display
// names, quoted strings and comments; all of that again after lenient RFC 2047 decoding (in
// every way readers decode a word), in visual order and without what a renderer draws as
// nothing; for the readings of readers that drop control bytes or stop at the first NUL;
// and, for raw 8-bit bytes that are not UTF-8, decoded in each of [FallbackCharsets] (up
// to [MaxCostlyValue], as is visual order; see [CandidatesIn]). An
// unqualified mailbox (Domain "") is returned only from angle brackets (<ceo>, or an
// unclosed <ceo) or when it is the whole value, never from inside a display name or comment.
// An '@' with nothing before it gives a candidate with an empty Local ("@ours.example", as
// readers show ",@ours.example"). A word without an @ is never a candidate otherwise.
func Candidates(dst []Address, value []byte) []Address {
	dst, _ = CandidatesIn(dst, value, nil)
	return dst
}

// CandidatesIn is [Candidates] for a message that declares its charsets: the charset
// parameters of its top-level Content-Type fields as written ("Shift_JIS", "koi8-r").
// Readers such as Thunderbird decode raw 8-bit header bytes that are not UTF-8 in the
// charset the message declares, where a full-width ＠ is two bytes that are no '@'; so
// value is also read decoded in each of them. Any charset name known for encoded words
// works; an unknown one, UTF-8 or "" adds no reading.
//
// A value longer than MaxCostlyValue that holds such bytes, or right-to-left text, is
// not read in those charsets, or in visual order, and is returned with [ErrTooCostly]:
// its candidates are real ones, but not all of them, so the caller fails closed.
func CandidatesIn(dst []Address, value []byte, declared []string) ([]Address, error) {
	c := collector{out: dst, base: len(dst), long: len(value) > MaxCostlyValue}
	if c.readings(value) && !utf8.Valid(value) {
		if c.long {
			c.tooCostly = true
		} else {
			c.decodings(value, declared)
		}
	}
	if c.tooCostly {
		return c.out, ErrTooCostly
	}
	return c.out, nil
}

// MaxCostlyValue is the longest value read in the costly ways: with raw 8-bit bytes
// that are not UTF-8, in every charset (each decoding can multiply its candidates: a
// value of junk addresses has ten times as many, and a megabyte of it cost seconds), and
// with right-to-left text in a reading, in visual order (the bidi algorithm holds some
// hundred bytes per byte: a megabyte would take seconds and a hundred megabytes). No
// honest sender field comes near it.
const MaxCostlyValue = 16 << 10

// ErrTooCostly is returned by [CandidatesIn] for a value over MaxCostlyValue that needs a
// costly reading.
var ErrTooCostly = errors.New("address: a sender field over 16 KiB with raw 8-bit bytes or right-to-left text is too long to read in every way a reader could")

// FallbackCharsets are the charsets raw 8-bit header bytes that are not UTF-8 are always
// read in too, whatever the message declares: a reader decodes them in its own fallback
// (Thunderbird's follows the user's locale) when the message declares none, or declares
// it after the field. They are the ones in which such bytes can change what an address
// is: the CJK encodings, where full-width letters, ＠ and ．are two bytes, and the
// Western, Hebrew and Arabic Windows code pages, whose soft hyphen and direction marks a
// renderer draws as nothing. (The ISO 8859 and other Windows pages put those characters at
// the same bytes, or have none.)
var FallbackCharsets = []string{"windows-1252", "windows-1255", "windows-1256", "Shift_JIS", "EUC-JP", "gb18030", "Big5", "EUC-KR"}

// collector gathers the distinct candidates of one value over all its readings.
type collector struct {
	out  []Address
	base int                 // out[base:] are ours: dedupe only those
	seen map[string]struct{} // keys of out[base:], once there are many
	key  []byte
	ext  extractor
	// long: the value is over MaxCostlyValue; tooCostly: so a reading was left out.
	long, tooCostly bool
}

// linearDedupe is the number of candidates up to which duplicates are found by comparing
// with each, without a map (the common From has one or two).
const linearDedupe = 16

// decodings scans every reading of v decoded in each declared charset and each of
// FallbackCharsets. One decoding is read at a time, so what is held at once stays that of
// one reading (see readings).
func (c *collector) decodings(v []byte, declared []string) {
	var keys [8 + 8]string // the charsets read so far, folded
	done := keys[:0]
	for _, list := range [][]string{declared, FallbackCharsets} {
		for _, cs := range list {
			k := charsetKey([]byte(cs))
			if slices.Contains(done, k) {
				continue
			}
			done = append(done, k)
			if d := lookupCharset([]byte(cs)); d != nil {
				if out, err := d.NewDecoder().Bytes(v); err == nil {
					c.readings(out)
				}
			}
		}
	}
}

// readings scans every reading of v: as it is, in visual order (bidirectional text), with
// invisible bytes and characters dropped, cut at the first NUL, and each of those again
// after RFC 2047 decoding, in every way readers decode its words. It reports whether v
// holds 8-bit bytes.
func (c *collector) readings(v []byte) (eightBit bool) {
	var buf [4][]byte
	var fbuf [4]feature
	texts, feats := buf[:0], fbuf[:0]
	addText := func(t []byte, f feature) {
		for _, u := range texts {
			if bytes.Equal(t, u) {
				return
			}
		}
		texts, feats = append(texts, t), append(feats, f)
	}
	reading := func(t []byte) {
		f := features(t)
		addText(t, f)
		if f&fStrip != 0 {
			s := appendStripped(nil, t)
			addText(s, features(s))
		}
		if f&fNUL != 0 {
			cut := t[:bytes.IndexByte(t, 0)]
			fc := features(cut)
			addText(cut, fc)
			if fc&fStrip != 0 {
				s := appendStripped(nil, cut)
				addText(s, features(s))
			}
		}
	}
	reading(v)
	eightBit = feats[0]&fEightBit != 0
	for i, n := 0, len(texts); i < n; i++ {
		if feats[i]&fEncoded == 0 {
			continue
		}
		t := texts[i]
		out, res := decodeEncodedWords(nil, t, decodeOptions{})
		reading(out)
		for alt := 1; alt < res.readings; alt++ {
			out, _ := decodeEncodedWords(nil, t, decodeOptions{alt: alt})
			reading(out)
		}
		if res.joinedFWS {
			out, _ := decodeEncodedWords(nil, t, decodeOptions{keepFWS: true})
			reading(out)
		}
		if res.eightBit {
			out, _ := decodeEncodedWords(nil, t, decodeOptions{lowBytes: true})
			reading(out)
		}
		if res.midPad {
			out, _ := decodeEncodedWords(nil, t, decodeOptions{padStop: true})
			reading(out)
			out, _ = decodeEncodedWords(nil, t, decodeOptions{padZero: true})
			reading(out)
		}
	}
	for i, n := 0, len(texts); i < n; i++ {
		if feats[i]&fStrayGT != 0 {
			reading(dropStrayGT(texts[i]))
		}
		if feats[i]&fGluedQuote != 0 {
			reading(dropGluedQuotes(texts[i]))
		}
	}
	for i, n := 0, len(texts); i < n; i++ {
		if feats[i]&fBidi != 0 {
			if c.long {
				c.tooCostly = true // see MaxCostlyValue
				continue
			}
			for _, d := range []bidi.Direction{bidi.LeftToRight, bidi.RightToLeft} {
				if vis, ok := visualOrder(texts[i], d); ok {
					reading(vis)
				}
			}
		}
	}
	for _, t := range texts {
		c.scan(t, structured)
		c.scan(t, transparent)
		if needsJsmime(t) {
			if c.jsmime(t, false) {
				c.jsmime(t, true) // the glued name again, as postal-mime and mailparser space it
			}
		}
	}
	return eightBit
}

// feature is what one pass over a text finds that calls for more readings of it.
type feature uint8

const (
	fStrip      feature = 1 << iota // appendStripped would drop something
	fNUL                            // a NUL byte: readers that stop there
	fEncoded                        // "=?": maybe an encoded word
	fStrayGT                        // a '>' that closes no '<'
	fBidi                           // right-to-left letters or bidi controls
	fEightBit                       // bytes of 8 bits
	fGluedQuote                     // a '"' with a word's bytes on both sides
)

// asciiFeature marks the ASCII bytes [features] looks at; the others are skipped by one
// table look-up.
var asciiFeature = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = dropByte(byte(c)) || c == '=' || c == '<' || c == '>' || c == '"'
	}
	return t
}()

// features scans t once.
func features(t []byte) feature {
	var f feature
	open := 0
	for i := 0; i < len(t); {
		c := t[i]
		if c < utf8.RuneSelf {
			if !asciiFeature[c] {
				i++
				continue
			}
			switch {
			case c == 0:
				f |= fNUL | fStrip
			case dropByte(c):
				f |= fStrip
			case c == '=' && i+1 < len(t) && t[i+1] == '?':
				f |= fEncoded
			case c == '<':
				open++
			case c == '>':
				if open == 0 {
					f |= fStrayGT
				} else {
					open--
				}
			case c == '"':
				if i > 0 && i+1 < len(t) && wordByte(t[i-1]) && wordByte(t[i+1]) {
					f |= fGluedQuote
				}
			}
			i++
			continue
		}
		f |= fEightBit
		r, size := utf8.DecodeRune(t[i:])
		if dropRune(r, size) {
			f |= fStrip
		}
		if f&fBidi == 0 && isBidi(t[i:]) {
			f |= fBidi
		}
		i += size
	}
	return f
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// dropStrayGT returns t without the '>' bytes that close no '<': jsmime drops such a '>'
// and joins what is on either side of it ("ceo@>ours.example" shows ceo@ours.example).
// wordByte reports whether c can be part of a word glued to a quoted string: no blank, no
// control and no special but the dot.
func wordByte(c byte) bool {
	return c > ' ' && c != 0x7f && strings.IndexByte(`"()<>[]:;@\,`, c) < 0
}

// dropGluedQuotes returns t without the '"' bytes that have a word's bytes on both sides:
// mailparser, postal-mime, Python and mutt show "ceo@ours.example"0 as one word,
// ceo@ours.example0, where the other readings see a quoted string and then a word.
func dropGluedQuotes(t []byte) []byte {
	out := make([]byte, 0, len(t))
	for i, c := range t {
		if c == '"' && i > 0 && i+1 < len(t) && wordByte(t[i-1]) && wordByte(t[i+1]) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func dropStrayGT(t []byte) []byte {
	out := make([]byte, 0, len(t))
	open := 0
	for _, c := range t {
		switch c {
		case '<':
			open++
		case '>':
			if open == 0 {
				continue
			}
			open--
		}
		out = append(out, c)
	}
	return out
}

// isBidi reports whether the character at the start of t is one the Unicode
// bidirectional algorithm moves: a right-to-left letter or an explicit direction control.
func isBidi(t []byte) bool {
	p, _ := bidi.Lookup(t)
	switch p.Class() {
	case bidi.R, bidi.AL, bidi.RLE, bidi.RLO, bidi.LRE, bidi.LRO, bidi.PDF, bidi.RLI, bidi.LRI, bidi.FSI, bidi.PDI:
		return true
	}
	return false
}

// visualOrder returns t as a renderer draws it from left to right, for a paragraph of
// direction d: what a reader shows of a reversed string between direction overrides.
func visualOrder(t []byte, d bidi.Direction) ([]byte, bool) {
	var p bidi.Paragraph
	if _, err := p.SetBytes(t, bidi.DefaultDirection(d)); err != nil {
		return nil, false
	}
	o, err := p.Order()
	if err != nil {
		return nil, false
	}
	out := make([]byte, 0, len(t))
	var rev []byte
	for i := 0; i < o.NumRuns(); i++ {
		r := o.Run(i)
		if r.Direction() == bidi.RightToLeft {
			// AppendReverse copies what it appends to: reversing into out itself would
			// copy all of out for each run, quadratic in a text of many runs.
			rev = bidi.AppendReverse(rev[:0], r.Bytes())
			out = append(out, rev...)
		} else {
			out = append(out, r.Bytes()...)
		}
	}
	return out, !bytes.Equal(out, t)
}

// appendStripped appends t to dst without what a reader may drop or not show: control
// bytes other than tab (NUL, backspace, CR, LF, DEL...), C1 controls, bytes that are not
// UTF-8, and the characters a renderer draws as nothing: Unicode's default-ignorable code
// points (zero-width space and joiners, soft hyphen, BOM, bidirectional controls, Hangul
// fillers, variation selectors, tags...).
func appendStripped(dst, t []byte) []byte {
	for i := 0; i < len(t); {
		c := t[i]
		if c < utf8.RuneSelf {
			if !dropByte(c) {
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(t[i:])
		if !dropRune(r, size) {
			dst = append(dst, t[i:i+size]...)
		}
		i += size
	}
	return dst
}

func dropByte(c byte) bool { return c < ' ' && c != '\t' || c == 0x7f }

func dropRune(r rune, size int) bool {
	return r == utf8.RuneError && size == 1 || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r)
}

// add records the candidate local@domain unless it is already there.
func (c *collector) add(local, domain []byte) {
	found := c.out[c.base:]
	if c.seen == nil {
		for _, a := range found {
			if a.Local == string(local) && a.Domain == string(domain) {
				return
			}
		}
		if len(found) >= linearDedupe {
			c.seen = make(map[string]struct{}, 2*len(found))
			for _, a := range found {
				c.seen[string(c.appendKey([]byte(a.Local), []byte(a.Domain)))] = struct{}{}
			}
		}
	}
	if c.seen != nil {
		k := c.appendKey(local, domain)
		if _, ok := c.seen[string(k)]; ok {
			return
		}
		c.seen[string(k)] = struct{}{}
	}
	s := string(local) + string(domain)
	c.out = append(c.out, Address{Local: s[:len(local)], Domain: s[len(local):]})
}

// appendKey builds the map key of a candidate in c.key: the length of the local part first,
// since either part may hold any byte.
func (c *collector) appendKey(local, domain []byte) []byte {
	c.key = binary.AppendUvarint(c.key[:0], uint64(len(local)))
	c.key = append(c.key, local...)
	c.key = append(c.key, domain...)
	return c.key
}

// The scan runs a lexer over a text and an extractor over its tokens. The extractor needs
// no grammar beyond RFC 5322 words and dots: a mailbox is a '@' between a chain of words on
// its left (the local part) and one on its right (the domain). That is what every reading
// of a name-addr, addr-spec, group member or route target comes down to, and it also finds
// the addresses in malformed text (unbalanced brackets or quotes, prose, several addresses
// without commas), which a grammar would reject.

// mode is how the lexer reads quotes, comments and brackets.
type mode uint8

const (
	// structured follows RFC 5322: quoted strings, comments (skipped, like white space),
	// domain literals and quoted-pairs are tokens.
	structured mode = iota
	// transparent reads quotes, parentheses, square brackets and backslashes as white
	// space, so what a display name, a quoted string or a comment holds is read as
	// addresses too. Unicode white space separates words, and a full-width @ is an @.
	transparent
)

type tokKind uint8

const (
	tokEOF     tokKind = iota
	tokAtom            // text[start:end]
	tokQuoted          // quoted string, its content text[cs:ce] with quoted-pairs
	tokLiteral         // domain literal text[start:end], brackets included
	tokDot
	tokAt
	tokLT
	tokGT
	tokColon
	tokOther // ',', ';' and stray ')', ']', '\'
)

type token struct {
	kind       tokKind
	start, end int
	cs, ce     int  // content of a quoted string
	gap        bool // white space or a comment before the token
}

type lexer struct {
	text    []byte
	pos     int
	mode    mode
	noClose int // no ']' at or after this offset (a failed literal search is not repeated)
}

// next returns the next token. Each byte is looked at a bounded number of times.
func (l *lexer) next() token {
	gap := l.skipGaps()
	t := token{start: l.pos, gap: gap}
	if l.pos >= len(l.text) {
		t.kind = tokEOF
		return t
	}
	c := l.text[l.pos]
	switch c {
	case '.':
		t.kind = tokDot
		l.pos++
	case '@':
		t.kind = tokAt
		l.pos++
	case '<':
		t.kind = tokLT
		l.pos++
	case '>':
		t.kind = tokGT
		l.pos++
	case ':':
		t.kind = tokColon
		l.pos++
	case ',', ';', ')', ']', '\\':
		t.kind = tokOther
		l.pos++
	case '"':
		t.kind = tokQuoted
		l.pos++
		t.cs = l.pos
		for l.pos < len(l.text) && l.text[l.pos] != '"' {
			if l.text[l.pos] == '\\' && l.pos+1 < len(l.text) {
				l.pos++
			}
			l.pos++
		}
		t.ce = l.pos
		if l.pos < len(l.text) {
			l.pos++ // closing quote; an unclosed one runs to the end
		}
	case '[':
		if end := l.literalEnd(l.pos); end > 0 {
			t.kind = tokLiteral
			l.pos = end
		} else {
			t.kind = tokOther
			l.pos++
		}
	default:
		if l.mode == transparent && c >= utf8.RuneSelf {
			if r, size := utf8.DecodeRune(l.text[l.pos:]); isFullwidthAt(r) {
				t.kind = tokAt
				l.pos += size
				break
			}
		}
		t.kind = tokAtom
		l.pos = l.atomEnd(l.pos)
	}
	t.end = l.pos
	return t
}

// literalEnd returns the offset just past the ']' closing the domain literal at i, or 0.
func (l *lexer) literalEnd(i int) int {
	if l.noClose > 0 && i >= l.noClose {
		return 0
	}
	for j := i + 1; j < len(l.text); j++ {
		switch l.text[j] {
		case '\\':
			j++
		case ']':
			return j + 1
		}
	}
	l.noClose = i + 1
	return 0
}

func isFullwidthAt(r rune) bool { return r == '\uff20' || r == '\ufe6b' }

// atomEnd returns the end of the atom starting at i: bytes that are not specials, white
// space or controls. Bytes of 8 bits are atom bytes (RFC 6531), valid UTF-8 or not.
func (l *lexer) atomEnd(i int) int {
	for i < len(l.text) {
		c := l.text[i]
		if c < utf8.RuneSelf {
			if isSpecial(c) || c <= ' ' || c == 0x7f {
				return i
			}
			i++
			continue
		}
		if l.mode == structured {
			i++
			continue
		}
		r, size := utf8.DecodeRune(l.text[i:])
		if unicode.IsSpace(r) || isFullwidthAt(r) {
			return i
		}
		i += size
	}
	return i
}

func isSpecial(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '.', '"':
		return true
	}
	return false
}

// skipGaps skips white space, control bytes and, in structured mode, comments; in
// transparent mode also the quote, parenthesis, bracket and backslash bytes and Unicode
// white space. It reports whether it skipped anything.
func (l *lexer) skipGaps() bool {
	start := l.pos
	for l.pos < len(l.text) {
		c := l.text[l.pos]
		switch {
		case c <= ' ' || c == 0x7f:
			l.pos++
		case l.mode == structured && c == '(':
			l.skipComment()
		case l.mode == transparent && (c == '(' || c == ')' || c == '"' || c == '[' || c == ']' || c == '\\'):
			l.pos++
		case l.mode == transparent && c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(l.text[l.pos:])
			if !unicode.IsSpace(r) {
				return l.pos > start
			}
			l.pos += size
		default:
			return l.pos > start
		}
	}
	return l.pos > start
}

// skipComment skips a comment (RFC 5322 section 3.2.2: nested, with quoted-pairs); an
// unclosed one runs to the end of the text.
func (l *lexer) skipComment() {
	depth := 0
	for l.pos < len(l.text) {
		switch l.text[l.pos] {
		case '\\':
			l.pos++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				l.pos++
				return
			}
		}
		l.pos++
	}
	if l.pos > len(l.text) {
		l.pos = len(l.text)
	}
}

// extractor turns tokens into candidates. A chain is a run of words (atoms, quoted
// strings, domain literals) and dots with only white space and comments between them, in
// which no two words follow each other without a dot (RFC 5322 obs-local-part and
// obs-domain allow CFWS around the dots). Every '@' with a chain of at least one word on
// each side is a candidate: the chain on the left is the local part (quoted strings
// unquoted), the one on the right the domain.
//
// A chain that crosses white space is also read without the far part: "Thanks. ceo@x" is
// ceo@x as well as Thanks.ceo@x, and "ceo@our.example. Bye" is ceo@our.example. as well as
// ceo@our.example.Bye.
type extractor struct {
	c    *collector
	text []byte

	chain    []byte // value of the current chain
	words    int    // words in it
	elems    int    // words and dots in it
	lastWord bool   // its last element is a word
	contig   int    // chain[contig:] follows its last gap
	firstGap int    // chain[:firstGap] precedes its first gap; -1 if none
	chains   int    // chains started in the text

	pending    bool // an '@' waits for its right-hand chain; its left is in left
	left       []byte
	leftContig int

	// The run is every word and dot since the last special; joined without any white
	// space it is the local part as mutt draws it ("on behalf of ceo@x" is shown as
	// onbehalfofceo@x, "priya raman"@x as priyaraman@x). It differs from the chain only
	// when the run is dirty (words without a dot between them, a quoted string with
	// blanks); only then is it rebuilt, at the '@', from text[runStart:] (leftJoined,
	// leftJOn), so the common address costs nothing.
	runStart   int
	dirty      bool
	leftJoined []byte
	leftJOn    bool

	// The run just before the last '<' (the display name's words, joined), and afterGT
	// that the token before this one closed an angle: jsmime keeps that run as the local
	// part of an '@' right after the '>' ("phisher <x@y>@scam.example" shows
	// phisher@scam.example).
	// Only offsets are kept: text[ltRun:ltPos] is the run before the '<', rebuilt at such
	// an '@' (see appendJoined), so the common name-addr costs nothing.
	ltRun, ltPos int
	hasLT        bool
	afterGT      bool

	// The domain run: mutt and Python's compat32 read a domain as every word and dot up to
	// the next special, joined without white space and without comments ("ceo@ours.exam
	// ple" is shown as ceo@ours.example), and jsmime glues the word after a colon on
	// ("<ceo@ours.exam: ple>" is ceo@ours.example); so in the structured reading only. When a pending '@'s domain chain ends at a word, the run from
	// domStart is rebuilt at the next special and added with the local part (domLocal,
	// and domJoinedLocal when the local part's run was dirty too).
	domJoin        bool
	atEnd          int // where the text after the last '@' begins
	domStart       int
	domLocal       []byte
	domJoinedLocal []byte
	domJoinedOn    bool
	domBuf         []byte
	jsName         []byte // jsmime's display name (see jsmime)

	inAngle  bool // after '<'
	clean    bool // inside the angle brackets only a route and one chain so far
	specials bool // any token other than words and dots in the text
}

func (c *collector) scan(text []byte, m mode) {
	l := lexer{text: text, mode: m}
	e := &c.ext
	e.c, e.text = c, text
	e.chain, e.left = e.chain[:0], e.left[:0]
	e.runStart, e.dirty, e.leftJOn = 0, false, false
	e.resetChain()
	e.chains, e.pending, e.inAngle, e.clean, e.specials = 0, false, false, false, false
	e.hasLT, e.afterGT, e.domJoin = false, false, false
	for {
		t := l.next()
		afterGT := e.afterGT
		e.afterGT = false
		if e.domJoin && t.kind != tokAtom && t.kind != tokQuoted && t.kind != tokLiteral && t.kind != tokDot && t.kind != tokColon {
			e.endDomainRun(t.start, m)
		}
		switch t.kind {
		case tokEOF:
			// The whole value is one local part: unqualified. An encoded word is not one:
			// its decoded reading is scanned on its own.
			if m == structured && !e.specials && e.chains == 1 && e.words > 0 && !hasEncodedWord(e.chain) {
				c.add(e.chain, nil)
			}
			// "<ceo" never closed: readers (jsmime, Python) still show the mailbox ceo.
			if m == structured && e.inAngle && e.clean && !e.pending && e.words > 0 {
				c.add(e.chain, nil)
			}
			e.endChain()
			return
		case tokAtom, tokQuoted, tokLiteral:
			if e.lastWord {
				wasPending := e.pending
				if wasPending && m == structured {
					e.startDomainRun()
				}
				e.endChain()
				if wasPending {
					e.runStart, e.dirty = t.start, false // the domain is no part of the next run
				} else {
					e.dirty = true // the run goes on past the chain's end
				}
				e.clean = false
			}
			e.element(t.gap)
			switch t.kind {
			case tokQuoted:
				n := len(e.chain)
				e.chain = appendUnquoted(e.chain, text[t.cs:t.ce])
				if bytes.ContainsAny(e.chain[n:], " \t") {
					e.dirty = true
				}
			default:
				e.chain = append(e.chain, text[t.start:t.end]...)
			}
			e.words++
			e.lastWord = true
		case tokDot:
			e.element(t.gap)
			e.chain = append(e.chain, '.')
			e.lastWord = false
		case tokAt:
			e.specials = true
			e.clean = false
			e.leftJOn = false
			if e.dirty && e.words > 0 {
				e.leftJoined, e.leftJOn = appendJoined(e.leftJoined[:0], text[:t.start], e.runStart, m), true
			}
			useLT := afterGT && e.words == 0 && e.hasLT
			e.endChainAt()
			if useLT {
				e.left = appendJoined(e.left[:0], text[:e.ltPos], e.ltRun, m)
				e.pending = len(e.left) > 0 || e.pending
			}
			e.runStart, e.dirty = l.pos, false
			e.atEnd = l.pos
		case tokLT:
			e.specials = true
			e.hasLT = !e.pending && e.words > 0
			e.ltRun, e.ltPos = e.runStart, t.start
			e.endChain()
			e.runStart, e.dirty = l.pos, false
			e.inAngle, e.clean = true, true
		case tokGT:
			e.specials = true
			// <ceo>: unqualified. Only in the structured reading: the transparent one
			// sees angle brackets inside display names and comments, and those are
			// never the mailbox ("Jane Doe <jdoe>" <jane@partner.example>).
			if m == structured && e.inAngle && e.clean && !e.pending && e.words > 0 {
				c.add(e.chain, nil)
			}
			e.endChain()
			e.runStart, e.dirty = l.pos, false // a stray '>' too: the reading without it (dropStrayGT) joins across
			e.afterGT = e.inAngle
			e.inAngle = false
		case tokColon:
			e.specials = true
			if e.pending && e.elems == 0 {
				break // jsmime reads "ceo@:ours.example" as ceo@ours.example
			}
			if e.pending && e.words > 0 && m == structured {
				e.startDomainRun() // jsmime: "<ceo@ours.exam: ple>" is ceo@ours.example
			}
			e.endChain()
			e.runStart, e.dirty = l.pos, false
			e.clean = e.inAngle // the end of a route: the mailbox follows
		default:
			e.specials = true
			e.clean = false
			e.endChain()
			e.runStart, e.dirty = l.pos, false
		}
	}
}

// jsmime adds the addresses Thunderbird's parser (jsmime's parseAddressingHeader) builds:
// it keeps one address per mailbox, up to a ',' or ';', and appends to it everything in
// angle brackets, a second pair of them included, and what follows an '@' outside them;
// a word is preceded by a space only when the one before it did not end at a delimiter
// or begin with a dot. So "CEO <ceo@ours> <.example>" shows as ceo@ours.example, and
// "ceo@ours.Received: from x" as ceo@ours.Receivedfrom x, and "ceo (boss) @ )hq" as
// ceo@hq (a ')' outside a comment is skipped). The display name is what is outside angle
// brackets, or an address a second '<' turned into one, with words after the '>' appended:
// "=?UTF-8?B?Y2VvQG91cnMuZXhhbXBsZQ==?= <x@evil>c" shows the name ceo@ours.examplec.
// asWritten gives the display name alone, with a space wherever the text has white space,
// as postal-mime and mailparser keep a name's (".e =?UTF-8?B?...?= <x@evil>c" shows
// ".e ceo@ours.examplec"). See needsJsmime for when it matters. The address is cut at its
// last '@'; what is not a domain after it is dropped by addTrimmed. It reports whether a
// name with an '@' had words glued on after a '>': only then does asWritten add anything.
func (c *collector) jsmime(text []byte, asWritten bool) (gluedName bool) {
	l := lexer{text: text, mode: structured}
	addr, local, name := c.ext.domBuf[:0], c.ext.domLocal[:0], c.ext.jsName[:0]
	inAngle, needsSpace, prevEnd := false, false, -1
	closed, nameGlued := false, false // a '>' closed an angle; a word came after it
	commit := func() {
		if !asWritten {
			c.ext.addJsmime(addr)
		}
		// The name only when a word after a '>' was glued on (otherwise the other
		// readings have its addresses), and only an address in it: a name is never
		// an unqualified mailbox ("<x@evil.example> Bob" names no mailbox Bob).
		if nameGlued && bytes.IndexByte(name, '@') >= 0 {
			c.ext.addJsmime(name)
			gluedName = true
		}
		addr, local, name, inAngle, needsSpace = addr[:0], local[:0], name[:0], false, false
		closed, nameGlued = false, false
	}
	for {
		t := l.next()
		if t.kind == tokOther && text[t.start] == ']' {
			t.kind = tokAtom // no literal opened: to jsmime a ']' is a character of a word ("<ceo]" is ceo])
		}
		switch t.kind {
		case tokEOF:
			commit()
			c.ext.domBuf, c.ext.domLocal, c.ext.jsName = addr, local, name
			return gluedName
		case tokOther:
			if b := text[t.start]; b == ',' || b == ';' {
				commit()
			}
			needsSpace = false
		case tokLT:
			if inAngle {
				if len(addr) > 0 {
					name = append(name[:0], addr...) // what came before is the display name
				}
				addr, local = addr[:0], local[:0]
			}
			inAngle, needsSpace = true, false
		case tokGT:
			inAngle, needsSpace, closed = false, false, true
		case tokAt:
			if !inAngle {
				addr, local, name, inAngle = append(addr[:0], local...), local[:0], name[:0], true
			}
			addr, needsSpace = append(addr, '@'), false
		case tokColon:
			local, name, needsSpace = local[:0], name[:0], false
		default: // a word or a dot: one jsmime token with the ones glued to it
			word := text[t.start:t.end]
			if t.kind == tokQuoted {
				word = text[t.cs:t.ce]
			}
			glued := !t.gap && t.start == prevEnd
			dot := len(word) > 0 && word[0] == '.'
			sp := !glued && needsSpace && !dot
			if asWritten {
				sp = t.gap && (inAngle && len(addr) > 0 || !inAngle && len(name) > 0)
			}
			if inAngle {
				if sp {
					addr = append(addr, ' ')
				}
				addr = append(addr, word...)
			} else {
				if sp {
					local, name = append(local, ' '), append(name, ' ')
				}
				local, name = append(local, word...), append(name, word...)
				nameGlued = nameGlued || closed
			}
			if !glued {
				needsSpace = !dot
			}
			prevEnd = l.pos
			continue
		}
		prevEnd = -1 // a word right after a delimiter starts a new token
	}
}

// addJsmime adds the address jsmime shows as addr (unquoted), cut at its last '@'; a local
// part with an '@' in it jsmime shows quoted ("x@evil.example"@our, or "x@evil.example"@
// when nothing follows), which a person reads as an address too, cut at the '@' before.
func (e *extractor) addJsmime(addr []byte) {
	at := bytes.LastIndexByte(addr, '@')
	if at < 0 {
		// No '@': jsmime shows the words in angle brackets as an unqualified mailbox, a
		// colon and what follows it skipped ("<x1:" is x1); one word only, as the other
		// readings take an unqualified mailbox.
		if len(addr) > 0 && bytes.IndexAny(addr, " \t") < 0 {
			e.c.add(addr, nil)
		}
		return
	}
	e.addTrimmed(addr[:at], addr[at+1:])
	if at2 := bytes.LastIndexByte(addr[:at], '@'); at2 >= 0 {
		e.addTrimmed(addr[:at2], addr[at2+1:at])
	}
}

// needsJsmime reports whether jsmime may show an address in text that the other readings
// miss: with two '<', a ':', a ')' or a ']' in it, or a word after its last '>'.
func needsJsmime(text []byte) bool {
	if bytes.IndexAny(text, ":)]") >= 0 || bytes.Count(text, []byte("<")) >= 2 {
		return true
	}
	i := bytes.LastIndexByte(text, '>')
	return i >= 0 && len(bytes.Trim(text[i+1:], " \t,;")) > 0
}

// startDomainRun starts the domain run of the pending '@', unless it has started.
func (e *extractor) startDomainRun() {
	if e.domJoin {
		return
	}
	e.domJoin, e.domStart = true, e.atEnd
	e.domLocal = append(e.domLocal[:0], e.left...)
	e.domJoinedOn = e.leftJOn && len(e.leftJoined) > 0
	e.domJoinedLocal = append(e.domJoinedLocal[:0], e.leftJoined...)
}

// endDomainRun adds the local part with the domain run that ends at end, joined: its
// words and dots without white space, comments or colons.
func (e *extractor) endDomainRun(end int, m mode) {
	e.domJoin = false
	e.domBuf = appendJoined(e.domBuf[:0], e.text[:end], e.domStart, m)
	if len(e.domBuf) == 0 {
		return
	}
	if len(e.domLocal) > 0 || !e.domJoinedOn {
		e.addTrimmed(e.domLocal, e.domBuf)
	}
	if e.domJoinedOn {
		e.addTrimmed(e.domJoinedLocal, e.domBuf)
	}
}

// element starts or extends the chain with one word or dot.
func (e *extractor) element(gap bool) {
	if e.elems == 0 {
		e.chains++
	} else if gap {
		e.contig = len(e.chain)
		if e.firstGap < 0 {
			e.firstGap = len(e.chain)
		}
	}
	e.elems++
}

func (e *extractor) resetChain() {
	e.chain = e.chain[:0]
	e.words, e.elems, e.lastWord, e.contig, e.firstGap = 0, 0, false, 0, -1
}

// endChain ends the current chain: it is the domain of a pending '@'.
func (e *extractor) endChain() {
	if e.pending {
		if e.words > 0 {
			e.emit()
		}
	}
	e.pending = false
	e.resetChain()
}

// endChainAt ends the current chain at an '@': it is the domain of a pending '@' and the
// local part of this one.
func (e *extractor) endChainAt() {
	if e.pending && e.words > 0 {
		e.emit()
	}
	// An '@' with nothing before it is still an address to readers: jsmime, postal-mime
	// and mailparser show ",@ours.example" as @ours.example, which the rule @ours.example
	// names. (An obsolete route "<@relay.example:user@host>" gives @relay.example too.)
	e.pending = true
	e.left = append(e.left[:0], e.chain...)
	e.leftContig = e.contig
	e.resetChain()
}

// appendJoined appends the words and dots of text[start:], read in mode m, without any
// white space: quoted strings unquoted and their blanks dropped.
func appendJoined(dst, text []byte, start int, m mode) []byte {
	l := lexer{text: text, pos: start, mode: m}
	for {
		t := l.next()
		switch t.kind {
		case tokEOF:
			return dst
		case tokQuoted:
			n := len(dst)
			dst = appendUnquoted(dst, text[t.cs:t.ce])
			dst = append(dst[:n], appendNoBlanks(nil, dst[n:])...)
		case tokDot:
			dst = append(dst, '.')
		case tokColon:
			// Only in a domain run: a local part's run ends at a colon.
		default:
			dst = append(dst, text[t.start:t.end]...)
		}
	}
}

// emit adds the candidates of the pending '@': the whole chains, each without the part
// beyond white space, the local part with its words joined, and each of those with the
// punctuation that is glued to it cut off.
func (e *extractor) emit() {
	local, domain := e.left, e.chain
	e.addTrimmed(local, domain)
	near := bytes.TrimLeft(local[e.leftContig:], ".")
	hasNear := e.leftContig > 0 && len(near) > 0
	if hasNear {
		e.addTrimmed(near, domain)
	}
	joined := e.leftJoined
	hasJoined := e.leftJOn && len(joined) > 0 && !bytes.Equal(joined, local)
	if hasJoined {
		e.addTrimmed(joined, domain)
	}
	if e.firstGap > 0 {
		d := domain[:e.firstGap]
		e.addTrimmed(local, d)
		if hasNear {
			e.addTrimmed(near, d)
		}
		if hasJoined {
			e.addTrimmed(joined, d)
		}
	}
}

// addTrimmed adds local@domain and, when punctuation is glued to it, the address a person
// reads in it: a domain ends where a domain can end (at the first character that is no
// letter, digit, mark, '-', '_' or '.': "ceo@ours.example'" is ours.example), and a local
// part starts at its first letter or digit after the last character that cannot be in one
// ("'ceo", "“ceo" and "!ceo" are ceo as well).
func (e *extractor) addTrimmed(local, domain []byte) {
	e.c.add(local, domain)
	d := domainPrefix(domain)
	l := localSuffix(local)
	if len(d) == 0 || len(l) == 0 || len(d) == len(domain) && len(l) == len(local) {
		return
	}
	e.c.add(l, d)
	if len(l) < len(local) && len(d) < len(domain) {
		e.c.add(local, d)
	}
}

// asciiClass holds, for each ASCII byte, whether it can be in a domain (cDomain), in an
// unquoted local part (cLocal), and whether it is a letter or digit (cAlnum).
const (
	cDomain = 1 << iota
	cLocal
	cAlnum
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		b := byte(c)
		if isAlnum(b) {
			t[c] |= cAlnum | cDomain | cLocal
		}
		if b == '-' || b == '_' || b == '.' {
			t[c] |= cDomain
		}
		if b == '.' || bytes.IndexByte([]byte("!#$%&'*+-/=?^_`{|}~"), b) >= 0 {
			t[c] |= cLocal
		}
	}
	return t
}()

// domainPrefix returns the longest prefix of d that a person reads as a domain.
func domainPrefix(d []byte) []byte {
	for i := 0; i < len(d); {
		c := d[i]
		if c < utf8.RuneSelf {
			if asciiClass[c]&cDomain == 0 {
				return d[:i]
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(d[i:])
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
			return d[:i]
		}
		i += size
	}
	return d
}

// localSuffix returns the local part a person reads at the end of l: after the last
// character that cannot be in an unquoted local part (typographic quotes, brackets...),
// from the first letter or digit on.
func localSuffix(l []byte) []byte {
	start := 0
	for i := 0; i < len(l); {
		c := l[i]
		if c < utf8.RuneSelf {
			if asciiClass[c]&cLocal == 0 {
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(l[i:])
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
			start = i + size
		}
		i += size
	}
	for start < len(l) {
		c := l[start]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(l[start:])
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				break
			}
			start += size
			continue
		}
		if isAlnum(c) {
			break
		}
		start++
	}
	return l[start:]
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// appendNoBlanks appends b without its blanks.
func appendNoBlanks(dst, b []byte) []byte {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			dst = append(dst, c)
		}
	}
	return dst
}

// appendUnquoted appends the value of quoted-string content q: quoted-pairs resolved.
func appendUnquoted(dst, q []byte) []byte {
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		dst = append(dst, q[i])
	}
	return dst
}
