package rules

import (
	"strings"
)

// Entries are literal. People who come from qmail's badmailfrom wildcard patches, qregex
// or a spam filter write "*@host", "@*.host" or ".*@host\.example" and would get an entry
// that matches nothing (or only the literal address "*@host"). notLiteral spots those and
// says what to write instead.

// notLiteral returns a message when p, a pattern (an entry without its '!', or a rcpt=
// value), looks like a wildcard or a regular expression, and "" otherwise. prefix is
// written before each suggested pattern ("!" for an exception, "rcpt=" for a scope).
func notLiteral(p, prefix string) string {
	lastAt := -1 // the last '@' outside quotes
	for i, quoted := 0, false; i < len(p); i++ {
		switch c := p[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '@':
			lastAt = i
		}
	}
	regex, star, localStar := false, false, false
	quoted := false
	var prev byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		if quoted {
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
			prev = 0
			continue
		}
		switch c {
		case '"':
			quoted = true
		case '\\':
			regex = true // an escape: atext has no backslash
		case '*':
			star = true
			localStar = localStar || i < lastAt
			regex = regex || prev == '.'
		case '+':
			regex = regex || prev == '.' && (i == 1 || i-2 == lastAt) // ".+" for a whole part
		case '^':
			regex = regex || i == 0 || prev == '['
		}
		prev = c
	}
	if p[len(p)-1] == '$' && !quoted {
		regex = true
	}
	if !regex && !star {
		return ""
	}
	var msg string
	if regex {
		msg = "looks like a regular expression (qregex, a badmailfrom patch): entries are literal"
	} else {
		msg = "'*' is not a wildcard here"
	}
	if s := suggestLiteral(p); s != nil {
		for i := range s {
			s[i] = prefix + s[i]
		}
		return msg + ": write " + strings.Join(s, " and ")
	}
	msg += ": write user@host, @host (every address at host) or .host (every address under it)"
	if star && !regex && localStar {
		msg += `, or quote a local part that holds a real '*' ("a*b"@host)`
	}
	return msg
}

// anyLocal are the local parts of wildcards and expressions that stand for every address.
var anyLocal = map[string]bool{"": true, "*": true, ".*": true, ".+": true, "[^@]*": true, "[^@]+": true, ".*?": true, ".+?": true, "(.*)": true, "(.+)": true}

// domainPrefixes are what wildcards and expressions (backslashes removed) put before a
// domain for its subdomains: sub for its subdomains only, and !sub for the domain and its
// subdomains. Longer ones come first.
var domainPrefixes = []struct {
	p   string
	sub bool
}{
	{"([^.]+.)*", false}, {"([^.]*.)*", false}, {"([^.]+.)+", true},
	{"(.*.)?", false}, {"(.+.)?", false}, {"(.*.)*", false}, {"(.+.)*", false}, {"(.*.)+", true}, {"(.+.)+", true},
	{"[^.]+.", true}, {"[^.]*.", true}, {".*.", true}, {".+.", true}, {"*.", true},
	{".*", false}, {"*", false},
}

// suggestLiteral returns the literal patterns that say what p, a wildcard or an
// expression, most likely meant, or nil when it cannot tell.
func suggestLiteral(p string) []string {
	s := strings.TrimSuffix(strings.TrimPrefix(p, "^"), "$")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	s = b.String()
	local, dom, hasAt := "", s, false
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		local, dom, hasAt = s[:i], s[i+1:], true
	}
	all := !hasAt || anyLocal[local]
	prefixed, sub := false, false
	for _, dp := range domainPrefixes {
		if rest, ok := strings.CutPrefix(dom, dp.p); ok {
			dom, prefixed, sub = rest, true, dp.sub
			break
		}
	}
	if !hasAt && !prefixed { // an expression without '@' matches anywhere in the address
		prefixed = true
	}
	if strings.ContainsAny(dom, "*^$()[]{}|?+\\") {
		return nil
	}
	d, msg := canonHost(dom)
	if msg != "" || (prefixed && d[0] == '[') {
		return nil
	}
	switch {
	case all && prefixed && sub:
		return []string{"." + d}
	case all && prefixed:
		return []string{"@" + d, "." + d}
	case all:
		return []string{"@" + d}
	case prefixed || strings.ContainsAny(local, "*^$()[]{}|?\\"):
		return nil // one user at every subdomain: there is no such entry
	}
	if _, msg := parseLiteral(local + "@" + dom); msg != "" {
		return nil
	}
	return []string{local + "@" + d}
}
