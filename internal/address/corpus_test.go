package address

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// testdata/corpus.txt holds the From, Sender and Resent-From values of the shared test
// corpus (one "case<TAB>field<TAB>Go-quoted value" a line). Rewrite it with
//
//	go test ./internal/address -run TestCorpus -update -corpus ../../../shared/corpus
//
// (the test runs in the package directory, so -corpus is relative to it).
var (
	update    = flag.Bool("update", false, "rewrite testdata/corpus.txt from -corpus")
	corpusDir = flag.String("corpus", "", "directory of the shared .eml test corpus (for -update)")
)

const corpusFile = "testdata/corpus.txt"

// corpusWant is the blocked address each forged case shows in a sender field, in
// canonical form; "" for the cases forged only by their envelope sender.
var corpusWant = map[string]string{
	"forged-angle-double-open":            "payroll@hq.acme-corp.example",
	"forged-angle-reversed":               "treasury@acme-corp.example",
	"forged-angle-tabs-inside":            "treasury@acme-corp.example",
	"forged-bnd-8bit-before":              "treasury@acme-corp.example",
	"forged-bnd-bare-cr-in-received":      "payroll@hq.acme-corp.example",
	"forged-bnd-cr-cr-lf":                 "m.okafor@acme-corp.example",
	"forged-bnd-gt-from-line":             "treasury@acme-corp.example",
	"forged-bnd-no-final-eol-crlf":        "noc@acme-corp.example",
	"forged-cmt-around-at":                "noc@acme-corp.example",
	"forged-cmt-trailing-prose-crlf":      "m.okafor@acme-corp.example",
	"forged-ctl-backspace-del":            "treasury@acme-corp.example",
	"forged-dn-parens-in-quotes":          "payroll@hq.acme-corp.example",
	"forged-dn-text-after-angle":          "treasury@acme-corp.example",
	"forged-env-junk-apex":                "",
	"forged-env-org-crlf":                 "",
	"forged-env-phisher":                  "",
	"forged-env-subdomain-mixed-case":     "",
	"forged-env-subdomain-root-dot":       "",
	"forged-ew-b-in-comment-crlf":         "m.okafor@acme-corp.example",
	"forged-ew-b-split-domain":            "m.okafor@acme-corp.example",
	"forged-ew-cp1252-b-display":          "treasury@acme-corp.example",
	"forged-ew-latin9-q-mailbox":          "treasury@acme-corp.example",
	"forged-fold-after-dot":               "payroll@hq.acme-corp.example",
	"forged-fold-blank-then-value":        "noc@acme-corp.example",
	"forged-fold-quoted-three-lines-crlf": "m.okafor@acme-corp.example",
	"forged-from-alerts-subdomain":        "alerts@billing.acme-corp.example",
	"forged-from-alerts-then-blocked":     "m.okafor@acme-corp.example",
	"forged-from-env-alerts":              "treasury@acme-corp.example",
	"forged-from-junk-deep-subdomain":     "coupons@promo.mx.junk.example",
	"forged-from-name-addr":               "m.okafor@acme-corp.example",
	"forged-from-null-envelope":           "noc@acme-corp.example",
	"forged-from-phisher-mixed-case":      "phisher@scam.example",
	"forged-from-root-dot-angle":          "treasury@acme-corp.example",
	"forged-group-empty-then-mailbox":     "treasury@acme-corp.example",
	"forged-group-named-member-crlf":      "payroll@hq.acme-corp.example",
	"forged-idn-ace-upper":                "billing@xn--acm-corp-d1a.example",
	"forged-idn-env-ace":                  "",
	"forged-idn-q-display":                "billing@xn--acm-corp-d1a.example",
	"forged-idn-utf8-from":                "billing@xn--acm-corp-d1a.example",
	"forged-mbx-bare-no-comma":            "noc@acme-corp.example",
	"forged-mbx-middle-of-three":          "treasury@acme-corp.example",
	"forged-multi-indented-first-line":    "treasury@acme-corp.example",
	"forged-multi-ours-between":           "m.okafor@acme-corp.example",
	"forged-name-folded-before-colon":     "payroll@hq.acme-corp.example",
	"forged-name-tabs-before-colon":       "treasury@acme-corp.example",
	"forged-nul-before-angle":             "payroll@hq.acme-corp.example",
	"forged-nul-in-domain":                "noc@acme-corp.example",
	"forged-qlp-escaped-dot":              "m.okafor@acme-corp.example",
	"forged-qlp-holds-mailbox":            "treasury@acme-corp.example",
	"forged-route-empty-elements":         "noc@acme-corp.example",
	"forged-size-long-quoted-display":     "treasury@acme-corp.example",
}

// corpusTrusted are the legit cases that pass only because the client is a relay client:
// their From is ours on purpose.
var corpusTrusted = map[string]bool{
	"legit-relay-banned":        true,
	"legit-relay-outbound-crlf": true,
	"legit-relay-tricky-from":   true,
}

// corpusBlocked reports whether the corpus badsenders file blocks the canonical address a.
func corpusBlocked(a string) bool {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return false
	}
	domain := a[at+1:]
	under := func(d string) bool { return domain == d || strings.HasSuffix(domain, "."+d) }
	switch {
	case a == "alerts@acme-corp.example":
		return false
	case under("acme-corp.example"), under("junk.example"), a == "phisher@scam.example",
		domain == "xn--acm-corp-d1a.example":
		return true
	}
	return false
}

type corpusField struct{ name, field, value string }

func readCorpus(t *testing.T) []corpusField {
	t.Helper()
	if *update {
		if *corpusDir == "" {
			t.Fatal("-update needs -corpus DIR")
		}
		writeCorpus(t, *corpusDir)
	}
	f, err := os.Open(corpusFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields []corpusField
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("%s: bad line %q", corpusFile, sc.Text())
		}
		v, err := strconv.Unquote(parts[2])
		if err != nil {
			t.Fatalf("%s: %v in %q", corpusFile, err, parts[2])
		}
		fields = append(fields, corpusField{parts[0], parts[1], v})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return fields
}

var senderField = regexp.MustCompile(`(?is)^[ \t]*(from|sender|resent-from)[ \t]*:(.*)$`)

// writeCorpus extracts the sender fields of every .eml in dir the way the most lenient
// reader does: the header ends at the first truly empty line, a bare CR also ends a line,
// continuation lines are unfolded, and an indented line with no field before it is a field.
func writeCorpus(t *testing.T, dir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no .eml files in %s: %v", dir, err)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, path := range names {
		msg, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		end := len(msg)
		for _, sep := range []string{"\n\n", "\n\r\n"} {
			if i := bytes.Index(msg, []byte(sep)); i >= 0 && i < end {
				end = i
			}
		}
		var lines []string
		for _, l := range regexp.MustCompile(`\r\n|\n|\r`).Split(string(msg[:end]), -1) {
			if l == "" {
				continue
			}
			if (l[0] == ' ' || l[0] == '\t') && len(lines) > 0 {
				lines[len(lines)-1] += l
				continue
			}
			lines = append(lines, l)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".eml")
		for _, l := range lines {
			if m := senderField.FindStringSubmatch(l); m != nil {
				fmt.Fprintf(&out, "%s\t%s\t%q\n", name, strings.ToLower(m[1]), m[2])
			}
		}
	}
	if err := os.WriteFile(corpusFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorpus(t *testing.T) {
	byCase := map[string][]corpusField{}
	for _, f := range readCorpus(t) {
		byCase[f.name] = append(byCase[f.name], f)
	}
	for name := range corpusWant {
		if _, ok := byCase[name]; !ok {
			t.Errorf("%s: no sender field in %s", name, corpusFile)
		}
	}
	for name, fields := range byCase {
		t.Run(name, func(t *testing.T) {
			var blocked []string
			have := map[string]bool{}
			for _, f := range fields {
				for _, a := range Candidates(nil, []byte(f.value)) {
					c := a.Canonical()
					have[c] = true
					if corpusBlocked(c) {
						blocked = append(blocked, f.field+": "+c)
					}
				}
			}
			switch {
			case strings.HasPrefix(name, "forged-"):
				want, ok := corpusWant[name]
				if !ok {
					t.Fatalf("no expectation for %s", name)
				}
				if want == "" {
					if blocked != nil {
						t.Errorf("blocked candidates %q in a case forged by its envelope only", blocked)
					}
				} else if !have[want] {
					t.Errorf("candidates %q lack %q", keys(have), want)
				}
			case corpusTrusted[name]:
				if blocked == nil {
					t.Errorf("relay case: expected our address among the candidates (the relay passes it), got %q", keys(have))
				}
			default:
				if blocked != nil {
					t.Errorf("legitimate message gives blocked candidates %q", blocked)
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
