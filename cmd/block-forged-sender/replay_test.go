package main

import (
	"block-forged-sender/internal/rules"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

// Stored messages, as qmail-local and Postfix's local deliver them.
const (
	storedLegit  = "Return-Path: <anna@partner.example>\nDelivered-To: sales@ours.example\n" + legitMsg
	storedForged = "Return-Path: <bounce@evil.example>\nDelivered-To: accounts@ours.example\n" + forgedMsg
	// A forged envelope behind a clean header: only the Return-Path tells.
	storedForgedEnvelope = "Return-Path: <CEO@ours.example>\nDelivered-To: sales@ours.example\n" +
		"From: Anna <anna@partner.example>\nSubject: hi\n\nbody\n"
	storedBounce  = "Return-Path: <>\nDelivered-To: sales@ours.example\nFrom: MAILER-DAEMON@partner.example\nSubject: failure notice\n\nbody\n"
	storedNoPath  = "Return-Path: anna at partner\nDelivered-To: sales@ours.example\n" + legitMsg
	storedInvoice = "Return-Path: <billing@customer.example>\nX-Original-To: accounts@customer.example\nDelivered-To: accounts@ours.example\n" + customerMsg
)

// writeFiles writes name -> content under dir, making directories, and returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// replayLines runs check and returns its exit code and its stdout lines after the rules
// line.
func replayLines(t *testing.T, env map[string]string, args ...string) (int, []string) {
	t.Helper()
	res := proc{args: append([]string{"check"}, args...), env: env}.run(t)
	lines := strings.Split(strings.TrimSuffix(string(res.stdout), "\n"), "\n")
	if len(lines) < 1 || !strings.HasPrefix(lines[0], "rules: ") || len(res.stderr) != 0 {
		t.Fatalf("check %q: exit %d, stdout %q, stderr %q: want the rules line first and nothing on stderr", args, res.code, res.stdout, res.stderr)
	}
	return res.code, lines[1:]
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReplayMaildir: every message of cur/ and new/ (not tmp/, not dot files), cur/ first
// and by name, with the envelope from each message's Return-Path and Delivered-To.
func TestReplayMaildir(t *testing.T) {
	rules := rulesFile(t, testRules)
	md := writeFiles(t, filepath.Join(t.TempDir(), "Maildir"), map[string]string{
		"cur/1700000002.M2P2.mx:2,S":  storedForged,
		"cur/1700000001.M1P1.mx:2,RS": storedLegit,
		"new/1700000003.M3P3.mx":      storedForgedEnvelope,
		"new/1700000004.M4P4.mx":      storedBounce,
		"new/.1700000005.hidden":      storedForged,
		"tmp/1700000006.M6P6.mx":      storedForged,
	})
	env := map[string]string{"BFS_RULES": rules}
	code, lines := replayLines(t, env, md)
	wantLines(t, "replay of a Maildir", lines, []string{
		md + "/cur/1700000001.M1P1.mx:2,RS pass",
		md + "/cur/1700000002.M2P2.mx:2,S reject From ceo@ours.example by " + rules + ":1 (forged: ours.example used from outside)",
		md + "/new/1700000003.M3P3.mx reject envelope CEO@ours.example by " + rules + ":1 (forged: ours.example used from outside)",
		md + "/new/1700000004.M4P4.mx pass",
		"checked 4 messages: 2 pass, 2 reject, 0 tempfail",
	})
	if code != 1 {
		t.Errorf("exit %d, want 1 (a message would be rejected)", code)
	}

	// The same Maildir, every envelope sender given: --sender wins over Return-Path.
	code, lines = replayLines(t, env, "--sender", "anna@partner.example", md)
	if code != 1 || lines[2] != md+"/new/1700000003.M3P3.mx pass" || lines[4] != "checked 4 messages: 3 pass, 1 reject, 0 tempfail" {
		t.Errorf("--sender anna@partner.example: exit %d, lines %q; want the forged Return-Path overridden", code, lines)
	}
	code, lines = replayLines(t, env, "--sender", "phisher@scam.example", md)
	if code != 1 || lines[4] != "checked 4 messages: 0 pass, 4 reject, 0 tempfail" ||
		lines[0] != md+"/cur/1700000001.M1P1.mx:2,RS reject envelope phisher@scam.example by "+rules+":4 (phishing)" {
		t.Errorf("--sender phisher@scam.example: exit %d, lines %q; want every message rejected by its envelope", code, lines)
	}
	// And only the passing ones: exit 0.
	clean := writeFiles(t, filepath.Join(t.TempDir(), "Maildir"), map[string]string{"cur/1:2,S": storedLegit, "new/2": storedBounce})
	code, lines = replayLines(t, env, clean)
	wantLines(t, "replay of a clean Maildir", lines, []string{clean + "/cur/1:2,S pass", clean + "/new/2 pass", "checked 2 messages: 2 pass, 0 reject, 0 tempfail"})
	if code != 0 {
		t.Errorf("a Maildir that passes: exit %d, want 0", code)
	}
	empty := writeFiles(t, filepath.Join(t.TempDir(), "Maildir"), map[string]string{"tmp/1": storedForged})
	os.Mkdir(filepath.Join(empty, "cur"), 0o755)
	os.Mkdir(filepath.Join(empty, "new"), 0o755)
	if code, lines = replayLines(t, env, empty); code != 0 || strings.Join(lines, "\n") != "checked 0 messages: 0 pass, 0 reject, 0 tempfail" {
		t.Errorf("an empty Maildir: exit %d, %q", code, lines)
	}
}

// TestReplayMbox: every message of an mbox, split at "From " lines after an empty line;
// quoted ">From " lines in a body start no message, so what follows them is never read as
// a header.
func TestReplayMbox(t *testing.T) {
	rules := rulesFile(t, testRules)
	quotedBody := "Return-Path: <anna@partner.example>\nFrom: Anna <anna@partner.example>\nSubject: fwd\n\n" +
		"the phishing mail, quoted:\n\n>From bounce@evil.example Thu Nov 27 09:59:00 2026\n" +
		"From: CEO <ceo@ours.example>\nSubject: pay now\n\n>>From the archive\nend\n"
	mbox := "From anna@partner.example Thu Nov 27 10:00:00 2026\n" + quotedBody + "\n" +
		"From bounce@evil.example Thu Nov 27 10:00:01 2026\n" + storedForged + "\n" +
		"From MAILER-DAEMON Thu Nov 27 10:00:02 2026\n" + storedBounce + "\n" +
		"From x Thu Nov 27 10:00:03 2026\n" + storedNoPath + "\n"
	path := filepath.Join(writeFiles(t, t.TempDir(), map[string]string{"archive": mbox}), "archive")
	code, lines := replayLines(t, map[string]string{"BFS_RULES": rules}, path)
	wantLines(t, "replay of an mbox", lines, []string{
		path + "#1 pass",
		path + "#2 reject From ceo@ours.example by " + rules + ":1 (forged: ours.example used from outside)",
		path + "#3 pass",
		path + `#4 tempfail (mailbox: Return-Path is not <address>: "anna at partner")`,
		"checked 4 messages: 2 pass, 1 reject, 1 tempfail",
	})
	if code != 111 {
		t.Errorf("exit %d, want 111 (a message had no verdict)", code)
	}
	// The mbox alone without its last message: its reject gives exit 1.
	short := strings.TrimSuffix(mbox, "From x Thu Nov 27 10:00:03 2026\n"+storedNoPath+"\n")
	os.WriteFile(path, []byte(short), 0o644)
	if code, lines := replayLines(t, map[string]string{"BFS_RULES": rules}, path); code != 1 || lines[len(lines)-1] != "checked 3 messages: 2 pass, 1 reject, 0 tempfail" {
		t.Errorf("exit %d, lines %q; want 1 and 3 messages", code, lines)
	}
}

// TestReplayFiles: several arguments of every kind, and the errors that count as a
// tempfail (exit 111) without stopping the replay.
func TestReplayFiles(t *testing.T) {
	rules := rulesFile(t, testRules)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"legit.eml":  storedLegit,
		"forged.eml": storedForged,
		"mbox":       "From x Thu Nov 27 10:00:00 2026\n" + storedLegit + "\n",
		"empty":      "",
		"plain/x":    storedLegit,
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	res := proc{args: []string{"check", p("legit.eml"), p("forged.eml"), p("mbox"), p("empty"), p("missing"), p("plain"), "-"},
		env: map[string]string{"BFS_RULES": rules}, stdin: []byte(storedLegit)}.run(t)
	want := "rules: " + rules + " (the text, read directly: there is no " + rules + ".cdb; check does not compile it, run: block-forged-sender compile " + rules + "), version " + textVersion(t, rules) + "\n" +
		p("legit.eml") + " pass\n" +
		p("forged.eml") + " reject From ceo@ours.example by " + rules + ":1 (forged: ours.example used from outside)\n" +
		p("mbox") + "#1 pass\n" +
		p("missing") + " tempfail (mailbox: stat " + p("missing") + ": no such file or directory)\n" +
		p("plain") + " tempfail (mailbox: " + p("plain") + ": a directory but not a Maildir (it needs cur/ and new/))\n" +
		"- pass\n" +
		"checked 6 messages: 3 pass, 1 reject, 2 tempfail\n"
	if res.code != 111 || string(res.stdout) != want {
		t.Errorf("exit %d, stdout:\n%s\nwant 111 and:\n%s", res.code, res.stdout, want)
	}
	if res := (proc{args: []string{"check", "-", "-"}, env: map[string]string{"BFS_RULES": rules}}).run(t); res.code != 2 {
		t.Errorf("- twice: exit %d, want 2", res.code)
	}
	// The rules cannot be read: no replay at all.
	if res := (proc{args: []string{"check", p("legit.eml"), p("forged.eml")}, env: map[string]string{"BFS_RULES": p("missing")}}).run(t); res.code != 111 || len(res.stdout) != 0 {
		t.Errorf("rules missing: exit %d, stdout %q; want 111 and nothing", res.code, res.stdout)
	}
	// Monitor mode passes what it would reject, and says so; a trusted client passes unread.
	two := []string{p("legit.eml"), p("forged.eml")}
	code, lines := replayLines(t, map[string]string{"BFS_RULES": rules, "BFS_MODE": "monitor"}, two...)
	wantLines(t, "monitor mode", lines, []string{p("legit.eml") + " pass",
		p("forged.eml") + " pass (monitor mode; would reject: From ceo@ours.example by " + rules + ":1 (forged: ours.example used from outside))",
		"checked 2 messages: 2 pass, 0 reject, 0 tempfail"})
	if code != 0 {
		t.Errorf("monitor mode: exit %d, want 0", code)
	}
	res = proc{args: append([]string{"check"}, two...), env: map[string]string{"BFS_RULES": p("missing"), "RELAYCLIENT": ""}}.run(t)
	if want := "rules: not read (the client is trusted)\n" + p("legit.eml") + " pass (client trusted: relayclient)\n" +
		p("forged.eml") + " pass (client trusted: relayclient)\nchecked 2 messages: 2 pass, 0 reject, 0 tempfail\n"; res.code != 0 || string(res.stdout) != want {
		t.Errorf("a relay client: exit %d, stdout:\n%s\nwant 0 and:\n%s", res.code, res.stdout, want)
	}

	// A message that cannot be read after it was listed: a Maildir entry pointing nowhere.
	md := writeFiles(t, p("Maildir"), map[string]string{"cur/1:2,S": storedLegit})
	os.Mkdir(filepath.Join(md, "new"), 0o755)
	os.Symlink("nowhere", filepath.Join(md, "new", "2"))
	code, lines = replayLines(t, map[string]string{"BFS_RULES": rules}, md)
	if code != 111 || len(lines) != 3 || !strings.HasPrefix(lines[1], md+"/new/2 tempfail (mailbox: open "+md+"/new/2: no such file or directory") ||
		lines[2] != "checked 2 messages: 1 pass, 0 reject, 1 tempfail" {
		t.Errorf("a dangling Maildir entry: exit %d, lines %q", code, lines)
	}
}

// TestReplayEnvelope: the recipient from Delivered-To or X-Original-To, for rcpt=
// exceptions, unless --rcpt is given; with no recipient no rcpt= exception holds. The
// client from --client: an IP address, or a host name for client= exceptions by name.
func TestReplayEnvelope(t *testing.T) {
	rules := rulesFile(t, testRules+
		"!@supplier.example client=.billing.example\tsupplier's provider, by name\n"+
		"!@supplier.example client=198.51.100.0/24\tsupplier's provider, by address\n"+
		"@supplier.example\tforged: supplier.example used from outside\n")
	noRcpt := strings.Replace(storedInvoice, "X-Original-To: accounts@customer.example\n", "", 1)
	noRcpt = strings.Replace(noRcpt, "Delivered-To: accounts@ours.example\n", "", 1)
	supplier := "Return-Path: <invoices@supplier.example>\nFrom: invoices@supplier.example\n\nbody\n"
	dir := writeFiles(t, t.TempDir(), map[string]string{"invoice": storedInvoice, "no-rcpt": noRcpt, "supplier": supplier})
	invoice, norcpt, sup := filepath.Join(dir, "invoice"), filepath.Join(dir, "no-rcpt"), filepath.Join(dir, "supplier")
	excepted := " pass (From billing@customer.example matches " + rules + ":6, excepted by " + rules + ":5)"
	blocked := " reject envelope billing@customer.example by " + rules + ":6 (forged: customer.example used from outside)"
	byName := " pass (From invoices@supplier.example matches " + rules + ":9, excepted by " + rules + ":7)"
	byAddr := " pass (From invoices@supplier.example matches " + rules + ":9, excepted by " + rules + ":8)"
	supBlocked := " reject envelope invoices@supplier.example by " + rules + ":9 (forged: supplier.example used from outside)"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"X-Original-To is the recipient; no recipient, no rcpt= exception", nil, []string{"--client", "192.0.2.9", invoice, norcpt},
			[]string{invoice + excepted, norcpt + blocked}},
		{"--rcpt wins over the header", nil, []string{"--client", "192.0.2.9", "--rcpt", "accounts@ours.example", invoice, norcpt},
			[]string{invoice + blocked, norcpt + blocked}},
		{"--rcpt given for a message without one", nil, []string{"--client", "192.0.2.9", "--rcpt", "a@customer.example", norcpt, invoice},
			[]string{norcpt + excepted, invoice + excepted}},
		{"the client's IP address outside the exception", nil, []string{"--client", "203.0.113.66", invoice, sup},
			[]string{invoice + blocked, sup + supBlocked}},
		{"--client as a host name", nil, []string{"--client", "mx2.billing.example", sup, invoice},
			[]string{sup + byName, invoice + blocked}},
		{"--client as an address", nil, []string{"--client", "198.51.100.7", sup, invoice},
			[]string{sup + byAddr, invoice + blocked}},
		{"a host name that only ends like the exception", nil, []string{"--client", "mx.evilbilling.example", sup, invoice},
			[]string{sup + supBlocked, invoice + blocked}},
		{"--client replaces TCPREMOTEIP and TCPREMOTEHOST", map[string]string{"TCPREMOTEIP": "198.51.100.7", "TCPREMOTEHOST": "mx.billing.example"},
			[]string{"--client", "mx.evil.example", sup, sup}, []string{sup + supBlocked, sup + supBlocked}},
		{"without --client, TCPREMOTEHOST", map[string]string{"TCPREMOTEHOST": "mx.billing.example"}, []string{sup, sup},
			[]string{sup + byName, sup + byName}},
		{"both an address and a name", nil, []string{"--client", "mx.billing.example", "--client", "192.0.2.9", invoice, sup},
			[]string{invoice + excepted, sup + byName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, lines := replayLines(t, with(tt.env, "BFS_RULES", rules), tt.args...)
			if len(lines) > 0 {
				lines = lines[:len(lines)-1] // the summary
			}
			wantLines(t, "replay", lines, tt.want)
		})
	}
	for _, bad := range []string{"192.0.2.0/24", "mx billing", "999.1.2.3", "a@b.example", ""} {
		res := proc{args: []string{"check", "--client", bad, invoice}, env: map[string]string{"BFS_RULES": rules}}.run(t)
		want := fmt.Sprintf("block-forged-sender check: --client %q: not an IP address or a host name\n", bad)
		if res.code != 2 || string(res.stderr) != want {
			t.Errorf("--client %q: exit %d, stderr %q; want 2 and %q", bad, res.code, res.stderr, want)
		}
	}
	if res := (proc{args: []string{"check", "--client", "192.0.2.1", "--client", "192.0.2.2", invoice}, env: map[string]string{"BFS_RULES": rules}}).run(t); res.code != 2 {
		t.Errorf("two IP addresses: exit %d, want 2", res.code)
	}

	// One message file: the detailed explanation, which says where the envelope came from.
	res := proc{args: []string{"check", "--client", "192.0.2.9", invoice}, env: map[string]string{"BFS_RULES": rules}}.run(t)
	lines := strings.Split(strings.TrimSuffix(string(res.stdout), "\n"), "\n")
	wantLines(t, "one stored message", lines[1:], []string{
		"sender: <billing@customer.example> (Return-Path)",
		"recipient: accounts@customer.example (X-Original-To)",
		`envelope    "billing@customer.example"`,
		"            matches " + rules + ":6: @customer.example (forged: customer.example used from outside)",
		"            excepted by " + rules + ":5: !@customer.example (billing provider)",
		`From        "billing@customer.example"`,
		"            matches " + rules + ":6: @customer.example (forged: customer.example used from outside)",
		"            excepted by " + rules + ":5: !@customer.example (billing provider)",
		"verdict: pass",
	})
	if res.code != 0 {
		t.Errorf("one stored message: exit %d, want 0", res.code)
	}
	res = proc{args: []string{"check", filepath.Join(dir, "no-path")}, env: map[string]string{"BFS_RULES": rules}}.run(t)
	if res.code != 111 {
		t.Errorf("a missing file: exit %d, want 111", res.code)
	}
	os.WriteFile(filepath.Join(dir, "no-path"), []byte(storedNoPath), 0o644)
	res = proc{args: []string{"check", filepath.Join(dir, "no-path")}, env: map[string]string{"BFS_RULES": rules}}.run(t)
	if want := "block-forged-sender check: mailbox: Return-Path is not <address>: \"anna at partner\"\n"; res.code != 111 || string(res.stderr) != want {
		t.Errorf("one message, Return-Path without an address: exit %d, stderr %q; want 111 and %q", res.code, res.stderr, want)
	}
}

// TestCheckDoesNotWriteRules: as root, with a rules text newer than its CDB, check reads
// the text (its new entry decides) and leaves the rules directory exactly as it was, while
// the filter in the same state compiles (so this test would see a write).
func TestCheckDoesNotWriteRules(t *testing.T) {
	testenv.RequireTools(t, "root")
	rules := rulesFile(t, "@ours.example\tforged\n")
	if res := (proc{args: []string{"compile", rules}}).run(t); res.code != 0 {
		t.Fatalf("compile: exit %d, %s", res.code, res.stderr)
	}
	os.WriteFile(rules, []byte("@ours.example\tforged\nphisher@scam.example\tphishing, added since the compile\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(rules+".cdb", old, old)
	dir := filepath.Dir(rules)
	before := testenv.DirState(t, dir)

	md := writeFiles(t, filepath.Join(t.TempDir(), "Maildir"), map[string]string{
		"cur/1:2,S": storedLegit,
		"new/2":     "Return-Path: <phisher@scam.example>\nFrom: phisher@scam.example\n\nbody\n",
	})
	os.Mkdir(filepath.Join(md, "tmp"), 0o755)
	env := map[string]string{"BFS_RULES": rules}
	res := proc{args: []string{"check", md}, env: env}.run(t)
	want := "rules: " + rules + " (the text, read directly: it is newer than " + rules + ".cdb; check does not compile it, run: block-forged-sender compile " + rules + "), version " + textVersion(t, rules) + "\n" +
		md + "/cur/1:2,S pass\n" +
		md + "/new/2 reject envelope phisher@scam.example by " + rules + ":2 (phishing, added since the compile)\n" +
		"checked 2 messages: 1 pass, 1 reject, 0 tempfail\n"
	if res.code != 1 || string(res.stdout) != want {
		t.Errorf("check: exit %d, stdout:\n%s\nwant 1 and:\n%s", res.code, res.stdout, want)
	}
	for _, args := range [][]string{{"check", "--sender", "x@ours.example"}, {"check", filepath.Join(md, "new", "2")}} {
		if res := (proc{args: args, env: env}).run(t); res.code != 1 {
			t.Errorf("%q: exit %d, want 1", args, res.code)
		}
	}
	if after := testenv.DirState(t, dir); !maps.Equal(before, after) {
		t.Errorf("check wrote to the rules directory:\nbefore %q\nafter  %q", before, after)
	}

	// The filter in the same state compiles the text: the directory changes.
	res = proc{args: []string{"filter"}, env: with(qenv(rules, "anna@partner.example", "sales@ours.example")), stdin: []byte(legitMsg)}.run(t)
	if res.code != 0 {
		t.Fatalf("filter: exit %d, %s", res.code, res.stderr)
	}
	if after := testenv.DirState(t, dir); maps.Equal(before, after) {
		t.Errorf("the filter did not compile the newer text: this test cannot see a write")
	}
}

// The README's replay: a Maildir and an mbox for examples/badsenders.
var readmeMail = map[string]string{
	"Maildir/cur/1764237600.M1P1.mx.example.com:2,S": "Return-Path: <anna@partner.example>\nDelivered-To: sales@example.com\n" +
		"From: Anna Berg <anna@partner.example>\nTo: Sales <sales@example.com>\nSubject: Order 4711\n\nPlease send 40 units.\n",
	"Maildir/cur/1764237660.M2P2.mx.example.com:2,RS": "Return-Path: <bounce@attacker.example>\nDelivered-To: accounts@example.com\n" +
		"From: \"Chief Executive\" <ceo@example.com>\nTo: Accounts <accounts@example.com>\nSubject: Urgent transfer\n\nPay today.\n",
	"Maildir/new/1764237720.M3P3.mx.example.com": "Return-Path: <bounces@mailer.example>\nDelivered-To: subscribers@example.com\n" +
		"From: Example News <NEWS@example.com>\nTo: Subscribers <subscribers@example.com>\nSubject: November newsletter\n\nNews.\n",
	"Maildir/new/1764237780.M4P4.mx.example.com": "Return-Path: <invoices@billing-provider.example>\nDelivered-To: accounts@customer.example\n" +
		"From: Customer Billing <billing@customer.example>\nTo: Accounts <accounts@customer.example>\nSubject: Your invoice 2026-11\n\nAttached.\n",
	"Maildir/tmp/1764237840.M5P5.mx.example.com": "Return-Path: <bounce@attacker.example>\nFrom: ceo@example.com\n\nstill being delivered\n",
	"archive.mbox": "From anna@partner.example Thu Nov 27 10:00:00 2026\n" +
		"Return-Path: <anna@partner.example>\nDelivered-To: sales@example.com\nFrom: Anna Berg <anna@partner.example>\nSubject: Fwd: odd mail\n\n" +
		"Look at this one:\n\n>From bounce@attacker.example Thu Nov 27 09:00:00 2026\nFrom: \"Chief Executive\" <ceo@example.com>\nSubject: Urgent transfer\n\n" +
		">>From the archive\n\n" +
		"From ceo@example.com Thu Nov 27 10:01:00 2026\n" +
		"Return-Path: <ceo@example.com>\nDelivered-To: accounts@example.com\nFrom: Helpdesk <helpdesk@attacker.example>\nSubject: Invoice\n\nPay.\n\n" +
		"From MAILER-DAEMON Thu Nov 27 10:02:00 2026\n" +
		"Return-Path: <>\nDelivered-To: ceo@example.com\nFrom: Mail Delivery Subsystem <MAILER-DAEMON@partner.example>\nSubject: failure notice\n\n" +
		"Your message could not be delivered:\n\nFrom: Chief Executive <ceo@example.com>\n\n",
}

// TestReadmeReplay runs the README's replay where it says (a directory holding the
// compiled examples/badsenders, a Maildir and an mbox) and compares what it prints.
func TestReadmeReplay(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), readmeMail)
	rules, err := os.ReadFile(filepath.Join(testenv.Root(), "examples", "badsenders"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"badsenders": string(rules)})
	control := t.TempDir()
	run := func(script string) (int, string) {
		t.Helper()
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + binDir + ":" + os.Getenv("PATH"), "BFS_QMAILCONTROL=" + control}
		out, err := cmd.Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run("block-forged-sender compile badsenders"); code != 0 {
		t.Fatalf("compile: exit %d, %s", code, out)
	}
	code, out := run(testenv.Snippet(t, "check-replay"))
	if want := strings.TrimSuffix(testenv.Snippet(t, "check-replay-output"), "\n") + "\n"; code != 1 || out != want {
		t.Errorf("the README's replay: exit %d, stdout:\n%s\nwant 1 and the README's:\n%s", code, out, want)
	}
	// What the README says of the invoice: from the provider's servers, it passes.
	code, out = run("block-forged-sender check --rules badsenders --client mx1.billing-provider.example Maildir archive.mbox")
	if want := "Maildir/new/1764237780.M4P4.mx.example.com pass (From billing@customer.example matches badsenders:12, excepted by badsenders:13)\n"; code != 1 ||
		!strings.Contains(out, want) || !strings.HasSuffix(out, "checked 7 messages: 5 pass, 2 reject, 0 tempfail\n") {
		t.Errorf("--client mx1.billing-provider.example: exit %d, stdout:\n%s\nwant it to hold %q", code, out, want)
	}
}

// textVersion is the rules version of the text at path, as check reports it.
func textVersion(t *testing.T, path string) string {
	t.Helper()
	s, rep, err := rules.LoadText(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return rep.Version
}
