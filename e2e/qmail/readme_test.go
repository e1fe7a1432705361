package qmail

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"block-forged-sender/internal/testenv"
)

// The README's qmail blocks are run here as an administrator would paste them. Only the
// paths the README tells the reader to change are replaced: /usr/local (PREFIX), /var/qmail
// (the qmail home) and /etc/tcp.smtp; and, since every test client connects over loopback,
// the client addresses of tcp.smtp lines are mapped into 127.0.0.0/8 (readmeClients).

// readmePaths replaces the README's paths with the test's.
func readmePaths(text, prefix string, h *qmailHome, tcpsmtp string) string {
	return strings.NewReplacer("/usr/local", prefix, "/var/qmail", h.dir, "/etc/tcp.smtp", tcpsmtp).Replace(text)
}

// readmeClients maps the client addresses of the README's tcp.smtp lines to loopback
// addresses a test client can connect from (tcpserver listens on 127.0.0.1; the client
// binds the address it is to come from). The relay line "127." becomes "127.0.0.1", so
// that other loopback addresses stand for outside clients.
var readmeClients = strings.NewReplacer(
	"127.:", "127.0.0.1:",
	"10.:", "127.0.10.:",
	"192.0.2.", "127.0.2.",
	"203.0.113.", "127.0.113.",
	"198.51.100.", "127.0.100.",
)

// The README's rules (examples/badsenders) and what its first rule says.
const (
	readmeReason   = "forged sender: example.com used from outside"
	readmeRejected = "554 " + readmeReason + " (#5.7.1)"
	readmeRcpt     = "frontoffice@example.com"
	readmeOurs     = "ceo@example.com"
)

// TestReadme installs the program with the README's install block, compiles the README's
// example rules with its compile block, and runs its tcp.smtp, tcprules, wrapper and
// tcprulescheck blocks through a real qmail-smtpd.
func TestReadme(t *testing.T) {
	h := needQmail(t)
	dir := h.caseDir(t)
	prefix := filepath.Join(dir, "usr", "local")

	// make install, from a copy of the repository, so that the test writes nothing into it.
	src := filepath.Join(dir, "src")
	copyTree(t, testenv.Root(), src)
	sh(t, src, readmePaths(testenv.Snippet(t, "qmail-install"), prefix, h, ""))
	for _, f := range []string{"bin/block-forged-sender", "share/man/man8/block-forged-sender.8"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
	if l, err := os.Readlink(filepath.Join(prefix, "bin", "block-forged-sender-queue")); err != nil || l != "block-forged-sender" {
		t.Errorf("make install: the queue link reads %q, %v; want block-forged-sender", l, err)
	}

	// The rules, where the README puts them, compiled as it says.
	rules := filepath.Join(h.dir, "control", "badsenders")
	example, err := os.ReadFile(filepath.Join(testenv.Root(), "examples", "badsenders"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rules, example, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, dir, readmePaths(testenv.Snippet(t, "qmail-compile"), prefix, h, ""))
	if _, err := os.Stat(rules + ".cdb"); err != nil {
		t.Fatalf("the compile block made no CDB: %v", err)
	}
	if t.Failed() {
		return
	}
	// The program's paths, as the README tells an administrator with another qmail home.
	env := []string{"BFS_RULES=" + rules, "BFS_QMAILQUEUE=" + filepath.Join(h.dir, "bin", "qmail-queue")}

	// start compiles the snippet named tcpsmtp with the README's tcprules block and starts
	// a server on it.
	start := func(t *testing.T, tcpsmtp string) *server {
		d := h.caseDir(t)
		file := filepath.Join(d, "tcp.smtp")
		text := readmeClients.Replace(readmePaths(testenv.Snippet(t, tcpsmtp), prefix, h, file))
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		sh(t, d, readmePaths(testenv.Snippet(t, "qmail-tcprules"), prefix, h, file))
		return h.startServer(t, d, serverOpts{cdb: file + ".cdb", env: env})
	}
	// send sends a message from the header sender from and the envelope sender lure, from
	// the address client, and asserts the outcome.
	send := func(t *testing.T, s *server, client, from, reply string, log map[string]string) {
		t.Helper()
		id := h.newID()
		m := mail{sender: lure, rcpt: readmeRcpt, data: message(from, id, 0)}
		h.transaction(t, s, client, m, id, false, reply, log)
	}
	pass := map[string]string{"verdict": "pass", "exit": "0"}
	reject := map[string]string{"verdict": "reject", "exit": "82", "reason": readmeReason}

	// The two ways to run it: the relay clients go to plain qmail-queue (no line of the
	// program's), every other client is checked.
	installs := []struct{ name, tcpsmtp string }{
		{"straight as QMAILQUEUE", "qmail-tcp.smtp"},
		{"with qmail-qfilter", "qmail-tcp.smtp-qfilter"},
	}
	// The wrapper goes where the README puts it: the qmail home's bin directory.
	wrapper := filepath.Join(h.dir, "bin", "qmail-qfilter-bfs")
	text := readmePaths(testenv.Snippet(t, "qmail-qfilter-wrapper"), prefix, h, "")
	if err := os.WriteFile(wrapper, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, in.tcpsmtp)
			send(t, s, "127.0.0.1", readmeOurs, "250", nil)  // relay client: 127.
			send(t, s, "127.0.10.3", readmeOurs, "250", nil) // relay client: 10.
			send(t, s, "127.0.0.2", readmeOurs, readmeRejected, reject)
			send(t, s, "127.0.0.2", partner, "250", pass)
		})
	}

	// Per-client lines: each client is checked, under its own settings.
	t.Run("per-client lines", func(t *testing.T) {
		t.Parallel()
		s := start(t, "qmail-tcp.smtp-clients")
		send(t, s, "127.0.2.7", "Invoices <invoices@example.com>", "250", pass) // BFS_ALLOW
		send(t, s, "127.0.2.7", readmeOurs, readmeRejected, reject)             // ... that address only
		send(t, s, "127.0.113.9", readmeOurs, "250", map[string]string{"verdict": "pass", "exit": "0", "mode": "monitor", "monitor": "would reject"})
		send(t, s, "127.0.100.25", readmeOurs, "250", map[string]string{"verdict": "pass", "exit": "0", "trusted": "bfs_trusted"})
		send(t, s, "127.0.0.9", readmeOurs, readmeRejected, reject) // the catch-all line
	})

	// tcprulescheck, on the lines as the README has them: each per-client line gives its
	// client QMAILQUEUE.
	t.Run("tcprulescheck", func(t *testing.T) {
		t.Parallel()
		d := h.caseDir(t)
		file := filepath.Join(d, "tcp.smtp")
		text := readmePaths(testenv.Snippet(t, "qmail-tcp.smtp-clients"), prefix, h, file)
		compileTcprules(t, d, text)
		queueVar := "set environment variable QMAILQUEUE=" + filepath.Join(prefix, "bin", "block-forged-sender-queue") + "\n"
		out := sh(t, d, readmePaths(testenv.Snippet(t, "qmail-tcprulescheck"), prefix, h, file))
		if want := "rule 192.0.2.7:\n" + queueVar + "set environment variable BFS_ALLOW=invoices@example.com\nallow connection\n"; out != want {
			t.Errorf("the README's tcprulescheck printed:\n%s\nwant:\n%s", out, want)
		}
		for _, ip := range []string{"203.0.113.9", "198.51.100.25", "192.0.2.8"} {
			if out := tcprulescheck(t, file+".cdb", ip); !strings.Contains(out, queueVar) {
				t.Errorf("tcprulescheck for %s:\n%s\nwant %q", ip, out, queueVar)
			}
		}
	})
}

// TestOneLineOnly shows why the README has every per-client line repeat QMAILQUEUE: a
// client gets the variables of the one tcp.smtp line that matches it most closely (its
// address, else its longest prefix, else the catch-all; wherever the lines stand), and of
// no other. A line with BFS_ALLOW and no QMAILQUEUE sends that client's mail to plain
// qmail-queue, unchecked: forged mail is queued and the program never runs.
func TestOneLineOnly(t *testing.T) {
	h := needQmail(t)
	queue := filepath.Join(h.bin, "block-forged-sender-queue")
	catchAll := `:allow,QMAILQUEUE="` + queue + `"` + "\n"
	for _, tt := range []struct {
		name, line, reply string
		log               map[string]string
	}{
		{"without QMAILQUEUE", `127.0.0.1:allow,BFS_ALLOW="` + cfo + `"`, "250", nil},
		{"with QMAILQUEUE", `127.0.0.1:allow,QMAILQUEUE="` + queue + `",BFS_ALLOW="` + cfo + `"`, rejected,
			map[string]string{"verdict": "reject", "exit": "82", "reason": testReason}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := h.caseDir(t)
			// The client's line below the catch-all: the order does not matter.
			s := h.startServer(t, dir, serverOpts{tcpsmtp: catchAll + tt.line + "\n"})
			out := tcprulescheck(t, filepath.Join(dir, "tcp.smtp.cdb"), "127.0.0.1")
			if !strings.HasPrefix(out, "rule 127.0.0.1:\n") || strings.Contains(out, "QMAILQUEUE") != (tt.log != nil) {
				t.Errorf("tcprulescheck for 127.0.0.1:\n%s", out)
			}
			id := h.newID()
			m := mail{sender: lure, data: message(ceo, id, 0)}
			h.transaction(t, s, "127.0.0.1", m, id, false, tt.reply, tt.log)
		})
	}
}

// TestWrapperFirstLine shows why the README insists that #!/bin/sh is the wrapper's first
// line: with a comment before it qmail-smtpd cannot exec the wrapper, and every message is
// deferred.
func TestWrapperFirstLine(t *testing.T) {
	h := needQmail(t)
	dir := h.caseDir(t)
	wrapper := h.wrapper(t, dir, "# a wrapper, named by QMAILQUEUE\n"+testenv.Snippet(t, "qmail-qfilter-wrapper"), h.bin)
	s := h.startServer(t, dir, serverOpts{tcpsmtp: `:allow,QMAILQUEUE="` + wrapper + `"` + "\n"})
	id := h.newID()
	m := mail{sender: partner, data: message(partner, id, 0)}
	h.transaction(t, s, "", m, id, false, "451 unable to exec qq (#4.3.0)", nil)
}

// tcprulescheck returns what tcprulescheck prints for a client at ip.
func tcprulescheck(t *testing.T, cdb, ip string) string {
	t.Helper()
	c := exec.Command("tcprulescheck", cdb)
	c.Env = append(os.Environ(), "TCPREMOTEIP="+ip)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("tcprulescheck %s for %s: %v\n%s", cdb, ip, err, out)
	}
	return string(out)
}

// sh runs a README block with sh -e in dir and returns its output.
func sh(t *testing.T, dir, script string) string {
	t.Helper()
	c := exec.Command("sh", "-e", "-c", script)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("sh -e -c %q: %v\n%s", script, err, out)
	}
	return string(out)
}

// copyTree copies the repository's files from src to dst, leaving out .git and what the
// build makes (bin/).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == ".git" || rel == "bin" { // .git is a file in a worktree
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestManPageExamples: the qmail examples of the manual page are the README's, which the
// tests above run: its wrapper is the README's wrapper, and each of its tcp.smtp lines is
// a line of one of the README's tcp.smtp blocks.
func TestManPageExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "docs", "block-forged-sender.8"))
	if err != nil {
		t.Fatal(err)
	}
	_, examples, ok := strings.Cut(string(b), "\n.SH EXAMPLES\n")
	if !ok {
		t.Fatal("the manual page has no EXAMPLES section")
	}
	examples, _, _ = strings.Cut(examples, "\n.SH ")
	readmeLines := map[string]bool{}
	for _, name := range []string{"qmail-tcp.smtp", "qmail-tcp.smtp-qfilter", "qmail-tcp.smtp-clients"} {
		for _, l := range strings.Split(testenv.Snippet(t, name), "\n") {
			readmeLines[l] = true
		}
	}
	unescape := strings.NewReplacer(`\-`, "-", `\e`, `\`)
	var wrappers, rules int
	for _, block := range strings.Split(examples, "\n.nf\n")[1:] {
		block, _, _ = strings.Cut(block, "\n.fi\n")
		block = unescape.Replace(block) + "\n"
		switch {
		case strings.HasPrefix(block, "#!") || strings.Contains(block, "qmail-qfilter "):
			wrappers++
			if want := testenv.Snippet(t, "qmail-qfilter-wrapper"); block != want {
				t.Errorf("the manual page's wrapper:\n%s\nthe README's:\n%s", block, want)
			}
		case strings.Contains(block, ":allow"):
			for _, l := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
				rules++
				if !readmeLines[l] {
					t.Errorf("the manual page's tcp.smtp line %q is in no tcp.smtp block of the README", l)
				}
			}
		}
	}
	if wrappers != 1 || rules == 0 {
		t.Errorf("the manual page's EXAMPLES have %d wrappers and %d tcp.smtp lines; want 1 and some", wrappers, rules)
	}
}
