package rules

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"block-forged-sender/internal/address"
)

// Parse reads a rules file from r and calls fn for every entry, in file order. file names
// the source in errors and in [Rule.File]. A malformed line stops the parse with a
// [*SyntaxError]; an error from fn stops it and is returned as it is.
func Parse(r io.Reader, file string, fn func(Rule) error) error {
	return scan(r, file, func(l *parsed) error {
		if !l.isFast {
			return fn(l.rule)
		}
		return fn(l.fast.rule(l.text, file, l.line))
	})
}

// parsed is one entry line as [scan] gives it: a plain entry parsed in place by
// [parseFast] (isFast), or any other as a [Rule] from [parseLine].
type parsed struct {
	line   int
	text   []byte // the line; valid until the next line
	isFast bool
	fast   fastRule
	rule   Rule // File and Line set
}

// rule returns f, parsed from text found at file:line, as a Rule, building as few strings
// as it can: one for the line, and one for the key when it is not the entry as written.
func (f *fastRule) rule(text []byte, file string, line int) Rule {
	s := string(text)
	entry := s[f.entryAt : f.entryAt+len(f.entry)]
	r := Rule{File: file, Line: line, Entry: entry, Except: f.except}
	if f.reason != nil {
		r.Reason = s[f.reasonAt : f.reasonAt+len(f.reason)]
	}
	if n := len(entry) - len(f.key); n >= 0 && entry[n:] == string(f.key) {
		r.Key = entry[n:]
	} else {
		r.Key = string(f.key)
	}
	return r
}

// scan reads a rules file from r and calls fn for every entry line, in file order, as
// [Parse] does; fn must not keep l or its slices.
func scan(r io.Reader, file string, fn func(l *parsed) error) error {
	br := bufio.NewReaderSize(r, MaxLine+2) // a full line plus CRLF fits
	var l parsed
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return &SyntaxError{file, line, fmt.Sprintf("line longer than %d bytes", MaxLine)}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("rules: read %s: %w", file, err)
		}
		if len(b) == 0 && err == io.EOF {
			return nil
		}
		if n := len(b); n > 0 && b[n-1] == '\n' {
			b = b[:n-1]
		}
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		if len(b) > MaxLine {
			return &SyntaxError{file, line, fmt.Sprintf("line longer than %d bytes", MaxLine)}
		}
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF")) // a byte order mark some editors add
		}
		l.line, l.text = line, b
		l.isFast = parseFast(b, &l.fast)
		ok := l.isFast
		if !ok {
			var msg string
			l.rule, ok, msg = parseLine(b)
			if msg != "" {
				return &SyntaxError{file, line, msg}
			}
			l.rule.File, l.rule.Line = file, line
		}
		if ok {
			if ferr := fn(&l); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func skipBlanks(s string, i int) int {
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return i
}

// parseLine parses one line without its line end. ok is false for a blank or comment
// line; msg is non-empty for a malformed one.
func parseLine(b []byte) (r Rule, ok bool, msg string) {
	if bytes.IndexByte(b, 0) >= 0 {
		return r, false, "NUL byte in line"
	}
	i := 0
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	if i == len(b) || b[i] == '#' {
		return r, false, ""
	}
	s := string(b)
	end, msg := scanToken(s, i, "entry")
	if msg != "" {
		return r, false, msg
	}
	r.Entry = s[i:end]
	body := r.Entry
	if body[0] == '!' {
		r.Except = true
		body = body[1:]
		if body == "" {
			return r, false, "exception without an entry"
		}
	}
	if r.Key, msg = parsePattern(body); msg != "" {
		return r, false, fmt.Sprintf("bad entry %q: %s", r.Entry, msg)
	}
	for i = skipBlanks(s, end); i < len(s); i = skipBlanks(s, end) {
		kind := scopeKind(s[i:])
		if kind == "" {
			r.Reason = strings.TrimRight(s[i:], " \t")
			if msg := checkText(r.Reason, "reason", true); msg != "" {
				return r, false, msg
			}
			break
		}
		if end, msg = scanToken(s, i, "scope"); msg != "" {
			return r, false, msg
		}
		tok := s[i:end]
		if !r.Except {
			return r, false, fmt.Sprintf("scope %q on a block entry: scopes are only allowed on an exception (!ENTRY)", tok)
		}
		val := tok[len(kind):]
		if kind == "rcpt=" {
			p, msg := parsePattern(val)
			if msg != "" {
				return r, false, fmt.Sprintf("bad scope %q: %s", tok, msg)
			}
			r.Rcpts = append(r.Rcpts, p)
		} else {
			c, msg := parseClient(val)
			if msg != "" {
				return r, false, fmt.Sprintf("bad scope %q: %s", tok, msg)
			}
			r.Clients = append(r.Clients, c)
		}
	}
	return r, true, ""
}

// scopeKind returns "rcpt=" or "client=" when s starts with it (in any case), else "".
func scopeKind(s string) string {
	for _, k := range [...]string{"rcpt=", "client="} {
		if len(s) >= len(k) && strings.EqualFold(s[:len(k)], k) {
			return k
		}
	}
	return ""
}

// scanToken returns the end of the token starting at s[i]: the first blank outside a
// quoted string. It checks the token's text; what names the token in messages.
func scanToken(s string, i int, what string) (end int, msg string) {
	j, quoted := tokenEnd(s, i, isBlank)
	if quoted {
		return j, "unterminated quoted string in " + what
	}
	return j, checkText(s[i:j], what, false)
}

// tokenEnd returns the end of the token starting at s[i]: the first separator outside a
// quoted string (where a backslash quotes the next byte); quoted reports a quote left open.
func tokenEnd(s string, i int, sep func(byte) bool) (end int, quoted bool) {
	j := i
	for ; j < len(s); j++ {
		c := s[j]
		if quoted {
			if c == '\\' && j+1 < len(s) {
				j++
			} else if c == '"' {
				quoted = false
			}
			continue
		}
		if c == '"' {
			quoted = true
		} else if sep(c) {
			break
		}
	}
	return j, quoted
}

// isPatternSep separates the patterns of a BFS_ALLOW list.
func isPatternSep(c byte) bool { return isBlank(c) || c == ',' || c == '\n' || c == '\r' }

// checkText refuses invalid UTF-8 and control characters, and in a token, Unicode white
// space other than the space a quoted local part may hold (it would only make an entry
// that never matches). A reason may hold tabs.
func checkText(s, what string, reason bool) string {
	i := 0
	for i < len(s) && fastClass[s[i]]&clText != 0 && (reason || s[i] != '\t') {
		i++
	}
	if i == len(s) {
		return "" // printable ASCII (and tabs in a reason): nothing to refuse
	}
	if !utf8.ValidString(s) {
		return "invalid UTF-8 in " + what
	}
	for _, c := range s {
		switch {
		case reason && c == '\t', !reason && c == ' ':
		case unicode.IsControl(c), !reason && unicode.IsSpace(c):
			return fmt.Sprintf("invalid character %U in %s", c, what)
		}
	}
	return ""
}

// parsePattern returns the canonical key of user@host, @host or .host, or a message
// saying what is wrong with it.
func parsePattern(p string) (key, msg string) {
	switch {
	case p == "":
		return "", "empty pattern"
	case p[0] == '.':
		d, msg := canonHost(p[1:])
		return "." + d, msg
	case p[0] == '@':
		d, msg := canonHost(p[1:])
		return "@" + d, msg
	case strings.IndexByte(p, '@') < 0:
		return "", "want user@host, @host or .host"
	}
	a, err := address.ParseAddr(p)
	if err != nil {
		return "", "want user@host, @host or .host"
	}
	if a.Local == "" {
		return "", "empty local part"
	}
	if _, msg := canonHost(a.Domain); msg != "" {
		return "", msg
	}
	return a.Canonical(), ""
}

// canonHost returns the canonical form of a host name or domain literal.
func canonHost(h string) (string, string) {
	if h == "" {
		return "", "empty host"
	}
	if strings.HasSuffix(h, "..") {
		return "", "empty label in host" // one trailing dot is the root; two are a typo
	}
	d := address.CanonicalDomain(h)
	if d == "" {
		return "", "empty host"
	}
	if d[0] == '[' {
		if len(d) < 3 || d[len(d)-1] != ']' || strings.ContainsAny(d[1:len(d)-1], "[]\\") {
			return "", "bad domain literal"
		}
		return d, ""
	}
	for i := 0; i < len(d); i++ {
		if hostSpecial[d[i]] {
			return "", fmt.Sprintf("invalid character %q in host", d[i])
		}
	}
	if d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return "", "empty label in host"
	}
	return d, ""
}

// hostSpecial holds the bytes a host name may not contain.
var hostSpecial = func() (t [256]bool) {
	for _, c := range []byte("@\"(),;:<>\\[]") {
		t[c] = true
	}
	return t
}()

// parseClient returns the canonical form of a client= value: an IP address, a masked CIDR
// prefix (IPv4-mapped forms as IPv4), a host name or a .host suffix.
func parseClient(v string) (string, string) {
	if v == "" {
		return "", "empty client"
	}
	if strings.IndexByte(v, '/') >= 0 {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", "bad CIDR prefix"
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().String(), ""
	}
	if ip, err := netip.ParseAddr(v); err == nil && ip.Zone() == "" {
		return ip.Unmap().String(), ""
	}
	if strings.Trim(v, "0123456789.") == "" || strings.IndexByte(v, ':') >= 0 {
		return "", "bad IP address"
	}
	if v[0] == '.' {
		d, msg := canonHost(v[1:])
		return "." + d, msg
	}
	return canonHost(v)
}

// ParsePatterns parses a list of patterns separated by commas or blanks, as given in an
// environment variable (BFS_ALLOW), in the entry syntax (user@host, @host, .host, no '!'),
// and returns their canonical keys. An empty list gives nil.
func ParsePatterns(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		if isPatternSep(c) {
			i++
			continue
		}
		j, quoted := tokenEnd(s, i, isPatternSep)
		tok := s[i:j]
		if quoted {
			return nil, fmt.Errorf("rules: pattern %q: unterminated quoted string", tok)
		}
		if msg := checkText(tok, "pattern", false); msg != "" {
			return nil, fmt.Errorf("rules: pattern %q: %s", tok, msg)
		}
		if tok[0] == '!' {
			return nil, fmt.Errorf("rules: pattern %q: an exception is not a pattern", tok)
		}
		key, msg := parsePattern(tok)
		if msg != "" {
			return nil, fmt.Errorf("rules: pattern %q: %s", tok, msg)
		}
		out = append(out, key)
		i = j
	}
	return out, nil
}
