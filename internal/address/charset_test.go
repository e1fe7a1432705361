package address

import (
	"bytes"
	"testing"

	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// TestCharsetsAgreeWithIndexes checks the hand-made charset table against x/text's
// htmlindex and ianaindex (too costly at start-up for the filter, fine as a test oracle):
// every name mail commonly uses decodes the same bytes to the same text.
func TestCharsetsAgreeWithIndexes(t *testing.T) {
	names := []string{
		"ISO-8859-1", "iso-8859-2", "ISO-8859-3", "iso-8859-4", "iso-8859-5", "iso-8859-6", "iso-8859-7",
		"iso-8859-8", "iso-8859-9", "iso-8859-10", "iso-8859-13", "iso-8859-14", "ISO-8859-15", "iso-8859-16",
		"iso_8859-1", "ISO8859-1", "latin1", "l1", "latin2", "cp819",
		"windows-1250", "windows-1251", "Windows-1252", "windows-1253", "windows-1254", "windows-1255",
		"windows-1256", "windows-1257", "windows-1258", "windows-874", "cp1252", "x-cp1251",
		"koi8-r", "KOI8-U", "ibm866", "cp866", "macintosh", "x-mac-cyrillic", "tis-620",
		"Shift_JIS", "sjis", "windows-31j", "euc-jp", "iso-2022-jp", "euc-kr", "ks_c_5601-1987",
		"gbk", "gb2312", "GB18030", "big5", "big5-hkscs",
		"utf-16be", "utf-16le",
	}
	var sample []byte
	for b := 0; b < 256; b++ {
		sample = append(sample, byte(b))
	}
	sample = append(sample, "ceo@ours.example \x82\xa0\xa4\xa2\xb0\xa1\x8e\xa6"...)
	for _, name := range names {
		want, err := htmlindex.Get(name)
		if err != nil {
			if want, err = ianaindex.MIME.Encoding(name); err != nil || want == nil {
				t.Errorf("%s: the oracle knows no such charset", name)
				continue
			}
		}
		got := lookupCharset([]byte(name))
		if got == nil {
			t.Errorf("lookupCharset(%q) = nil, want a decoder", name)
			continue
		}
		a, errA := got.NewDecoder().Bytes(sample)
		b, errB := want.NewDecoder().Bytes(sample)
		if !bytes.Equal(a, b) || (errA == nil) != (errB == nil) {
			t.Errorf("%s: decodes differently from x/text's index", name)
		}
	}
	for _, name := range []string{"utf-8", "UTF8", "us-ascii", "utf-8*en", "x-unknown-charset"} {
		if got := lookupCharset([]byte(name)); got != nil {
			t.Errorf("lookupCharset(%q) = %v, want nil (bytes kept)", name, got)
		}
	}
	// HZ is "replacement" for browsers; a mail reader may still decode it, so do we.
	if lookupCharset([]byte("hz-gb-2312")) == nil {
		t.Errorf("hz-gb-2312 is not decoded")
	}
	if lookupCharset([]byte("iso-8859-15*fr")) == nil {
		t.Errorf("an RFC 2231 language suffix hides the charset")
	}
}
