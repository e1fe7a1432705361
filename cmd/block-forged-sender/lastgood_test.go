package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestLastGoodRules: the rules text was edited and no longer compiles, but the CDB of an
// earlier version exists. The filter judges by that CDB (no 55 for every message; queue
// mode loads the rules the same way), every log line says so with the mistake and the
// command to run, and the CDB stays as it was; compile still fails.
func TestLastGoodRules(t *testing.T) {
	rules := rulesFile(t, testRules)
	if res := (proc{args: []string{"compile", rules}}).run(t); res.code != 0 {
		t.Fatalf("compile: exit %d, %s", res.code, res.stderr)
	}
	good, _ := os.ReadFile(rules + ".cdb")
	if err := os.WriteFile(rules, []byte(testRules+"!@customer.example clinet=192.0.2.0/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(rules+".cdb", old, old); err != nil {
		t.Fatal(err)
	}
	wantWarning := `"the rules text does not compile (` + rules + `:7: unknown scope \"clinet=192.0.2.0/24\": did you mean client=? (the scopes are rcpt= and client=)): using ` +
		rules + `.cdb, compiled from an earlier version; run: block-forged-sender compile ` + rules + `"`
	for _, tc := range []struct {
		name string
		p    proc
		code int
	}{
		{"filter, forged", proc{env: qenv(rules, "bounce@evil.example", "accounts@ours.example"), stdin: []byte(forgedMsg)}, 31},
		{"filter, legit", proc{env: qenv(rules, "anna@partner.example", "sales@ours.example"), stdin: []byte(legitMsg)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.args = append([]string{"filter"}, tc.p.args...)
			res := tc.p.run(t)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", res.code, tc.code, res.stderr)
			}
			if w := logFields(t, res.stderr)["warning"]; w != wantWarning {
				t.Errorf("warning=%s\nwant %s", w, wantWarning)
			}
		})
	}
	if now, _ := os.ReadFile(rules + ".cdb"); string(now) != string(good) {
		t.Errorf("the last good CDB was changed")
	}
	if res := (proc{args: []string{"compile", rules}}).run(t); res.code != 111 || !strings.Contains(string(res.stderr), rules+":7: unknown scope") {
		t.Errorf("compile: exit %d, stderr %s; want 111 and the mistake", res.code, res.stderr)
	}
}
