package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// queueRun runs the queue mode with the test binary standing in for qmail-queue, and
// returns the result and the recorder's directory.
func queueRun(t *testing.T, p proc, envelope string, fakeExit string) (result, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rec := t.TempDir()
	p.env = with(p.env, "BFS_QMAILQUEUE", self, fakeQueueEnv, rec)
	if fakeExit != "" {
		p.env["BFS_TEST_FAKE_EXIT"] = fakeExit
	}
	if p.name == "" {
		p.args = append([]string{"queue"}, p.args...)
	}
	p.fd1In = []byte(envelope)
	return p.run(t), rec
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestQueue(t *testing.T) {
	rules := rulesFile(t, testRules)
	base := map[string]string{"BFS_RULES": rules, "TCPREMOTEIP": "203.0.113.66"}
	partnerEnv := "Fanna@partner.example\x00Tsales@ours.example\x00\x00"
	attackerEnv := "Fbounce@evil.example\x00Taccounts@ours.example\x00\x00"
	tests := []struct {
		name     string
		p        proc
		envelope string
		code     int
		queued   bool
	}{
		{"legit mail is queued unchanged", proc{env: base, stdin: []byte(legitMsg)}, partnerEnv, 0, true},
		{"forged From is never queued", proc{env: base, stdin: []byte(forgedMsg)}, attackerEnv, 31, false},
		{"forged envelope is never queued", proc{env: base, stdin: []byte(legitMsg)}, "Fceo@ours.example\x00Tx@ours.example\x00\x00", 31, false},
		{"custom error", proc{env: base, stdin: []byte(forgedMsg), fd6: true}, attackerEnv, 82, false},
		{"invoked as block-forged-sender-queue", proc{name: queueName, env: base, stdin: []byte(forgedMsg)}, attackerEnv, 31, false},
		{"as block-forged-sender-queue, legit", proc{name: queueName, env: base, stdin: []byte(legitMsg)}, partnerEnv, 0, true},
		{"relay client is queued unchecked", proc{env: with(base, "RELAYCLIENT", ""), stdin: []byte(forgedMsg)}, attackerEnv, 0, true},
		{"monitor mode queues", proc{env: with(base, "BFS_MODE", "monitor"), stdin: []byte(forgedMsg)}, attackerEnv, 0, true},
		{"empty envelope (DATABYTES exceeded)", proc{env: base, stdin: []byte(legitMsg)}, "", 91, false},
		{"envelope without the final NUL", proc{env: base, stdin: []byte(legitMsg)}, "Fanna@partner.example\x00Tsales@ours.example\x00", 91, false},
		{"rules missing", proc{env: with(base, "BFS_RULES", filepath.Join(t.TempDir(), "none")), stdin: []byte(legitMsg)}, partnerEnv, 55, false},
		{"large message", proc{env: base, stdin: []byte(legitMsg + strings.Repeat("0123456789abcdef\n", 1<<16))}, partnerEnv, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, rec := queueRun(t, tt.p, tt.envelope, "")
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
			}
			if got := exists(filepath.Join(rec, "queued")); got != tt.queued {
				t.Fatalf("queued = %v, want %v; stderr: %s", got, tt.queued, res.stderr)
			}
			if tt.queued {
				msg, _ := os.ReadFile(filepath.Join(rec, "message"))
				env, _ := os.ReadFile(filepath.Join(rec, "envelope"))
				if !bytes.Equal(msg, tt.p.stdin) || string(env) != tt.envelope {
					t.Errorf("qmail-queue got message %d bytes (want %d) and envelope %q (want %q)", len(msg), len(tt.p.stdin), env, tt.envelope)
				}
			}
			logFields(t, res.stderr)
		})
	}
}

// TestQueueChildFailure: qmail-queue's own temporary failure is passed on; a missing
// qmail-queue is a temporary failure too.
func TestQueueChildFailure(t *testing.T) {
	rules := rulesFile(t, testRules)
	base := map[string]string{"BFS_RULES": rules}
	res, _ := queueRun(t, proc{env: base, stdin: []byte(legitMsg)}, "Fa@partner.example\x00Tb@ours.example\x00\x00", "53")
	if res.code != 53 {
		t.Errorf("qmail-queue exiting 53: exit %d, want 53; stderr: %s", res.code, res.stderr)
	}
	p := proc{args: []string{"queue"}, env: with(base, "BFS_QMAILQUEUE", filepath.Join(t.TempDir(), "missing")),
		stdin: []byte(legitMsg), fd1In: []byte("Fa@partner.example\x00Tb@ours.example\x00\x00")}
	if res := p.run(t); res.code != 81 {
		t.Errorf("missing qmail-queue: exit %d, want 81; stderr: %s", res.code, res.stderr)
	}
}

// TestQueueCorpus runs the shared corpus through the queue mode with a recording
// qmail-queue: forged messages never reach it with an envelope, legitimate ones arrive
// byte for byte with their envelope.
func TestQueueCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus")
	tsv, err := os.ReadFile(filepath.Join(dir, "cases.tsv"))
	if err != nil {
		requireTool(t, "the shared corpus ("+dir+")")
	}
	big := t.TempDir()
	for _, line := range strings.Split(string(tsv), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		name, sender, relay, want := f[0], f[1], f[2], f[3]
		t.Run(name, func(t *testing.T) {
			msgPath := filepath.Join(dir, name+".eml")
			if !exists(msgPath) {
				msgPath = filepath.Join(big, name+".eml")
				if out, err := exec.Command("python3", filepath.Join(dir, "make-corpus.py"), "--big", big, name).CombinedOutput(); err != nil {
					requireTool(t, "python3 to generate "+name+": "+string(out))
				}
			}
			msg, err := os.ReadFile(msgPath)
			if err != nil {
				t.Fatal(err)
			}
			if sender == "<>" {
				sender = ""
			}
			envelope := "F" + sender + "\x00Tfrontoffice@acme-corp.example\x00\x00"
			env := map[string]string{"BFS_RULES": copyFile(t, filepath.Join(dir, "badsenders"))}
			if relay == "yes" {
				env["RELAYCLIENT"] = ""
			}
			res, rec := queueRun(t, proc{env: env, stdin: msg}, envelope, "")
			if got := strings.TrimSpace(want); res.code != atoi(got) {
				t.Fatalf("exit %d, want %s; stderr: %s", res.code, got, res.stderr)
			}
			queued := exists(filepath.Join(rec, "queued"))
			if queued != (want == "0") {
				t.Fatalf("queued = %v with exit %d", queued, res.code)
			}
			if queued {
				got, _ := os.ReadFile(filepath.Join(rec, "message"))
				if !bytes.Equal(got, msg) {
					t.Fatalf("qmail-queue got %d bytes, want the %d bytes sent", len(got), len(msg))
				}
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return rulesFile(t, string(b))
}

// requireTool skips a test for a missing tool or file, or fails it when BFS_REQUIRE_TOOLS
// is set, as in CI: there nothing may be skipped for a missing tool.
func requireTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("BFS_REQUIRE_TOOLS") != "" {
		t.Fatalf("missing %s (BFS_REQUIRE_TOOLS is set)", what)
	}
	t.Skipf("missing %s", what)
}
