package readers

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// The generated variants of issue 12's classes of miss, and its false positives: each a
// From (or Sender, Resent-From) value, judged by the readers and our candidates with the
// rules of the hostile corpus (ours.example is our domain).

type variant struct {
	class, name string
	field       string // "From" unless set
	value       string
	charset     string // the top-level Content-Type charset; "utf-8" unless set
	forged      bool   // we must refuse it (the readers decide whether it shows ours)
	header      bool   // a header-level reading: no expectation but the readers'
}

func q(b []byte) string { // RFC 2047 Q text of any bytes
	var s strings.Builder
	for _, c := range b {
		if c >= '!' && c <= '~' && c != '=' && c != '?' && c != '_' {
			s.WriteByte(c)
		} else {
			fmt.Fprintf(&s, "=%02X", c)
		}
	}
	return s.String()
}

func utf16Bytes(s string, big bool) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		if big {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// ebcdic037 is "ceo@ours.example" in EBCDIC code page 037 (and 500, 1047).
var ebcdic037 = []byte{0x83, 0x85, 0x96, 0x7c, 0x96, 0xa4, 0x99, 0xa2, 0x4b, 0x85, 0xa7, 0x81, 0x94, 0x97, 0x93, 0x85}

func variants() []variant {
	const ceo = "ceo@ours.example"
	b64 := base64.StdEncoding.EncodeToString
	var vs []variant
	add := func(class, name, value string, forged bool) {
		vs = append(vs, variant{class: class, name: name, value: value, forged: forged})
	}
	// 1. Encoded words a lenient decoder accepts.
	words := map[string]string{
		"blank-inside":        "=?utf-8?q?ceo =40ours.example?=",
		"question-inside":     "=?utf-8?q?c?eo=40ours.example?=",
		"blanks-around-cs":    "=? utf-8 ?q?ceo=40ours.example?=",
		"language-suffix":     "=?utf-8*en-US?q?ceo=40ours.example?=",
		"long-language":       "=?utf-8*" + strings.Repeat("x-private-", 12) + "?q?ceo=40ours.example?=",
		"utf-7":               "=?utf-7?q?ceo+AEA-ours.example?=",
		"utf-7-b":             "=?UTF-7?b?" + b64([]byte("ceo+AEA-ours.example")) + "?=",
		"utf-16-le-no-bom":    "=?utf-16?b?" + b64(utf16Bytes(ceo, false)) + "?=",
		"utf-16-be-no-bom":    "=?utf-16?b?" + b64(utf16Bytes(ceo, true)) + "?=",
		"utf-16le":            "=?utf-16le?b?" + b64(utf16Bytes(ceo, false)) + "?=",
		"ebcdic-cp037":        "=?cp037?q?" + q(ebcdic037) + "?=",
		"ebcdic-cp500":        "=?ibm500?b?" + b64(ebcdic037) + "?=",
		"ebcdic-1047":         "=?ibm1047?q?" + q(ebcdic037) + "?=",
		"iso-2022-jp-fw-at":   "=?iso-2022-jp?q?" + q([]byte("ceo\x1b$B!w\x1b(Bours.example")) + "?=",
		"iso-2022-jp-2-fw-at": "=?iso-2022-jp-2?b?" + b64([]byte("ceo\x1b$B!w\x1b(Bours.example")) + "?=",
		"iso-2022-kr-fw-at":   "=?iso-2022-kr?q?" + q([]byte("\x1b$)Cceo\x0e#@\x0fours.example")) + "?=",
		"unknown-charset":     "=?x-no-such-charset?q?ceo=40ours.example?=",
		"unknown-utf16":       "=?x-no-such-charset?b?" + b64(utf16Bytes(ceo, false)) + "?=",
		"unknown-utf7":        "=?x-no-such-charset?q?ceo+AEA-ours.example?=",
		"split-blank-words":   "=?utf-8?q?ceo=40ours?= =?utf-8?q?.example?=",
	}
	for name, w := range words {
		add("ew", name+"/bare", w, true)
		add("ew", name+"/display", `"`+w+`" <x@evil.example>`, true)
		add("ew", name+"/phrase", w+" <x@evil.example>", true)
		add("ew", name+"/comment", `x@evil.example (`+w+`)`, true)
	}
	// 2. Punctuation glued to an address, in a display name or a comment.
	for name, wrap := range map[string][2]string{
		"apostrophes": {"'", "' via List"}, "double-apostrophe": {"''", "''"}, "bang": {"!", "!"},
		"backticks": {"`", "`"}, "curly-double": {"\u201c", "\u201d"}, "curly-single": {"\u2018", "\u2019"},
		"guillemets": {"\u00ab", "\u00bb"}, "corner": {"\u300c", "\u300d"}, "lenticular": {"\u3010", "\u3011"},
		"fullwidth-angle": {"\uff1c", "\uff1e"}, "fullwidth-paren": {"\uff08", "\uff09"}, "possessive": {"", "'s desk"},
		"colon-semicolon": {"mailto:", ";"}, "question": {"\u00bf", "?"},
	} {
		add("punct", name+"/quoted", `"`+wrap[0]+ceo+wrap[1]+`" <list@partner.example>`, true)
		add("punct", name+"/comment", `list@partner.example (`+wrap[0]+ceo+wrap[1]+`)`, true)
		add("punct", name+"/phrase", wrap[0]+ceo+wrap[1]+` <list@partner.example>`, true)
		add("punct", name+"/rule-address", `"`+wrap[0]+`phisher@scam.example`+wrap[1]+`" <list@partner.example>`, true)
	}
	// 4. IDNA labels strict IDNA refuses, with compatibility characters elsewhere.
	for name, d := range map[string]string{
		"double-hyphen":       "ab--c.\uff4f\uff55\uff52\uff53.example",
		"leading-hyphen":      "-x.\uff4f\uff55\uff52\uff53.example",
		"trailing-hyphen":     "x-.ours.\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45",
		"fullwidth":           "\uff4f\uff55\uff52\uff53.example",
		"ideographic-stop":    "ours\u3002example",
		"circled":             "\u24de\u24e4\u24e1\u24e2.example",
		"bad-punycode-label":  "xn--zz.\uff4f\uff55\uff52\uff53.example",
		"bidi-label":          "a\u05d0.\uff4f\uff55\uff52\uff53.example",
		"upper-idn-rule":      "B\u00dcCHER.example",
		"fullwidth-idn-rule":  "b\u00fc\uff43\uff48\uff45\uff52.example",
		"math-bold":           "\U0001d428\U0001d42e\U0001d42b\U0001d42c.example",
		"superscript-subdom":  "\u00b9.ours.example",
		"fullwidth-upper-idn": "\uff22\u00dc\uff23\uff28\uff25\uff32.example",
	} {
		add("idna", name+"/bare", "ceo@"+d, true)
		add("idna", name+"/angle", "CEO <ceo@"+d+">", true)
	}
	// 5. Characters drawn as nothing, or reordered.
	for name, r := range map[string]string{
		"hangul-filler": "\u3164", "hangul-choseong-filler": "\u115f", "cgj": "\u034f", "vs16": "\ufe0f",
		"tag": "\U000e0041", "soft-hyphen": "\u00ad", "word-joiner": "\u2060", "mongolian-vs": "\u180b",
		"bom": "\ufeff", "lrm": "\u200e", "invisible-times": "\u2062",
	} {
		add("invisible", name+"/domain", "CEO <ceo@ou"+r+"rs.example>", true)
		add("invisible", name+"/at", "CEO <ceo"+r+"@"+r+"ours.example>", true)
		add("invisible", name+"/display", `"ceo@ou`+r+`rs.example" <x@evil.example>`, true)
	}
	reversed := "elpmaxe.sruo@oec"
	for name, v := range map[string]string{
		"rlo-display":   "\"\u202e" + reversed + "\u202c\" <x@evil.example>",
		"rlo-comment":   "x@evil.example (\u202e" + reversed + "\u202c)",
		"rle-phrase":    "\u202b" + "ceo@ours.example" + "\u202c <x@evil.example>",
		"rlo-addr":      "<\u202e" + reversed + "\u202c>",
		"rlo-in-domain": "CEO <ceo@\u202eelpmaxe.sruo\u202c>",
	} {
		add("bidi", name, v, true)
	}
	// 3. Raw 8-bit header bytes in the charset the message declares: a full-width ＠ is
	// two bytes that are no '@'.
	for cs, at := range map[string]string{"Shift_JIS": "\x81\x97", "gb2312": "\xa3\xc0", "Big5": "\xa2\x49", "EUC-JP": "\xa1\xf7", "euc-kr": "\xa3\xc0"} {
		vs = append(vs, variant{class: "8bit", name: cs + "/display", value: `"ceo` + at + `ours.example" <x@evil.example>`, charset: cs, forged: true})
		vs = append(vs, variant{class: "8bit", name: cs + "/comment", value: `x@evil.example (ceo` + at + `ours.example)`, charset: cs, forged: true})
	}
	vs = append(vs, variant{class: "legit", name: "8bit-shift-jis-name", value: "\"\x83\x41\x83\x93\x83\x69\" <anna@partner.example>", charset: "Shift_JIS"})
	// Header level (handed to the lead): mutt reads a line only up to a NUL and takes the
	// next line as the rest of the field.
	vs = append(vs, variant{class: "header", name: "nul-joins-next-line", value: "Mallory <x@evil.example>\x00\nX-Note: ceo@ours.example", header: true})
	// Sender and Resent-From are shown too.
	for _, f := range []string{"Sender", "Resent-From"} {
		vs = append(vs, variant{class: "field", name: f + "/utf-7", field: f, value: `"=?utf-7?q?ceo+AEA-ours.example?=" <x@evil.example>`, forged: true})
		vs = append(vs, variant{class: "field", name: f + "/curly", field: f, value: "\"\u201c" + ceo + "\u201d\" <x@evil.example>", forged: true})
	}

	// False positives: text in a display name or comment is never qualified, and
	// legitimate mail in every class passes.
	for name, v := range map[string]string{
		"unqualified-in-quoted":     `"Jane Doe <jdoe>" <jane@partner.example>`,
		"unqualified-in-comment":    `(Jane <jdoe>) jane@partner.example`,
		"unqualified-comment-after": `Jane Doe <jane@partner.example> (call me <jdoe>)`,
		"unqualified-quoted-angle":  `"<sales>" <sales@partner.example>`,
		"groups-apostrophes":        `"'Anna Schmidt' via Dev" <dev@groups.partner.example>`,
		"apostrophes":               `'Anna Schmidt' <anna@partner.example>`,
		"curly-name":                "\u201cAnna\u201d <anna@partner.example>",
		"our-domain-in-name":        `"ours.example support desk" <help@partner.example>`,
		"hebrew-name":               "\"\u05d0\u05e0\u05d4 \u05e9\u05de\u05d9\u05d8\" <anna@partner.example>",
		"rlo-partner":               "\"\u202eelpmaxe.rentrap@anna\u202c\" <anna@partner.example>",
		"idn-partner":               "anna@b\u00fccher-partner.example",
		"fullwidth-partner":         "anna@\uff50\uff41\uff52\uff54\uff4e\uff45\uff52.example",
		"utf-7-name":                "=?utf-7?q?Anna_+AMk-cole?= <anna@partner.example>",
		"utf-16-name":               "=?utf-16?b?" + b64(utf16Bytes("Anna Schmidt", false)) + "?= <anna@partner.example>",
		"unknown-charset-name":      "=?x-no-such-charset?q?Anna?= <anna@partner.example>",
		"ew-blank-name":             "=?utf-8?q?Anna Schmidt?= <anna@partner.example>",
		"hyphen-label-partner":      "anna@ab--c.\uff50\uff41\uff52\uff54\uff4e\uff45\uff52.example",
		"invisible-partner":         "anna@part\u3164ner.example",
	} {
		add("legit", name, v, false)
	}
	return vs
}

// message wraps a variant in a header and body, LF or CRLF.
func (v variant) message(crlf bool) []byte {
	field, cs := v.field, v.charset
	if field == "" {
		field = "From"
	}
	if cs == "" {
		cs = "utf-8"
	}
	h := []string{
		"Received: from mx.evil.example (mx.evil.example [203.0.113.66]) by mx.ours.example",
		"Date: Fri, 27 Nov 2026 10:00:00 +0000",
		"Message-ID: <gen." + strings.ReplaceAll(v.class+"."+v.name, "/", ".") + "@mx.evil.example>",
		"Subject: generated " + v.class + " " + v.name,
	}
	if field != "From" {
		h = append(h, "From: Anna <anna@partner.example>")
	}
	h = append(h, field+": "+v.value, "To: Accounts <accounts@ours.example>", "MIME-Version: 1.0",
		"Content-Type: text/plain; charset="+cs, "", "Hello.", "")
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	return []byte(strings.Join(h, eol))
}

func generatedCases(t *testing.T) []msgCase {
	w := loadWorld(t, filepath.Join(hostileDir(), "badsenders"), "ours.example")
	var cases []msgCase
	for _, v := range variants() {
		k := fuzzed
		if !v.forged && !v.header {
			k = legit
		}
		for _, crlf := range []bool{false, true} {
			name := "gen/" + v.class + "/" + v.name + "/lf"
			if crlf {
				name = name[:len(name)-2] + "crlf"
			}
			cases = append(cases, msgCase{name: name, msg: v.message(crlf), kind: k, w: w, mustRefuse: v.forged})
		}
	}
	return cases
}

func TestGeneratedVariants(t *testing.T) { check(t, generatedCases(t)) }

// TestBareCROnly shows how each reader reads a message whose only line ends are bare CRs
// (old Mac style), issue 12's false positive: jsmime and Python split lines at a bare CR
// and show only the partner in From; mutt, postal-mime and mailparser do not: for them the
// whole header is one From field, and mutt shows our To: address in it (the other two show
// display names only).
// this test records what the readers do, and fails when that changes, or when we do not
// refuse what mutt shows.
func TestBareCROnly(t *testing.T) {
	p := readers(t)
	msg := []byte("From: Anna <anna@partner.example>\rTo: Sales <sales@ours.example>\rSubject: delivery\r\rThe delivery is on its way.\r")
	res, err := p.readAll([][]byte{msg})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range res[0] {
		var got []string
		for _, s := range r.Shown {
			if s.Field == "From" {
				got = append(got, shownAddresses(s)...)
			}
		}
		got = dedupe(got)
		want := []string{"anna@partner.example"}
		switch name {
		case "mutt":
			want = []string{"anna@partner.example", "sales@ours.example"}
		case "postal-mime", "mailparser": // one field too; its address parser keeps only names
			want = nil
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s shows From %q, want %q (%+v)", name, got, want, r)
		}
	}
	// mutt shows sales@ours.example as a From mailbox: a reader shows it as the sender, so
	// the filter refuses the message (the issue took it for a false positive from what
	// jsmime and Python show; mutt decides it).
	w := loadWorld(t, filepath.Join(hostileDir(), "badsenders"), "ours.example")
	if o := ourReading(w, msg); o.refused != "sales@ours.example" {
		t.Errorf("we refuse %q (candidates %q), want sales@ours.example, as mutt shows it", o.refused, o.cands)
	}
}
