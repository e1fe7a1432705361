package address

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A is shorthand for an expected candidate.
func A(local, domain string) Address { return Address{Local: local, Domain: domain} }

// candidateTests are the spoofing cases: the exact field value a forger would send and the
// exact candidates, in order. FuzzCandidates uses them as seeds.
var candidateTests = []struct {
	name  string
	value string
	want  []Address
}{
	// RFC 5322 forms.
	{"name-addr", `Display <user@host.example>`, []Address{A("user", "host.example")}},
	{"addr-spec", `user@host.example`, []Address{A("user", "host.example")}},
	{"addr-spec case kept", `PHISHER@scam.EXAMPLE`, []Address{A("PHISHER", "scam.EXAMPLE")}},
	{"list with commas", `"Ann" <ann@x.example>, ceo@our.example, Ben <ben@y.example>`,
		[]Address{A("ann", "x.example"), A("ceo", "our.example"), A("ben", "y.example")}},
	// mutt and compat32 join the next word to the domain: x.exampleb (see the domain run).
	{"list without commas ours second", `a@x.example b@our.example`, []Address{A("a", "x.example"), A("a", "x.exampleb"), A("b", "our.example")}},
	{"list without commas ours first", `b@our.example a@x.example`, []Address{A("b", "our.example"), A("b", "our.examplea"), A("a", "x.example")}},
	{"group", `Team: a@x.example, b@y.example;`, []Address{A("a", "x.example"), A("b", "y.example")}},
	{"empty group then mailbox", `Undisclosed:;, Treasury <treasury@acme-corp.example>`, []Address{A("treasury", "acme-corp.example")}},
	{"mailbox then empty group", `Treasury <treasury@acme-corp.example>, Undisclosed:;`, []Address{A("treasury", "acme-corp.example")}},
	{"group named member", `Accounts Payable: "Payroll" <payroll@hq.acme-corp.example>,	"Mallory" <m@lure.example>;`,
		[]Address{A("payroll", "hq.acme-corp.example"), A("m", "lure.example")}},
	{"route", `<@relay1.example,@relay2.example:user@host.example>`, []Address{A("", "relay1.example"), A("", "relay2.example"), A("", "relay2.exampleuser"), A("user", "host.example"), A("@relay2.exampleuser", "host.example"), A("relay2.exampleuser", "host.example")}},
	{"route empty elements", `Network Ops <,@relay1.example,,@relay2.example:noc@acme-corp.example>`, []Address{A("", "relay1.example"), A("", "relay2.example"), A("", "relay2.examplenoc"), A("noc", "acme-corp.example"), A("@relay2.examplenoc", "acme-corp.example"), A("relay2.examplenoc", "acme-corp.example")}},
	{"quoted local part", `"a.b"@host.example`, []Address{A("a.b", "host.example")}},
	{"quoted local part quoted-pair", `"m\.okafor"@acme-corp.example`,
		[]Address{A("m.okafor", "acme-corp.example"), A("okafor", "acme-corp.example")}},
	{"quoted local part holds mailbox", `"ceo@our.example"@evil.example`,
		[]Address{A("ceo@our.example", "evil.example"), A("our.example", "evil.example"), A("ceo", "our.example")}},
	{"quoted local part holds name-addr", `"Treasury <treasury@acme-corp.example>"@lure.example`,
		[]Address{A("Treasury <treasury@acme-corp.example>", "lure.example"), A("Treasury<treasury@acme-corp.example>", "lure.example"), A("treasury", "acme-corp.example"), A("Treasury", "lure.example"),
			// jsmime's quoted local part, read as an address: its own '@' cut first
			A("Treasury <treasury", "acme-corp.example>"), A("Treasury <treasury", "acme-corp.example")}},
	{"comments around at", `noc (network ops) @ (main site) acme-corp.example`,
		[]Address{A("noc", "acme-corp.example"), A("ops", "main"), A("nocnetworkops", "main")}},
	{"fold after dot", "noc@acme-corp.  example", []Address{A("noc", "acme-corp.example"), A("noc", "acme-corp.")}},
	{"fold after dot tab", "Payroll <payroll@hq.\tacme-corp.example>", []Address{A("payroll", "hq.acme-corp.example"), A("payroll", "hq.")}},
	{"trailing dot", `user@host.example.`, []Address{A("user", "host.example.")}},
	{"trailing dot angle", `"Treasury" <treasury@acme-corp.example.>`, []Address{A("treasury", "acme-corp.example.")}},
	{"domain literal", `user@[192.0.2.1]`, []Address{A("user", "[192.0.2.1]"), A("user", "192.0.2.1")}},
	{"one address local part looks like a domain", `acme-corp.example@northwind-traders.example`,
		[]Address{A("acme-corp.example", "northwind-traders.example")}},
	{"plus local part", `"Reseller desk" <reseller+acme-corp.example@northwind-traders.example>`,
		[]Address{A("reseller+acme-corp.example", "northwind-traders.example")}},

	// Addresses in display names, quoted strings, comments and prose.
	{"address as quoted display name", `"ceo@our.example" <x@evil.example>`, []Address{A("x", "evil.example"), A("ceo", "our.example")}},
	{"address as display name after", `<x@evil.example> "ceo@our.example"`, []Address{A("x", "evil.example"), A("ceo", "our.example")}},
	{"address in comment before", `(ceo@our.example) x@evil.example`, []Address{A("x", "evil.example"), A("ceo", "our.example")}},
	{"address in comment after", `"Mallory" <m@lure.example> (sent for m.okafor@acme-corp.example)`,
		[]Address{A("m", "lure.example"), A("m.okafor", "acme-corp.example"), A("sentform.okafor", "acme-corp.example")}},
	{"parens in quoted display name", `"Payroll (payroll@hq.acme-corp.example)" <x@evil.example>`,
		[]Address{A("x", "evil.example"), A("payroll", "hq.acme-corp.example"), A("Payrollpayroll", "hq.acme-corp.example")}},
	// jsmime takes the words after the '>' for the local part of the '@' after them.
	{"jsmime: a name after the angle is no mailbox", `<x@evil.example> Bob`, []Address{A("x", "evil.example")}},
	{"jsmime: a name after the angle, with a colon", `To: <x@evil.example> Bob`, []Address{A("x", "evil.example")}},
	{"prose after angle", `<x@evil.example> on behalf of ceo@our.example`, []Address{A("x", "evil.example"), A("ceo", "our.example"),
		A("onbehalfofceo", "our.example"), A("on behalf of ceo", "our.example")}},
	{"prose ends in sentence", `<x@evil.example> for ceo@our.example. Thanks`,
		[]Address{A("x", "evil.example"), A("ceo", "our.example.Thanks"), A("forceo", "our.example.Thanks"), A("ceo", "our.example."), A("forceo", "our.example."),
			A("for ceo", "our.example. Thanks"), A("for ceo", "our.example.")}},
	{"prose sentence before", `Hi. ceo@our.example`, []Address{A("Hi.ceo", "our.example"), A("ceo", "our.example")}},
	{"unquoted display name with at", `John @ Home <j@x.example>`, []Address{A("John", "Home"), A("j", "x.example")}},

	// Malformed brackets and quotes.
	{"double open angle", `Payroll <<payroll@hq.acme-corp.example>`, []Address{A("payroll", "hq.acme-corp.example")}},
	{"reversed angles", `Treasury >treasury@acme-corp.example<`, []Address{A("treasury", "acme-corp.example"), A("Treasurytreasury", "acme-corp.example")}},
	{"tabs inside angles", "Treasury Desk <\ttreasury@acme-corp.example\t>", []Address{A("treasury", "acme-corp.example")}},
	{"unclosed angle", `Treasury <treasury@acme-corp.example`, []Address{A("treasury", "acme-corp.example")}},
	{"unclosed quote before", `"Treasury <treasury@acme-corp.example>`,
		[]Address{A("Treasury <treasury@acme-corp.example>", ""), A("treasury", "acme-corp.example")}},
	{"unclosed quote after", `<x@evil.example> "ceo@our.example`, []Address{A("x", "evil.example"), A("ceo", "our.example")}},
	{"unclosed comment", `x@evil.example (ceo@our.example`, []Address{A("x", "evil.example"), A("ceo", "our.example")}},
	// jsmime skips the ')' and glues on what follows: x@evil.exampleceo@our.example.
	{"stray close paren", `x@evil.example) ceo@our.example`, []Address{A("x", "evil.example"), A("ceo", "our.example"),
		A("x@evil.exampleceo", "our.example"), A("evil.exampleceo", "our.example"), A("x", "evil.exampleceo")}},
	{"unclosed literal", `ceo@[our.example`, []Address{A("ceo", "our.example")}},

	// RFC 2047.
	{"Q word holds mailbox", `=?iso-8859-15?q?ceo=40our=2Eexample?=`, []Address{A("ceo", "our.example")}},
	{"Q word holds name-addr", `=?ISO-8859-15?q?Tr=E9sorerie_=3Ctreasury=40acme-corp=2Eexample=3E?=`,
		[]Address{A("treasury", "acme-corp.example")}},
	{"Q word upper case", `=?UTF-8?Q?ceo=40our.example?= <x@evil.example>`, []Address{A("x", "evil.example"), A("ceo", "our.example")}},
	{"Q word display name IDN", `=?utf-8?Q?billing=40acm=C3=A9-corp.example?= <m@lure.example>`,
		[]Address{A("m", "lure.example"), A("billing", "acmé-corp.example")}},
	{"B word windows-1252 display name", `=?windows-1252?B?VHLpc29yZXJpZSCWIHRyZWFzdXJ5QGFjbWUtY29ycC5leGFtcGxl?= <m@lure.example>`,
		[]Address{A("m", "lure.example"), A("treasury", "acme-corp.example"), A("Trésorerie–treasury", "acme-corp.example")}},
	{"B words split in domain", "=?utf-8?B?bS5va2Fmb3JAYWNtZQ==?=\t=?utf-8?B?LWNvcnAuZXhhbXBsZQ==?= <m@lure.example>",
		[]Address{A("m", "lure.example"), A("m.okafor", "acme-corp.example"), A("m.okafor", "acme")}},
	{"B words split in domain mixed charsets", "=?utf-8?B?bS5va2Fmb3JAYWNtZQ==?= \r\n =?iso-8859-1?q?-corp.example?=",
		[]Address{A("m.okafor", "acme-corp.example"), A("m.okafor", "acme")}},
	{"B word in comment", `m@lure.example (=?utf-8?B?TWFyZ2FyZXQgT2thZm9yIDxtLm9rYWZvckBhY21lLWNvcnAuZXhhbXBsZT4=?=)`,
		[]Address{A("m", "lure.example"), A("m.okafor", "acme-corp.example")}},
	{"B word in quoted string", `"=?utf-8?b?Y2VvQG91ci5leGFtcGxl?=" <x@evil.example>`,
		[]Address{A("x", "evil.example"), A("ceo", "our.example")}},
	{"B word glued to text", `x=?utf-8?b?QG91ci5leGFtcGxl?= <x@evil.example>`,
		[]Address{A("x", "evil.example"), A("x", "our.example")}},
	{"B word no padding", `=?utf-8?b?Y2VvQG91ci5leGFtcGxl?=`, []Address{A("ceo", "our.example")}},
	{"B word bad padding", `=?utf-8?b?Y2VvQG91ci5leGFtcGxlLg=?=`, []Address{A("ceo", "our.example.")}},
	{"B word unknown charset", `=?x-no-such?b?Y2VvQG91ci5leGFtcGxl?=`, []Address{A("ceo", "our.example"), A("散䁯畯\u2e72硥浡汰�", ""), A("捥潀潵爮數慭灬�", ""), A("����", "")}},
	{"Q word language suffix", `=?utf-8*en?q?ceo=40our.example?=`, []Address{A("ceo", "our.example")}},
	{"decoded unqualified in angles", `=?utf-8?q?=3Cceo=3E?=`, []Address{A("ceo", "")}},
	{"decoded NUL", `=?utf-8?q?noc=40acme-=00corp.example?=`, []Address{A("noc", "acme-"), A("noc", "acme-corp.example")}},

	// Raw UTF-8 (RFC 6531) and 8-bit bytes.
	{"UTF-8 domain", `Acmé Corp Billing <billing@acmé-corp.example>`, []Address{A("billing", "acmé-corp.example")}},
	{"UTF-8 local part", `désk@acme-corp.example`, []Address{A("désk", "acme-corp.example")}},
	// Raw 8-bit bytes are read in the fallback charsets too: \xff is \u00ff in windows-1252,
	// \u06d2 (Arabic, so also read in visual order) in windows-1256.
	{"invalid UTF-8 in display name", "Fran\xe7ois \xff <ceo@our.example>", []Address{A("ceo", "our.example"), A("\u06d2ceo", "our.example")}},
	{"invalid UTF-8 in domain", "noc@acme-\xffcorp.example", []Address{A("noc", "acme-\xffcorp.example"), A("noc", "acme-"), A("noc", "acme-corp.example"),
		A("noc", "acme-\u00ffcorp.example"), A("noc", "acme-\ufffdcorp.example"), A("noc", "acme-\u06d2corp.example"), A("noc", "acme\u06d2-corp.example")}},
	{"zero-width space in domain", "noc@acme-\u200bcorp.example", []Address{A("noc", "acme-\u200bcorp.example"), A("noc", "acme-"), A("noc", "acme-corp.example")}},
	{"no-break space between addresses", "x@evil.example\u00a0ceo@our.example",
		[]Address{A("x", "evil.example\u00a0ceo"), A("x", "evil.example"), A("evil.example\u00a0ceo", "our.example"), A("ceo", "our.example")}},
	{"full-width at", "\"ceo\uff20our.example\" <x@evil.example>", []Address{A("x", "evil.example"), A("ceo", "our.example")}},

	// NUL and control bytes.
	{"NUL in domain", "noc@acme\x00-corp.example", []Address{A("noc", "acme"), A("noc", "acme-corp.example")}},
	{"NUL before angle", "x@ext.example\x00 <payroll@hq.acme-corp.example>",
		[]Address{A("x", "ext.example"), A("payroll", "hq.acme-corp.example")}},
	{"NUL after angle", "<payroll@hq.acme-corp.example>\x00 x@ext.example",
		[]Address{A("payroll", "hq.acme-corp.example"), A("x", "ext.example")}},
	{"NUL inside angle", "<treasury@acme-corp.example\x00>", []Address{A("treasury", "acme-corp.example")}},
	{"backspace and DEL in display name", "\"Treasury\x08\x08\x7f Desk\" <treasury@acme-corp.example>",
		[]Address{A("treasury", "acme-corp.example")}},
	{"DEL in local part", "tre\x7fasury@acme-corp.example", []Address{A("asury", "acme-corp.example"), A("treasury", "acme-corp.example")}},
	{"CR LF left in value", "x@evil.example\r\n <ceo@our.example>", []Address{A("x", "evil.example"), A("ceo", "our.example")}},

	// Unqualified mailboxes and non-candidates.
	{"unqualified in angles", `CEO <ceo>`, []Address{A("ceo", "")}},
	// jsmime shows @relay.exampleceo: it glues the word after a colon on (the domain run).
	{"unqualified after route", `<@relay.example:ceo>`, []Address{A("", "relay.example"), A("", "relay.exampleceo"), A("ceo", "")}},
	{"unqualified in unclosed angle", `CEO <ceo`, []Address{A("ceo", "")}},
	{"unqualified in display name", `"Jane Doe <jdoe>" <jane@partner.example>`, []Address{A("jane", "partner.example")}},
	{"unqualified in comment", `(Jane <jdoe>) jane@partner.example`, []Address{A("jane", "partner.example")}},
	{"unqualified whole value", `ceo`, []Address{A("ceo", "")}},
	{"unqualified whole value with comment", ` ceo (the boss) `, []Address{A("ceo", "")}},
	{"unqualified quoted whole value", `"Priya Raman"`, []Address{A("Priya Raman", "")}},
	{"display words", `Priya Raman`, nil},
	{"display words in angles", `<Priya Raman>`, nil},
	{"encoded word alone is no local part", `=?utf-8?q?Priya?=`, []Address{A("Priya", "")}},
	{"empty", ``, nil},
	{"empty angles", `<>`, nil},
	{"blanks", " \t ", nil},
	{"at without local part", `@our.example`, []Address{A("", "our.example")}},
	{"at without domain", `ceo@ <x@evil.example>`, []Address{A("x", "evil.example")}},
	{"comment only", `(Priya Raman)`, nil},
}

func TestCandidates(t *testing.T) {
	for _, tt := range candidateTests {
		t.Run(tt.name, func(t *testing.T) {
			got := Candidates(nil, []byte(tt.value))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Candidates(%q) = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}

func TestCandidatesAppends(t *testing.T) {
	dst := []Address{A("ceo", "our.example")}
	got := Candidates(dst, []byte("ceo@our.example, x@evil.example"))
	want := []Address{A("ceo", "our.example"), A("ceo", "our.example"), A("x", "evil.example")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Candidates(dst, ...) = %q, want %q (dst is kept, not deduplicated against)", got, want)
	}
}

func TestCandidatesDedupeMany(t *testing.T) {
	// More than linearDedupe distinct candidates, each written three times.
	var b bytes.Buffer
	for range 3 {
		for i := range 3 * linearDedupe {
			fmt.Fprintf(&b, "<u%d@x.example>, ", i) // commas: jsmime glues angle-addrs without
		}
	}
	got := Candidates(nil, b.Bytes())
	if len(got) != 3*linearDedupe {
		t.Fatalf("Candidates: %d candidates, want %d", len(got), 3*linearDedupe)
	}
	for i, a := range got {
		if w := A(fmt.Sprintf("u%d", i), "x.example"); a != w {
			t.Errorf("candidate %d = %q, want %q", i, a, w)
		}
	}
}

func TestDecodeEncodedWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?utf-8?q?a_b=3F?=", "a b?"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?=\r\n\t=?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
		{"x=?utf-8?q?a?=y", "xay"},
		{"=?iso-8859-1?q?=E9?=", "é"},
		{"=?ISO-8859-15?Q?=A4?=", "€"},
		{"=?windows-1252?q?=80?=", "€"},
		{"=?utf-8?b?w6k=?=", "é"},
		{"=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "é"}, // one character split over two words
		{"=?utf-8?b?w6?= =?utf-8?b?k=?=", "\xc3"},  // each word is decoded on its own: 12 bits, then 6
		{"=?utf-8?b?w?= =?utf-8?b?6k?=", "\xea"},
		{"=?utf-8?q?=ZZ=4?=", "=ZZ=4"},
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
		{"=?utf-8?q?a b?=", "a b"}, // blanks inside, as lenient decoders accept
		{"=?utf-8?q?a?b?=", "a?b"},
		{"=? utf-8 ?q?a=40b?=", "a@b"},
		{"=?utf-8*en-us-x-private-tag-of-some-length?q?a=40b?=", "a@b"},
		{"=?utf-7?q?ceo+AEA-ours.example?=", "ceo@ours.example"},
		{"=?utf-16?b?YwBlAG8AQABvAHUAcgBzAC4AZQB4AGEAbQBwAGwAZQA=?=", "ceo@ours.example"},
		{"=?cp037?q?=83=85=96=7C=96=A4=99=A2=4B=85=A7=81=94=97=93=85?=", "ceo@ours.example"},
		{"=?iso-2022-kr?q?=1B$)Cceo=0E=23=40=0Fours.example?=", "ceo\uff20ours.example"},
		{"=??q?a?=", "=??q?a?="},
		{"=?utf-8?q?unclosed", "=?utf-8?q?unclosed"},
		{"=?=?=?utf-8?q?a?=", "=?=?a"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got, _ := decodeEncodedWords(nil, []byte(tt.in), decodeOptions{}); string(got) != tt.want {
				t.Errorf("decodeEncodedWords(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// issue12Tests are the classes of issue 12, each as a reader shows it: the candidates must
// hold want (others may come with it).
var issue12Tests = []struct {
	name, value string
	want        Address
}{
	{"ew blank inside", `=?utf-8?q?ceo =40ours.example?=`, A("ceo", "ours.example")},
	{"ew question inside", `=?utf-8?q?x?ceo=40ours.example?= <x@evil.example>`, A("x?ceo", "ours.example")},
	{"ew blanks around charset", `=? utf-8 ?q?ceo=40ours.example?=`, A("ceo", "ours.example")},
	{"ew long language", `=?utf-8*` + strings.Repeat("x-private-", 20) + `?q?ceo=40ours.example?=`, A("ceo", "ours.example")},
	{"ew utf-7", `"=?utf-7?q?ceo+AEA-ours.example?=" <x@evil.example>`, A("ceo", "ours.example")},
	{"ew utf-16 no BOM little-endian", "=?utf-16?b?YwBlAG8AQABvAHUAcgBzAC4AZQB4AGEAbQBwAGwAZQA=?=", A("ceo", "ours.example")},
	{"ew utf-16 no BOM big-endian", "=?utf-16?b?AGMAZQBvAEAAbwB1AHIAcwAuAGUAeABhAG0AcABsAGU=?=", A("ceo", "ours.example")},
	{"ew unknown charset holding utf-16", "=?x-none?b?YwBlAG8AQABvAHUAcgBzAC4AZQB4AGEAbQBwAGwAZQA=?=", A("ceo", "ours.example")},
	{"ew unknown charset holding utf-7", "=?x-none?q?ceo+AEA-ours.example?=", A("ceo", "ours.example")},
	{"ew ebcdic", "=?ibm500?q?=83=85=96=7C=96=A4=99=A2=4B=85=A7=81=94=97=93=85?=", A("ceo", "ours.example")},
	{"ew iso-2022-jp full-width at", "=?iso-2022-jp?q?ceo=1B$B!w=1B(Bours.example?=", A("ceo", "ours.example")},
	{"ew iso-2022-kr as bytes", "=?iso-2022-kr?q?ceo=0E#@=0Fours.example?=", A("ceo#", "ours.example")},
	{"ew blank between words kept", "=?utf-8?q?phisher=40scam.example?= =?utf-8?q?x?=", A("phisher", "scam.example")},
	{"ew 8-bit low bytes", "=?iso-8859-1?q?phishe\xc5\xb2=40scam.example?=", A("phisher", "scam.example")},
	{"punct apostrophes", `"'ceo@ours.example' via List" <list@partner.example>`, A("ceo", "ours.example")},
	{"punct curly quotes", "\"\u201cceo@ours.example\u201d\" <x@evil.example>", A("ceo", "ours.example")},
	{"punct full-width angles", "\uff1cceo@ours.example\uff1e <x@evil.example>", A("ceo", "ours.example")},
	{"punct bang backtick", "x@evil.example (`!ceo@ours.example!`)", A("ceo", "ours.example")},
	{"joined words", "x@evil.example, phi sher@scam.example", A("phisher", "scam.example")},
	{"joined quoted blank", `"phi sher"@scam.example`, A("phisher", "scam.example")},
	// mutt and compat32 join a domain's words up to the next special (found by FuzzReaders).
	{"joined domain words", "ceo@ours.exam ple", A("ceo", "ours.example")},
	{"joined domain words in angles", "CEO <ceo@ours .exam ple>", A("ceo", "ours.example")},
	{"domain glued after a colon", "CEO <ceo@ours.exam: ple>", A("ceo", "ours.example")},
	// jsmime appends a second pair of angle brackets to the address (found by FuzzReaders).
	{"jsmime: two angle-addrs glued", "CEO <ceo@ours> <.example>", A("ceo", "ours.example")},
	{"unclosed Q word beginning =XX (Python)", "=?utf-8?q?=63eo=40ours.example", A("ceo", "ours.example")},
	{"B text cut at a padding inside (Python, mutt)", "=?UTF-8?B?Y2VvQG91cnMuZXhhbXBsZQ==Zm9v?= <x@evil.example>", A("ceo", "ours.example")},
	{"B text padding inside read as zero bits (postal-mime)", "=?UTF-8?B?Y2VvQG9=cnMuZXhhbXBsZQ1=?= <x@ev>", A("o", "rs.example")},
	{"jsmime: a word after the angle glued to the name", "=?UTF-8?B?Y2VvQG91cnMuZXhhbXBsZQ==?= <x@evil.example>c", A("ceo", "ours.examplec")},
	{"a quoted string glued to a word (mailparser, postal-mime, Python, mutt)", `"ceo@ours.exam"ple`, A("ceo", "ours.example")},
	{"jsmime: an unclosed angle with a colon", "ceo@ours.exa <x1:", A("x1", "")},
	{"jsmime: nothing after the last at", "CEO <x@evil.example>accounts <ceo@", A("x", "evil.exampleceo")},
	{"postal-mime: a name glued after the angle, its blanks kept", ".e =?UTF-8?B?Y2VvQG91cnMuZXhhbXBsZQ==?= <x@evil.example>c", A("ceo", "ours.examplec")},
	{"jsmime: a stray ']' is part of the word", "CEO <ceo]", A("ceo]", "")},
	{"jsmime: a stray ')' after the at skipped", "ceo (boss) @ )ours.example( o", A("ceo", "ours.example")},
	{"jsmime: a word after a comma is a new token", "m: a@x.me,phi sher@scam.example", A("phi sher", "scam.example")},
	{"jsmime: angle-addrs glued across a name", "CEO <ceo@ours.exam> x <ple>", A("ceo", "ours.example")},
	{"jsmime: glued across a comment", `"x" <ceo@ours> (c) <.example>`, A("ceo", "ours.example")},
	{"jsmime: glued after a colon, spaced after", "ceo@ours.exam: ple x", A("ceo", "ours.example")},
	{"domain glued after a colon, dot next", "<ceo@ours: .example>", A("ceo", "ours.example")},
	{"joined domain and local words", "c eo@ours.exam ple, x@evil.example", A("ceo", "ours.example")},
	{"stray gt joined", `ceo@>ours.example`, A("ceo", "ours.example")},
	{"colon after at", `@:ours.example`, A("", "ours.example")},
	{"display name as local part after angle", `phisher <x@evil.example>@scam.example`, A("phisher", "scam.example")},
	{"colon after at with local part", `ceo@:ours.example`, A("ceo", "ours.example")},
	{"invisible hangul filler", "ceo@ou\u3164rs.example", A("ceo", "ours.example")},
	{"invisible cgj and vs16", "ceo\u034f@\ufe0fours.example", A("ceo", "ours.example")},
	{"bidi override", "\"\u202eelpmaxe.sruo@oec\u202c\" <x@evil.example>", A("ceo", "ours.example")},
	{"unclosed angle", "CEO <ceo", A("ceo", "")},
}

func TestIssue12Readings(t *testing.T) {
	for _, tt := range issue12Tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Candidates(nil, []byte(tt.value))
			for _, a := range got {
				if a == tt.want {
					return
				}
			}
			t.Errorf("Candidates(%q) = %q, want %q among them", tt.value, got, tt.want)
		})
	}
}

// TestCandidatesCharsets checks the readings of raw 8-bit bytes: in the fallback charsets
// always, in a declared one too.
func TestCandidatesCharsets(t *testing.T) {
	tests := []struct {
		name, value string
		declared    []string // nil: the fallback charsets must find it
		want        Address
	}{
		{"Shift_JIS full-width at", "\"ceo\x81\x97ours.example\" <x@evil.example>", nil, A("ceo", "ours.example")},
		{"gb2312 full-width at", "x@evil.example (ceo\xa3\xc0ours.example)", nil, A("ceo", "ours.example")},
		{"Big5 full-width at", "ceo\xa2\x49ours.example", nil, A("ceo", "ours.example")},
		{"EUC-JP full-width at", "ceo\xa1\xf7ours.example", nil, A("ceo", "ours.example")},
		{"EUC-KR full-width at", "ceo\xa3\xc0ours.example", nil, A("ceo", "ours.example")},
		{"windows-1252 soft hyphen", "\"ceo@ours\xad.example\" <x@evil.example>", nil, A("ceo", "ours.example")},
		{"windows-1255 LRM", "ceo@ours\xfd.example", nil, A("ceo", "ours.example")},
		{"windows-1256 ZWNJ", "ceo@ours\x9d.example", nil, A("ceo", "ours.example")},
		// IBM037 is no fallback: only a message that declares it is read in it.
		{"declared EBCDIC", "\x83\x85\x96\x7c\x96\xa4\x99\xa2\x4b\x85\xa7\x81\x94\x97\x93\x85", []string{"ibm037"}, A("ceo", "ours.example")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := []byte(tt.value)
			if tt.declared == nil {
				if got := Candidates(nil, v); !slices.Contains(got, tt.want) {
					t.Errorf("Candidates(%q) = %q, want %q among them", tt.value, got, tt.want)
				}
				return
			}
			if got, err := CandidatesIn(nil, v, tt.declared); err != nil || !slices.Contains(got, tt.want) {
				t.Errorf("CandidatesIn(%q, %q) = %q, want %q among them", tt.value, tt.declared, got, tt.want)
			}
			if got := Candidates(nil, v); slices.Contains(got, tt.want) {
				t.Errorf("Candidates(%q) = %q finds %q without the declared charset: the case tests nothing", tt.value, got, tt.want)
			}
		})
	}
	// Past MaxCostlyValue such a value is read as it is only, and says so.
	long := []byte(strings.Repeat("x", MaxCostlyValue) + " ceo\x81\x97ours.example, a@partner.example")
	got, err := CandidatesIn(nil, long, nil)
	if !errors.Is(err, ErrTooCostly) || !slices.Contains(got, A("a", "partner.example")) || slices.Contains(got, A("ceo", "ours.example")) {
		t.Errorf("CandidatesIn(%d bytes) = %q, %v; want the raw reading and ErrTooCostly", len(long), got, err)
	}
	tail := " ceo\x81\x97ours.example"
	atLimit := []byte(strings.Repeat("x", MaxCostlyValue-len(tail)) + tail)
	if got, err := CandidatesIn(nil, atLimit, nil); err != nil || !slices.Contains(got, A("ceo", "ours.example")) {
		t.Errorf("CandidatesIn(%d bytes) = %q, %v: a value of MaxCostlyValue bytes is read in every charset", len(atLimit), got, err)
	}
	// Valid UTF-8 and 7-bit values are read as they are only.
	for _, v := range []string{"Ren\u00e9 <rene@partner.example>", "x@evil.example"} {
		if a, _ := CandidatesIn(nil, []byte(v), []string{"ibm037", "Shift_JIS"}); !reflect.DeepEqual(a, Candidates(nil, []byte(v))) {
			t.Errorf("CandidatesIn(%q) = %q, want Candidates' %q", v, a, Candidates(nil, []byte(v)))
		}
	}
}

func TestDecodeUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"ceo+AEA-ours.example": "ceo@ours.example",
		"a+-b":                 "a+b",
		"+AGMAZQBv-":           "ceo",
		"x+2D3eAQ-":            "x\U0001f601", // a surrogate pair
		"+AEA":                 "@",
		"plain":                "plain",
	} {
		if got := string(decodeUTF7(nil, []byte(in))); got != want {
			t.Errorf("decodeUTF7(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCostlyLimit: a value over MaxCostlyValue that needs visual order is read without it,
// and says so; one within the limit is read in visual order.
func TestCostlyLimit(t *testing.T) {
	rlo := "\"\u202eelpmaxe.sruo@oec\u202c\" <x@evil.example>"
	if got, err := CandidatesIn(nil, []byte(rlo), nil); err != nil || !slices.Contains(got, A("ceo", "ours.example")) {
		t.Errorf("CandidatesIn(%q) = %q, %v; want ceo@ours.example", rlo, got, err)
	}
	long := []byte(strings.Repeat("a@partner.example, ", MaxCostlyValue/19+1) + rlo)
	got, err := CandidatesIn(nil, long, nil)
	if !errors.Is(err, ErrTooCostly) || !slices.Contains(got, A("x", "evil.example")) {
		t.Errorf("CandidatesIn(%d bytes of right-to-left text) = %d candidates, %v; want the readings but visual order, and ErrTooCostly", len(long), len(got), err)
	}
	if got, err := CandidatesIn(nil, bytes.Repeat([]byte("a@partner.example, "), MaxCostlyValue), nil); err != nil || len(got) != 1 {
		t.Errorf("a long value without right-to-left text or 8-bit bytes: %d candidates, %v; want 1, nil", len(got), err)
	}
}
