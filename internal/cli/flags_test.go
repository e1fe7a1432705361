package cli

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestFlagErrors: a bad setting is one line in an administrator's words, naming the flag or
// variable, with no Go parser internals.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--max-field", "x"}, nil, `x: --max-field "x": not a whole number`},
		{[]string{"--timeout", "3"}, nil, `x: --timeout "3": not a duration (e.g. 30s, 5m, 1h)`},
		{[]string{"--on=maybe"}, nil, `x: --on "maybe": not on or off (1, 0, yes, no, true, false)`},
		{[]string{"--bogus"}, nil, `x: unknown flag --bogus (see --help)`},
		{[]string{"--max-field"}, nil, `x: --max-field needs a value`},
		{nil, map[string]string{"BFS_MAXFIELD": "1e3"}, `x: BFS_MAXFIELD="1e3": not a whole number`},
		{nil, map[string]string{"BFS_TIMEOUT": "soon"}, `x: BFS_TIMEOUT="soon": not a duration (e.g. 30s, 5m, 1h)`},
		{nil, map[string]string{"BFS_ON": "maybe"}, `x: BFS_ON="maybe": not on or off (1, 0, yes, no, true, false)`},
	} {
		fs := NewFlagSet("x", "help\n")
		fs.Int("max-field", 1, "`BYTES`")
		fs.Duration("timeout", time.Second, "`DURATION`")
		fs.Bool("on", false, "a switch")
		err := fs.Parse(tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q, %v) = %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestEnvBool: set, even empty, means on, the qmail way.
func TestEnvBool(t *testing.T) {
	for v, want := range map[string]bool{"": true, "1": true, "yes": true, "on": true, "true": true, "0": false, "no": false, "off": false, "FALSE": false} {
		fs := NewFlagSet("x", "")
		on := fs.Bool("on", !want, "")
		if err := fs.Parse(nil, func(k string) (string, bool) { return v, k == "BFS_ON" }); err != nil || *on != want {
			t.Errorf("BFS_ON=%q: %v, %v; want %v", v, *on, err, want)
		}
	}
}

// TestPrintHelp: every flag with its argument, variable and default; no backticks.
func TestPrintHelp(t *testing.T) {
	fs := NewFlagSet("x", "usage: x\n")
	fs.String("rules", "/r", "the rules text `FILE`")
	fs.Bool("syslog", false, "log to syslog")
	var b strings.Builder
	fs.PrintHelp(&b)
	want := "usage: x\n\nflags (and their environment variables):\n  --rules FILE, BFS_RULES\n        the rules text FILE (default /r)\n  --syslog, BFS_SYSLOG\n        log to syslog\n"
	if b.String() != want {
		t.Errorf("help =\n%s\nwant\n%s", b.String(), want)
	}
	NewFlagSet("y", "no flags\n").PrintHelp(io.Discard)
}

func TestUnknownWarning(t *testing.T) {
	fs := NewFlagSet("block-forged-sender filter", "")
	fs.Bool("ignore-relayclient", false, "")
	env := []string{"PATH=/bin", "BFS_IGNORE_RELAYCLIENT=1", "BFS_IGNORERELAYCLIENT=1", "BFS_REQUIRE_TOOLS=1", "BFS_TEST_X=1", "BFS_ZZ="}
	want := "unknown setting BFS_IGNORE_RELAYCLIENT, BFS_ZZ ignored (not a variable of block-forged-sender filter; see its --help)"
	if got := UnknownWarning(fs, env); got != want {
		t.Errorf("UnknownWarning = %q, want %q", got, want)
	}
	if got := UnknownWarning(fs, []string{"BFS_IGNORERELAYCLIENT="}); got != "" {
		t.Errorf("UnknownWarning of a known variable = %q", got)
	}
}
