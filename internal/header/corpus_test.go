package header

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus/*.golden")

// corpusDir holds a copy of the project's test corpus (shared/corpus): the messages and
// cases.tsv, and the fields Scan reports for each message in NAME.golden.
const corpusDir = "testdata/corpus"

// goldenMax: messages larger than this have no golden file (their one long From is
// checked in TestCorpus instead).
const goldenMax = 16 << 10

// corpusWant is a text that must appear in some reported value of a forged message,
// both lower-cased and with NUL bytes removed; the default is our domain. The envelope
// cases (forged-env-*, forged-idn-env-*) have an external From and no entry is checked.
var corpusWant = map[string]string{
	"forged-from-phisher-mixed-case":      "phisher@scam.example",
	"forged-from-junk-deep-subdomain":     "coupons@promo.mx.junk.example",
	"forged-idn-ace-upper":                "billing@xn--acm-corp-d1a.example",
	"forged-idn-utf8-from":                "billing@acmé-corp.example",
	"forged-idn-q-display":                "billing=40acm=c3=a9-corp.example",
	"forged-ew-b-in-comment-crlf":         "=?utf-8?B?TWFyZ2FyZXQgT2thZm9yIDxtLm9rYWZvckBhY21lLWNvcnAuZXhhbXBsZT4=?=",
	"forged-ew-b-split-domain":            "=?utf-8?B?bS5va2Fmb3JAYWNtZQ==?=\t=?utf-8?B?LWNvcnAuZXhhbXBsZQ==?=",
	"forged-ew-cp1252-b-display":          "=?windows-1252?B?VHLpc29yZXJpZSCWIHRyZWFzdXJ5QGFjbWUtY29ycC5leGFtcGxl?=",
	"forged-ew-latin9-q-mailbox":          "=3ctreasury=40acme-corp=2eexample=3e",
	"forged-fold-after-dot":               "<payroll@hq.\tacme-corp.example>",
	"forged-cmt-around-at":                "noc (network ops) @ (main site) acme-corp.example",
	"forged-nul-in-domain":                "noc@acme-corp.example",
	"forged-bnd-bare-cr-in-received":      "payroll@hq.acme-corp.example",
	"forged-name-folded-before-colon":     "payroll@hq.acme-corp.example",
	"forged-multi-indented-first-line":    `"treasury" <treasury@acme-corp.example>`,
	"forged-fold-quoted-three-lines-crlf": `"margaret okafor, chief financial officer" <m.okafor@acme-corp.example>`,
	"forged-fold-blank-then-value":        "<noc@acme-corp.example>",
}

// legitOursInSender are the legitimate messages whose sender fields do name our domain
// (or a look-alike containing its name): they pass for another reason (exception, relay
// client, a different domain).
var legitOursInSender = map[string]bool{
	"legit-alerts-exact":        true,
	"legit-alerts-esp-upper":    true,
	"legit-look-dotnet":         true,
	"legit-look-local-part":     true,
	"legit-look-prefix-label":   true,
	"legit-relay-outbound-crlf": true,
	"legit-relay-tricky-from":   true,
}

type corpusCase struct{ name, note string }

func readCases(t *testing.T) []corpusCase {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "cases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 5 {
			t.Fatalf("cases.tsv: bad line %q", line)
		}
		cases = append(cases, corpusCase{cols[0], cols[4]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func normal(v string) string { return strings.ToLower(strings.ReplaceAll(v, "\x00", "")) }

func TestCorpus(t *testing.T) {
	cases := readCases(t)
	stored := 0
	for _, c := range cases {
		path := filepath.Join(corpusDir, c.name+".eml")
		msg, err := os.ReadFile(path)
		if os.IsNotExist(err) && strings.Contains(c.note, "generated at run time") {
			continue // the big ones: see TestCorpusBig
		}
		if err != nil {
			t.Fatal(err)
		}
		stored++
		t.Run(c.name, func(t *testing.T) {
			var first result
			for i, sp := range splits() {
				res := run(msg, Options{AllSenderFields: true}, sp.wrap)
				if res.err != nil {
					t.Fatalf("%s: Scan error %v", sp.name, res.err)
				}
				checkCopy(t, msg, res)
				if i == 0 {
					first = res
				} else if !reflect.DeepEqual(res.fields, first.fields) {
					t.Errorf("%s: fields\n%s differ from a whole read:\n%s", sp.name, formatFields(res.fields), formatFields(first.fields))
				}
			}
			checkCorpusFields(t, c, first.fields)
			if len(msg) <= goldenMax {
				checkGolden(t, filepath.Join(corpusDir, c.name+".golden"), formatFields(first.fields))
			}
		})
	}
	if stored < 80 {
		t.Errorf("only %d corpus messages found", stored)
	}
}

func checkCorpusFields(t *testing.T, c corpusCase, fields []got) {
	t.Helper()
	ours := false
	for _, f := range fields {
		if strings.Contains(normal(f.Value), "acme-corp.example") {
			ours = true
		}
	}
	switch {
	case strings.HasPrefix(c.name, "legit-"):
		if ours && !legitOursInSender[c.name] {
			t.Errorf("legitimate message: a sender field names our domain:\n%s", formatFields(fields))
		}
		if !ours && legitOursInSender[c.name] {
			t.Errorf("legitimate message expected to name our domain in a sender field:\n%s", formatFields(fields))
		}
	case strings.HasPrefix(c.name, "forged-env-") || c.name == "forged-idn-env-ace":
		if ours {
			t.Errorf("envelope case: the From names our domain:\n%s", formatFields(fields))
		}
	default:
		want, ok := corpusWant[c.name]
		if !ok {
			want = "acme-corp.example"
		}
		for _, f := range fields {
			if strings.Contains(normal(f.Value), normal(want)) {
				return
			}
		}
		t.Errorf("forged message: no sender field contains %q:\n%s", want, formatFields(fields))
	}
}

func checkGolden(t *testing.T, path, text string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if text != string(want) {
		t.Errorf("fields differ from %s:\n got:\n%s want:\n%s", path, text, want)
	}
}

// TestCorpusBig builds the corpus cases that are generated at run time (3 MB of
// Received fields before the From, an 18 MB body after it) in the same shape.
func TestCorpusBig(t *testing.T) {
	received := "Received: from relay%05d.lure-mailer.example (relay%05d.lure-mailer.example [203.0.113.7])\n" +
		"\tby inbound.acme-corp.example (Postfix) with ESMTP id A%05d for <frontoffice@acme-corp.example>;\n" +
		"\tThu, 3 Oct 2024 16:45:11 +0000\n"
	var big bytes.Buffer
	for i := 0; big.Len() < 3<<20; i++ {
		big.WriteString(strings.ReplaceAll(received, "%05d", "00000"))
	}
	head := big.String()
	body := strings.Repeat("From: Treasury <treasury@acme-corp.example> quoted in the body\n", 18<<20/62)
	for _, tc := range []struct {
		name string
		msg  string
		want []got
	}{
		{"big header forged", head + "From: Treasury <treasury@acme-corp.example>\nTo: x\n\nHello\n", []got{from("Treasury <treasury@acme-corp.example>")}},
		{"big header legit", head + "From: Priya <priya@northwind-traders.example>\n\nHello\n", []got{from("Priya <priya@northwind-traders.example>")}},
		{"big body", "From: Priya <priya@northwind-traders.example>\n\n" + body, []got{from("Priya <priya@northwind-traders.example>")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(tc.msg)
			for _, sp := range splits()[:2] {
				if sp.name == "onebyte" && len(msg) > 4<<20 {
					continue
				}
				res := run(msg, Options{MaxField: 1 << 20}, sp.wrap)
				if res.err != nil {
					t.Fatalf("%s: %v", sp.name, res.err)
				}
				if !reflect.DeepEqual(res.fields, tc.want) {
					t.Errorf("%s: fields\n%s want\n%s", sp.name, formatFields(res.fields), formatFields(tc.want))
				}
				checkCopy(t, msg, res)
			}
		})
	}
}

// TestCorpusLongFrom checks the one message too big for a golden file: a From line of
// about 170 KB, held whole, ending in our address.
func TestCorpusLongFrom(t *testing.T) {
	msg, err := os.ReadFile(filepath.Join(corpusDir, "forged-size-long-quoted-display.eml"))
	if err != nil {
		t.Fatal(err)
	}
	res := run(msg, Options{}, splits()[0].wrap)
	if res.err != nil || len(res.fields) != 1 {
		t.Fatalf("err %v, %d fields; want 1 field", res.err, len(res.fields))
	}
	v := res.fields[0].Value
	if len(v) < 160000 || !strings.HasPrefix(v, `"Office of the Chief Financial Officer 00000 `) ||
		!strings.HasSuffix(v, `" <treasury@acme-corp.example>`) {
		t.Errorf("value of %d bytes: %.60q ... %q", len(v), v, v[max(0, len(v)-40):])
	}
	if res := run(msg, Options{MaxField: 64 << 10}, splits()[0].wrap); res.err != ErrFieldTooLong {
		t.Errorf("MaxField 64 KiB: err = %v, want ErrFieldTooLong", res.err)
	}
}
