package rules

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"block-forged-sender/internal/address"
)

// FuzzParse checks that parsing never panics, that every rule survives the CDB encoding,
// that keys are canonical, and that an in-memory Set finds every block rule by its key.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/badsenders"); err == nil {
		f.Add(string(b))
	}
	f.Add(lookupRules)
	f.Add("!\"a b\"@x.example rcpt=\"c\"@y.example client=10.0.0.0/8 why # not=scope\r\n")
	f.Add("@bücher.example.\n.XN--BCHER-KVA.example\n")
	f.Add(diagExample)
	f.Add("!@customer.example clinet=.billing.example x\n*@a\n:rcpthosts control=/nonexistent\n@a\n@A.\n!@a\n!a@b rcpt=@c\n!a@b rcpt=@c\n")
	f.Fuzz(func(t *testing.T, text string) {
		var rules []Rule
		err := Parse(strings.NewReader(text), "f", func(r Rule) error {
			rules = append(rules, r)
			return nil
		})
		var list *ErrorList
		if err != nil && !errors.As(err, &list) {
			t.Fatalf("Parse error %v is no *ErrorList", err)
		}
		if list != nil {
			if len(list.Errors) == 0 || len(list.Errors) > MaxErrors || (list.More > 0 && len(list.Errors) != MaxErrors) {
				t.Fatalf("ErrorList of %d errors and %d more", len(list.Errors), list.More)
			}
			for i, e := range list.Errors {
				if e.File != "f" || e.Line < 1 || (i > 0 && e.Line <= list.Errors[i-1].Line) || e.Msg == "" {
					t.Fatalf("error %d: %#v (errors out of order or malformed)", i, e)
				}
			}
		}
		// The build that Compile and LoadText run: no panic, the same version twice, and
		// the same outcome as Parse.
		var reps []Report
		for range 2 {
			mem := memRecords{}
			b := newBuilder("f", func(k, v []byte) error { mem[string(k)] = append(mem[string(k)], slices.Clone(v)); return nil })
			if err := scan(strings.NewReader(text), "f", &b.errs, b.line); err != nil {
				t.Fatal(err)
			}
			if b.errs.empty() != (list == nil) || (list != nil && !reflect.DeepEqual(&b.errs, list)) {
				t.Fatalf("the build finds errors %v; Parse %v", b.errs.err(), err)
			}
			if list != nil {
				break
			}
			if err := b.lint(mem, strings.NewReader(text)); err != nil {
				t.Fatal(err)
			}
			rep := b.report()
			if rep.Entries != len(rules) || !versionForm.MatchString(rep.Version) || len(rep.Warnings) > MaxWarnings {
				t.Fatalf("report %+v for %d rules", rep, len(rules))
			}
			reps = append(reps, rep)
		}
		if len(reps) == 2 && !reflect.DeepEqual(reps[0], reps[1]) {
			t.Fatalf("two builds give %+v and %+v", reps[0], reps[1])
		}
		if err != nil {
			return
		}
		s := &Set{mem: make(map[string][][]byte), file: "f"}
		for _, r := range rules {
			v := appendValue(nil, &r)
			back, err := decodeRule([]byte(r.Key), v, "f")
			if err != nil || !reflect.DeepEqual(*back, r) {
				t.Fatalf("decode(encode(%#v)) = %#v, %v", r, back, err)
			}
			if _, err := inScope([]byte(r.Key), v, Scope{}); err != nil {
				t.Fatalf("inScope(%#v): %v", r, err)
			}
			k := r.Key
			if k == "" || !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 || (k[0] != '.' && k[0] != '@' && !strings.Contains(k, "@")) {
				t.Fatalf("bad key %q from %q", k, r.Entry)
			}
			domain := k[strings.LastIndexByte(k, '@')+1:]
			if k[0] == '.' && !strings.Contains(k, "@") {
				domain = k[1:]
			}
			if c := address.CanonicalDomain(domain); c != domain {
				t.Fatalf("key %q: domain %q is not canonical (%q)", k, domain, c)
			}
			s.mem[k] = append(s.mem[k], v)
		}
		for _, r := range rules {
			if r.Except {
				continue
			}
			addr := r.Key
			switch {
			case addr[0] == '@' && strings.Count(addr, "@") == 1:
				// @host; a key with more than one @ is an exact address whose quoted
				// local part starts with @ ("@"@a -> @@a), probed as it is.
				addr = "x" + addr
			case addr[0] == '.' && !strings.Contains(addr, "@"):
				addr = "x@a" + addr
			}
			m, err := s.Lookup(addr, Scope{})
			if err != nil || m.Block == nil {
				t.Fatalf("Lookup(%q) for rule %#v = %+v, %v", addr, r, m, err)
			}
		}
	})
}

// FuzzSuggest checks that what the message for a wildcard or an expression suggests is
// itself a good entry, and that a pattern that parses is never taken for a wildcard.
func FuzzSuggest(f *testing.F) {
	for _, s := range []string{"*@x.example", "@*.x.example", ".*", `.*@example\.com`, `^joe@example\.com$`, `(.*\.)?example\.com$`,
		`[^@]+@x.example`, "a*b@x.example", `"a*b"@x.example`, ".+@x", "@x.example$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		for _, s := range suggestLiteral(p) {
			if _, msg := parsePattern(s); msg != "" {
				t.Fatalf("suggestLiteral(%q) gives %q: %s", p, s, msg)
			}
		}
		if p != "" {
			if _, msg := parsePattern(p); msg == "" && notLiteral(p, "") != "" {
				t.Fatalf("parsePattern(%q) accepts what notLiteral refuses", p)
			}
		}
	})
}

// FuzzPatternMatches checks that patternMatches agrees with Probes.
func FuzzPatternMatches(f *testing.F) {
	f.Add(".example", "u@a.example")
	f.Add("@a.example", "@a.example")
	f.Add(".b", "u@.b")
	f.Add("@[1.2.3.4]", "u@[1.2.3.4]")
	f.Add(".x", "u@a@b.x")
	f.Fuzz(func(t *testing.T, p, addr string) {
		if p == "" {
			return
		}
		want := slices.Contains(Probes(nil, addr), p)
		if got := patternMatches([]byte(p), addr); got != want {
			t.Fatalf("patternMatches(%q, %q) = %v; Probes = %q", p, addr, got, Probes(nil, addr))
		}
	})
}

// FuzzValue checks that decoding arbitrary value bytes never panics and that decodeRule
// and inScope agree on what is malformed.
func FuzzValue(f *testing.F) {
	r := Rule{Line: 7, Entry: "!a@b", Key: "a@b", Except: true, Rcpts: []string{"@c"}, Clients: []string{"10.0.0.0/8", ".h", "h", "::1"}, Reason: "why"}
	f.Add(appendValue(nil, &r))
	f.Add([]byte("\x01\x00\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, v []byte) {
		_, derr := decodeRule([]byte("k"), v, "f")
		sc := Scope{Recipients: []string{"a@c"}, ClientHost: "x.h"}
		_, serr := inScope([]byte("k"), v, sc)
		d := decoder{b: v}
		d.header()
		if line := d.uvarint(); line == 0 || line > 1<<31 {
			return // decodeRule refuses the line number, which inScope does not read
		}
		if (derr == nil) != (serr == nil) {
			t.Fatalf("decodeRule error %v, inScope error %v", derr, serr)
		}
	})
}
