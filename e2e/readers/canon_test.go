package readers

// The harness's own model of a person looking at what a reader shows: one canonical form
// for displayed text, the addresses a person reads in it, and the rules applied to those.
// None of it calls internal/address: the harness must not share the code it judges.

import (
	"bufio"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// visual returns s as a renderer draws it, left to right: the Unicode bidi algorithm's
// visual order, for a left-to-right paragraph (the direction of a header line).
func visual(s string) string {
	if !hasBidi(s) {
		return s
	}
	var p bidi.Paragraph
	if _, err := p.SetString(s, bidi.DefaultDirection(bidi.LeftToRight)); err != nil {
		return s
	}
	o, err := p.Order()
	if err != nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < o.NumRuns(); i++ {
		r := o.Run(i)
		t := r.String()
		if r.Direction() == bidi.RightToLeft {
			t = bidi.ReverseString(t)
		}
		b.WriteString(t)
	}
	return b.String()
}

func hasBidi(s string) bool {
	for _, r := range s {
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.R, bidi.AL, bidi.RLE, bidi.RLO, bidi.LRE, bidi.LRO, bidi.PDF, bidi.RLI, bidi.LRI, bidi.FSI, bidi.PDI:
			return true
		}
	}
	return false
}

// defaultIgnorable is Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt):
// Other_Default_Ignorable_Code_Point, format characters and variation selectors, less
// white space, the interlinear annotation characters, prepended concatenation marks and
// the Egyptian hieroglyph format controls. A renderer draws these as nothing.
func defaultIgnorable(r rune) bool {
	if !unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && !unicode.Is(unicode.Cf, r) &&
		!unicode.Is(unicode.Variation_Selector, r) {
		return false
	}
	switch {
	case unicode.Is(unicode.White_Space, r), r >= 0xfff9 && r <= 0xfffb, r >= 0x13430 && r <= 0x1345f,
		unicode.Is(unicode.Prepended_Concatenation_Mark, r):
		return false
	}
	return true
}

// displayForm is displayed text as a person reads it: in visual order, without what is
// drawn as nothing, in NFKC (a full-width ＠ is an @).
func displayForm(s string) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	s = visual(s)
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case defaultIgnorable(r), unicode.IsControl(r): // a terminal draws NUL, BS, DEL... as nothing
			return -1
		}
		return r
	}, s)
	return norm.NFKC.String(s)
}

// whatwg is UTS #46 processing as the WHATWG URL standard does it: no hyphen checks, no
// STD3 rules, no DNS length check, non-transitional.
var whatwg = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.CheckHyphens(false),
	idna.StrictDomainName(false), idna.VerifyDNSLength(false), idna.BidiRule(), idna.CheckJoiners(true))

// canonDomain maps a displayed domain with UTS #46 (the mapped text even where a label
// fails a check: a person still reads it), lower case, without trailing dots.
func canonDomain(d string) string {
	d = displayForm(d)
	if strings.ContainsRune(d, utf8.RuneError) {
		return strings.ToLower(d) // bytes the reader could not decode: kept as drawn
	}
	if m, _ := whatwg.ToASCII(d); m != "" {
		d = m
	}
	return strings.TrimRight(strings.ToLower(d), ".")
}

// canon is the one canonical form of an address for the comparison: display form, the
// domain through UTS #46, lower case. An address without @ stays unqualified.
func canon(addr string) string {
	addr = displayForm(addr)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return strings.ToLower(addr)
	}
	return strings.ToLower(addr[:at]) + "@" + canonDomain(addr[at+1:])
}

// localRune and domainRune are what a person reads as part of the local part and the
// domain of an address in running text: letters, digits and marks of any script, the
// RFC 5322 atext specials and dots on the left; hyphens, underscores and dots on the
// right. Quotes, brackets, typographic punctuation and blanks end an address.
func localRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || r == '.' ||
		r < utf8.RuneSelf && strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func domainRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '-' || r == '_' || r == '.' ||
		r == utf8.RuneError // a byte the reader could not decode is drawn inside the domain
}

// visibleAddresses returns the addresses a person reads in displayed text s, each in
// canonical form: every @ with local-part text before it and domain text after it, with
// the local part also read from its first letter or digit on ("'ceo@ours.example'" is
// read as ceo@ours.example too).
func visibleAddresses(s string) []string {
	rs := []rune(displayForm(s))
	var out []string
	for i, r := range rs {
		if r != '@' {
			continue
		}
		// A local part is read in one direction: it starts after a letter of the other
		// one (a Hebrew name drawn beside a Latin address is no part of it).
		var dir bidi.Class = bidi.ON
		same := func(r rune) bool {
			p, _ := bidi.LookupRune(r)
			c := p.Class()
			if c == bidi.AL {
				c = bidi.R
			}
			if c != bidi.L && c != bidi.R {
				return true
			}
			if dir == bidi.ON {
				dir = c
			}
			return c == dir
		}
		l := i
		for l > 0 && localRune(rs[l-1]) && same(rs[l-1]) {
			l--
		}
		e := i + 1
		for e < len(rs) && domainRune(rs[e]) {
			e++
		}
		local, domain := string(rs[l:i]), strings.TrimRight(string(rs[i+1:e]), ".")
		if local == "" || domain == "" {
			continue
		}
		out = append(out, canon(local+"@"+domain))
		if k := strings.IndexFunc(local, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }); k > 0 {
			out = append(out, canon(local[k:]+"@"+domain))
		}
	}
	return out
}

// mailboxAddress is the canonical form of a mailbox address a reader parsed: its local
// part unquoted, blanks around the @ and the dots removed (a person reads "noc @ x. example"
// as noc@x.example); "@ours.example", with no local part, is an address too (readers show
// ",@ours.example" so). ok is false for one a person would not read as an address (empty,
// or words with blanks and no @).
func mailboxAddress(a string) (addr string, ok bool) {
	a = strings.TrimSpace(displayForm(a))
	if a == "" {
		return "", false
	}
	at := strings.LastIndexByte(a, '@')
	if q := strings.LastIndexByte(a, '"'); a[0] == '"' && q > at {
		at = -1 // a quoted string and no domain
	}
	if at < 0 {
		// Unqualified: one word, with a letter or digit in it ("." or "--" is no name).
		// A colon, semicolon or comma after it is punctuation to a person: postal-mime and
		// mailparser show "<x1:" as x1: (a group's colon), read as x1.
		a = strings.TrimRight(a, ":;,")
		if strings.ContainsAny(a, " \"<>()") || strings.IndexFunc(a, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0 {
			return "", false
		}
		return canon(a), true
	}
	local, domain := strings.TrimSpace(a[:at]), strings.TrimSpace(a[at+1:])
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(local)-1; i++ {
			if local[i] == '\\' && i+1 < len(local)-1 {
				i++
			}
			b.WriteByte(local[i])
		}
		local = b.String()
	} else {
		local = undot(local)
	}
	domain = undot(domain)
	if strings.IndexFunc(domain, func(r rune) bool { return !domainRune(r) }) >= 0 {
		return "", false // a domain ends where a domain can end: see visibleAddresses
	}
	if strings.Trim(domain, ".") == "" {
		return "", false // "x@." names no domain
	}
	return canon(local + "@" + domain), true
}

// undot removes blanks around dots.
func undot(s string) string {
	for _, r := range []string{" .", ". "} {
		for strings.Contains(s, r) {
			s = strings.ReplaceAll(s, r, ".")
		}
	}
	return s
}

// junkLocal reports whether the local part of canonical address a is empty or holds text
// that no unquoted local part can: blanks, quotes, brackets, commas, colons, an @. Readers build
// such a local part from display text and routes in their error recovery; no rule can name
// it, so the harness judges it by its domain (see [membership]).
func junkLocal(a string) bool {
	at := strings.LastIndexByte(a, '@')
	return at >= 0 && (at == 0 || strings.ContainsAny(a[:at], " \"<>(),:;@[]\\"))
}

// judge is a rules file read by the harness itself: @host, .host and user@host entries and
// their ! exceptions (no scopes), compared in the canonical form above.
type judge struct {
	block, except map[string]bool
	host          string // qualifies an unqualified address, as the policy does
}

func readJudge(path, defaultHost string) (*judge, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	j := &judge{block: map[string]bool{}, except: map[string]bool{}, host: defaultHost}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		entry := strings.Fields(line)[0]
		m := j.block
		if entry[0] == '!' {
			m, entry = j.except, entry[1:]
		}
		switch entry[0] {
		case '@':
			m["@"+canonDomain(entry[1:])] = true
		case '.':
			m["."+canonDomain(entry[1:])] = true
		default:
			m[canon(entry)] = true
		}
	}
	return j, sc.Err()
}

// blocked reports whether the rules block the canonical address a.
func (j *judge) blocked(a string) bool {
	if !strings.Contains(a, "@") {
		a += "@" + j.host
	}
	at := strings.LastIndexByte(a, '@')
	probes := []string{a, a[at:]}
	for d := a[at+1:]; ; {
		k := strings.IndexByte(d, '.')
		if k < 0 {
			break
		}
		d = d[k+1:]
		probes = append(probes, "."+d)
	}
	hit := false
	for _, p := range probes {
		if j.except[p] {
			return false
		}
		hit = hit || j.block[p]
	}
	return hit
}
