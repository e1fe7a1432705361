package qmail

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The reply text of the custom-error patch: qmail-smtpd reads at most 255 bytes from fd 6,
// the first of them "D" (a permanent error), and turns every byte outside printable ASCII
// into a space (observed in notqmail 1.09: `554 Unsere Dom  ne ...`; a 300-character reason
// lost its status code). So the text is made to fit: "D", the reason in ASCII and cut to
// MaxCustomErrorReason bytes, and the status code, which is always there.
const (
	CustomErrorStatus    = " (#5.7.1)" // the enhanced status code qmail-smtpd puts last
	MaxCustomErrorText   = 255
	MaxCustomErrorReason = MaxCustomErrorText - 1 - len(CustomErrorStatus) // 245
)

// CustomErrorText turns reason into the text this program writes to fd 6: "D", the reason
// in ASCII, and [CustomErrorStatus], at most [MaxCustomErrorText] bytes. Control bytes
// (line ends and tabs among them) become spaces, so the reply stays one line; a letter with
// diacritics becomes its base letter (Domäne: Domane), a compatibility character its ASCII
// form (…: ...), by Unicode decomposition (NFKD) without the combining marks; any other
// character (ß, €, ½) and any byte that is not UTF-8 becomes '?'. A longer reason is cut to
// [MaxCustomErrorReason] bytes. The log keeps the reason as written.
func CustomErrorText(reason string) []byte {
	b := make([]byte, 1, MaxCustomErrorText)
	b[0] = 'D'
	for i := 0; i < len(reason) && len(b) < 1+MaxCustomErrorReason; {
		r, n := utf8.DecodeRuneInString(reason[i:])
		b = appendASCII(b, reason[i:i+n], r)
		i += n
	}
	b = b[:min(len(b), 1+MaxCustomErrorReason)]
	return append(b, CustomErrorStatus...)
}

// appendASCII appends the ASCII form of the rune r, whose UTF-8 encoding (or one invalid
// byte) is s.
func appendASCII(b []byte, s string, r rune) []byte {
	switch {
	case r < 0x20 || r == 0x7f:
		return append(b, ' ')
	case r < 0x7f:
		return append(b, byte(r))
	case r == utf8.RuneError && len(s) == 1:
		return append(b, '?')
	}
	start := len(b)
	for _, d := range norm.NFKD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, d):
		case d >= 0x20 && d < 0x7f:
			b = append(b, byte(d))
		default:
			return append(b[:start], '?')
		}
	}
	return b // nothing for a combining mark: it belongs to the letter before it
}
