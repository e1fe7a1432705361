package address

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// Decoders x/text does not have, for charsets readers still decode: UTF-7 (RFC 2152:
// "+AEA-" is "@") and the ISO-2022 variants that shift into a double-byte set (KR, CN).
// Each decodes its whole input at once; they only read header words, which are short.

var errNoEncoder = errors.New("address: decode only")

// wholeDecoder adapts a function that decodes a complete input to transform.Transformer.
type wholeDecoder func(dst, src []byte) []byte

func (f wholeDecoder) Reset() {}

func (f wholeDecoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	if !atEOF {
		return 0, 0, transform.ErrShortSrc
	}
	out := f(nil, src)
	if len(out) > len(dst) {
		return 0, 0, transform.ErrShortDst
	}
	return copy(dst, out), len(src), nil
}

type failEncoder struct{}

func (failEncoder) Reset() {}
func (failEncoder) Transform(dst, src []byte, atEOF bool) (int, int, error) {
	return 0, 0, errNoEncoder
}

// utf7 is UTF-7 (RFC 2152), decode only.
type utf7 struct{}

func (utf7) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: wholeDecoder(decodeUTF7)}
}
func (utf7) NewEncoder() *encoding.Encoder { return &encoding.Encoder{Transformer: failEncoder{}} }

func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// decodeUTF7 appends the UTF-8 form of UTF-7 src to dst: "+" starts base64 of UTF-16
// (big-endian) that runs to the first byte outside the alphabet, a "-" there is absorbed,
// and "+-" is "+". Bytes outside ASCII are kept as they are.
func decodeUTF7(dst, src []byte) []byte {
	var units []uint16
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '+' {
			dst = append(dst, c)
			continue
		}
		if i+1 < len(src) && src[i+1] == '-' {
			dst = append(dst, '+')
			i++
			continue
		}
		var bits uint32
		nbits := 0
		units = units[:0]
		j := i + 1
		for ; j < len(src); j++ {
			v := b64Value(src[j])
			if v < 0 {
				break
			}
			bits = bits<<6 | uint32(v)
			nbits += 6
			if nbits >= 16 {
				nbits -= 16
				units = append(units, uint16(bits>>uint(nbits)))
				bits &= 1<<uint(nbits) - 1
			}
		}
		for _, r := range utf16.Decode(units) {
			dst = utf8.AppendRune(dst, r)
		}
		if j < len(src) && src[j] == '-' {
			j++
		}
		i = j - 1
	}
	return dst
}

// iso2022Shift is ISO-2022-KR or ISO-2022-CN, decode only: escape sequences designate, SO
// shifts into the double-byte set (decoded by the EUC form of it, high bits set), SI and
// line ends shift back to ASCII.
type iso2022Shift struct{ euc encoding.Encoding }

func (e iso2022Shift) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: wholeDecoder(func(dst, src []byte) []byte {
		var b []byte
		shifted := false
		for i := 0; i < len(src); i++ {
			c := src[i]
			switch {
			case c == 0x1b: // ESC, intermediates 0x20-0x2f, a final byte
				for i+1 < len(src) && src[i+1] >= 0x20 && src[i+1] <= 0x2f {
					i++
				}
				if i+1 < len(src) {
					i++
				}
			case c == 0x0e:
				shifted = true
			case c == 0x0f, c == '\r', c == '\n':
				shifted = false
				if c != 0x0f {
					b = append(b, c)
				}
			case shifted && c > 0x20 && c < 0x7f:
				b = append(b, c|0x80)
			default:
				b = append(b, c)
			}
		}
		out, err := e.euc.NewDecoder().Bytes(b)
		if err != nil {
			return append(dst, src...)
		}
		return append(dst, out...)
	})}
}

func (iso2022Shift) NewEncoder() *encoding.Encoder {
	return &encoding.Encoder{Transformer: failEncoder{}}
}
