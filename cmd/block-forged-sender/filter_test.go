package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const testRules = `@ours.example	forged: ours.example used from outside
.ours.example	forged: a subdomain of ours.example
!alerts@ours.example	monitoring service
phisher@scam.example	phishing
!@customer.example rcpt=@customer.example client=192.0.2.0/24	billing provider
@customer.example	forged: customer.example used from outside
`

const (
	legitMsg = "Received: from unknown (HELO mx.partner.example) (198.51.100.23)\n  by mx.ours.example with SMTP\n" +
		"From: Anna <anna@partner.example>\nTo: Sales <sales@ours.example>\nSubject: hi\n\n" +
		"From: CEO <ceo@ours.example>\nquoted in the body, never read as a header\n"
	forgedMsg = "Received: from unknown (HELO mx.evil.example) (203.0.113.66)\n  by mx.ours.example with SMTP\n" +
		"From: \"Chief Executive\" <ceo@ours.example>\nTo: Accounts <accounts@ours.example>\nSubject: transfer\n\npay now\n"
	senderMsg   = "From: Anna <anna@partner.example>\nSender: ceo@ours.example\nSubject: hi\n\nbody\n"
	customerMsg = "From: Billing <billing@customer.example>\nTo: accounts@customer.example\nSubject: invoice\n\nbody\n"
)

// qenv is the environment qmail-qfilter gives a filter for a sender and recipients.
func qenv(rules, sender string, rcpts ...string) map[string]string {
	user, host := "", ""
	if sender != "" {
		if i := strings.LastIndexByte(sender, '@'); i >= 0 {
			user, host = sender[:i], sender[i+1:]
		} else {
			user = sender
		}
	}
	return map[string]string{
		"BFS_RULES": rules, "QMAILUSER": user, "QMAILHOST": host,
		"QMAILRCPTS": strings.Join(rcpts, "\n") + "\n", "TCPREMOTEIP": "203.0.113.66", "QMAILPPID": "4242",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestFilter(t *testing.T) {
	rules := rulesFile(t, testRules)
	partner := qenv(rules, "anna@partner.example", "sales@ours.example")
	attacker := qenv(rules, "bounce@evil.example", "accounts@ours.example")
	umlauts := rulesFile(t, "@ours.example  Unsere Domäne wird nie von außen verwendet\n")
	tests := []struct {
		name   string
		p      proc
		code   int
		fields map[string]string // log fields that must have exactly these values ("" must be absent)
		fd6    string
	}{
		{"legit mail passes unchanged", proc{env: partner, stdin: []byte(legitMsg)}, 0,
			map[string]string{"verdict": "pass", "exit": "0", "sender": "anna@partner.example", "from": "anna@partner.example",
				"client": "203.0.113.66", "qmailppid": "4242", "size": strconv.Itoa(len(legitMsg)), "reason": ""}, ""},
		{"our domain in From is rejected", proc{env: attacker, stdin: []byte(forgedMsg)}, 31,
			map[string]string{"verdict": "reject", "exit": "31", "reason": `"forged: ours.example used from outside"`,
				"rule": rules + ":1", "matched": "From:ceo@ours.example", "sender": "bounce@evil.example", "from": "ceo@ours.example"}, ""},
		{"our domain as envelope sender is rejected", proc{env: qenv(rules, "CEO@Ours.Example.", "x@ours.example"), stdin: []byte(legitMsg)}, 31,
			map[string]string{"verdict": "reject", "matched": "envelope:CEO@Ours.Example.", "rule": rules + ":1"}, ""},
		{"subdomain", proc{env: qenv(rules, "a@deep.hq.ours.example", "x@ours.example"), stdin: []byte(legitMsg)}, 31,
			map[string]string{"verdict": "reject", "rule": rules + ":2"}, ""},
		{"custom-error pipe on fd 6 gets the reason", proc{env: attacker, stdin: []byte(forgedMsg), fd6: true}, 82,
			map[string]string{"verdict": "reject", "exit": "82"}, "Dforged: ours.example used from outside (#5.7.1)"},
		{"a UTF-8 reason: ASCII on fd 6, as written in the log", proc{env: qenv(umlauts, "bounce@evil.example", "x@ours.example"), stdin: []byte(forgedMsg), fd6: true}, 82,
			map[string]string{"verdict": "reject", "exit": "82", "reason": `"Unsere Domäne wird nie von außen verwendet"`}, "DUnsere Domane wird nie von au?en verwendet (#5.7.1)"},
		{"custom error switched off", proc{env: with(attacker, "BFS_CUSTOMERROR", "0"), stdin: []byte(forgedMsg), fd6: true}, 31,
			map[string]string{"verdict": "reject", "exit": "31"}, ""},
		{"monitor mode passes and logs", proc{env: with(attacker, "BFS_MODE", "monitor"), stdin: []byte(forgedMsg)}, 0,
			map[string]string{"verdict": "pass", "mode": "monitor", "monitor": `"would reject"`, "rule": rules + ":1"}, ""},
		{"the command line wins over the environment", proc{args: []string{"--mode", "reject"}, env: with(attacker, "BFS_MODE", "monitor"), stdin: []byte(forgedMsg)}, 31,
			map[string]string{"verdict": "reject"}, ""},
		{"RELAYCLIENT set and empty is trusted", proc{env: with(attacker, "RELAYCLIENT", ""), stdin: []byte(forgedMsg)}, 0,
			map[string]string{"verdict": "pass", "trusted": "relayclient"}, ""},
		{"RELAYCLIENT ignored on request", proc{env: with(attacker, "RELAYCLIENT", "", "BFS_IGNORERELAYCLIENT", ""), stdin: []byte(forgedMsg)}, 31,
			map[string]string{"verdict": "reject"}, ""},
		{"BFS_TRUSTED set and empty is trusted", proc{env: with(attacker, "RELAYCLIENT", "", "BFS_IGNORERELAYCLIENT", "1", "BFS_TRUSTED", ""), stdin: []byte(forgedMsg)}, 0,
			map[string]string{"verdict": "pass", "trusted": "bfs_trusted"}, ""},
		{"BFS_TRUSTED=0 is not trusted", proc{env: with(attacker, "BFS_TRUSTED", "0"), stdin: []byte(forgedMsg)}, 31, nil, ""},
		{"IDENT is never trusted", proc{env: with(attacker, "TCPREMOTEINFO", "root"), stdin: []byte(forgedMsg)}, 31, nil, ""},
		{"BFS_ALLOW the address", proc{env: with(attacker, "BFS_ALLOW", "ceo@ours.example"), stdin: []byte(forgedMsg)}, 0,
			map[string]string{"verdict": "pass"}, ""},
		{"BFS_ALLOW the domain", proc{env: with(attacker, "BFS_ALLOW", "x@y.example, @OURS.example"), stdin: []byte(forgedMsg)}, 0, nil, ""},
		{"BFS_ALLOW another address", proc{env: with(attacker, "BFS_ALLOW", "cfo@ours.example"), stdin: []byte(forgedMsg)}, 31, nil, ""},
		{"the exception passes", proc{env: attacker, stdin: []byte(strings.Replace(forgedMsg, "ceo@", "Alerts@", 1))}, 0, nil, ""},
		{"null sender, forged From", proc{env: qenv(rules, "", "x@ours.example"), stdin: []byte(forgedMsg)}, 31,
			map[string]string{"sender": "<>", "matched": "From:ceo@ours.example"}, ""},
		{"null sender, legit From", proc{env: qenv(rules, "", "x@ours.example"), stdin: []byte(legitMsg)}, 0,
			map[string]string{"sender": "<>"}, ""},
		{"unqualified sender is qualified with the default host", proc{env: with(qenv(rules, "ceo", "x@ours.example"), "BFS_DEFAULTHOST", "ours.example"), stdin: []byte(legitMsg)}, 31,
			map[string]string{"matched": "envelope:ceo@ours.example"}, ""},
		{"Sender: is checked", proc{env: partner, stdin: []byte(senderMsg)}, 31,
			map[string]string{"matched": "Sender:ceo@ours.example"}, ""},
		{"Sender: checking switched off", proc{env: with(partner, "BFS_SENDERFIELDS", "no"), stdin: []byte(senderMsg)}, 0, nil, ""},
		{"scoped exception in scope", proc{env: with(qenv(rules, "inv@provider.example", "accounts@customer.example"), "TCPREMOTEIP", "192.0.2.7"), stdin: []byte(customerMsg)}, 0, nil, ""},
		{"scoped exception, other client", proc{env: qenv(rules, "inv@provider.example", "accounts@customer.example"), stdin: []byte(customerMsg)}, 31,
			map[string]string{"rule": rules + ":6"}, ""},
		{"scoped exception, a recipient out of scope", proc{env: with(qenv(rules, "inv@provider.example", "accounts@customer.example", "ceo@ours.example"), "TCPREMOTEIP", "192.0.2.7"), stdin: []byte(customerMsg)}, 31, nil, ""},
		{"envelope on fd 3 is preferred", proc{env: partner, fd3: []byte("Fceo@ours.example\x00Tx@ours.example\x00\x00"), stdin: []byte(legitMsg)}, 31,
			map[string]string{"matched": "envelope:ceo@ours.example"}, ""},
		{"empty message", proc{env: partner}, 0, map[string]string{"size": "0"}, ""},
		// A collection before main makes the runtime open its epoll descriptor on the closed fd 3.
		{"fd 3 closed, a tiny GOMEMLIMIT", proc{env: with(partner, "GOMEMLIMIT", "1"), stdin: []byte(legitMsg)}, 0, nil, ""},
		// Long addresses in many fields: each judged, none held past its field.
		{"addresses over one field's worth of bytes", proc{env: with(partner, "BFS_MAXFIELD", "1000"), stdin: []byte(longFroms(5, 400, "partner.example") + "\nbody\n")}, 0,
			map[string]string{"verdict": "pass"}, ""},
		{"addresses over one field's worth of bytes, ours last", proc{env: with(partner, "BFS_MAXFIELD", "1000"), stdin: []byte(longFroms(5, 400, "partner.example") + "From: ceo@ours.example\n\nbody\n")}, 31,
			map[string]string{"matched": "From:ceo@ours.example"}, ""},
		{"too many addresses, ours among the first", proc{env: partner, stdin: []byte("From: ceo@ours.example, " + manyAddrs(5000, "partner.example") + "\n\nbody\n")}, 31,
			map[string]string{"matched": "From:ceo@ours.example"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.args = append([]string{"filter"}, p.args...)
			res := p.run(t)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
			}
			if tt.code == 0 && !bytes.Equal(res.stdout, p.stdin) {
				t.Errorf("passed message changed: got %q, want %q", res.stdout, p.stdin)
			}
			f := logFields(t, res.stderr)
			for k, want := range tt.fields {
				if got, ok := f[k]; want == "" && ok || want != "" && got != want {
					t.Errorf("log field %s = %q (present %v), want %q; line: %s", k, got, ok, want, res.stderr)
				}
			}
			if string(res.fd6) != tt.fd6 {
				t.Errorf("fd 6 got %q, want %q", res.fd6, tt.fd6)
			}
		})
	}
}

// TestFilterFaults checks that faults are temporary failures with the documented codes.
func TestFilterFaults(t *testing.T) {
	rules := rulesFile(t, testRules)
	bad := rulesFile(t, "@ours.example\nnot-an-entry\n")
	partner := qenv(rules, "anna@partner.example", "sales@ours.example")
	tests := []struct {
		name  string
		p     proc
		code  int
		error string // substring of the error field
	}{
		{"rules missing", proc{env: with(partner, "BFS_RULES", filepath.Join(t.TempDir(), "none"))}, 55, "neither"},
		{"rules syntax error", proc{env: with(partner, "BFS_RULES", bad)}, 55, bad + ":2"},
		{"bad mode", proc{env: with(partner, "BFS_MODE", "tag")}, 55, "--mode"},
		{"bad max-field", proc{env: with(partner, "BFS_MAXFIELD", "x")}, 55, "BFS_MAXFIELD"},
		{"no envelope at all", proc{env: with(partner, "QMAILUSER", "<unset>")}, 91, "fd 3 is closed"},
		{"malformed envelope on fd 3", proc{env: partner, fd3: []byte("Fa@b\x00Tc@d\x00")}, 91, "missing final NUL"},
		{"empty envelope on fd 3", proc{env: partner, fd3: []byte{}}, 91, "empty"},
		{"sender field over the cap", proc{env: with(partner, "BFS_MAXFIELD", "64"), stdin: []byte("From: " + strings.Repeat("x", 100) + "@partner.example\n\nbody\n")}, 51, "too long: over 64 bytes"},
		{"unqualified sender without a default host", proc{env: with(partner, "QMAILUSER", "ceo", "QMAILHOST", "")}, 55, "default host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.args = []string{"filter"}
			if p.stdin == nil {
				p.stdin = []byte(legitMsg)
			}
			res := p.run(t)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
			}
			f := logFields(t, res.stderr)
			if f["verdict"] != "tempfail" || f["exit"] != strconv.Itoa(tt.code) || !strings.Contains(f["error"], tt.error) {
				t.Errorf("log %s: want verdict=tempfail exit=%d and an error with %q", res.stderr, tt.code, tt.error)
			}
		})
	}
}

// manyAddrs is a From value with n distinct addresses at domain.
func manyAddrs(n int, domain string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("u" + strconv.Itoa(i) + "@" + domain)
	}
	return b.String()
}

// TestManyMailboxes: a From with thousands of mailboxes is judged in full, by filter and
// check alike (issue 11: they once disagreed, filter 54 and check "pass").
func TestManyMailboxes(t *testing.T) {
	rules := rulesFile(t, testRules)
	partner := qenv(rules, "anna@partner.example", "sales@ours.example")
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		from  string
		code  int // filter's exit
		check int // check's exit
	}{
		{"5,000 partner mailboxes", manyAddrs(5000, "partner.example"), 0, 0},
		{"5,000 partner mailboxes and ours last", manyAddrs(5000, "partner.example") + ", ceo@ours.example", 31, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte("From: " + tc.from + "\n\nbody\n")
			res := proc{args: []string{"filter"}, env: partner, stdin: msg}.run(t)
			if res.code != tc.code {
				t.Fatalf("filter: exit %d, want %d; stderr %s", res.code, tc.code, res.stderr)
			}
			if f := logFields(t, res.stderr); tc.code == 0 && (!bytes.Equal(res.stdout, msg) || f["from"] == "" || !strings.Contains(f["from"], "(5000 in all)")) {
				t.Errorf("filter: passed %d bytes of %d, log %s", len(res.stdout), len(msg), res.stderr)
			}
			file := filepath.Join(dir, strconv.Itoa(tc.code)+".eml")
			if err := os.WriteFile(file, msg, 0o644); err != nil {
				t.Fatal(err)
			}
			res = proc{args: []string{"check", "--sender", "anna@partner.example", "--rcpt", "sales@ours.example", file}, env: with(partner, "TCPREMOTEIP", "203.0.113.66")}.run(t)
			if res.code != tc.check {
				t.Errorf("check: exit %d, want %d; stdout %.300s", res.code, tc.check, res.stdout)
			}
		})
	}
}

// longFroms returns n From fields, each with one distinct address whose local part is size
// bytes long.
func longFroms(n, size int, domain string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("From: " + strconv.Itoa(i) + strings.Repeat("x", size) + "@" + domain + "\n")
	}
	return b.String()
}
