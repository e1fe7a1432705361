package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/rules"
)

// benchMessages and benchSize: the replay benchmark's mail, messages of 4 KB.
const (
	benchMessages = 2000
	benchSize     = 4096
)

// benchMessage is a stored message of benchSize bytes as qmail-local delivers it; every
// tenth has a forged From.
func benchMessage(i int) string {
	from := fmt.Sprintf("Anna %d <anna%d@partner%d.example>", i, i, i%50)
	if i%10 == 0 {
		from = `"Chief Executive" <ceo@ours.example>`
	}
	h := fmt.Sprintf("Return-Path: <bounce-%d@partner%d.example>\nDelivered-To: sales@ours.example\n"+
		"Received: (qmail %d invoked from network); 27 Nov 2026 10:00:00 -0000\n"+
		"Received: from mx.partner%d.example (HELO mx.partner%d.example) (198.51.100.%d)\n  by mx.ours.example with SMTP; 27 Nov 2026 10:00:00 -0000\n"+
		"Received: from [10.0.0.%d] by mx.partner%d.example with ESMTPSA id %d; Thu, 27 Nov 2026 11:00:00 +0100\n"+
		"From: %s\nTo: Sales <sales@ours.example>\nSubject: order %d\nDate: Thu, 27 Nov 2026 11:00:00 +0100\n"+
		"Message-ID: <%d.order@partner%d.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n",
		i, i%50, i, i%50, i%50, i%250, i%250, i%50, i, from, i, i, i%50)
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n"
	var b strings.Builder
	b.WriteString(h)
	for b.Len()+len(line) <= benchSize-1 {
		b.WriteString(line)
	}
	b.WriteString(strings.Repeat(".", benchSize-1-b.Len()) + "\n")
	return b.String()
}

// benchRules is a list of 10,000 entries and the test rules, compiled.
func benchRules(b *testing.B) string {
	var text strings.Builder
	text.WriteString(testRules)
	for i := range 10000 {
		fmt.Fprintf(&text, "@spam%d.example\tspam domain %d\n", i, i)
	}
	path := filepath.Join(b.TempDir(), "badsenders")
	if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := rules.Compile(path, path+".cdb"); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReplay replays a Maildir and an mbox of benchMessages messages of 4 KB through
// check in-process, as "block-forged-sender check --rules FILE MAILDIR" runs it: the same
// code path, one pipeline and Judge per message. msgs/s is the figure to compare with the
// 5,000 messages per second asked for (the files are in the page cache).
func BenchmarkReplay(b *testing.B) {
	rulesPath := benchRules(b)
	dir := b.TempDir()
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	var mbox strings.Builder
	for i := range benchMessages {
		msg := benchMessage(i)
		sub, name := "cur", fmt.Sprintf("17640000%02d.M%dP%d.mx.ours.example:2,S", i/100, i, i)
		if i%2 == 1 {
			sub, name = "new", fmt.Sprintf("17640000%02d.M%dP%d.mx.ours.example", i/100, i, i)
		}
		if err := os.WriteFile(filepath.Join(md, sub, name), []byte(msg), 0o644); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&mbox, "From bounce-%d@partner.example Thu Nov 27 10:00:00 2026\n%s\n", i, msg)
	}
	mboxPath := filepath.Join(dir, "mbox")
	if err := os.WriteFile(mboxPath, []byte(mbox.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	control := b.TempDir()
	env := cli.Env(func(name string) (string, bool) {
		if name == "BFS_QMAILCONTROL" {
			return control, true
		}
		return "", false
	})
	for _, bc := range []struct{ name, path string }{{"Maildir", md}, {"mbox", mboxPath}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(benchMessages * benchSize)
			runs := 0
			for b.Loop() {
				if code := runCheck([]string{"--rules", rulesPath, bc.path}, env, stdio{in: os.Stdin, out: io.Discard, err: io.Discard}); code != 1 {
					b.Fatalf("check exited %d, want 1 (a tenth of the messages are rejected)", code)
				}
				runs++
			}
			b.ReportMetric(float64(runs*benchMessages)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
