package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// parseAll parses text and returns its rules.
func parseAll(text, file string) ([]Rule, error) {
	var rules []Rule
	err := Parse(strings.NewReader(text), file, func(r Rule) error {
		rules = append(rules, r)
		return nil
	})
	return rules, err
}

func TestParseEntries(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Rule // File "f" and Line 1 are added
	}{
		{"address", "user@host.example", Rule{Entry: "user@host.example", Key: "user@host.example"}},
		{"at host", "@host.example", Rule{Entry: "@host.example", Key: "@host.example"}},
		{"dot host", ".host.example", Rule{Entry: ".host.example", Key: ".host.example"}},
		{"mixed case", "Phisher@Scam.Example", Rule{Entry: "Phisher@Scam.Example", Key: "phisher@scam.example"}},
		{"trailing dot", "@Host.Example.", Rule{Entry: "@Host.Example.", Key: "@host.example"}},
		{"dot host trailing dot", ".Example.", Rule{Entry: ".Example.", Key: ".example"}},
		{"address trailing dot", "a@b.example.", Rule{Entry: "a@b.example.", Key: "a@b.example"}},
		{"idn at", "@bücher.example", Rule{Entry: "@bücher.example", Key: "@xn--bcher-kva.example"}},
		{"idn upper", "@BÜCHER.example", Rule{Entry: "@BÜCHER.example", Key: "@xn--bcher-kva.example"}},
		{"ace", "@XN--BCHER-KVA.example", Rule{Entry: "@XN--BCHER-KVA.example", Key: "@xn--bcher-kva.example"}},
		{"idn dot", ".bücher.example", Rule{Entry: ".bücher.example", Key: ".xn--bcher-kva.example"}},
		{"idn address", "Ü@bücher.example", Rule{Entry: "Ü@bücher.example", Key: "ü@xn--bcher-kva.example"}},
		{"quoted local", `"Phisher"@scam.example`, Rule{Entry: `"Phisher"@scam.example`, Key: "phisher@scam.example"}},
		{"quoted blank", `"A B"@scam.example  why`, Rule{Entry: `"A B"@scam.example`, Key: "a b@scam.example", Reason: "why"}},
		{"quoted at", `"a@b"@scam.example`, Rule{Entry: `"a@b"@scam.example`, Key: "a@b@scam.example"}},
		{"quoted pair", `"a\"b c"@x.example`, Rule{Entry: `"a\"b c"@x.example`, Key: `a"b c@x.example`}},
		{"angle", "<a@x.example>", Rule{Entry: "<a@x.example>", Key: "a@x.example"}},
		{"domain literal", "@[192.0.2.1]", Rule{Entry: "@[192.0.2.1]", Key: "@[192.0.2.1]"}},
		{"reason", "@x.example  forged: our domain  ", Rule{Entry: "@x.example", Key: "@x.example", Reason: "forged: our domain"}},
		{"tab reason", "@x.example\tsee\tticket", Rule{Entry: "@x.example", Key: "@x.example", Reason: "see\tticket"}},
		{"leading blanks", "  \t@x.example", Rule{Entry: "@x.example", Key: "@x.example"}},
		{"reason with hash", "@x.example  spam # 2024", Rule{Entry: "@x.example", Key: "@x.example", Reason: "spam # 2024"}},
		{"reason with equals", "@x.example  spam score=10 a=b", Rule{Entry: "@x.example", Key: "@x.example", Reason: "spam score=10 a=b"}},
		{"reason with url", "@x.example  https://tracker.example/?id=5", Rule{Entry: "@x.example", Key: "@x.example", Reason: "https://tracker.example/?id=5"}},
		{"reason with equals sign alone", "@x.example  =", Rule{Entry: "@x.example", Key: "@x.example", Reason: "="}},
		{"exception reason with colon", "!a@x.example  forged: no, ours", Rule{Entry: "!a@x.example", Key: "a@x.example", Except: true, Reason: "forged: no, ours"}},
		{"exception reason with client word", "!a@x.example  our client", Rule{Entry: "!a@x.example", Key: "a@x.example", Except: true, Reason: "our client"}},
		{"underscore", "@a_b.example", Rule{Entry: "@a_b.example", Key: "@a_b.example"}},
		{"dollar in local", "a$b@x.example", Rule{Entry: "a$b@x.example", Key: "a$b@x.example"}},
		{"quoted star", `"*"@x.example`, Rule{Entry: `"*"@x.example`, Key: "*@x.example"}},
		{"dot plus in local", "a.+b@x.example", Rule{Entry: "a.+b@x.example", Key: "a.+b@x.example"}},
		{"label of 63", "@" + strings.Repeat("a", 63) + ".example", Rule{Entry: "@" + strings.Repeat("a", 63) + ".example", Key: "@" + strings.Repeat("a", 63) + ".example"}},
		{"exception", "!alerts@x.example  monitoring", Rule{Entry: "!alerts@x.example", Key: "alerts@x.example", Except: true, Reason: "monitoring"}},
		{"exception at", "!@x.example", Rule{Entry: "!@x.example", Key: "@x.example", Except: true}},
		{"exception dot", "!.x.example", Rule{Entry: "!.x.example", Key: ".x.example", Except: true}},
		{"scopes", "!a@x.example rcpt=B@Y.example rcpt=@z.example client=192.0.2.1 client=2001:DB8::/32 client=.Relay.Example client=mx.example ok",
			Rule{Entry: "!a@x.example", Key: "a@x.example", Except: true,
				Rcpts:   []string{"b@y.example", "@z.example"},
				Clients: []string{"192.0.2.1", "2001:db8::/32", ".relay.example", "mx.example"},
				Reason:  "ok"}},
		{"scope case", "!a@x.example RCPT=.y.example Client=10.1.2.3/8", Rule{Entry: "!a@x.example", Key: "a@x.example", Except: true,
			Rcpts: []string{".y.example"}, Clients: []string{"10.0.0.0/8"}}},
		{"mapped client", "!a@x.example client=::ffff:192.0.2.1 client=::ffff:10.0.0.0/104", Rule{Entry: "!a@x.example", Key: "a@x.example", Except: true,
			Clients: []string{"192.0.2.1", "10.0.0.0/8"}}},
		{"quoted rcpt", `!a@x.example rcpt="b c"@y.example`, Rule{Entry: "!a@x.example", Key: "a@x.example", Except: true,
			Rcpts: []string{"b c@y.example"}}},
		{"double bang", "!!a@x.example", Rule{Entry: "!!a@x.example", Key: "!a@x.example", Except: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAll(tt.line, "f")
			tt.want.File, tt.want.Line = "f", 1
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("Parse(%q) = %#v, %v; want %#v", tt.line, got, err, tt.want)
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	text := "\uFEFF# comment\r\n\r\n   \t\n  # indented comment\n@a.example\r\nb@c.example  why\r\n# last\n.d.example"
	got, err := parseAll(text, "badsenders")
	want := []Rule{
		{File: "badsenders", Line: 5, Entry: "@a.example", Key: "@a.example"},
		{File: "badsenders", Line: 6, Entry: "b@c.example", Key: "b@c.example", Reason: "why"},
		{File: "badsenders", Line: 8, Entry: ".d.example", Key: ".d.example"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %#v, %v; want %#v", got, err, want)
	}
	if got, err := parseAll("", "f"); err != nil || got != nil {
		t.Errorf("Parse(empty) = %#v, %v; want nothing", got, err)
	}
}

// TestParseBadmailfrom checks that a qmail control/badmailfrom file parses unchanged.
func TestParseBadmailfrom(t *testing.T) {
	got, err := parseAll("@spam.example\nJoe@Example.COM\n@xn--bcher-kva.example\n", "badmailfrom")
	want := []string{"@spam.example", "joe@example.com", "@xn--bcher-kva.example"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("Parse = %#v, %v; want %d rules", got, err, len(want))
	}
	for i, r := range got {
		if r.Key != want[i] || r.Except || r.Reason != "" || r.Line != i+1 {
			t.Errorf("rule %d = %#v; want key %q, line %d, no reason", i, r, want[i], i+1)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := "@x.example " + strings.Repeat("r", MaxLine-len("@x.example "))
	tests := []struct {
		name string
		text string
		want string
	}{
		{"no at", "# c\nfoo.example\n", `f:2: bad entry "foo.example": want user@host, @host or .host`},
		{"at alone", "@\n", `f:1: bad entry "@": empty host`},
		{"empty host", "user@ why\n", `f:1: bad entry "user@": empty host`},
		{"dot alone", "\n\n.\n", `f:3: bad entry ".": empty host`},
		{"at dot", "@.\n", `f:1: bad entry "@.": empty host`},
		{"bang alone", "! reason\n", `f:1: exception without an entry`},
		{"bang no at", "!foo\n", `f:1: bad entry "!foo": want user@host, @host or .host`},
		{"empty local", `""@x.example`, `f:1: bad entry """@x.example": empty local part`},
		{"empty label", "@a..example", `f:1: bad entry "@a..example": empty label in host`},
		{"dot dot", "..example", `f:1: bad entry "..example": empty label in host`},
		{"two trailing dots", "@a.example..", `f:1: bad entry "@a.example..": empty label in host`},
		{"at in host", "@a@b.example", `f:1: bad entry "@a@b.example": invalid character '@' in host`},
		{"paren in host", "a@b(c).example", `f:1: bad entry "a@b(c).example": invalid character '(' in host`},
		{"bad literal", "@[1.2.3.4", `f:1: bad entry "@[1.2.3.4": bad domain literal`},
		{"unterminated quote", `"a b@x.example reason`, `f:1: unterminated quoted string in entry`},
		{"scope on block", "@x.example rcpt=@y.example", `f:1: scope "rcpt=@y.example" on a block entry: scopes are only allowed on an exception (!ENTRY)`},
		{"client on block", "a@x.example client=10.0.0.1 why", `f:1: scope "client=10.0.0.1" on a block entry: scopes are only allowed on an exception (!ENTRY)`},
		{"bad cidr", "!a@x.example client=10.0.0.0/33", `f:1: bad scope "client=10.0.0.0/33": bad CIDR prefix`},
		{"bad ip", "!a@x.example client=10.0.0.256", `f:1: bad scope "client=10.0.0.256": bad IP address`},
		{"bad ipv6", "!a@x.example client=2001:db8::g", `f:1: bad scope "client=2001:db8::g": bad IP address`},
		{"zone", "!a@x.example client=fe80::1%eth0", `f:1: bad scope "client=fe80::1%eth0": bad IP address`},
		{"empty client", "!a@x.example client=", `f:1: bad scope "client=": empty client`},
		{"empty rcpt", "!a@x.example rcpt=", `f:1: bad scope "rcpt=": empty pattern`},
		{"bad rcpt", "!a@x.example rcpt=bob", `f:1: bad scope "rcpt=bob": want user@host, @host or .host`},
		{"unterminated scope", `!a@x.example rcpt="b@y.example`, `f:1: unterminated quoted string in scope`},
		{"nul", "@x.example\n@y\x00.example\n", `f:2: NUL byte in line`},
		{"nul in comment", "# a\x00b\n", `f:1: NUL byte in line`},
		{"nul in reason", "@x.example why\x00\n", `f:1: NUL byte in line`},
		{"bad utf8 entry", "@x\xff.example\n", `f:1: invalid UTF-8 in entry`},
		{"bad utf8 reason", "@x.example caf\xe9\n", `f:1: invalid UTF-8 in reason`},
		{"bad utf8 scope", "!a@x.example rcpt=@\xff", `f:1: invalid UTF-8 in scope`},
		{"cr in entry", "@x.example\r\r\n", `f:1: invalid character U+000D in entry`},
		{"bare cr", "@x.example\rb@y.example\n", `f:1: invalid character U+000D in entry`},
		{"cr in reason", "@x.example why\rnot\n", `f:1: invalid character U+000D in reason`},
		{"nbsp in entry", "@x.example\u00a0why", `f:1: invalid character U+00A0 in entry`},
		{"c1 in reason", "@x.example a\u0085b", `f:1: invalid character U+0085 in reason`},
		{"line too long", "@x.example\n" + long + "x\n", `f:2: line longer than 65536 bytes`},
		{"line far too long", strings.Repeat("x", 3*MaxLine), `f:1: line longer than 65536 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAll(tt.text, "f")
			var se *SyntaxError
			if !errors.As(err, &se) || err.Error() != tt.want {
				t.Errorf("Parse(%q) error = %v; want *SyntaxError %q", tt.text, err, tt.want)
			}
		})
	}
	// The longest line allowed, with either line end, parses.
	for _, end := range []string{"\n", "\r\n", ""} {
		got, err := parseAll(long+end, "f")
		if err != nil || len(got) != 1 || len(got[0].Reason) != MaxLine-len("@x.example ") {
			t.Errorf("Parse(line of %d bytes + %q) = %d rules, %v; want 1 rule", len(long), end, len(got), err)
		}
	}
}

func TestParseCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Parse(strings.NewReader("@a.example\n@b.example\n"), "f", func(Rule) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Parse with failing fn = %v after %d calls; want stop after 1", err, n)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	err := Parse(errReader{}, "f", func(Rule) error { return nil })
	if err == nil || err.Error() != "rules: read f: disk on fire" {
		t.Errorf("Parse(failing reader) = %v; want rules: read f: disk on fire", err)
	}
}

func TestParsePatterns(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{"@Ours.Example", []string{"@ours.example"}, ""},
		{"@a.example,.B.example  c@D.example.\tbücher@bücher.example", []string{"@a.example", ".b.example", "c@d.example", "bücher@xn--bcher-kva.example"}, ""},
		{`"x y"@a.example,@b.example`, []string{"x y@a.example", "@b.example"}, ""},
		{"@a.example,nope", nil, `rules: pattern "nope": want user@host, @host or .host`},
		{"@a.example,!@b.example", nil, `rules: pattern "!@b.example": an exception is not a pattern`},
		{"@", nil, `rules: pattern "@": empty host`},
		{`"a@b.example`, nil, `rules: pattern "\"a@b.example": unterminated quoted string`},
		{"@a\x00.example", nil, `rules: pattern "@a\x00.example": invalid character U+0000 in pattern`},
		{"@a\xff.example", nil, `rules: pattern "@a\xff.example": invalid UTF-8 in pattern`},
	}
	for _, tt := range tests {
		got, err := ParsePatterns(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if !reflect.DeepEqual(got, tt.want) || gotErr != tt.wantErr {
			t.Errorf("ParsePatterns(%q) = %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestSyntaxErrorString(t *testing.T) {
	e := &SyntaxError{File: "badsenders", Line: 12, Msg: "bad entry"}
	if got := e.Error(); got != "badsenders:12: bad entry" {
		t.Errorf("Error() = %q", got)
	}
}
