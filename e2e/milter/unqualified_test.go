package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnqualifiedSender: Postfix takes MAIL FROM:<ceo> and stores ceo@$myorigin as the
// Return-Path; the daemon must judge that same address, and qualify From: <ceo> (which
// Postfix leaves alone for a remote client) with the same host. The daemon runs in monitor
// mode, so the message is delivered and its log names the address it judged. Three setups:
// Postfix's default myorigin ($myhostname) and no --default-host, where the daemon takes
// Postfix's host name from the j macro (sent because the daemon asks for it, even with
// main.cf's milter_connect_macros empty, as is the queue id with milter_end_of_header_macros
// empty); Debian's myorigin = /etc/mailname naming the
// domain, with that domain in BFS_DEFAULTHOST as the README says; and the same without
// BFS_DEFAULTHOST, the mismatch the README warns of.
func TestUnqualifiedSender(t *testing.T) {
	const host = "mx.acme-corp.example" // the instance's myhostname
	rules := "@" + host + "\tour host name used from outside\n" +
		"@" + domain + "\tour domain used from outside\n"
	cases := []struct {
		name     string
		mailname bool   // myorigin = a mailname file holding acme-corp.example, as Debian's /etc/mailname
		env      bool   // BFS_DEFAULTHOST from that file, as the README says
		postfix  string // the domain Postfix appends
		daemon   string // the domain the daemon appends
	}{
		{"postfix-default", false, false, host, host},
		{"debian-mailname", true, true, domain, domain},
		{"debian-mailname-unset", true, false, domain, host},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t)
			dir := t.TempDir()
			mailname := filepath.Join(dir, "mailname")
			must(t, os.WriteFile(mailname, []byte(domain+"\n"), 0o644))
			must(t, os.Chmod(dir, 0o755))
			var env []string
			args := []string{"--mode", "monitor", "--default-host="}
			if tc.env {
				b, err := os.ReadFile(mailname)
				must(t, err)
				env, args = []string{"BFS_DEFAULTHOST=" + strings.TrimSpace(string(b))}, []string{"--mode", "monitor"}
			}
			d := startDaemonOn(t, "", env, rules, args...)
			// The instance's main.cf sets myorigin = acme-corp.example; a later line wins.
			extra := "myorigin = $myhostname\nmilter_connect_macros =\nmilter_end_of_header_macros =\n"
			if tc.mailname {
				extra = "myorigin = " + mailname + "\n"
			}
			pf := startPostfix(t, options{milter: d.spec, extra: extra})

			reason := map[string]string{host: "our host name used from outside", domain: "our domain used from outside"}
			for _, m := range []struct {
				from, header, matched string
			}{
				{"ceo", "From: Partner <sales@northwind-traders.example>", "envelope:ceo@" + tc.daemon},
				{"sales@northwind-traders.example", "From: <ceo>", "From:ceo@" + tc.daemon},
			} {
				msg := []byte(m.header + "\r\nTo: " + recipient + "\r\nSubject: unqualified\r\n\r\nHello.\r\n")
				out, code := pf.swaks(t, send{from: m.from, msg: msg, client: "127.0.0.2"})
				id := queuedID(out)
				if code != 0 || id == "" {
					t.Fatalf("swaks exit %d, transcript:\n%s", code, out)
				}
				stored := string(pf.deliveredByID(t, id))
				wantRP := "Return-Path: <" + m.from + ">\n"
				if m.from == "ceo" {
					wantRP = "Return-Path: <ceo@" + tc.postfix + ">\n"
				}
				if !strings.HasPrefix(stored, wantRP) {
					t.Errorf("stored message starts %q, want %q", stored[:min(len(stored), 80)], wantRP)
				}
				if !strings.Contains(stored, "\n"+m.header+"\n") {
					t.Errorf("stored header lost %q:\n%s", m.header, stored)
				}
				want := `block-forged-sender: queue=` + id + ` verdict=pass stage=header mode=monitor monitor="would reject" reason="` +
					reason[tc.daemon] + `" rule= matched=` + m.matched + ` sender=` + m.from
				if line := d.logLine(t, id); !hasFields(line, want) {
					t.Errorf("log line %q, want the fields of %s", line, want)
				}
			}
		})
	}
}
