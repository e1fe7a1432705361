package address

import (
	"bytes"
	"encoding/base64"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// RFC 2047 encoded words, decoded the lenient way: a reader that decodes more than the RFC
// allows can show a forged address, so this decoder accepts an encoded word anywhere (inside
// quoted strings and comments, glued to other text), any charset golang.org/x/text knows,
// B text with missing, extra or misplaced padding, and an unknown charset (its bytes are
// kept as they are). It never fails: what is not an encoded word is copied unchanged.

// hasEncodedWord reports whether b may hold an encoded word, so that the common value
// without one costs no decoding at all.
func hasEncodedWord(b []byte) bool {
	return bytes.Contains(b, []byte("=?"))
}

// maxCharsetLen bounds the charset name of an encoded word (RFC 2047 words are at most 75
// bytes long in all), so that a stray "=?" costs a bounded look-ahead.
const maxCharsetLen = 64

// encodedWord is one "=?charset?enc?text?=" found at src[start:end].
type encodedWord struct {
	start, end int
	charset    []byte // as written, without an RFC 2231 "*language" suffix
	b          bool   // B encoding; otherwise Q
	text       []byte
}

// parseEncodedWord reads the encoded word at src[i:], which starts with "=?". The scan stops
// at the first '?' or white space after the text, so every call costs at most the distance
// to the next '?' or blank: decoding a whole value is linear.
func parseEncodedWord(src []byte, i int) (encodedWord, bool) {
	w := encodedWord{start: i}
	j := i + 2
	k := j
	for k < len(src) && k-j <= maxCharsetLen && src[k] != '?' && !isBlankOrCtl(src[k]) {
		k++
	}
	if k >= len(src) || src[k] != '?' || k == j {
		return w, false
	}
	w.charset = src[j:k]
	if star := bytes.IndexByte(w.charset, '*'); star >= 0 {
		w.charset = w.charset[:star]
	}
	if k+2 >= len(src) || src[k+2] != '?' {
		return w, false
	}
	switch src[k+1] {
	case 'B', 'b':
		w.b = true
	case 'Q', 'q':
	default:
		return w, false
	}
	t := k + 3
	e := t
	for e < len(src) && src[e] != '?' && !isBlankOrCtl(src[e]) {
		e++
	}
	if e+1 >= len(src) || src[e] != '?' || src[e+1] != '=' {
		return w, false
	}
	w.text = src[t:e]
	w.end = e + 2
	return w, true
}

func isBlankOrCtl(c byte) bool { return c <= ' ' || c == 0x7f }

func isFWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// decodeEncodedWords appends to dst the text of src with every encoded word decoded. White
// space between two adjacent encoded words is dropped (RFC 2047 section 6.2), and the bytes
// of adjacent words in the same charset are joined before they are converted, so that a
// character or an address split over several words comes out whole.
func decodeEncodedWords(dst, src []byte) []byte {
	var raw []byte // decoded bytes of the current run of words, in runCharset
	var runCharset []byte
	flush := func() {
		if runCharset != nil {
			dst = appendCharset(dst, runCharset, raw)
		}
		raw, runCharset = raw[:0], nil
	}
	last := 0 // src[last:] is not yet copied
	prevEnd := -1
	for i := 0; i+1 < len(src); {
		if src[i] != '=' || src[i+1] != '?' {
			i++
			continue
		}
		w, ok := parseEncodedWord(src, i)
		if !ok {
			i++
			continue
		}
		adjacent := prevEnd >= 0 && onlyFWS(src[prevEnd:i])
		if !adjacent || !bytes.EqualFold(w.charset, runCharset) {
			flush()
			if !adjacent {
				dst = append(dst, src[last:i]...)
			}
		}
		if runCharset == nil {
			runCharset = w.charset
		}
		if w.b {
			raw = appendBase64(raw, w.text)
		} else {
			raw = appendQ(raw, w.text)
		}
		prevEnd, last = w.end, w.end
		i = w.end
	}
	flush()
	return append(dst, src[last:]...)
}

func onlyFWS(b []byte) bool {
	for _, c := range b {
		if !isFWS(c) {
			return false
		}
	}
	return true
}

// appendQ decodes Q text (RFC 2047 section 4.2): '_' is a space, =XX a byte; a '=' not
// followed by two hex digits is kept as it is.
func appendQ(dst, text []byte) []byte {
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
			dst = append(dst, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// appendBase64 decodes B text leniently: characters outside the alphabet are skipped (the
// URL-safe '-' and '_' count as '+' and '/'), '=' ends a quantum wherever it is, and a
// quantum cut short keeps the bytes it has.
func appendBase64(dst, text []byte) []byte {
	var q [4]byte
	n := 0
	piece := func() {
		if n == 1 { // six bits make no byte
			n = 0
			return
		}
		var out [3]byte
		m, err := base64.RawStdEncoding.Decode(out[:], q[:n])
		if err == nil {
			dst = append(dst, out[:m]...)
		}
		n = 0
	}
	for _, c := range text {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
		case c == '-':
			c = '+'
		case c == '_':
			c = '/'
		case c == '=':
			piece()
			continue
		default:
			continue
		}
		q[n] = c
		n++
		if n == 4 {
			piece()
		}
	}
	piece()
	return dst
}

// appendCharset converts raw from charset to UTF-8 and appends it to dst. UTF-8, ASCII and
// any charset golang.org/x/text does not know are appended as they are (the scan reads
// bytes, so an unknown charset still shows its ASCII addresses).
func appendCharset(dst, charset, raw []byte) []byte {
	enc := lookupCharset(charset)
	if enc == nil {
		return append(dst, raw...)
	}
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		return append(dst, raw...)
	}
	return append(dst, out...)
}

// lookupCharset returns the decoder for a charset name, or nil when the bytes are to be
// kept as they are.
func lookupCharset(charset []byte) encoding.Encoding {
	name := strings.ToLower(string(charset))
	switch name {
	case "utf-8", "utf8", "us-ascii", "ascii", "":
		return nil
	}
	if enc, err := htmlindex.Get(name); err == nil && enc != nil {
		return enc
	}
	for _, idx := range []*ianaindex.Index{ianaindex.MIME, ianaindex.IANA} {
		if enc, err := idx.Encoding(name); err == nil && enc != nil {
			return enc
		}
	}
	return nil
}
