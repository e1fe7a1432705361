// Package address finds every address a mail client could show for a sender header field,
// and defines the one canonical form in which rules and candidates are compared.
package address

import (
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address is one address as found in a header field, an envelope or a rules file.
type Address struct {
	Local  string // local part: its unquoted value (quoted-pairs resolved), case kept
	Domain string // domain as found, case kept; "" when there was no @ (unqualified)
}

// ErrEmpty is returned by [ParseAddr] for an empty address.
var ErrEmpty = errors.New("address: empty address")

// ParseAddr reads one address as written in a rules file, an envelope or BFS_ALLOW:
// user@host, "quoted local"@host, <user@host>, or an unqualified user. It splits at the
// last @, since a domain cannot hold one but a quoted local part can.
func ParseAddr(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return Address{}, ErrEmpty
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{Local: unquote(s)}, nil
	}
	return Address{Local: unquote(s[:at]), Domain: s[at+1:]}, nil
}

// unquote returns the value of a quoted local part ("a\"b" -> a"b); other text is returned
// as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Canonical returns the address in the form rules are compared in: "local@domain" with the
// local part lower-cased and the domain in [CanonicalDomain] form, or the lower-cased local
// part alone when the address is unqualified.
func (a Address) Canonical() string {
	local := lower(a.Local)
	if a.Domain == "" {
		return local
	}
	return local + "@" + CanonicalDomain(a.Domain)
}

// String returns the address as "local@domain" (or "local"), case kept.
func (a Address) String() string {
	if a.Domain == "" {
		return a.Local
	}
	return a.Local + "@" + a.Domain
}

// lookupProfile is UTS #46 mapping for lookup (case folding, NFC, width and compatibility
// mapping) as the WHATWG URL standard does it, and so the readers that show a domain:
// without the strict host-name rules that would refuse underscores or long labels, and
// without the hyphen checks (a leading or trailing hyphen, "--" at positions 3-4). A rule
// and a candidate that a reader shows as the same domain must compare equal.
var lookupProfile = sync.OnceValue(func() *idna.Profile {
	return idna.New(
		idna.MapForLookup(),
		idna.Transitional(false),
		idna.CheckHyphens(false),
		idna.StrictDomainName(false),
		idna.VerifyDNSLength(false),
		idna.BidiRule(),
	)
})

// CanonicalDomain returns domain lower-cased, without trailing dots, and, when it is
// internationalised, in lower-case ACE form (RFC 5890), so that @bücher.example and
// @xn--bcher-kva.example compare equal, and @ｏｕｒｓ.example (full-width) is ours.example.
//
// A label that IDNA refuses (a disallowed character, a bidi-rule violation, bad punycode)
// does not stop the others: every label is still mapped as UTS #46 maps it, as readers do
// when they show the name, so "ab--c.ｏｕｒｓ.example" is ab--c.ours.example, a subdomain of
// ours.example. The canonical form of a canonical form is itself.
func CanonicalDomain(domain string) string {
	domain = strings.TrimRight(domain, ".")
	if isASCII(domain) {
		return lower(domain)
	}
	if strings.HasPrefix(domain, "[") { // domain literal: not a name
		return strings.ToLower(domain)
	}
	ace, err := lookupProfile().ToASCII(domain)
	if err != nil {
		// IDNA refuses some upper-case letters that it accepts in lower case (U+04C0
		// and its lower case U+04CF): the lower-cased name may convert cleanly.
		low := strings.ToLower(domain)
		if a, err := lookupProfile().ToASCII(low); err == nil || ace == "" {
			ace = a
		}
		if ace == "" {
			return low
		}
	}
	return strings.TrimRight(ace, ".")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// lower is strings.ToLower without an allocation when s is already lower-case ASCII.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return strings.ToLower(s)
		}
	}
	return s
}
