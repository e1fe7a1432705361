package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSyslog checks the syslog line: facility mail, tag bfs, the same fields as on
// stderr. It listens on /dev/log itself, so it needs root and no running syslog daemon.
func TestSyslog(t *testing.T) {
	const path = "/dev/log"
	if _, err := os.Lstat(path); err == nil {
		t.Skip("a syslog daemon owns /dev/log")
	}
	if os.Geteuid() != 0 {
		t.Skip("creating /dev/log needs root")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Skipf("cannot listen on %s: %v", path, err)
	}
	defer os.Remove(path)
	defer conn.Close()

	rules := rulesFile(t, testRules)
	// The priority says what happened: facility mail (2) * 8 + severity, info (6) for a
	// pass, notice (5) for a rejection, warning (4) for a temporary failure.
	for _, tc := range []struct {
		name   string
		rules  string
		msg    string
		code   int
		prefix string
		line   string
	}{
		{"pass", rules, legitMsg, 0, "<22>", "verdict=pass exit=0"},
		{"reject", rules, forgedMsg, 31, "<21>", "verdict=reject exit=31"},
		{"tempfail", rules + ".missing", forgedMsg, 55, "<20>", "verdict=tempfail exit=55"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := proc{args: []string{"filter"}, env: with(qenv(tc.rules, "bounce@evil.example", "a@ours.example"), "BFS_SYSLOG", "1"), stdin: []byte(tc.msg)}.run(t)
			if res.code != tc.code || len(res.stderr) != 0 {
				t.Fatalf("exit %d, stderr %q; want %d and nothing on stderr", res.code, res.stderr, tc.code)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			msg := string(buf[:n])
			if !strings.HasPrefix(msg, tc.prefix) || !strings.Contains(msg, " bfs[") || !strings.Contains(msg, tc.line) {
				t.Errorf("syslog message %q: want %s, tag bfs and %q", msg, tc.prefix, tc.line)
			}
		})
	}
}

// TestSyslogUnavailable: without a syslog daemon the line goes to stderr, not nowhere.
func TestSyslogUnavailable(t *testing.T) {
	if _, err := os.Lstat("/dev/log"); err == nil {
		t.Skip("a syslog daemon is running")
	}
	rules := rulesFile(t, testRules)
	res := proc{args: []string{"filter"}, env: with(qenv(rules, "bounce@evil.example", "a@ours.example"), "BFS_SYSLOG", "1"), stdin: []byte(forgedMsg)}.run(t)
	if f := logFields(t, res.stderr); res.code != 31 || f["verdict"] != "reject" {
		t.Errorf("exit %d, stderr %q; want 31 and the line on stderr", res.code, res.stderr)
	}
}
