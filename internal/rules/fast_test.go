package rules

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestParseFast checks which lines the fast path takes and what it makes of them; the
// lines it refuses go to parseLine.
func TestParseFast(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		ok     bool
		key    string
		reason string
	}{
		{"address", "User1@Host1.Example\tbanned address 1", true, "user1@host1.example", "banned address 1"},
		{"at host", "@H2.example  banned host  \t", true, "@h2.example", "banned host"},
		{"dot host", "  .s3.example", true, ".s3.example", ""},
		{"trailing dot", "@a.example.", true, "@a.example", ""},
		{"at in local", "a@b@c.example", true, "a@b@c.example", ""},
		{"exception", "!ok@h.example allowed", true, "ok@h.example", "allowed"},
		{"double bang", "!!a@x.example", true, "!a@x.example", ""},
		{"atext", "a+b=c/d{e}~f'g?h|i`j#k%l&m@x-y_z.example", true, "a+b=c/d{e}~f'g?h|i`j#k%l&m@x-y_z.example", ""},
		{"reason with hash and equals", "@x.example spam, score=1 # note", true, "@x.example", "spam, score=1 # note"},
		{"exception reason", "!a@x.example monitoring service", true, "a@x.example", "monitoring service"},
		{"label of 63", "@" + strings.Repeat("a", 63) + ".example", true, "@" + strings.Repeat("a", 63) + ".example", ""},
		{"underscore in host", "@a_b.example", true, "@a_b.example", ""},
		{"star", "*@x.example", false, "", ""},
		{"star in host", "@*.x.example", false, "", ""},
		{"caret", "^a@x.example", false, "", ""},
		{"dollar", "a@x.example$", false, "", ""},
		{"dollar in local", "a$b@x.example", false, "", ""},
		{"plus in host", "@a+b.example", false, "", ""},
		{"bang in host", "a@b!c.example", false, "", ""},
		{"label of 64", "@" + strings.Repeat("a", 64) + ".example", false, "", ""},
		{"host of 254", "@" + strings.Repeat("a.", 127) + "bb", false, "", ""},
		{"reason starts with option", "@x.example score=1", false, "", ""},
		{"exception reason with equals", "!a@x.example ok note=1", false, "", ""},
		{"exception reason with colon", "!a@x.example ok client:10.0.0.1", false, "", ""},
		{"directive", ":rcpthosts", false, "", ""},
		{"reason with quotes", `@x.example say "hi" <there>`, true, "@x.example", `say "hi" <there>`},
		{"blank", " \t", false, "", ""},
		{"comment", "# @x.example", false, "", ""},
		{"scope", "!a@x.example rcpt=@y.example", false, "", ""},
		{"scope upper case", "!a@x.example CLIENT=10.0.0.1", false, "", ""},
		{"scope on block", "@x.example rcpt=@y.example", false, "", ""},
		{"quoted", `"a b"@x.example`, false, "", ""},
		{"angle", "<a@x.example>", false, "", ""},
		{"literal", "@[192.0.2.1]", false, "", ""},
		{"non-ascii entry", "@bücher.example", false, "", ""},
		{"non-ascii reason", "@x.example café", false, "", ""},
		{"control in reason", "@x.example a\rb", false, "", ""},
		{"del in reason", "@x.example a\x7fb", false, "", ""},
		{"nul", "@x.example\x00", false, "", ""},
		{"token ends oddly", "@x.example\x01 why", false, "", ""},
		{"bang alone", "!", false, "", ""},
		{"no at", "foo.example", false, "", ""},
		{"empty host", "a@", false, "", ""},
		{"at alone", "@", false, "", ""},
		{"at dot", "@.", false, "", ""},
		{"dot dot", "..example", false, "", ""},
		{"empty label", "@a..example", false, "", ""},
		{"two trailing dots", "@a.example..", false, "", ""},
		{"at in host", "@a@b.example", false, "", ""},
		{"paren in host", "a@b(c).example", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fastRule
			ok := parseFast([]byte(tt.line), &f)
			if ok != tt.ok || (ok && (string(f.key) != tt.key || string(f.reason) != tt.reason)) {
				t.Errorf("parseFast(%q) = %v, key %q, reason %q; want %v, %q, %q", tt.line, ok, f.key, f.reason, tt.ok, tt.key, tt.reason)
			}
			if ok {
				checkFastAgrees(t, []byte(tt.line), &f)
			}
		})
	}
}

// checkFastAgrees fails t unless parseLine gives, for line, the rule and encoded value
// that parseFast gave as f.
func checkFastAgrees(t *testing.T, line []byte, f *fastRule) {
	t.Helper()
	want, d, msg := parseLine(line)
	want.File, want.Line = "f", 3
	got := f.rule(line, "f", 3)
	if d != nil || msg != "" || !reflect.DeepEqual(got, want) {
		t.Fatalf("line %q: fast path gives %#v; parseLine gives %#v, %v, %q", line, got, want, d, msg)
	}
	if v, w := appendFastValue(nil, f, 3), appendValue(nil, &want); !bytes.Equal(v, w) {
		t.Fatalf("line %q: fast value %q; appendValue %q", line, v, w)
	}
}

// TestParseFastReuse checks that a key buffer reused from a longer line is not leaked
// into the next one, and that a reason does not outlive its line.
func TestParseFastReuse(t *testing.T) {
	var f fastRule
	for _, tt := range []struct{ line, key, reason string }{
		{"Very.Long.Local.Part@Some.Long.Host.Example long reason", "very.long.local.part@some.long.host.example", "long reason"},
		{"@A.b", "@a.b", ""},
		{"!x@Y.z  r", "x@y.z", "r"},
	} {
		if !parseFast([]byte(tt.line), &f) || string(f.key) != tt.key || string(f.reason) != tt.reason {
			t.Errorf("parseFast(%q) = key %q, reason %q; want %q, %q", tt.line, f.key, f.reason, tt.key, tt.reason)
		}
	}
}

// FuzzParseFast checks that for every line the fast path accepts, parseLine returns the
// same rule, no error and no directive, and appendValue the same bytes: the fast path
// never accepts a line the full parser refuses.
func FuzzParseFast(f *testing.F) {
	for _, s := range []string{
		"User1@Host1.Example\tbanned address 1",
		"@h1.example  banned host ",
		".s2.example",
		"!ok99@h97.example rcpt=@ours.example allowed",
		"!a@x.example Rcpt",
		"a@b@c.example.",
		"@x.example\tsee\tticket",
		"!!a@x.example client",
		"*@x.example",
		"^a@x.example$",
		"@x.example score=1",
		"@x.example spam score=1",
		"!a@x.example ok note=1",
		"!a@x.example ok client:10.0.0.1",
		"!@customer.example clinet=.billing.example billing",
		"@a_b.example",
		"@" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61),
		"@a+b.example",
		":rcpthosts forged",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fr fastRule
		fr.key = []byte("stale key from an earlier line")
		if parseFast(line, &fr) {
			checkFastAgrees(t, line, &fr)
		}
	})
}
