package rules

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"block-forged-sender/internal/address"
)

// Parse reads a rules file from r and calls fn for every entry, in file order. file names
// the source in errors and in [Rule.File]; a :rcpthosts line is expanded into its rules by
// reading qmail's control files (a relative control= directory is taken from file's
// directory). Every malformed line is reported, in an [*ErrorList] returned at the end;
// fn is still called for the good lines. An error from fn stops the parse and is
// returned as it is.
func Parse(r io.Reader, file string, fn func(Rule) error) error {
	var errs ErrorList
	err := scan(r, file, &errs, func(l *parsed) error {
		switch {
		case l.isFast:
			return fn(l.fast.rule(l.text, file, l.line))
		case l.hosts != nil:
			_, _, err := expandHosts(file, l, &errs, nil, func(r *Rule) error { return fn(*r) })
			return err
		}
		return fn(l.rule)
	})
	if err != nil {
		return err
	}
	return errs.err()
}

// parsed is one entry line as [scan] gives it: a plain entry parsed in place by
// [parseFast] (isFast), or any other as a [Rule] from [parseLine], with hosts set for a
// :rcpthosts line.
type parsed struct {
	line   int
	text   []byte // the line; valid until the next line
	isFast bool
	fast   fastRule
	rule   Rule       // File and Line set
	hosts  *directive // a :rcpthosts line; rule holds its Entry and Reason
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

// lineReader splits a rules text into lines as [scan] reads them: without the line end
// (LF or CRLF), and the first without a byte order mark.
type lineReader struct {
	br   *bufio.Reader
	line int // number of the line last returned
	eof  bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, MaxLine+2)} // a full line plus CRLF fits
}

// next returns the next line, valid until the next call. long reports a line longer
// than MaxLine, whose bytes are skipped; ok is false at the end of the text.
func (lr *lineReader) next() (b []byte, long, ok bool, err error) {
	if lr.eof {
		return nil, false, false, nil
	}
	b, err = lr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		lr.line++
		for err == bufio.ErrBufferFull { // skip the rest of the line
			_, err = lr.br.ReadSlice('\n')
		}
		if err == io.EOF {
			lr.eof, err = true, nil
		}
		return nil, err == nil, err == nil, err
	}
	if err == io.EOF {
		lr.eof, err = true, nil
		if len(b) == 0 {
			return nil, false, false, nil
		}
	}
	if err != nil {
		return nil, false, false, err
	}
	lr.line++
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) > MaxLine {
		return nil, true, true, nil
	}
	if lr.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\uFEFF")) // a byte order mark some editors add
	}
	return b, false, true, nil
}

// scan reads a rules file from r and calls fn for every entry line, in file order; fn
// must not keep l or its slices. A malformed line is added to errs and skipped, so that
// one reading finds every mistake; an error from fn or from reading stops the scan and
// is returned.
func scan(r io.Reader, file string, errs *ErrorList, fn func(l *parsed) error) error {
	lr := newLineReader(r)
	var l parsed
	for {
		b, long, ok, err := lr.next()
		if err != nil {
			return fmt.Errorf("rules: read %s: %w", file, err)
		}
		if !ok {
			return nil
		}
		if long {
			errs.add(file, lr.line, fmt.Sprintf("line longer than %d bytes", MaxLine))
			continue
		}
		l.line, l.text, l.hosts = lr.line, b, nil
		l.isFast = parseFast(b, &l.fast)
		if !l.isFast {
			var msg string
			l.rule, l.hosts, msg = parseLine(b)
			if msg != "" {
				errs.add(file, lr.line, msg)
				continue
			}
			if l.rule.Entry == "" {
				continue // blank or comment
			}
			l.rule.File, l.rule.Line = file, lr.line
		}
		if err := fn(&l); err != nil {
			return err
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

// parseLine parses one line without its line end. It returns a zero Rule for a blank or
// comment line, hosts for a :rcpthosts line (the Rule then holds only Entry and Reason),
// and a non-empty msg for a malformed line.
func parseLine(b []byte) (r Rule, hosts *directive, msg string) {
	if bytes.IndexByte(b, 0) >= 0 {
		return r, nil, "NUL byte in line"
	}
	i := 0
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	if i == len(b) || b[i] == '#' {
		return r, nil, ""
	}
	s := string(b)
	end, msg := scanToken(s, i, "entry")
	if msg != "" {
		return r, nil, msg
	}
	r.Entry = s[i:end]
	if strings.HasPrefix(r.Entry, ":") || strings.HasPrefix(r.Entry, "!:") {
		return parseDirective(s, r.Entry, end)
	}
	body, prefix := r.Entry, ""
	if body[0] == '!' {
		r.Except = true
		body, prefix = body[1:], "!"
		if body == "" {
			return Rule{}, nil, "exception without an entry"
		}
	}
	if r.Key, msg = parsePatternAs(body, prefix); msg != "" {
		return Rule{}, nil, fmt.Sprintf("bad entry \"%s\": %s", r.Entry, msg)
	}
	for i = skipBlanks(s, end); i < len(s); i = skipBlanks(s, end) {
		name, ok := optionName(s[i:])
		if !ok {
			r.Reason = strings.TrimRight(s[i:], " \t")
			if msg := checkReason(r.Reason, r.Except); msg != "" {
				return Rule{}, nil, msg
			}
			break
		}
		if end, msg = scanToken(s, i, "scope"); msg != "" {
			return Rule{}, nil, msg
		}
		tok := s[i:end]
		kind := strings.ToLower(name)
		if kind != "rcpt" && kind != "client" {
			return Rule{}, nil, unknownScope(tok, name, r.Except)
		}
		if !r.Except {
			return Rule{}, nil, fmt.Sprintf("scope \"%s\" on a block entry: scopes are only allowed on an exception (!ENTRY)", tok)
		}
		val := tok[len(name)+1:]
		if kind == "rcpt" {
			p, msg := parsePatternAs(val, "rcpt=")
			if msg != "" {
				return Rule{}, nil, fmt.Sprintf("bad scope \"%s\": %s", tok, msg)
			}
			r.Rcpts = append(r.Rcpts, p)
		} else {
			c, msg := parseClient(val)
			if msg != "" {
				return Rule{}, nil, fmt.Sprintf("bad scope \"%s\": %s", tok, msg)
			}
			r.Clients = append(r.Clients, c)
		}
	}
	return r, nil, ""
}

// optionName returns NAME when s starts with NAME= (NAME: ASCII letters, digits and
// hyphens): a scope, an option of a directive, or a mistake; never the start of a reason.
func optionName(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			return s[:i], i > 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return "", false
		}
	}
	return "", false
}

// scopeNames are the scopes of an exception; scopeAliases, names people may write for
// them that are too far from them in spelling to be found by [nearest].
var (
	scopeNames   = []string{"rcpt", "client"}
	scopeAliases = map[string]string{"recipient": "rcpt", "to": "rcpt", "rcptto": "rcpt", "ip": "client", "host": "client", "from": "client"}
)

// unknownScope is the message for tok, which starts with NAME= but is no scope.
func unknownScope(tok, name string, except bool) string {
	if !except {
		return fmt.Sprintf("\"%s\" is not a scope: a block entry takes none (rcpt= and client= go on an exception, !ENTRY), and a reason may not start with NAME= (reword it)", tok)
	}
	if s := nearest(name, scopeNames, scopeAliases); s != "" {
		return fmt.Sprintf("unknown scope \"%s\": did you mean %s=? (the scopes are rcpt= and client=)", tok, s)
	}
	return fmt.Sprintf("unknown scope \"%s\": the scopes are rcpt= and client=, and a reason may not start with NAME= (reword it)", tok)
}

// checkReason checks a reason's text. An exception's reason may not hold a word that
// looks like a scope (NAME=..., a word starting with '=', rcpt:... or client:...): a scope
// mistyped, put after the first word of the reason, or written with blanks around its
// '=' would otherwise be read as text, and the exception would hold for every recipient
// and client.
func checkReason(reason string, except bool) string {
	if msg := checkText(reason, "reason", true); msg != "" || !except {
		return msg
	}
	for i := 0; i < len(reason); {
		j := i
		for j < len(reason) && !isBlank(reason[j]) {
			j++
		}
		if tok := reason[i:j]; tok != "" && scopeLike(tok) {
			return fmt.Sprintf("the reason holds \"%s\", which looks like a scope: scopes come right after the entry, as NAME=VALUE without blanks, and an exception's reason may hold no NAME=, '=' or rcpt:/client: word (reword it)", tok)
		}
		i = j + 1
	}
	return ""
}

// scopeLike reports whether tok, a word of an exception's reason, looks like a scope.
func scopeLike(tok string) bool {
	if tok[0] == '=' {
		return true
	}
	if _, ok := optionName(tok); ok {
		return true
	}
	for _, k := range scopeNames {
		if len(tok) > len(k) && strings.EqualFold(tok[:len(k)], k) && tok[len(k)] == ':' {
			return true
		}
	}
	return false
}

// nearest returns the name in names closest in spelling to s (at most two edits, and
// fewer than the name's length), or the one aliases gives for s, or "".
func nearest(s string, names []string, aliases map[string]string) string {
	s = strings.ToLower(s)
	if a, ok := aliases[s]; ok {
		return a
	}
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD && d < len(n) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b: insertions,
// deletions, substitutions and transpositions of adjacent bytes. It is meant for short
// names; a longer a is simply far from everything.
func editDistance(a, b string) int {
	if len(a) > 32 || len(b) > 32 {
		return max(len(a), len(b))
	}
	var d [33][33]int
	for i := 0; i <= len(a); i++ {
		d[i][0] = i
	}
	for j := 0; j <= len(b); j++ {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
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
// saying what is wrong with it (and, for a wildcard or a regular expression, what to
// write instead).
func parsePattern(p string) (key, msg string) { return parsePatternAs(p, "") }

// parsePatternAs is [parsePattern] for a pattern written after prefix ("!" or "rcpt="),
// which the suggestions for a wildcard repeat.
func parsePatternAs(p, prefix string) (key, msg string) {
	if p == "" {
		return "", "empty pattern"
	}
	if msg := notLiteral(p, prefix); msg != "" {
		return "", msg
	}
	return parseLiteral(p)
}

// parseLiteral is [parsePattern] without the look for wildcards.
func parseLiteral(p string) (key, msg string) {
	switch {
	case p == "":
		return "", "empty pattern"
	case p[0] == '.':
		if strings.HasPrefix(p, ".[") {
			return "", "a domain literal has no subdomains: write @" + p[1:]
		}
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
		if c := d[i]; c < utf8.RuneSelf && !hostByte[c] {
			return "", fmt.Sprintf("invalid character %q in host", c)
		}
	}
	if d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return "", "empty label in host"
	}
	for l := range strings.SplitSeq(d, ".") {
		if len(l) > 63 {
			show := l
			if len(show) > 24 {
				show = show[:20] + "..."
			}
			return "", fmt.Sprintf("label %q is %d octets long (in ACE form), and a DNS label holds at most 63: a dot is missing?", show, len(l))
		}
	}
	if len(d) > 253 {
		return "", fmt.Sprintf("host is %d octets long (in ACE form), and a domain name holds at most 253", len(d))
	}
	return d, ""
}

// hostByte holds the ASCII bytes a host name may contain: letters, digits, '-', '_' (some
// names have one) and the dot. Anything else (a '*', a '$', a '\', a '@') is a mistake
// that could only give an entry that never matches.
var hostByte = func() (t [utf8.RuneSelf]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") {
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
	if strings.IndexByte(v, '*') >= 0 {
		if rest, ok := strings.CutPrefix(v, "*."); ok && strings.IndexByte(rest, '*') < 0 {
			return "", "'*' is not a wildcard here: write client=." + rest + " for every host under " + rest
		}
		return "", "'*' is not a wildcard here: write an IP, a CIDR prefix, a host or .host for every host under it"
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
		if strings.HasPrefix(v, ".[") {
			return "", "a domain literal has no subdomains"
		}
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
