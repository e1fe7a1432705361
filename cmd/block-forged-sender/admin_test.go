package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/rules"
	"block-forged-sender/internal/testenv"
)

func TestCheck(t *testing.T) {
	rules := rulesFile(t, testRules)
	msg := filepath.Join(t.TempDir(), "forged.eml")
	if err := os.WriteFile(msg, []byte(forgedMsg), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		stdin string
		code  int
		want  []string // lines of stdout, in order
	}{
		{"blocked sender", []string{"--sender", "CEO@ours.example"}, nil, "", 1, []string{
			`envelope    "CEO@ours.example" (looked up as "ceo@ours.example")`,
			"            matches " + rules + ":1: @ours.example (forged: ours.example used from outside)",
			"verdict: reject (envelope CEO@ours.example: forged: ours.example used from outside)"}},
		{"excepted sender", []string{"--sender", "alerts@ours.example"}, nil, "", 0, []string{
			`envelope    "alerts@ours.example"`,
			"            matches " + rules + ":1: @ours.example (forged: ours.example used from outside)",
			"            excepted by " + rules + ":3: !alerts@ours.example (monitoring service)",
			"verdict: pass"}},
		{"message file", []string{"--sender", "bounce@evil.example", msg}, nil, "", 1, []string{
			`envelope    "bounce@evil.example"`, "            no rule matches",
			`From        "ceo@ours.example"`,
			"            matches " + rules + ":1: @ours.example (forged: ours.example used from outside)",
			"verdict: reject (From ceo@ours.example: forged: ours.example used from outside)"}},
		{"message on stdin, header alone", []string{"-"}, nil, legitMsg, 0, []string{
			`From        "anna@partner.example"`, "            no rule matches", "verdict: pass"}},
		{"relay client", []string{"--sender", "ceo@ours.example"}, map[string]string{"RELAYCLIENT": ""}, "", 0, []string{
			"client trusted (relayclient): nothing checked", "verdict: pass"}},
		{"scoped exception", []string{"--sender", "x@customer.example", "--rcpt", "a@customer.example", "--client", "192.0.2.9"}, nil, "", 0, []string{
			`envelope    "x@customer.example"`,
			"            matches " + rules + ":6: @customer.example (forged: customer.example used from outside)",
			"            excepted by " + rules + ":5: !@customer.example (billing provider)",
			"verdict: pass"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := with(tt.env, "BFS_RULES", rules)
			res := proc{args: append([]string{"check"}, tt.args...), env: env, stdin: []byte(tt.stdin)}.run(t)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", res.code, tt.code, res.stdout, res.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(string(res.stdout), "\n"), "\n")
			if len(lines) < 1 || !strings.HasPrefix(lines[0], "rules: ") {
				t.Fatalf("stdout %q does not start with the rules line", res.stdout)
			}
			if got := lines[1:]; strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	if res := (proc{args: []string{"check"}, env: map[string]string{"BFS_RULES": rules}}).run(t); res.code != 2 {
		t.Errorf("check without arguments: exit %d, want 2", res.code)
	}
	if res := (proc{args: []string{"check", "--sender", "a@b"}, env: map[string]string{"BFS_RULES": filepath.Join(t.TempDir(), "x")}}).run(t); res.code != 111 {
		t.Errorf("check with missing rules: exit %d, want 111", res.code)
	}
}

func TestCompile(t *testing.T) {
	src := rulesFile(t, testRules)
	res := proc{args: []string{"compile", src}}.run(t)
	version, err := rules.CDBVersion(src + ".cdb")
	if err != nil || len(version) != 12 {
		t.Fatalf("rules version %q, %v", version, err)
	}
	want := "block-forged-sender: compiled " + src + " into " + src + ".cdb: 6 entries, version " + version + "\n"
	if res.code != 0 || string(res.stdout) != want || len(res.stderr) != 0 {
		t.Fatalf("compile: exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, want)
	}
	old, err := os.ReadFile(src + ".cdb")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("@ours.example\n\nbad entry here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = proc{args: []string{"compile", src}}.run(t)
	if res.code != 111 || !strings.Contains(string(res.stderr), src+":3:") {
		t.Errorf("compile with a syntax error: exit %d, stderr %q; want 111 naming %s:3", res.code, res.stderr, src)
	}
	// Every mistake at once, then how many; warnings go to stderr and do not fail.
	if err := os.WriteFile(src, []byte("*@a.example\n@ours.example\n!@customer.example clinet=.x.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = proc{args: []string{"compile", src}}.run(t)
	wantErr := "block-forged-sender compile: " + src + `:1: bad entry "*@a.example": '*' is not a wildcard here: write @a.example` + "\n" +
		"block-forged-sender compile: " + src + `:3: unknown scope "clinet=.x.example": did you mean client=? (the scopes are rcpt= and client=)` + "\n" +
		"block-forged-sender compile: 2 errors in " + src + ": " + src + ".cdb left as it was\n"
	if res.code != 111 || string(res.stderr) != wantErr || len(res.stdout) != 0 {
		t.Errorf("compile with two errors: exit %d, stdout %q, stderr:\n%s\nwant 111 and:\n%s", res.code, res.stdout, res.stderr, wantErr)
	}
	if err := os.WriteFile(src, []byte("@ours.example\n@ours.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = proc{args: []string{"compile", src}}.run(t)
	wantErr = "block-forged-sender compile: warning: " + src + `:2: "@ours.example" repeats the block entry on line 1 (@ours.example): this line is never used` + "\n"
	if res.code != 0 || string(res.stderr) != wantErr || !strings.HasSuffix(string(res.stdout), ": 2 entries, version "+mustVersion(t, src+".cdb")+", 1 warning\n") {
		t.Errorf("compile with a warning: exit %d, stdout %q, stderr:\n%s\nwant 0 and:\n%s", res.code, res.stdout, res.stderr, wantErr)
	}
	if err := os.WriteFile(src, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := (proc{args: []string{"compile", src}}).run(t); res.code != 0 {
		t.Fatalf("compile: exit %d", res.code)
	}
	now, _ := os.ReadFile(src + ".cdb")
	if !bytes.Equal(old, now) {
		t.Errorf("a failed compile changed the old CDB")
	}
	dst := filepath.Join(t.TempDir(), "out.cdb")
	if res := (proc{args: []string{"compile", rulesFile(t, "@x.example\n"), dst}}).run(t); res.code != 0 || !exists(dst) {
		t.Errorf("compile SRC DST: exit %d, %s exists %v", res.code, dst, exists(dst))
	}
	if res := (proc{args: []string{"compile"}}).run(t); res.code != 2 {
		t.Errorf("compile without arguments: exit %d, want 2", res.code)
	}
}

// TestReadmeDiagnostics runs the compile sessions the README shows, a list with mistakes
// and the list fixed, and compares what compile writes, rules version included (it
// depends on the list alone, not on its path).
func TestReadmeDiagnostics(t *testing.T) {
	for _, name := range []string{"rules-diagnostics", "rules-fixed"} {
		t.Run(name, func(t *testing.T) {
			session := testenv.Snippet(t, name)
			text, out, ok := strings.Cut(strings.TrimPrefix(session, "$ cat badsenders\n"), "$ block-forged-sender compile badsenders\n")
			if !ok {
				t.Fatalf("snippet %s is not a cat and a compile session:\n%s", name, session)
			}
			dir := t.TempDir()
			src := filepath.Join(dir, "badsenders")
			if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			res := proc{args: []string{"compile", src}}.run(t)
			// The rules version too: it depends on the list alone.
			if got := strings.ReplaceAll(string(res.stderr)+string(res.stdout), dir+"/", ""); got != out {
				t.Errorf("compile writes:\n%s\nthe README says:\n%s", got, out)
			}
		})
	}
}

// mustVersion returns the rules version of a CDB.
func mustVersion(t *testing.T, path string) string {
	t.Helper()
	v, err := rules.CDBVersion(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"filter", "--help"}, {"queue", "-h"}, {"check", "--help"}, {"compile", "--help"}, {"help", "filter"}} {
		res := proc{args: args}.run(t)
		if res.code != 0 || !bytes.HasPrefix(res.stdout, []byte("usage: block-forged-sender")) || len(res.stderr) != 0 {
			t.Errorf("%q: exit %d, stdout %.60q, stderr %q", args, res.code, res.stdout, res.stderr)
		}
	}
	res := proc{args: []string{"filter", "--help"}}.run(t)
	for _, want := range []string{"--rules FILE, BFS_RULES", "--max-field BYTES, BFS_MAXFIELD", "--ignore-relayclient, BFS_IGNORERELAYCLIENT", "--custom-error, BFS_CUSTOMERROR"} {
		if !strings.Contains(string(res.stdout), want) {
			t.Errorf("filter --help lacks %q", want)
		}
	}
	if res := (proc{args: []string{"queue", "--help"}}).run(t); !strings.Contains(string(res.stdout), "--qmail-queue PROGRAM, BFS_QMAILQUEUE") {
		t.Errorf("queue --help lacks --qmail-queue")
	}
	// The milter serves every client: a daemon-wide "trust this client" would pass all mail.
	res = proc{args: []string{"milter", "--help"}}.run(t)
	if out := string(res.stdout); res.code != 0 || !strings.Contains(out, "--trusted-networks CIDRS, BFS_TRUSTEDNETWORKS") ||
		strings.Contains(out, "--trusted, ") || strings.Contains(out, "--ignore-relayclient") {
		t.Errorf("milter --help: exit %d, want --trusted-networks and neither --trusted nor --ignore-relayclient:\n%s", res.code, out)
	}
	if res := (proc{args: []string{"milter", "--trusted", "--listen", "unix:x"}}).run(t); res.code != 111 ||
		!strings.HasSuffix(string(res.stderr), "block-forged-sender milter: unknown flag --trusted (see --help)\n") {
		t.Errorf("milter --trusted: exit %d, stderr %q, want 111 and no such flag", res.code, res.stderr)
	}
	// compile has no flags: its help ends with its text.
	if res := (proc{args: []string{"compile", "--help"}}).run(t); strings.Contains(string(res.stdout), "flags (and") {
		t.Errorf("compile --help announces flags it does not have:\n%s", res.stdout)
	}
	if res := (proc{args: []string{"version"}}).run(t); res.code != 0 || !strings.HasPrefix(string(res.stdout), "block-forged-sender ") {
		t.Errorf("version: exit %d, %q", res.code, res.stdout)
	}
	if res := (proc{args: []string{"bogus"}}).run(t); res.code != 2 {
		t.Errorf("unknown command: exit %d, want 2", res.code)
	}
	if res := (proc{}).run(t); res.code != 2 {
		t.Errorf("no command: exit %d, want 2", res.code)
	}
}

// TestUsability: help that ends, one-line errors, words that agree with their numbers.
func TestUsability(t *testing.T) {
	// Help for help, however it is asked, prints the usage once: no recursion.
	for _, args := range [][]string{{"help", "--help"}, {"--help", "--help"}, {"-h", "-h"}, {"help", "help"}, {"help", "-h"}} {
		res := proc{args: args}.run(t)
		if res.code != 0 || !strings.HasPrefix(string(res.stdout), "usage: block-forged-sender COMMAND") || bytes.Count(res.stdout, []byte("usage:")) != 1 {
			t.Errorf("%q: exit %d, stdout %.80q", args, res.code, res.stdout)
		}
	}
	if res := (proc{args: []string{"version", "--help"}}).run(t); res.code != 0 || !strings.HasPrefix(string(res.stdout), "usage: block-forged-sender version") {
		t.Errorf("version --help: exit %d, %q", res.code, res.stdout)
	}
	if res := (proc{args: []string{"help", "nosuch"}}).run(t); res.code != 2 || !strings.Contains(string(res.stderr), `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stderr %q", res.code, res.stderr)
	}
	// No backticks (the flag package's argument-name quoting) in any help.
	for _, cmd := range []string{"filter", "queue", "check", "compile", "milter"} {
		if res := (proc{args: []string{cmd, "--help"}}).run(t); bytes.ContainsRune(res.stdout, '`') {
			t.Errorf("%s --help shows backticks:\n%s", cmd, res.stdout)
		}
	}
	// A bad value is one line naming the flag, in words; never the whole help.
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"check", "--max-field", "lots", "-"}, nil, "block-forged-sender check: --max-field \"lots\": not a whole number\n"},
		{[]string{"check", "--sender", "a@b"}, map[string]string{"BFS_SENDERFIELDS": "maybe"}, "block-forged-sender check: BFS_SENDERFIELDS=\"maybe\": not on or off (1, 0, yes, no, true, false)\n"},
		{[]string{"check", "--bogus"}, nil, "block-forged-sender check: unknown flag --bogus (see --help)\n"},
	} {
		res := proc{args: tc.args, env: tc.env}.run(t)
		if res.code != 2 || string(res.stderr) != tc.want || len(res.stdout) != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, res.code, res.stdout, res.stderr, tc.want)
		}
	}
	// In filter mode the same goes into the one log line, with the configuration's exit.
	res := proc{args: []string{"filter"}, env: map[string]string{"BFS_TIMEOUT": "soon"}, stdin: []byte(legitMsg)}.run(t)
	if f := logFields(t, res.stderr); res.code != 55 || f["error"] != `"configuration: block-forged-sender filter: BFS_TIMEOUT=\"soon\": not a duration (e.g. 30s, 5m, 1h)"` {
		t.Errorf("filter with BFS_TIMEOUT=soon: exit %d, log %s", res.code, res.stderr)
	}
	// "1 entry", "2 entries".
	for text, want := range map[string]string{"@x.example\n": ": 1 entry, version ", "@x.example\n@y.example\n": ": 2 entries, version "} {
		res := proc{args: []string{"compile", rulesFile(t, text)}}.run(t)
		if res.code != 0 || !strings.Contains(string(res.stdout), want) {
			t.Errorf("compile of %q: exit %d, %q; want %q", text, res.code, res.stdout, want)
		}
	}
}

// TestUnknownVariable: a BFS_ variable no setting reads is named in the log line's warning.
func TestUnknownVariable(t *testing.T) {
	rules := rulesFile(t, testRules)
	env := with(qenv(rules, "anna@partner.example", "sales@ours.example"), "BFS_IGNORE_RELAYCLIENT", "1")
	res := proc{args: []string{"filter"}, env: env, stdin: []byte(legitMsg)}.run(t)
	f := logFields(t, res.stderr)
	if res.code != 0 || f["warning"] != `"unknown setting BFS_IGNORE_RELAYCLIENT ignored (not a variable of block-forged-sender filter; see its --help)"` {
		t.Errorf("exit %d, log %s", res.code, res.stderr)
	}
}

// TestVersionRules: version --rules names the rules version, the same for the same list
// wherever and whenever it was compiled, another for another list; the log line has it too.
func TestVersionRules(t *testing.T) {
	version := func(path string) string {
		t.Helper()
		res := proc{args: []string{"version", "--rules", path}}.run(t)
		lines := strings.Split(strings.TrimSuffix(string(res.stdout), "\n"), "\n")
		if res.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "block-forged-sender ") || !strings.HasPrefix(lines[1], "rules ") {
			t.Fatalf("version --rules %s: exit %d, %q", path, res.code, res.stdout)
		}
		_, v, _ := strings.Cut(lines[1], " version ")
		if len(v) != 12 {
			t.Fatalf("version --rules %s: %q has no 12-digit version", path, lines[1])
		}
		return v
	}
	a, b := rulesFile(t, testRules), rulesFile(t, testRules)
	for _, f := range []string{a, b} {
		if res := (proc{args: []string{"compile", f}}).run(t); res.code != 0 {
			t.Fatalf("compile: %s", res.stderr)
		}
	}
	os.Chtimes(b, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	va := version(a)
	if vb, vcdb := version(b), version(a+".cdb"); vb != va || vcdb != va {
		t.Errorf("the same list: versions %s, %s, %s; want one", va, vb, vcdb)
	}
	if vc := version(rulesFile(t, testRules+"@another.example\n")); vc == va {
		t.Errorf("another list has the same version %s", vc)
	}
	res := proc{args: []string{"filter"}, env: qenv(a, "anna@partner.example", "sales@ours.example"), stdin: []byte(legitMsg)}.run(t)
	if f := logFields(t, res.stderr); f["rules"] != va {
		t.Errorf("log line rules=%q, want %q: %s", f["rules"], va, res.stderr)
	}
	if res := (proc{args: []string{"version", "--rules", filepath.Join(t.TempDir(), "none")}}).run(t); res.code != 111 {
		t.Errorf("version --rules of nothing: exit %d, want 111", res.code)
	}
}

// TestCheckRulesErrors: check, like compile, names every mistake of the rules with file:line.
func TestCheckRulesErrors(t *testing.T) {
	rules := rulesFile(t, "@a.example\nbad one\n@b.example\n*@c.example\n!@a.example clinet=.billing.example x\n")
	res := proc{args: []string{"check", "--rules", rules, "--sender", "x@partner.example"}}.run(t)
	want := "block-forged-sender check: " + rules + `:2: bad entry "bad": want user@host, @host or .host` + "\n" +
		"block-forged-sender check: " + rules + `:4: bad entry "*@c.example": '*' is not a wildcard here: write @c.example` + "\n" +
		"block-forged-sender check: " + rules + `:5: unknown scope "clinet=.billing.example": did you mean client=? (the scopes are rcpt= and client=)` + "\n"
	if res.code != 111 || string(res.stderr) != want {
		t.Errorf("exit %d, stderr:\n%s\nwant 111 and:\n%s", res.code, res.stderr, want)
	}
}
