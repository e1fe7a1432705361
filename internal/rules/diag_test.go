package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestParseAllErrors: every malformed line is reported, in line order, and the good lines
// still reach fn.
func TestParseAllErrors(t *testing.T) {
	text := "@a.example\n@\n" + strings.Repeat("x", MaxLine+1) + "\n@b.example\n!\nfoo\n.c.example\n"
	got, err := parseAll(text, "f")
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse = %v; want an *ErrorList", err)
	}
	var lines []string
	for _, e := range list.Errors {
		lines = append(lines, e.Error())
	}
	want := []string{
		`f:2: bad entry "@": empty host`,
		`f:3: line longer than 65536 bytes`,
		`f:5: exception without an entry`,
		`f:6: bad entry "foo": want user@host, @host or .host`,
	}
	if !slices.Equal(lines, want) || list.More != 0 {
		t.Errorf("errors = %q, %d more; want %q", lines, list.More, want)
	}
	if want := `f:2: bad entry "@": empty host (and 3 more errors)`; err.Error() != want {
		t.Errorf("Error() = %q; want %q", err, want)
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 {
		t.Errorf("errors.As(*SyntaxError) = %v; want line 2", se)
	}
	var keys []string
	for _, r := range got {
		keys = append(keys, fmt.Sprint(r.Line, " ", r.Key))
	}
	if want := []string{"1 @a.example", "4 @b.example", "7 .c.example"}; !slices.Equal(keys, want) {
		t.Errorf("rules = %q; want %q", keys, want)
	}
}

// TestErrorListCap: past MaxErrors the errors are counted, not listed.
func TestErrorListCap(t *testing.T) {
	_, err := parseAll(strings.Repeat("bad\n", MaxErrors+50), "f")
	var list *ErrorList
	if !errors.As(err, &list) || len(list.Errors) != MaxErrors || list.More != 50 || list.Errors[MaxErrors-1].Line != MaxErrors {
		t.Fatalf("Parse = %v; want %d errors and 50 more", err, MaxErrors)
	}
	if !strings.HasSuffix(err.Error(), "(and 149 more errors)") {
		t.Errorf("Error() = %q", err)
	}
	if e := (&ErrorList{Errors: []*SyntaxError{{"f", 1, "a"}, {"f", 2, "b"}}}).Error(); e != "f:1: a (and 1 more error)" {
		t.Errorf("Error() of two = %q", e)
	}
	if n := len((&ErrorList{Errors: list.Errors[:3]}).Unwrap()); n != 3 {
		t.Errorf("Unwrap gives %d errors; want 3", n)
	}
}

// TestScopeMistakes: a mistyped, misplaced or badly written scope is an error, never
// reason text that would make the exception hold for everyone.
func TestScopeMistakes(t *testing.T) {
	tests := []struct{ line, want string }{
		{"!@customer.example clinet=.billing.example  billing provider",
			`unknown scope "clinet=.billing.example": did you mean client=? (the scopes are rcpt= and client=)`},
		{"!@x.example RCTP=@y.example", `unknown scope "RCTP=@y.example": did you mean rcpt=? (the scopes are rcpt= and client=)`},
		{"!@x.example recipient=@y.example", `unknown scope "recipient=@y.example": did you mean rcpt=? (the scopes are rcpt= and client=)`},
		{"!@x.example ip=10.0.0.1", `unknown scope "ip=10.0.0.1": did you mean client=? (the scopes are rcpt= and client=)`},
		{"!@x.example note=vip", `unknown scope "note=vip": the scopes are rcpt= and client=, and a reason may not start with NAME= (reword it)`},
		{"!@x.example rcpt=@x.example allowed client=10.0.0.1",
			`the reason holds "client=10.0.0.1", which looks like a scope: scopes come right after the entry, as NAME=VALUE without blanks, and an exception's reason may hold no NAME=, '=' or rcpt:/client: word (reword it)`},
		{"!@x.example allowed clinet=10.0.0.1", `the reason holds "clinet=10.0.0.1", which looks like a scope: ` + scopeAdvice},
		{"!@x.example client = 10.0.0.1", `the reason holds "=", which looks like a scope: ` + scopeAdvice},
		{"!@x.example client =10.0.0.1", `the reason holds "=10.0.0.1", which looks like a scope: ` + scopeAdvice},
		{"!@x.example client:10.0.0.1", `the reason holds "client:10.0.0.1", which looks like a scope: ` + scopeAdvice},
		{"!@x.example ok Rcpt:@x.example", `the reason holds "Rcpt:@x.example", which looks like a scope: ` + scopeAdvice},
		{"@x.example score=5 spam", `"score=5" is not a scope: a block entry takes none (rcpt= and client= go on an exception, !ENTRY), and a reason may not start with NAME= (reword it)`},
		{"@x.example clinet=10.0.0.1", `"clinet=10.0.0.1" is not a scope: a block entry takes none (rcpt= and client= go on an exception, !ENTRY), and a reason may not start with NAME= (reword it)`},
	}
	for _, tt := range tests {
		_, err := parseAll(tt.line, "f")
		if want := "f:1: " + tt.want; err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v\nwant %s", tt.line, err, want)
		}
	}
}

const scopeAdvice = `scopes come right after the entry, as NAME=VALUE without blanks, and an exception's reason may hold no NAME=, '=' or rcpt:/client: word (reword it)`

// TestNotLiteral: wildcards, regular expressions and impossible hosts are errors that
// say what to write.
func TestNotLiteral(t *testing.T) {
	generic := ": write user@host, @host (every address at host) or .host (every address under it)"
	tests := []struct{ line, want string }{
		{"*@x.example", `bad entry "*@x.example": '*' is not a wildcard here: write @x.example`},
		{"!*@x.example", `bad entry "!*@x.example": '*' is not a wildcard here: write !@x.example`},
		{"@*.x.example", `bad entry "@*.x.example": '*' is not a wildcard here: write .x.example`},
		{"*@*.x.example", `bad entry "*@*.x.example": '*' is not a wildcard here: write .x.example`},
		{"*.x.example", `bad entry "*.x.example": '*' is not a wildcard here: write .x.example`},
		{"a*b@x.example", `bad entry "a*b@x.example": '*' is not a wildcard here` + generic + `, or quote a local part that holds a real '*' ("a*b"@host)`},
		{"a@*.x.example", `bad entry "a@*.x.example": '*' is not a wildcard here` + generic},
		{".*", `bad entry ".*": looks like a regular expression (qregex, a badmailfrom patch): entries are literal` + generic},
		{`.*@example\.com`, `bad entry ".*@example\.com": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write @example.com`},
		{`^joe@example\.com$`, `bad entry "^joe@example\.com$": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write joe@example.com`},
		{`.*@.*\.example\.com`, `bad entry ".*@.*\.example\.com": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write .example.com`},
		{`(.*\.)?example\.com$`, `bad entry "(.*\.)?example\.com$": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write @example.com and .example.com`},
		{`.+@example.com`, `bad entry ".+@example.com": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write @example.com`},
		{`[^@]+@example\.com`, `bad entry "[^@]+@example\.com": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write @example.com`},
		{"!a@x.example rcpt=*@ours.example", `bad scope "rcpt=*@ours.example": '*' is not a wildcard here: write rcpt=@ours.example`},
		{"!a@x.example client=*.relay.example", `bad scope "client=*.relay.example": '*' is not a wildcard here: write client=.relay.example for every host under relay.example`},
		{".[192.0.2.1]", `bad entry ".[192.0.2.1]": a domain literal has no subdomains: write @[192.0.2.1]`},
		{"!a@x.example client=.[192.0.2.1]", `bad scope "client=.[192.0.2.1]": a domain literal has no subdomains`},
		{"@" + strings.Repeat("a", 64) + ".example", `bad entry "@` + strings.Repeat("a", 64) + `.example": label "aaaaaaaaaaaaaaaaaaaa..." is 64 octets long (in ACE form), and a DNS label holds at most 63: a dot is missing?`},
		{"@" + strings.Repeat("ü", 60) + ".example", `bad entry "@` + strings.Repeat("ü", 60) + `.example": label "xn--tdaaaaaaaaaaaaaa..." is 66 octets long (in ACE form), and a DNS label holds at most 63: a dot is missing?`},
		{"@" + strings.Repeat("abc.", 63) + "de", `bad entry "@` + strings.Repeat("abc.", 63) + `de": host is 254 octets long (in ACE form), and a domain name holds at most 253`},
		{"@a+b.example", `bad entry "@a+b.example": invalid character '+' in host`},
		{"a@x.example$", `bad entry "a@x.example$": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write a@x.example`},
	}
	for _, tt := range tests {
		_, err := parseAll(tt.line, "f")
		if want := "f:1: " + tt.want; err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v\nwant %s", tt.line, err, want)
		}
	}
	// 80 octets of UTF-8, 46 in ACE form: a good label.
	if _, err := parseAll("@"+strings.Repeat("ü", 40)+".example", "f"); err != nil {
		t.Errorf("a label of 46 octets in ACE form: %v", err)
	}
	// What it suggests is itself a good entry.
	for _, p := range []string{"*@x.example", "@*.x.example", `(.*\.)?example\.com$`, `^joe@example\.com$`} {
		for _, s := range suggestLiteral(p) {
			if _, msg := parsePattern(s); msg != "" {
				t.Errorf("suggestLiteral(%q) gives %q: %s", p, s, msg)
			}
		}
	}
}

// buildBoth compiles text to a CDB and loads it into memory, and checks that both give
// the same report.
func buildBoth(t *testing.T, text string) (src string, rep Report) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "badsenders")
	writeFile(t, src, text)
	rep, err := Compile(src, src+".cdb")
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	s, mrep, err := LoadText(src)
	if err != nil {
		t.Fatalf("LoadText: %v", err)
	}
	s.Close()
	if !reflect.DeepEqual(rep, mrep) {
		t.Errorf("Compile gives %+v; LoadText %+v", rep, mrep)
	}
	return src, rep
}

func warningTexts(rep Report) []string {
	var out []string
	for _, w := range rep.Warnings {
		out = append(out, w.String())
	}
	return out
}

// TestWarnings compiles a list with one of each warning, and one without any.
func TestWarnings(t *testing.T) {
	long := strings.Repeat("r", replyMax+1)
	text := strings.Join([]string{
		"@dup.example  first",                 // 1
		"@Dup.Example.  second",               // 2: repeats 1
		"@x.example",                          // 3
		"!@x.example  cancels line 3",         // 4: conflict
		"!a@nothing.example  not needed",      // 5
		"@long.example  " + long,              // 6
		"@utf8.example  Domäne gefälscht",     // 7
		"!a@b.example rcpt=@c.example",        // 8: not needed
		"!a@b.example rcpt=@c.example  again", // 9: repeats 8
		"!a@b.example rcpt=@d.example",        // 10: another scope, not a repeat (but not needed)
		"u1@y.example",                        // 11
		"u2@y.example",                        // 12
		"!@y.example",                         // 13: cancels 11 and 12
		"@z.example",                          // 14
		"!@z.example client=10.0.0.1",         // 15: scoped: fine
	}, "\n") + "\n"
	src, rep := buildBoth(t, text)
	want := []string{
		src + `:2: "@Dup.Example." repeats the block entry on line 1 (@dup.example): this line is never used`,
		src + `:4: exception "!@x.example" has no scope, so the block entry on line 3 never applies`,
		src + `:5: exception "!a@nothing.example" is not needed: no block entry matches any address it matches`,
		src + `:6: the reason is 246 bytes long: qmail's reply to the client carries 245 (it is sent as "D" + reason + " (#5.7.1)" in at most 255), so the client sees it cut`,
		src + `:7: the reason is not ASCII: qmail's reply to the client turns every byte outside printable ASCII into a space (the log keeps it whole)`,
		src + `:8: exception "!a@b.example" is not needed: no block entry matches any address it matches`,
		src + `:9: "!a@b.example" repeats the exception on line 8`,
		src + `:10: exception "!a@b.example" is not needed: no block entry matches any address it matches`,
		src + `:13: exception "!@y.example" has no scope, so 2 block entries (the first on line 11) never apply`,
	}
	if got := warningTexts(rep); !slices.Equal(got, want) || rep.MoreWarnings != 0 {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Entries != 15 {
		t.Errorf("Entries = %d; want 15", rep.Entries)
	}

	_, rep = buildBoth(t, "@a.example\n.a.example\n!b@a.example\n!@c.a.example rcpt=@a.example\n")
	if len(rep.Warnings) != 0 {
		t.Errorf("a clean list gives warnings %q", warningTexts(rep))
	}
}

// TestExceptionNeeded checks which block entries make an exception needed.
func TestExceptionNeeded(t *testing.T) {
	tests := []struct {
		block, except string
		needed        bool
	}{
		{"u@h.example", "!u@h.example", true},
		{"@h.example", "!u@h.example", true},
		{".example", "!u@h.example", true},
		{"v@h.example", "!u@h.example", false},
		{".h.example", "!u@h.example", false}, // .h covers subdomains only
		{"@sub.h.example", "!u@h.example", false},
		{"u@h.example", "!@h.example", true},
		{"@h.example", "!@h.example", true},
		{".example", "!@h.example", true},
		{".h.example", "!@h.example", false},
		{"u@sub.h.example", "!@h.example", false},
		{".h.example", "!.h.example", true},
		{".example", "!.h.example", true},
		{"@sub.h.example", "!.h.example", true},
		{"u@a.sub.h.example", "!.h.example", true},
		{".sub.h.example", "!.h.example", true},
		{"@h.example", "!.h.example", false},
		{"u@h.example", "!.h.example", false},
		{"@xh.example", "!.h.example", false},
		{"@[192.0.2.1]", "!u@[192.0.2.1]", true},
		{"u@[192.0.2.1]", "!@[192.0.2.1]", true},
		{"@h.example", "!u@h.example rcpt=@ours.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.block+" "+tt.except, func(t *testing.T) {
			_, rep := buildBoth(t, tt.block+"\n"+tt.except+"\n")
			notNeeded := false
			for _, w := range rep.Warnings {
				notNeeded = notNeeded || strings.Contains(w.Msg, "is not needed")
			}
			if notNeeded == tt.needed {
				t.Errorf("warnings %q; want needed %v", warningTexts(rep), tt.needed)
			}
		})
	}
}

// TestWarningsCap: past MaxWarnings the warnings are counted; those listed are the first
// in line order, whatever their kind.
func TestWarningsCap(t *testing.T) {
	var b strings.Builder
	for i := range 2 * MaxWarnings {
		fmt.Fprintf(&b, "@d%d.example  Domäne\n", i) // a warning on each line...
	}
	b.WriteString("@d0.example\n") // ...and a repeat at the end
	_, rep := buildBoth(t, b.String())
	if len(rep.Warnings) != MaxWarnings || rep.MoreWarnings != MaxWarnings+1 || rep.Warnings[MaxWarnings-1].Line != MaxWarnings {
		t.Errorf("%d warnings, %d more, the last on line %d; want %d, %d, line %d",
			len(rep.Warnings), rep.MoreWarnings, rep.Warnings[len(rep.Warnings)-1].Line, MaxWarnings, MaxWarnings+1, MaxWarnings)
	}
	if got := rep.Summary(); got != fmt.Sprintf("%d entries, version %s, %d warnings", 2*MaxWarnings+1, rep.Version, 2*MaxWarnings+1) {
		t.Errorf("Summary() = %q", got)
	}
}

// TestDiagnosticsExample compiles a list with several mistakes, as the README shows it.
func TestDiagnosticsExample(t *testing.T) {
	src := filepath.Join(t.TempDir(), "badsenders")
	writeFile(t, src, diagExample)
	old := []byte("unchanged")
	writeFile(t, src+".cdb", string(old))
	_, err := Compile(src, src+".cdb")
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Compile = %v; want an *ErrorList", err)
	}
	var got []string
	for _, e := range list.Errors {
		got = append(got, strings.TrimPrefix(e.Error(), filepath.Dir(src)+"/"))
	}
	want := []string{
		`badsenders:3: unknown scope "clinet=.billing.example": did you mean client=? (the scopes are rcpt= and client=)`,
		`badsenders:4: bad entry "*@scam.example": '*' is not a wildcard here: write @scam.example`,
		`badsenders:5: bad entry ".*@phish\.example": looks like a regular expression (qregex, a badmailfrom patch): entries are literal: write @phish.example`,
		`badsenders:6: bad entry "@` + strings.Repeat("x", 64) + `.example": label "xxxxxxxxxxxxxxxxxxxx..." is 64 octets long (in ACE form), and a DNS label holds at most 63: a dot is missing?`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b, _ := os.ReadFile(src + ".cdb"); string(b) != string(old) {
		t.Errorf("a failed compile wrote the CDB")
	}
}

const diagExample = `# badsenders with mistakes
@customer.example  forged customer
!@customer.example clinet=.billing.example  billing provider
*@scam.example  scam
.*@phish\.example
@` + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + `.example
`
