package address

import (
	"bytes"
	"encoding/base64"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
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

// maxCharsetLen bounds the charset name of an encoded word, RFC 2231 language suffix
// included ("utf-8*en", or a language tag of any length a lenient reader still accepts).
// It only bounds the look-ahead from a stray "=?": the scan stops at the first '?' anyway.
const maxCharsetLen = 256

// encodedWord is one "=?charset?enc?text?=" found at src[start:end].
type encodedWord struct {
	start, end int
	charset    []byte // as written, without an RFC 2231 "*language" suffix
	b          bool   // B encoding; otherwise Q
	text       []byte
}

// wordParser finds encoded words the lenient way: the charset may have blanks around it
// and a language suffix of any length, and the encoded text runs to the first "?=", blanks
// and '?' included (Python's decode_header, jsmime and libmime accept both). It remembers
// where the next "?=" is, so that decoding a whole value stays linear however many "=?"
// it holds.
type wordParser struct {
	src     []byte
	nextEnd int // index of the next "?=" at or after the last search; -1: none; -2: not searched
	from    int // where that search started
}

// endAt returns the index of the first "?=" at or after i, or -1.
func (p *wordParser) endAt(i int) int {
	if p.nextEnd == -2 || i < p.from || p.nextEnd >= 0 && p.nextEnd < i {
		p.from = i
		p.nextEnd = -1
		if k := bytes.Index(p.src[i:], []byte("?=")); k >= 0 {
			p.nextEnd = i + k
		}
	}
	return p.nextEnd
}

// parse reads the encoded word at src[i:], which starts with "=?".
func (p *wordParser) parse(i int) (encodedWord, bool) {
	src := p.src
	w := encodedWord{start: i}
	j := i + 2
	k := j
	for k < len(src) && k-j <= maxCharsetLen && src[k] != '?' && (src[k] == ' ' || src[k] == '\t' || !isBlankOrCtl(src[k])) {
		k++
	}
	if k >= len(src) || src[k] != '?' {
		return w, false
	}
	w.charset = bytes.Trim(src[j:k], " \t")
	if star := bytes.IndexByte(w.charset, '*'); star >= 0 {
		w.charset = w.charset[:star]
	}
	if len(w.charset) == 0 || k+2 >= len(src) || src[k+2] != '?' {
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
	e := p.endAt(t)
	if e < 0 {
		// Python's policy.default takes the "?=" that the '?' before the text and a text
		// beginning "=XX" make for the end of the word, finds no other, and so decodes the
		// text up to the end of the value: "=?utf-8?q?=63eo=40ours.example" shows as
		// "ceo@ours.example" (found by FuzzReaders).
		if t+2 < len(src) && src[t] == '=' && isHex(src[t+1]) && isHex(src[t+2]) {
			w.text, w.end = src[t:], len(src)
			return w, true
		}
		return w, false
	}
	w.text = src[t:e]
	w.end = e + 2
	return w, true
}

func isBlankOrCtl(c byte) bool { return c <= ' ' || c == 0x7f }

func isFWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// decodeOptions chooses one reading of the encoded words of a value.
type decodeOptions struct {
	// keepFWS keeps the white space between adjacent encoded words, as Python's
	// policy.default shows it, instead of dropping it as RFC 2047 section 6.2 says.
	keepFWS bool
	// alt picks the alt-th decoding of a charset that readers decode in more than one
	// way (see [charsetReadings]); 0 is the first.
	alt int
	// lowBytes reads 8-bit bytes inside Q text as jsmime does: the header is decoded as
	// UTF-8 first (a bad byte is U+FFFD), and each character of the encoded text then
	// stands for the low byte of its code point (U+0172, bytes C5 B2, is 'r').
	lowBytes bool
	// padStop ends B text at its first '=', as Python and mutt do, instead of reading on
	// after padding in the middle ("Y2VvQG9=cnMu" is ceo@o to them, ceo@ors. otherwise).
	padStop bool
	// padZero reads such a '=' as 'A' (six zero bits) and goes on, as postal-mime does
	// ("Y2VvQG9=cnMu" is ceo@o@rs. to it).
	padZero bool
}

// decodeResult says which other readings [decodeEncodedWords] would give.
type decodeResult struct {
	joinedFWS bool // white space between adjacent words was dropped
	eightBit  bool // a Q text holds 8-bit bytes
	readings  int  // the most decodings any charset of the value has
	midPad    bool // a B text goes on after a '='
}

// decodeEncodedWords appends to dst the text of src with every encoded word decoded. White
// space between two adjacent encoded words is dropped (RFC 2047 section 6.2) unless
// opt.keepFWS, and the bytes of adjacent words in the same charset are joined before they
// are converted, so that a character or an address split over several words comes out
// whole.
func decodeEncodedWords(dst, src []byte, opt decodeOptions) ([]byte, decodeResult) {
	var res decodeResult
	var raw []byte // decoded bytes of the current run of words, in runCharset
	var runCharset []byte
	flush := func() {
		if runCharset != nil {
			var n int
			dst, n = appendCharset(dst, runCharset, raw, opt.alt)
			res.readings = max(res.readings, n)
		}
		raw, runCharset = raw[:0], nil
	}
	p := wordParser{src: src, nextEnd: -2}
	last := 0 // src[last:] is not yet copied
	prevEnd := -1
	for i := 0; i+1 < len(src); {
		if src[i] != '=' || src[i+1] != '?' {
			i++
			continue
		}
		w, ok := p.parse(i)
		if !ok {
			i++
			continue
		}
		adjacent := prevEnd >= 0 && onlyFWS(src[prevEnd:i])
		if adjacent && i > prevEnd {
			res.joinedFWS = true
			if opt.keepFWS {
				adjacent = false
			}
		}
		if !adjacent || !bytes.EqualFold(w.charset, runCharset) {
			flush()
			if !adjacent {
				dst = append(dst, src[last:i]...)
			}
		}
		if runCharset == nil {
			runCharset = w.charset
		}
		switch {
		case w.b:
			if k := bytes.IndexByte(w.text, '='); k >= 0 && bytes.ContainsFunc(w.text[k:], isBase64Rune) {
				res.midPad = true
				if opt.padStop {
					raw = appendBase64(raw, w.text[:k])
					break
				}
				if opt.padZero {
					t := bytes.Clone(w.text)
					last := bytes.LastIndexFunc(t, isBase64Rune)
					for i := k; i < last; i++ {
						if t[i] == '=' {
							t[i] = 'A'
						}
					}
					raw = appendBase64(raw, t)
					break
				}
			}
			raw = appendBase64(raw, w.text)
		case !isASCIIBytes(w.text):
			res.eightBit = true
			if opt.lowBytes {
				raw = appendQ(raw, appendLowBytes(nil, w.text))
				break
			}
			fallthrough
		default:
			raw = appendQ(raw, w.text)
		}
		prevEnd, last = w.end, w.end
		i = w.end
	}
	flush()
	return append(dst, src[last:]...), res
}

func onlyFWS(b []byte) bool {
	for _, c := range b {
		if !isFWS(c) {
			return false
		}
	}
	return true
}

// appendLowBytes appends, for each character of b read as UTF-8 (a bad byte is U+FFFD),
// the low byte of its code point.
func appendLowBytes(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		dst = append(dst, byte(r))
		i += size
	}
	return dst
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
func isBase64Rune(r rune) bool {
	return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '+' || r == '/'
}

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

// appendCharset converts raw from charset to UTF-8 in its alt-th reading and appends it
// to dst; n is the number of readings the charset has (see [charsetReadings]). A decoder
// that fails keeps the bytes as they are.
func appendCharset(dst, charset, raw []byte, alt int) (out []byte, n int) {
	decs := charsetReadings(charset)
	if len(decs) == 0 {
		return append(dst, raw...), 1
	}
	d := decs[min(alt, len(decs)-1)]
	if d == nil {
		return append(dst, raw...), len(decs)
	}
	b, err := d.NewDecoder().Bytes(raw)
	if err != nil {
		return append(dst, raw...), len(decs)
	}
	return append(dst, b...), len(decs)
}

// lookupCharset returns the decoder for a charset name, or nil when the bytes are to be
// kept as they are (UTF-8, ASCII, or a charset we do not know: its ASCII letters, and so
// any address written in them, still show). It is the first of [charsetReadings].
func lookupCharset(charset []byte) encoding.Encoding {
	if decs := charsetReadings(charset); len(decs) > 0 {
		return decs[0]
	}
	return nil
}

// charsetReadings returns every decoding readers give a charset name, the one most of them
// use first; nil stands for the bytes as they are. An empty result means the bytes as they
// are and nothing else (UTF-8, ASCII).
//
// A name with several readings: "utf-16" and "utf-32" without a byte-order mark (the
// WHATWG encoding standard, and so Thunderbird, reads UTF-16 little-endian; others read it
// big-endian, as RFC 2781 says). A name we do not know at all could be one a reader knows:
// it is read as its bytes, as Latin-1 (each byte one character, as postal-mime shows an
// unknown charset), and as UTF-7, UTF-16 and UTF-32 in both byte orders and EBCDIC, the
// encodings in which an address does not show in the raw bytes.
//
// The names are looked up in a table of our own rather than in x/text's htmlindex and
// ianaindex: those build their indexes at package initialisation, which every message,
// one process each under qmail, would pay for (about 0.3 ms).
func charsetReadings(charset []byte) []encoding.Encoding {
	var buf [maxCharsetLen + 1]byte
	key := appendCharsetKey(buf[:0], charset)
	switch string(key) {
	case "utf8", "usascii", "ascii", "":
		return nil
	}
	t := charsets()
	if e, ok := t.single[string(key)]; ok {
		return e
	}
	if r, ok := t.multi[string(key)]; ok {
		return r
	}
	return t.unknown
}

// charsetKey is a charset name folded for look-up: lower case, without the RFC 2231
// language suffix ("utf-8*en") and without '-', '_', ' ' and '.', so that ISO-8859-1,
// iso_8859-1 and ISO8859-1 meet.
func charsetKey(charset []byte) string { return string(appendCharsetKey(nil, charset)) }

// appendCharsetKey appends the folded form of charset to dst (see [charsetKey]).
func appendCharsetKey(dst, charset []byte) []byte {
	if i := bytes.IndexByte(charset, '*'); i >= 0 {
		charset = charset[:i]
	}
	for _, c := range charset {
		switch {
		case c == '-' || c == '_' || c == ' ' || c == '.' || c == ':':
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// charsetTable is what [charsets] builds once per process.
type charsetTable struct {
	single  map[string][]encoding.Encoding // one decoding
	multi   map[string][]encoding.Encoding // several (see charsetReadings)
	unknown []encoding.Encoding            // the readings of a name not in the table
}

// charsets maps folded charset names (see [charsetKey]) to their decoders: every single-byte
// charset of x/text's charmap under its own name and the usual aliases, the CJK, UTF-16,
// UTF-32 and UTF-7 encodings and ISO-2022 variants mail uses, and EBCDIC code pages. It is
// built on first use, never at start-up.
var charsets = sync.OnceValue(func() *charsetTable {
	m := map[string]encoding.Encoding{}
	for _, e := range charmap.All {
		if cm, ok := e.(*charmap.Charmap); ok {
			m[charsetKey([]byte(cm.String()))] = cm // "ISO 8859-1" -> iso88591
		}
	}
	alias := func(e encoding.Encoding, names ...string) {
		for _, n := range names {
			m[charsetKey([]byte(n))] = e
		}
	}
	// As in web mail (the WHATWG encoding standard), Latin-1 and Latin-5 text is decoded
	// as their Windows supersets: 0x80-0x9f show as letters there, not as controls.
	alias(charmap.Windows1252, "iso-8859-1", "latin1", "l1", "iso-ir-100", "cp819", "ibm819", "iso_8859-1:1987", "us-ascii-8bit")
	alias(charmap.ISO8859_2, "latin2", "l2", "iso-ir-101")
	alias(charmap.ISO8859_3, "latin3", "l3")
	alias(charmap.ISO8859_4, "latin4", "l4")
	alias(charmap.ISO8859_5, "cyrillic", "iso-ir-144")
	alias(charmap.ISO8859_6, "arabic", "asmo-708", "ecma-114")
	alias(charmap.ISO8859_7, "greek", "greek8", "elot_928", "ecma-118")
	alias(charmap.ISO8859_8, "hebrew", "visual", "iso-8859-8-i", "iso-8859-8-e", "iso-ir-138")
	alias(charmap.Windows1254, "iso-8859-9", "latin5", "l5", "iso-ir-148")
	alias(charmap.ISO8859_10, "latin6", "l6")
	alias(charmap.ISO8859_13, "latin7")
	alias(charmap.ISO8859_14, "latin8")
	alias(charmap.ISO8859_15, "latin9", "latin0", "l9")
	alias(charmap.ISO8859_16, "latin10")
	alias(charmap.Windows874, "tis-620", "cp874", "iso-8859-11", "dos-874")
	for i, e := range []encoding.Encoding{charmap.Windows1250, charmap.Windows1251, charmap.Windows1252,
		charmap.Windows1253, charmap.Windows1254, charmap.Windows1255, charmap.Windows1256,
		charmap.Windows1257, charmap.Windows1258} {
		n := "125" + string(rune('0'+i))
		alias(e, "cp"+n, "x-cp"+n, "ms-"+n)
	}
	alias(charmap.CodePage437, "cp437", "ibm437", "437")
	alias(charmap.CodePage850, "cp850", "ibm850", "850")
	alias(charmap.CodePage852, "cp852", "ibm852", "852")
	alias(charmap.CodePage866, "cp866", "ibm866", "866")
	alias(charmap.KOI8R, "koi8-r", "koi8", "cskoi8r")
	alias(charmap.KOI8U, "koi8-u", "koi8-ru")
	alias(charmap.Macintosh, "mac", "macintosh", "x-mac-roman", "csmacintosh")
	alias(charmap.MacintoshCyrillic, "x-mac-cyrillic", "x-mac-ukrainian")
	alias(japanese.ShiftJIS, "shift_jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j", "cp932", "ms932")
	alias(japanese.EUCJP, "euc-jp", "x-euc-jp", "cseucpkdfmtjapanese")
	alias(japanese.ISO2022JP, "iso-2022-jp", "csiso2022jp")
	alias(korean.EUCKR, "euc-kr", "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601", "ksc_5601", "korean", "cp949", "windows-949", "uhc", "iso-ir-149", "csksc56011987")
	alias(simplifiedchinese.GBK, "gbk", "gb2312", "cp936", "ms936", "windows-936", "euc-cn", "x-gbk", "csgb2312", "chinese", "gb_2312-80", "iso-ir-58")
	alias(simplifiedchinese.GB18030, "gb18030")
	alias(simplifiedchinese.HZGB2312, "hz-gb-2312", "hz")
	alias(traditionalchinese.Big5, "big5", "big5-hkscs", "cn-big5", "x-x-big5", "csbig5", "cp950")
	alias(unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), "utf-16be", "unicodefffe", "ucs-2be")
	alias(unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "utf-16le", "ucs-2le")
	multi := map[string][]encoding.Encoding{}
	// Charsets that the web's decoders (WHATWG: Thunderbird, postal-mime; iconv-lite:
	// mailparser) do not know: those readers show the bytes as they are, so both readings.
	rare := func(e encoding.Encoding, names ...string) {
		for _, n := range names {
			multi[charsetKey([]byte(n))] = []encoding.Encoding{e, nil}
		}
	}
	rare(utf7{}, "utf-7", "unicode-1-1-utf-7", "csunicode11utf7")
	// Latin-1 and Latin-5 as the web reads them (their Windows supersets) and as Python
	// and iconv do: 0x80-0x9f are C1 controls there, which a renderer draws as nothing
	// (found by FuzzReaders: Python shows "examR\xc1\x9dple" as examRÁple).
	for _, n := range []string{"iso-8859-1", "latin1", "l1", "iso-ir-100", "cp819", "ibm819", "iso_8859-1:1987", "iso8859-1"} {
		multi[charsetKey([]byte(n))] = []encoding.Encoding{charmap.Windows1252, charmap.ISO8859_1}
	}
	for _, n := range []string{"iso-8859-9", "latin5", "l5", "iso-ir-148", "iso8859-9"} {
		multi[charsetKey([]byte(n))] = []encoding.Encoding{charmap.Windows1254, charmap.ISO8859_9}
	}
	// ISO-2022-JP's extensions start with the same designations; what x/text cannot
	// decode is kept as bytes. ISO-2022-KR and -CN shift into a double-byte set.
	rare(japanese.ISO2022JP, "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-2004", "iso-2022-jp-ext", "csiso2022jp2")
	rare(iso2022Shift{korean.EUCKR}, "iso-2022-kr", "csiso2022kr")
	rare(iso2022Shift{simplifiedchinese.GBK}, "iso-2022-cn", "iso-2022-cn-ext", "csiso2022cn")
	// EBCDIC: x/text has code pages 037, 1047 and 1140; the other Latin-1 EBCDIC pages
	// (500, 273, 277...) share their letters, digits, '.', '-' and mostly '@' with 037.
	rare(charmap.CodePage037, "cp037", "ibm037", "ibm-037", "ebcdic-cp-us", "ebcdic-cp-ca", "ebcdic-cp-wt", "ebcdic-cp-nl", "csibm037",
		"cp500", "ibm500", "ebcdic-cp-be", "ebcdic-cp-ch", "ebcdic-international-500", "ebcdic", "cp273", "ibm273", "cp1026")
	rare(charmap.CodePage1047, "cp1047", "ibm1047", "ibm-1047")
	rare(charmap.CodePage1140, "cp1140", "ibm01140", "ibm1140", "ccsid01140", "ebcdic-us-37+euro")
	le16 := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	be16 := unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	le32 := utf32.UTF32(utf32.LittleEndian, utf32.UseBOM)
	be32 := utf32.UTF32(utf32.BigEndian, utf32.UseBOM)
	for _, n := range []string{"utf-16", "unicode", "ucs-2", "csunicode", "iso-10646-ucs-2"} {
		multi[charsetKey([]byte(n))] = []encoding.Encoding{le16, be16}
	}
	for _, n := range []string{"utf-32", "ucs-4", "iso-10646-ucs-4"} {
		multi[charsetKey([]byte(n))] = []encoding.Encoding{le32, be32, nil}
	}
	rare(utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM), "utf-32be", "ucs-4be")
	rare(utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM), "utf-32le", "ucs-4le")
	single := make(map[string][]encoding.Encoding, len(m))
	for k, e := range m {
		if _, ok := multi[k]; !ok { // a name with several readings has them all
			single[k] = []encoding.Encoding{e}
		}
	}
	return &charsetTable{single: single, multi: multi,
		unknown: []encoding.Encoding{nil, charmap.ISO8859_1, utf7{}, le16, be16, le32, be32, charmap.CodePage037}}
})
